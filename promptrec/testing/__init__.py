"""Test helpers shipped with the package: deterministic fake embeddings, a scripted LLM, tiny data."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import Catalog, Dataset, InteractionLog, Item, LoadReport
from ..llm.fake import ScriptedLLM
from ..retrieval.embeddings import normalize

__all__ = [
    "HashEmbedder",
    "LocalServer",
    "ScriptedLLM",
    "dataset_slice",
    "with_users",
    "free_port",
    "load_eval_script",
    "llama_server",
    "tiny_dataset",
    "valid_reply",
    "write_dataset_folder",
]


class HashEmbedder:
    """Bag-of-words hashed into a small vector: texts sharing words are close. Deterministic, instant."""

    def __init__(self, dimension: int = 64, name: str = "hash-bow") -> None:
        self.dimension = dimension
        self.name = f"{name}-{dimension}"

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        out[~out.any(axis=1), 0] = 1.0
        return normalize(out)


def tiny_dataset(n_users: int = 30, seed: int = 0, items_per_genre: int = 8) -> Dataset:
    """A synthetic catalog of 3 genres x ``items_per_genre`` items and users who mostly stay in one genre,
    consuming items in order (so transitions carry signal)."""
    rng = np.random.default_rng(seed)
    genres = ["space adventure", "romantic comedy", "crime thriller"]
    items = [
        Item(item_id=str(100 + g * 10 + n), title=f"{genre.title()} {n + 1} ({1990 + n})",
             fields={"genres": genre.replace(" ", ", ")})
        for g, genre in enumerate(genres) for n in range(items_per_genre)
    ]
    rows = []
    for user in range(n_users):
        g = user % 3
        start = int(rng.integers(0, max(3, items_per_genre - 5)))
        chosen = [100 + g * 10 + n for n in range(start, start + 5)]
        other = 100 + ((g + 1) % 3) * 10 + int(rng.integers(0, items_per_genre))  # ids unique up to 10 per genre
        chosen.insert(2, other)
        for t, item in enumerate(chosen):
            rows.append((str(user + 1), str(item), 1_000_000 + user * 1000 + t * 10, float(rng.integers(3, 6))))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    report = LoadReport(source="tiny", rows_read=len(frame), rows_kept=len(frame))
    return Dataset("tiny", Catalog(items), InteractionLog(frame), [report])


def is_reason_request(request) -> bool:
    """Whether a request asks for an explanation (plain text about a <pick> and a <watched> title)."""
    return request.json_schema is None and "<watched>" in request.messages[-1]["content"]


def valid_reply(request) -> dict:
    """A schema-valid reply to any promptrec prompt, built from the request (for scripted LLMs).

    Rerank replies pick the candidates in reverse order and cite the most recent history item,
    so a test can tell the model's order from the fused one.
    """
    properties = (request.json_schema or {}).get("properties", {})
    if is_reason_request(request):
        properties = {"reason": {}}  # the explainer asks for plain text: the same sentence, as text
    if "picks" in properties:
        pick = properties["picks"]["items"]["properties"]
        candidates = pick["id"]["enum"]
        k = properties["picks"]["minItems"]
        if "because" not in pick:  # no history to cite
            return {"picks": [{"id": c, "reason": "Fits what you asked for, with a similar mood."}
                              for c in candidates[::-1][:k]]}
        history = pick["because"]["items"]["enum"]
        return {"picks": [{"id": c, "reason": "Shares the mood and pace of what you watched last.",
                           "because": [history[-1]]} for c in candidates[::-1][:k]]}
    if set(properties) == {"reason"}:  # an explanation: name the watched title, claim nothing else
        prompt = request.messages[-1]["content"]
        watched = re.search(r"<watched>\n(.+?)(?:\. genres:|\. tags:|\. themes:|\. rated|\n)", prompt)
        title = watched.group(1) if watched else "what you watched"
        sentence = f"If you enjoyed {title}, this one should suit you well too."
        return sentence if request.json_schema is None else {"reason": sentence}
    if "likes" in properties:  # a genre the history really has, so the profile passes the quality gate
        from ..quality import stated_genres

        genres = sorted(stated_genres(request.messages[-1]["content"])) or ["adventure"]
        return {"likes": [genres[0]], "dislikes": [], "recent_interests": genres[-1:],
                "summary": f"Likes {genres[0]} stories."}
    if "like_titles" in properties:  # a request reading: nothing beyond what the rules read
        return {name: ([] if spec.get("type") == "array" else "" if spec.get("type") == "string" else None)
                for name, spec in properties.items()}
    if "themes" in properties and "description" not in properties:  # closed style: words of the vocabulary
        return {"themes": properties["themes"]["items"]["enum"][:2], "mood": properties["mood"]["enum"][0],
                "audience": properties["audience"]["enum"][0]}
    if "themes" in properties:
        return {"themes": ["journey"], "mood": "bright", "audience": "everyone", "description": "A story."}
    raise ValueError(f"no scripted reply for schema {sorted(properties)}")


def dataset_slice(dataset: Dataset, n_users: int = 20, max_history: int = 40) -> Dataset:
    """The first ``n_users`` users (by id order) with at most ``max_history`` interactions each, and only
    the items they touched: a small slice of real data for integration tests."""
    log = dataset.interactions
    users = [u for u in log.users if len(log.history(u)) <= max_history][:n_users]
    frame = log.frame[log.frame["user_id"].isin(users)]
    items = set(frame["item_id"])
    catalog = Catalog(item for item in dataset.catalog if item.item_id in items)
    report = LoadReport(source=f"{dataset.name} slice", rows_read=len(frame), rows_kept=len(frame))
    return Dataset(f"{dataset.name}-slice", catalog, InteractionLog(frame), [report])


def write_dataset_folder(dataset: Dataset, folder) -> None:
    """Write a dataset as ``items.csv`` + ``interactions.csv`` (the custom-dataset folder layout)."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"item_id": i.item_id, "title": i.title, **i.fields} for i in dataset.catalog]
    pd.DataFrame(rows).to_csv(folder / "items.csv", index=False)
    dataset.interactions.frame.to_csv(folder / "interactions.csv", index=False)
    if dataset.users:
        pd.DataFrame([{"user_id": u, **attrs} for u, attrs in dataset.users.items()]).to_csv(
            folder / "users.csv", index=False)


