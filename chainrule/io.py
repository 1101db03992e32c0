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

**Integrity (format version 2).** The JSON document lists a SHA-256 checksum of every array
(over its dtype, shape and bytes), and the document's own SHA-256 is stored beside it (the
``.npz`` entry ``__tree__.sha256``, the ``.safetensors`` metadata entry ``chainrule.sha256``).
:func:`load_tree` checks both, so a damaged file (a flipped byte, a file cut short) is a
:class:`FormatError` naming the file and the damaged array, never different numbers loaded in
silence. Files of format version 1 (no checksums) still load, unchecked. The checksums guard
against damage, not against someone who rewrites a file on purpose: they are not a signature.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
>>> save_tree(path, {"weights": {"kernel": np.ones((2, 3), np.float32)}, "step": 7})
>>> tree = load_tree(path)
>>> tree["step"], tree["weights"]["kernel"].shape
(7, (2, 3))
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import uuid
import zipfile

import numpy as np

from chainrule import backend
from chainrule.tensor import Tensor

FORMAT = "chainrule"
#: 1: no checksums; 2: SHA-256 of every array and of the JSON document (see the module doc).
FORMAT_VERSION = 2
_TREE_KEY = "__tree__.json"
_DIGEST_KEY = "__tree__.sha256"  # .npz entry holding the document's digest
_DIGEST_METADATA = f"{FORMAT}.sha256"  # .safetensors metadata entry holding it
_CHECKSUM = "sha256"
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


# -- checksums ------------------------------------------------------------------------------------


def array_checksum(array) -> str:
    """The SHA-256 (hex) of an array's dtype, shape and bytes, independent of its byte order
    and memory layout, so the same values give the same checksum in both formats."""
    array = np.asarray(array)
    canonical = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    digest = hashlib.sha256()
    digest.update(f"{canonical.dtype.str}{list(canonical.shape)}".encode())
    digest.update(canonical.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _text_checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_document(path: str, document: str, digest: str | None) -> None:
    """Refuse a document whose stored digest does not match (it was damaged)."""
    if digest is not None and _text_checksum(document) != digest.strip():
        raise FormatError(f"{path}: checksum mismatch for the file's JSON document (the file "
                          "is damaged or was changed after it was written)")


def _check_arrays(path: str, header: dict, arrays: dict) -> None:
    """Refuse a version-2 file whose arrays do not match the checksums its JSON lists."""
    if header.get("version", 1) < 2:
        return  # written before checksums existed: nothing to check against
    checksums = header.get("checksums")
    if header.get("checksum") != _CHECKSUM or not isinstance(checksums, dict):
        raise FormatError(f"{path}: the file's checksums are missing or of an unknown kind "
                          f"({header.get('checksum')!r}); the file is damaged")
    for key in sorted(arrays):
        if key not in checksums:
            raise FormatError(f"{path}: array '{key}' has no checksum; the file is damaged")
        if array_checksum(arrays[key]) != checksums[key]:
            raise FormatError(f"{path}: checksum mismatch for array '{key}' (the file is "
                              "damaged or was changed after it was written)")


# -- writing --------------------------------------------------------------------------------------


def _check_suffix(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"chainrule saves .npz or .safetensors files, got {path!r}")
    return suffix


def atomic_write(path: str, write) -> None:
    """Call ``write(file)`` on a new file beside ``path``, then rename it to ``path``.

    The rename (``os.replace``) is atomic, so readers see the old file or the whole new one,
    never a part. The temporary file is created like any other (the umask applies). Its name,
    ``.<name>.<host>.<pid>.<random>.tmp``, says who writes it: temporary files of ``path`` that
    a killed process of this host left behind are removed here (see
    :func:`remove_stale_temporaries`).
    """
    folder, name = os.path.split(os.path.abspath(path))
    remove_stale_temporaries(folder, name)
    temporary = os.path.join(
        folder, f".{name}.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
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


def _host() -> str:
    import socket

    return "".join(c if c.isalnum() or c == "-" else "_" for c in socket.gethostname())


def remove_stale_temporaries(folder: str, name: str) -> int:
    """Remove ``folder``'s temporary files of ``name`` written by processes of this host that
    are gone (killed while writing); return how many. Those of live processes, and of other
    hosts sharing the folder, are left alone."""
    prefix, host, removed = f".{name}.", _host(), 0
    try:
        entries = os.listdir(folder)
    except OSError:
        return 0
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        parts = entry[len(prefix):-len(".tmp")].split(".")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        if _process_alive(int(parts[1])):
            continue
        try:
            os.remove(os.path.join(folder, entry))
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
                           "metadata": metadata or {}, "tree": skeleton, "checksum": _CHECKSUM,
                           "checksums": {k: array_checksum(v) for k, v in arrays.items()}})
    digest = _text_checksum(document)
    if suffix == ".npz":
        reserved = sorted({_TREE_KEY, _DIGEST_KEY} & set(arrays))
        if reserved:
            raise ValueError(f"save_tree: {reserved} are reserved names")
        payload = {**arrays, _TREE_KEY: np.frombuffer(document.encode(), dtype=np.uint8),
                   _DIGEST_KEY: np.frombuffer(digest.encode(), dtype=np.uint8)}
        atomic_write(path, lambda file: np.savez(file, **payload))
    else:
        safetensors_numpy = _import_safetensors()
        contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        blob = safetensors_numpy.save(contiguous,
                                      metadata={FORMAT: document, _DIGEST_METADATA: digest})
        atomic_write(path, lambda file: file.write(blob))


