"""The item store against a real Chroma server (``chroma run``) instead of the embedded one."""

import shutil
import sys
from pathlib import Path

import pytest

from promptrec.retrieval import ItemVectorStore, StoreMismatch
from promptrec.retrieval.store import make_client
from promptrec.testing import HashEmbedder, LocalServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    port = free_port()
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    command = [chroma, "run", "--path", str(tmp_path_factory.mktemp("db")), "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with LocalServer(command, f"{url}/api/v2/heartbeat", tmp_path_factory.mktemp("chroma") / "log.txt"):
        yield url


def test_store_works_against_a_chroma_server(chroma_url, tiny):
    embedder = HashEmbedder()
    store = ItemVectorStore(make_client(url=chroma_url), embedder, "server-items")
    store.upsert([(i.item_id, i.text(), {"title": i.title}) for i in tiny.catalog])
    assert store.count() == len(tiny.catalog)
    hits = store.query(embedder.embed(["crime thriller"])[0], 3)
    assert all("crime" in tiny.catalog[i].fields["genres"] for i, _ in hits)
    with pytest.raises(StoreMismatch):
        ItemVectorStore(make_client(url=chroma_url), HashEmbedder(dimension=16), "server-items")
