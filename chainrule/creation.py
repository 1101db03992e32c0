"""Constructors for new leaf tensors. Random ones draw from chainrule's seeded generator."""

from __future__ import annotations

import numpy as np

from chainrule import backend
from chainrule._config import get_default_dtype
from chainrule.random import get_generator
from chainrule.tensor import Tensor


def _make(array, requires_grad, device):
    if device is not None:
        array = backend.to_device(array, device)
    return Tensor(array, requires_grad=requires_grad)


def _dtype(dtype):
    return get_default_dtype() if dtype is None else np.dtype(dtype)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _make(np.zeros(_shape(shape), _dtype(dtype)), requires_grad, device)


def ones(*shape, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A tensor of ones."""
    return _make(np.ones(_shape(shape), _dtype(dtype)), requires_grad, device)


def full(shape, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value``."""
    return _make(np.full(shape, fill_value, _dtype(dtype)), requires_grad, device)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Evenly spaced values in [start, stop); integer arguments give int64 unless ``dtype``."""
    array = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is not None:
        array = array.astype(dtype)
    elif array.dtype.kind == "f":
        array = array.astype(get_default_dtype())
    return _make(array, requires_grad, device)


def eye(n, m=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """The n×m identity matrix (m defaults to n)."""
    return _make(np.eye(n, m, dtype=_dtype(dtype)), requires_grad, device)


def rand(*shape, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Uniform samples in [0, 1) from chainrule's generator (see :func:`manual_seed`)."""
    array = get_generator().random(_shape(shape)).astype(_dtype(dtype))
    return _make(array, requires_grad, device)


def randn(*shape, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Standard normal samples from chainrule's generator (see :func:`manual_seed`)."""
    array = get_generator().standard_normal(_shape(shape)).astype(_dtype(dtype))
    return _make(array, requires_grad, device)


def zeros_like(t, dtype=None, requires_grad=False) -> Tensor:
    """Zeros with the shape (and dtype and device) of ``t``."""
    data = t.data if isinstance(t, Tensor) else np.asarray(t)
    xp = backend.get_array_module(data)
    return Tensor(xp.zeros_like(data, dtype=dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> Tensor:
    """Ones with the shape (and dtype and device) of ``t``."""
    data = t.data if isinstance(t, Tensor) else np.asarray(t)
    xp = backend.get_array_module(data)
    return Tensor(xp.ones_like(data, dtype=dtype), requires_grad=requires_grad)
