"""Shared fixtures: isolated state per test, the real ml-latest-small, fakes for logic tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from promptrec.settings import Settings
from promptrec.testing import HashEmbedder, tiny_dataset

def data_dir() -> Path:
    """Where ml-latest-small is, found like the product finds it: PROMPTREC_DATA_DIR, else the
    product's default data folder."""
    env = os.environ.get("PROMPTREC_DATA_DIR")
    return Path(env) if env else Settings.model_fields["data_dir"].default_factory()


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache/promptrec, nor the user's own settings."""
    for key in list(os.environ):
        if key.startswith("PROMPTREC_") and key != "PROMPTREC_DATA_DIR":
            monkeypatch.delenv(key)
    monkeypatch.setenv("PROMPTREC_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("PROMPTREC_DATA_DIR", str(data_dir()))
    monkeypatch.setenv("PROMPTREC_DOWNLOAD", "false")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path / "state", data_dir=data_dir(), download=False)


@pytest.fixture
def tiny():
    return tiny_dataset()


@pytest.fixture
def hash_embedder():
    return HashEmbedder()


@pytest.fixture(scope="session")
def movielens():
    """The real ml-latest-small (tests using it are marked ``integration``)."""
    from promptrec.data import load_dataset

    return load_dataset("ml-latest-small", data_dir(), allow_download=False)
