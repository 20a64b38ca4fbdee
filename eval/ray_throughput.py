"""Throughput of the Ray item-feature job for 1, 2 and 4 workers (items/s), with a real local model.

Each worker count runs on a fresh local Ray cluster and a fresh state folder (no LLM cache, no
features), over the same most popular items of ml-latest-small; every worker loads its own llama.cpp
model with ``n_threads`` threads (loading is counted: it is part of a real job). The in-process job
(``ItemFeatureExtractor``, no Ray) is timed too, as the baseline.

    python eval/ray_throughput.py --model small --items 24 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from promptrec import Recommender, Settings
from promptrec.distributed import popular_items, run_feature_job
from promptrec.knowledge import FeatureStore, ItemFeatureExtractor
from promptrec.llm import LLMCache, LLMClient, make_backend


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{platform.node()} · {cpu} · {os.cpu_count()} cores · {os.getloadavg()[0]:.1f} load at start"


def in_process(settings: Settings, items) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        client = LLMClient(make_backend(settings), LLMCache(None), seed=settings.seed)
        report = ItemFeatureExtractor(client, FeatureStore(Path(tmp) / "f.jsonl")).run(items)
        seconds = time.perf_counter() - start
    return {"workers": "in-process", "seconds": round(seconds, 2), "items_per_s": round(len(items) / seconds, 3),
            "extracted": report.extracted, "failed": report.failed}


def with_ray(settings: Settings, items, workers: int, shard_size: int) -> dict:
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        job_settings = settings.model_copy(update={"state_dir": Path(tmp)})
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            load_before = os.getloadavg()[0]
            report = run_feature_job(job_settings, items, FeatureStore(Path(tmp) / "f.jsonl"), workers=workers,
                                     shard_size=shard_size)
        finally:
            ray.shutdown()
    return {"workers": workers, "seconds": report.seconds, "items_per_s": report.items_per_s,
            "extracted": report.written - report.failed, "failed": report.failed,
            "worker_processes": len(report.per_worker), "load_at_start": round(load_before, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", help="small | medium | quality | path.gguf")
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--shard-size", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads per worker")
    parser.add_argument("--out", default="eval/results/ray-throughput.json")
    args = parser.parse_args()

    host = machine()
    settings = Settings(llm={"model": args.model, "n_threads": args.threads, "n_ctx": 2048})
    items = popular_items(Recommender(settings, llm=False).dataset, args.items)
    rows = [in_process(settings, items)]
    print(rows[-1], flush=True)
    for workers in args.workers:
        rows.append(with_ray(settings, items, workers, args.shard_size))
        print(rows[-1], flush=True)
    result = {"machine": host, "model": args.model, "items": len(items), "shard_size": args.shard_size,
              "threads_per_worker": args.threads, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
