"""Protocol D: strict cold-start items (and cold users), with 95% bootstrap intervals over users.

Usage:
    python eval/protocol_d.py [--dataset NAME_OR_FOLDER] [--features MODEL_ID] [--fraction 0.1]
                              [--folds 5] [--no-cold-users] [--out eval/results/protocol-d]

A seeded 10% of the 5-core items lose all their interactions and their tags; users who interacted
with them are scored ranking their new items among the new items and among all items. Every
hyperparameter (transfer-map space, factors, ridge penalties, the student's penalty) is chosen on a
validation task made the same way inside the other items; the test task is read once. Item
features are the ones ``--features`` (a model id as the LLM client names it) made for this dataset;
by default the feature file with the most items. See docs/evaluation.md, "Protocol D".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from promptrec.collab import EASE, ItemKNN, Popularity, classic_blend
from promptrec.evaluation.cold_rows import (SELECT_BY, TextViews, cold_beyond, cold_item_rows, compare, knn_row,
                                            model_vector_rows as cold_model_rows, select_student,
                                            select_transfer, summarize, svd_foldin_row, task_context, transfer_grid)
from promptrec.evaluation.cold_start import (RowCache, bare_store, cold_item_tasks, cold_texts, embed_cached, feature_store,
                                            joined_vectors, knn_scores, knowledge_texts, row_results, texts_digest,
                                            transfer_scores)
from promptrec.errors import PromptrecError
from promptrec.knowledge.model_vectors import ModelVectors, read_in_blocks
from promptrec.evaluation.learned import knowledge_model_id
from promptrec.evaluation.cold_users import (cold_user_beyond, cold_user_context, cold_user_folds, cold_user_metrics,
                                             scorer_row)
from promptrec.evaluation.progress import progress_bars
from promptrec.evaluation.source import eval_state_dir, load_source
from promptrec.evaluation.splits import protocol_a_split
from promptrec.retrieval import make_embedder
from promptrec.knowledge.vector_cache import VectorCache
from promptrec.settings import Settings
from promptrec.state import DatasetState


def fmt(cell: dict) -> str:
    return f"{cell['mean']:.3f} [{cell['lo']:.3f}, {cell['hi']:.3f}]"


def item_table(results: dict) -> list[str]:
    lines = ["| row | N@20 new | R@20 new | N@10 new | N@20 all | R@20 all |", "|---|---|---|---|---|---|"]
    for name, cell in results.items():
        lines.append(f"| {name} | {fmt(cell['new']['N@20'])} | {fmt(cell['new']['R@20'])} | {fmt(cell['new']['N@10'])} "
                     f"| {fmt(cell['all']['N@20'])} | {fmt(cell['all']['R@20'])} |")
    return lines


def _cell(value, interval, digits: int = 3) -> str:
    if interval is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def beyond_tables(beyond: dict) -> list[str]:
    """The report's beyond-accuracy section: popularity bias of each row's top lists among all items, and N@20 by
    user activity."""
    first = next(iter(beyond.values()), None)
    if first is None:
        return []
    k = first["k"]
    lines = ["", f"## Beyond accuracy (test; each row's top {k} among all items)", "",
             "Popularity from every user's warm interactions (a new item has none, so it is a tail item); new_share: "
             "the share of list slots given to new items. Mean [95% bootstrap interval over users]; Gini and coverage "
             "(of the 5-core items): ± 1.96 jackknife standard errors (docs/evaluation.md, \"Beyond accuracy\").", "",
             "| row | new_share | long_tail_share | avg_pop | gini | coverage |", "|---|---|---|---|---|---|"]
    for name, b in beyond.items():
        f, i = b["lists"], b["intervals"]
        lines.append(f"| {name} | {_cell(f['new_share'], i['new_share'])} | {_cell(f['long_tail_share'], i['long_tail_share'])} "
                     f"| {_cell(f['avg_pop'], i['avg_pop'], 1)} | {_cell(f['gini'], i['gini'])} | {_cell(f['coverage'], i['coverage'])} |")
    cuts = first["activity_cuts"]
    lines += ["", f"N@20 by user activity (warm history length terciles of the scored users: light <= {cuts[0]:g}, "
              f"medium <= {cuts[1]:g}, heavy above; users in brackets), among new items / among all items:", "",
              "| row | light | medium | heavy |", "|---|---|---|---|"]
    for name, b in beyond.items():
        cells = []
        for group in ("light", "medium", "heavy"):
            g = b["activity"].get(group)
            cells.append("" if g is None else f"{_cell(g['N@20 new'], g['intervals']['N@20 new'])} / "
                         f"{_cell(g['N@20 all'], g['intervals']['N@20 all'])} ({g['users']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def cold_user_tables(beyond: dict) -> list[str]:
    """The cold users' beyond-accuracy section: popularity bias of each row's top lists per cut, and N@20 by the
    targets' popularity tier and by user activity."""
    first = next((b for by in beyond.values() for b in by.values()), None)
    if first is None:
        return []
    k, metric, cuts = first["k"], first["metric"], first["activity_cuts"]
    lines = ["", f"### Beyond accuracy, cold users (each row's top {k} among all items)", "",
             "Popularity and tiers from every user's 5-core interactions (Protocol A's tier rule); mean [95% bootstrap "
             "interval over users]; Gini and coverage: ± 1.96 jackknife standard errors.", "",
             "| row | n | long_tail_share | tail_share | avg_pop | gini | coverage |", "|---|---|---|---|---|---|---|"]
    for name in next(iter(beyond.values())):
        for n, by in beyond.items():
            f, i = by[name]["lists"], by[name]["intervals"]
            lines.append(f"| {name} | {n} | {_cell(f['long_tail_share'], i['long_tail_share'])} | "
                         f"{_cell(f['tail_share'], i['tail_share'])} | {_cell(f['avg_pop'], i['avg_pop'], 1)} | "
                         f"{_cell(f['gini'], i['gini'])} | {_cell(f['coverage'], i['coverage'])} |")
    lines += ["", f"{metric} by the targets' popularity tier (each user scored on their targets in that tier alone) and by "
              f"user activity (terciles of every user's whole 5-core history: light <= {cuts[0]:g}, medium <= "
              f"{cuts[1]:g}, heavy above); users in brackets:", "",
              "| row | n | head | torso | tail | light | medium | heavy |", "|---|---|---|---|---|---|---|---|"]

    def group(entry):
        return "" if entry is None else f"{_cell(entry[metric], entry['intervals'][metric])} ({entry['users']})"
    for name in next(iter(beyond.values())):
        for n, by in beyond.items():
            b = by[name]
            cells = [group(b["target_tier"].get(t)) for t in ("head", "torso", "tail")]
            cells += [group(b["activity"].get(a)) for a in ("light", "medium", "heavy")]
            lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: PROMPTREC_DATASET or ml-latest-small)")
    parser.add_argument("--features", default=None,
                        help="whose item features to use: small | medium | quality | a .gguf path | a model id "
                        "(file@fingerprint) | none (default: the fullest feature file; the headline table used medium)")
    parser.add_argument("--model-vectors", default=None, metavar="MODEL",
                        help="also rows on the model's own vectors of the title + genres text (mean of its last hidden "
                        "states, llama.cpp embedding mode): small | medium | quality | a .gguf path (default: none)")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the 5-core items made new")
    parser.add_argument("--folds", type=int, default=5, help="cold-user folds")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--no-cold-users", action="store_true", help="skip the cold-user part")
    parser.add_argument("--out", type=Path, default=Path("eval/results/protocol-d"), help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    settings = Settings() if not args.dataset else Settings(dataset=args.dataset)
    reader = None
    if args.model_vectors:  # before any work: an unknown model is a one-line error, not a traceback at the end
        try:
            reader = ModelVectors(args.model_vectors, Path(settings.state_dir) / "models", threads=settings.llm.n_threads)
        except PromptrecError as err:
            print(f"protocol_d.py: --model-vectors {args.model_vectors}: {err}", file=sys.stderr)
            return 2
    features_model = args.features
    if features_model and features_model.lower() != "none" and "@" not in features_model:
        try:  # a name or a path: the id its features are stored under (the model is not loaded)
            features_model = knowledge_model_id(features_model, settings)
        except PromptrecError as err:  # a packaged name not installed says how to install it; anything else:
            reason = err if features_model.lower() in ("small", "medium", "quality") else (
                "no such model file; give small, medium, quality, a .gguf path, a model id (file@fingerprint) or none")
            print(f"protocol_d.py: --features {args.features}: {reason}", file=sys.stderr)
            return 2
    seed = settings.seed
    source = load_source(settings)
    split = protocol_a_split(source.dataset.interactions.frame)
    valid, test = cold_item_tasks(split, args.fraction, seed)
    store, model_id = feature_store(settings, source.dataset, features_model)
    items = [source.dataset.catalog[i] for i in split.items]
    bare = bare_store(store)  # the new items' features made from title + genres only, when the job made them
    new_ids = {split.items[i] for i in (*valid.new.tolist(), *test.new.tolist())} if bare is not None else set()
    raw_texts, feature_texts, has = cold_texts(items, store, bare, new_ids)
    cache = eval_state_dir(settings, source) / "protocol-d"
    print(f"{source.dataset.name} (sha256 {source.sha256[:12]}): {split.n_items} items, seed {seed}")
    print(f"test: {len(test.new)} new items, {test.n_users} users; validation: {len(valid.new)} new items, {valid.n_users} users")
    print(f"features: {int(has.sum())} of {split.n_items} items ({model_id or 'none'}); "
          f"new test items with features: {int(has[test.new].sum())}")
    embedder = make_embedder(settings.embedding.model, settings.embedding.batch_size)
    result: dict = {"protocol": "D", "dataset": source.meta(), "seed": seed, "fraction": args.fraction,
                    "embedder": embedder.name, "features_model": model_id, "items_with_features": int(has.sum()),
                    "new_test_items_with_features": int(has[test.new].sum()), "selected_by": list(SELECT_BY),
                    "new_items_features_from": "title + genres only" if bare is not None else "the catalog text with user tags",
                    "test": {"new_items": len(test.new), "users": test.n_users},
                    "validation": {"new_items": len(valid.new), "users": valid.n_users}}
    grid = transfer_grid()
    with progress_bars() as (bar, say):
        raw = embed_cached(embedder, raw_texts, cache, bar("embedding raw text", len(raw_texts)))
        featured = embed_cached(embedder, feature_texts, cache, bar("embedding feature text", len(feature_texts)))
        views = TextViews(raw, featured, has, texts_digest(embedder, raw_texts), texts_digest(embedder, feature_texts))
        known_texts = knowledge_texts(items, store, bare, new_ids)
        joined = joined_vectors(raw, embed_cached(embedder, known_texts, cache, bar("embedding knowledge", len(known_texts))))
        joined_key = f"joined|{views.raw_key}|{texts_digest(embedder, known_texts)}"
        rows_cache = RowCache(cache / "rows")
        task_key = f"{source.sha256}|{args.fraction}|{seed}"
        spaces: dict = {}
        advance = bar("validation: transfer maps", 2 * len(grid))
        raw_map, raw_rows = select_transfer(valid, raw, grid, spaces, advance, rows_cache, f"valid|{task_key}|{views.raw_key}")
        feature_map, feature_rows = select_transfer(valid, featured, grid, spaces, advance, rows_cache,
                                                    f"valid|{task_key}|{views.featured_key}")
        joined_map, joined_rows = select_transfer(valid, joined, grid, spaces, bar("validation: joined maps", len(grid)),
                                                  rows_cache, f"valid|{task_key}|{joined_key}")
        student, student_rows = (None, [])
        if has[valid.warm].sum() >= 10:
            student, student_rows = select_student(valid, views, cache=rows_cache, key=f"valid|{task_key}")
        say(f"chosen: raw {raw_map.model_dump()}, feature {feature_map.model_dump()}, student {student}")
        result["selection"] = {"raw_map": raw_map.model_dump(), "feature_map": feature_map.model_dump(),
                               "student": student.model_dump() if student else None,
                               "joined_map": joined_map.model_dump(), "grid_joined": joined_rows,
                               "grid_raw": raw_rows, "grid_feature": feature_rows, "grid_student": student_rows}
        test_spaces: dict = {}  # fitted spaces are keyed by their settings only: never share them across tasks
        rows = cold_item_rows(test, views, raw_map, feature_map, student, seed, test_spaces)
        rows["content kNN, raw + knowledge vectors"] = (f"knn|{joined_key}", lambda t: knn_scores(t, joined))
        rows["transfer map, raw + knowledge vectors"] = (
            f"transfer|{joined_key}|{joined_map.model_dump_json()}",
            lambda t: transfer_scores(t, joined, joined_map, spaces=test_spaces)[0])
        if reader is not None:
            rows.update(model_vector_rows(reader, raw, raw_texts, valid,
                                          DatasetState.for_dataset(settings.state_dir, source.dataset).root / "vectors",
                                          rows_cache, task_key,
                                          grid, spaces, test_spaces, result, bar, say))
        if not has.any():  # no features: those rows would repeat the raw-text ones
            rows = {name: row for name, row in rows.items() if "feature text" not in name and "knowledge vectors" not in name}
        advance = bar("test rows", len(rows))
        per_user, beyond = {}, {}
        context = task_context(test, seed)
        for name, (key, scorer) in rows.items():
            found = rows_cache.get(f"test|{task_key}|{key}|with lists", lambda: row_results(test, scorer(test)))
            per_user[name] = {ranking: m for ranking, m in found.items() if ranking != "lists"}
            beyond[name] = cold_beyond(test, found, context, args.boot)
            advance(1)
        result["cold_items"] = {name: summarize(m, args.boot, seed) for name, m in per_user.items()}
        result["beyond"] = beyond
        pairs = [("content kNN, feature text", "content kNN, raw text"), ("transfer map, feature text", "transfer map, raw text"),
                 ("distilled student, kNN", "content kNN, raw text"), ("distilled student, transfer map", "transfer map, raw text"),
                 ("content kNN, raw + knowledge vectors", "content kNN, raw text"),
                 ("transfer map, raw + knowledge vectors", "transfer map, raw text"),
                 ("content kNN, model vectors", "content kNN, raw text"), ("transfer map, model vectors", "transfer map, raw text"),
                 ("transfer map, raw + model vectors", "transfer map, raw text")]
        result["differences"] = {f"{a} - {b}": compare(per_user[a], per_user[b], args.boot, seed)
                                 for a, b in pairs if a in per_user and b in per_user}
        if not args.no_cold_users:
            folds = cold_user_folds(split, args.folds, seed)
            user_rows = {
                "popularity": ("popularity", scorer_row(Popularity)),
                "content kNN, raw text": (f"knn|{views.raw_key}", knn_row(raw)),
                "content kNN, feature text": (f"knn|{views.featured_key}", knn_row(featured)),
                f"PureSVD fold-in ({raw_map.factors} factors)": (f"svd|{raw_map.factors}", svd_foldin_row(raw_map.factors, seed)),
                "ItemKNN": ("itemknn", scorer_row(ItemKNN)),
                "EASE": ("ease", scorer_row(EASE)),
                "classic blend": ("classic", scorer_row(classic_blend)),
            }
            cuts = (1, 3, 5)
            advance = bar("cold users", len(user_rows))
            metrics: dict = {n: {} for n in cuts}
            users_beyond: dict = {str(n): {} for n in cuts}
            users_context = cold_user_context(split, seed)
            for name, (key, row) in user_rows.items():
                def compute(name=name, row=row):
                    found = cold_user_metrics(folds, {name: row}, cuts, lists=True)
                    out = {str(n): {m: v for m, v in found[n][name].items() if m != "top"} for n in cuts}
                    return {**out, **{f"lists {n}": {"top": found[n][name]["top"]} for n in cuts}}
                found = rows_cache.get(f"users|{source.sha256}|{args.folds}|{seed}|{cuts}|{key}|with lists", compute)
                for n in cuts:
                    metrics[n][name] = found[str(n)]
                    users_beyond[str(n)][name] = cold_user_beyond(
                        folds, n, {**found[str(n)], "top": found[f"lists {n}"]["top"]}, users_context, args.boot)
                advance(1)
            result["cold_users"] = {"folds": args.folds, "cuts": {
                str(n): {name: {"all": {k: v for k, v in summarize({"all": m}, args.boot, seed)["all"].items()}}
                         for name, m in by.items()} for n, by in metrics.items()},
                "beyond": users_beyond}
    wall = time.perf_counter() - start
    result["wall_s"] = round(wall, 1)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    write(args.out, result)
    print("\n".join(item_table(result["cold_items"])))
    print(f"wall time {wall:.1f} s; wrote {args.out}.md and {args.out}.json")
    return 0


def model_vector_rows(reader: ModelVectors, raw, raw_texts, valid, cache_of_product, rows_cache, task_key, grid, spaces,
                      test_spaces, result, bar, say) -> dict:
    """The model's own vectors of every item's title + genres (``ModelVectors``, cached like the text vectors),
    and their rows (``cold_rows.model_vector_rows``: maps chosen on the validation task)."""
    # the product's per-text cache of the same vectors (a task's title + genres text is the text the product reads,
    # `new_item_view`): `promptrec fit-fusion --model-vectors` and this script read each title once between them
    model = read_in_blocks(VectorCache(reader, cache_of_product), raw_texts,
                           bar(f"model vectors ({reader.model_id})", len(raw_texts)))
    rows, selection = cold_model_rows(valid, raw, model, f"model|{texts_digest(reader, raw_texts)}", grid, spaces,
                                      test_spaces, rows_cache, f"valid|{task_key}",
                                      bar("validation: model-vector maps", 2 * len(grid)))
    say(f"model vectors ({reader.model_id}, {reader.dimension} dimensions): chosen map {selection['model_map']}, "
        f"beside raw text {selection['raw_model_map']}")
    result["model_vectors"] = {"model": reader.model_id, "dimension": reader.dimension, "text": "title + genres",
                               "pooling": "mean of the last hidden states, centred on the task's warm items"}
    result["selection"].update(selection)
    return rows


def write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Protocol D: strict cold start ({result['dataset']['name']}, sha256 {result['dataset']['sha256'][:12]})", "",
             f"Seed {result['seed']}; {result['test']['new_items']} new items ({result['fraction']:.0%} of the 5-core), "
             f"{result['test']['users']} users scored; validation task {result['validation']['new_items']} new items, "
             f"{result['validation']['users']} users. Embedder {result['embedder']}. Features: "
             f"{result['items_with_features']} items ({result['features_model'] or 'none'}), "
             f"{result['new_test_items_with_features']} of the new test items (their features made from "
             f"{result.get('new_items_features_from', 'the catalog text with user tags')}). Hyperparameters chosen on validation by "
             f"{result['selected_by'][1]} among {result['selected_by'][0]} items: raw map {result['selection']['raw_map']}, "
             f"feature map {result['selection']['feature_map']}, student {result['selection']['student']}."
             + (f" Model vectors: `{result['model_vectors']['model']}` ({result['model_vectors']['dimension']} dimensions, "
                f"{result['model_vectors']['pooling']}, of the {result['model_vectors']['text']} text); map "
                f"{result['selection']['model_map']}, beside raw text {result['selection']['raw_model_map']}."
                if "model_vectors" in result else ""), "",
             "## New items (test; mean [95% bootstrap interval over users])", "", *item_table(result["cold_items"]), "",
             "## Paired differences (same users)", "", "| comparison | N@20 new | N@20 all |", "|---|---|---|"]
    for name, diff in result["differences"].items():
        lines.append(f"| {name} | {fmt(diff['new']['N@20'])} | {fmt(diff['all']['N@20'])} |")
    if "beyond" in result:
        lines += beyond_tables(result["beyond"])
    if "cold_users" in result:
        lines += ["", f"## Cold users ({result['cold_users']['folds']} user folds; history = first n items, targets = "
                  "all later items, ranked among all items; N@20 [95% interval])", ""]
        cuts = result["cold_users"]["cuts"]
        lines += ["| row | " + " | ".join(f"n = {n}" for n in cuts) + " |", "|---|" + "---|" * len(cuts)]
        for name in next(iter(cuts.values())):
            lines.append(f"| {name} | " + " | ".join(fmt(cuts[n][name]["all"]["N@20"]) for n in cuts) + " |")
        users = {n: next(iter(by.values()))["all"]["N@20"]["n"] for n, by in cuts.items()}
        lines += ["", "Users per cut: " + ", ".join(f"n = {n}: {u}" for n, u in users.items()) + "."]
        if "beyond" in result["cold_users"]:
            lines += cold_user_tables(result["cold_users"]["beyond"])
    lines += ["", f"Wall time {result['wall_s']} s on {result['machine']}.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
