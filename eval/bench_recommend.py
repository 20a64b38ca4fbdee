"""Time warm `Recommender.recommend()` calls with a local model.

Warm means the model is loaded, the collaborative model fitted, the vector store open and the
user's profile already made and stored (profiles are offline knowledge: the profile job, or an
earlier call, made them). Per user, in this order:

- *never-seen history*: the first call for a user whose profile is not stored yet: one profile call
  more than a warm call (the profile is stored by it);
- *warm*: the same call again once the profile is stored (read back from disk), with an empty reply
  cache and an empty llama.cpp context, so the rerank really runs and reuses nothing: the warm cost of
  an answer;
- *cached rerun*: the same call again (every reply from the cache);
- *follow-up chat turn*: a typed request after the warm answer ("something lighter"), as `promptrec chat`
  sends it, with an empty reply cache but the model's kept states (``llm.prefix_cache_mb``) as a chat
  process has them: seconds until the list is there (the request read by the model, retrieval) and
  until the first reason arrives (``recommend_stream`` events).

Replies go to in-memory caches, so earlier runs do not help.

The first call of the process (model load, fitting, first user) is reported apart. Profiles are
stored in a scratch file, so the benchmark neither uses nor changes the product's stored profiles.

    python eval/bench_recommend.py --model small --users 5 [--dataset NAME_OR_FOLDER] [--out eval/results]
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
from collections import Counter
import time
from pathlib import Path

from promptrec import Recommender, Settings
from promptrec.knowledge.profile_store import ProfileStore
from promptrec.llm import LLMCache, make_client

RESULTS = Path(__file__).resolve().parent / "results"
FOLLOW_UP = "something lighter"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    try:
        load = subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        load = f"load {os.getloadavg()[0]:.1f}"
    return f"{platform.node()} · {cpu} · {os.cpu_count()} cores · {load}"


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", help="small | medium | quality | path.gguf")
    parser.add_argument("--users", type=int, default=5, help="timed users (after one warm-up user)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: PROMPTREC_DATASET or ml-latest-small)")
    parser.add_argument("--out", type=Path, default=None, help="write bench-recommend-<name>.md/.json into this folder")
    parser.add_argument("--name", default=None, help="result name (default: the model)")
    args = parser.parse_args()
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

    settings = Settings()
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": args.model}),
                                           **({"dataset": args.dataset} if args.dataset else {})})
    loaded_before = machine()
    start = time.perf_counter()
    client = make_client(settings, cache=LLMCache(None))
    rec = Recommender(settings, llm=client)
    scratch = Path(tempfile.mkdtemp(prefix="bench-recommend-"))
    rec.__dict__["profile_store"] = ProfileStore(scratch / "profiles.jsonl")
    users = rec.dataset.interactions.users[: args.users + 1]
    first = rec.recommend(users[0], k=args.k)
    cold = time.perf_counter() - start
    say(f"first call (load + fit + first user): {cold:.1f} s")
    unseen, warm, cached, stages, unseen_stages, not_stored = [], [], [], [], [], []
    turn_list, turn_first, turn_total, turn_revised = [], [], [], []
    warm_kept: list[float] = []  # warm, after another person's answer (the model states a running process keeps)
    shown_by: Counter = Counter()  # how the warm answers' items were explained (model, evidence, refused, ...)
    reset = getattr(client.backend, "reset", lambda: None)  # no prompt prefix left from an earlier call
    for n, user in enumerate(users[1:], start=1):
        client.cache = LLMCache(None)
        reset()
        t0 = time.perf_counter()
        result = rec.recommend(user, k=args.k)  # profile not stored yet: made and stored by this call
        unseen.append(time.perf_counter() - t0)
        unseen_stages.append(result.timings)
        rec._profiles.clear()  # the stored profile is read back from disk, as another process would
        client.cache = LLMCache(None)
        reset()
        t0 = time.perf_counter()
        result = rec.recommend(user, k=args.k)
        warm.append(time.perf_counter() - t0)
        stages.append(result.timings)
        shown_by.update({n: v for n, v in result.explanations.model_dump().items() if n != "distinct_cited"})
        if result.profile is None or result.profile.source != "llm":
            not_stored.append(user)  # the model's profile was refused: its stored fallback was used
        client.cache = LLMCache(None)
        reset()
        rec.recommend(users[0], k=1)  # another person's answer came first: its model states are kept
        client.cache = LLMCache(None)
        t0 = time.perf_counter()
        rec.recommend(user, k=args.k)
        warm_kept.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rec.recommend(user, k=args.k)
        cached.append(time.perf_counter() - t0)
        client.cache = LLMCache(None)  # a new request: nothing cached, the kept model states stay
        t0 = time.perf_counter()
        first_reason = None
        revised_at = None
        for event in rec.recommend_stream(user, k=args.k, request=FOLLOW_UP):
            if event.kind == "list" and not event.result.revised:
                turn_list.append(time.perf_counter() - t0)
            elif event.kind == "list":  # the model's reading changed the list the rules' reading showed
                revised_at = time.perf_counter() - t0
            elif event.kind == "reason" and first_reason is None:
                first_reason = time.perf_counter() - t0
        turn_total.append(time.perf_counter() - t0)
        turn_first.append(first_reason if first_reason is not None else turn_total[-1])
        turn_revised.append(revised_at)
        say(f"user {user} ({n}/{len(users) - 1}): never-seen {unseen[-1]:.1f} s, warm {warm[-1]:.1f} s, "
            f"cached {cached[-1]:.2f} s; warm stages {result.timings}")
    report = {
        "machine_before": loaded_before,
        "machine_after": machine(),
        "dataset": rec.dataset.name,
        "model": client.model_id,
        "threads": getattr(client.backend, "n_threads", None),
        "first_call_s (load + fit + first user)": round(cold, 2),
        "warm_call_median_s": median(warm),
        "warm_call_min_max_s": [round(min(warm), 2), round(max(warm), 2)],
        "never_seen_history_median_s": median(unseen),
        "never_seen_min_max_s": [round(min(unseen), 2), round(max(unseen), 2)],
        "cached_rerun_median_s": round(statistics.median(cached), 3),
        "warm_after_another_answer_median_s": median(warm_kept),
        "warm_after_another_answer_min_max_s": [round(min(warm_kept), 2), round(max(warm_kept), 2)],
        "warm_explanations": dict(shown_by),
        "explain_stop_after_refused": rec.settings.explain.stop_after_refused,
        "gave_up_on_model_reasons": bool(getattr(rec.engine.explainer, "gave_up", False)),
        "follow_up_turn": {"request": FOLLOW_UP, "list_median_s": median(turn_list),
                           "first_reason_median_s": median(turn_first), "total_median_s": median(turn_total),
                           "list_s": [round(x, 2) for x in turn_list], "first_reason_s": [round(x, 2) for x in turn_first],
                           "revised_list_s": [None if x is None else round(x, 2) for x in turn_revised]},
        "prefix_cache_mb": settings.llm.prefix_cache_mb,
        "warm_stage_median_s": {k: median([s[k] for s in stages if k in s]) for k in stages[0]},
        "never_seen_stage_median_s": {k: median([s[k] for s in unseen_stages if k in s]) for k in unseen_stages[0]},
        "users": len(warm),
        "users_whose_profile_fell_back (stored fallback used)": not_stored,
        "llm": client.stats.summary(),
        "first_user_ordered_by": first.ordered_by,
        "command": "python eval/bench_recommend.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = args.name or (Path(args.model).stem if args.model.endswith(".gguf") else args.model)
        (args.out / f"bench-recommend-{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / f"bench-recommend-{name}.md").write_text(markdown(report))


def markdown(report: dict) -> str:
    return "\n".join([
        f"# Warm recommend(): `{report['model']}`", "",
        f"- machine before: {report['machine_before']}", f"- machine after: {report['machine_after']}",
        f"- {report['threads']} llama.cpp threads; dataset {report['dataset']}; {report['users']} users; "
        f"command `{report['command']}`; explain.stop_after_refused = {report.get('explain_stop_after_refused')}", "",
        "| figure | median s | min–max s |", "|---|---:|---:|",
        "| warm (profile stored, empty model context: one reason call per shown item) | "
        f"{report['warm_call_median_s']} | {report['warm_call_min_max_s'][0]}–{report['warm_call_min_max_s'][1]} |",
        "| warm, after another person's answer (kept model states, as in a running process) | "
        f"{report['warm_after_another_answer_median_s']} | {report['warm_after_another_answer_min_max_s'][0]}–"
        f"{report['warm_after_another_answer_min_max_s'][1]} |",
        f"| never-seen history (profile + reason calls) | {report['never_seen_history_median_s']} | "
        f"{report['never_seen_min_max_s'][0]}–{report['never_seen_min_max_s'][1]} |",
        f"| cached rerun (every reply from the cache) | {report['cached_rerun_median_s']} | |",
        f"| first call of the process (load + fit + first user) | {report['first_call_s (load + fit + first user)']} | |",
        f"| follow-up chat turn (\"{report['follow_up_turn']['request']}\"): list on screen | "
        f"{report['follow_up_turn']['list_median_s']} | {min(report['follow_up_turn']['list_s'])}–{max(report['follow_up_turn']['list_s'])} |",
        f"| follow-up chat turn: first reason | {report['follow_up_turn']['first_reason_median_s']} | "
        f"{min(report['follow_up_turn']['first_reason_s'])}–{max(report['follow_up_turn']['first_reason_s'])} |",
        f"| follow-up chat turn: every reason | {report['follow_up_turn']['total_median_s']} | |",
        "", f"Warm stage medians: `{report['warm_stage_median_s']}`; never-seen: `{report['never_seen_stage_median_s']}`.",
        "", f"Warm answers' items by explanation: `{report['warm_explanations']}`"
        + ("; the explainer stopped asking this model for reasons (its last reasons were all refused by the quality "
           "gate, `explain.stop_after_refused`), so the warm figure holds no reason calls."
           if report['gave_up_on_model_reasons'] else "."),
        "", "Follow-up turn: the list on screen is the one read from the request by rules; the model's reading "
        f"follows and replaced it in {sum(x is not None for x in report['follow_up_turn']['revised_list_s'])} of "
        f"{len(report['follow_up_turn']['revised_list_s'])} turns (at "
        f"{[x for x in report['follow_up_turn']['revised_list_s'] if x is not None] or '-'} s).",
        "", f"Model calls: `{report['llm']}`.", "",
        "The list comes from the fused retrieval; the model writes one reason per shown item (default "
        "`PROMPTREC_RERANK__REORDER=false`). A profile the quality gate refuses is stored as its evidence "
        f"fallback and not asked again. Kept model states: {report['prefix_cache_mb']} MB.",
        "",
    ])


if __name__ == "__main__":
    main()
