"""Protocol B position bias of the LLM rerank: the target + 19 seeded random negatives, the target
placed at positions 0, 5, 10, 15 and 19; N@10 per position and the spread, without and with
permutation averaging (the candidate order and its reverse).

    python eval/position_bias.py --llm small --users 20 [--dataset NAME_OR_FOLDER]

The reranker is the product's (promptrec.engine.build_reranker from the settings, with the product's
item features), the dataset is found like the product finds it. Writes eval/results/NAME.json and
.md, naming the dataset and its content hash. Records (STATE_DIR/eval/DATASET-HASH/position-bias)
are resumable; replies are cached. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.progress import Progress

from promptrec.evaluation.position_bias import (POSITIONS, bias_log, protocol_b_baselines, run_position_bias,
                                               summarize)
from promptrec.evaluation.product import split_catalog
from promptrec.evaluation.runner import features_digest, sample_users
from promptrec.evaluation.source import eval_state_dir, load_source
from promptrec.evaluation.splits import protocol_a_split
from promptrec.llm.resolve import file_sha256
from promptrec.pipeline import Recommender
from promptrec.prompts import load_prompt
from promptrec.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", default="small", help="small | medium | quality | path.gguf")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: PROMPTREC_DATASET or ml-latest-small)")
    parser.add_argument("--name", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    settings = Settings()
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": args.llm}),
                                           **({"dataset": args.dataset} if args.dataset else {})})
    source = load_source(settings)
    split = protocol_a_split(source.dataset.interactions.frame)
    product = Recommender(settings, dataset=source.dataset)
    client = product.client
    users = sample_users(split.n_users, args.users, settings.seed)
    prefix = "" if source.dataset.name == "ml-latest-small" else f"{source.dataset.name}-"
    name = args.name or f"protocol-b-position-bias-{prefix}{Path(args.llm).stem}-{args.users}u"
    log = bias_log(eval_state_dir(settings, source) / "position-bias"
                   / f"{client.model_id}-{load_prompt('rerank').hash}-{features_digest(product.features)}.jsonl")
    with Progress() as progress:
        task = progress.add_task("Protocol B", total=len(users) * len(POSITIONS) * 2)
        records = run_position_bias(split, settings, split_catalog(split, source.dataset), client, product.features,
                                    users, log, progress=lambda n: progress.advance(task, n))
    model_path = getattr(client.backend, "model_path", None)
    payload = {
        "protocol": "B (target + 19 random unseen items, seeded), test targets",
        "llm": summarize(records),
        "baselines_same_candidates": protocol_b_baselines(split, users, settings.seed),
        "meta": {"dataset": source.meta(), "model_id": client.model_id,
                 "model_sha256": file_sha256(model_path) if model_path else None,
                 "temperature": client.temperature, "item_features": len(product.features),
                 "prompt_hash": load_prompt("rerank").hash, "seed": settings.seed, "users": len(users),
                 "llm_stats_this_run": client.stats.summary(), "wall_s": round(time.perf_counter() - start, 1)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [f"# {name}", "", f"Protocol B on {source.dataset.name} (sha256 {source.sha256[:12]}), {len(users)} users, "
             f"model {client.model_id}. See docs/evaluation.md.", "",
             "| mitigation | " + " | ".join(f"N@10 @pos {p}" for p in POSITIONS) + " | spread | mean N@10 | invalid |",
             "|---|" + "---|" * (len(POSITIONS) + 3)]
    for label, row in payload["llm"].items():
        cells = [f"{row['N@10_by_target_position'].get(p, float('nan')):.3f}" for p in POSITIONS]
        lines.append(f"| {label} | " + " | ".join(cells)
                     + f" | {row['N@10_spread']:.3f} | {row['mean']['N@10']:.3f} | {row['invalid_rate']:.2f} |")
    lines += ["", "Same candidate sets, no LLM:", "", "```json",
              json.dumps(payload["baselines_same_candidates"], indent=2), "```", "", "```json",
              json.dumps(payload["meta"], indent=2), "```", ""]
    (args.out / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
