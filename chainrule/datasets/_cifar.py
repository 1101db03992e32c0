"""Reading the "python version" of CIFAR-10 and CIFAR-100 safely.

Each batch file is a pickled dict: ``b'data'`` a uint8 array of shape (N, 3072) (row-major
3x32x32, channels first), plus a label list (``b'labels'`` for CIFAR-10, ``b'fine_labels'``
and ``b'coarse_labels'`` for CIFAR-100). Unpickling can run arbitrary code, so batches go
through :class:`RestrictedUnpickler`, which only rebuilds NumPy arrays and refuses everything
else. The files may be an extracted folder or the original ``.tar.gz`` (read in memory,
nothing is extracted to disk).
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _download
from ._common import (
    DatasetError,
    DatasetNotFoundError,
    cache_dir,
    candidate_dirs,
    remove_if_empty,
)

#: The only globals a CIFAR batch may reference: NumPy's array reconstruction (under its
#: NumPy 1 and NumPy 2 module names) and ``_codecs.encode``, which Python 3 uses to pickle
#: ``bytes`` at protocol 2.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)

PIXELS = 3 * 32 * 32


class UnsafePickleError(DatasetError):
    """A pickle asked for a class or function that a CIFAR batch never needs."""


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose :meth:`find_class` allows only :data:`ALLOWED_GLOBALS`.

    Dicts, lists, bytes, str and int need no ``find_class`` at all; NumPy arrays need the few
    reconstruction helpers listed. Anything else (``os.system``, ``builtins.eval``, ...) is
    refused with :class:`UnsafePickleError` before it is imported.
    """

    def __init__(self, file, source: str = "<pickle>"):
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.source}: refusing to unpickle {module}.{name}: a CIFAR batch holds only "
                f"dicts, lists, bytes, ints and NumPy arrays, so this is not an official "
                f"CIFAR file (or it was altered)"
            )
        with warnings.catch_warnings():  # numpy.core.* is a deprecated alias in NumPy 2
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def unpickle_batch(data: bytes, source: str) -> dict:
    """Unpickle one batch with :class:`RestrictedUnpickler`; any failure is a DatasetError."""
    try:
        batch = RestrictedUnpickler(io.BytesIO(data), source).load()
    except DatasetError:
        raise
    except Exception as err:  # truncated or garbled pickles raise many different types
        raise DatasetError(f"{source}: not a readable CIFAR pickle ({err!r})") from err
    if not isinstance(batch, dict):
        raise DatasetError(f"{source}: expected a pickled dict, got {type(batch).__name__}")
    return batch


def _field(batch: dict, key: str, source: str):
    """``batch[b'key']`` (or ``batch['key']``), with an error naming the file if absent."""
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    found = ", ".join(repr(k) for k in batch)
    raise DatasetError(f"{source}: no {key!r} entry (found {found})")


def _images(batch: dict, source: str) -> np.ndarray:
    """The batch's images as a (N, 3, 32, 32) uint8 array."""
    data = _field(batch, "data", source)
    if isinstance(data, bytes | bytearray):
        if len(data) % PIXELS:
            raise DatasetError(
                f"{source}: b'data' holds {len(data)} bytes, not a multiple of {PIXELS}"
            )
        data = np.frombuffer(data, dtype=np.uint8).reshape(-1, PIXELS)
    if not isinstance(data, np.ndarray):
        raise DatasetError(f"{source}: b'data' must be a uint8 array, got {type(data).__name__}")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise DatasetError(
            f"{source}: b'data' must be uint8 of shape (N, {PIXELS}), "
            f"got {data.dtype} array of shape {data.shape}"
        )
    return data.reshape(-1, 3, 32, 32)


def _labels(batch: dict, key: str, n: int, num_classes: int, source: str) -> np.ndarray:
    """The batch's labels as a (N,) uint8 array, checked for count and range."""
    raw = _field(batch, key, source)
    labels = np.asarray(raw)
    if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{source}: {key!r} should be {n} integer labels (one per image), "
            f"got shape {labels.shape} of {labels.dtype}"
        )
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{source}: {key!r} has values outside [0, {num_classes}): "
            f"min {labels.min()}, max {labels.max()}"
        )
    return labels.astype(np.uint8)


