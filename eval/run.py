"""Protocol A evaluation of every stage, with choices made on validation and test read once.

    python eval/run.py                                   # classic + retrieval stages (no LLM), ~10 min
    python eval/run.py --llm small --users 100           # + LLM rerank on 100 seeded users per split
    python eval/run.py --llm quality --users 40 --name quality-40

Writes eval/results/NAME.{json,md,png}. Per-user LLM records go to the runs folder
(--runs, default STATE_DIR/eval): an interrupted run continues where it stopped, and every model
reply is cached, so a rerun reproduces the numbers with zero model calls.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from promptrec.evaluation.report import markdown_table, write_report
from promptrec.evaluation.runner import EvalConfig, run_protocol_a
from promptrec.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default=None, help="result file name (default: protocol-a[-MODEL-NUSERS])")
    parser.add_argument("--llm", default=None, help="local model for the rerank stage: small | medium | quality | path")
    parser.add_argument("--users", type=int, default=50, help="users per split for the LLM stage (seeded sample)")
    parser.add_argument("--no-profile", action="store_true", help="rerank without the user profile")
    parser.add_argument("--no-classic", action="store_true", help="skip the classic baseline rows")
    parser.add_argument("--seed", type=int, default=None, help="root seed (default: PROMPTREC_SEED or 0)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--runs", type=Path, default=None, help="folder for per-user records and eval stores")
    args = parser.parse_args(argv)

    settings = Settings()
    seed = settings.seed if args.seed is None else args.seed
    name = args.name or ("protocol-a" + (f"-{Path(args.llm).stem}-{args.users}u" if args.llm else ""))
    config = EvalConfig(name=name, seed=seed, classic=not args.no_classic, llm_model=args.llm, llm_users=args.users,
                        profile_budget=0 if args.no_profile else 500)
    runs = args.runs or settings.state_dir / "eval"
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        def bar(label: str, total: int):
            task = progress.add_task(label, total=total)
            return lambda n: progress.advance(task, n)

        payload = run_protocol_a(config, settings, runs, bar, say=progress.console.print)
    paths = write_report(args.out, name, payload)
    print(markdown_table(payload["rows"]))
    print(json.dumps(payload["selection"].get("llm_weight", {}).get("chosen")) if payload["selection"] else "")
    print(f"wall time {payload['meta']['wall_s']} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
