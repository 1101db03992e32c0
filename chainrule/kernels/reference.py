"""The kernels of :mod:`chainrule.kernels` written with NumPy (CuPy arrays work too).

These define what each kernel computes; :mod:`chainrule.kernels.compiled` must match them.
"""

from __future__ import annotations

import numpy as np

from chainrule import backend


def momentum_update(param, buffer, grad, momentum, learning_rate) -> None:
    """b ← μ·b + g;  θ ← θ − η·b: four passes (NumPy has no fused multiply-add)."""
    buffer *= momentum
    buffer += grad
    param -= buffer * learning_rate


def scaled_subtract(param, direction, scale, work) -> None:
    """θ ← θ − s·d, with s·d written to ``work`` (which may be ``direction`` itself)."""
    backend.get_array_module(param).multiply(direction, scale, out=work)
    param -= work


def max_pool_tiles(planes, kh, kw, track):
    """Running maximum over the kw columns of every window row (a strided reduction over the
    flattened planes), then over the kh rows. The argmax is kept as the pair (row of the window
    holding the maximum, column within each window row)."""
    count, height, width = planes.shape
    out_height, out_width = height // kh, width // kw
    columns = planes.reshape(-1, kw)  # each window row as kw consecutive columns
    rows, column_index = running_max([columns[:, j] for j in range(kw)], track)
    rows = rows.reshape(count * out_height, kh, out_width)
    best, row_index = running_max([rows[:, i] for i in range(kh)], track)
    best = best.reshape(count, out_height, out_width)
    return best, ((row_index, column_index) if track else None)


def max_pool_tiles_backward(gy, index, kh, kw):
    """gy sent back through the two steps of :func:`max_pool_tiles`: to the window row that
    held the maximum, then to the column within it."""
    row_index, column_index = index
    count, out_height, out_width = gy.shape
    rows = np.empty((count * out_height, kh, out_width), dtype=gy.dtype)
    _route(gy.reshape(count * out_height, out_width), row_index, kh,
           [rows[:, i] for i in range(kh)])
    gx = np.empty((count, out_height * kh, out_width * kw), dtype=gy.dtype)
    columns = gx.reshape(-1, kw)
    _route(rows.reshape(-1), column_index, kw, [columns[:, j] for j in range(kw)])
    return gx


def _route(g, index, count: int, out_slices) -> None:
    """Write g where ``index`` is k, and 0 elsewhere, into ``out_slices[k]`` for each k."""
    if count == 2:
        np.multiply(g, index.view(bool), out=out_slices[1])
        np.subtract(g, out_slices[1], out=out_slices[0])
        return
    for k in range(count):
        np.multiply(g, index == k, out=out_slices[k])


def running_max(slices, track: bool):
    """Elementwise max over equally shaped arrays, and the index of the first maximum."""
    first, rest = slices[0], slices[1:]
    if not rest:
        return first.copy(), (np.zeros(first.shape, np.uint8) if track else None)
    index = None
    if track:
        index = np.greater(rest[0], first).view(np.uint8)  # 1 where the second is larger
        if len(slices) > 255:
            index = index.astype(np.intp)
    best = np.maximum(first, rest[0])
    for k, candidate in enumerate(rest[1:], start=2):
        if track:
            np.copyto(index, k, where=np.greater(candidate, best))
        np.maximum(best, candidate, out=best)
    return best, index
