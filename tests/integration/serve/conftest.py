"""A real ``promptrec serve`` process (uvicorn on a loopback port) over a tiny dataset folder whose
titles carry markup, with the real MiniLM embedder and an embedded Chroma store."""

from __future__ import annotations

import contextlib
import sys

import pytest

from promptrec.testing import LocalServer, free_port, tiny_dataset, write_dataset_folder

FUSION_ENV = {"PROMPTREC_FUSION__WEIGHTS": '{"embedding": 0.5, "ease": 1.0}',
              "PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1", "PROMPTREC_DOWNLOAD": "false"}
# user 1 is recommended items 100 and 101 first (tiny_dataset, seed 0): their titles carry markup
PAYLOADS = {"101": "<img src=x onerror=alert(1)> Space Adventure 2 (1991)",
            "107": "<script>alert(2)</script> Space Adventure 8 (1997)",
            "100": 'Space & "Adventure" <b>1</b> (1990)'}


def marked_up_dataset():
    data = tiny_dataset()
    for item in data.catalog:
        if item.item_id in PAYLOADS:
            item.title = PAYLOADS[item.item_id]
    return data


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-markup")
    write_dataset_folder(marked_up_dataset(), folder)
    return folder


@contextlib.contextmanager
def serve_process(folder, state_dir, log_path, *options, global_options=(), env=None, timeout=90.0):
    """``python -m promptrec --dataset FOLDER serve --port P ...``; yields the base URL."""
    port = free_port()
    command = [sys.executable, "-m", "promptrec", "--dataset", str(folder), *global_options,
               "serve", "--port", str(port), *options]
    with pytest.MonkeyPatch.context() as environ:
        environ.setenv("PROMPTREC_STATE_DIR", str(state_dir))
        for key, value in {**FUSION_ENV, **(env or {})}.items():
            environ.setenv(key, value)
        server = LocalServer(command, f"http://127.0.0.1:{port}/healthz", log_path, timeout=timeout)
        server.__enter__()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.__exit__()


@pytest.fixture(scope="module")
def tiny_server(dataset_folder, tmp_path_factory):
    """A no-model server with room for 16 concurrent clients (4 running, 32 waiting)."""
    state = tmp_path_factory.mktemp("serve-state")
    with serve_process(dataset_folder, state, state / "server.log", "--no-llm", "--concurrency", "4",
                       "--queue", "32") as url:
        yield url


@pytest.fixture(scope="module")
def start_server():
    """``start_server(folder, state_dir, log_path, *serve_options, global_options=(), env=None, timeout=90)``."""
    return serve_process


@pytest.fixture(scope="module")
def payloads():
    """Item id -> the marked-up title the served dataset carries."""
    return dict(PAYLOADS)
