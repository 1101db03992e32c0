"""chainrule.io: trees of arrays and JSON values in .npz / .safetensors, atomic and strict."""

from __future__ import annotations

import io as io_module
import math
import os
import zipfile

import numpy as np
import pytest

import chainrule as cr
from chainrule import io

SUFFIXES = [".npz", pytest.param(".safetensors", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("safetensors") is None,
    reason="safetensors is not installed (pip install safetensors)"))]


def _tree():
    return {
        "weights": {"layers.0.kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
                    "layers.0.bias": np.zeros(3, np.float64),
                    "steps": np.array([1, 2], np.int64)},
        "optimizer": {"state": [{"exp_avg": np.ones(2, np.float32), "step": 3}, {}],
                      "param_groups": [{"params": [0, 1], "learning_rate": 0.001,
                                        "amsgrad": False, "name": None}],
                      "iterations": 3},
        "odd floats": [math.inf, -math.inf, 1.5],
        "text": "café",
    }


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_keeps_values_dtypes_and_structure(tmp_path, suffix):
    path = tmp_path / f"state{suffix}"
    io.save_tree(path, _tree(), metadata={"kind": "test"})
    tree, metadata = io.load_tree(path, with_metadata=True)
    expected = _tree()
    assert metadata == {"kind": "test"}
    for name, array in expected["weights"].items():
        assert tree["weights"][name].dtype == array.dtype
        np.testing.assert_array_equal(tree["weights"][name], array)
    np.testing.assert_array_equal(tree["optimizer"]["state"][0]["exp_avg"], np.ones(2))
    assert tree["optimizer"]["state"][0]["step"] == 3 and tree["optimizer"]["state"][1] == {}
    assert tree["optimizer"]["param_groups"] == expected["optimizer"]["param_groups"]
    assert tree["odd floats"] == expected["odd floats"] and tree["text"] == "café"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_tensors_are_stored_as_arrays(tmp_path):
    io.save_tree(tmp_path / "t.npz", {"w": cr.tensor([1.0, 2.0], requires_grad=True)})
    np.testing.assert_array_equal(io.load_tree(tmp_path / "t.npz")["w"], [1.0, 2.0])


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "state.npz"
    io.save_tree(path, {"w": np.ones(3)})

    def broken_savez(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save_tree(path, {"w": np.zeros(3)})
    monkeypatch.undo()
    np.testing.assert_array_equal(io.load_tree(path)["w"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]


def test_object_arrays_are_refused_rather_than_pickled(tmp_path):
    with pytest.raises(TypeError, match="without pickling"):
        io.save_tree(tmp_path / "x.npz", {"bad": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(TypeError, match="cannot store a set"):
        io.save_tree(tmp_path / "x.npz", {"bad": {1, 2}})


def test_loading_is_strict(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(2))
    with pytest.raises(io.FormatError, match="not a chainrule file"):
        io.load_tree(plain)

    path = tmp_path / "extra.npz"
    io.save_tree(path, {"w": np.ones(2)})
    buffer = io_module.BytesIO()
    np.lib.format.write_array(buffer, np.ones(2))
    with zipfile.ZipFile(path, "a") as archive:  # an array the JSON does not describe
        archive.writestr("sneaky.npy", buffer.getvalue())
    with pytest.raises(io.FormatError, match=r"\['sneaky'\] are not described"):
        io.load_tree(path)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{"__tree__.json": np.frombuffer(b'{"format": "chainrule", "tree": {}}',
                                                        np.uint8), "obj": np.array([None])})
    with pytest.raises(io.FormatError, match="not a readable .npz"):
        io.load_tree(pickled)

    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(io.FormatError, match="damaged.npz"):
        io.load_tree(damaged)


def test_missing_array_is_reported(tmp_path):
    path = tmp_path / "state.npz"
    io.save_tree(path, {"a": np.ones(2), "b": np.zeros(2)})
    with np.load(path) as archive:
        kept = {k: archive[k] for k in archive.files if k != "b"}
    np.savez(path, **kept)
    with pytest.raises(io.FormatError, match="array 'b' is missing"):
        io.load_tree(path)


def test_file_names_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match=r"\.npz or \.safetensors"):
        io.save_tree(tmp_path / "model.h5", {})
    with pytest.raises(FileNotFoundError):
        io.load_tree(tmp_path / "nothing.npz")


def test_weights_helpers(tmp_path):
    path = tmp_path / "w.npz"
    state = {"kernel": np.ones((2, 2), np.float32), "bias": np.zeros(2, np.float32)}
    io.save_weights(path, state)
    loaded = io.load_weights(path)
    assert list(loaded) == ["kernel", "bias"]
    io.save_tree(path, {"something": 1})
    with pytest.raises(io.FormatError, match="holds no weights"):
        io.load_weights(path)


def test_new_files_follow_the_umask(tmp_path):
    path = tmp_path / "w.npz"
    io.save_tree(path, {"w": np.ones(1)})
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
