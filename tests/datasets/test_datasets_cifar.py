"""CIFAR-10 / CIFAR-100 from folders and archives, the restricted unpickler, and errors."""

import hashlib
import os
import pickle

import numpy as np
import pytest

from chainrule.datasets import DatasetError, DatasetNotFoundError, _download, cifar10, cifar100
from chainrule.datasets._cifar import RestrictedUnpickler, UnsafePickleError, unpickle_batch


def _expected(batches, names, label_key):
    x = np.concatenate([np.asarray(batches[n][b"data"]) for n in names]).reshape(-1, 3, 32, 32)
    y = np.concatenate([batches[n][label_key.encode()] for n in names]).reshape(-1, 1)
    return x, y


def _check_cifar10(loaded, batches):
    (x_tr, y_tr), (x_te, y_te) = loaded
    want_x, want_y = _expected(batches, cifar10.FORMAT.train_files, "labels")
    assert x_tr.shape == (15, 3, 32, 32) and x_tr.dtype == np.uint8
    assert y_tr.shape == (15, 1) and y_tr.dtype == np.uint8
    np.testing.assert_array_equal(x_tr, want_x)
    np.testing.assert_array_equal(y_tr, want_y)
    want_x, want_y = _expected(batches, ("test_batch",), "labels")
    np.testing.assert_array_equal(x_te, want_x)
    np.testing.assert_array_equal(y_te, want_y)


def test_nchw_layout_matches_the_official_row_layout(tmp_path, make):
    batches = make.cifar10_batches(n=3)
    make.write_cifar_folder(tmp_path / "cifar-10-batches-py", batches)
    (x, _), _ = cifar10.load_data(tmp_path)
    row = np.asarray(batches["data_batch_1"][b"data"])[0]
    # Official layout: 1024 red values, then 1024 green, then 1024 blue, each row-major.
    np.testing.assert_array_equal(x[0, 1, 0, :], row[1024:1056])
    np.testing.assert_array_equal(x[0, 2, 31, 31], row[3071])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_from_extracted_folder_or_its_parent(tmp_path, make, protocol):
    batches = make.cifar10_batches()
    folder = make.write_cifar_folder(tmp_path / "cifar-10-batches-py", batches, protocol)
    _check_cifar10(cifar10.load_data(folder), batches)
    _check_cifar10(cifar10.load_data(tmp_path), batches)


def _archive(make, fmt, batches, protocol=2):
    files = {name: pickle.dumps(b, protocol=protocol) for name, b in batches.items()}
    files["batches.meta"] = pickle.dumps({b"label_names": [b"a"]}, protocol=2)
    return make.cifar_tar_bytes(fmt.folder, files)


def test_cifar10_from_archive_or_folder_holding_it(tmp_path, make):
    batches = make.cifar10_batches()
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(_archive(make, cifar10.FORMAT, batches))
    _check_cifar10(cifar10.load_data(archive), batches)
    _check_cifar10(cifar10.load_data(tmp_path), batches)
    assert sorted(os.listdir(tmp_path)) == ["cifar-10-python.tar.gz"]  # nothing extracted


def test_cifar10_batches_with_bytes_data(tmp_path, make):
    batches = {
        name: make.cifar_batch(3, {"labels": 10}, seed=i, as_bytes_data=True)
        for i, name in enumerate(cifar10.FORMAT.train_files + cifar10.FORMAT.test_files)
    }
    make.write_cifar_folder(tmp_path, batches)
    (x, _), _ = cifar10.load_data(tmp_path)
    first = np.frombuffer(batches["data_batch_1"][b"data"], np.uint8)[:3072]
    np.testing.assert_array_equal(x[0].ravel(), first)


@pytest.mark.parametrize(
    ("mode", "key", "top"), [("fine", "fine_labels", 100), ("coarse", "coarse_labels", 20)]
)
def test_cifar100_label_modes(tmp_path, make, mode, key, top):
    batches = make.cifar100_batches(n=40)
    make.write_cifar_folder(tmp_path / "cifar-100-python", batches)
    (x_tr, y_tr), (x_te, y_te) = cifar100.load_data(tmp_path, label_mode=mode)
    assert x_tr.shape == (40, 3, 32, 32) and x_te.shape == (40, 3, 32, 32)
    assert y_tr.shape == (40, 1) and y_tr.dtype == np.uint8
    np.testing.assert_array_equal(y_tr.ravel(), batches["train"][key.encode()])
    assert y_te.max() < top


def test_cifar100_from_archive(tmp_path, make):
    batches = make.cifar100_batches()
    archive = tmp_path / "c.tar.gz"
    archive.write_bytes(_archive(make, cifar100.FORMAT, batches, protocol=4))
    (x, y), _ = cifar100.load_data(archive, label_mode="coarse")
    np.testing.assert_array_equal(y.ravel(), batches["train"][b"coarse_labels"])


def test_cifar100_rejects_unknown_label_mode(tmp_path):
    with pytest.raises(ValueError, match="label_mode must be 'fine' or 'coarse'"):
        cifar100.load_data(tmp_path, label_mode="medium")


# ----------------------------------------------------------------- the restricted unpickler


