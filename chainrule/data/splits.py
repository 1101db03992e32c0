"""Model-selection splits: random_split, train_val_test_split, KFold and StratifiedKFold.

Conventions shared by all of them:

* ``seed=None`` draws from :func:`chainrule.random.get_generator` (so ``manual_seed`` makes the
  split reproducible); an int seed gives the same split on every call.
* A fraction (a float) means a share of the samples, an int an absolute count.
* Splits are disjoint and together cover every sample exactly once.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np

from .. import random as cr_random
from .dataset import Subset


def _rng(seed: int | None) -> np.random.Generator:
    """A fresh generator for ``seed``, or chainrule's global one when seed is None."""
    return np.random.default_rng(seed) if seed is not None else cr_random.get_generator()


def _split_lengths(lengths: Sequence[int | float], n: int) -> list[int]:
    """Turn ``lengths`` (all ints summing to n, or all fractions summing to 1) into counts.

    Fractions are floored and the leftover samples go one each to the first splits, as
    ``torch.utils.data.random_split`` does.
    """
    if all(isinstance(k, int | np.integer) for k in lengths):
        if sum(lengths) != n or min(lengths) < 0:
            raise ValueError(f"lengths {list(lengths)} must be >= 0 and sum to {n} samples")
        return [int(k) for k in lengths]
    if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6) or min(lengths) < 0:
        raise ValueError(f"fractions {list(lengths)} must be >= 0 and sum to 1")
    counts = [math.floor(n * f) for f in lengths]
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


