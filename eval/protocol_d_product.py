"""Protocol D through the product's retriever: the ``cold`` fusion weight and the reserved place for a new
item (``new_items.slot``) chosen on validation, then next-item N@10 on test with and without new items,
with 95% bootstrap intervals over users.

Usage:
    python eval/protocol_d_product.py [--dataset NAME_OR_FOLDER] [--features MODEL_ID|none]
                                      [--out eval/results/protocol-d-product]

See promptrec/evaluation/cold_product.py and docs/evaluation.md ("Protocol D in the product").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from promptrec.evaluation.beyond import describe, slot_share, split_context
from promptrec.evaluation.cold_product import next_item_with_new
from promptrec.evaluation.cold_start import cold_item_tasks, cold_texts, feature_store
from promptrec.evaluation.intervals import bootstrap_interval, paired_difference
from promptrec.evaluation.metrics import ndcg_at_k, recall_at_k
from promptrec.evaluation.product import Bench, collect_pools, pool_ranks, restrict_pool, stage_world
from promptrec.evaluation.progress import progress_bars
from promptrec.evaluation.source import eval_state_dir, load_source
from promptrec.evaluation.splits import protocol_a_split
from promptrec.retrieval import COLD, ItemVectorStore, make_embedder
from promptrec.retrieval.fusion import fuse
from promptrec.retrieval.new_slot import place_new
from promptrec.retrieval.retriever import neutral_for_new
from promptrec.retrieval.store import make_client as make_chroma_client
from promptrec.settings import Settings

GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
SLOTS = (0, 10, 8, 5, 3, 1)  # the reserved place for a new item (new_items.slot; 0: none)


def stage_pools(stage, split, valid, test, texts, settings, embedder, chroma, cache, bar):
    task = next_item_with_new(split, split_catalog_of(split, texts), valid, test, stage)
    store = ItemVectorStore(chroma, embedder, f"protocol-d-{stage}")
    records = [(i, texts[i][1], {"title": texts[i][0]}) for i in task.catalog.ids]
    store.upsert(records, progress=bar(f"{stage}: embedding", len(records)))
    bench = Bench(settings, task.catalog, store, embedder, None, None, {})
    world = stage_world(task.split, "valid", bench, cache / "collab" / stage)
    new = world.retriever.new_items
    new.neutral_missing = False  # raw pools; the neutral variant is applied below, so both are scored
    users = list(range(task.split.n_users))
    pools = collect_pools(world, users, bar(f"{stage}: candidate pools", len(users)))
    neutral = [(items, neutral_for_new(sources, np.array([i in new.index for i in items]))) for items, sources in pools]
    return task, {False: pools, True: neutral}, [world.target(u) for u in users], frozenset(new.items)


def split_catalog_of(split, texts):
    from promptrec.data import Catalog, Item

    return Catalog(Item(item_id=i, title=texts[i][0]) for i in split.items)


def ranks_with(pools, targets, weights, depth, new=frozenset(), slot=0):
    """Target ranks in the pools the product builds with ``weights``: collected with every source at the
    product's depth, the pools are the product's as they are when every source is on; with ``cold`` off
    they are restricted to the other sources' top ``depth`` (the product then pools no new items).
    With ``slot``, the product's reserved place for the best new item (:func:`place_new`, the same rule
    the retriever applies); its candidate is the best new item of the whole collected pool."""
    restricted = [restrict_pool(items, sources, weights, None if weights[COLD] > 0 else depth) for items, sources in pools]
    if not slot:
        return pool_ranks(restricted, targets, weights)
    ranks = np.full(len(pools), np.inf)
    for n, (pool, kept_pool, target) in enumerate(zip(pools, restricted, targets)):
        ranked = _ranked(pool, kept_pool, weights, new, slot)
        if target in ranked:
            ranks[n] = ranked.index(target)
    return ranks


def top_with(pools, weights, depth, new=frozenset(), slot=0, k=10) -> list[list[str]]:
    """The top ``k`` of each list :func:`ranks_with` ranks the target in (the same pools, fusion and reserved place)."""
    restricted = [restrict_pool(items, sources, weights, None if weights[COLD] > 0 else depth) for items, sources in pools]
    return [_ranked(pool, kept_pool, weights, new, slot)[:k] for pool, kept_pool in zip(pools, restricted)]


def _ranked(pool, kept_pool, weights, new, slot) -> list[str]:
    """One user's ranked pool: the fused order (stable, as ``pool_ranks``), then the reserved place."""
    (items, sources), (kept, kept_sources) = pool, kept_pool
    fused, _ = fuse(kept_sources, weights) if kept else (np.zeros(0), {})
    order = np.argsort(-fused, kind="stable").tolist()
    kept = list(kept)
    if slot:
        cold = np.asarray(kept_sources.get(COLD, np.full(len(kept), np.nan)), dtype=np.float64)
        if not any(kept[i] in new for i in order[:slot]):
            scored = [(float(s), -j, i) for j, (i, s) in enumerate(zip(items, sources[COLD])) if i in new and np.isfinite(s)]
            if scored:
                score, _, best = max(scored)  # the best new item of the collected pool (ties: the earlier one)
                if best not in kept:
                    kept.append(best)
                    cold = np.append(cold, score)
                    order.append(len(kept) - 1)
                order = place_new(order, [i in new for i in kept], cold, slot)
    return [kept[i] for i in order]


