"""Datasets: anything with ``len(ds)`` and ``ds[i]``, plus two concrete ones.

:class:`ArrayDataset` wraps NumPy arrays that share their first dimension (inputs, targets,
...). Besides ``ds[i]`` it offers :meth:`ArrayDataset.get_batch`, which fetches a whole batch
with one fancy-index per array. :func:`fetch_batch` (what
:class:`~chainrule.data.DataLoader` calls) uses ``get_batch`` whenever a dataset has it, and
otherwise gathers single samples and :func:`collate` s them with ``np.stack``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Dataset(Protocol):
    """What DataLoader needs: a length and integer indexing.

    ``ds[i]`` returns one sample: a tuple of arrays/scalars (e.g. ``(x, y)``) or one array.
    A dataset may also define ``get_batch(indices) -> tuple[np.ndarray, ...]`` to fetch many
    samples at once (see :class:`ArrayDataset`).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class ArrayDataset:
    """Samples are rows of arrays with a common first dimension.

    Args:
        *arrays: one or more array-likes, e.g. ``ArrayDataset(x, y)``. They are converted with
            ``np.asarray`` (no copy for NumPy arrays).

    ``ds[i]`` is ``(x[i], y[i])``; ``i`` may also be a slice or an index array.

    >>> ds = ArrayDataset(np.zeros((5, 2)), np.arange(5))
    >>> len(ds), ds[3][1]
    (5, np.int64(3))
    >>> [a.shape for a in ds.get_batch(np.array([0, 4]))]
    [(2, 2), (2,)]
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        self.arrays = tuple(np.asarray(a) for a in arrays)
        for a in self.arrays:
            if a.ndim == 0:
                raise ValueError("ArrayDataset arrays need a first (sample) axis, got a scalar")
        lengths = {len(a) for a in self.arrays}
        if len(lengths) > 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(f"ArrayDataset arrays need the same first dimension, got {shapes}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """The samples at ``indices`` from every array: one ``np.take`` per array (a copy)."""
        return tuple(np.take(a, indices, axis=0) for a in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.arrays)
        return f"ArrayDataset({shapes})"


class Subset:
    """The samples of ``dataset`` at ``indices``, in that order (what random_split returns).

    >>> sub = Subset(ArrayDataset(np.arange(10)), [7, 2])
    >>> len(sub), sub[0]
    (2, (np.int64(7),))
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1:
            raise ValueError(f"Subset indices must be 1-D, got shape {self.indices.shape}")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """The samples at ``indices`` (positions in this subset), via :func:`fetch_batch`."""
        return fetch_batch(self.dataset, self.indices[indices])

    def __repr__(self) -> str:
        return f"Subset({len(self)} of {self.dataset!r})"


def collate(samples: list) -> tuple[np.ndarray, ...]:
    """Stack a list of samples into a batch tuple.

    Each sample is a tuple/list of fields (``(x, y)``) or a single array/scalar; field ``k`` of
    the batch is ``np.stack`` of field ``k`` of every sample.

    >>> [b.tolist() for b in collate([(1, 2), (3, 4)])]
    [[1, 3], [2, 4]]
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    if isinstance(samples[0], tuple | list):
        return tuple(np.stack(field) for field in zip(*samples, strict=True))
    return (np.stack(samples),)


def fetch_batch(dataset, indices: np.ndarray) -> tuple[np.ndarray, ...]:
    """The samples of ``dataset`` at ``indices`` as a tuple of batch arrays.

    Uses ``dataset.get_batch`` when it exists (vectorised), else one ``dataset[i]`` per index
    followed by :func:`collate`.
    """
    if hasattr(dataset, "get_batch"):
        return tuple(dataset.get_batch(indices))
    return collate([dataset[int(i)] for i in indices])
