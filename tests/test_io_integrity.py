"""chainrule.io integrity: checksums refuse damaged files; errors say what is wrong."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from chainrule import io

HAS_SAFETENSORS = importlib.util.find_spec("safetensors") is not None
SUFFIXES = [".npz", pytest.param(".safetensors", marks=pytest.mark.skipif(
    not HAS_SAFETENSORS, reason="safetensors is not installed"))]


def _tree():
    return {"weights": {"kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
                        "bias": np.linspace(-1, 1, 5)},
            "step": 3, "name": "probe"}


def _same(tree, expected) -> bool:
    """Whether a loaded tree has exactly the values, dtypes and JSON of ``expected``."""
    weights, want = tree["weights"], expected["weights"]
    return (set(weights) == set(want) and tree["step"] == expected["step"]
            and tree["name"] == expected["name"]
            and all(weights[k].dtype == v.dtype and np.array_equal(weights[k], v)
                    for k, v in want.items()))


def _flip_outcomes(path, data: bytes, positions, mask: int):
    """Load the file with one byte flipped at each position: 'refused' (FormatError),
    'same' (the flip hit bytes that change nothing), or 'silent' (different values)."""
    outcomes = {}
    for position in positions:
        damaged = bytearray(data)
        damaged[position] ^= mask
        path.write_bytes(bytes(damaged))
        try:
            tree = io.load_tree(path)
        except io.FormatError:
            outcomes[position] = "refused"
            continue
        outcomes[position] = "same" if _same(tree, _tree()) else "silent"
    return outcomes


def _data_region(path, data: bytes, suffix: str) -> range:
    """The byte range holding the kernel's values."""
    values = _tree()["weights"]["kernel"].tobytes()
    start = data.find(values)
    assert start > 0, f"the kernel's bytes were not found in the {suffix} file"
    return range(start, start + len(values))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_new_files_carry_checksums(tmp_path, suffix):
    path = tmp_path / f"state{suffix}"
    io.save_tree(path, _tree())
    assert io.FORMAT_VERSION == 2
    assert _same(io.load_tree(path), _tree())


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_flipped_byte_in_the_data_names_the_damaged_tensor(tmp_path, suffix):
    path = tmp_path / f"state{suffix}"
    io.save_tree(path, _tree())
    data = path.read_bytes()
    region = _data_region(path, data, suffix)
    for position in region[::3]:
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(io.FormatError, match=r"checksum mismatch .*'weights/kernel'"):
            io.load_tree(path)


@pytest.mark.parametrize("mask", [0x01, 0xFF])
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_no_single_byte_flip_anywhere_loads_different_values(tmp_path, suffix, mask):
    path = tmp_path / f"state{suffix}"
    io.save_tree(path, _tree())
    data = path.read_bytes()
    outcomes = _flip_outcomes(path, data, range(len(data)), mask)
    silent = [position for position, outcome in outcomes.items() if outcome == "silent"]
    assert silent == []
    region = _data_region(path, data, suffix)
    assert all(outcomes[position] == "refused" for position in region)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_truncated_files_are_refused_as_truncated_or_damaged(tmp_path, suffix):
    path = tmp_path / f"state{suffix}"
    io.save_tree(path, _tree())
    data = path.read_bytes()
    for length in [0, 3, 7, 20, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1]:
        path.write_bytes(data[:length])
        with pytest.raises(io.FormatError, match="truncated|damaged|not an? "):
            io.load_tree(path)


def test_errors_say_what_is_wrong(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(2))
    with pytest.raises(io.FormatError, match="not a chainrule file"):
        io.load_tree(plain)
    text = tmp_path / "text.npz"
    text.write_text("hello, this is not a zip archive")
    with pytest.raises(io.FormatError, match="not an .npz file"):
        io.load_tree(text)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(io.FormatError, match="truncated: 0 bytes"):
        io.load_tree(empty)
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as file:
        np.save(file, np.ones(3))
    with pytest.raises(io.FormatError, match="not an .npz file"):
        io.load_tree(npy)


@pytest.mark.skipif(not HAS_SAFETENSORS, reason="safetensors is not installed")
def test_safetensors_errors_say_what_is_wrong(tmp_path):
    from safetensors.numpy import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.ones(2, np.float32)}, str(foreign))
    with pytest.raises(io.FormatError, match="not a chainrule file"):
        io.load_tree(foreign)
    text = tmp_path / "text.safetensors"
    text.write_text("hello, this is not a safetensors file")
    with pytest.raises(io.FormatError, match="truncated, or not a .safetensors file"):
        io.load_tree(text)


