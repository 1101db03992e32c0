"""The IDX reader and the validation of MNIST-style folders."""

import gzip

import numpy as np
import pytest

from chainrule.datasets import DatasetError, fashion_mnist
from chainrule.datasets._idx import read_idx, read_images, read_labels, read_mnist_folder


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips_every_type(tmp_path, make, dtype, compress):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if np.dtype(dtype) == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = make.idx_bytes(array)
    file = tmp_path / "f.idx"
    file.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(file)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


def test_label_offset_is_8_and_image_offset_is_16(make):
    assert len(make.idx_bytes(np.zeros(3, np.uint8))) == 8 + 3
    assert len(make.idx_bytes(np.zeros((2, 28, 28), np.uint8))) == 16 + 2 * 784
    assert make.idx_bytes(np.zeros(1, np.uint8))[:4] == bytes.fromhex("00000801")
    assert make.idx_bytes(np.zeros((1, 28, 28), np.uint8))[:4] == bytes.fromhex("00000803")


def _write(tmp_path, data: bytes, name="bad.gz", compress=True):
    file = tmp_path / name
    file.write_bytes(gzip.compress(data) if compress else data)
    return file


@pytest.mark.parametrize(
    "magic",
    ["01000803", "00010803", "00000703", "00000800"],
    ids=["byte0", "byte1", "unknown-type", "zero-dims"],
)
def test_wrong_magic_is_rejected_naming_the_file(tmp_path, make, magic):
    data = bytes.fromhex(magic) + make.idx_bytes(np.zeros((2, 28, 28), np.uint8))[4:]
    file = _write(tmp_path, data)
    with pytest.raises(DatasetError, match=f"bad.gz.*magic number 0x{magic}"):
        read_idx(file)


def test_truncated_gzip_is_rejected(tmp_path, make):
    blob = gzip.compress(make.idx_bytes(np.arange(4000, dtype=np.uint8) % 10))
    file = tmp_path / "cut.gz"
    file.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="cut.gz.*truncated gzip"):
        read_idx(file)


def test_corrupt_gzip_crc_is_rejected(tmp_path, make):
    blob = bytearray(gzip.compress(make.idx_bytes(np.zeros(100, np.uint8))))
    blob[-8] ^= 0xFF  # the CRC32 in the trailer
    file = tmp_path / "crc.gz"
    file.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match="crc.gz.*corrupt"):
        read_idx(file)


def test_payload_shorter_than_header_is_rejected(tmp_path, make):
    data = make.idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-10]
    with pytest.raises(DatasetError, match=r"short.gz: truncated: header shape \(3, 28, 28\)"):
        read_idx(_write(tmp_path, data, "short.gz"))


def test_header_cut_inside_dimensions_is_rejected(tmp_path):
    with pytest.raises(DatasetError, match="ends inside the dimension sizes"):
        read_idx(_write(tmp_path, bytes.fromhex("00000803") + b"\x00\x00", compress=False))


def test_trailing_bytes_are_rejected(tmp_path, make):
    data = make.idx_bytes(np.zeros(5, np.uint8)) + b"\x01\x02"
    with pytest.raises(DatasetError, match="2 bytes after"):
        read_idx(_write(tmp_path, data))


def test_implausible_header_is_rejected_without_allocating(tmp_path):
    data = bytes.fromhex("00000803") + bytes.fromhex("ffffffff" * 3)
    with pytest.raises(DatasetError, match="implausible shape"):
        read_idx(_write(tmp_path, data))


def test_images_must_be_28x28_uint8(tmp_path, make):
    wide = _write(tmp_path, make.idx_bytes(np.zeros((2, 28, 29), np.uint8)), "wide.gz")
    with pytest.raises(DatasetError, match=r"wide.gz: expected uint8 images .*\(2, 28, 29\)"):
        read_images(wide)
    labels_as_images = _write(tmp_path, make.idx_bytes(np.zeros(4, np.uint8)), "l.gz")
    with pytest.raises(DatasetError, match="expected uint8 images"):
        read_images(labels_as_images)
    floats = _write(tmp_path, make.idx_bytes(np.zeros((2, 28, 28), np.float32)), "f.gz")
    with pytest.raises(DatasetError, match="float32"):
        read_images(floats)


def test_labels_must_be_a_uint8_vector_in_range(tmp_path, make):
    two_d = _write(tmp_path, make.idx_bytes(np.zeros((2, 2), np.uint8)), "two.gz")
    with pytest.raises(DatasetError, match=r"two.gz: expected a uint8 label vector"):
        read_labels(two_d)
    big = _write(tmp_path, make.idx_bytes(np.array([1, 10], np.uint8)), "big.gz")
    with pytest.raises(DatasetError, match="label 10 is out of range for 10 classes"):
        read_labels(big)


def test_folder_with_mismatched_counts_is_rejected(tmp_path, write_mnist, make):
    (x_tr, y_tr), test = make.mnist_arrays(n_train=6)
    write_mnist(tmp_path / "d", ((x_tr, y_tr[:5]), test))
    with pytest.raises(DatasetError, match="train-images.* 6 images but train-labels.* 5 labels"):
        read_mnist_folder(tmp_path / "d")


def test_loader_never_returns_half_a_data_set(tmp_path, write_mnist, make):
    folder = tmp_path / "d"
    write_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DatasetError, match="t10k-labels"):
        fashion_mnist.load_data(path=folder)


def test_uncompressed_files_are_read_too(tmp_path, write_mnist):
    arrays = write_mnist(tmp_path / "raw", gz=False)
    (x_tr, y_tr), (x_te, y_te) = fashion_mnist.load_data(path=tmp_path / "raw")
    np.testing.assert_array_equal(x_tr, arrays[0][0])
    np.testing.assert_array_equal(y_te, arrays[1][1])
