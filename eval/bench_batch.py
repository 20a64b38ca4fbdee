"""Batch throughput: item features (items/s) and user profiles (users/s), one request at a time through
the product's in-process backend (llama-cpp-python) versus the parallel path (llama.cpp's server engine
with parallel slots, xllamacpp), on the same items and users, the same model, in the same run.

    python eval/bench_batch.py --model small --items 16 --users 8 --parallel 4
    python eval/bench_batch.py --model medium --items 8 --users 4

Replies are not cached between arms (each arm has its own in-memory reply cache), so every arm asks
the model every request. Besides the one-at-a-time product backend and the parallel path, the same
server engine with one slot is timed, so the gain can be split into engine and batching. Wall time
and this process's CPU time are both reported (the machine may be shared: CPU seconds per unit are
the figure least moved by other load), with the CPU model, core count and load average before and
after. Writes eval/results/bench-batch[-MODEL].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "node": platform.node()}


def load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"loadavg {os.getloadavg()}"


def timed(fn) -> tuple[object, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", help="small | medium | quality | a .gguf path (default small)")
    parser.add_argument("--items", type=int, default=16, help="items to featurize per arm (split items, most popular first)")
    parser.add_argument("--users", type=int, default=8, help="users to profile per arm")
    parser.add_argument("--offset", type=int, default=0, help="skip this many items/users (pick fresh ones)")
    parser.add_argument("--parallel", type=int, default=4, help="parallel slots of the parallel path")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for every arm (default: all cores)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    parser.add_argument("--name", default=None, help="result file name (default bench-batch[-MODEL])")
    args = parser.parse_args(argv)

    from promptrec.distributed.jobs import popular_items
    from promptrec.distributed.profiles import ProfileStore
    from promptrec.evaluation.knowledge import profile_history
    from promptrec.evaluation.progress import progress_bars
    from promptrec.evaluation.source import load_source
    from promptrec.evaluation.splits import protocol_a_split
    from promptrec.knowledge import FeatureStore
    from promptrec.knowledge.batch import run_feature_batch, run_profile_batch
    from promptrec.llm import LLMCache, LLMClient, resolve_gguf
    from promptrec.llm.llamacpp import LlamaCppBackend
    from promptrec.llm.parallel import ParallelLlamaBackend
    from promptrec.settings import Settings

    settings = Settings()
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": args.model})})
    source = load_source(settings)
    dataset = source.dataset
    split = protocol_a_split(dataset.interactions.frame)
    in_split = set(split.items)
    items = [i for i in popular_items(dataset, -1) if i.item_id in in_split][args.offset: args.offset + args.items]
    users = []
    for u in range(args.offset, min(split.n_users, args.offset + args.users)):
        history = profile_history(split, u)
        ratings = dataset.interactions.ratings(split.users[u])
        users.append((split.users[u], history, {i: ratings[i] for i in history if i in ratings}))
    path = resolve_gguf(args.model, settings.state_dir / "models")
    backends = {
        "one at a time (product backend, llama-cpp-python)": lambda: LlamaCppBackend(
            path, n_ctx=settings.llm.n_ctx, n_threads=args.threads, seed=settings.seed),
        "server engine, 1 slot (xllamacpp)": lambda: ParallelLlamaBackend(
            path, n_parallel=1, n_threads=args.threads, seed=settings.seed),
        f"parallel path, {args.parallel} slots (xllamacpp)": lambda: ParallelLlamaBackend(
            path, n_parallel=args.parallel, n_threads=args.threads, seed=settings.seed),
    }
    before = load()
    rows = []
    with progress_bars() as (bar, say), tempfile.TemporaryDirectory() as tmp:
        for n, (arm, make) in enumerate(backends.items()):
            backend = make()
            for kind in ("features", "profiles"):
                client = LLMClient(backend, LLMCache(None), seed=settings.seed)  # nothing cached across arms
                if kind == "features":
                    store = FeatureStore(Path(tmp) / f"f{n}.jsonl")
                    report, wall, cpu = timed(lambda: run_feature_batch(
                        client, items, store, progress=bar(f"{arm}: features", len(items))))
                    units = len(items)
                else:
                    store = ProfileStore(Path(tmp) / f"p{n}.jsonl")
                    report, wall, cpu = timed(lambda: run_profile_batch(
                        client, dataset.catalog, users, store, token_budget=settings.profile.token_budget,
                        progress=bar(f"{arm}: profiles", len(users))))
                    units = len(users)
                rows.append({"arm": arm, "kind": kind, "units": units, "workers": report.workers,
                             "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                             "per_second": round(units / wall, 4), "cpu_s_per_unit": round(cpu / units, 3),
                             "done": report.done, "failed": report.failed, "rejected": sum(report.rejected.values()),
                             "completion_tokens": report.completion_tokens, "prompt_tokens": report.prompt_tokens})
                say(f"{arm} {kind}: {units} in {wall:.1f} s wall, {cpu:.1f} s CPU; {report.line()}")
            del backend
    after = load()
    base = {kind: next(r for r in rows if r["kind"] == kind) for kind in ("features", "profiles")}
    for r in rows:
        b = base[r["kind"]]
        r["speedup_wall"] = round(r["per_second"] / b["per_second"], 2)
        r["speedup_cpu"] = round(b["cpu_s_per_unit"] / r["cpu_s_per_unit"], 2) if r["cpu_s_per_unit"] else None
    payload = {"model": args.model, "model_file": path.name, "machine": machine(), "load_before": before,
               "load_after": after, "threads": args.threads or os.cpu_count(), "items": [i.item_id for i in items],
               "users": [u for u, _, _ in users], "rows": rows}
    name = args.name or ("bench-batch" + ("" if args.model == "small" else f"-{Path(args.model).stem}"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [f"# {name}: batch throughput, {path.name}", "",
             f"Machine: {payload['machine']['cpu']}, {payload['machine']['cores']} cores; {payload['threads']} threads "
             f"per arm. Load (`uptime`) before: `{before}`; after: `{after}`.", "",
             f"Command: `python eval/bench_batch.py --model {args.model} --items {args.items} --users {args.users} "
             f"--offset {args.offset} --parallel {args.parallel}" + (f" --threads {args.threads}" if args.threads else "") + f"`. Same {len(items)} split items (most popular first) and "
             f"{len(users)} users (history at the profile cut) in every arm; no reply cache shared between arms.", "",
             "| arm | kind | units | wall s | units/s | × one-at-a-time (wall) | CPU s/unit | × (CPU) | valid | degenerate | failed | completion tokens |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['kind']} | {r['units']} | {r['wall_s']} | {r['per_second']:.3f} | "
                     f"{r['speedup_wall']}× | {r['cpu_s_per_unit']} | {r['speedup_cpu']}× | {r['done']} | {r['rejected']} | "
                     f"{r['failed']} | {r['completion_tokens']} |")
    lines += ["", "Units/s is wall-clock throughput in this run; CPU s/unit is this process's CPU time per item or user "
              "(less sensitive to other processes on a shared machine). 'valid' passed the schema and the degenerate "
              "check (`promptrec.knowledge.degenerate`)."]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