# -- reading --------------------------------------------------------------------------------------


_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip


def _check_size(path: str, least: int, kind: str) -> int:
    """The file's size; a file shorter than ``least`` bytes is refused as truncated."""
    size = os.path.getsize(path)
    if size < least:
        raise FormatError(f"{path}: truncated: {size} bytes, too short for a {kind} file")
    return size


def _read_npz(path: str):
    """The document, its stored digest (None in version-1 files) and the arrays of a .npz."""
    _check_size(path, 4, ".npz")
    with open(path, "rb") as file:
        start = file.read(4)
    if start not in _ZIP_STARTS:
        raise FormatError(f"{path}: not an .npz file (it does not start like a zip archive)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise FormatError(f"{path}: not a readable .npz file: truncated or damaged (its zip "
                          "directory cannot be read)") from error
    with archive:
        arrays = {key: _read_npz_entry(path, archive, key) for key in archive.files}
    if _TREE_KEY not in arrays:
        raise FormatError(f"{path}: not a chainrule file (no '{_TREE_KEY}' entry); "
                          "was it written by numpy.savez?")
    document = _decoded(path, arrays.pop(_TREE_KEY), "JSON document")
    digest = arrays.pop(_DIGEST_KEY, None)
    digest = None if digest is None else _decoded(path, digest, "checksum")
    return document, digest, arrays


def _read_npz_entry(path: str, archive, key: str) -> np.ndarray:
    """One array of an open .npz, with an error that says what is wrong with the entry."""
    try:
        return archive[key]
    except zipfile.BadZipFile as error:
        if "CRC" in str(error):
            raise FormatError(f"{path}: checksum mismatch in entry '{key}' (its zip CRC-32): "
                              "the file is damaged") from error
        raise FormatError(f"{path}: damaged zip entry '{key}' ({error})") from error
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise FormatError(f"{path}: not a readable .npz file: entry '{key}' holds an object "
                              "array, which only pickle could load (refused)") from error
        raise FormatError(f"{path}: truncated or damaged entry '{key}'") from error
    except (EOFError, OSError, MemoryError, KeyError, UnicodeDecodeError, NotImplementedError,
            RuntimeError) as error:  # the last two: zipfile on a flipped flag or method
        raise FormatError(f"{path}: truncated or damaged entry '{key}'") from error


def _decoded(path: str, array: np.ndarray, what: str) -> str:
    """The UTF-8 text stored as a uint8 array (the JSON document, its digest)."""
    if array.dtype != np.uint8 or array.ndim != 1:
        raise FormatError(f"{path}: its {what} entry is damaged ({array.dtype} array of shape "
                          f"{array.shape}, expected uint8 bytes)")
    try:
        return array.tobytes().decode()
    except UnicodeDecodeError as error:
        raise FormatError(f"{path}: its {what} is damaged (not UTF-8 text)") from error


def _safetensors_header(path: str) -> dict:
    """The JSON header of a .safetensors file, after checking that the file holds every byte
    the header describes (so a truncated file is named as such)."""
    size = _check_size(path, 8, ".safetensors")
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        if length > size - 8:
            raise FormatError(f"{path}: truncated, or not a .safetensors file: its header "
                              f"length says {length} bytes, but only {size - 8} follow")
        raw = file.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"{path}: not a .safetensors file, or its header is damaged (not "
                          "JSON)") from error
    if not isinstance(header, dict):
        raise FormatError(f"{path}: not a .safetensors file (its header is not a JSON object)")
    ends = [entry.get("data_offsets") for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict)]
    ends = [e[-1] for e in ends if isinstance(e, list) and e and isinstance(e[-1], int)]
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        raise FormatError(f"{path}: truncated: its header describes {needed} bytes, the file "
                          f"has {size}")
    return header


