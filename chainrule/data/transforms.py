"""Preprocessing (fitted on training data) and random augmentation of whole batches.

Every transform is a callable working on a batch ``x`` (samples along axis 0):

* ``t(x)`` returns the new ``x``;
* ``t(x, y, ...)`` returns ``(new_x, y, ...)``: only the inputs change, targets pass through.

So any of them can be given to ``DataLoader(transform=...)``, which calls
``transform(*batch)``; :class:`Compose` chains several.

Dtypes: floating inputs keep their dtype (float32 in, float32 out: no silent float64); integer
inputs (uint8 images) become float32 in the arithmetic transforms and stay uint8 in the
augmentations, which only move pixels.

Augmentations are vectorised over the batch (index arithmetic on strided views, no loop over
samples), accept NCHW batches (and NHW, treated as one channel), and draw from their own
generator when given ``seed=``, else from :func:`chainrule.random.get_generator`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import random as cr_random


def _result_dtype(x: np.ndarray) -> np.dtype:
    """Floating inputs keep their dtype; everything else computes in float32."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)


class Transform:
    """Base class: subclasses implement :meth:`apply` on the inputs ``x``."""

    def apply(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x, *rest):
        out = self.apply(np.asarray(x))
        return (out, *rest) if rest else out

    def generators(self) -> list:
        """The transform's own random generators (seeded ones), whose states a training
        checkpoint saves so that a resumed run draws what the uninterrupted one would."""
        return []


class Compose(Transform):
    """Apply transforms one after another.

    >>> t = Compose([Rescale(1 / 255), RandomFlip(seed=0)])
    >>> t(np.zeros((2, 1, 4, 4), np.uint8)).dtype
    dtype('float32')
    """

    def __init__(self, transforms: Iterable[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x, *rest):
        batch = (x, *rest)
        for transform in self.transforms:
            out = transform(*batch)
            batch = tuple(out) if isinstance(out, tuple | list) else (out,)
        return batch if rest else batch[0]

    def generators(self) -> list:
        return [g for t in self.transforms for g in getattr(t, "generators", list)()]

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class Rescale(Transform):
    """``x * scale + offset``, as Keras' ``Rescaling`` layer.

    >>> Rescale(1 / 255)(np.array([[0, 255]], np.uint8))
    array([[0., 1.]], dtype=float32)
    >>> Rescale(1 / 127.5, offset=-1)(np.array([0.0, 255.0], np.float32)).tolist()
    [-1.0, 1.0]
    """

    def __init__(self, scale: float, offset: float = 0.0):
        self.scale = scale
        self.offset = offset

    def apply(self, x: np.ndarray) -> np.ndarray:
        dtype = _result_dtype(x)
        out = x.astype(dtype)  # always a copy: the caller's array is never changed
        out *= dtype.type(self.scale)
        if self.offset:
            out += dtype.type(self.offset)
        return out

    def __repr__(self) -> str:
        return f"Rescale(scale={self.scale}, offset={self.offset})"


class NotFittedError(ValueError, AttributeError):
    """A fitted transform was used before ``fit`` (the same two bases as sklearn's)."""


class _FittedTransform(Transform):
    """Statistics computed by :meth:`fit` on training data, then applied to any batch.

    Subclasses choose which axes keep their own statistics (:meth:`_kept_axes`) and whether
    to divide by the standard deviation (``_scales``).
    """

    _scales = False
    epsilon = 0.0

    def _kept_axes(self, x: np.ndarray) -> tuple[int, ...]:
        raise NotImplementedError

    def fit(self, x) -> _FittedTransform:
        """Compute the statistics of ``x`` (in float64) and return self."""
        x = np.asarray(x)
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"{type(self).__name__}.fit needs at least one sample, got {x.shape}")
        kept = self._kept_axes(x)
        reduced = tuple(a for a in range(x.ndim) if a not in kept)
        self.mean_ = x.mean(axis=reduced, dtype=np.float64, keepdims=True)
        if self._scales:
            std = np.sqrt(x.var(axis=reduced, dtype=np.float64, keepdims=True))
            self.std_ = np.maximum(std, self.epsilon)  # constant features map to 0, not NaN
        return self

    def _check(self, x: np.ndarray) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call .fit(x_train) (or "
                f".fit_transform) before transforming"
            )
        stats = self.mean_.shape
        if x.ndim != len(stats) or any(m not in (1, s) for m, s in zip(stats[1:], x.shape[1:])):
            raise ValueError(
                f"{type(self).__name__} was fitted on samples of shape {stats[1:]} (1 = "
                f"pooled axis) and cannot transform a batch of shape {x.shape}"
            )

    def apply(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        dtype = _result_dtype(x)
        out = x.astype(dtype) - self.mean_.astype(dtype)
        if self._scales:
            out /= self.std_.astype(dtype)
        return out

    def transform(self, x) -> np.ndarray:
        """Apply the fitted statistics to ``x``."""
        return self.apply(np.asarray(x))

    def fit_transform(self, x) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, x) -> np.ndarray:
        """Undo :meth:`transform`: back to the original scale (in the float dtype of ``x``)."""
        x = np.asarray(x)
        self._check(x)
        dtype = _result_dtype(x)
        out = x.astype(dtype)
        if self._scales:
            out *= self.std_.astype(dtype)
        out += self.mean_.astype(dtype)
        return out


