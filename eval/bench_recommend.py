"""Time warm `Recommender.recommend()` calls with a local model.

Warm means the model is loaded, the collaborative model fitted and the vector store open (the
first call pays for that and is reported apart). Each timed call is for a new user, so the LLM is
really called (an in-memory cache is used, so earlier runs do not help); a repeated call for the
same user is then timed too (served from the cache).

    python eval/bench_recommend.py --model small --users 5 [--dataset NAME_OR_FOLDER]

The client is the product's (make_client: configured seed and temperature), with an in-memory cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from promptrec import Recommender, Settings
from promptrec.llm import LLMCache, make_client


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{platform.node()} · {cpu} · {os.cpu_count()} cores · load {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", help="small | medium | quality | path.gguf")
    parser.add_argument("--users", type=int, default=5, help="timed users (after one warm-up user)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: PROMPTREC_DATASET or ml-latest-small)")
    args = parser.parse_args()

    settings = Settings()
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": args.model}),
                                           **({"dataset": args.dataset} if args.dataset else {})})
    start = time.perf_counter()
    client = make_client(settings, cache=LLMCache(None))
    rec = Recommender(settings, llm=client)
    users = rec.dataset.interactions.users[: args.users + 1]
    first = rec.recommend(users[0], k=args.k)
    cold = time.perf_counter() - start
    warm, cached, stages = [], [], []
    for user in users[1:]:
        t0 = time.perf_counter()
        result = rec.recommend(user, k=args.k)
        warm.append(time.perf_counter() - t0)
        stages.append(result.timings)
        t0 = time.perf_counter()
        rec.recommend(user, k=args.k)
        cached.append(time.perf_counter() - t0)
    report = {
        "machine": machine(),
        "dataset": rec.dataset.name,
        "model": client.model_id,
        "first_call_s (load + fit + first user)": round(cold, 2),
        "warm_call_median_s": round(statistics.median(warm), 2),
        "warm_call_min_max_s": [round(min(warm), 2), round(max(warm), 2)],
        "cached_rerun_median_s": round(statistics.median(cached), 3),
        "stage_median_s": {k: round(statistics.median(s[k] for s in stages), 2) for k in stages[0]},
        "users": len(warm),
        "llm": client.stats.summary(),
        "first_user_ordered_by": first.ordered_by,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
