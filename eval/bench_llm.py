"""The floor benchmark: how close the product's model calls come to what the hardware can do.

For each local model, on this machine:

1. **Rates**: prompt evaluation and generation tokens/s of llama.cpp itself (greedy, no grammar, every
   usable core; generation is timed on a 128-token run after a 512-token prompt), median of ``--runs``.
2. **The product's own calls**: one ``recommend()`` with a typed request (intent, profile, rerank +
   explanations) and one item-feature extraction are run through the product's client, which records
   the exact requests it sends. Each is then replayed ``--runs`` times from an empty context:
   - *product*: the product's backend call (``LlamaCppBackend.chat`` under a deadline, as in
     ``recommend()``: chat template, schema grammar, streaming), with the lazy grammar check;
   - *full grammar*: the same call with the whole vocabulary filtered by the grammar at every step
     (llama-cpp-python's default, the product before the lazy check);
   - *floor*: the same prompt tokens evaluated and the same number of tokens generated greedily
     without grammar or chat machinery (``direct``), and ``tokens / rates`` (``rates``).
   and the table gives per kind the token counts, the medians, and product / floor.

Results go to ``eval/results/bench-llm-<model>.md`` (and ``.json``) with the machine (CPU model, cores)
and its load (``uptime`` before and after): on a shared machine, compare ratios from one run.

    python eval/bench_llm.py --models small,quality --runs 3 [--user 1] [--out eval/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
REQUEST = "something lighter from the 90s to cheer me up"  # words the rules leave unread: the model reads it
KINDS = {"intent": "intent", "user_profile": "profile", "rerank": "rerank + explain",
         "rerank_no_history": "rerank + explain", "item_features": "item features"}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        cpu = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), cpu)
    except (OSError, subprocess.SubprocessError):
        pass
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load average {os.getloadavg()}"


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


class Floor:
    """llama.cpp's own work on a loaded model: evaluate tokens, generate greedily without grammar."""

    def __init__(self, llm) -> None:
        import llama_cpp

        self.llm, self.lib = llm, llama_cpp
        self.n_vocab = llm.n_vocab()

    def _next(self) -> int:
        logits = np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.llm._ctx.ctx, -1), shape=(self.n_vocab,))
        return int(np.argmax(logits))

    def run(self, prompt: list[int], generate: int) -> tuple[float, float]:
        """Seconds to evaluate ``prompt`` from an empty context, and to then generate ``generate`` tokens."""
        self.llm.reset()
        t0 = time.perf_counter()
        self.llm.eval(prompt)
        t1 = time.perf_counter()
        for _ in range(generate):
            self.llm.eval([self._next()])
        return t1 - t0, time.perf_counter() - t1

    def timed(self, prompt: list[int], generate: int) -> tuple[float, float]:
        """(wall, CPU) seconds of :meth:`run`."""
        c0, t0 = time.process_time(), time.perf_counter()
        self.run(prompt, generate)
        return time.perf_counter() - t0, time.process_time() - c0

    def rates(self, runs: int, prompt_len: int = 512, gen_len: int = 128) -> dict:
        text = " ".join(f"item {i}: a film about people, places and time." for i in range(400))
        tokens = self.llm.tokenize(text.encode(), add_bos=True, special=False)[:prompt_len]
        pp, tg = [], []
        for _ in range(runs):
            p, g = self.run(tokens, gen_len)
            pp.append(len(tokens) / p)
            tg.append(gen_len / g)
        return {"prompt_tok_s": round(statistics.median(pp), 1), "gen_tok_s": round(statistics.median(tg), 1),
                "prompt_tokens": len(tokens), "generated_tokens": gen_len, "runs": runs}


def record_calls(rec, client, user: str, request: str) -> list[tuple[str, object]]:
    """The requests one recommend() with a typed request and one feature extraction send."""
    from promptrec.knowledge import ItemFeatureExtractor

    with client.recording() as calls:
        rec.recommend(user, k=10, request=request)
        item = rec.dataset.catalog[rec.dataset.interactions.history(user)[-1]]
        ItemFeatureExtractor(client, rec.features).extract_one(item)
    return list(calls)