class Standardize(_FittedTransform):
    """Zero mean, unit variance: ``(x - mean) / max(std, epsilon)``.

    Args:
        axis: the axis or axes that keep *separate* statistics, as in Keras'
            ``Normalization`` layer; all other axes (always including the sample axis 0) are
            pooled. Default -1: per feature for tabular data of shape (N, F). Use ``axis=1``
            for per-channel statistics of NCHW images, ``axis=(1, 2)`` for per-pixel ones of
            (N, H, W) images, and ``None`` for a single mean and std.
        epsilon: lower bound on the std (default 1e-7), so constant features give 0.

    Statistics are computed in float64 by :meth:`fit`; the output keeps a floating input's
    dtype (integers give float32).

    >>> s = Standardize().fit(np.array([[0.0, 5.0], [2.0, 5.0]], np.float32))
    >>> s.transform(np.array([[2.0, 5.0]], np.float32))
    array([[1., 0.]], dtype=float32)
    """

    _scales = True

    def __init__(self, axis: int | tuple[int, ...] | None = -1, epsilon: float = 1e-7):
        self.axis = axis
        self.epsilon = epsilon

    def _kept_axes(self, x: np.ndarray) -> tuple[int, ...]:
        if self.axis is None:
            return ()
        axes = (self.axis,) if isinstance(self.axis, int | np.integer) else tuple(self.axis)
        kept = []
        for a in axes:
            if not -x.ndim <= a < x.ndim:
                raise ValueError(f"axis {a} is out of range for data of shape {x.shape}")
            kept.append(a % x.ndim)
        if 0 in kept:
            raise ValueError("axis 0 is the sample axis: statistics are always pooled over it")
        return tuple(kept)

    def __repr__(self) -> str:
        return f"Standardize(axis={self.axis}, epsilon={self.epsilon})"


class MeanImage(_FittedTransform):
    """Subtract the mean training image (one mean per pixel and channel), as AlexNet did.

    >>> m = MeanImage().fit(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    >>> m.transform(np.array([[2.0, 3.0]], np.float32))
    array([[0., 0.]], dtype=float32)
    """

    def _kept_axes(self, x: np.ndarray) -> tuple[int, ...]:
        return tuple(range(1, x.ndim))

    def __repr__(self) -> str:
        return "MeanImage()"


class PerChannelMean(_FittedTransform):
    """Subtract one mean per colour channel, as VGG did; expects NCHW batches.

    >>> x = np.stack([np.zeros((2, 2)), np.ones((2, 2))])[None]  # (1, 2, 2, 2): channels 0, 1
    >>> PerChannelMean().fit(x).mean_.ravel().tolist()
    [0.0, 1.0]
    """

    def _kept_axes(self, x: np.ndarray) -> tuple[int, ...]:
        if x.ndim != 4:
            raise ValueError(f"PerChannelMean expects NCHW images (4-D), got shape {x.shape}")
        return (1,)

    def __repr__(self) -> str:
        return "PerChannelMean()"


