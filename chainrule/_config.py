"""Thread-local switches: gradient recording and the default floating dtype.

The context managers here double as decorators, as PyTorch's ``no_grad`` does::

    with chainrule.no_grad():          # nothing inside is recorded
        y = model(x)

    @chainrule.no_grad()
    def predict(x): ...
"""

from __future__ import annotations

import functools
import threading

import numpy as np


class _Flags(threading.local):
    """Per-thread state; each new thread starts with recording on and float32."""

    def __init__(self) -> None:
        self.grad_enabled = True
        self.default_dtype = np.dtype(np.float32)


flags = _Flags()


def is_grad_enabled() -> bool:
    """Whether operations on tensors that require gradients are recorded in this thread."""
    return flags.grad_enabled


class _GradMode:
    """Set gradient recording to ``self.mode`` inside a ``with`` block or a decorated function."""

    mode: bool

    def __enter__(self) -> None:
        self._previous = flags.grad_enabled
        flags.grad_enabled = self.mode

    def __exit__(self, *exc_info) -> None:
        flags.grad_enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Record nothing: results of operations inside have ``requires_grad=False``."""

    mode = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Record again, e.g. inside a function that runs under :class:`no_grad`."""

    mode = True


def set_default_dtype(dtype) -> None:
    """Set the floating dtype of new tensors made from Python numbers or float arrays.

    float32 is the default (fast, and what the GPUs want); use float64 for gradient checks.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    flags.default_dtype = dtype


def get_default_dtype() -> np.dtype:
    """The floating dtype of new tensors (float32 unless :func:`set_default_dtype` changed it)."""
    return flags.default_dtype
