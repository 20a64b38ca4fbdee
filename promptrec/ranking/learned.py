"""Learning to rank over per-candidate signals: LightGBM lambdarank or a linear listwise model.

Training data is a set of queries (one user's candidate pool at one validation fold) with a
graded relevance per candidate (the held-out item > 0). The fitted model is one JSON file: the
kind, the signal names and their definition hash, metadata about its training data, and the
model itself (LightGBM's own text format as a string, or the linear weights). Nothing in it can
run code, and a file made for other signal definitions is refused with a one-line error.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from ..errors import ConfigError, StoreError

FORMAT = "promptrec-learned-fusion/1"
KINDS = ("lightgbm", "linear")


class FusionModelError(StoreError):
    """A learned-fusion model file that cannot be used (other signals, unreadable, wrong format)."""


@dataclass
class Queries:
    """Stacked candidate pools: rows of signals, a relevance label per row, and query boundaries.

    ``offsets[q]:offsets[q+1]`` are query ``q``'s rows; ``users[q]`` groups queries of one user
    (cross-validation never splits a user)."""

    X: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    users: list[str]

    @property
    def n_queries(self) -> int:
        return len(self.offsets) - 1

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, queries: Sequence[int], columns: Sequence[int] | None = None) -> Queries:
        rows = [np.arange(self.offsets[q], self.offsets[q + 1]) for q in queries]
        rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        sizes = self.sizes()[list(queries)] if len(queries) else np.zeros(0, dtype=np.int64)
        X = self.X[rows] if columns is None else self.X[np.ix_(rows, list(columns))]
        return Queries(X, self.labels[rows], np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                       [self.users[q] for q in queries])

    def with_labels(self, labels: np.ndarray) -> Queries:
        return Queries(self.X, labels, self.offsets, self.users)


def _segments(offsets: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


@dataclass
class LinearModel:
    """Listwise softmax ranker: score = w . standardised signals (NaN -> 0, the mean)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = np.nan_to_num((X - self.mean) / self.scale)
        return Z @ self.weights

    @classmethod
    def fit(cls, q: Queries, l2: float = 1.0) -> LinearModel:
        with warnings.catch_warnings():  # an all-missing signal has no mean: it gets 0 and scale 1
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nan_to_num(np.nanmean(q.X, axis=0)) if len(q.X) else np.zeros(q.X.shape[1])
            scale = np.nanstd(q.X, axis=0) if len(q.X) else np.ones(q.X.shape[1])
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        Z = np.nan_to_num((q.X - mean) / scale)
        seg = _segments(q.offsets)
        target = q.labels / np.maximum(np.bincount(seg, weights=q.labels, minlength=q.n_queries), 1e-12)[seg]
        has = np.bincount(seg, weights=q.labels, minlength=q.n_queries) > 0
        n_used = max(int(has.sum()), 1)
        # a query weighs its best label over the mean of those (all 1 with next-item labels; with graded
        # labels a liked target's query counts more than a disliked one's: the multi-task objective)
        best = np.zeros(q.n_queries)
        np.maximum.at(best, seg, q.labels)
        weight = np.where(has, best / max(best[has].mean() if has.any() else 1.0, 1e-12), 0.0)
        target = target * weight[seg]

        def loss(w):
            s = Z @ w
            top = np.full(q.n_queries, -np.inf)
            np.maximum.at(top, seg, s)
            e = np.exp(s - top[seg])
            denom = np.bincount(seg, weights=e, minlength=q.n_queries)
            lse = top + np.log(np.maximum(denom, 1e-300))
            p = e / denom[seg]
            value = (np.sum(weight * np.where(has, lse, 0.0)) - np.sum(target * s)) / n_used + 0.5 * l2 * w @ w / n_used
            grad = Z.T @ (p * weight[seg] - target) / n_used + l2 * w / n_used
            return value, grad

        result = minimize(loss, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        return cls(mean, scale, result.x)

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "weights": self.weights.tolist()}

    @classmethod
    def from_json(cls, data: Mapping) -> LinearModel:
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1 or not all(np.all(np.isfinite(a)) for a in arrays):
            raise FusionModelError("malformed linear fusion model")
        return cls(*arrays)


def lightgbm_params(params: Mapping, seed: int) -> dict:
    """LightGBM lambdarank parameters: deterministic, quiet, on one thread unless ``PROMPTREC_LGBM_THREADS`` says
    more (OpenMP threads spin-wait, which on a shared, oversubscribed machine costs far more than it gains)."""
    return {
        "objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "verbosity": -1, "seed": seed,
        "deterministic": True, "force_row_wise": True, "num_threads": int(os.environ.get("PROMPTREC_LGBM_THREADS", 1)),
        "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 50, "feature_fraction": 0.8,
        "bagging_fraction": 1.0, "lambdarank_truncation_level": 20, "max_bin": 63, **{k: v for k, v in params.items() if k != "rounds"},
    }


def _lightgbm():
    try:
        import lightgbm
    except ImportError:
        raise ConfigError("the learned fusion needs LightGBM: pip install 'promptrec[fusion]'") from None
    return lightgbm


def fit_lightgbm(q: Queries, params: Mapping, seed: int):
    lgb = _lightgbm()
    data = lgb.Dataset(q.X, label=q.labels, group=q.sizes(), free_raw_data=True)
    return lgb.train(lightgbm_params(params, seed), data, num_boost_round=int(params.get("rounds", 200)))