def random_split(dataset, lengths: Sequence[int | float], seed: int | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s.

    Args:
        dataset: anything with ``len`` and ``[i]``.
        lengths: sizes (ints summing to ``len(dataset)``) or fractions (summing to 1).
        seed: int for a reproducible split; None (default) uses the global generator.

    >>> from chainrule.data import ArrayDataset
    >>> train, val = random_split(ArrayDataset(np.arange(10)), [0.8, 0.2], seed=0)
    >>> len(train), len(val)
    (8, 2)
    """
    counts = _split_lengths(lengths, len(dataset))
    order = _rng(seed).permutation(len(dataset))
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _count(size: int | float, n: int, name: str) -> int:
    """Samples in a split of ``size``: ints are counts, floats fractions rounded up (sklearn)."""
    if isinstance(size, int | np.integer) and not isinstance(size, bool):
        count = int(size)
    elif isinstance(size, float) and 0.0 <= size < 1.0:
        count = math.ceil(size * n)
    else:
        raise ValueError(f"{name} must be an int count or a float in [0, 1), got {size!r}")
    if not 0 <= count <= n:
        raise ValueError(f"{name}={size!r} asks for {count} of only {n} samples")
    return count


def _apportion(counts: np.ndarray, total: int, capacity: np.ndarray) -> np.ndarray:
    """Split ``total`` among classes in proportion to ``counts``, never above ``capacity``.

    Largest-remainder rounding: everyone gets the floor of their quota, then the leftover units
    go to the largest fractional parts (ties to the earlier class).
    """
    quotas = counts * (total / counts.sum())
    alloc = np.minimum(np.floor(quotas).astype(np.int64), capacity)
    while (missing := total - alloc.sum()) > 0:
        room = alloc < capacity
        if not room.any():
            raise ValueError(f"cannot place {total} samples within the class sizes {counts}")
        priority = np.where(room, quotas - alloc, -np.inf)
        winners = np.argsort(-priority, kind="stable")[: min(missing, int(room.sum()))]
        alloc[winners] += 1
    return alloc


def _stratified_indices(labels: np.ndarray, n_val: int, n_test: int, rng):
    """(train, val, test) index arrays with each class spread in proportion."""
    classes, y = np.unique(labels, return_inverse=True)
    counts = np.bincount(y, minlength=len(classes))
    test_per_class = _apportion(counts, n_test, counts)
    val_per_class = _apportion(counts, n_val, counts - test_per_class)
    parts = ([], [], [])
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(y == c))
        n_t, n_v = test_per_class[c], val_per_class[c]
        parts[2].append(members[:n_t])
        parts[1].append(members[n_t : n_t + n_v])
        parts[0].append(members[n_t + n_v :])
    # Shuffle each split so that classes are interleaved, as an unstratified split would be.
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


def train_val_test_split(
    *arrays,
    val: int | float = 0.1,
    test: int | float = 0.1,
    seed: int | None = None,
    stratify=None,
) -> tuple[np.ndarray, ...]:
    """Shuffle and split arrays into training, validation and test parts.

    Args:
        *arrays: arrays with a common first dimension, e.g. ``x, y``.
        val, test: size of the validation and test parts: a float in [0, 1) is a fraction
            of the samples, rounded up as scikit-learn's ``test_size`` is; an int a count.
            The training part gets the rest. Defaults 0.1 and 0.1.
        seed: int for a reproducible split; None (default) uses the global generator.
        stratify: class labels of shape (N,) or (N, 1); each class is then spread over the
            three parts in proportion to its size (largest-remainder rounding).

    Returns:
        A flat tuple: all train arrays, then all val arrays, then all test arrays, so
        ``x_tr, y_tr, x_val, y_val, x_te, y_te = train_val_test_split(x, y)``.
        (scikit-learn's ``train_test_split`` interleaves instead: x_tr, x_te, y_tr, y_te.)
        Samples within each part are in random order.

    >>> x, y = np.arange(20).reshape(10, 2), np.arange(10)
    >>> parts = train_val_test_split(x, y, val=0.2, test=2, seed=0)
    >>> [len(p) for p in parts]
    [6, 6, 2, 2, 2, 2]
    """
    if not arrays:
        raise ValueError("train_val_test_split needs at least one array")
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"arrays must have the same first dimension, got {shapes}")
    n_val, n_test = _count(val, n, "val"), _count(test, n, "test")
    if n_val + n_test > n:
        raise ValueError(f"val ({n_val}) + test ({n_test}) samples exceed the {n} available")
    rng = _rng(seed)
    if stratify is None:
        order = rng.permutation(n)
        index_sets = (order[n_val + n_test :], order[n_test : n_test + n_val], order[:n_test])
    else:
        labels = _labels_1d(stratify, n)
        index_sets = _stratified_indices(labels, n_val, n_test, rng)
    return tuple(a[idx] for idx in index_sets for a in arrays)


def _labels_1d(labels, n: int | None = None) -> np.ndarray:
    """Labels as a 1-D array; (N, 1) columns (Keras CIFAR labels) are flattened."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,) or (N, 1), got {labels.shape}")
    if n is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} samples")
    return labels


def _num_samples(n_or_array) -> int:
    """An int is a sample count; anything else is measured with ``len``."""
    if isinstance(n_or_array, int | np.integer):
        return int(n_or_array)
    return len(n_or_array)