def beyond_of(task, ranks, lists, new, seed: int, n_boot: int) -> dict:
    """Beyond accuracy of one test row (:func:`~promptrec.evaluation.beyond.describe` on the staged split: popularity
    from the histories, never the targets) and the share of top-10 slots given to new items, with its interval."""
    staged = task.split
    context = split_context(staged, "valid", seed)  # the staged split's fit data: every user's history, no target
    indices = [np.array([staged.item_index[i] for i in top], dtype=np.int64) for top in lists]
    found = describe(ranks, staged.valid_target, indices, context, n_boot=n_boot)
    found["metrics"]["new_share"], found["intervals"]["new_share"] = slot_share(
        [sum(i in new for i in top) for top in lists], [len(top) for top in lists], seed, n_boot)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: ml-latest-small)")
    parser.add_argument("--features", default=None, help="model id whose item features to use (default: the fullest file; 'none': title + genres only)")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the 5-core items made new")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--out", type=Path, default=Path("eval/results/protocol-d-product"), help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    base = Settings() if not args.dataset else Settings(dataset=args.dataset)
    source = load_source(base)
    split = protocol_a_split(source.dataset.interactions.frame)
    valid, test = cold_item_tasks(split, args.fraction, base.seed)
    store, model_id = (None, None) if args.features == "none" else feature_store(base, source.dataset, args.features)
    chroma = make_chroma_client(eval_state_dir(base, source) / "protocol-d-product" / "chroma")
    items = [source.dataset.catalog[i] for i in split.items]
    _, feature_texts, has = cold_texts(items, store)
    texts = {it.item_id: (it.title, text) for it, text in zip(items, feature_texts)}
    defaults = dict(base.fusion.weights)
    defaults.pop(COLD, None)
    # the stage stores hold exactly the texts a new item is known by (title + genres, plus features with
    # --features), so the cold source maps the stores' own vectors
    settings = base.model_copy(update={"fusion": base.fusion.model_copy(update={"weights": {**defaults, COLD: 1.0}}),
                                       "new_items": base.new_items.model_copy(update={"text": "stored"})})
    depth = settings.fusion.candidate_depth
    cache = eval_state_dir(base, source) / "protocol-d-product"
    embedder = make_embedder(base.embedding.model, base.embedding.batch_size)
    grid = [{**defaults, COLD: w} for w in GRID]
    result: dict = {"protocol": "D (product, next item with new items)", "dataset": source.meta(), "seed": base.seed,
                    "features_model": model_id, "items_with_features": int(has.sum()), "base_weights": defaults,
                    "pool_depth": depth, "new_item_map": settings.new_items.model_dump(exclude={"slot"})}
    with progress_bars() as (bar, say):
        task, pools, targets, new = stage_pools("valid", split, valid, test, texts, settings, embedder, chroma, cache, bar)
        new_target = task.is_new_target()
        rows, choices = [], []
        for slot in SLOTS:
            for neutral in (False, True):
                for weights in grid if not neutral else grid[1:]:  # the product imputes only when the source is on
                    n10 = ndcg_at_k(ranks_with(pools[neutral], targets, weights, depth, new, slot), 10)
                    rows.append({"slot": slot, "neutral_missing": neutral, "cold": weights[COLD], "N@10": float(n10.mean()),
                                 "N@10 new targets": float(n10[new_target].mean()),
                                 "N@10 other targets": float(n10[~new_target].mean())})
                    choices.append((neutral, weights, slot))
        best = max(range(len(rows)), key=lambda n: (rows[n]["N@10"], -n))
        chosen_neutral, chosen, chosen_slot = choices[best]
        say(f"chosen on validation: cold weight {chosen[COLD]}, neutral_missing {chosen_neutral}, slot {chosen_slot}")
        result["validation"] = {"users": len(targets), "new_targets": int(new_target.sum()), "grid": rows, "chosen": chosen,
                                "neutral_missing": chosen_neutral, "slot": chosen_slot}
        task, pools, targets, new = stage_pools("test", split, valid, test, texts, settings, embedder, chroma, cache, bar)
        new_target = task.is_new_target()
        per, beyond = {}, {}
        for name, weights, neutral, slot in (("without new items", {**defaults, COLD: 0.0}, False, 0),
                                             ("chosen on validation", chosen, chosen_neutral, chosen_slot),
                                             ("reserved place 10, cold weight 0", {**defaults, COLD: 0.0}, False, 10)):
            ranks = ranks_with(pools[neutral], targets, weights, depth, new, slot)
            per[name] = {"N@10": ndcg_at_k(ranks, 10), "R@10": recall_at_k(ranks, 10)}
            beyond[name] = beyond_of(task, ranks, top_with(pools[neutral], weights, depth, new, slot), new, base.seed,
                                     args.boot)
        test_rows = {}
        for name, metrics in per.items():
            test_rows[name] = {subset: {m: bootstrap_interval(v[mask], args.boot, base.seed) for m, v in metrics.items()}
                               for subset, mask in (("all", np.ones_like(new_target)), ("new targets", new_target),
                                                    ("other targets", ~new_target))}
        diff = {name: {subset: paired_difference(per[name]["N@10"][mask], per["without new items"]["N@10"][mask],
                                                 args.boot, base.seed)
                       for subset, mask in (("all", np.ones_like(new_target)), ("new targets", new_target),
                                            ("other targets", ~new_target))}
                for name in per if name != "without new items"}
        result["test"] = {"users": len(targets), "new_targets": int(new_target.sum()), "rows": test_rows,
                          "difference N@10 (row - without new items)": diff, "beyond": beyond}
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    write(args.out, result)
    print(args.out.with_suffix(".md").read_text())
    return 0