def with_users(dataset: Dataset, seed: int = 0) -> Dataset:
    """The dataset with a synthetic users file: a seeded ``gender`` (F/M) and ``age`` band per user."""
    rng = np.random.default_rng(seed)
    users = {u: {"gender": str(rng.choice(["F", "M"])), "age": str(rng.choice(["18-24", "25-34", "35+"]))}
             for u in dataset.interactions.users}
    return Dataset(dataset.name, dataset.catalog, dataset.interactions, dataset.reports, users=users)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def llama_server(models_dir, log_path, n_ctx: int = 2048, extra: tuple[str, ...] = (), timeout: float = 120.0):
    """``python -m llama_cpp.server`` with the packaged SmolLM2 (alias ``smol``) on a free loopback
    port, as a :class:`LocalServer`; entering it gives the ``/v1`` base URL."""
    import sys
    from contextlib import contextmanager

    from ..llm import resolve_gguf

    @contextmanager
    def serving():
        port = free_port()
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_gguf("small", models_dir)),
                   "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--model_alias", "smol",
                   "--verbose", "false", *extra]
        with LocalServer(command, f"http://127.0.0.1:{port}/v1/models", log_path, timeout=timeout):
            yield f"http://127.0.0.1:{port}/v1"

    return serving()


class LocalServer:
    """Runs a server command on loopback until its health URL answers 200; stops it on exit.

    Raises RuntimeError with the end of the server's log when it exits or never gets ready.
    """

    def __init__(self, command: list[str], health_url: str, log_path, timeout: float = 60.0) -> None:
        self.command, self.health_url, self.log_path, self.timeout = command, health_url, log_path, timeout

    def __enter__(self) -> LocalServer:
        import subprocess
        import time

        import httpx

        self._log = open(self.log_path, "w+")  # noqa: SIM115 - closed in __exit__
        self._proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            if self._proc.poll() is not None:
                self._log.seek(0)
                raise RuntimeError(f"{self.command[0]} exited: {self._log.read()[-2000:]}")
            try:
                if httpx.get(self.health_url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"{self.command[0]} did not answer {self.health_url} within {self.timeout:.0f} s")

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except Exception:
            self._proc.kill()
        self._log.close()


def load_eval_script(name: str):
    """The module of ``eval/NAME.py`` in this checkout (the scripts are not a package), loaded afresh."""
    path = Path(__file__).resolve().parents[2] / "eval" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
