"""The kernels of :mod:`chainrule.kernels` compiled with Numba: the loops NumPy runs in several
passes, run in one. Each must compute what its reference in :mod:`chainrule.kernels.reference`
computes, in the same order of operations (no fast-math: no reassociation, no fused
multiply-add), so float32 results agree bit for bit.

Compiled on first call for each dtype and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from chainrule.kernels import reference, threads


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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
    ~9× faster than the reference; other sizes run the reference. The planes are dealt out in
    one block per thread of :func:`chainrule.kernels.workers` (the kernels release the GIL)."""
    if (kh, kw) != (2, 2):
        return reference.max_pool_tiles(planes, kh, kw, track)
    count, height, width = planes.shape
    best = np.empty((count, height // 2, width // 2), dtype=planes.dtype)
    index = np.empty(best.shape, dtype=np.uint8)
    threads.run_blocks(count, lambda a, b: _max_pool_2x2(planes[a:b], best[a:b], index[a:b]))
    return best, (index if track else None)


def max_pool_tiles_backward(gy, index, kh, kw):
    """Every input's gradient written once (gy at each window's argmax, 0 elsewhere)."""
    if (kh, kw) != (2, 2):
        return reference.max_pool_tiles_backward(gy, index, kh, kw)
    count, out_height, out_width = gy.shape
    gx = np.empty((count, 2 * out_height, 2 * out_width), dtype=gy.dtype)
    threads.run_blocks(count,
                       lambda a, b: _max_pool_2x2_backward(gy[a:b], index[a:b], gx[a:b]))
    return gx


# -- Winograd F(2 × 2, 3 × 3) tile transforms ----------------------------------------------------
#
# The tile arrays are (16, ...) with each of the 16 entries contiguous; the kernels see them as
# (16, tiles) matrices. Their 16 rows are usually far apart in memory, at distances the caller
# staggers (chainrule.ops.conv_winograd), because 16 streams 4 KiB apart alias in the L1 cache:
# with that, each kernel runs ~5× faster.


def _tile_rows(tiles):
    """``tiles`` (16, ...) as a (16, count) view (never a copy: the kernels write to it)."""
    flat = tiles.reshape(16, -1)
    if tiles.size and not np.may_share_memory(flat, tiles):
        raise ValueError(f"winograd kernels: tile array of strides {tiles.strides} must have "
                         "each of its 16 entries contiguous")
    return flat


def _tile_row_tuple(tiles):
    """``tiles`` (16, ...) as a tuple of its 16 rows, each a contiguous 1-D view: Numba then
    knows that each row's elements are adjacent and vectorizes a loop over them (through a
    (16, count) view with a row stride it does not)."""
    return tuple(_tile_rows(tiles))


@njit(cache=True, nogil=True)
def _winograd_input_tiles(padded, out, ty_count, tx_count):
    channels, count = padded.shape[:2]
    for p in range(channels * count):
        plane = padded[p // count, p % count]
        for ty in range(ty_count):
            x0, x1, x2, x3 = plane[2 * ty], plane[2 * ty + 1], plane[2 * ty + 2], plane[2 * ty + 3]
            first = (p * ty_count + ty) * tx_count
            for tx in range(tx_count):
                j, t = 2 * tx, first + tx
                # Bᵀ along the rows, one column s = j + 0…3 at a time
                a0, a1, a2, a3 = x0[j] - x2[j], x0[j + 1] - x2[j + 1], x0[j + 2] - x2[j + 2], \
                    x0[j + 3] - x2[j + 3]
                b0, b1, b2, b3 = x1[j] + x2[j], x1[j + 1] + x2[j + 1], x1[j + 2] + x2[j + 2], \
                    x1[j + 3] + x2[j + 3]
                c0, c1, c2, c3 = x2[j] - x1[j], x2[j + 1] - x1[j + 1], x2[j + 2] - x1[j + 2], \
                    x2[j + 3] - x1[j + 3]
                d0, d1, d2, d3 = x1[j] - x3[j], x1[j + 1] - x3[j + 1], x1[j + 2] - x3[j + 2], \
                    x1[j + 3] - x3[j + 3]
                # then along the columns
                out[0, t], out[1, t], out[2, t], out[3, t] = a0 - a2, a1 + a2, a2 - a1, a1 - a3
                out[4, t], out[5, t], out[6, t], out[7, t] = b0 - b2, b1 + b2, b2 - b1, b1 - b3
                out[8, t], out[9, t], out[10, t], out[11, t] = c0 - c2, c1 + c2, c2 - c1, c1 - c3
                out[12, t], out[13, t], out[14, t], out[15, t] = d0 - d2, d1 + d2, d2 - d1, \
                    d1 - d3


def winograd_input_tiles(padded, out) -> None:
    """Bᵀ d B of every tile, in one pass (see the reference)."""
    _winograd_input_tiles(padded, _tile_rows(out), out.shape[3], out.shape[4])


@njit(cache=True, nogil=True)
def _winograd_output_tiles(m, y, bias, has_bias, relu, zero):
    filters, count, out_height, out_width = y.shape
    ty_count, tx_count = (out_height + 1) // 2, (out_width + 1) // 2
    per_filter = count * ty_count * tx_count
    corners = np.empty((4, per_filter), dtype=y.dtype)  # y00, y01, y10, y11 of each tile
    for f in range(filters):
        _output_corners(m, f * per_filter, bias[f], has_bias, relu, zero, corners)
        k = 0
        for n in range(count):
            plane = y[f, n]
            for i in range(0, out_height, 2):
                for j in range(0, out_width, 2):
                    plane[i, j] = corners[0, k]
                    if j + 1 < out_width:
                        plane[i, j + 1] = corners[1, k]
                    if i + 1 < out_height:
                        plane[i + 1, j] = corners[2, k]
                        if j + 1 < out_width:
                            plane[i + 1, j + 1] = corners[3, k]
                    k += 1


@njit(cache=True, nogil=True, inline="always")
def _output_corners(m, first, bias, has_bias, relu, zero, corners):
    """Aᵀ M A (+ bias, ReLU) of one filter's tiles first, first + 1, …, into ``corners``: a
    loop over contiguous rows, which LLVM vectorizes."""
    m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15 = m
    for k in range(corners.shape[1]):
        t = first + k
        # Aᵀ along the columns of each row a, then along the rows
        p0, q0 = m1[t] + m2[t] + m0[t], m1[t] - m2[t] - m3[t]
        p1, q1 = m5[t] + m6[t] + m4[t], m5[t] - m6[t] - m7[t]
        p2, q2 = m9[t] + m10[t] + m8[t], m9[t] - m10[t] - m11[t]
        p3, q3 = m13[t] + m14[t] + m12[t], m13[t] - m14[t] - m15[t]
        y00, y10 = p1 + p2 + p0, p1 - p2 - p3
        y01, y11 = q1 + q2 + q0, q1 - q2 - q3
        if has_bias:
            y00, y10, y01, y11 = y00 + bias, y10 + bias, y01 + bias, y11 + bias
        if relu:  # "< 0" keeps NaN, as np.maximum does
            y00 = zero if y00 < zero else y00
            y10 = zero if y10 < zero else y10
            y01 = zero if y01 < zero else y01
            y11 = zero if y11 < zero else y11
        corners[0, k], corners[1, k], corners[2, k], corners[3, k] = y00, y01, y10, y11


def winograd_output_tiles(m, y, bias, relu: bool) -> None:
    """Aᵀ M A (+ bias, ReLU) of every tile (see the reference): a filter's tiles at a time,
    first into their four output corners by a vectorized loop over M's 16 contiguous rows,
    then onto the output's 2 × 2 blocks. (A loop over the tiles that reads each tile's 16
    entries and writes its block at once is not vectorized: the 32 → 64 layer of
    bench/cnn.py took 100 us instead of 28 us a chunk of 3 samples.)"""
    has_bias = bias is not None
    bias = bias if has_bias else np.zeros(y.shape[0], dtype=y.dtype)
    _winograd_output_tiles(_tile_row_tuple(m), y, bias, has_bias, relu, y.dtype.type(0))


@njit(cache=True, nogil=True)
def _winograd_gradient_tiles(gy, y, relu, out, bias_grad, ty_count, tx_count, zero):
    filters, count, out_height, out_width = gy.shape
    for f in range(filters):
        total = zero
        for n in range(count):
            g, kept = gy[f, n], y[f, n]
            for ty in range(ty_count):
                i = 2 * ty
                first = ((f * count + n) * ty_count + ty) * tx_count
                for tx in range(tx_count):
                    j, t = 2 * tx, first + tx
                    inside_row, inside_column = i + 1 < out_height, j + 1 < out_width
                    g00 = _masked(g[i, j], kept[i, j], relu, zero)
                    g01 = _masked(g[i, j + 1], kept[i, j + 1], relu, zero) if inside_column \
                        else zero
                    g10 = _masked(g[i + 1, j], kept[i + 1, j], relu, zero) if inside_row \
                        else zero
                    g11 = _masked(g[i + 1, j + 1], kept[i + 1, j + 1], relu, zero) \
                        if inside_row and inside_column else zero
                    total += g00 + g01 + g10 + g11
                    # A along the rows: (g0, g0 + g1, g0 − g1, −g1), then along the columns
                    _spread(g00, g01, out, 0, t)
                    _spread(g00 + g10, g01 + g11, out, 4, t)
                    _spread(g00 - g10, g01 - g11, out, 8, t)
                    _spread(-g10, -g11, out, 12, t)
        bias_grad[f] = total


@njit(cache=True, nogil=True, inline="always")
def _masked(g, y, relu, zero):
    """g, or 0 where a fused ReLU's output y was not positive."""
    # `|`, not `or`: no branch to mispredict on the signs of y (a select instead: 3x faster)
    return g if (y > 0) | (not relu) else zero


@njit(cache=True, nogil=True, inline="always")
def _spread(h0, h1, out, k, t):
    out[k, t], out[k + 1, t], out[k + 2, t], out[k + 3, t] = h0, h0 + h1, h0 - h1, -h1


def winograd_gradient_tiles(gy, out, y=None, bias_grad=None) -> None:
    """A G Aᵀ of every 2 × 2 tile of the output gradient (masked, summed), in one pass (see
    the reference; the sums for ``bias_grad`` run in another order: equal to rounding)."""
    bias_grad = np.empty(gy.shape[0], gy.dtype) if bias_grad is None else bias_grad
    _winograd_gradient_tiles(gy, gy if y is None else y, y is not None, _tile_rows(out),
                             bias_grad, out.shape[3], out.shape[4], gy.dtype.type(0))


@njit(cache=True, nogil=True)
def _winograd_input_gradient(dv, padded, ty_count, tx_count):
    channels, count = padded.shape[:2]
    for p in range(channels * count):
        plane = padded[p // count, p % count]
        for ty in range(ty_count):
            r0, r1, r2, r3 = plane[2 * ty], plane[2 * ty + 1], plane[2 * ty + 2], \
                plane[2 * ty + 3]
            first = (p * ty_count + ty) * tx_count
            for tx in range(tx_count):
                j, t = 2 * tx, first + tx
                # B along the columns of each row a: (v0, v1 − v2 + v3, v1 + v2 − v0, −v3)
                a0, a1, a2, a3 = dv[0, t], dv[1, t] - dv[2, t] + dv[3, t], \
                    dv[1, t] + dv[2, t] - dv[0, t], -dv[3, t]
                b0, b1, b2, b3 = dv[4, t], dv[5, t] - dv[6, t] + dv[7, t], \
                    dv[5, t] + dv[6, t] - dv[4, t], -dv[7, t]
                c0, c1, c2, c3 = dv[8, t], dv[9, t] - dv[10, t] + dv[11, t], \
                    dv[9, t] + dv[10, t] - dv[8, t], -dv[11, t]
                d0, d1, d2, d3 = dv[12, t], dv[13, t] - dv[14, t] + dv[15, t], \
                    dv[13, t] + dv[14, t] - dv[12, t], -dv[15, t]
                # then along the rows, each result added onto the tile's window
                _add_column(r0, r1, r2, r3, j, a0, b0, c0, d0)
                _add_column(r0, r1, r2, r3, j + 1, a1, b1, c1, d1)
                _add_column(r0, r1, r2, r3, j + 2, a2, b2, c2, d2)
                _add_column(r0, r1, r2, r3, j + 3, a3, b3, c3, d3)


@njit(cache=True, nogil=True, inline="always")
def _add_column(r0, r1, r2, r3, j, v0, v1, v2, v3):
    r0[j] += v0
    r1[j] += v1 - v2 + v3
    r2[j] += v1 + v2 - v0
    r3[j] -= v3


def winograd_input_gradient(dv, padded) -> None:
    """B dV Bᵀ of every tile added onto its window, tile after tile (the order the reference
    reproduces, so the sums of overlapping windows agree bit for bit)."""
    _winograd_input_gradient(_tile_rows(dv), padded, dv.shape[3], dv.shape[4])


# -- direct convolution, for inputs with few channels ------------------------------------------


# Both run over "wide rows": the padded image flattened, each output row computed over the whole
# padded width (the extra columns dropped), so that each of the 9 taps of a 3 × 3 kernel is a
# window of one long contiguous row, and the loops over it vectorise. (Run in parallel with
# prange they were slower inside a training step: their threads and OpenBLAS's compete for the
# same cores.)


@njit(cache=True, inline="always")
def _windows_3x3(plane, width, length):
    """The 9 taps' windows of a flattened padded plane, each ``length`` long."""
    return (plane[0:length], plane[1:1 + length], plane[2:2 + length],
            plane[width:width + length], plane[width + 1:width + 1 + length],
            plane[width + 2:width + 2 + length], plane[2 * width:2 * width + length],
            plane[2 * width + 1:2 * width + 1 + length],
            plane[2 * width + 2:2 * width + 2 + length])


@njit(cache=True, nogil=True)
def _direct_correlate_3x3(padded, weights, bias, relu, y, zero):
    channels, count, _, width = padded.shape
    filters, _, out_height, out_width = y.shape
    length = out_height * width
    for n in range(count):
        total = np.empty(length, dtype=y.dtype)
        for f in range(filters):
            total[:] = 0
            for c in range(channels):
                x0, x1, x2, x3, x4, x5, x6, x7, x8 = _windows_3x3(padded[c, n].reshape(-1),
                                                                  width, length)
                w = weights[f, c]
                w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[0, 0], w[0, 1], w[0, 2], w[1, 0], \
                    w[1, 1], w[1, 2], w[2, 0], w[2, 1], w[2, 2]
                for k in range(length):  # the taps in (i, j) order, as the reference adds them
                    t = total[k] + w0 * x0[k]
                    t = t + w1 * x1[k]
                    t = t + w2 * x2[k]
                    t = t + w3 * x3[k]
                    t = t + w4 * x4[k]
                    t = t + w5 * x5[k]
                    t = t + w6 * x6[k]
                    t = t + w7 * x7[k]
                    total[k] = t + w8 * x8[k]
            for p in range(out_height):
                out, row = y[f, n, p], total[p * width:p * width + out_width]
                for q in range(out_width):
                    value = row[q] + bias[f]
                    out[q] = zero if (value < 0) & relu else value  # (no branch: _masked)


def direct_correlate(padded, weights, bias, relu: bool, y) -> None:
    """3 × 3 kernels: the 9 taps of each output summed in registers; other sizes run the
    reference."""
    if weights.shape[2:] != (3, 3):
        return reference.direct_correlate(padded, weights, bias, relu, y)
    _direct_correlate_3x3(padded, weights, bias, relu, y, y.dtype.type(0))


@njit(cache=True, nogil=True)
def _direct_kernel_gradient_3x3(padded, gy, y, relu, gw, gb, zero):
    channels, count, _, width = padded.shape
    filters, _, out_height, out_width = gy.shape
    length = out_height * width
    for f in range(filters):
        g = np.zeros(length, dtype=gy.dtype)  # G of one image on wide rows (0 in extra columns)
        # per-position partial sums of each tap, reduced at the end: the loops then vectorise
        sums = np.zeros((channels, 9, length), dtype=gw.dtype)
        bias_sums = np.zeros(out_width, dtype=gw.dtype)
        for n in range(count):
            for p in range(out_height):
                g_row, y_row = gy[f, n, p], y[f, n, p]
                wide = g[p * width:p * width + out_width]
                for q in range(out_width):
                    value = _masked(g_row[q], y_row[q], relu, zero)
                    wide[q] = value
                    bias_sums[q] += value
            for c in range(channels):
                x0, x1, x2, x3, x4, x5, x6, x7, x8 = _windows_3x3(padded[c, n].reshape(-1),
                                                                  width, length)
                s = sums[c]
                s0, s1, s2, s3, s4, s5, s6, s7, s8 = s[0], s[1], s[2], s[3], s[4], s[5], s[6], \
                    s[7], s[8]
                for k in range(length):
                    gk = g[k]
                    s0[k] += gk * x0[k]
                    s1[k] += gk * x1[k]
                    s2[k] += gk * x2[k]
                    s3[k] += gk * x3[k]
                    s4[k] += gk * x4[k]
                    s5[k] += gk * x5[k]
                    s6[k] += gk * x6[k]
                    s7[k] += gk * x7[k]
                    s8[k] += gk * x8[k]
        gb[f] = bias_sums.sum()
        for c in range(channels):
            for t in range(9):
                gw[f, c, t // 3, t % 3] = sums[c, t].sum()


def direct_kernel_gradient(padded, gy, y, relu: bool, gw, gb) -> None:
    """3 × 3 kernels: ∂L/∂W and ∂L/∂b in one pass over G, the ReLU's mask applied on the way;
    other sizes run the reference."""
    if gw.shape[2:] != (3, 3):
        return reference.direct_kernel_gradient(padded, gy, y, relu, gw, gb)
    _direct_kernel_gradient_3x3(padded, gy, gy if y is None else y, relu, gw, gb,
                                gy.dtype.type(0))


# -- a dense layer's bias and ReLU ---------------------------------------------------------------


@njit(cache=True, nogil=True)
def _bias_and_relu(y, bias, relu, zero):
    rows, units = y.shape
    for r in range(rows):
        row = y[r]
        for j in range(units):
            value = row[j]
            if bias is not None:  # (None: Numba compiles the loop without it)
                value += bias[j]
            # "<= 0": NaN stays and −0 becomes +0, as np.maximum(·, 0) makes them
            row[j] = zero if (value <= zero) & relu else value


def bias_and_relu(y, bias, relu: bool) -> None:
    """y + b, then max(0, ·): one pass instead of two (see the reference); 4-5× faster on a
    128 × 256 output. Other dtypes, shapes and layouts run the reference."""
    if not (_float_rows(y) and (bias is None or (bias.dtype == y.dtype and bias.ndim == 1))):
        return reference.bias_and_relu(y, bias, relu)
    _bias_and_relu(y, bias, relu, y.dtype.type(0))


@njit(cache=True, nogil=True)
def _relu_gradient_and_bias_sum(gy, y, masked, total, zero, one):
    rows, units = gy.shape
    for r in range(rows):  # row after row, as NumPy sums over axis 0: the same sums
        g, kept, out = gy[r], y[r], masked[r]
        for j in range(units):
            value = g[j] * (one if kept[j] > zero else zero)  # (g·0 keeps NaN and signs)
            out[j] = value
            if total is not None:
                total[j] += value


def relu_gradient_and_bias_sum(gy, y, need_sum: bool):
    """G = ∂L/∂y ⊙ [y > 0] and its sum over the rows in one pass (see the reference): 2.6-2.9×
    faster at 128 × 128-256. Other dtypes, shapes and layouts run the reference."""
    if not (_float_rows(gy) and _float_rows(y) and gy.dtype == y.dtype and gy.shape == y.shape):
        return reference.relu_gradient_and_bias_sum(gy, y, need_sum)
    masked = np.empty_like(gy)
    # from +0, as NumPy's sum (a column of −0 sums to +0)
    total = np.zeros(gy.shape[1], dtype=gy.dtype) if need_sum else None
    _relu_gradient_and_bias_sum(gy, y, masked, total, gy.dtype.type(0), gy.dtype.type(1))
    return masked, total


#: The dtypes the loops above are compiled for.
_LOOP_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float_rows(a) -> bool:
    """A C-contiguous 2-D float32 or float64 array (what the loops are compiled for)."""
    return a.ndim == 2 and a.dtype in _LOOP_DTYPES and a.flags.c_contiguous


# -- one LSTM time step --------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _lstm_gates_and_state(z, gates, scale, shift, c_previous, c):
    batch, units = c.shape
    for b in range(batch):
        gate, activated = gates[b], z[b]
        for k in range(4 * units):
            gate[k] = activated[k] * scale[k] + shift[k]
        for j in range(units):
            c[b, j] = gate[units + j] * c_previous[b, j] + gate[j] * gate[2 * units + j]


def lstm_step_forward(z, gates, scale, shift, c_previous, c, tanh_c, h) -> None:
    """The affine map of the gates and the new state c in one pass; the two tanh stay NumPy's
    (vectorised: Numba's scalar tanh made the step 4× slower)."""
    z += gates
    np.tanh(z, out=z)
    _lstm_gates_and_state(z, gates, scale, shift, c_previous, c)
    np.tanh(c, out=tanh_c)
    np.multiply(gates[:, 3 * c.shape[1]:], tanh_c, out=h)


@njit(cache=True, nogil=True)
def _lstm_step_backward(dh, dc, gates, c_previous, tanh_c, dz, one):
    batch, units = dh.shape
    for b in range(batch):
        gate, d = gates[b], dz[b]
        for j in range(units):
            i, f, g, o = gate[j], gate[units + j], gate[2 * units + j], gate[3 * units + j]
            squashed = tanh_c[b, j]
            d_o = dh[b, j] * squashed
            state = dc[b, j] + (one - squashed * squashed) * o * dh[b, j]
            d[j] = state * g * ((one - i) * i)
            d[units + j] = state * c_previous[b, j] * ((one - f) * f)
            d[2 * units + j] = state * i * (one - g * g)
            d[3 * units + j] = d_o * ((one - o) * o)
            dc[b, j] = state * f


def lstm_step_backward(dh, dc, gates, c_previous, tanh_c, dz) -> None:
    """∂z and ∂c_{t−1} of one step in one pass (see the reference; ``dz`` may be ``gates``:
    each unit's four gates are read before its four entries of ∂z are written). (``one`` is 1
    in the arrays' dtype: a bare 1 would make Numba compute float32 arrays in float64.)"""
    _lstm_step_backward(dh, dc, gates, c_previous, tanh_c, dz, dh.dtype.type(1))


# -- optimizer updates: one pass over memory each ----------------------------------------------
#
# The wrappers flatten the arrays and hand the rest to the reference when an array the update
# writes is not contiguous (reshape would copy it, and the update would be lost). An optional
# buffer may be None: Numba compiles a loop without it (a stand-in array aliasing another kept
# LLVM from vectorizing the loop: RMSprop ran 4× slower). The scalars come as Python floats,
# which Numba's dispatcher reads in C (a call of a small update took 1.2 µs instead of 3.2 µs
# with NumPy scalars), and each loop casts them to the parameter's dtype first, as NumPy does
# with a Python float, so that float32 is computed in float32. NumPy's error model: x / 0 is
# ±inf or NaN, as in the reference, instead of Python's ZeroDivisionError, whose check kept the
# loops from being vectorized (Adam's update ran 13× slower).


def _writable(*arrays) -> bool:
    """Whether each array (or None) can be flattened in place (a loop: no generator to make)."""
    for a in arrays:
        if a is not None and not a.flags.c_contiguous:
            return False
    return True


def _flat(array):
    return None if array is None else array.reshape(-1)


@njit(cache=True, nogil=True, inline="always")
def _flushed(x, tiny):
    """x, or 0 when |x| < tiny (x − x: +0 in x's own type)."""
    return x - x if abs(x) < tiny else x


@njit(cache=True, nogil=True, inline="always")
def _decayed(g, theta, weight_decay):
    """g + λ·θ, or g when λ is 0 (so an infinite θ does not make a NaN)."""
    return g + theta * weight_decay if weight_decay != 0 else g


@njit(cache=True, nogil=True, error_model="numpy")
def _scaled_subtract(param, direction, scale, weight_decay, tiny):
    dtype = param.dtype.type
    scale, weight_decay, tiny = dtype(scale), dtype(weight_decay), dtype(tiny)
    for i in range(param.size):
        d = _decayed(direction[i], param[i], weight_decay)
        param[i] = _flushed(param[i] - d * scale, tiny)


def scaled_subtract(param, direction, scale, work=None, weight_decay=0, tiny=0) -> None:
    """θ ← θ − s·(d + λ·θ) in one pass (``work`` is not needed)."""
    if not _writable(param):
        return reference.scaled_subtract(param, direction, scale, work, weight_decay, tiny)
    _scaled_subtract(param.reshape(-1), direction.reshape(-1), scale, weight_decay, tiny)


@njit(cache=True, nogil=True, error_model="numpy")
def _momentum_update(param, buffer, grad, momentum, learning_rate, undamped, nesterov,
                     weight_decay, tiny):
    dtype = param.dtype.type
    momentum, learning_rate, undamped = dtype(momentum), dtype(learning_rate), dtype(undamped)
    weight_decay, tiny = dtype(weight_decay), dtype(tiny)
    for i in range(param.size):
        g = _decayed(grad[i], param[i], weight_decay)
        b = buffer[i] * momentum + g * undamped
        d = b * momentum + g if nesterov else b
        buffer[i] = _flushed(b, tiny)
        param[i] = _flushed(param[i] - d * learning_rate, tiny)


def momentum_update(param, buffer, grad, momentum, learning_rate, undamped=1, nesterov=False,
                    weight_decay=0, tiny=0) -> None:
    """SGD with momentum in one pass (see the reference)."""
    if not _writable(param, buffer):
        return reference.momentum_update(param, buffer, grad, momentum, learning_rate,
                                         undamped, nesterov, weight_decay, tiny)
    _momentum_update(param.reshape(-1), buffer.reshape(-1), grad.reshape(-1), momentum,
                     learning_rate, undamped, nesterov, weight_decay, tiny)


@njit(cache=True, nogil=True, error_model="numpy")
def _adam_update(param, grad, m, v, v_max, one_minus_beta_1, beta_2, one_minus_beta_2, step_size,
                 epsilon, weight_decay, tiny):
    dtype = param.dtype.type
    one_minus_beta_1, beta_2 = dtype(one_minus_beta_1), dtype(beta_2)
    one_minus_beta_2, step_size, epsilon = dtype(one_minus_beta_2), dtype(step_size), dtype(epsilon)
    weight_decay, tiny = dtype(weight_decay), dtype(tiny)
    for i in range(param.size):
        g = _decayed(grad[i], param[i], weight_decay)
        m_i = m[i] + (g - m[i]) * one_minus_beta_1
        v_i = v[i] * beta_2 + g * g * one_minus_beta_2
        v_hat = v_i
        if v_max is not None:
            # np.maximum's rule: a NaN in either wins
            v_hat = v_max[i] if v_max[i] > v_i or v_max[i] != v_max[i] else v_i
            v_max[i] = _flushed(v_hat, tiny)
        m[i], v[i] = _flushed(m_i, tiny), _flushed(v_i, tiny)
        param[i] = _flushed(param[i] - m_i / (np.sqrt(v_hat) + epsilon) * step_size, tiny)


def adam_update(param, grad, m, v, v_max, one_minus_beta_1, beta_2, one_minus_beta_2,
                step_size, epsilon, weight_decay=0, tiny=0) -> None:
    """Adam in one pass (see the reference)."""
    if not _writable(param, m, v, v_max):
        return reference.adam_update(param, grad, m, v, v_max, one_minus_beta_1, beta_2,
                                     one_minus_beta_2, step_size, epsilon, weight_decay, tiny)
    _adam_update(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
                 _flat(v_max), one_minus_beta_1, beta_2, one_minus_beta_2, step_size, epsilon,
                 weight_decay, tiny)


@njit(cache=True, nogil=True, error_model="numpy")
def _rmsprop_update(param, grad, square_avg, grad_avg, buffer, rho, one_minus_rho, epsilon,
                    momentum, learning_rate, weight_decay, tiny):
    dtype = param.dtype.type
    rho, one_minus_rho, epsilon = dtype(rho), dtype(one_minus_rho), dtype(epsilon)
    momentum, learning_rate = dtype(momentum), dtype(learning_rate)
    weight_decay, tiny = dtype(weight_decay), dtype(tiny)
    for i in range(param.size):
        g = _decayed(grad[i], param[i], weight_decay)
        v = square_avg[i] * rho + g * g * one_minus_rho
        square_avg[i] = _flushed(v, tiny)
        if grad_avg is not None:
            mean = grad_avg[i] + (g - grad_avg[i]) * one_minus_rho
            grad_avg[i] = _flushed(mean, tiny)
            v = v - mean * mean
        d = g / (np.sqrt(v) + epsilon)
        if buffer is not None:
            d = buffer[i] * momentum + d
            buffer[i] = _flushed(d, tiny)
        param[i] = _flushed(param[i] - d * learning_rate, tiny)


def rmsprop_update(param, grad, square_avg, grad_avg, buffer, rho, one_minus_rho, epsilon,
                   momentum, learning_rate, weight_decay=0, tiny=0) -> None:
    """RMSprop in one pass (see the reference)."""
    if not _writable(param, square_avg, grad_avg, buffer):
        return reference.rmsprop_update(param, grad, square_avg, grad_avg, buffer, rho,
                                        one_minus_rho, epsilon, momentum, learning_rate,
                                        weight_decay, tiny)
    _rmsprop_update(param.reshape(-1), grad.reshape(-1), square_avg.reshape(-1),
                    _flat(grad_avg), _flat(buffer), rho, one_minus_rho, epsilon, momentum,
                    learning_rate, weight_decay, tiny)


@njit(cache=True, nogil=True, error_model="numpy")
def _adagrad_update(param, grad, accumulator, learning_rate, epsilon, weight_decay, tiny):
    dtype = param.dtype.type
    learning_rate, epsilon = dtype(learning_rate), dtype(epsilon)
    weight_decay, tiny = dtype(weight_decay), dtype(tiny)
    for i in range(param.size):
        g = _decayed(grad[i], param[i], weight_decay)
        total = accumulator[i] + g * g
        accumulator[i] = _flushed(total, tiny)
        param[i] = _flushed(param[i] - g / (np.sqrt(total) + epsilon) * learning_rate, tiny)


def adagrad_update(param, grad, accumulator, learning_rate, epsilon, weight_decay=0,
                   tiny=0) -> None:
    """Adagrad in one pass (see the reference)."""
    if not _writable(param, accumulator):
        return reference.adagrad_update(param, grad, accumulator, learning_rate, epsilon,
                                        weight_decay, tiny)
    _adagrad_update(param.reshape(-1), grad.reshape(-1), accumulator.reshape(-1),
                    learning_rate, epsilon, weight_decay, tiny)


@njit(cache=True, nogil=True, error_model="numpy")
def _adadelta_update(param, grad, square_avg, acc_delta, rho, one_minus_rho, epsilon,
                     learning_rate, weight_decay, tiny):
    dtype = param.dtype.type
    rho, one_minus_rho, epsilon = dtype(rho), dtype(one_minus_rho), dtype(epsilon)
    learning_rate, weight_decay, tiny = dtype(learning_rate), dtype(weight_decay), dtype(tiny)
    for i in range(param.size):
        g = _decayed(grad[i], param[i], weight_decay)
        v = square_avg[i] * rho + g * g * one_minus_rho
        delta = np.sqrt(acc_delta[i] + epsilon) / np.sqrt(v + epsilon) * g
        square_avg[i] = _flushed(v, tiny)
        acc_delta[i] = _flushed(acc_delta[i] * rho + delta * delta * one_minus_rho, tiny)
        param[i] = _flushed(param[i] - delta * learning_rate, tiny)


def adadelta_update(param, grad, square_avg, acc_delta, rho, one_minus_rho, epsilon,
                    learning_rate, weight_decay=0, tiny=0) -> None:
    """Adadelta in one pass (see the reference)."""
    if not _writable(param, square_avg, acc_delta):
        return reference.adadelta_update(param, grad, square_avg, acc_delta, rho,
                                         one_minus_rho, epsilon, learning_rate, weight_decay,
                                         tiny)
    _adadelta_update(param.reshape(-1), grad.reshape(-1), square_avg.reshape(-1),
                     acc_delta.reshape(-1), rho, one_minus_rho, epsilon, learning_rate,
                     weight_decay, tiny)
