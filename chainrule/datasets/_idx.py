"""The IDX file format of MNIST and Fashion-MNIST, and the four-file data sets stored in it.

An IDX file is a header followed by raw values, all big-endian::

    bytes 0-1   zero
    byte  2     type code (0x08 = uint8, 0x09 = int8, 0x0B = int16, ...)
    byte  3     number of dimensions d
    4*d bytes   the size of each dimension (uint32)
    the rest    prod(sizes) values, C order

So a label file (magic ``0x00000801``) has its data at offset 8 and an image file
(magic ``0x00000803``) at offset 16. The files usually come gzipped; both forms are read
(gzip is recognised by its own magic bytes, not by the file name).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
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

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Refuse headers that promise more than this many bytes of data (a corrupt header).
MAX_PAYLOAD_BYTES = 1 << 34

#: The four files of an MNIST-style data set, by the name of the array they hold.
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

_GZIP_MAGIC = b"\x1f\x8b"


def _open(path: Path):
    """Open ``path`` for reading bytes, through gzip when it starts with gzip's magic."""
    with open(path, "rb") as probe:
        is_gzip = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if is_gzip else open(path, "rb")


def _read_exact(stream, n: int, path: Path, what: str) -> bytes:
    """Read exactly ``n`` bytes or raise a DatasetError saying the file is too short."""
    data = stream.read(n)
    if len(data) != n:
        raise DatasetError(f"{path}: file ends inside the {what} ({len(data)} of {n} bytes)")
    return data