def to_categorical(y, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """One-hot encode integer class labels, as Keras' ``to_categorical``.

    Args:
        y: integer labels of any shape; a trailing axis of size 1 ((N, 1) labels as CIFAR's)
            is dropped first.
        num_classes: number of classes (default ``max(y) + 1``).
        dtype: of the result (default float32).

    Returns:
        Array of shape ``y.shape + (num_classes,)``.

    >>> to_categorical([0, 2], num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] == 1:
        y = y[..., 0]
    if not np.issubdtype(y.dtype, np.integer):
        if y.size and not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got min {y.min()}, max {y.max()}")
    out = np.zeros((y.size, num_classes), dtype=dtype)
    out[np.arange(y.size), y.ravel()] = 1
    return out.reshape(*y.shape, num_classes)


#: The same function under PyTorch's name (``torch.nn.functional.one_hot``).
one_hot = to_categorical


# ---------------------------------------------------------------- augmentation


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints -> (rows, cols)."""
    pair = (value, value) if isinstance(value, int | np.integer) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int | np.integer) or v < 0 for v in pair):
        raise ValueError(f"{name} must be an int >= 0 or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _as_nchw(x: np.ndarray) -> np.ndarray:
    """View an NCHW or NHW batch as NCHW (NHW gets a channel axis of 1)."""
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return x[:, None]
    raise ValueError(f"expected a batch of images (N, C, H, W) or (N, H, W), got shape {x.shape}")


class _RandomTransform(Transform):
    """An augmentation with its own generator (``seed``) or the global one (None)."""

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def _generator(self) -> np.random.Generator:
        return self._rng if self._rng is not None else cr_random.get_generator()

    def generators(self) -> list:
        return [] if self._rng is None else [self._rng]


def _zero_pad(x: np.ndarray, pad_h: int, pad_w: int) -> np.ndarray:
    """Surround the images of an NCHW batch with zeros (what ``np.pad`` does, but cheaper)."""
    n, c, height, width = x.shape
    padded = np.zeros((n, c, height + 2 * pad_h, width + 2 * pad_w), dtype=x.dtype)
    padded[:, :, pad_h : pad_h + height, pad_w : pad_w + width] = x
    return padded


def random_crops(x: np.ndarray, size, padding, rng: np.random.Generator) -> np.ndarray:
    """Crop one random ``size`` window per image from an NCHW batch zero-padded by ``padding``.

    Vectorised: :func:`sliding_window_view` makes the (N, C, H', W', h, w) view of every
    possible window (no copy), and one fancy index picks window ``(top[n], left[n])`` of image
    n; the result has shape (N, C, h, w).
    """
    (h, w), (pad_h, pad_w) = size, padding
    if pad_h or pad_w:
        x = _zero_pad(x, pad_h, pad_w)
    n, _, height, width = x.shape
    if h > height or w > width:
        raise ValueError(f"crop size {(h, w)} is larger than the padded images {(height, width)}")
    top = rng.integers(0, height - h + 1, size=n)
    left = rng.integers(0, width - w + 1, size=n)
    windows = sliding_window_view(x, (h, w), axis=(2, 3))
    return windows[np.arange(n), :, top, left]


class RandomCrop(_RandomTransform):
    """Random ``size`` crops, after zero-padding each side by ``padding`` (as torchvision).

    Args:
        size: output height and width, an int or (h, w).
        padding: zeros added on every side first, an int or (rows, cols) (default 0).
        seed: int for a reproducible stream of crops; None uses the global generator.

    ``RandomCrop(32, padding=4)`` is the classic CIFAR augmentation. Dtype is kept.

    >>> RandomCrop(2, seed=0)(np.zeros((5, 3, 4, 4), np.uint8)).shape
    (5, 3, 2, 2)
    """

    def __init__(self, size, padding=0, seed: int | None = None):
        super().__init__(seed)
        self.size = _pair(size, "size")
        self.padding = _pair(padding, "padding")

    def apply(self, x: np.ndarray) -> np.ndarray:
        out = random_crops(_as_nchw(x), self.size, self.padding, self._generator())
        return out[:, 0] if x.ndim == 3 else out

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, seed={self.seed})"


class RandomShift(_RandomTransform):
    """Translate each image by a random whole number of pixels, filling with zeros.

    Args:
        max_pixels: largest shift, an int or (rows, cols); each image moves by independent
            uniform integers in ``[-max, max]`` along each axis.
        seed: int for reproducibility; None uses the global generator.

    Same as ``RandomCrop(size=(H, W), padding=max_pixels)``. Dtype and shape are kept.

    >>> RandomShift(2, seed=0)(np.ones((4, 5, 5), np.float32)).shape
    (4, 5, 5)
    """

    def __init__(self, max_pixels, seed: int | None = None):
        super().__init__(seed)
        self.max_pixels = _pair(max_pixels, "max_pixels")

    def apply(self, x: np.ndarray) -> np.ndarray:
        x4 = _as_nchw(x)
        out = random_crops(x4, x4.shape[2:], self.max_pixels, self._generator())
        return out[:, 0] if x.ndim == 3 else out

    def __repr__(self) -> str:
        return f"RandomShift(max_pixels={self.max_pixels}, seed={self.seed})"


class RandomFlip(_RandomTransform):
    """Mirror each image with probability 1/2, as Keras' ``RandomFlip`` layer.

    Args:
        mode: ``"horizontal"`` (left-right, the width axis), ``"vertical"`` (up-down, the height
            axis) or ``"horizontal_and_vertical"`` (each decided independently).
        seed: int for reproducibility; None uses the global generator.

    >>> x = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> RandomFlip("vertical", seed=1)(x).shape
    (1, 1, 2, 2)
    """

    MODES = {
        "horizontal": (-1,),
        "vertical": (-2,),
        "horizontal_and_vertical": (-1, -2),
    }

    def __init__(self, mode: str = "horizontal", seed: int | None = None):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {sorted(self.MODES)}, got {mode!r}")
        super().__init__(seed)
        self.mode = mode

    def apply(self, x: np.ndarray) -> np.ndarray:
        _as_nchw(x)  # shape check only
        out = x.copy()
        rng = self._generator()
        for axis in self.MODES[self.mode]:
            chosen = rng.random(len(x)) < 0.5
            out[chosen] = np.flip(out[chosen], axis=axis)
        return out

    def __repr__(self) -> str:
        return f"RandomFlip(mode={self.mode!r}, seed={self.seed})"
