"""ArrayDataset, Subset, collate and fetch_batch."""

import numpy as np
import pytest

from chainrule.data import ArrayDataset, Dataset, Subset, collate, fetch_batch


def test_array_dataset_indexing_and_batches():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    ds = ArrayDataset(x, y)
    assert len(ds) == 10 and isinstance(ds, Dataset)
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, x[3])
    assert yi == 3
    xb, yb = ds.get_batch(np.array([9, 0, 9]))
    np.testing.assert_array_equal(xb, x[[9, 0, 9]])
    np.testing.assert_array_equal(yb, [9, 0, 9])
    np.testing.assert_array_equal(ds[2:4][1], [2, 3])
    assert "float64[10, 2]" in repr(ds)


def test_array_dataset_checks_first_dimensions():
    with pytest.raises(ValueError, match=r"\(10, 2\), \(9,\)"):
        ArrayDataset(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="at least one array"):
        ArrayDataset()
    with pytest.raises(ValueError, match="scalar"):
        ArrayDataset(np.float64(1.0))


def test_array_dataset_does_not_copy():
    x = np.zeros((4, 3), np.float32)
    assert ArrayDataset(x).arrays[0] is x


def test_subset_maps_indices_and_keeps_batching():
    ds = ArrayDataset(np.arange(10) * 10)
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3 and sub[0][0] == 70
    np.testing.assert_array_equal(sub.get_batch(np.array([2, 0]))[0], [50, 70])
    nested = Subset(sub, [2])
    assert nested[0][0] == 50
    with pytest.raises(ValueError, match="1-D"):
        Subset(ds, [[1]])


class ListDataset:
    """A generic dataset: no get_batch."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2, 2), i, np.float32), i


def test_collate_and_fetch_batch_for_generic_datasets():
    xb, yb = fetch_batch(ListDataset(5), np.array([4, 1]))
    assert xb.shape == (2, 2, 2) and xb.dtype == np.float32
    np.testing.assert_array_equal(yb, [4, 1])
    (only,) = collate([np.zeros(3), np.ones(3)])
    assert only.shape == (2, 3)
    with pytest.raises(ValueError, match="empty"):
        collate([])
    sub = Subset(ListDataset(5), [3, 4])
    np.testing.assert_array_equal(sub.get_batch(np.array([1]))[1], [4])
