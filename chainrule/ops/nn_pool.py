"""Max and average pooling over NCHW images, vectorised over the window offsets.

A pooling window of kh × kw visits kh·kw *offsets*; at offset (i, j) the windows of all output
positions read one strided slice of the (padded) input. Pooling is therefore a running maximum
(or sum) over kh·kw slices, each a whole-batch array operation; backward sends each output's
gradient back through the same slices.

When the windows tile the input exactly (stride = pool size, no padding, sizes divisible: the
usual 2 × 2 pooling of a CNN) max pooling runs a kernel of :mod:`chainrule.kernels`: compiled
(one pass over the input, the argmax found on the way) with the ``[fast]`` extra, else a NumPy
version that reduces in two steps along contiguous memory, first over the kw columns of every
window row, then over the kh rows. Either way large inputs' planes are dealt out to chainrule's
threads (:func:`chainrule.kernels.own_threads`).

Max pooling routes each window's gradient to its first maximum in row-major order, as PyTorch
does; NaN inputs propagate to the output, but their gradient routing is unspecified. Average
pooling divides by the number of *input* elements in the window: padding is never counted
(Keras's "same" behaviour; PyTorch's ``count_include_pad=False``).

The windows' geometry (padding, output sizes, offsets) is :mod:`chainrule.ops.conv_geometry`'s.
Images are processed as planes (one per sample and channel) in whichever order of N and C the
memory has, so channel-major arrays from :mod:`chainrule.ops.nn_conv` need no copy, and results
keep the input's memory order.
"""

from __future__ import annotations

import contextlib

import numpy as np

from chainrule import kernels
from chainrule.autograd.function import Function
from chainrule.ops.conv_geometry import PoolGeometry, pool_geometry
from chainrule.tensor import Tensor

# -- planes --------------------------------------------------------------------------------------


def as_planes(x):
    """An (N, C, H, W) array as contiguous planes (N·C or C·N, H, W), and whether it is C·N.

    Channel-major memory (what :class:`~chainrule.ops.nn_conv.Conv2d` returns) is used as it is.
    """
    n, c, h, w = x.shape
    if x.flags.c_contiguous:
        return x.reshape(n * c, h, w), False
    swapped = x.swapaxes(0, 1)
    if swapped.flags.c_contiguous:
        return swapped.reshape(c * n, h, w), True
    return np.ascontiguousarray(x).reshape(n * c, h, w), False


def from_planes(planes, n: int, c: int, channel_major: bool):
    """Planes (N·C or C·N, h, w) viewed back as (N, C, h, w)."""
    h, w = planes.shape[-2:]
    if channel_major:
        return planes.reshape(c, n, h, w).swapaxes(0, 1)
    return planes.reshape(n, c, h, w)


def _planes_like(a, n: int, c: int, channel_major: bool):
    """``a`` (N, C, h, w) as contiguous planes in the given order (copied only if needed)."""
    ordered = a.swapaxes(0, 1) if channel_major else a
    return np.ascontiguousarray(ordered).reshape(n * c, *a.shape[2:])


def _running_sum(slices):
    total = slices[0] + slices[1] if len(slices) > 1 else slices[0].copy()
    for s in slices[2:]:
        total += s
    return total


# -- max pooling ---------------------------------------------------------------------------------

#: One input element of a 2 × 2 max pooling costs about what 8 multiply-adds of a convolution do
#: on one core (~1 ns: 3.4 ms for 128 × 32 × 28 × 28), the unit of ``own_threads(work=)``; both
#: kernel modules share large NumPy inputs' planes between chainrule's threads (NumPy's 2 × 2
#: pooling of bench/cnn.py: forward 5.3 → 3.0 ms and backward 5.0 → 2.7 ms on 2 cores).
POOL_WORK_PER_ELEMENT = 8


def _pool_threads(planes, elements: int):
    """``own_threads`` for NumPy planes, which the kernels (compiled and NumPy's alike) deal
    out to the threads; other arrays (CuPy) run as they are."""
    if type(planes) is not np.ndarray:
        return contextlib.nullcontext()
    return kernels.own_threads(work=elements * POOL_WORK_PER_ELEMENT, hold=True)


class MaxPool2d(Function):
    """y[n, c, i, j] = max of x[n, c] over the window of output (i, j).

    Backward routes each output's gradient to its window's first maximum (row-major), as
    PyTorch does; where windows overlap, the contributions add up. First-order only.
    ``track=False`` skips remembering the maxima (inference).
    """

    differentiable_backward = False

    def __init__(self, pool_size, strides, padding, track: bool = True):
        self.pool_size, self.strides, self.padding = pool_size, strides, padding
        self.track = track

    def forward(self, x):
        geom = self.geometry = pool_geometry(x.shape, self.pool_size, self.strides, self.padding,
                                          "max_pool2d")
        planes, self.channel_major = as_planes(x)
        kh, kw = geom.pool
        if geom.tiles:
            self.kernels = kernels.select(planes)
            with _pool_threads(planes, planes.size):
                best, self.index = self.kernels.max_pool_tiles(planes, kh, kw, self.track)
        else:
            padded = _pad_planes(planes, geom, _lowest(planes.dtype))
            best, self.index = kernels.reference.running_max(
                [padded[:, rows, cols] for _, rows, cols in geom.offsets()], self.track)
        return from_planes(best, x.shape[0], x.shape[1], self.channel_major)

    def backward(self, gy):
        if not self.track:
            raise RuntimeError("max_pool2d: the op was applied with track=False; no backward")
        geom, x = self.geometry, self.inputs[0]
        n, c = x.shape[0], x.shape[1]
        gy_planes = _planes_like(gy.data, n, c, self.channel_major)
        (kh, kw) = geom.pool
        count = gy_planes.shape[0]
        if geom.tiles:
            with _pool_threads(gy_planes, gy_planes.size * kh * kw):
                gx = self.kernels.max_pool_tiles_backward(gy_planes, self.index, kh, kw)
        else:
            gpad = _zero_padded_planes(count, geom, gy_planes.dtype)
            for k, rows, cols in geom.offsets():
                gpad[:, rows, cols] += gy_planes * (self.index == k)
            gx = _unpad(gpad, geom)
        return (Tensor(from_planes(gx, n, c, self.channel_major)),)


