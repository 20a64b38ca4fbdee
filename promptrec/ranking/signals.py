"""Per-candidate signals for a learned fusion g(U, C): one row of named numbers per pooled candidate.

Every signal is listed in :func:`signal_specs` with its name, its group (the ablations drop whole
groups) and what it measures. A missing value (an item without model features, a user without a
profile) is NaN; LightGBM routes NaN itself and the linear model sees 0 plus the ``has_*`` flags.
:func:`signals_hash` names the definitions (the list and this module's code), so a model trained
on other signals is never applied to these.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..collab.base import recency_weights
from ..collab.blend import WeightedBlend
from ..data import Catalog, InteractionLog
from ..knowledge.vector_cache import VectorCache
from ..types import History, ItemFeatures, UserProfile

DAY = 86400.0
TIMEPOP_DAYS = 90.0
LLM_GROUPS = ("feature_sim", "profile_sim", "profile_overlap", "model_vectors")
THEME_WINDOW = 20
_WORD = re.compile(r"[a-z][a-z'-]+")
_STOP = frozenset("a an and the of to in on for with from by about at as is are or not movie movies film films "
                  "story stories that this who it its his her their they them".split())


@dataclass(frozen=True)
class Signal:
    """One named per-candidate signal."""

    name: str
    group: str
    description: str


def collab_sources(scorers: Mapping[str, object]) -> list[str]:
    """The collaborative score names of a fitted model: each scorer, and each component of a blend."""
    names = []
    for name, scorer in scorers.items():
        names.append(name)
        if isinstance(scorer, WeightedBlend):
            names += [f"{name}.{part}" for part in scorer.components]
    return names


def signal_specs(sources: Sequence[str]) -> list[Signal]:
    """Every signal, in column order, for a collaborative model with score names ``sources``."""
    specs = []
    for s in sources:
        specs.append(Signal(f"cf:{s}", "collab", f"{s} score (raw)"))
        specs.append(Signal(f"cf_rank:{s}", "collab", f"{s} rank within the pool / pool size (0 = best)"))
    specs += [
        Signal("pop_log", "popularity", "log(1 + interactions of the item in the fit data)"),
        Signal("timepop_log", "recency", f"log(1 + interactions in the {TIMEPOP_DAYS:.0f} days before the user's last one)"),
        Signal("recency_log", "recency", "log(1 + days from the item's last interaction to the end of the fit data)"),
        Signal("history_log", "user", "log(1 + history length) (lets trees condition on activity)"),
        Signal("text_sim", "text", "raw-text vector . recency-weighted mean of the history's raw-text vectors"),
        Signal("text_sim_max", "text", "largest raw-text cosine to one of the 10 most recent history items"),
        Signal("feat_sim", "feature_sim", "feature-text vector . recency-weighted mean of the history's feature-text vectors"),
        Signal("has_features", "feature_sim", "1 when the model made features for the candidate"),
        Signal("theme_share", "feature_sim", f"mean over the candidate's model themes and mood of the share of the "
               f"{THEME_WINDOW} most recent described history items that have it"),
        Signal("model_sim", "model_vectors", "the model's own vector of the candidate (mean of its last hidden states "
               "over title + genres, centred) . recency-weighted mean of the history's"),
        Signal("model_sim_max", "model_vectors", "largest model-vector cosine to one of the 10 most recent history items"),
        Signal("profile_sim_raw", "profile_sim", "embedded profile text . candidate raw-text vector"),
        Signal("profile_sim_feat", "profile_sim", "embedded profile text . candidate feature-text vector"),
        Signal("like_overlap", "profile_overlap", "words shared by the candidate's genres/themes/mood and the profile's likes + recent interests"),
        Signal("dislike_overlap", "profile_overlap", "words shared by the candidate's genres/themes/mood and the profile's dislikes"),
        Signal("has_profile", "profile_overlap", "1 when the user has a model-made profile"),
    ]
    return specs


def signal_names(sources: Sequence[str]) -> list[str]:
    return [s.name for s in signal_specs(sources)]


def signals_hash(sources: Sequence[str]) -> str:
    """Names the signal definitions: the column list and the code of this module."""
    digest = hashlib.sha256(json.dumps([s.__dict__ for s in signal_specs(sources)]).encode())
    digest.update(inspect.getsource(inspect.getmodule(signal_specs)).encode())
    return digest.hexdigest()[:16]


def words(text: str) -> set[str]:
    """Lower-case content words (no stop words), plurals made singular ("comedies" -> "comedy")."""
    out = set()
    for w in _WORD.findall(text.lower()):
        if w in _STOP or len(w) < 3:
            continue
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "y"
        elif w.endswith("s") and not w.endswith("ss") and len(w) > 4:
            w = w[:-1]
        out.add(w)
    return out


def item_words(catalog_genres: str, features: ItemFeatures | None) -> set[str]:
    text = catalog_genres.replace("|", " ")
    if features is not None:
        text += " " + " ".join(features.themes) + " " + features.mood
    return words(text)


@dataclass
class ItemKnowledge:
    """What the signals know about each item: text vectors, model features and interaction statistics.

    Build it with :meth:`build`; ``feature_vectors`` holds only items the model described."""

    raw_vectors: dict[str, np.ndarray]
    feature_vectors: dict[str, np.ndarray]
    words: dict[str, set[str]]
    themes: dict[str, frozenset[str]] = field(default_factory=dict)  # the model's themes and mood, per described item
    model_vectors: dict[str, np.ndarray] = field(default_factory=dict)  # the model's own vectors (model_vectors.py)
    counts: dict[str, float] = field(default_factory=dict)
    times: dict[str, np.ndarray] = field(default_factory=dict)
    end_time: float = 0.0

    @classmethod
    def build(cls, catalog: Catalog, features: Mapping[str, ItemFeatures], vectors: VectorCache,
              log: InteractionLog | None = None) -> ItemKnowledge:
        items = list(catalog)
        raw = vectors.embed([it.text() for it in items])
        described = [it for it in items if features.get(it.item_id) is not None]
        feat = vectors.embed([features[it.item_id].text() for it in described])
        knowledge = cls(
            raw_vectors={it.item_id: raw[n] for n, it in enumerate(items)},
            feature_vectors={it.item_id: feat[n] for n, it in enumerate(described)},
            words={it.item_id: item_words(it.fields.get("genres", ""), features.get(it.item_id)) for it in items},
            themes={it.item_id: frozenset(t.casefold() for t in [*features[it.item_id].themes, features[it.item_id].mood])
                    for it in described},
        )
        if log is not None:
            knowledge.set_interactions(log)
        return knowledge

    def set_interactions(self, log: InteractionLog) -> ItemKnowledge:
        """Popularity and recency statistics from the data a model is fitted on."""
        frame = log.frame
        self.counts = frame["item_id"].value_counts().astype(float).to_dict()
        stamps = frame["timestamp"].to_numpy(dtype=np.float64)
        self.end_time = float(stamps.max()) if len(stamps) else 0.0
        self.times = {item: np.sort(group.to_numpy(dtype=np.float64))
                      for item, group in frame.groupby("item_id", sort=False)["timestamp"]}
        return self


def _mean_vector(history: Sequence[str], vectors: Mapping[str, np.ndarray], half_life: float | None,
                 window: int) -> np.ndarray | None:
    recent = list(history[-window:])
    weights = recency_weights(len(recent), half_life)
    total, used = None, False
    for w, item in zip(weights, recent):
        v = vectors.get(item)
        if v is not None:
            total = w * v if total is None else total + w * v
            used = True
    if not used or not np.any(total):
        return None
    return total / np.linalg.norm(total)


class SignalBuilder:
    """Turns a user's pool (items + every source's raw scores) into the signal matrix.

    Args:
        collab: The fitted :class:`~promptrec.retrieval.CollaborativeModel` of this stage.
        knowledge: Item vectors, features and fit-data statistics.
        vectors: Embeds profile texts (cached); without it the profile-similarity signals are missing.
        half_life, window: Recency weighting of the history's mean vectors (as the retriever's).
    """

    def __init__(self, collab, knowledge: ItemKnowledge, vectors: VectorCache | None = None,
                 half_life: float | None = 20.0, window: int = 50) -> None:
        self.collab = collab
        self.knowledge = knowledge
        self.vectors = vectors
        self.half_life = half_life
        self.window = window
        self.sources = collab_sources(collab.scorers) if collab is not None else []
        self.specs = signal_specs(self.sources)
        self.names = [s.name for s in self.specs]

    @property
    def hash(self) -> str:
        return signals_hash(self.sources)

    def collab_scores(self, history: History) -> dict[str, np.ndarray]:
        """Every collaborative score over the model's items (blends also by component)."""
        if self.collab is None:
            return {}
        idx, stamps = self.collab.encode(history.items, history.timestamps)
        out = {}
        for name, scorer in self.collab.scorers.items():
            out[name] = scorer.score_one(idx, stamps)
            if isinstance(scorer, WeightedBlend):
                for part, component in scorer.components.items():
                    out[f"{name}.{part}"] = component.score_one(idx, stamps)
        return out

    def matrix(self, history: History, items: Sequence[str], profile: UserProfile | None = None) -> np.ndarray:
        """The (len(items), len(names)) signal matrix; NaN marks a missing value."""
        profile_vector = None
        if profile is not None and self.vectors is not None and profile.text():
            profile_vector = self.vectors.embed([profile.text()])[0].astype(np.float64)
        n = len(items)
        k = self.knowledge
        columns: dict[str, np.ndarray] = {}
        scores = self.collab_scores(history)
        index = self.collab.index if self.collab is not None else {}
        pos = np.array([index.get(i, -1) for i in items], dtype=np.int64)
        for s in self.sources:
            raw = np.where(pos >= 0, scores[s][np.maximum(pos, 0)], np.nan) if n else np.zeros(0)
            columns[f"cf:{s}"] = raw
            filled = np.where(np.isfinite(raw), raw, -np.inf)
            order = np.argsort(-filled, kind="stable")
            rank = np.empty(n)
            rank[order] = np.arange(n)
            columns[f"cf_rank:{s}"] = rank / max(n, 1)
        columns["pop_log"] = np.log1p([k.counts.get(i, 0.0) for i in items])
        last = float(history.timestamps[-1]) if history.timestamps else k.end_time
        since = last - TIMEPOP_DAYS * DAY
        timepop, recency = np.zeros(n), np.full(n, np.nan)
        for j, item in enumerate(items):
            stamps = k.times.get(item)
            if stamps is not None and len(stamps):
                timepop[j] = np.searchsorted(stamps, last, "right") - np.searchsorted(stamps, since, "left")
                recency[j] = max(0.0, (k.end_time - stamps[-1]) / DAY)
        columns["timepop_log"] = np.log1p(timepop)
        columns["recency_log"] = np.log1p(recency)
        columns["history_log"] = np.full(n, math.log1p(len(history.items)))
        raw = np.stack([k.raw_vectors[i] if i in k.raw_vectors else np.full(_dim(k), np.nan) for i in items]) \
            if n else np.zeros((0, _dim(k)))
        columns["text_sim"], columns["text_sim_max"] = _similarities(k.raw_vectors, history.items, items,
                                                                     self.half_life, self.window, raw)
        feat = np.stack([k.feature_vectors[i] if i in k.feature_vectors else np.full(_dim(k), np.nan) for i in items]) \
            if n else np.zeros((0, _dim(k)))
        mean_feat = _mean_vector(history.items, k.feature_vectors, self.half_life, self.window)
        columns["feat_sim"] = feat @ mean_feat if mean_feat is not None else np.full(n, np.nan)
        columns["has_features"] = np.array([float(i in k.feature_vectors) for i in items])
        columns["theme_share"] = _theme_share(k.themes, history.items, items)
        columns["model_sim"], columns["model_sim_max"] = _similarities(k.model_vectors, history.items, items,
                                                                       self.half_life, self.window)
        has_profile = profile is not None and profile_vector is not None
        columns["profile_sim_raw"] = raw @ profile_vector if has_profile else np.full(n, np.nan)
        columns["profile_sim_feat"] = feat @ profile_vector if has_profile else np.full(n, np.nan)
        if profile is not None:
            likes = words(" ".join([*profile.likes, *profile.recent_interests]))
            dislikes = words(" ".join(profile.dislikes))
            columns["like_overlap"] = np.array([len(k.words.get(i, set()) & likes) for i in items], dtype=float)
            columns["dislike_overlap"] = np.array([len(k.words.get(i, set()) & dislikes) for i in items], dtype=float)
        else:
            columns["like_overlap"] = columns["dislike_overlap"] = np.full(n, np.nan)
        columns["has_profile"] = np.full(n, float(profile is not None))
        return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in self.names]) \
            if n else np.zeros((0, len(self.names)))


