"""A fitted scorer's state as plain numbers (nothing that can run code): a JSON description plus numeric arrays.

The fitted state of a scorer is its attributes ending in ``_`` (``similarity_``, ``counts_``,
``n_items_``, ...): numpy arrays, scipy sparse matrices, ints, floats or None. A blend's state is
its components' states. :func:`export_state` turns a fitted scorer into ``(spec, arrays)``;
:func:`import_state` puts them back into an unfitted scorer built with the same configuration,
checking every array's kind and dtype on the way (object arrays are refused).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import ItemScorer

__all__ = ["StateError", "export_state", "import_state", "save_npz"]


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (an ``.npz``) atomically: a temporary file, flushed and fsynced, then renamed,
    so a reader never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


class StateError(ValueError):
    """Saved state that does not fit the scorer it is loaded into."""


def _new_key(arrays: dict[str, np.ndarray], value: np.ndarray) -> str:
    if value.dtype.hasobject:
        raise StateError("object arrays cannot be saved as plain numbers")
    key = f"a{len(arrays)}"
    arrays[key] = value
    return key


def _fitted_attributes(scorer: ItemScorer) -> dict[str, Any]:
    return {k: v for k, v in sorted(vars(scorer).items()) if k.endswith("_") and not k.startswith("_")}


def export_state(scorer: ItemScorer, arrays: dict[str, np.ndarray]) -> dict:
    """The JSON-able description of ``scorer``'s fitted state; its arrays are added to ``arrays``."""
    state: dict[str, dict] = {}
    for attr, value in _fitted_attributes(scorer).items():
        if value is None:
            state[attr] = {"kind": "none"}
        elif sp.issparse(value):
            csr = sp.csr_matrix(value)
            state[attr] = {"kind": "csr", "shape": list(csr.shape),
                           "data": _new_key(arrays, csr.data), "indices": _new_key(arrays, csr.indices),
                           "indptr": _new_key(arrays, csr.indptr)}
        elif isinstance(value, np.ndarray):
            state[attr] = {"kind": "array", "key": _new_key(arrays, value)}
        elif isinstance(value, (bool, np.bool_)):
            state[attr] = {"kind": "bool", "value": bool(value)}
        elif isinstance(value, (int, np.integer)):
            state[attr] = {"kind": "int", "value": int(value)}
        elif isinstance(value, (float, np.floating)):
            state[attr] = {"kind": "float", "value": float(value)}
        else:
            raise StateError(f"{type(scorer).__name__}.{attr} is a {type(value).__name__}; only arrays, sparse "
                             "matrices and numbers can be saved")
    spec = {"class": type(scorer).__name__, "config": scorer.config.model_dump(mode="json"), "state": state}
    components = getattr(scorer, "components", None)
    if isinstance(components, Mapping):
        spec["components"] = {name: export_state(c, arrays) for name, c in components.items()}
    return spec


def _array(arrays: Mapping[str, np.ndarray], key: Any, kinds: str) -> np.ndarray:
    if not isinstance(key, str) or key not in arrays:
        raise StateError(f"missing array {key!r}")
    value = np.asarray(arrays[key])
    if value.dtype.kind not in kinds:
        raise StateError(f"array {key!r} has dtype {value.dtype}, expected kind {kinds!r}")
    return value


def _value(spec: Mapping, arrays: Mapping[str, np.ndarray]) -> Any:
    kind = spec.get("kind")
    if kind == "none":
        return None
    if kind == "bool" and isinstance(spec.get("value"), bool):
        return spec["value"]
    if kind == "int" and isinstance(spec.get("value"), int) and not isinstance(spec["value"], bool):
        return spec["value"]
    if kind == "float" and isinstance(spec.get("value"), (int, float)) and not isinstance(spec["value"], bool):
        return float(spec["value"])
    if kind == "array":
        return _array(arrays, spec.get("key"), "biuf")
    if kind == "csr":
        shape = spec.get("shape")
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise StateError(f"bad sparse shape {shape!r}")
        matrix = sp.csr_matrix((_array(arrays, spec.get("data"), "biuf"), _array(arrays, spec.get("indices"), "iu"),
                                _array(arrays, spec.get("indptr"), "iu")), shape=tuple(shape))
        matrix.check_format(full_check=True)
        return matrix
    raise StateError(f"unknown state entry {spec!r}")


def import_state(scorer: ItemScorer, spec: Mapping, arrays: Mapping[str, np.ndarray]) -> ItemScorer:
    """Load ``spec`` (from :func:`export_state`) into ``scorer``, an unfitted scorer of the same class
    and configuration. Raises :class:`StateError` when anything does not match."""
    if not isinstance(spec, Mapping) or spec.get("class") != type(scorer).__name__:
        raise StateError(f"saved state is not a {type(scorer).__name__}")
    if spec.get("config") != scorer.config.model_dump(mode="json"):
        raise StateError(f"saved {type(scorer).__name__} has another configuration")
    state = spec.get("state")
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and k.endswith("_") for k in state):
        raise StateError("malformed state")
    components = getattr(scorer, "components", None)
    if isinstance(components, Mapping):
        saved = spec.get("components")
        if not isinstance(saved, Mapping) or set(saved) != set(components):
            raise StateError("saved blend has other components")
        for name, component in components.items():
            import_state(component, saved[name], arrays)
    values = {attr: _value(entry, arrays) for attr, entry in state.items()}
    if not isinstance(values.get("n_items_"), int):
        raise StateError("saved state has no item count")
    for attr, value in values.items():
        setattr(scorer, attr, value)
    return scorer
