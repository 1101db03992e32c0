"""Fixtures for the data set tests: tiny fake files in every format, an isolated cache and
system folders, and no network.

Every test here runs with (the autouse :func:`isolated` fixture):

* the user cache under a temporary folder (``isolated["home_cache"]``) and ``$CHAINRULE_DATA``
  unset;
* the system folders of MNIST and Fashion-MNIST moved into temporary folders, so the real
  Debian files are not found by accident;
* the network disabled: any download fails with ``OSError("network disabled in tests")``
  unless a test installs its own opener (``make.opener``).
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from chainrule.datasets import _common, _download, cifar10, cifar100, fashion_mnist, mnist

#: IDX type codes by NumPy dtype.
_IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}

MNIST_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class _Response:
    """What ``urlopen`` returns: a context manager with ``read(n)``."""

    def __init__(self, data: bytes):
        self._stream = io.BytesIO(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)


class _Opener:
    """A fake ``urlopen`` serving ``{url: bytes}``; it records ``(url, timeout)`` calls."""

    def __init__(self, files: dict):
        self.files = dict(files)
        self.calls: list[tuple[str, float]] = []

    def __call__(self, url, timeout=None):
        self.calls.append((url, timeout))
        if url not in self.files:
            raise OSError(f"fake network: no file at {url}")
        return _Response(self.files[url])


class Make:
    """Builders of small, valid data files (and their bytes) in the formats the loaders read."""

    mnist_names = MNIST_NAMES

    # -- IDX / MNIST ------------------------------------------------------------------------

    @staticmethod
    def idx_bytes(array) -> bytes:
        """``array`` as an (uncompressed) IDX file: magic, big-endian sizes, big-endian data."""
        array = np.asarray(array)
        code = _IDX_CODES[array.dtype]
        header = bytes([0, 0, code, array.ndim])
        header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        return header + array.astype(array.dtype.newbyteorder(">")).tobytes()

    @staticmethod
    def mnist_arrays(seed: int = 0, n_train: int = 6, n_test: int = 4):
        """Random uint8 images (n, 28, 28) and labels 0..9: ``(x_tr, y_tr), (x_te, y_te)``."""
        rng = np.random.default_rng(seed)

        def split(n):
            x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            y = rng.integers(0, 10, n, dtype=np.uint8)
            return x, y

        return split(n_train), split(n_test)

    def mnist_file_bytes(self, arrays=None, gz: bool = True) -> dict:
        """The four files of ``arrays`` as ``{file name: bytes}`` (gzipped, reproducibly)."""
        (x_tr, y_tr), (x_te, y_te) = arrays if arrays is not None else self.mnist_arrays()
        files = {}
        for name, array in zip(MNIST_NAMES, (x_tr, y_tr, x_te, y_te)):
            data = self.idx_bytes(array)
            if gz:
                files[name] = gzip.compress(data, mtime=0)
            else:
                files[name.removesuffix(".gz")] = data
        return files

    # -- the network ------------------------------------------------------------------------

    @staticmethod
    def opener(files: dict) -> _Opener:
        return _Opener(files)

    # -- CIFAR ------------------------------------------------------------------------------

    @staticmethod
    def cifar_batch(n: int, labels: dict, seed: int = 0, as_bytes_data: bool = False) -> dict:
        """One pickled-batch dict: ``b"data"`` (n, 3072) uint8 (or its bytes) and, for each
        ``{key: number of classes}`` in ``labels``, a list of n labels under ``key``."""
        rng = np.random.default_rng(seed)
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {b"data": data.tobytes() if as_bytes_data else data}
        for key, classes in labels.items():
            batch[key.encode()] = [int(v) for v in rng.integers(0, classes, n)]
        return batch

    def cifar10_batches(self, n: int = 3) -> dict:
        """The six CIFAR-10 batches (five training, one test) of ``n`` images each."""
        names = cifar10.FORMAT.train_files + cifar10.FORMAT.test_files
        return {name: self.cifar_batch(n, {"labels": 10}, seed=i) for i, name in enumerate(names)}

    def cifar100_batches(self, n: int = 3) -> dict:
        """CIFAR-100's ``train`` and ``test`` batches with fine and coarse labels."""
        spec = {"fine_labels": 100, "coarse_labels": 20}
        names = cifar100.FORMAT.train_files + cifar100.FORMAT.test_files
        return {name: self.cifar_batch(n, spec, seed=10 + i) for i, name in enumerate(names)}

    @staticmethod
    def write_cifar_folder(folder, batches: dict, protocol: int = 2) -> Path:
        """Pickle each batch into ``folder/<name>``; returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, batch in batches.items():
            (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        return folder

    @staticmethod
    def cifar_tar_bytes(folder_name: str, files: dict) -> bytes:
        """A .tar.gz holding ``folder_name/<name>`` for each ``{name: bytes}``."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"{folder_name}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


@pytest.fixture
def make() -> Make:
    return Make()


@pytest.fixture
def write_mnist(make):
    """``write_mnist(folder, arrays=None, gz=True)``: the four MNIST files of ``arrays``
    (default ``make.mnist_arrays()``) written into ``folder``; returns the arrays."""

    def write(folder, arrays=None, gz: bool = True):
        arrays = arrays if arrays is not None else make.mnist_arrays()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in make.mnist_file_bytes(arrays, gz=gz).items():
            (folder / name).write_bytes(data)
        return arrays

    return write


def _network_disabled(url, timeout=None):
    raise OSError("network disabled in tests")


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """A private cache and private system folders, and no network (see the module docstring).

    Returns ``{"home_cache": Path, "system": Path}``.
    """
    root = tmp_path_factory.mktemp("datasets")
    home_cache = root / "home_cache"
    system = root / "system"
    monkeypatch.delenv(_common.CACHE_ENV, raising=False)
    monkeypatch.setattr(_common, "DEFAULT_CACHE_ROOT", str(home_cache))
    for module in (fashion_mnist, mnist):
        monkeypatch.setattr(module, "SYSTEM_DIRS", (str(system / module.NAME),))
    for module in (cifar10, cifar100):
        monkeypatch.setattr(module, "SYSTEM_DIRS", ())
    monkeypatch.setattr(_download, "urlopen", _network_disabled)
    return {"home_cache": home_cache, "system": system}