# -- average pooling -----------------------------------------------------------------------------


class AvgPool2d(Function):
    """y[n, c, i, j] = mean of the *input* elements of x[n, c] in the window of output (i, j).

    Padding is never counted (Keras "same"; PyTorch ``count_include_pad=False``). Backward
    spreads each output's gradient evenly over its window's input elements. First-order only
    (raw arrays).
    """

    differentiable_backward = False

    def __init__(self, pool_size, strides, padding):
        self.pool_size, self.strides, self.padding = pool_size, strides, padding

    def forward(self, x):
        geom = self.geometry = pool_geometry(x.shape, self.pool_size, self.strides, self.padding,
                                          "avg_pool2d")
        planes, self.channel_major = as_planes(x)
        (kh, kw), count = geom.pool, planes.shape[0]
        if geom.tiles:
            columns = planes.reshape(-1, kw)
            rows = _running_sum([columns[:, j] for j in range(kw)])
            rows = rows.reshape(count * geom.out_height, kh, geom.out_width)
            total = _running_sum([rows[:, i] for i in range(kh)])
            total *= 1 / (kh * kw)
            y = total.reshape(count, geom.out_height, geom.out_width)
        else:
            padded = _pad_planes(planes, geom, 0)
            y = _running_sum([padded[:, rows, cols] for _, rows, cols in geom.offsets()])
            y /= _window_counts(geom, y.dtype)
        return from_planes(y, x.shape[0], x.shape[1], self.channel_major)

    def backward(self, gy):
        geom, x = self.geometry, self.inputs[0]
        n, c = x.shape[0], x.shape[1]
        gy_planes = _planes_like(gy.data, n, c, self.channel_major)
        (kh, kw), count = geom.pool, gy_planes.shape[0]
        if geom.tiles:
            gx = np.empty((count, geom.height, geom.width), dtype=gy_planes.dtype)
            share = gy_planes * (1 / (kh * kw))
            gx.reshape(count * geom.out_height, kh, geom.out_width, kw)[...] = share.reshape(
                count * geom.out_height, 1, geom.out_width, 1)
        else:
            share = gy_planes / _window_counts(geom, gy_planes.dtype)
            gpad = _zero_padded_planes(count, geom, gy_planes.dtype)
            for _, rows, cols in geom.offsets():
                gpad[:, rows, cols] += share
            gx = _unpad(gpad, geom)
        return (Tensor(from_planes(gx, n, c, self.channel_major)),)


# -- helpers -------------------------------------------------------------------------------------


def _lowest(dtype):
    """The padding value of max pooling: −∞, or the smallest integer."""
    dtype = np.dtype(dtype)
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _padded_shape(count: int, geom: PoolGeometry):
    """The padded planes, extended so that the last window of every axis fits."""
    (top, bottom), (left, right) = geom.padding
    height = max(geom.height + top + bottom, (geom.out_height - 1) * geom.stride[0] + geom.pool[0])
    width = max(geom.width + left + right, (geom.out_width - 1) * geom.stride[1] + geom.pool[1])
    return count, height, width


def _pad_planes(planes, geom: PoolGeometry, value):
    if geom.padding == ((0, 0), (0, 0)):
        return planes
    padded = np.full(_padded_shape(planes.shape[0], geom), value, dtype=planes.dtype)
    (top, _), (left, _) = geom.padding
    padded[:, top:top + geom.height, left:left + geom.width] = planes
    return padded


def _zero_padded_planes(count: int, geom: PoolGeometry, dtype):
    return np.zeros(_padded_shape(count, geom), dtype=dtype)


def _unpad(padded, geom: PoolGeometry):
    (top, _), (left, _) = geom.padding
    return padded[:, top:top + geom.height, left:left + geom.width]


def _window_counts(geom: PoolGeometry, dtype):
    """How many input elements each window holds: (rows inside) × (columns inside)."""
    def inside(size, kernel, stride, before, count):
        start = np.arange(count) * stride - before
        return np.minimum(start + kernel, size) - np.maximum(start, 0)

    rows = inside(geom.height, geom.pool[0], geom.stride[0], geom.padding[0][0], geom.out_height)
    cols = inside(geom.width, geom.pool[1], geom.stride[1], geom.padding[1][0], geom.out_width)
    return np.outer(rows, cols).astype(dtype)
