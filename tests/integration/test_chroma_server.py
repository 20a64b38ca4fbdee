"""The item store against a real Chroma server (``chroma run``) instead of the embedded one."""

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from promptrec.retrieval import ItemVectorStore, StoreMismatch
from promptrec.retrieval.store import make_client
from promptrec.testing import HashEmbedder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    log = (tmp_path_factory.mktemp("chroma") / "log.txt").open("w")
    proc = subprocess.Popen([chroma, "run", "--path", str(tmp_path_factory.mktemp("db")), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma server did not start")
    yield url
    proc.terminate()
    proc.wait(10)


def test_store_works_against_a_chroma_server(chroma_url, tiny):
    embedder = HashEmbedder()
    store = ItemVectorStore(make_client(url=chroma_url), embedder, "server-items")
    store.upsert([(i.item_id, i.text(), {"title": i.title}) for i in tiny.catalog])
    assert store.count() == len(tiny.catalog)
    hits = store.query(embedder.embed(["crime thriller"])[0], 3)
    assert all("crime" in tiny.catalog[i].fields["genres"] for i, _ in hits)
    with pytest.raises(StoreMismatch):
        ItemVectorStore(make_client(url=chroma_url), HashEmbedder(dimension=16), "server-items")
