"""Saving and loading arrays: weights, optimizer state and the JSON that describes them.

One file holds a *tree*: nested dicts and lists whose leaves are NumPy arrays, numbers,
strings, booleans or None (a model's ``state_dict()``, an optimizer's ``state_dict()``, a
model's architecture). The arrays are stored as arrays; everything else goes into one JSON
document stored beside them, in which every array is replaced by a reference
``{"__array__": "<key>"}``. Two formats, chosen by the file name:

* ``.npz`` (NumPy's zip of ``.npy`` files): always available. The JSON is the entry
  ``__tree__.json`` (UTF-8 bytes as a uint8 array). Loaded with ``allow_pickle=False``.
* ``.safetensors``: when the ``safetensors`` package is installed (``pip install
  safetensors``). The JSON is the file's metadata entry ``chainrule``.

Nothing is ever pickled, so loading a file cannot run code. Writes are atomic: the file is
written under a temporary name in the same folder and then renamed over the target with
``os.replace``, so a crash never leaves a half-written file. Loads are strict: a file whose
arrays and JSON do not match exactly (an array missing or left over, an object array) is an
error naming the file.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
>>> save_tree(path, {"weights": {"kernel": np.ones((2, 3), np.float32)}, "step": 7})
>>> tree = load_tree(path)
>>> tree["step"], tree["weights"]["kernel"].shape
(7, (2, 3))
"""

from __future__ import annotations

import json
import math
import os
import uuid
import zipfile

import numpy as np

from chainrule import backend
from chainrule.tensor import Tensor

FORMAT = "chainrule"
FORMAT_VERSION = 1
_TREE_KEY = "__tree__.json"
_ARRAY = "__array__"
_SUFFIXES = (".npz", ".safetensors")


class FormatError(ValueError):
    """A file is not a chainrule save, is damaged, or does not match what was asked of it."""


# -- flattening a tree ----------------------------------------------------------------------------


def _flatten(tree, arrays: dict, path: str):
    """The JSON skeleton of ``tree``, moving each array into ``arrays`` under its path."""
    if isinstance(tree, dict):
        skeleton = {}
        for key, value in tree.items():
            if not isinstance(key, str):
                raise TypeError(f"save_tree: dict keys must be strings, got {key!r} at '{path}'")
            skeleton[key] = _flatten(value, arrays, f"{path}/{key}" if path else key)
        return skeleton
    if isinstance(tree, (list, tuple)):
        return [_flatten(value, arrays, f"{path}/{i}") for i, value in enumerate(tree)]
    data = backend.to_numpy(tree.data if isinstance(tree, Tensor) else tree)  # CuPy -> NumPy
    if isinstance(data, np.ndarray):
        if data.dtype.kind in "OUSV":
            raise TypeError(f"save_tree: cannot store the {data.dtype} array at '{path}' "
                            "without pickling; use numbers or strings in the tree instead")
        key = path or "array"
        if key in arrays:
            raise ValueError(f"save_tree: two arrays would be stored under '{key}'")
        arrays[key] = data
        return {_ARRAY: key}
    if isinstance(data, np.generic):
        data = data.item()
    if data is None or isinstance(data, (bool, int, str)):
        return data
    if isinstance(data, float):
        return data if math.isfinite(data) else {"__float__": repr(data)}
    raise TypeError(f"save_tree: cannot store a {type(tree).__name__} at '{path}'; use arrays, "
                    "numbers, strings, None, and dicts/lists of them")


def _unflatten(skeleton, arrays: dict, used: set, source: str):
    if isinstance(skeleton, dict):
        if set(skeleton) == {_ARRAY}:
            key = skeleton[_ARRAY]
            if key not in arrays:
                raise FormatError(f"{source}: array '{key}' is missing from the file")
            used.add(key)
            return arrays[key]
        if set(skeleton) == {"__float__"}:
            return float(skeleton["__float__"])
        return {k: _unflatten(v, arrays, used, source) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_unflatten(v, arrays, used, source) for v in skeleton]
    return skeleton


# -- writing --------------------------------------------------------------------------------------


def _check_suffix(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"chainrule saves .npz or .safetensors files, got {path!r}")
    return suffix


