"""Small helpers shared by the op modules."""

from __future__ import annotations

import numpy as np

from chainrule import backend
from chainrule.tensor import Tensor


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """``value`` as a Tensor; numbers and arrays take the floating dtype of ``like`` if it has one.

    This keeps ``x * 0.5`` and ``x + numpy_float64_array`` in ``x``'s dtype (no silent upcast).
    """
    if isinstance(value, Tensor):
        return value
    if like is not None:
        xp = backend.get_array_module(like.data)
        dtype = like.data.dtype
        if dtype.kind == "f" and (isinstance(value, (int, float)) or _is_floating(value)):
            return Tensor._from_op(xp.asarray(value, dtype=dtype), None)
        return Tensor._from_op(xp.asarray(value), None)
    return Tensor(value)


def _is_floating(value) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and np.dtype(dtype).kind in "fiub"


def binary_operands(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors, a number or array taking the other side's dtype."""
    if isinstance(a, Tensor):
        return a, as_tensor(b, a)
    if isinstance(b, Tensor):
        return as_tensor(a, b), b
    return Tensor(a), Tensor(b)


def normalize_axis(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(set(out)))


def kept_shape(shape: tuple, axes: tuple[int, ...]) -> tuple:
    """``shape`` with the reduced ``axes`` set to 1 (the ``keepdims=True`` shape)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))