def parse_batch(data: bytes, source: str, label_key: str, num_classes: int):
    """Bytes of one batch file -> (images (N,3,32,32) uint8, labels (N,) uint8)."""
    batch = unpickle_batch(data, source)
    images = _images(batch, source)
    return images, _labels(batch, label_key, len(images), num_classes, source)


@dataclass(frozen=True)
class CifarFormat:
    """Where a CIFAR variant keeps its files and how its labels are stored."""

    name: str  # folder name in the user cache
    title: str
    archive: str  # the official .tar.gz file name
    folder: str  # the folder the archive extracts to
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    url: str
    md5: str


def _read_from_folder(folder: Path, names):
    """{name: (bytes, source)} read from an extracted folder."""
    return {name: ((folder / name).read_bytes(), str(folder / name)) for name in names}


def _read_from_archive(archive: Path, names):
    """{name: (bytes, source)} read from the .tar.gz without extracting it."""
    wanted, found = set(names), {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in found:
                    found[base] = (tar.extractfile(member).read(), f"{archive}:{member.name}")
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise DatasetError(f"{archive}: corrupt or truncated archive ({err})") from err
    missing = sorted(wanted - set(found))
    if missing:
        raise DatasetError(f"{archive}: archive lacks {', '.join(missing)}")
    return found


def locate(fmt: CifarFormat, place: Path):
    """How to read ``fmt`` at ``place``: ("folder"|"archive", path), or None if not there.

    ``place`` may be the extracted folder itself, a folder containing it or the archive, or the
    archive file.
    """
    needed = fmt.train_files + fmt.test_files
    if place.is_file():
        return ("archive", place)
    for folder in (place, place / fmt.folder):
        if all((folder / name).is_file() for name in needed):
            return ("folder", folder)
    if (place / fmt.archive).is_file():
        return ("archive", place / fmt.archive)
    return None


def _how_to_get(fmt: CifarFormat, cache: Path) -> str:
    return (
        f"How to get {fmt.title}: download {fmt.url} (md5 {fmt.md5}) into {cache} "
        f"(set $CHAINRULE_DATA to move the cache), or pass load_data(path=...) with the "
        f".tar.gz, the extracted {fmt.folder}/ folder, or a folder containing either."
    )


def find_or_download(fmt: CifarFormat, path, system_dirs: tuple[str, ...]):
    """Search ``path`` (alone) or the cache and ``system_dirs``; else download the archive."""
    cache = cache_dir(fmt.name)
    for place in candidate_dirs(fmt.name, path, system_dirs):
        found = locate(fmt, place)
        if found:
            return found
    if path is not None:
        raise DatasetNotFoundError(
            f"{fmt.title}: {Path(path)} is neither the archive, the {fmt.folder}/ folder, nor "
            f"a folder containing one of them.\n{_how_to_get(fmt, cache)}"
        )
    try:
        archive = _download.download(fmt.url, cache / fmt.archive, md5=fmt.md5)
    except (OSError, DatasetError) as err:
        remove_if_empty(cache)
        raise DatasetNotFoundError(
            f"{fmt.title} was not found and could not be downloaded: {err}\n"
            f"{_how_to_get(fmt, cache)}"
        ) from err
    return ("archive", archive)


def load_cifar(
    fmt: CifarFormat,
    path: str | os.PathLike | None,
    system_dirs: tuple[str, ...],
    label_key: str,
    num_classes: int,
):
    """Read, validate and stack a CIFAR variant: ``(x_train, y_train), (x_test, y_test)``.

    Images are (N, 3, 32, 32) uint8 (NCHW); labels are (N, 1) uint8 as in Keras.
    """
    kind, where = find_or_download(fmt, path, system_dirs)
    names = fmt.train_files + fmt.test_files
    raw = _read_from_folder(where, names) if kind == "folder" else _read_from_archive(where, names)

    def stack(files):
        parts = [parse_batch(*raw[name], label_key, num_classes) for name in files]
        x = np.concatenate([images for images, _ in parts])
        y = np.concatenate([labels for _, labels in parts]).reshape(-1, 1)
        return x, y

    return stack(fmt.train_files), stack(fmt.test_files)
