"""Process cold start: what a new `promptrec` process pays before its first answer, stage by stage.

Each run is a fresh Python process (``--runs`` of them; medians reported) that times, in order:
importing promptrec, loading the dataset, its identity (content hash), opening the vector store,
loading (or fitting) the collaborative model, loading the local model, building the engine, and
the first ``recommend()`` without the model (fused order) and with it (profile and rerank calls;
replies to an in-memory cache, so earlier runs do not help).

    python eval/bench_startup.py --model small --runs 3 [--out eval/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def child(model: str, user: str, with_llm: bool) -> dict:
    """The timed stages of one fresh process."""
    times: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[name] = round(now - t, 3)
        t = now

    from promptrec import Recommender, Settings
    lap("import promptrec")
    settings = Settings()
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": model})})
    from promptrec.llm import LLMCache, make_client
    rec = Recommender(settings, llm=False)
    rec.dataset
    lap("load dataset")
    rec.state
    lap("dataset identity")
    rec.ensure_index()
    lap("open vector store")
    rec.collab
    lap("collaborative model")
    rec.engine
    lap("build engine")
    rec.recommend(user, k=10)
    lap("first recommend, no model")
    if with_llm:
        client = make_client(settings, cache=LLMCache(None))
        lap("load model")
        with_model = Recommender(settings, dataset=rec.dataset, llm=client, embedder=rec.embedder)
        with_model.__dict__.update(state=rec.state, store=rec.store, collab=rec.collab)
        import tempfile

        from promptrec.knowledge.profile_store import ProfileStore
        with_model.__dict__["profile_store"] = ProfileStore(Path(tempfile.mkdtemp()) / "profiles.jsonl")
        with_model.recommend(user, k=10)
        lap("first recommend with the model (profile + reasons)")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", help="small | medium | quality | path.gguf")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes (medians reported)")
    parser.add_argument("--user", default="1")
    parser.add_argument("--no-llm", action="store_true", help="skip loading the model and the model's first answer")
    parser.add_argument("--out", type=Path, default=None, help="write bench-startup-<model>.md/.json into this folder")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.user, not args.no_llm)))
        return
    load_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    runs = []
    for n in range(args.runs):
        command = [sys.executable, __file__, "--child", "--model", args.model, "--user", args.user]
        out = subprocess.run(command + (["--no-llm"] if args.no_llm else []), capture_output=True, text=True,
                             env=os.environ.copy())
        if out.returncode != 0:
            sys.exit(f"error: the timed process failed:\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"run {n + 1}/{args.runs}: {runs[-1]}", file=sys.stderr, flush=True)
    stages = {name: round(statistics.median(r[name] for r in runs), 3) for name in runs[0]}
    report = {"model": args.model, "runs": len(runs), "median_s": stages, "all": runs,
              "total_median_s": round(sum(stages.values()), 2), "load_before": load_before,
              "load_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
              "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name")), "?"), "cores": os.cpu_count(),
              "command": "python eval/bench_startup.py " + " ".join(sys.argv[1:])}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = Path(args.model).stem if args.model.endswith(".gguf") else args.model
        (args.out / f"bench-startup-{name}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
