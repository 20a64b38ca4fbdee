"""Several processes starting on an empty state dir: one embeds the catalog, the others wait and reuse it."""

import json
import multiprocessing as mp
import threading
import time
from collections import Counter

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from promptrec import Recommender
from promptrec.cli import app
from promptrec.data import load_folder
from promptrec.settings import Settings
from promptrec.state import DatasetState, StateBusy
from promptrec.testing import HashEmbedder, tiny_dataset, write_dataset_folder

FUSION = {"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1, "params": {"ease": {"lambda_": 10.0}}}


class CountingEmbedder(HashEmbedder):
    """A hash embedder that appends every text it embeds to a file shared by all processes."""

    def __init__(self, log_path) -> None:
        super().__init__()
        self.log_path = log_path

    def embed(self, texts):
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write("".join(t.replace("\n", " ") + "\n" for t in texts))
        return super().embed(texts)


def settings_for(state_dir, folder) -> Settings:
    return Settings(state_dir=state_dir, dataset=str(folder), data_dir=state_dir, download=False, fusion=FUSION)


def _first_run(state_dir, folder, log_path, out_path, barrier):
    barrier.wait(120)
    rec = Recommender(settings_for(state_dir, folder), llm=False, embedder=CountingEmbedder(log_path))
    result = rec.recommend("1", k=5)
    with open(out_path, "w") as handle:
        json.dump([[r.item_id, r.score] for r in result.items], handle)


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "data" / "shop"
    write_dataset_folder(tiny_dataset(items_per_genre=40), path)
    return path


def test_four_processes_on_an_empty_state_dir_embed_once_and_agree(tmp_path, folder):
    state, log_path = tmp_path / "state", tmp_path / "embedded.txt"
    context = mp.get_context("spawn")
    barrier = context.Barrier(4)
    procs = [context.Process(target=_first_run, args=(str(state), str(folder), str(log_path),
                                                      str(tmp_path / f"out{n}.json"), barrier)) for n in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    catalog = load_folder(folder).catalog
    embedded = Counter(log_path.read_text(encoding="utf-8").splitlines())
    assert {item.text(): embedded[item.text()] for item in catalog} == {item.text(): 1 for item in catalog}
    results = [json.loads((tmp_path / f"out{n}.json").read_text()) for n in range(4)]
    assert len(results[0]) == 5 and all(r == results[0] for r in results)


def test_first_run_waits_for_another_process_embedding(tmp_path, folder, caplog):
    settings = settings_for(tmp_path / "state", folder)
    state = DatasetState.for_dataset(settings.state_dir, load_folder(folder))
    state.root.mkdir(parents=True)
    held = FileLock(str(state.index_lock_path), thread_local=False)
    held.acquire()
    threading.Timer(1.5, held.release).start()
    started = time.monotonic()
    result = Recommender(settings, llm=False, embedder=HashEmbedder()).recommend("1", k=3)
    assert time.monotonic() - started >= 1.4 and len(result.items) == 3
    assert "waiting for it" in caplog.text


def test_second_index_while_one_runs_is_one_clear_error(tmp_path, folder):
    settings = settings_for(tmp_path / "state", folder)
    state = DatasetState.for_dataset(settings.state_dir, load_folder(folder))
    state.root.mkdir(parents=True)
    with FileLock(str(state.index_lock_path)):
        with pytest.raises(StateBusy, match="another promptrec process is indexing"):
            Recommender(settings, llm=False, embedder=HashEmbedder()).index()
        env = {"PROMPTREC_STATE_DIR": str(settings.state_dir), "PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1"}
        result = CliRunner().invoke(app, ["--dataset", str(folder), "index"], env=env)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "another promptrec process is indexing shop" in result.output
