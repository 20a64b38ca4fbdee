"""Someone with no history, through the real CLI and the real smallest GGUF (SmolLM2-135M).

This used to kill the process (exit 139): the rerank schema had an empty ``enum`` of history ids,
which llama.cpp could not compile into a grammar.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from promptrec.testing import dataset_slice, write_dataset_folder
from promptrec.types import RecommendationList

pytestmark = pytest.mark.integration

ENV = {"PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1", "PROMPTREC_RERANK__DEPTH": "6", "COLUMNS": "160",
       "PROMPTREC_DEADLINE_S": "600"}  # a busy machine must not turn the model's answer into a fallback


@pytest.fixture(scope="module")
def folder(movielens, tmp_path_factory):
    path = tmp_path_factory.mktemp("slice")
    write_dataset_folder(dataset_slice(movielens, n_users=20, max_history=40), path)
    return path


def run(args: list[str], tmp_path, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, "PROMPTREC_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300)


def test_chat_with_a_request_and_no_user(folder, tmp_path):
    done = run(["-m", "promptrec", "--dataset", str(folder), "--model", "small", "chat", "--k", "3"], tmp_path,
               stdin="something funny\n/quit\n")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "Request: something funny" in out and "Recommendations for your history" in out
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in out and out.rstrip().endswith("Bye.")


SCRIPT = """
import sys
from promptrec import Recommender
from promptrec.settings import Settings
rec = Recommender(Settings(dataset=sys.argv[1], llm={"model": "small"}))
print(rec.recommend_for_history([], k=3).model_dump_json())
"""


def test_recommend_for_an_empty_history_with_the_real_model(folder, tmp_path):
    done = run(["-c", SCRIPT, str(folder)], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = RecommendationList.model_validate_json(done.stdout.strip().splitlines()[-1])
    assert len(result.items) == 3 and len({r.item_id for r in result.items}) == 3
    assert result.model_id.startswith("SmolLM2-135M-Instruct.Q4_1.gguf@")
    assert result.profile is None and all(r.cited_history == [] for r in result.items)
    assert result.ordered_by == "fusion"  # the product's order; the model explains it
    assert all(r.explanation for r in result.items)  # a reason for every item: the model's, or the evidence's
