"""DataLoader: iterate over a dataset in (optionally shuffled) mini-batches."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from .. import random as cr_random
from .dataset import ArrayDataset, fetch_batch


def _as_dataset(data):
    """Wrap a bare array, or a tuple of arrays, in an :class:`ArrayDataset`.

    Only a *tuple* means "parallel arrays": a list stays a dataset (a list of samples).
    """
    if isinstance(data, np.ndarray):
        return ArrayDataset(data)
    if isinstance(data, tuple) and data and all(isinstance(a, np.ndarray) for a in data):
        return ArrayDataset(*data)
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(
            f"DataLoader needs a dataset with __len__ and __getitem__ (or arrays), "
            f"got {type(data).__name__}"
        )
    return data


def _as_tuple(batch) -> tuple:
    """A transform may return one array or a tuple; the loader always yields a tuple."""
    return tuple(batch) if isinstance(batch, tuple | list) else (batch,)


class DataLoader:
    """Mini-batches of a dataset, one epoch per ``for`` loop.

    Args:
        dataset: a :class:`~chainrule.data.Dataset` (``len`` + ``[i]``; a list of samples
            is one), or for convenience a NumPy array or a *tuple* of arrays such as
            ``(x, y)`` (wrapped in :class:`ArrayDataset`).
        batch_size: samples per batch (default 32); the last batch may be smaller.
        shuffle: visit the samples in a new random order every epoch (default False).
        drop_last: skip the last batch if it is smaller than ``batch_size`` (default False).
        seed: seed of the loader's own generator, so the sequence of epoch orders is
            reproducible; None (default) draws each epoch's order from
            :func:`chainrule.random.get_generator`, so ``manual_seed`` governs it.
        transform: called as ``transform(*batch)`` on every batch, e.g. ``transform(x, y)``;
            it returns the new batch (a tuple, or a single array for one-array datasets).
            chainrule's transforms change ``x`` and pass the rest through.

    Every epoch visits each sample exactly once. Batches are tuples of NumPy arrays, gathered
    with one fancy-index per array when the dataset has ``get_batch`` (as
    :class:`ArrayDataset` does), else by stacking single samples.

    >>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    >>> loader = DataLoader(ArrayDataset(x, y), batch_size=2)
    >>> len(loader), [yb.tolist() for _, yb in loader]
    (3, [[0, 1], [2, 3], [4]])
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 32,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        transform: Callable | None = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = _as_dataset(dataset)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.transform = transform
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def epoch_order(self) -> np.ndarray:
        """Sample indices for the next epoch: 0..n-1, or a fresh permutation when shuffling
        (drawn from the loader's generator, so each call moves on to the next epoch)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = self._rng if self._rng is not None else cr_random.get_generator()
        return rng.permutation(n)

    def skip_epochs(self, epochs: int) -> None:
        """Draw and drop the orders of ``epochs`` epochs: ``fit(initial_epoch=k, seed=s)``
        then visits the samples in the order of epoch k of a run started at epoch 0."""
        for _ in range(epochs):
            self.epoch_order()

    def batches(self, order: np.ndarray, start: int = 0) -> Iterator[tuple[np.ndarray, ...]]:
        """The batches of one epoch visiting the samples in ``order``, from batch ``start``
        on (a run resumed in the middle of an epoch)."""
        for b in range(start, len(self)):
            yield self.fetch(order[b * self.batch_size : (b + 1) * self.batch_size])

    def fetch(self, indices) -> tuple[np.ndarray, ...]:
        """The batch of the samples at ``indices``, with the transform applied."""
        batch = fetch_batch(self.dataset, indices)
        if self.transform is not None:
            batch = _as_tuple(self.transform(*batch))
        return batch

    def __iter__(self) -> Iterator[tuple[np.ndarray, ...]]:
        return self.batches(self.epoch_order())

    # -- the generators' states, for checkpoints --------------------------------------------

    def generators(self) -> list:
        """The loader's own generator and its transform's (seeded ones only): their states
        are what a checkpoint must hold besides chainrule's global generator."""
        own = [] if self._rng is None else [self._rng]
        transform = getattr(self.transform, "generators", None)
        return own + (transform() if transform is not None else [])

    def generator_states(self) -> list[dict]:
        return [generator.bit_generator.state for generator in self.generators()]

    def set_generator_states(self, states: list[dict]) -> None:
        generators = self.generators()
        if len(states) != len(generators):
            raise ValueError(f"DataLoader: {len(states)} generator states for "
                             f"{len(generators)} generators (a different loader or transform?)")
        for generator, state in zip(generators, states):
            generator.bit_generator.state = state

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})"
        )