def _read_safetensors(path: str):
    """The document, its stored digest (None in version-1 files) and the arrays."""
    safetensors_numpy = _import_safetensors()
    metadata = _safetensors_header(path).get("__metadata__") or {}
    if not isinstance(metadata, dict) or FORMAT not in metadata:
        raise FormatError(f"{path}: not a chainrule file (no '{FORMAT}' metadata)")
    try:
        arrays = safetensors_numpy.load_file(path)
    except FileNotFoundError:
        raise
    except Exception as error:  # safetensors raises its own error types
        raise FormatError(f"{path}: not a readable .safetensors file: damaged "
                          f"({error})") from error
    return metadata[FORMAT], metadata.get(_DIGEST_METADATA), arrays


def _parse_document(path: str, document: str, digest: str | None) -> dict:
    """The checked, parsed JSON document of a file."""
    _check_document(path, document, digest)
    try:
        header = json.loads(document)
    except json.JSONDecodeError as error:
        raise FormatError(f"{path}: its JSON is damaged ({error})") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT or "tree" not in header:
        raise FormatError(f"{path}: not a chainrule file")
    version = header.setdefault("version", 1)
    if not isinstance(version, int) or version < 1:
        raise FormatError(f"{path}: damaged: format version {version!r}")
    if version > FORMAT_VERSION:
        raise FormatError(f"{path}: written by a newer chainrule (format version "
                          f"{version} > {FORMAT_VERSION}); upgrade chainrule")
    if version >= 2 and digest is None:
        raise FormatError(f"{path}: the checksum of its JSON document is missing; the file is "
                          "damaged")
    return header


def load_tree(path, with_metadata: bool = False):
    """Read a tree written by :func:`save_tree` (strictly: every array must be accounted for,
    and in format version 2 match its checksum).

    Returns the tree, or ``(tree, metadata)`` with ``with_metadata=True``.

    Raises:
        FileNotFoundError: no such file.
        FormatError: not a chainrule file, truncated, damaged (checksum mismatch), or arrays
            and JSON do not match.
    """
    path = os.fspath(path)
    suffix = _check_suffix(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    reader = _read_npz if suffix == ".npz" else _read_safetensors
    document, digest, arrays = reader(path)
    header = _parse_document(path, document, digest)
    used: set = set()
    tree = _unflatten(header["tree"], arrays, used, path)
    left_over = sorted(set(arrays) - used)
    if left_over:
        raise FormatError(f"{path}: arrays {left_over} are not described by the file's JSON")
    _check_arrays(path, header, arrays)
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


__all__ = ["FORMAT_VERSION", "FormatError", "array_checksum", "atomic_write", "json_value",
           "load_tree", "load_weights", "save_tree", "save_weights", "write_json"]