@dataclass
class LearnedFusion:
    """A fitted ranker over named signals, with the metadata of its training."""

    kind: str
    signals: list[str]
    signals_hash: str
    model: object
    params: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, kind: str, q: Queries, signals: Sequence[str], signals_hash: str, params: Mapping | None = None,
            seed: int = 0, metadata: Mapping | None = None) -> LearnedFusion:
        params = dict(params or {})
        if kind == "lightgbm":
            model = fit_lightgbm(q, params, seed)
        elif kind == "linear":
            model = LinearModel.fit(q, float(params.get("l2", 1.0)))
        else:
            raise ConfigError(f"unknown learned fusion kind {kind!r}; known: {', '.join(KINDS)}")
        return cls(kind, list(signals), signals_hash, model, params, dict(metadata or {}))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """A score per row (higher ranks first)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.signals):
            raise FusionModelError(f"expected {len(self.signals)} signals per candidate, got shape {X.shape}")
        if self.kind == "lightgbm":
            return np.asarray(self.model.predict(X, num_threads=1), dtype=np.float64)
        return self.model.predict(X)

    # ----- the file -----
    def to_json(self) -> dict:
        model = self.model.model_to_string() if self.kind == "lightgbm" else self.model.to_json()
        return {"format": FORMAT, "kind": self.kind, "signals": self.signals, "signals_hash": self.signals_hash,
                "params": self.params, "metadata": self.metadata, "model": model}

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json()))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path, signals_hash: str | None = None) -> LearnedFusion:
        """Read a model file; with ``signals_hash``, refuse one made for other signal definitions."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise FusionModelError(f"cannot read the learned fusion model {path}: {err}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("kind") not in KINDS:
            raise FusionModelError(f"{path} is not a promptrec learned fusion model")
        if signals_hash is not None and data.get("signals_hash") != signals_hash:
            raise FusionModelError(
                f"{path} was trained on other signals (hash {data.get('signals_hash')}, these are {signals_hash}); "
                "retrain it (Recommender.fit_fusion() or eval/learned_fusion.py)")
        signals = data.get("signals")
        if not isinstance(signals, list) or not all(isinstance(s, str) for s in signals):
            raise FusionModelError(f"{path} has a malformed signal list")
        if data["kind"] == "lightgbm":
            text = data.get("model")
            if not isinstance(text, str):
                raise FusionModelError(f"{path} has no LightGBM model text")
            try:
                model = _lightgbm().Booster(model_str=text)
            except Exception as err:  # noqa: BLE001 - LightGBM raises its own error types for bad text
                raise FusionModelError(f"{path}: unreadable LightGBM model ({type(err).__name__})") from None
            if model.num_feature() != len(signals):
                raise FusionModelError(f"{path}: the LightGBM model uses {model.num_feature()} signals, the file names {len(signals)}")
        else:
            model = LinearModel.from_json(data.get("model") or {})
            if len(model.weights) != len(signals):
                raise FusionModelError(f"{path}: {len(model.weights)} weights for {len(signals)} signals")
        return cls(data["kind"], signals, str(data.get("signals_hash")), model, dict(data.get("params") or {}),
                   dict(data.get("metadata") or {}))


def query_ranks(scores: np.ndarray, q: Queries) -> np.ndarray:
    """0-based rank of each query's best-labelled row under ``scores`` (inf without a positive row).

    Ties are broken by pool position (earlier first), like the stable sort of the hand-weighted fusion."""
    ranks = np.full(q.n_queries, np.inf)
    for n in range(q.n_queries):
        a, b = q.offsets[n], q.offsets[n + 1]
        labels = q.labels[a:b]
        if b == a or labels.max() <= 0:
            continue
        s = scores[a:b]
        t = int(np.argmax(labels))
        ranks[n] = float(np.sum(s > s[t]) + np.sum(s[:t] == s[t]))
    return ranks


def user_folds(users: Sequence[str], n_folds: int, seed: int) -> np.ndarray:
    """A cross-validation fold per query, the same for every query of one user (seeded)."""
    unique = sorted(set(users))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[i]: n % n_folds for n, i in enumerate(order)}
    return np.array([fold_of[u] for u in users], dtype=np.int64)


def out_of_fold_scores(kind: str, q: Queries, params: Mapping, folds: np.ndarray, seed: int,
                       train_labels: np.ndarray | None = None) -> np.ndarray:
    """Scores of every row from a model trained on the other user folds (``train_labels``: other training labels)."""
    scores = np.zeros(len(q.X))
    train_q = q if train_labels is None else q.with_labels(train_labels)
    for f in np.unique(folds):
        train = [n for n in range(q.n_queries) if folds[n] != f]
        test = [n for n in range(q.n_queries) if folds[n] == f]
        part = train_q.subset(train)
        keep = [n for n in range(part.n_queries) if part.labels[part.offsets[n]:part.offsets[n + 1]].max(initial=0) > 0]
        model = LearnedFusion.fit(kind, part.subset(keep), [], "", params, seed)
        model.signals = [""] * q.X.shape[1]
        held = q.subset(test)
        predicted = model.predict(held.X)
        for j, n in enumerate(test):
            scores[q.offsets[n]:q.offsets[n + 1]] = predicted[held.offsets[j]:held.offsets[j + 1]]
    return scores


__all__ = ["FORMAT", "KINDS", "FusionModelError", "LearnedFusion", "LinearModel", "Queries", "fit_lightgbm",
           "lightgbm_params", "out_of_fold_scores", "query_ranks", "user_folds"]
