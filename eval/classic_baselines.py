"""Protocol A table (validation and test) of every classic scorer and the tuned classic blend.

Usage:
    python eval/classic_baselines.py [--ratings PATH] [--tune] [--folds 3] [--out FILE.json]

``--tune`` reruns the validation-only selection (promptrec.evaluation.tuning) and adds the
selected blend to the table; without it the stored selection (promptrec.collab.presets) is used.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from promptrec.collab import classic_scorers
from promptrec.evaluation.classic import classic_table, format_table
from promptrec.evaluation.splits import load_ratings_frame, protocol_a_split
from promptrec.evaluation.tuning import tune_classic_blend

DEFAULT_RATINGS = (
    Path(__file__).resolve().parents[1].parent / "shared/datasets/ml-latest-small/ratings.csv"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=Path, default=DEFAULT_RATINGS)
    parser.add_argument("--tune", action="store_true", help="rerun the validation selection")
    parser.add_argument("--folds", type=int, default=3, help="validation folds for --tune")
    parser.add_argument("--out", type=Path, help="write rows and selection as JSON")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    split = protocol_a_split(load_ratings_frame(args.ratings))
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
        payload = {"protocol": "A", "rows": rows, "selection": selection, "wall_s": wall}
        args.out.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
