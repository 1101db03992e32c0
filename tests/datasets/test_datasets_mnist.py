"""MNIST and Fashion-MNIST: search order, downloads (faked), errors and the real Debian files."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from chainrule.datasets import (
    ChecksumError,
    DatasetError,
    DatasetNotFoundError,
    _common,
    _download,
    fashion_mnist,
    mnist,
)

LOADERS = [fashion_mnist, mnist]


def _assert_same(loaded, arrays):
    for got, want in zip((*loaded[0], *loaded[1]), (*arrays[0], *arrays[1]), strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("module", LOADERS, ids=lambda m: m.NAME)
def test_explicit_path_is_read(tmp_path, write_mnist, module):
    arrays = write_mnist(tmp_path / "mine")
    _assert_same(module.load_data(path=tmp_path / "mine"), arrays)
    _assert_same(module.load_data(path=str(tmp_path / "mine")), arrays)


@pytest.mark.parametrize("module", LOADERS, ids=lambda m: m.NAME)
def test_search_order_path_env_cache_system(
    tmp_path, monkeypatch, write_mnist, make, isolated, module
):
    """path > $CHAINRULE_DATA/<name> > ~/.cache/... > system folder > download."""
    system = write_mnist(Path(module.SYSTEM_DIRS[0]), make.mnist_arrays(seed=1))
    _assert_same(module.load_data(), system)

    home = write_mnist(isolated["home_cache"] / module.NAME, make.mnist_arrays(seed=2))
    _assert_same(module.load_data(), home)

    env_root = tmp_path / "env"
    env = write_mnist(env_root / module.NAME, make.mnist_arrays(seed=3))
    monkeypatch.setenv("CHAINRULE_DATA", str(env_root))
    _assert_same(module.load_data(), env)

    explicit = write_mnist(tmp_path / "explicit", make.mnist_arrays(seed=4))
    _assert_same(module.load_data(path=tmp_path / "explicit"), explicit)


def test_env_var_replaces_the_home_cache(tmp_path, monkeypatch, isolated):
    assert _common.cache_dir("mnist") == isolated["home_cache"] / "mnist"
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "elsewhere"))
    assert _common.cache_dir("mnist") == tmp_path / "elsewhere" / "mnist"


def test_default_cache_is_under_the_home_folder(monkeypatch):
    monkeypatch.setattr(_common, "DEFAULT_CACHE_ROOT", "~/.cache/chainrule/datasets")
    monkeypatch.setenv("HOME", "/home/someone")
    assert _common.cache_dir("fashion-mnist") == Path(
        "/home/someone/.cache/chainrule/datasets/fashion-mnist"
    )


def test_an_incomplete_folder_is_skipped_in_the_search(isolated, write_mnist):
    cache = isolated["home_cache"] / "fashion-mnist"
    cache.mkdir(parents=True)
    (cache / "train-images-idx3-ubyte.gz").write_bytes(b"partial")
    arrays = write_mnist(Path(fashion_mnist.SYSTEM_DIRS[0]))
    _assert_same(fashion_mnist.load_data(), arrays)


def test_explicit_path_does_not_fall_back(tmp_path, write_mnist):
    write_mnist(Path(fashion_mnist.SYSTEM_DIRS[0]))
    (tmp_path / "typo").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist.load_data(path=tmp_path / "typo")
    message = str(info.value)
    assert "typo" in message and "missing: train-images-idx3-ubyte.gz" in message


def test_not_found_error_says_how_to_get_the_data():
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist.load_data()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert fashion_mnist.BASE_URLS[0] + "t10k-labels-idx1-ubyte.gz" in message
    assert "load_data(path=" in message
    assert "network disabled in tests" in message  # the underlying cause
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_mnist_not_found_names_its_mirror():
    with pytest.raises(DatasetNotFoundError, match="ossci-datasets.s3.amazonaws.com/mnist/"):
        mnist.load_data()


def _serve(monkeypatch, make, module, arrays, corrupt: str | None = None):
    """Fake the network for ``module``: right files, and MD5s that match them."""
    files = make.mnist_file_bytes(arrays)
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in files.items()}
    if corrupt:
        files[corrupt] = files[corrupt][:-1] + b"X"
    opener = make.opener({module.BASE_URLS[0] + name: data for name, data in files.items()})
    monkeypatch.setattr(module, "MD5", md5)
    monkeypatch.setattr(_download, "urlopen", opener)
    return opener


@pytest.mark.parametrize("module", LOADERS, ids=lambda m: m.NAME)
def test_download_into_the_cache_when_found_nowhere(monkeypatch, make, isolated, module):
    arrays = make.mnist_arrays(seed=7)
    opener = _serve(monkeypatch, make, module, arrays)
    _assert_same(module.load_data(), arrays)
    cache = isolated["home_cache"] / module.NAME
    assert sorted(os.listdir(cache)) == sorted(make.mnist_names)  # no temporary files left
    assert len(opener.calls) == 4
    assert all(timeout == _download.TIMEOUT for _, timeout in opener.calls)
    # The next call reads the cache and does not touch the network.
    monkeypatch.setattr(_download, "urlopen", make.opener({}))
    _assert_same(module.load_data(), arrays)


def test_download_only_fetches_missing_files(monkeypatch, make, isolated):
    arrays = make.mnist_arrays()
    opener = _serve(monkeypatch, make, fashion_mnist, arrays)
    cache = isolated["home_cache"] / "fashion-mnist"
    cache.mkdir(parents=True)
    name = "train-labels-idx1-ubyte.gz"
    (cache / name).write_bytes(make.mnist_file_bytes(arrays)[name])
    fashion_mnist.load_data()
    assert len(opener.calls) == 3 and not any(name in url for url, _ in opener.calls)


def test_bad_checksum_leaves_no_file(monkeypatch, make, isolated):
    _serve(
        monkeypatch, make, fashion_mnist, make.mnist_arrays(), corrupt="t10k-images-idx3-ubyte.gz"
    )
    with pytest.raises(DatasetNotFoundError, match="md5 checksum mismatch") as info:
        fashion_mnist.load_data()
    assert isinstance(info.value.__cause__, OSError)
    cache = isolated["home_cache"] / "fashion-mnist"
    # The two files fetched before the bad one stay (they were verified); nothing else.
    assert sorted(os.listdir(cache)) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_failed_download_leaves_no_empty_cache_folder(isolated):
    with pytest.raises(DatasetNotFoundError):
        mnist.load_data()
    assert not (isolated["home_cache"] / "mnist").exists()


def test_official_checksums_are_recorded():
    for module in LOADERS:
        assert set(module.MD5) == {
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        }
        assert all(len(d) == 32 and int(d, 16) >= 0 for d in module.MD5.values())
    assert fashion_mnist.MD5["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert mnist.MD5["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"


# ----------------------------------------------------------------- _download.download itself


def test_download_is_atomic(tmp_path, monkeypatch):
    dest = tmp_path / "sub" / "file.bin"
    payload = os.urandom(3 * _download.CHUNK_SIZE + 5)

    class Watching:
        def __init__(self):
            self.offset = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            assert not dest.exists(), "destination must not appear before verification"
            chunk = payload[self.offset : self.offset + n]
            self.offset += len(chunk)
            return chunk

    monkeypatch.setattr(_download, "urlopen", lambda url, timeout: Watching())
    out = _download.download("http://x/f", dest, sha256=hashlib.sha256(payload).hexdigest())
    assert out == dest and dest.read_bytes() == payload
    assert os.listdir(dest.parent) == ["file.bin"]


def test_download_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    class Broken:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            raise TimeoutError("read timed out")

    monkeypatch.setattr(_download, "urlopen", lambda url, timeout: Broken())
    with pytest.raises(TimeoutError):
        _download.download("http://x/f", tmp_path / "f", md5="0" * 32)
    assert os.listdir(tmp_path) == []


def test_download_checksum_mismatch_raises_checksum_error(tmp_path, monkeypatch, make):
    monkeypatch.setattr(_download, "urlopen", make.opener({"http://x/f": b"abc"}))
    with pytest.raises(ChecksumError, match="sha256 checksum mismatch"):
        _download.download("http://x/f", tmp_path / "f", sha256="0" * 64)
    assert os.listdir(tmp_path) == []
    assert issubclass(ChecksumError, DatasetError)


def test_download_needs_a_checksum(tmp_path):
    with pytest.raises(ValueError, match="md5 or a sha256"):
        _download.download("http://x/f", tmp_path / "f")


def test_download_passes_the_timeout(tmp_path, monkeypatch, make):
    opener = make.opener({"http://x/f": b"abc"})
    monkeypatch.setattr(_download, "urlopen", opener)
    _download.download("http://x/f", tmp_path / "f", md5=hashlib.md5(b"abc").hexdigest(), timeout=3)
    assert opener.calls == [("http://x/f", 3)]
    assert 0 < _download.TIMEOUT <= 60


# ----------------------------------------------------------------- the real Debian files

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
HAVE_DEBIAN = all((DEBIAN_DIR / name).is_file() for name in fashion_mnist.MD5)


@pytest.mark.skipif(
    not HAVE_DEBIAN,
    reason="Fashion-MNIST not installed: `sudo apt-get install dataset-fashion-mnist` "
    "(or `make data`) puts it in /usr/share/datasets/fashion-mnist",
)
def test_real_debian_fashion_mnist(monkeypatch):
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", (str(DEBIAN_DIR),))
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train.min() == 0 and y_train.max() == 9
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1000))
    assert 0 < x_train.mean() < 255
