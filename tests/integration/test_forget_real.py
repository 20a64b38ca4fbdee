"""`promptrec forget` with real components: SmolLM2 replies in a real SQLite cache, a real CLI process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from promptrec import Recommender
from promptrec.privacy import user_tag
from promptrec.settings import Settings
from promptrec.testing import dataset_slice

pytestmark = pytest.mark.integration


def replies_of(path, tag) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [t for (t,) in db.execute(
            "SELECT text FROM replies WHERE key IN (SELECT key FROM owners WHERE owner = ?)", (tag,))]
    finally:
        db.close()


def state_bytes(state_dir) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(state_dir.rglob("*")) if p.is_file())


def test_forget_removes_a_users_real_model_replies_from_disk(movielens, tmp_path):
    data = dataset_slice(movielens, n_users=12, max_history=30)
    state = tmp_path / "state"
    settings = Settings(state_dir=state, llm={"model": "small", "n_ctx": 4096},
                        fusion={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1},
                        rerank={"depth": 6}, profile={"token_budget": 200})
    rec = Recommender(settings, dataset=data)
    me, other = data.interactions.users[:2]
    rec.recommend(me, k=3)
    rec.recommend(other, k=3)
    mine, theirs = replies_of(settings.llm_cache_path, user_tag(me)), replies_of(settings.llm_cache_path, user_tag(other))
    assert len(mine) == 1 + 3 and len(theirs) == 1 + 3  # each user's profile and a reason per shown item
    rec.client.cache.close()

    env = {**os.environ, "PROMPTREC_STATE_DIR": str(state)}
    done = subprocess.run([sys.executable, "-m", "promptrec", "forget", me], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"Forgot user {me}" in done.stdout and f"{len(mine)} cached model replies deleted" in done.stdout

    after = state_bytes(state)
    distinct = [t for t in mine if t not in theirs]
    assert distinct and not any(t.encode() in after for t in distinct)
    assert user_tag(me).encode() not in after
    assert replies_of(settings.llm_cache_path, user_tag(other)) == theirs
    assert not list(state.rglob("collab-*.npz"))
