"""Protocol A evaluation of every stage, with choices made on validation and test read once.

    python eval/run.py                                   # classic + retrieval stages (no LLM), ml-latest-small
    python eval/run.py --llm small --users 100           # + LLM rerank and explained answer, 100 seeded users per split
    python eval/run.py --llm small --no-rerank           # + the product's explained answer only (no rerank)
    python eval/run.py --dataset path/to/folder          # any folder of items + interactions (CSV/JSONL/Parquet)

The stages are the product's own (promptrec.engine.build_engine), configured by the same settings
(PROMPTREC_* variables: PROMPTREC_RERANK__DEPTH, PROMPTREC_PROFILE__TOKEN_BUDGET, ...). The dataset
is found like the product finds it (PROMPTREC_DATA_DIR for ml-latest-small). Writes
eval/results/NAME.{json,md,png}, naming the dataset and a hash of its content. The split's vector
store, fitted models and per-user LLM records go to STATE_DIR/eval/DATASET-HASH (or --runs): an
interrupted run continues where it stopped, and every model reply is cached, so a rerun reproduces
the numbers with zero model calls. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from promptrec.evaluation.progress import progress_bars
from promptrec.evaluation.report import markdown_table, write_report
from promptrec.evaluation.runner import EvalConfig, run_protocol_a
from promptrec.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


def default_name(dataset: str | None, llm: str | None, users: int) -> str:
    name = "protocol-a" + (f"-{Path(dataset).name}" if dataset else "")
    return name + (f"-{Path(llm).stem}-{users}u" if llm else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=None,
                        help="dataset name or folder of items + interactions (default: PROMPTREC_DATASET or ml-latest-small)")
    parser.add_argument("--name", default=None, help="result file name (default: protocol-a[-DATASET][-MODEL-NUSERS])")
    parser.add_argument("--llm", default=None, help="model for the LLM stage (rerank, explained answer): "
                        "small | medium | quality | path (default: no LLM stage)")
    parser.add_argument("--users", type=int, default=50, help="users per split for the LLM stage (seeded sample)")
    parser.add_argument("--k", type=int, default=10, help="length of the answer the model reranks and explains")
    parser.add_argument("--no-profile", action="store_true", help="rerank without the user profile")
    parser.add_argument("--no-rerank", action="store_true",
                        help="skip the LLM rerank stage (and its blend weight); the product's explained answer "
                             "(fused list + the model's reasons) is still measured")
    parser.add_argument("--no-classic", action="store_true", help="skip the classic baseline rows")
    parser.add_argument("--folds", type=int, default=3, help="validation folds for the fusion weights")
    parser.add_argument("--seed", type=int, default=None, help="root seed (default: PROMPTREC_SEED or 0)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--runs", type=Path, default=None,
                        help="folder for the split's store, fitted models and LLM records (default: STATE_DIR/eval/DATASET-HASH)")
    args = parser.parse_args(argv)

    settings = Settings()
    update: dict = {}
    if args.dataset:
        update["dataset"] = args.dataset
    if args.seed is not None:
        update["seed"] = args.seed
    if args.llm:
        update["llm"] = settings.llm.model_copy(update={"model": args.llm})
    if args.no_profile:
        update["profile"] = settings.profile.model_copy(update={"enabled": False})
    settings = settings.model_copy(update=update)
    name = args.name or default_name(args.dataset, args.llm, args.users)
    config = EvalConfig(name=name, classic=not args.no_classic, llm=bool(args.llm), llm_users=args.users,
                        folds=args.folds, rerank_k=args.k, rerank=not args.no_rerank)
    with progress_bars() as (bar, say):
        payload = run_protocol_a(config, settings, args.runs, bar, say=say)
    paths = write_report(args.out, name, payload)
    dataset = payload["meta"]["dataset"]
    print(f"dataset {dataset['name']} sha256 {dataset['sha256'][:12]}")
    print(markdown_table(payload["rows"]))
    print(json.dumps(payload["selection"].get("llm_weight", {}).get("chosen")) if payload["selection"] else "")
    print(f"wall time {payload['meta']['wall_s']} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
