"""Protocol B position bias of the LLM rerank: the target + 19 seeded random negatives, the target
placed at positions 0, 5, 10, 15 and 19; N@10 per position and the spread, without and with
permutation averaging (the candidate order and its reverse).

    python eval/position_bias.py --llm small --users 20

Writes eval/results/NAME.json and .md. Records are resumable; replies are cached.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.progress import Progress

from promptrec.data import load_dataset
from promptrec.evaluation.position_bias import POSITIONS, protocol_b_baselines, run_position_bias, summarize
from promptrec.evaluation.product import split_catalog
from promptrec.evaluation.runner import sample_users
from promptrec.evaluation.splits import protocol_a_split
from promptrec.llm import LLMCache, LLMClient, make_backend
from promptrec.llm.resolve import file_sha256
from promptrec.prompts import load_prompt
from promptrec.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", default="small", help="small | medium | quality | path.gguf")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--name", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    settings = Settings(llm={"model": args.llm})
    dataset = load_dataset("ml-latest-small", settings.data_dir, settings.download)
    split = protocol_a_split(dataset.interactions.frame)
    backend = make_backend(settings)
    client = LLMClient(backend, LLMCache(settings.llm_cache_path), seed=settings.seed)
    users = sample_users(split.n_users, args.users, settings.seed)
    name = args.name or f"protocol-b-position-bias-{Path(args.llm).stem}-{args.users}u"
    path = settings.state_dir / "eval" / "position-bias" / f"{client.model_id}-{load_prompt('rerank').hash}.jsonl"
    with Progress() as progress:
        task = progress.add_task("Protocol B", total=len(users) * len(POSITIONS) * 2)
        records = run_position_bias(split, split_catalog(split, dataset), client, users, path, seed=settings.seed,
                                    progress=lambda n: progress.advance(task, n))
    payload = {
        "protocol": "B (target + 19 random unseen items, seeded), test targets",
        "llm": summarize(records),
        "baselines_same_candidates": protocol_b_baselines(split, users, settings.seed),
        "meta": {"model_id": client.model_id, "model_sha256": file_sha256(backend.model_path),
                 "prompt_hash": load_prompt("rerank").hash, "seed": settings.seed, "users": len(users),
                 "llm_stats_this_run": client.stats.summary(), "wall_s": round(time.perf_counter() - start, 1)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [f"# {name}", "", f"Protocol B, {len(users)} users, model {client.model_id}.", "",
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
