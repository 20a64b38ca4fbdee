"""Where an evaluation finds the model's offline knowledge: item features (per model, per dataset)
and user profiles computed at a cutoff that lies before every target the evaluation scores.

Profiles are offline knowledge: the profile job computes one per user on the history that ends
``PROFILE_CUT`` items before the end of the training history (the earliest validation fold's
history, see :func:`~promptrec.evaluation.splits.truncate_last`). That one profile is then used by
every validation fold, the validation stage and the test stage without leaking any of their targets.
"""

from __future__ import annotations

from pathlib import Path

from ..distributed.profiles import ProfileStore
from ..knowledge import FeatureStore
from ..state import DatasetState, model_slug
from .splits import LeaveLastOutSplit

PROFILE_CUT = 2  # = folds - 1 for the 3 validation folds (EvalConfig.folds) a learned fusion trains on


def eval_feature_store(state: DatasetState, model_id: str, style: str = "closed") -> FeatureStore:
    """The item features ``model_id`` made for this dataset with the ``style`` prompt (the product's store)."""
    return FeatureStore(state.features_for(model_id, style))


def eval_profile_store(runs_dir: Path, model_id: str, cut: int = PROFILE_CUT) -> ProfileStore:
    """Profiles ``model_id`` made for this evaluation's users at ``cut`` (keyed by user id)."""
    return ProfileStore(Path(runs_dir) / "profiles" / f"{model_slug(model_id)}-cut{cut}.jsonl")


def profile_history(split: LeaveLastOutSplit, u: int, cut: int = PROFILE_CUT) -> list[str]:
    """User ``u``'s items in time order, known before every target of the evaluation.

    With folds ``[split] + [truncate_last(split, n) for n in 1..F-1]`` the earliest target is the
    training history's item ``F - 1`` from its end; ``cut = F - 1`` leaves exactly the items before
    it: ``train[: len(train) - cut]``."""
    train = split.train[u]
    return [split.items[i] for i in train[: max(0, len(train) - cut)]]
