"""Report on the knowledge a model made for the evaluation: eval/results/knowledge-<model>.md (+ .json).

    python eval/feature_report.py --model small
    python eval/feature_report.py --model medium

Reads the stores `eval/knowledge_job.py` fills (nothing is asked of the model): feature coverage of the
split's items and of the whole catalog, the rejected share by reason, five examples (item text next to
its features; the five most popular split items with features), how often features contradict the
catalog's genres (defined in `promptrec.evaluation.feature_quality`), the profile store's coverage,
and the throughput each job run printed (from the evaluation state's knowledge-jobs.jsonl).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", help="small | medium | quality | a .gguf path (default small)")
    parser.add_argument("--style", choices=("closed", "open"), default="closed",
                        help="which feature store: closed vocabulary (default) or open text")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    parser.add_argument("--name", default=None,
                        help="result file name (default: knowledge-<model>[-closed], e.g. knowledge-small-closed)")
    parser.add_argument("--no-recall", action="store_true",
                        help="skip the next-item recall of the feature vectors (embeds every split item once)")
    parser.add_argument("--model-vectors", default=None, metavar="MODEL",
                        help="add to the recall table MODEL's own vectors of each item's title + genres (mean of its "
                        "last hidden states, centred; promptrec.knowledge.model_vectors), cached: small | medium | "
                        "quality | path (default: none)")
    args = parser.parse_args(argv)

    from promptrec.distributed.jobs import popular_items
    from promptrec.evaluation.feature_quality import closed_picks, summarize
    from promptrec.evaluation.knowledge import PROFILE_CUT, eval_feature_store, eval_profile_store
    from promptrec.evaluation.source import eval_state_dir, load_source
    from promptrec.evaluation.splits import protocol_a_split
    from promptrec.knowledge.degenerate import DEGENERATE
    from promptrec.llm.identity import configured_model_id
    from promptrec.prompts import as_data
    from promptrec.settings import Settings
    from promptrec.state import DatasetState

    settings = Settings()
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": args.model})})
    reader = None
    if args.model_vectors and not args.no_recall:  # before any work: an unknown model is a one-line error
        from promptrec.errors import PromptrecError
        from promptrec.knowledge.model_vectors import ModelVectors

        try:
            reader = ModelVectors(args.model_vectors, Path(settings.state_dir) / "models", threads=settings.llm.n_threads)
        except PromptrecError as err:
            print(f"feature_report.py: --model-vectors {args.model_vectors}: {err}", file=sys.stderr)
            return 2
    model_id = configured_model_id(settings)
    if model_id is None:
        print(f"error: the model {args.model!r} is not installed")
        return 2
    source = load_source(settings)
    dataset = source.dataset
    split = protocol_a_split(dataset.interactions.frame)
    runs_dir = eval_state_dir(settings, source)
    store = eval_feature_store(DatasetState.for_dataset(settings.state_dir, dataset), model_id, args.style)
    records = list(store.records().values())
    ranked = [i.item_id for i in popular_items(dataset, -1)]
    in_split = set(split.items)
    split_ids = [i for i in ranked if i in in_split]
    summary = {"split": summarize(records, dataset.catalog, split_ids),
               "catalog": summarize(records, dataset.catalog, ranked)}
    picks = closed_picks(records, dataset.catalog, split_ids, settings.seed) if args.style == "closed" else None
    by_id = {r.item_id: r for r in records}
    examples = [(dataset.catalog.get(i), by_id[i].features) for i in split_ids
                if i in by_id and by_id[i].features is not None][:5]
    rejected_examples = [(dataset.catalog.get(i), by_id[i].error) for i in split_ids
                         if i in by_id and (by_id[i].error or "").startswith(DEGENERATE)][:3]
    profiles = eval_profile_store(runs_dir, model_id, PROFILE_CUT)
    prof = list(profiles.records().values())
    prof_reasons = Counter((r.result.error or "")[len(DEGENERATE):] if (r.result.error or "").startswith(DEGENERATE)
                           else f"refused by the quality gate: {r.result.rejected}" if r.result.rejected
                           else "model failed or invalid" for r in prof if r.result.source != "llm")
    recall = None
    if not args.no_recall and any(r.features is not None for r in records):
        from promptrec.evaluation.feature_quality import next_item_recall
        from promptrec.knowledge import feature_text
        from promptrec.knowledge.vector_cache import VectorCache
        from promptrec.retrieval import make_embedder

        cache = VectorCache(make_embedder(settings.embedding.model, settings.embedding.batch_size), runs_dir / "vectors")
        items = [dataset.catalog[i] for i in split.items]
        described = [it for it in items if it.item_id in by_id and by_id[it.item_id].features is not None]
        print(f"next-item recall: embedding {len(items):,} catalog texts and {len(described):,} feature texts (cached)")
        catalog_vectors = dict(zip(split.items, cache.embed([it.text() for it in items])))
        alone = dict(zip([it.item_id for it in described], cache.embed([by_id[it.item_id].features.text() for it in described])))
        both = dict(zip(split.items, cache.embed([feature_text(it, by_id[it.item_id].features if it.item_id in by_id
                                                               else None) for it in items])))
        rows = {"catalog text (title, genres, user tags)": catalog_vectors, "the model's features alone": alone,
                "catalog text + features (what the product embeds)": both}
        if reader is not None:
            import numpy as np

            from promptrec.evaluation.progress import progress_bars
            from promptrec.knowledge.item_text import joined_vectors, new_item_view
            from promptrec.knowledge.model_vectors import model_vector_map

            print(f"next-item recall: the model's own vectors of {len(items):,} title + genres texts (cached)")
            titles = dict(zip(split.items, cache.embed([new_item_view(it).text() for it in items])))
            with progress_bars() as (bar, _):
                own = model_vector_map(items, VectorCache(reader, DatasetState.for_dataset(settings.state_dir, dataset).root
                                                          / "vectors"),  # the product's cache of them
                                       bar(f"model vectors ({reader.model_id})", len(items)))
            rows["title + genres (MiniLM)"] = titles
            rows[f"{reader.model_id}'s own vectors of title + genres (centred)"] = own
            joined = joined_vectors(np.stack([titles[i] for i in split.items]), np.stack([own[i] for i in split.items]))
            rows["title + genres (MiniLM) beside the model's own vectors"] = dict(zip(split.items, joined))
        recall = next_item_recall(split, "valid", rows)
    repair_kinds = ("said twice", "liked and disliked", "rating", "summary")
    repaired = Counter(next((k for k in repair_kinds if k in note), "other") for r in prof if r.result.source == "llm"
                       for note in r.result.repaired)
    n_repaired = sum(bool(r.result.repaired) for r in prof if r.result.source == "llm")
    log_path = runs_dir / "knowledge-jobs.jsonl"
    runs = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if log_path.exists() else []
    runs = [r for r in runs if r.get("model_id") == model_id]
    payload = {"model": args.model, "model_id": model_id, "dataset": source.meta(), "style": args.style,
               "features": summary, "closed_picks": picks,
               "profiles": {"users": split.n_users, "stored": len(prof), "llm": sum(r.result.source == "llm" for r in prof),
                            "fallback_by_reason": dict(prof_reasons.most_common()),
                            "repaired_profiles": n_repaired, "repairs_by_kind": dict(repaired.most_common())},
               "next_item_recall": recall, "job_runs": runs}
    name = args.name or f"knowledge-{Path(args.model).stem}" + ("-closed" if args.style == "closed" else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    lines = [f"# {name}: what {model_id.split('@')[0]} knows about {dataset.name}", "",
             f"Dataset {dataset.name} (sha256 {source.sha256[:12]}); features from the per-model store, profiles "
             f"from the evaluation's profile store (cut {PROFILE_CUT}). Written by `python eval/feature_report.py "
             f"{shlex.join(sys.argv[1:] if argv is None else argv) or '--model small'}` from the stores `eval/knowledge_job.py --model {args.model} "
             f"--style {args.style}` fills.", "",
             "## Item features", "",
             "| scope | items | asked | with features (coverage) | rejected as degenerate | failed (invalid / error) |",
             "|---|---|---|---|---|---|"]
    for scope, s in summary.items():
        lines.append(f"| {scope} | {s['wanted']:,} | {s['attempted']:,} | {s['with_features']:,} ({pct(s['coverage'])}) | "
                     f"{s['rejected_total']:,} ({pct(s['rejected_share'])} of asked) | {s['failed']:,} |")
    s = summary["split"]
    lines += ["", "Rejected by reason (split items): " + (", ".join(f"{k} {v}" for k, v in s["rejected"].items()) or "none")
              + ". The rules are in `promptrec/knowledge/degenerate.py`; a rejected record is never embedded.", "",
              "## Contradictions with the catalog's genres", "",
              f"Of {s['contradiction']['checked']:,} split items with features and listed genres, "
              f"{s['contradiction']['items']:,} ({pct(s['contradiction']['share'])}) contradict them: "
              f"{s['contradiction']['asserts_unlisted']:,} name a genre the catalog does not list for the item, "
              f"{s['contradiction']['denies_listed']:,} negate a listed genre. Most named unlisted genres: "
              + (", ".join(f"{g} {n}" for g, n in s["contradiction"]["unlisted_genres"].items()) or "none") + ".",
              "", "Definition (`promptrec/evaluation/feature_quality.py`): a theme, the mood or the description names, "
              "as a whole word, a genre of the catalog's genre vocabulary (with spelling variants such as 'science "
              "fiction' for Sci-Fi) that the item's genres do not list; or a negation (not, no, non-, never, without) "
              "is followed within two words by a listed genre. A named unlisted genre is not always wrong (a comedy "
              "can be dramatic), so this is an upper bound on genre errors.", ""]
    if picks is not None:
        k = picks

        def top(d):
            return ", ".join(f"{w} {pct(v)}" for w, v in d.items()) or "none"
        lines += ["## What the closed vocabulary picks", "",
                  f"Over {k['items']:,} split items with features (share of items):", "",
                  f"- mood: {top(k['mood'])}", f"- audience: {top(k['audience'])}",
                  f"- themes ({k['distinct_themes']} of the vocabulary's words used): {top(k['themes'])}", "",
                  f"Confirmed by the item's own genres or user tags (a theme shares a word with them), over the "
                  f"{k['tagged_items']:,} items with tags: **{pct(k['confirmed_by_tags'])}**; with the same records "
                  f"shuffled across items (a pick that ignores the item): {pct(k['confirmed_shuffled'])}. "
                  "(`closed_picks` in `promptrec/evaluation/feature_quality.py`.)", ""]
    if recall is not None:
        r = recall
        lines += ["## Do the features carry what users choose next?", "",
                  f"Share of the {r['stage']} targets ({r['users']:,} users; tiers {r['tiers']}) among the {r['k']} items "
                  f"most similar to the recency-weighted mean of the history's vectors (content kNN, history excluded; "
                  f"an item without a vector is never retrieved). Chance: {pct(r['chance'])}.", "",
                  f"| vectors | recall@{r['k']} | head | torso | tail |", "|---|---|---|---|---|"]
        for label, row in r["rows"].items():
            lines.append(f"| {label} | {pct(row['all'])} | {pct(row['head'])} | {pct(row['torso'])} | {pct(row['tail'])} |")
        lines += ["", "(`next_item_recall` in `promptrec/evaluation/feature_quality.py`.)", ""]
    lines += ["## Examples", ""]
    for item, f in examples:
        lines.append(f"- **{as_data(item.text(), 200)}** → themes: {', '.join(f.themes)}; mood: {f.mood}; "
                     f"audience: {f.audience}; description: {f.description}")
    if not examples:
        lines.append("- (no split item has features yet)")
    if rejected_examples:
        lines += ["", "Rejected, for comparison:"]
        lines += [f"- {as_data(item.text(), 120)} → {error}" for item, error in rejected_examples]
    p = payload["profiles"]
    lines += ["", "## Profiles", "",
              f"{p['stored']:,} of {p['users']:,} evaluation users have a stored profile; {p['llm']:,} from the model, "
              f"{p['stored'] - p['llm']:,} fell back to the evidence profile ("
              + (", ".join(f"{k} {v}" for k, v in p["fallback_by_reason"].items()) or "none") + "). "
              f"{p['repaired_profiles']:,} of the model's profiles passed once the gate removed slips ("
              + (", ".join(f"{k} {v}" for k, v in p["repairs_by_kind"].items()) or "none")
              + "; `promptrec.quality.repair_profile`).", "",
              "## Throughput (each job run)", "",
              "| when | scope | kind | at once | processed | seconds | per second | model calls | model calls/s | cached | interrupted |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        processed = r["done"] + r["failed"] + sum(r["rejected"].values())
        lines.append(f"| {r['time']} | {r['scope']} | {r['kind']} | {r['workers']} | {processed:,} | {r['seconds']:,.0f} | "
                     f"{r['per_second']:.3f} | {r['model_calls']:,} | {r['model_calls'] / max(r['seconds'], 1e-9):.3f} | "
                     f"{r['cache_hits']:,} | {'yes' if r.get('interrupted') else 'no'} |")
    if not runs:
        lines.append("| (no run logged yet) | | | | | | | | | | |")
    lines += ["", "An interrupted run is logged with what it did until then (its records are kept and counted above). "
              "Per second counts the items or users a run processed (replies served from the cache included: a rerun "
              "re-checks earlier rejected replies from the cache), over its wall time on a shared machine (load in the "
              "JSON log); model calls/s counts only the requests that reached the model."]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