def _read_header(stream, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Parse the magic number and dimensions; return (big-endian dtype, shape)."""
    magic = _read_exact(stream, 4, path, "magic number")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES or magic[3] == 0:
        raise DatasetError(
            f"{path}: not an IDX file (magic number 0x{magic.hex()}; expected 0x0000TTDD with "
            f"a known type code TT and DD >= 1 dimensions)"
        )
    ndim = magic[3]
    sizes = _read_exact(stream, 4 * ndim, path, "dimension sizes")
    shape = tuple(int(s) for s in np.frombuffer(sizes, dtype=">u4"))
    return IDX_DTYPES[magic[2]], shape


def _read_payload(stream, dtype: np.dtype, shape: tuple[int, ...], path: Path) -> np.ndarray:
    """Read the values straight into a new array and check nothing follows them."""
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if nbytes > MAX_PAYLOAD_BYTES:
        raise DatasetError(f"{path}: header promises an implausible shape {shape}")
    array = np.empty(shape, dtype=dtype)
    buffer = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    while filled < nbytes:
        got = stream.readinto(buffer[filled:])
        if not got:
            raise DatasetError(
                f"{path}: truncated: header shape {shape} needs {nbytes} bytes of data, "
                f"the file holds {filled}"
            )
        filled += got
    extra = len(stream.read(1 << 16))
    if extra:
        raise DatasetError(
            f"{path}: {extra}{'+' if extra == 1 << 16 else ''} bytes after the {nbytes} bytes "
            f"that header shape {shape} describes (wrong dimensions?)"
        )
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or not) into a native-byte-order NumPy array.

    Raises :class:`DatasetError` naming the file for a bad magic number, a truncated or corrupt
    gzip stream, too little data for the header's shape, or trailing bytes.

    >>> read_idx("train-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
    (60000,)
    """
    path = Path(path)
    try:
        with _open(path) as stream:
            dtype, shape = _read_header(stream, path)
            return _read_payload(stream, dtype, shape, path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DatasetError(f"{path}: corrupt or truncated gzip stream ({err})") from err


def read_images(path: str | os.PathLike, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Read an IDX image file and check it holds uint8 images of ``image_shape``."""
    images = read_idx(path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != image_shape:
        raise DatasetError(
            f"{path}: expected uint8 images of shape (N, {image_shape[0]}, {image_shape[1]}) "
            f"(magic 0x00000803), got {images.dtype} array of shape {images.shape}"
        )
    return images


def read_labels(path: str | os.PathLike, num_classes: int = 10) -> np.ndarray:
    """Read an IDX label file and check it holds uint8 labels in ``[0, num_classes)``."""
    labels = read_idx(path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{path}: expected a uint8 label vector of shape (N,) (magic 0x00000801), "
            f"got {labels.dtype} array of shape {labels.shape}"
        )
    if labels.size and labels.max() >= num_classes:
        raise DatasetError(
            f"{path}: label {int(labels.max())} is out of range for {num_classes} classes"
        )
    return labels


def find_file(folder: Path, gz_name: str) -> Path | None:
    """``folder/gz_name``, or its un-gzipped twin, whichever exists first; else None."""
    for name in (gz_name, gz_name.removesuffix(".gz")):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def read_mnist_folder(folder: Path, num_classes: int = 10):
    """Read and cross-check the four MNIST-style files in ``folder``.

    Returns ``(x_train, y_train), (x_test, y_test)``; raises :class:`DatasetError` if any file
    is malformed or a split has different numbers of images and labels.
    """
    files = {key: find_file(folder, name) for key, name in MNIST_FILES.items()}
    arrays = {}
    for key, file in files.items():
        if key.startswith("x"):
            arrays[key] = read_images(file)
        else:
            arrays[key] = read_labels(file, num_classes)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            raise DatasetError(
                f"{folder}: {files[f'x_{split}'].name} holds {len(x)} images but "
                f"{files[f'y_{split}'].name} holds {len(y)} labels"
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _missing(folder: Path) -> list[str]:
    return [name for name in MNIST_FILES.values() if find_file(folder, name) is None]


def how_to_get(title: str, base_urls, apt_package: str | None, cache: Path) -> str:
    """The instructions every "data not found" error ends with."""
    lines = [f"How to get {title}:"]
    if apt_package:
        lines.append(f"  * on Debian/Ubuntu: sudo apt-get install {apt_package}")
    urls = "\n".join(f"      {base_urls[0]}{name}" for name in MNIST_FILES.values())
    lines.append(f"  * {'or ' if apt_package else ''}download the four files\n{urls}")
    lines.append(
        f"    into {cache} (set $CHAINRULE_DATA to move the cache), or into any folder "
        f"and pass load_data(path=FOLDER)"
    )
    return "\n".join(lines)


def load_mnist_style(
    name: str,
    title: str,
    path,
    system_dirs: tuple[str, ...],
    base_urls: tuple[str, ...],
    md5s: dict[str, str],
    apt_package: str | None = None,
):
    """Find, (if need be) download, read and validate an MNIST-style data set.

    Search order: ``path`` alone if given; else the user cache, then ``system_dirs``, then a
    checksum-verified download from ``base_urls`` (tried in order) into the user cache.
    """
    cache = cache_dir(name)
    hint = how_to_get(title, base_urls, apt_package, cache)
    for folder in candidate_dirs(name, path, system_dirs):
        if folder.is_dir() and not _missing(folder):
            return read_mnist_folder(folder)
    if path is not None:
        raise DatasetNotFoundError(
            f"{title}: {Path(path)} is not a folder holding the four files "
            f"(missing: {', '.join(_missing(Path(path)))}).\n{hint}"
        )
    try:
        _download_missing(cache, base_urls, md5s)
    except (OSError, DatasetError) as err:
        remove_if_empty(cache)
        searched = ", ".join(str(d) for d in candidate_dirs(name, None, system_dirs))
        raise DatasetNotFoundError(
            f"{title} was not found (searched {searched}) and could not be downloaded: "
            f"{err}\n{hint}"
        ) from err
    return read_mnist_folder(cache)


def _download_missing(cache: Path, base_urls: tuple[str, ...], md5s: dict[str, str]) -> None:
    """Download each missing file from the first base URL that serves it correctly."""
    for name in MNIST_FILES.values():
        if find_file(cache, name) is not None:
            continue
        errors = []
        for base in base_urls:
            try:
                _download.download(base + name, cache / name, md5=md5s[name])
                break
            except (OSError, DatasetError) as err:
                errors.append(f"{base}{name}: {err}")
        else:
            raise OSError("; ".join(errors))