def _cell(c):
    return f"{c['mean']:.4f} [{c['lo']:.4f}, {c['hi']:.4f}] (n={c['n']})"


def _figure(found: dict, name: str, digits: int = 3) -> str:
    value, interval = found["metrics"][name], found["intervals"].get(name)
    return f"{value:.{digits}f}" + (f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval else "")


def beyond_lines(beyond: dict) -> list[str]:
    """The test rows' popularity bias, new-item share and N@10 by the target's tier and the user's activity."""
    lines = ["", "## Beyond accuracy (test: each row's top 10)", "",
             "Popularity from the users' histories (a new item has none, so it is a tail item); Protocol A's tiers and "
             "activity terciles (docs/evaluation.md, \"Beyond accuracy\"); new_share: the share of list slots given to "
             "new items. Mean [95% bootstrap interval over users]; Gini and coverage: ± 1.96 jackknife standard errors.", "",
             "| fusion | new_share | long_tail_share | tail_share | avg_pop | gini | coverage |", "|---|---|---|---|---|---|---|"]
    for name, found in beyond.items():
        lines.append(f"| {name} | " + " | ".join(_figure(found, m, 1 if m == "avg_pop" else 3) for m in
                                                  ("new_share", "long_tail_share", "tail_share", "avg_pop", "gini", "coverage")) + " |")
    for kind, labels in (("target_tier", ("head", "torso", "tail")), ("activity", ("light", "medium", "heavy"))):
        lines += ["", f"N@10 by {'the target' + chr(39) + 's popularity tier' if kind == 'target_tier' else 'user activity'} "
                  "(users in brackets):", "", "| fusion | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for name, found in beyond.items():
            cells = []
            for label in labels:
                g = found["groups"][kind].get(label)
                ci = None if g is None else g["intervals"].get("N@10")
                cells.append("–" if g is None else f"{g['N@10']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
                             + f" ({g['users']})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    v, t = result["validation"], result["test"]
    lines = [f"# Protocol D in the product: next item with new items in the catalog ({result['dataset']['name']}, "
             f"sha256 {result['dataset']['sha256'][:12]})", "",
             f"Base fusion {result['base_weights']}, top {result['pool_depth']} per source; new-item map "
             f"{result['new_item_map']}; features: {result['items_with_features']} items ({result['features_model'] or 'none'}).", "",
             f"## Validation ({v['users']} users, {v['new_targets']} with a new-item target): the `cold` weight", "",
             "Reserved place (`new_items.slot`, 0: none) x missing collaborative scores x `cold` weight; the best "
             "row per reserved place in bold.", "",
             "| reserved place | missing collaborative scores of new items | cold weight | N@10 | N@10 new targets | N@10 other targets |",
             "|---|---|---|---|---|---|"]
    best = {}
    for r in v["grid"]:
        if r["slot"] not in best or r["N@10"] > best[r["slot"]]["N@10"]:
            best[r["slot"]] = r
    for r in v["grid"]:
        b = "**" if best[r["slot"]] is r else ""
        lines.append(f"| {r['slot']} | {'neutral (pool mean)' if r['neutral_missing'] else 'pool minimum'} | {r['cold']} | "
                     f"{b}{r['N@10']:.4f}{b} | {r['N@10 new targets']:.4f} | {r['N@10 other targets']:.4f} |")
    lines += ["", f"Chosen: {v['chosen']}, neutral_missing {v['neutral_missing']}, reserved place {v['slot']}.", "",
              f"## Test ({t['users']} users, {t['new_targets']} with a new-item target)", "",
              "| fusion | N@10 all | N@10 new targets | N@10 other targets |", "|---|---|---|---|"]
    for name, row in t["rows"].items():
        lines.append(f"| {name} | {_cell(row['all']['N@10'])} | {_cell(row['new targets']['N@10'])} | "
                     f"{_cell(row['other targets']['N@10'])} |")
    for name, d in t["difference N@10 (row - without new items)"].items():
        lines += ["", f"Paired difference of N@10, {name} - without new items: "
                  + "; ".join(f"{k} {_cell(c)}" for k, c in d.items()) + "."]
    if "beyond" in t:
        lines += beyond_lines(t["beyond"])
    lines += ["",
              "", f"Wall time {result['wall_s']} s on {result['machine']}.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
