"""The profile cutoff lies before every validation-fold target (so profiles never see one)."""

import pandas as pd

from promptrec.evaluation.knowledge import PROFILE_CUT, profile_history
from promptrec.evaluation.splits import protocol_a_split
from promptrec.evaluation.tuning import validation_folds
from promptrec.state import DatasetState, model_slug


def _split():
    rows = [(u, i, t) for u in range(6) for t, i in enumerate(range(u, u + 9))]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).astype({"user_id": str, "item_id": str})
    return protocol_a_split(frame)


def test_profile_history_excludes_every_fold_target():
    split = _split()
    folds = validation_folds(split, PROFILE_CUT + 1)
    for u, user in enumerate(split.users):
        known = set(profile_history(split, u))
        assert known, "every user keeps some history"
        for fold in folds:
            if user not in fold.users:
                continue
            f = fold.users.index(user)
            assert fold.items[int(fold.valid_target[f])] not in known
            assert fold.items[int(fold.test_target[f])] not in known
        # and nothing more than needed is cut: the item right after the cutoff is the earliest fold target
        earliest = folds[-1]
        f = earliest.users.index(user)
        assert profile_history(split, u) == [earliest.items[i] for i in earliest.history(f, "valid")]


def test_features_per_model_paths_differ(tmp_path):
    state = DatasetState(tmp_path, "demo-0123456789abcdef")
    a, b = state.features_for("SmolLM2.gguf@aa"), state.features_for("qwen.gguf@bb")
    assert a != b and a.parent == b.parent == state.root / "features"
    assert model_slug("SmolLM2-135M-Instruct.Q4_1.gguf@97bd") == "smollm2-135m-instruct-q4-1-gguf-97bd"