def bench_model(model: str, runs: int, user: str, request: str, say, threads: int | None = None) -> dict:
    from promptrec import Recommender, Settings
    from promptrec.knowledge.profile_store import ProfileStore
    from promptrec.llm import LLMCache, make_client

    settings = Settings()
    llm_settings = {"model": model, **({"n_threads": threads} if threads else {})}
    # a long deadline: on a busy machine the product's 120 s would cut the recorded calls short
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update=llm_settings), "deadline_s": 7200.0})
    before = uptime()
    t0 = time.perf_counter()
    client = make_client(settings, cache=LLMCache(None))
    load_s = time.perf_counter() - t0
    backend = client.backend
    if not hasattr(backend, "_llm"):
        raise SystemExit(f"error: {model!r} is not a local llama.cpp model; the floor benchmark needs one")
    llm = backend._llm
    floor = Floor(llm)
    say(f"[{model}] loaded {client.model_id} in {load_s:.1f} s; {backend.n_threads} threads; measuring rates")
    rates = floor.rates(runs)
    say(f"[{model}] rates {rates}; recording the product's calls (user {user}, request {request!r})")
    rec = Recommender(settings, llm=client)
    scratch = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    rec.__dict__["profile_store"] = ProfileStore(scratch / "profiles.jsonl")  # empty: the profile call is made
    calls = record_calls(rec, client, user, request)
    rows = []
    for name, call in calls:
        kind = KINDS.get(name, name)
        timed = call.model_copy(update={"timeout_s": settings.deadline_s})  # the product's streaming path
        product, full, direct = [], [], []
        cpu = {"product": [], "full": [], "floor": []}
        tokens = None
        for n in range(runs):
            for lazy in (True, False):
                llm.lazy_grammar = lazy
                backend.reset()
                c0 = time.process_time()
                reply = backend.chat(timed)
                (product if lazy else full).append(reply.seconds)
                cpu["product" if lazy else "full"].append(time.process_time() - c0)
                if lazy:
                    tokens = (reply.prompt_tokens, reply.completion_tokens)
                    prompt_ids = [int(t) for t in llm.input_ids[: reply.prompt_tokens]]
            wall, cpu_s = floor.timed(prompt_ids, tokens[1])
            direct.append(wall)
            cpu["floor"].append(cpu_s)
            say(f"[{model}] {kind} run {n + 1}/{runs}: product {product[-1]:.2f} s, full grammar {full[-1]:.2f} s, "
                f"floor {direct[-1]:.2f} s ({tokens[0]} + {tokens[1]} tokens)")
        llm.lazy_grammar = True
        by_rates = tokens[0] / rates["prompt_tok_s"] + tokens[1] / rates["gen_tok_s"]
        rows.append({
            "kind": kind, "template": name, "prompt_tokens": tokens[0], "completion_tokens": tokens[1],
            "product_s": median(product), "full_grammar_s": median(full), "floor_direct_s": median(direct),
            "floor_rates_s": round(by_rates, 3),
            "cpu_s": {name: median(values) for name, values in cpu.items()},
            "cpu_product_over_floor": round(median(cpu["product"]) / median(cpu["floor"]), 2),
            "cpu_full_grammar_over_floor": round(median(cpu["full"]) / median(cpu["floor"]), 2),
            "product_over_floor": round(median(product) / median(direct), 2),
            "product_over_rates_floor": round(median(product) / by_rates, 2),
            "full_grammar_over_floor": round(median(full) / median(direct), 2),
            "runs": runs, "product_all_s": [round(x, 3) for x in product], "full_grammar_all_s": [round(x, 3) for x in full],
            "floor_all_s": [round(x, 3) for x in direct],
        })
    return {"model": client.model_id, "alias": model, "machine": machine(), "threads": backend.n_threads,
            "load_before": before, "load_after": uptime(), "model_load_s": round(load_s, 2), "rates": rates,
            "user": user, "request": request, "rows": rows,
            "command": "python eval/bench_llm.py " + " ".join(sys.argv[1:])}


def markdown(report: dict) -> str:
    m, r = report["machine"], report["rates"]
    lines = [
        f"# Floor benchmark: {report['alias']} (`{report['model']}`)", "",
        f"- machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), host {m['host']}; "
        f"{report['threads']} llama.cpp threads",
        f"- load before: `{report['load_before']}`", f"- load after: `{report['load_after']}`",
        f"- command: `{report['command']}`",
        f"- rates (llama.cpp, greedy, no grammar, median of {r['runs']}): prompt {r['prompt_tok_s']} tok/s "
        f"({r['prompt_tokens']}-token prompt), generation {r['gen_tok_s']} tok/s ({r['generated_tokens']} tokens)",
        f"- calls: one `recommend('{report['user']}', k=10, request={report['request']!r})` and one item-feature "
        "extraction, recorded through the client and replayed from an empty context; medians over runs", "",
        "| call kind | prompt tok | completion tok | product s | full grammar s | floor s (direct) | floor s (rates) "
        "| product / floor | full grammar / floor | CPU s: product / full grammar / floor | CPU product / floor "
        "| CPU full grammar / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['kind']} | {row['prompt_tokens']} | {row['completion_tokens']} | {row['product_s']:.2f} "
                     f"| {row['full_grammar_s']:.2f} | {row['floor_direct_s']:.2f} | {row['floor_rates_s']:.2f} "
                     f"| {row['product_over_floor']:.2f}× | {row['full_grammar_over_floor']:.2f}× "
                     f"| {row['cpu_s']['product']:.2f} / {row['cpu_s']['full']:.2f} / {row['cpu_s']['floor']:.2f} "
                     f"| {row['cpu_product_over_floor']:.2f}× | {row['cpu_full_grammar_over_floor']:.2f}× |")
    lines += ["", "*product*: `LlamaCppBackend.chat` as `recommend()` calls it (chat template, schema grammar checked "
              "lazily, streaming under a deadline); *full grammar*: the same with the grammar applied to the whole "
              "vocabulary at every step (llama-cpp-python's default, what the product did before); *floor (direct)*: "
              "the same prompt tokens evaluated and as many tokens generated greedily, no grammar; *floor (rates)*: "
              "tokens / the rates above. On a shared machine absolute seconds move with the load; the ratios are "
              "measured in the same run, interleaved. CPU s is this process's CPU time (all its threads): with one "
              "thread (`--threads 1`) it hardly moves with the machine's load; with more, llama.cpp's waiting "
              "threads spin and count.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="small,quality", help="comma-separated: small, medium, quality or .gguf paths")
    parser.add_argument("--runs", type=int, default=3, help="replays per call kind (medians are reported; at least 3)")
    parser.add_argument("--user", default="1", help="the user whose recommend() calls are recorded")
    parser.add_argument("--request", default=REQUEST, help="the typed request of that recommend()")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (default: the product's, every usable core)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for bench-llm-<model>.md/.json")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        report = bench_model(model, args.runs, args.user, args.request, say, args.threads)
        name = Path(model).stem if model.endswith(".gguf") else model
        name += f"-{args.threads}t" if args.threads else ""
        (args.out / f"bench-llm-{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / f"bench-llm-{name}.md").write_text(markdown(report))
        print(markdown(report))


if __name__ == "__main__":
    main()
