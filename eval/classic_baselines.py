"""Protocol A table (validation and test) of every classic scorer and the tuned classic blend.

Usage:
    python eval/classic_baselines.py [--dataset NAME_OR_FOLDER] [--tune] [--folds 3] [--out FILE.json]

The dataset is loaded like the product loads it: ``ml-latest-small`` from PROMPTREC_DATA_DIR by
default, or any folder of items + interactions (CSV/JSONL/Parquet). ``--tune`` reruns the
validation-only selection (promptrec.evaluation.tuning) and adds the selected blend to the table;
without it the stored selection (promptrec.collab.presets) is used. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from promptrec.collab import classic_scorers
from promptrec.evaluation.classic import classic_table, format_table
from promptrec.evaluation.source import load_source
from promptrec.evaluation.splits import protocol_a_split
from promptrec.evaluation.tuning import tune_classic_blend
from promptrec.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: PROMPTREC_DATASET or ml-latest-small)")
    parser.add_argument("--tune", action="store_true", help="rerun the validation selection")
    parser.add_argument("--folds", type=int, default=3, help="validation folds for --tune")
    parser.add_argument("--out", type=Path, help="write rows and selection as JSON")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    settings = Settings()
    if args.dataset:
        settings = settings.model_copy(update={"dataset": args.dataset})
    source = load_source(settings)
    split = protocol_a_split(source.dataset.interactions.frame)
    print(f"{source.dataset.name} (sha256 {source.sha256[:12]})")
    print(
        f"Protocol A: {split.n_users} users, {split.n_items} items, "
        f"{split.n_interactions} interactions"
    )
    scorers = classic_scorers()
    selection = None
    if args.tune:
        result = tune_classic_blend(
            split, n_folds=args.folds, progress=lambda line: print("  " + line, flush=True)
        )
        print(f"selected: {result.weights} ({result.normalization}), params {result.params}")
        scorers["TunedBlend"] = result.build()
        selection = {
            "params": result.params,
            "weights": result.weights,
            "normalization": result.normalization,
            "validation_folds_N@10_R@10": result.validation,
        }
    rows = classic_table(split, scorers)
    wall = time.perf_counter() - start
    print(format_table(rows))
    print(f"wall time {wall:.1f} s")
    if args.out:
        payload = {"protocol": "A", "dataset": source.meta(), "rows": rows, "selection": selection, "wall_s": wall}
        args.out.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
