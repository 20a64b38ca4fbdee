"""Whole-catalog knowledge for the evaluation: item features for every item of the split (most popular
first) and a profile for every evaluation user, with the model decoding several requests at once.

    python eval/knowledge_job.py --model medium --features                # closed-vocabulary features, ~1 s/item
    python eval/knowledge_job.py --model small --features --profiles      # SmolLM2: within a session
    python eval/knowledge_job.py --model small --features --catalog       # the whole product catalog
    python eval/knowledge_job.py --model medium --features                # the 0.5B model: hours
    python eval/knowledge_job.py --model quality --features --profiles    # the 1.5B model: an overnight job

Features go to the product's per-model store (``DatasetState.features_for(model_id)``, read by the
product and by ``promptrec.evaluation.knowledge.eval_feature_store``); profiles go to the evaluation's
profile store (``eval_profile_store``), each computed on ``profile_history(split, u)``: the history
known before every target any validation fold or the test scores. Degenerate features are stored as
failed records with their reason and never embedded (each run first applies the current check to
what is stored). Every reply is cached, every record is written
as it finishes: interrupt at any time and run the same command to continue. Each run appends its
report (counts, rejected reasons, items/s or users/s) to ``<eval state>/knowledge-jobs.jsonl`` and
prints it. ``eval/feature_report.py`` writes ``eval/results/knowledge-<model>.md`` from the stores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time

from promptrec.settings import Settings


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", help="small | medium | quality | a .gguf path "
                        "(or the API model id with PROMPTREC_LLM__BACKEND=openai); default small")
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: ml-latest-small)")
    parser.add_argument("--features", action="store_true", help="item features for the split's items")
    parser.add_argument("--catalog", action="store_true", help="with --features: every catalog item, not only the split's")
    parser.add_argument("--style", choices=("closed", "open"), default=None, help="feature prompt: 'closed' picks "
                        "themes/mood/audience from a fixed vocabulary, 'open' writes free text (default: "
                        "PROMPTREC_FEATURES__STYLE, closed)")
    parser.add_argument("--protocol-d", action="store_true", help="with --features: only Protocol D's new items "
                        "(validation and test tasks), described by title + genres only as a new item is (no user "
                        "tags), into the model's bare store (DatasetState.features_for(..., bare=True))")
    parser.add_argument("--profiles", action="store_true", help="a profile for every evaluation user")
    parser.add_argument("--limit", type=int, default=-1, help="only the first N items / users (most popular items first)")
    parser.add_argument("--parallel", type=int, default=None, help="requests decoded at once (local: parallel "
                        "slots, default PROMPTREC_LLM__N_PARALLEL=8, 1: the product's backend one at a time; "
                        "openai: PROMPTREC_LLM__MAX_CONCURRENCY)")
    args = parser.parse_args(argv)
    if not (args.features or args.profiles):
        parser.error("say what to compute: --features and/or --profiles")
    if args.protocol_d and not args.features:
        parser.error("--protocol-d describes Protocol D's new items: use it with --features")

    from promptrec.distributed.jobs import popular_items
    from promptrec.errors import PromptrecError
    from promptrec.evaluation.cold_start import bare_item, cold_item_tasks
    from promptrec.evaluation.knowledge import PROFILE_CUT, eval_feature_store, eval_profile_store, profile_history
    from promptrec.knowledge import FeatureStore
    from promptrec.evaluation.progress import progress_bars
    from promptrec.evaluation.source import eval_state_dir, load_source
    from promptrec.evaluation.splits import protocol_a_split
    from promptrec.knowledge.batch import recheck_features, run_feature_batch, run_profile_batch
    from promptrec.llm import make_client
    from promptrec.llm.parallel import make_batch_backend
    from promptrec.state import DatasetState

    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops like Ctrl-C: finished records kept, run logged
    settings = Settings()
    update: dict = {"llm": settings.llm.model_copy(update={"model": args.model})}
    if args.dataset:
        update["dataset"] = args.dataset
    if args.style:
        update["features"] = settings.features.model_copy(update={"style": args.style})
    settings = settings.model_copy(update=update)
    try:
        source = load_source(settings)
        dataset = source.dataset
        split = protocol_a_split(dataset.interactions.frame)
        runs_dir = eval_state_dir(settings, source)
        # --parallel 1: the product's own backend, one request at a time (measured faster than server slots
        # for the short closed-style replies on 2 cores: 0.98 vs 0.65 items/s with 4 slots, medium model)
        client = make_client(settings) if args.parallel == 1 else make_client(settings, make_batch_backend(settings, args.parallel))
        log_path = runs_dir / "knowledge-jobs.jsonl"
        reports = []

        def logged(scope: str):
            def write(report) -> None:  # also when the run is interrupted: its throughput so far
                reports.append(report)
                log_path.parent.mkdir(parents=True, exist_ok=True)
                with log_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "scope": scope,
                                             "machine": platform.node(), "load": os.getloadavg(),
                                             "per_second": round(report.per_second, 4), **report.model_dump()}) + "\n")
            return write

        with progress_bars() as (bar, say):
            if args.features:
                ranked = popular_items(dataset, -1)
                in_split = set(split.items)
                items = ranked if args.catalog else [item for item in ranked if item.item_id in in_split]
                items = items if args.limit < 0 else items[: args.limit]
                state = DatasetState.for_dataset(settings.state_dir, dataset)
                if args.protocol_d:
                    valid, test = cold_item_tasks(split, 0.1, settings.seed)
                    new = {split.items[i] for i in (*valid.new.tolist(), *test.new.tolist())}
                    items = [bare_item(item) for item in items if item.item_id in new]
                    store = FeatureStore(state.features_for(client.model_id, settings.features.style, bare=True))
                else:
                    store = eval_feature_store(state, client.model_id, settings.features.style)
                say(f"features: {len(items):,} items ({'catalog' if args.catalog else 'split'}) -> {store.path}")
                newly = recheck_features(store, dataset.catalog)  # the current rules on what is stored: no model calls
                if newly:
                    say(f"stored features that the current degenerate check rejects, now marked failed: {newly}")
                report = run_feature_batch(client, items, store, progress=bar("item features", len(items)),
                                           on_finish=logged("protocol-d new items, bare" if args.protocol_d else
                                                            "catalog" if args.catalog else "split"))
                say(report.line())
            if args.profiles:
                store = eval_profile_store(runs_dir, client.model_id)
                users = []
                for u, user in enumerate(split.users):
                    history = profile_history(split, u, PROFILE_CUT)
                    ratings = dataset.interactions.ratings(user)
                    users.append((user, history, {i: ratings[i] for i in history if i in ratings}))
                users = users if args.limit < 0 else users[: args.limit]
                say(f"profiles: {len(users):,} users at cut {PROFILE_CUT} -> {store.path}")
                report = run_profile_batch(client, dataset.catalog, users, store,
                                           token_budget=settings.profile.token_budget,
                                           progress=bar("user profiles", len(users)), on_finish=logged("eval users"))
                say(report.line())
    except PromptrecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted: every finished record is kept; run the same command to continue.", file=sys.stderr)
        return 130
    for report in reports:
        print(report.line())
    print(f"job log: {log_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