def _similarities(vectors: Mapping[str, np.ndarray], history: Sequence[str], items: Sequence[str],
                  half_life: float | None, window: int,
                  matrix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: its vector . the recency-weighted mean of the history's, and its largest cosine to one of the
    10 most recent history items; NaN where the candidate or the history has no vector. ``matrix``: the candidates'
    rows when the caller has stacked them already (NaN rows for a missing vector)."""
    n = len(items)
    if not vectors or not n:
        return np.full(n, np.nan), np.full(n, np.nan)
    if matrix is None:
        dim = len(next(iter(vectors.values())))
        matrix = np.stack([vectors[i] if i in vectors else np.full(dim, np.nan) for i in items])
    mean = _mean_vector(history, vectors, half_life, window)
    recent = [vectors[i] for i in history[-10:] if i in vectors]
    return (matrix @ mean if mean is not None else np.full(n, np.nan),
            (matrix @ np.stack(recent).T).max(axis=1) if recent else np.full(n, np.nan))


def _theme_share(themes: Mapping[str, frozenset[str]], history: Sequence[str], items: Sequence[str]) -> np.ndarray:
    """Per candidate: the mean, over its themes (and mood), of the share of the most recent described history
    items that have that theme; NaN when the candidate or the recent history has no features."""
    recent = [themes[i] for i in history if i in themes][-THEME_WINDOW:]
    if not recent:
        return np.full(len(items), np.nan)
    counts: dict[str, int] = {}
    for found in recent:
        for theme in found:
            counts[theme] = counts.get(theme, 0) + 1
    return np.array([np.mean([counts.get(t, 0) / len(recent) for t in sorted(themes[i])]) if themes.get(i) else np.nan
                     for i in items], dtype=np.float64)


def _dim(knowledge: ItemKnowledge) -> int:
    for v in knowledge.raw_vectors.values():
        return len(v)
    return 1


__all__ = ["LLM_GROUPS", "ItemKnowledge", "Signal", "SignalBuilder", "collab_sources", "item_words",
           "signal_names", "signal_specs", "signals_hash", "words"]
