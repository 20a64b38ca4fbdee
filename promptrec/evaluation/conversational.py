"""Protocol C: conversational intents. Each user types a request that describes their held-out
target without naming it; the product reads it (:class:`~promptrec.intent.Intent`) and steers
retrieval with it. Scored against the same users without a request (history only).

Same split as Protocol A. Per user and stage (valid/test), three request variants (templated,
vague, model-written; see :mod:`.requests`). The weight of the ``request`` source is chosen on
validation targets (all variants pooled), then test is read once. Reported per variant: N@10 and
R@10 with and without the request (with standard errors over users), constraint violations in the
shown top 10 (hard filters and exclusions; must be 0), and how often the parsed intent agrees
with the attributes the request was written from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from ..intent import Intent, IntentParser, item_year
from ..pipeline import Recommender
from ..prompts import load_prompt
from ..retrieval import fuse
from ..retrieval.steering import ANCHOR, REQUEST
from ..settings import Settings
from .beyond import GroupContext, bootstrap_indices, describe, percentile_interval, split_context
from .metrics import evaluate_rankings
from .product import Bench, StageWorld, ratings_by_user, split_catalog, split_store, stage_world
from .report import _md, cell
from .requests import VARIANTS, Attributes, RequestWriter, WrittenRequest
from .runner import sample_users
from .source import eval_state_dir, load_source
from .splits import protocol_a_split

Progress = Callable[[str, int], Callable[[int], None]]
K = 10


class ProtocolCConfig(BaseModel):
    """What one Protocol C run does (the product's stages come from :class:`Settings`)."""

    name: str = "protocol-c"
    users: int = Field(200, description="Seeded sample of users per split.")
    variants: list[str] = Field(default_factory=lambda: list(VARIANTS))
    request_weights: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
                                         description="Weights of the request source tried on validation.")
    llm: bool = Field(False, description="Write the 'model' requests and read every request with settings.llm.")
    requests_dir: Path | None = Field(None, description="Where request files live (default: the eval state dir).")


class Scored(BaseModel):
    """One request, read and scored under every request weight tried."""

    stage: str
    user: str
    variant: str
    text: str
    intent: dict
    ranks: dict[str, float] = Field(description="request weight -> target rank (inf when absent).")
    baseline_rank: float
    target_allowed: bool
    genre_recall: float | None
    decade_recovered: bool | None
    shown: dict[str, list[str]] = Field(description="request weight -> the top 10 shown.")
    baseline_shown: list[str] = Field(default_factory=list, description="The top 10 shown without the request.")


def _rank(items: Sequence[str], fused: np.ndarray, target: str, k: int = 100) -> tuple[float, list[str]]:
    order = np.argsort(-fused, kind="stable")
    ranked = [items[i] for i in order[:k]]
    return (float(ranked.index(target)) if target in ranked else np.inf), ranked[:K]


def agreement(intent: Intent, attrs: Attributes, variant: str, target) -> tuple[float | None, bool | None]:
    """Share of the written genres the parse recovered, and whether a written decade was recovered."""
    written = {g.lower() for g in attrs.genres} if variant != "vague" else set()
    parsed = {g.lower() for g in intent.genres}
    recall = len(written & parsed) / len(written) if written and variant == "templated" else None
    decade = None
    if attrs.decade and variant == "templated":
        year = item_year(target)
        decade = intent.year_min is not None and year is not None and intent.year_min <= year <= (intent.year_max or 9999)
    return recall, decade


