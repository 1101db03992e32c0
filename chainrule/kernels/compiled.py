"""The kernels of :mod:`chainrule.kernels` compiled with Numba: the loops NumPy runs in several
passes, run in one. Each must compute what its reference in :mod:`chainrule.kernels.reference`
computes, in the same order of operations (no fast-math: no reassociation, no fused
multiply-add), so float32 results agree bit for bit.

Compiled on first call for each dtype and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from chainrule.kernels import reference


@njit(cache=True)
def _momentum_update(param, buffer, grad, momentum, learning_rate):
    for i in range(param.size):
        b = buffer[i] * momentum + grad[i]
        buffer[i] = b
        param[i] -= b * learning_rate


def momentum_update(param, buffer, grad, momentum, learning_rate) -> None:
    """b ← μ·b + g;  θ ← θ − η·b in one pass (in place: needs contiguous θ and b)."""
    if not (param.flags.c_contiguous and buffer.flags.c_contiguous):
        return reference.momentum_update(param, buffer, grad, momentum, learning_rate)
    _momentum_update(param.reshape(-1), buffer.reshape(-1), grad.reshape(-1), momentum,
                     learning_rate)


@njit(cache=True)
def _scaled_subtract(param, direction, scale):
    for i in range(param.size):
        param[i] -= direction[i] * scale


def scaled_subtract(param, direction, scale, work) -> None:
    """θ ← θ − s·d in one pass (``work`` is not needed; in place: needs a contiguous θ)."""
    if not param.flags.c_contiguous:
        return reference.scaled_subtract(param, direction, scale, work)
    _scaled_subtract(param.reshape(-1), direction.reshape(-1), scale)


@njit(cache=True)
def _max_pool_2x2(planes, best, index):
    count, out_height, out_width = best.shape
    for p in range(count):
        for r in range(out_height):
            top, bottom = planes[p, 2 * r], planes[p, 2 * r + 1]
            maxima, argmax = best[p, r], index[p, r]
            for c in range(out_width):
                a0, a1 = top[2 * c], top[2 * c + 1]
                a2, a3 = bottom[2 * c], bottom[2 * c + 1]
                value, at = a0, 0
                if a1 > value:
                    value, at = a1, 1
                if a2 > value:
                    value, at = a2, 2
                if a3 > value:
                    value, at = a3, 3
                # NaN propagates (np.maximum's rule); tested without branches, so that the
                # loop still vectorises
                nan = (a0 != a0) | (a1 != a1) | (a2 != a2) | (a3 != a3)
                maxima[c] = a0 + a1 + a2 + a3 if nan else value
                argmax[c] = at


@njit(cache=True)
def _max_pool_2x2_backward(gy, index, gx):
    count, out_height, out_width = gy.shape
    for p in range(count):
        for r in range(out_height):
            g, argmax = gy[p, r], index[p, r]
            top, bottom = gx[p, 2 * r], gx[p, 2 * r + 1]
            for c in range(out_width):
                at, value = argmax[c], g[c]
                top[2 * c] = value if at == 0 else 0
                top[2 * c + 1] = value if at == 1 else 0
                bottom[2 * c] = value if at == 2 else 0
                bottom[2 * c + 1] = value if at == 3 else 0


def max_pool_tiles(planes, kh, kw, track):
    """2 × 2 windows: maxima and argmax (the offset 2i + j, uint8) in one pass over the planes,
    ~9× faster than the reference; other sizes run the reference."""
    if (kh, kw) != (2, 2):
        return reference.max_pool_tiles(planes, kh, kw, track)
    count, height, width = planes.shape
    best = np.empty((count, height // 2, width // 2), dtype=planes.dtype)
    index = np.empty(best.shape, dtype=np.uint8)
    _max_pool_2x2(planes, best, index)
    return best, (index if track else None)


def max_pool_tiles_backward(gy, index, kh, kw):
    """Every input's gradient written once (gy at each window's argmax, 0 elsewhere)."""
    if (kh, kw) != (2, 2):
        return reference.max_pool_tiles_backward(gy, index, kh, kw)
    count, out_height, out_width = gy.shape
    gx = np.empty((count, 2 * out_height, 2 * out_width), dtype=gy.dtype)
    _max_pool_2x2_backward(gy, index, gx)
    return gx