class KFold:
    """K-fold cross-validation indices, as scikit-learn's ``KFold``.

    Args:
        n_splits: number of folds, at least 2 (default 5).
        shuffle: permute the samples before cutting the folds (default False: contiguous
            folds in order).
        seed: with shuffle, an int makes every ``split`` call give the same folds; None draws
            from the global generator. Giving a seed without shuffle is an error, as in sklearn.

    ``split(n)`` (or ``split(array)``) yields ``(train_idx, val_idx)`` for each fold, both
    sorted. The first ``n % n_splits`` folds have one sample more than the others.

    >>> [val.tolist() for _, val in KFold(3).split(7)]
    [[0, 1, 2], [3, 4], [5, 6]]
    """

    def __init__(self, n_splits: int = 5, shuffle: bool = False, seed: int | None = None):
        if not isinstance(n_splits, int | np.integer) or n_splits < 2:
            raise ValueError(f"n_splits must be an int >= 2, got {n_splits!r}")
        if seed is not None and not shuffle:
            raise ValueError("a seed has no effect without shuffle=True")
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.seed = seed

    def get_n_splits(self, *args) -> int:
        """The number of folds (arguments are ignored, as in sklearn)."""
        return self.n_splits

    def _fold_ids(self, n: int) -> np.ndarray:
        """For each sample, the fold whose validation part it belongs to."""
        sizes = np.full(self.n_splits, n // self.n_splits)
        sizes[: n % self.n_splits] += 1
        fold_ids = np.repeat(np.arange(self.n_splits), sizes)
        if self.shuffle:
            shuffled = np.empty_like(fold_ids)
            shuffled[_rng(self.seed).permutation(n)] = fold_ids  # sample order[i] gets fold i's id
            fold_ids = shuffled
        return fold_ids

    def _check_n(self, n: int) -> None:
        if self.n_splits > n:
            raise ValueError(f"cannot make {self.n_splits} folds from {n} samples")

    def split(self, n_or_array, y=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, val_idx)`` for each fold; ``y`` is ignored (sklearn style)."""
        n = _num_samples(n_or_array)
        self._check_n(n)
        fold_ids = self._fold_ids(n)
        for k in range(self.n_splits):
            yield np.flatnonzero(fold_ids != k), np.flatnonzero(fold_ids == k)


class StratifiedKFold(KFold):
    """K-fold indices in which each fold keeps the class proportions, as sklearn's.

    Samples are sorted by class and dealt round-robin to the folds, so every class is spread
    as evenly as it can be, and fold sizes differ by at most about the number of classes.
    With ``shuffle`` the assignment within each class is permuted. Without shuffle the folds
    equal scikit-learn's ``StratifiedKFold`` (version 0.22 and later).

    ``split(labels)`` takes the class labels ((N,) or (N, 1)); sklearn's ``split(X, y)`` form
    also works (X is then ignored).

    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> [val.tolist() for _, val in StratifiedKFold(3).split(y)]
    [[0, 3], [1, 4], [2, 5]]
    """

    def split(self, labels, y=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, val_idx)`` for each fold, both sorted."""
        labels = _labels_1d(labels if y is None else y)
        self._check_n(len(labels))
        fold_ids = self._stratified_fold_ids(labels)
        for k in range(self.n_splits):
            yield np.flatnonzero(fold_ids != k), np.flatnonzero(fold_ids == k)

    def _stratified_fold_ids(self, labels: np.ndarray) -> np.ndarray:
        # Number classes in order of first appearance (as sklearn does).
        _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        class_rank = np.argsort(np.argsort(first))
        y = class_rank[inverse]
        counts = np.bincount(y)
        if self.n_splits > counts.max():
            raise ValueError(
                f"n_splits={self.n_splits} is more than the largest class has members "
                f"({counts.max()})"
            )
        if self.n_splits > counts.min():
            warnings.warn(
                f"the smallest class has only {counts.min()} members, fewer than "
                f"n_splits={self.n_splits}",
                UserWarning,
                stacklevel=3,
            )
        # Deal the class-sorted samples round-robin: fold k gets positions k, k + K, ...
        sorted_y = np.sort(y)
        per_fold = np.stack(
            [
                np.bincount(sorted_y[k :: self.n_splits], minlength=len(counts))
                for k in range(self.n_splits)
            ]
        )  # (n_splits, n_classes): how many of each class fold k holds
        rng = _rng(self.seed) if self.shuffle else None
        fold_ids = np.empty(len(y), dtype=np.int64)
        for c in range(len(counts)):
            folds_for_class = np.repeat(np.arange(self.n_splits), per_fold[:, c])
            if rng is not None:
                rng.shuffle(folds_for_class)
            fold_ids[y == c] = folds_for_class
        return fold_ids