def _rewrite_npz(path, change):
    """Rewrite a .npz through NumPy after ``change(entries)`` (a deliberate edit)."""
    with np.load(path) as archive:
        entries = {key: archive[key] for key in archive.files}
    change(entries)
    np.savez(path, **entries)


def test_an_edited_document_fails_its_checksum(tmp_path):
    path = tmp_path / "state.npz"
    io.save_tree(path, _tree())

    def edit(entries):
        document = entries["__tree__.json"].tobytes().decode().replace('"step": 3', '"step": 4')
        entries["__tree__.json"] = np.frombuffer(document.encode(), np.uint8)

    _rewrite_npz(path, edit)
    with pytest.raises(io.FormatError, match="checksum mismatch for the file's JSON document"):
        io.load_tree(path)


def test_a_replaced_array_fails_its_checksum_even_with_a_valid_zip(tmp_path):
    path = tmp_path / "state.npz"
    io.save_tree(path, _tree())
    _rewrite_npz(path, lambda entries: entries.__setitem__("weights/bias", np.zeros(5)))
    with pytest.raises(io.FormatError, match="checksum mismatch for array 'weights/bias'"):
        io.load_tree(path)


def test_a_removed_document_checksum_is_refused(tmp_path):
    path = tmp_path / "state.npz"
    io.save_tree(path, _tree())
    _rewrite_npz(path, lambda entries: entries.pop("__tree__.sha256"))
    with pytest.raises(io.FormatError, match="checksum of its JSON document is missing"):
        io.load_tree(path)


def _version_1_npz(path, tree):
    """A file as chainrule wrote it before checksums (format version 1)."""
    arrays = {"weights/kernel": tree["weights"]["kernel"], "weights/bias": tree["weights"]["bias"]}
    skeleton = {"weights": {k.split("/")[1]: {"__array__": k} for k in arrays},
                "step": tree["step"], "name": tree["name"]}
    document = json.dumps({"format": "chainrule", "version": 1, "metadata": {},
                           "tree": skeleton})
    np.savez(path, **arrays, **{"__tree__.json": np.frombuffer(document.encode(), np.uint8)})


def test_version_1_files_without_checksums_still_load(tmp_path):
    path = tmp_path / "old.npz"
    _version_1_npz(path, _tree())
    assert _same(io.load_tree(path), _tree())


def test_checksums_do_not_depend_on_byte_order_or_layout():
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert io.array_checksum(array) == io.array_checksum(array.astype(">f8"))
    assert io.array_checksum(array) == io.array_checksum(np.asfortranarray(array))
    assert io.array_checksum(array) != io.array_checksum(array.reshape(3, 2))
    assert io.array_checksum(array) != io.array_checksum(array.astype(np.float32))


# -- load_model: a crafted architecture is refused before anything is built ---------------------


def _saved_model(path):
    from chainrule.layers import Dense
    from chainrule.models import Sequential

    model = Sequential([Dense(8, input_shape=(4,)), Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.save(path)
    return model


def _edit_model_file(path, edit):
    """Change a saved model's JSON and write it back with valid checksums (a deliberate,
    hostile edit rather than damage)."""
    tree, metadata = io.load_tree(path, with_metadata=True)
    edit(tree)
    io.save_tree(path, tree, metadata=metadata)


def _huge_units(tree):
    tree["model"]["config"]["layers"][1]["config"]["units"] = 10**12


def _huge_first_units(tree):
    tree["model"]["config"]["layers"][0]["config"]["units"] = 10**7


def _huge_input(tree):
    tree["build_input_shape"] = [None, 10**9]
    tree["model"]["config"]["input_shape"] = [10**9]
    tree["model"]["config"]["layers"][0]["config"]["input_shape"] = [10**9]


EDITS = {
    "units 10**12": (_huge_units, r"declares units=1000000000000, a weight of at least 10{12}"),
    "first layer units": (_huge_first_units, r"units=10000000, input features=4"),
    "input features": (_huge_input, r"input features=1000000000"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_load_model_refuses_a_crafted_huge_architecture_fast(tmp_path, edit):
    import time
    import tracemalloc

    from chainrule.models import load_model

    path = tmp_path / "model.npz"
    _saved_model(path)
    change, message = EDITS[edit]
    _edit_model_file(path, change)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(io.FormatError, match=message):
            load_model(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0 and peak < 50 * 2**20


def test_load_model_still_loads_an_honest_file(tmp_path):
    from chainrule.models import load_model

    path = tmp_path / "model.npz"
    model = _saved_model(path)
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(load_model(path).predict(x), model.predict(x))
