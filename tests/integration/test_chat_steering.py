"""Chat as people use it, through the real CLI process with the local model: a request is read,
shown as understood, steers the list, and a follow-up refines it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from promptrec.testing import dataset_slice, write_dataset_folder

pytestmark = pytest.mark.integration


def test_multi_turn_refinement_with_the_local_model(movielens, tmp_path):
    real_slice = dataset_slice(movielens, n_users=20, max_history=40)
    folder = tmp_path / "slice"
    write_dataset_folder(real_slice, folder)
    user = real_slice.interactions.users[2]
    env = {**os.environ, "PROMPTREC_STATE_DIR": str(tmp_path / "state"), "PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1",
           "PROMPTREC_RERANK__DEPTH": "6", "PROMPTREC_PROFILE__ENABLED": "false", "PROMPTREC_DEADLINE_S": "600",
           "COLUMNS": "200"}
    script = f"/user {user}\na comedy\nno, older\nsomething else: a horror film\n/quit\n"
    done = subprocess.run([sys.executable, "-m", "promptrec", "--dataset", str(folder), "--model", "small",
                           "chat", "--k", "4"], input=script, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    understood = re.findall(r"understood: [^\n]*", out)
    assert len(understood) == 3, out[-3000:]
    assert understood[0].startswith("understood: genres Comedy")
    bound = re.search(r"up to (\d{4})", understood[1])
    assert understood[1].startswith("understood: genres Comedy") and bound  # refined, not started over
    years = [int(y) for y in re.findall(r"│\s*\d+\s*│[^│]*\((\d{4})\)", out.split(understood[1])[1].split("you>")[0])]
    assert years and all(y <= int(bound.group(1)) for y in years)  # the refinement is a hard filter
    assert "Horror" in understood[2] and "Comedy" not in understood[2]  # a new request starts over
    assert "Traceback" not in done.stderr
