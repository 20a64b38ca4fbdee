"""promptrec: an LLM-prompting recommender.

>>> from promptrec import recommend          # doctest: +SKIP
>>> for rec in recommend("1", k=5).items:   # doctest: +SKIP
...     print(rec.rank, rec.title, "-", rec.explanation)

Heavy modules load on first use, so ``import promptrec`` is quick.
"""

from __future__ import annotations

import threading
from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Recommender": "promptrec.pipeline",
    "UnknownUser": "promptrec.pipeline",
    "UnknownItems": "promptrec.pipeline",
    "Settings": "promptrec.settings",
    "Recommendation": "promptrec.types",
    "RecommendationList": "promptrec.types",
    "UserProfile": "promptrec.types",
    "ItemFeatures": "promptrec.types",
    "Candidate": "promptrec.types",
    "History": "promptrec.types",
}

__all__ = ["recommend", "default_recommender", *_EXPORTS]

if TYPE_CHECKING:
    from .pipeline import Recommender
    from .types import RecommendationList

_default: Recommender | None = None
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'promptrec' has no attribute {name!r}")


def default_recommender() -> Recommender:
    """The process-wide :class:`Recommender` built from the environment's settings (built once)."""
    global _default
    with _lock:
        if _default is None:
            from .pipeline import Recommender

            _default = Recommender()
        return _default


def recommend(user_id: str | int, k: int = 10, **options: Any) -> RecommendationList:
    """Top-``k`` explained recommendations for ``user_id`` with the default settings.

    Options (``request``, ``exclude``, ``like``) are passed to :meth:`Recommender.recommend`.
    Raises :class:`UnknownUser` for a user id that is not in the data.
    """
    return default_recommender().recommend(user_id, k=k, **options)