def atomic_write(path: str, write) -> None:
    """Call ``write(file)`` on a new file beside ``path``, then rename it to ``path``.

    The rename (``os.replace``) is atomic, so readers see the old file or the whole new one,
    never a part. The temporary file is created like any other (the umask applies).
    """
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def json_value(value):
    """``default=`` for :func:`json.dump`: NumPy scalars as Python numbers, arrays as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_json(path, value) -> None:
    """Write ``value`` to ``path`` as indented JSON, atomically (:func:`atomic_write`)."""
    text = json.dumps(value, indent=2, default=json_value) + "\n"
    atomic_write(os.fspath(path), lambda file: file.write(text.encode("utf-8")))


def _import_safetensors():
    try:
        from safetensors import numpy as safetensors_numpy
    except ImportError as error:
        raise ImportError(
            "saving or loading .safetensors files needs the optional package 'safetensors' "
            "(pip install safetensors); or use a .npz file name"
        ) from error
    return safetensors_numpy


def save_tree(path, tree, metadata: dict | None = None) -> None:
    """Write ``tree`` (nested dicts/lists of arrays and JSON values) to ``path``, atomically.

    Args:
        path: a ``.npz`` or ``.safetensors`` file name; the folder must exist.
        tree: the data; dict keys must be strings.
        metadata: extra JSON-able facts stored with it (read back by :func:`load_tree`'s
            ``with_metadata=True``).
    """
    path = os.fspath(path)
    suffix = _check_suffix(path)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _flatten(tree, arrays, "")
    document = json.dumps({"format": FORMAT, "version": FORMAT_VERSION,
                           "metadata": metadata or {}, "tree": skeleton})
    if suffix == ".npz":
        if _TREE_KEY in arrays:
            raise ValueError(f"save_tree: '{_TREE_KEY}' is reserved")
        payload = {**arrays, _TREE_KEY: np.frombuffer(document.encode(), dtype=np.uint8)}
        atomic_write(path, lambda file: np.savez(file, **payload))
    else:
        safetensors_numpy = _import_safetensors()
        contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        blob = safetensors_numpy.save(contiguous, metadata={FORMAT: document})
        atomic_write(path, lambda file: file.write(blob))


# -- reading --------------------------------------------------------------------------------------


def _read_npz(path: str):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise FormatError(f"{path}: not a readable .npz file ({error})") from error
    if _TREE_KEY not in arrays:
        raise FormatError(f"{path}: not a chainrule file (no '{_TREE_KEY}' entry); "
                          "was it written by numpy.savez?")
    document = arrays.pop(_TREE_KEY).tobytes().decode()
    return document, arrays


def _read_safetensors(path: str):
    safetensors_numpy = _import_safetensors()
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
        arrays = safetensors_numpy.load_file(path)
    except FileNotFoundError:
        raise
    except Exception as error:  # safetensors raises its own error types
        raise FormatError(f"{path}: not a readable .safetensors file ({error})") from error
    if FORMAT not in metadata:
        raise FormatError(f"{path}: not a chainrule file (no '{FORMAT}' metadata)")
    return metadata[FORMAT], arrays


def load_tree(path, with_metadata: bool = False):
    """Read a tree written by :func:`save_tree` (strictly: every array must be accounted for).

    Returns the tree, or ``(tree, metadata)`` with ``with_metadata=True``.

    Raises:
        FileNotFoundError: no such file.
        FormatError: not a chainrule file, damaged, or arrays and JSON do not match.
    """
    path = os.fspath(path)
    suffix = _check_suffix(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    document, arrays = _read_npz(path) if suffix == ".npz" else _read_safetensors(path)
    try:
        header = json.loads(document)
    except json.JSONDecodeError as error:
        raise FormatError(f"{path}: its JSON is damaged ({error})") from error
    if header.get("format") != FORMAT or "tree" not in header:
        raise FormatError(f"{path}: not a chainrule file")
    if header.get("version", 0) > FORMAT_VERSION:
        raise FormatError(f"{path}: written by a newer chainrule (format version "
                          f"{header['version']} > {FORMAT_VERSION}); upgrade chainrule")
    used: set = set()
    tree = _unflatten(header["tree"], arrays, used, path)
    left_over = sorted(set(arrays) - used)
    if left_over:
        raise FormatError(f"{path}: arrays {left_over} are not described by the file's JSON")
    return (tree, header.get("metadata", {})) if with_metadata else tree


# -- weights --------------------------------------------------------------------------------------


def save_weights(path, state_dict: dict, metadata: dict | None = None) -> None:
    """Save a ``state_dict()`` (name → array) to a ``.npz`` or ``.safetensors`` file.

    >>> from chainrule.layers import Dense
    >>> save_weights("dense.npz", Dense(3, input_shape=(4,)).state_dict())  # doctest: +SKIP
    """
    save_tree(path, {"weights": dict(state_dict)}, metadata={"kind": "weights",
                                                            **(metadata or {})})


def load_weights(path) -> dict[str, np.ndarray]:
    """The ``name → array`` dict saved by :func:`save_weights` (or the weights of a model
    saved whole), ready for ``layer.load_state_dict(...)``."""
    tree = load_tree(path)
    if not isinstance(tree, dict) or not isinstance(tree.get("weights"), dict):
        raise FormatError(f"{os.fspath(path)}: holds no weights")
    return tree["weights"]


__all__ = ["FormatError", "atomic_write", "json_value", "load_tree", "load_weights", "save_tree",
           "save_weights", "write_json"]
