"""Real `promptrec` processes (real MiniLM embedder, real embedded Chroma) started together on an empty
state dir, with the dataset given as an absolute folder path."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from promptrec.testing import dataset_slice, write_dataset_folder

pytestmark = pytest.mark.integration


def test_three_cli_processes_on_an_empty_state_dir(movielens, tmp_path):
    folder = tmp_path / "data" / "ml-slice"
    data = dataset_slice(movielens, n_users=15, max_history=30)
    write_dataset_folder(data, folder)
    user = data.interactions.users[0]
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    env = {**os.environ, "PROMPTREC_STATE_DIR": str(tmp_path / "state"), "PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1"}
    command = [sys.executable, "-m", "promptrec", "--dataset", str(folder.resolve()), "recommend",
               user, "--k", "5", "--no-llm", "--json"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    results = [[(r["item_id"], r["score"]) for r in json.loads(out)["items"]] for out, _ in outputs]
    assert len(results[0]) == 5 and results[1] == results[0] and results[2] == results[0]
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == before
    (root,) = (tmp_path / "state" / "derived").iterdir()
    assert root.name.startswith("ml-slice-") and (root / "index-complete").exists()