class _Exploit:
    """Unpickling this would call os.system."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize(
    "payload",
    [_Exploit(), {b"data": _Exploit()}, print, {b"x": eval}],
    ids=["system", "nested", "print", "eval"],
)
def test_unpickler_refuses_anything_but_arrays(payload):
    data = pickle.dumps(payload, protocol=2)
    with pytest.raises(UnsafePickleError, match="batch.bin: refusing to unpickle"):
        unpickle_batch(data, "batch.bin")


def test_unpickler_does_not_even_import_the_module(monkeypatch):
    import sys

    data = pickle.dumps({b"a": _Exploit()}, protocol=2).replace(b"posix", b"zzmod")
    monkeypatch.delitem(sys.modules, "zzmod", raising=False)
    with pytest.raises(UnsafePickleError, match="zzmod.system"):
        unpickle_batch(data, "f")
    assert "zzmod" not in sys.modules


def test_unpickler_accepts_plain_containers_and_arrays():
    value = {b"k": [1, 2, "s", b"b"], "arr": np.arange(6, dtype=np.uint8).reshape(2, 3)}
    for protocol in (2, 3, 4, 5):
        out = RestrictedUnpickler(__import__("io").BytesIO(pickle.dumps(value, protocol))).load()
        assert out[b"k"] == [1, 2, "s", b"b"]
        np.testing.assert_array_equal(out["arr"], value["arr"])


def test_malicious_file_in_a_cifar_folder_is_refused(tmp_path, make):
    batches = make.cifar10_batches()
    folder = make.write_cifar_folder(tmp_path, batches)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Exploit()}, protocol=2))
    with pytest.raises(UnsafePickleError, match="data_batch_3"):
        cifar10.load_data(folder)


# ----------------------------------------------------------------- validation


def _broken(make, tmp_path, name, batch=None, raw=None):
    batches = make.cifar10_batches()
    folder = make.write_cifar_folder(tmp_path, batches)
    (folder / name).write_bytes(raw if raw is not None else pickle.dumps(batch, protocol=2))
    return folder


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "should be 2 integer labels"),
        ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [1, 2]}, r"\(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.int64), b"labels": [1, 2]}, "int64"),
        ({b"data": b"\x00" * 3000, b"labels": [1]}, "not a multiple of 3072"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]}, r"outside \[0, 10\)"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "no 'labels' entry"),
        ([1, 2, 3], "expected a pickled dict"),
    ],
    ids=["count", "width", "dtype", "bytes", "range", "missing-key", "not-dict"],
)
def test_malformed_batches_name_the_file(tmp_path, make, batch, message):
    folder = _broken(make, tmp_path, "data_batch_2", batch)
    with pytest.raises(DatasetError, match=message) as info:
        cifar10.load_data(folder)
    assert "data_batch_2" in str(info.value)


def test_truncated_pickle_is_a_dataset_error(tmp_path, make):
    data = pickle.dumps(make.cifar_batch(3, {"labels": 10}), protocol=2)
    folder = _broken(make, tmp_path, "test_batch", raw=data[: len(data) // 2])
    with pytest.raises(DatasetError, match="test_batch: not a readable CIFAR pickle"):
        cifar10.load_data(folder)


def test_truncated_archive_is_a_dataset_error(tmp_path, make):
    blob = _archive(make, cifar10.FORMAT, make.cifar10_batches())
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz: corrupt or truncated"):
        cifar10.load_data(archive)


def test_archive_missing_a_batch(tmp_path, make):
    batches = make.cifar10_batches()
    del batches["data_batch_4"]
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_archive(make, cifar10.FORMAT, batches))
    with pytest.raises(DatasetError, match="archive lacks data_batch_4"):
        cifar10.load_data(archive)


# ----------------------------------------------------------------- search and download


def test_explicit_path_without_cifar_is_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="neither the archive") as info:
        cifar10.load_data(tmp_path)
    assert cifar10.FORMAT.url in str(info.value)


def test_cache_then_download(tmp_path, monkeypatch, make, isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        cifar10.load_data()
    for text in (cifar10.FORMAT.url, cifar10.FORMAT.md5, "load_data(path=", "network disabled"):
        assert text in str(info.value)

    batches = make.cifar10_batches()
    blob = _archive(make, cifar10.FORMAT, batches)
    monkeypatch.setattr(_download, "urlopen", make.opener({cifar10.FORMAT.url: blob}))
    bad_md5 = cifar10.FORMAT
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        cifar10.load_data()
    cache = isolated["home_cache"] / "cifar10"
    assert not cache.exists()  # nothing left behind, not even an empty folder

    good = type(bad_md5)(**{**bad_md5.__dict__, "md5": hashlib.md5(blob).hexdigest()})
    monkeypatch.setattr(cifar10, "FORMAT", good)
    _check_cifar10(cifar10.load_data(), batches)
    assert os.listdir(cache) == ["cifar-10-python.tar.gz"]

    # Then the cached archive is used without the network.
    monkeypatch.setattr(_download, "urlopen", make.opener({}))
    _check_cifar10(cifar10.load_data(), batches)


def test_env_cache_holding_the_extracted_folder(tmp_path, monkeypatch, make):
    batches = make.cifar100_batches()
    make.write_cifar_folder(tmp_path / "env" / "cifar100" / "cifar-100-python", batches)
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "env"))
    (x, y), _ = cifar100.load_data()
    np.testing.assert_array_equal(y.ravel(), batches["train"][b"fine_labels"])
