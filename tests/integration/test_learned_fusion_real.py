"""The learned fusion on real data with the real MiniLM embedder and a real Chroma store, through the CLI:
`promptrec fit-fusion` trains and saves the model, and `recommend` answers with it in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from promptrec.ranking.learned import LearnedFusion
from promptrec.ranking.product import MODEL_FILE
from promptrec.testing import dataset_slice, write_dataset_folder

pytestmark = pytest.mark.integration


def test_fit_fusion_on_real_data_then_recommend(movielens, tmp_path):
    real_slice = dataset_slice(movielens, n_users=80, max_history=60)
    folder = tmp_path / "slice"
    write_dataset_folder(real_slice, folder)
    state = tmp_path / "state"
    env = {**os.environ, "PROMPTREC_STATE_DIR": str(state), "PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1", "COLUMNS": "200"}
    fit = subprocess.run([sys.executable, "-m", "promptrec", "--dataset", str(folder), "fit-fusion", "--folds", "2"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert fit.returncode == 0, fit.stderr[-2000:]
    assert "cross-validated N@10" in fit.stdout
    [path] = list(state.rglob(MODEL_FILE))
    saved = json.loads(path.read_text())
    meta = saved["metadata"]
    assert meta["users"] > 50 and meta["folds"] == 2 and meta["lightgbm_version"] == "4.7.0"
    model = LearnedFusion.load(path, saved["signals_hash"])
    assert model.kind == "linear" and len(model.signals) == len(saved["signals"])  # the validated default learner
    assert meta["pool_depth"] == 200
    user = real_slice.interactions.users[3]
    out = subprocess.run([sys.executable, "-m", "promptrec", "--dataset", str(folder), "recommend", user, "--k", "5",
                          "--no-llm", "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    items = json.loads(out.stdout)["items"]
    assert len(items) == 5 and not {i["item_id"] for i in items} & set(real_slice.interactions.history(user))
