"""PyTorch's ``torch.utils.data`` names: ``Dataset``, ``TensorDataset``, ``DataLoader``,
``Subset``, ``random_split``, yielding chainrule Tensors.

The loading itself is :class:`chainrule.data.DataLoader` (one fancy index per array for
array-backed datasets, chainrule's generator for shuffling, so :func:`chainrule.manual_seed`
fixes the order); this module only speaks PyTorch: ``batch_size`` defaults to 1, batches are
Tensors (dtype kept: ``uint8`` images stay ``uint8``, call ``.float()``), and a dataset of
``(x, y)`` samples gives ``[x_batch, y_batch]``.

>>> import numpy as np
>>> import chainrule as cr
>>> ds = TensorDataset(cr.tensor(np.zeros((10, 3))), cr.tensor(np.arange(10)))
>>> data, target = next(iter(DataLoader(ds, batch_size=4)))
>>> data.shape, target.tolist()
((4, 3), [0, 1, 2, 3])
"""

from __future__ import annotations

import numpy as np

from chainrule import backend
from chainrule.data import DataLoader as _Loader
from chainrule.random import get_generator
from chainrule.tensor import Tensor

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"]


def _array(value):
    if isinstance(value, Tensor):
        return backend.to_numpy(value.data)
    return np.asarray(value)


class Dataset:
    """Base class of map-style datasets: override ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must override __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must override __len__")


class TensorDataset(Dataset):
    """Samples are the rows of Tensors (or arrays) with a common first axis:
    ``ds[i] == (x[i], y[i])``."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t))
                             for t in tensors)
        sizes = {t.shape[0] if t.ndim else None for t in self.tensors}
        if len(sizes) != 1 or None in sizes:
            shapes = ", ".join(str(t.shape) for t in self.tensors)
            raise ValueError(f"TensorDataset: tensors need the same first axis, got {shapes}")
        self._arrays = tuple(backend.to_numpy(t.data) for t in self.tensors)

    def __getitem__(self, index):
        return tuple(Tensor(a[index]) for a in self._arrays)

    def __len__(self) -> int:
        return len(self._arrays[0])

    def get_batch(self, indices) -> tuple:
        return tuple(np.take(a, indices, axis=0) for a in self._arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]

    def __getitem__(self, index):
        if isinstance(index, (list, np.ndarray)):
            return [self.dataset[self.indices[int(i)]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split ``dataset`` at random into Subsets of the given lengths (or fractions summing to
    1, the remainder handed out one by one from the first, as PyTorch)."""
    if generator is not None:
        raise NotImplementedError("random_split: generator= is not supported; use "
                                  "chainrule.manual_seed")
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and abs(sum(lengths) - 1) < 1e-9 \
            and sum(lengths) != n:
        sizes = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} do not add up to the dataset's "
                         f"{n} samples")
    order = get_generator().permutation(n)
    splits, start = [], 0
    for size in lengths:
        splits.append(Subset(dataset, order[start:start + size]))
        start += size
    return splits


class _Samples:
    """A user's dataset seen by chainrule's loader: every field of a sample as an array."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        sample = self.dataset[index]
        if isinstance(sample, (tuple, list)):
            return tuple(_array(field) for field in sample)
        return _array(sample)


class DataLoader:
    """Mini-batches of ``dataset`` as chainrule Tensors (PyTorch's ``DataLoader``).

    Args:
        dataset: a :class:`TensorDataset`, or any object with ``__len__`` and ``__getitem__``
            whose samples are Tensors, arrays, numbers or tuples of them.
        batch_size: samples per batch (PyTorch's default 1).
        shuffle: a new random order every epoch (chainrule's generator).
        drop_last: skip a last, smaller batch.
        collate_fn: ``collate_fn(list_of_samples)`` makes a batch (default: stack each field).
        num_workers, pin_memory, ...: accepted and ignored (batches are made in this process).
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, **ignored):
        if sampler is not None or batch_sampler is not None:
            raise NotImplementedError("DataLoader: sampler= and batch_sampler= are not "
                                      "supported; use shuffle=True")
        if batch_size is None:
            raise NotImplementedError("DataLoader: batch_size=None is not supported")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last, self.collate_fn = shuffle, drop_last, collate_fn
        self.num_workers, self.pin_memory = num_workers, pin_memory
        source = dataset if isinstance(dataset, TensorDataset) else _Samples(dataset)
        self._loader = _Loader(source, batch_size=batch_size, shuffle=shuffle,
                               drop_last=drop_last)
        first = dataset[0] if len(dataset) else ()
        self._fields = isinstance(first, (tuple, list))

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self):
        if self.collate_fn is not None:
            yield from self._collated()
            return
        for batch in self._loader:
            tensors = [Tensor(np.ascontiguousarray(a)) for a in batch]
            yield tensors if self._fields else tensors[0]

    def _collated(self):
        order = self._loader.epoch_order()
        for b in range(len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.collate_fn([self.dataset[int(i)] for i in indices])