def score_requests(world: StageWorld, requests: Sequence[WrittenRequest], parser: IntentParser,
                   weights: Sequence[float], progress=None) -> list[Scored]:
    """Read each request, pool the steered candidates once, and rank the target under every weight."""
    index = {u: n for n, u in enumerate(world.split.users)}
    retriever, fusion = world.retriever, world.fusion.weights
    out = []
    for request in requests:
        u = index[request.user]
        history, target = world.history(u), world.target(u)
        intent = parser.parse(request.text)
        steer = retriever.steer(intent)
        base_items, base_sources = retriever.pool(history)
        base_rank, base_shown = _rank(base_items, fuse(base_sources, fusion)[0], target) if base_items else (np.inf, [])
        items, sources = retriever.pool(history, request.text, steer=steer, every_source=True)
        ranks, shown = {}, {}
        for w in weights:
            if not items:
                ranks[str(w)], shown[str(w)] = np.inf, []
                continue
            fused, _ = fuse(sources, {**fusion, REQUEST: w, ANCHOR: retriever.steering_weights.get(ANCHOR, 1.0)}
                            if steer is not None else fusion)
            ranks[str(w)], shown[str(w)] = _rank(items, fused, target)
        item = world.engine.catalog[target]
        recall, decade = agreement(intent, request.attributes, request.variant, item)
        out.append(Scored(stage=request.stage, user=request.user, variant=request.variant, text=request.text,
                          intent=intent.model_dump(), ranks=ranks, baseline_rank=base_rank,
                          target_allowed=intent.allows(item), genre_recall=recall, decade_recovered=decade,
                          shown=shown, baseline_shown=base_shown))
        if progress:
            progress(1)
    return out


def ndcg_values(ranks: Sequence[float], k: int = K) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=float)
    return np.where(ranks < k, 1.0 / np.log2(np.where(np.isfinite(ranks), ranks, 0) + 2.0), 0.0)


