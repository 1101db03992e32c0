"""DataLoader: coverage of every sample, ordering, seeding, batching paths, transforms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule.random as cr_random
from chainrule.data import ArrayDataset, DataLoader


def _ids(loader):
    return np.concatenate([batch[-1] for batch in loader])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 70),
    batch_size=st.integers(1, 20),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
)
def test_each_epoch_visits_every_sample_once(n, batch_size, shuffle, drop_last):
    ds = ArrayDataset(np.zeros((n, 3), np.float32), np.arange(n))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=1)
    batches = list(loader)
    assert len(batches) == len(loader)
    sizes = [len(b[1]) for b in batches]
    assert all(s == batch_size for s in sizes[:-1])
    ids = np.concatenate([b[1] for b in batches]) if batches else np.zeros(0, int)
    if drop_last:
        assert len(loader) == n // batch_size and all(s == batch_size for s in sizes)
        assert len(set(ids.tolist())) == len(ids) == (n // batch_size) * batch_size
    else:
        assert len(loader) == -(-n // batch_size)
        assert sorted(ids.tolist()) == list(range(n))
    if not shuffle:
        assert ids.tolist() == list(range(len(ids)))


def test_same_seed_same_orders_and_epochs_differ():
    ds = ArrayDataset(np.arange(100))
    a = DataLoader(ds, batch_size=10, shuffle=True, seed=42)
    b = DataLoader(ds, batch_size=10, shuffle=True, seed=42)
    a1, a2 = _ids(a), _ids(a)
    np.testing.assert_array_equal(a1, _ids(b))
    np.testing.assert_array_equal(a2, _ids(b))
    assert not np.array_equal(a1, a2)
    assert not np.array_equal(a1, np.arange(100))
    assert not np.array_equal(a1, _ids(DataLoader(ds, batch_size=10, shuffle=True, seed=43)))


def test_no_seed_uses_the_global_generator():
    ds = ArrayDataset(np.arange(50))
    cr_random.manual_seed(7)
    first = _ids(DataLoader(ds, batch_size=8, shuffle=True))
    cr_random.manual_seed(7)
    again = _ids(DataLoader(ds, batch_size=8, shuffle=True))
    np.testing.assert_array_equal(first, again)
    cr_random.manual_seed(7)
    np.testing.assert_array_equal(first, cr_random.get_generator().permutation(50))


class CountingArrayDataset(ArrayDataset):
    item_calls = 0

    def __getitem__(self, index):
        type(self).item_calls += 1
        return super().__getitem__(index)


def test_array_datasets_are_gathered_without_per_sample_calls():
    ds = CountingArrayDataset(np.zeros((64, 2)), np.arange(64))
    list(DataLoader(ds, batch_size=16, shuffle=True, seed=0))
    assert CountingArrayDataset.item_calls == 0


class PlainDataset:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_generic_datasets_give_the_same_batches():
    rng = np.random.default_rng(0)
    x = rng.random((23, 4), dtype=np.float32)
    y = rng.integers(0, 3, 23).astype(np.uint8)
    fast = list(DataLoader(ArrayDataset(x, y), batch_size=5, shuffle=True, seed=3))
    slow = list(DataLoader(PlainDataset(x, y), batch_size=5, shuffle=True, seed=3))
    for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fx, sx)
        np.testing.assert_array_equal(fy, sy)
        assert fx.dtype == sx.dtype == np.float32 and fy.dtype == sy.dtype == np.uint8


def test_batches_are_tuples_of_arrays_and_keep_dtypes():
    x = np.zeros((10, 1, 28, 28), np.uint8)
    (batch,) = list(DataLoader(x, batch_size=10))
    assert isinstance(batch, tuple) and len(batch) == 1
    assert batch[0].dtype == np.uint8 and batch[0].shape == (10, 1, 28, 28)
    xb, yb = next(iter(DataLoader((x, np.arange(10)), batch_size=4)))
    assert xb.shape == (4, 1, 28, 28) and yb.tolist() == [0, 1, 2, 3]
    # A list is a dataset of samples, not parallel arrays.
    samples = [(np.full(2, i, np.float32), i) for i in range(5)]
    xb, yb = next(iter(DataLoader(samples, batch_size=5)))
    assert xb.shape == (5, 2) and yb.tolist() == [0, 1, 2, 3, 4]


def test_transform_receives_the_whole_batch():
    x, y = np.arange(12.0, dtype=np.float32).reshape(6, 2), np.arange(6)
    calls = []

    def transform(xb, yb):
        calls.append(len(xb))
        return xb * 2, yb

    batches = list(DataLoader(ArrayDataset(x, y), batch_size=4, transform=transform))
    assert calls == [4, 2]
    np.testing.assert_array_equal(batches[0][0], x[:4] * 2)
    only = list(DataLoader(x, batch_size=6, transform=lambda xb: xb + 1))
    np.testing.assert_array_equal(only[0][0], x + 1)


def test_argument_errors():
    ds = ArrayDataset(np.arange(4))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        DataLoader(ds, batch_size=2.0)
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(42)
    assert "batch_size=32" in repr(DataLoader(ds))