def summary(ranks: Sequence[float]) -> dict[str, float]:
    """N@10 and R@10 with their standard errors over users."""
    ranks = np.asarray(ranks, dtype=float)
    metrics = evaluate_rankings(ranks, ks=(K,))
    n = max(len(ranks), 1)
    hits = (ranks < K).astype(float)
    return {f"N@{K}": metrics[f"N@{K}"], f"N@{K}_se": float(ndcg_values(ranks).std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            f"R@{K}": metrics[f"R@{K}"], f"R@{K}_se": float(hits.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "users": len(ranks)}


def described(ranks: Sequence[float], shown: Sequence[Sequence[str]], users: Sequence[int], targets: Sequence[str],
              split, context: GroupContext) -> dict:
    """N@10 and R@10 (with standard errors and 95% bootstrap intervals over users), the popularity bias
    of the shown top 10, and N@10 by target tier and user activity (:func:`~.beyond.describe`)."""
    index = split.item_index
    lists = [np.array([index[i] for i in items], dtype=np.int64) for items in shown]
    out = describe(np.asarray(ranks, dtype=float), [index[t] for t in targets], lists, context, users, ks=(K,))
    metrics = {k: v for k, v in out["metrics"].items() if not k.startswith(("MRR", "P@", "F1"))}
    base = summary(ranks)
    return {**metrics, f"N@{K}_se": base[f"N@{K}_se"], f"R@{K}_se": base[f"R@{K}_se"], "users": len(ranks),
            "intervals": {k: v for k, v in out["intervals"].items() if k in metrics}, "groups": out["groups"]}


def _mean_with_interval(values: Sequence[float], seed: int) -> tuple[float | None, list[float] | None]:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), percentile_interval(arr[bootstrap_indices(len(arr), seed)].mean(axis=1))


def violations(scored: Scored, weight: str, catalog) -> int:
    intent = Intent.model_validate(scored.intent)
    return sum(not intent.allows(catalog[i]) for i in scored.shown[weight])


def run_protocol_c(config: ProtocolCConfig, settings: Settings, runs_dir: Path | None = None,
                   progress: Progress | None = None, say: Callable[[str], None] = print) -> dict:
    """Write (or reuse) the requests, score every variant on validation and test, choose the request
    weight on validation; return the payload for :func:`~promptrec.evaluation.report.write_report`."""
    started = time.perf_counter()
    bar = progress or (lambda label, total: (lambda n: None))
    # the shipped fusion; the split is already k-core, so every split item stays in the collaborative index
    settings = settings.model_copy(update={"fusion": settings.fusion.model_copy(update={"min_item_support": 1})})
    source = load_source(settings)
    dataset = source.dataset
    runs_dir = Path(runs_dir) if runs_dir else eval_state_dir(settings, source)
    split = protocol_a_split(dataset.interactions.frame)
    say(f"{dataset.name} ({source.sha256[:12]}), split: {split.n_users} users, {split.n_items} items")
    product = Recommender(settings, dataset=dataset, llm=None if config.llm else False)
    catalog = split_catalog(split, dataset)
    store = split_store(runs_dir / "chroma", product.embedder, catalog)
    bench = Bench(settings, catalog, store, product.embedder, product.client, product.features,
                  ratings_by_user(dataset.interactions))
    worlds = {s: stage_world(split, s, bench, runs_dir / "collab") for s in ("valid", "test")}
    users = sample_users(split.n_users, config.users, settings.seed)

    writer_id = product.client.model_id if product.client else "no-model"
    prompt_hash = load_prompt(RequestWriter.template_name).hash
    folder = Path(config.requests_dir) if config.requests_dir else runs_dir / "requests"
    path = folder / f"protocol-c-{source.key}-{writer_id.split('@')[0]}-{prompt_hash}.jsonl"
    writer = RequestWriter(path, product.client, product.features, seed=settings.seed)
    variants = [v for v in config.variants if v != "model" or product.client is not None]
    pairs = [(stage, split.users[u], catalog[world.target(u)]) for stage, world in worlds.items() for u in users]
    t0 = time.perf_counter()
    requests = writer.write(pairs, variants, bar("writing requests", len(pairs)))
    written_s = time.perf_counter() - t0
    say(f"requests: {len(requests)} in {path} ({sum(r.rejected is not None for r in requests)} model requests "
        f"replaced by the templated one)")

    parser = IntentParser(catalog, product.client)
    weights = [float(w) for w in config.request_weights]
    scored: dict[str, list[Scored]] = {}
    for stage, world in worlds.items():
        mine = [r for r in requests if r.stage == stage]
        scored[stage] = score_requests(world, mine, parser, weights, bar(f"scoring [{stage}]", len(mine)))
    valid = scored["valid"]
    tried = {str(w): summary([s.ranks[str(w)] for s in valid])[f"N@{K}"] for w in weights}
    best = max(weights, key=lambda w: (tried[str(w)], -weights.index(w)))
    say(f"request weight chosen on validation: {best} (N@10 by weight: {tried})")

    rows = []
    index = {user: n for n, user in enumerate(split.users)}
    seed = settings.seed
    for stage in ("valid", "test"):
        context = split_context(split, stage, seed, dataset.users)
        for variant in variants:
            these = [s for s in scored[stage] if s.variant == variant]
            if not these:
                continue
            who = [index[s.user] for s in these]
            targets = [worlds[stage].target(u) for u in who]
            steered = described([s.ranks[str(best)] for s in these], [s.shown[str(best)] for s in these], who,
                                targets, split, context)
            baseline = described([s.baseline_rank for s in these], [s.baseline_shown for s in these], who, targets,
                                 split, context)
            recalls = [s.genre_recall for s in these if s.genre_recall is not None]
            decades = [float(s.decade_recovered) for s in these if s.decade_recovered is not None]
            counts = np.array([violations(s, str(best), catalog) for s in these], dtype=np.float64)
            allowed, allowed_ci = _mean_with_interval([float(s.target_allowed) for s in these], seed)
            recall, recall_ci = _mean_with_interval(recalls, seed)
            decade, decade_ci = _mean_with_interval(decades, seed)
            rows.append({
                "stage": stage, "variant": variant, "steered": steered, "history_only": baseline,
                "violations": int(counts.sum()),
                "target_allowed": allowed, "genre_recall": recall, "decade_recovered": decade,
                "intervals": {"violations": percentile_interval(counts[bootstrap_indices(len(counts), seed)].sum(axis=1)),
                              "target_allowed": allowed_ci, "genre_recall": recall_ci, "decade_recovered": decade_ci},
                "examples": [s.text for s in these[:3]],
            })
    meta = {
        "protocol": "C", "dataset": source.meta(), "users_per_split": len(users), "seed": settings.seed,
        "config": config.model_dump(mode="json"), "requests_file": path.name,
        "request_writer": writer_id, "prompt_hashes": {n: load_prompt(n).hash for n in ("write_request", "intent")},
        "intent_parser": "model + rules" if product.client else "rules",
        "fusion": settings.fusion.weights, "pool_depth": settings.fusion.candidate_depth,
        "request_weight": {"chosen": best, "tried_on_validation": tried},
        "intervals": "95% percentile bootstrap over users, 1,000 resamples seeded by the root seed "
                     "(coverage, Gini: basic bootstrap)",
        "groups": {s: split_context(split, s, settings.seed, dataset.users).describe_groups() for s in ("valid", "test")},
        "timings_s": {"write_requests": round(written_s, 1)}, "wall_s": round(time.perf_counter() - started, 1),
        "llm": product.client.stats.summary() if product.client else None,
    }
    return {"rows": rows, "meta": meta}


def _cell(figures: Mapping, name: str) -> str:
    return cell(figures.get(name), (figures.get("intervals") or {}).get(name))


def format_table(payload: Mapping) -> str:
    """The report as a Markdown table: every figure with its 95% bootstrap interval over users."""
    lines = ["| split | variant | users | N@10 with request | N@10 history only | R@10 with request | R@10 history only | "
             "violations | parse allows target | genre recall | decade recovered |", "|" + "---|" * 11]
    for row in payload["rows"]:
        s, b = row["steered"], row["history_only"]
        lines.append(f"| {row['stage']} | {row['variant']} | {s['users']} | {_cell(s, 'N@10')} | {_cell(b, 'N@10')} | "
                     f"{_cell(s, 'R@10')} | {_cell(b, 'R@10')} | {_cell(row, 'violations')} | "
                     f"{_cell(row, 'target_allowed')} | {_cell(row, 'genre_recall')} | {_cell(row, 'decade_recovered')} |")
    return "\n".join(lines)


def format_beyond(payload: Mapping) -> str:
    """Popularity bias of the shown top 10 and N@10 by target tier and user activity, with the request
    and history only, as Markdown tables."""
    cols = ("gini", "long_tail_share", "tail_share", "avg_pop", "coverage")
    lines = ["| split | variant | " + " | ".join(f"{c} with request | {c} history only" for c in cols) + " |",
             "|" + "---|" * (2 + 2 * len(cols))]
    for row in payload["rows"]:
        cells = [row["stage"], row["variant"]]
        for c in cols:
            cells += [_cell(row["steered"], c), _cell(row["history_only"], c)]
        lines.append("| " + " | ".join(cells) + " |")
    for kind, labels in (("target_tier", ("head", "torso", "tail")), ("activity", ("light", "medium", "heavy"))):
        lines += ["", "| split | variant | " + " | ".join(f"N@10 {g} with request | N@10 {g} history only" for g in labels)
                  + " |", "|" + "---|" * (2 + 2 * len(labels))]
        for row in payload["rows"]:
            cells = [row["stage"], row["variant"]]
            for label in labels:
                for side in ("steered", "history_only"):
                    g = row[side].get("groups", {}).get(kind, {}).get(label)
                    cells.append("–" if g is None else f"{_cell(g, 'N@10')} ({g['users']})")
            lines.append("| " + " | ".join(cells) + " |")
    kinds = sorted({k for row in payload["rows"] for k in row["steered"].get("groups", {}) if k.startswith("attribute:")})
    for kind in kinds:
        labels = sorted({g for row in payload["rows"] for g in row["steered"]["groups"].get(kind, {})})
        lines += ["", f"N@10 by {_md(kind.split(':', 1)[1])} (users file):", "",
                  "| split | variant | " + " | ".join(f"{_md(g)} with request | {_md(g)} history only" for g in labels) + " |",
                  "|" + "---|" * (2 + 2 * len(labels))]
        for row in payload["rows"]:
            cells = [row["stage"], row["variant"]]
            for label in labels:
                for side in ("steered", "history_only"):
                    g = row[side]["groups"].get(kind, {}).get(label)
                    cells.append("–" if g is None else f"{_cell(g, 'N@10')} ({g['users']})")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["ProtocolCConfig", "format_beyond", "format_table", "run_protocol_c", "score_requests"]
