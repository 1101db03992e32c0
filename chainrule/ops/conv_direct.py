"""Direct stride-1 convolution, for inputs with few channels (a first layer on images).

With C·kh·kw small (9 for one grey channel and a 3 × 3 kernel) the im2col product has a tiny
inner dimension, and BLAS runs it far below its speed while im2col copies the input kh·kw
times. Summing the taps directly is then faster:

    y[f, n, p, q] = Σ_{c,i,j} W[f, c, i, j] · x[c, n, p + i, q + j] + b[f],

over each image's padded rows read as one long row, so that every tap is a shifted window of
it: the taps summed in registers, the bias and ReLU applied before the output is stored. Its
kernel gradient is the same sum with G in place of W,

    ∂L/∂W[f, c, i, j] = Σ_{n,p,q} G[f, n, p, q] · x[c, n, p + i, q + j],   ∂L/∂b[f] = Σ G[f],

taken in one pass over G (with the ReLU's mask applied on the way). A first layer needs no
input gradient; where one is needed the im2col path computes it (:class:`Conv2d`).
The loops are kernels (:mod:`chainrule.kernels`; compiled for 3 × 3 kernels); both passes
deal the filters out to :func:`chainrule.kernels.workers` threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from chainrule import kernels

if TYPE_CHECKING:
    from chainrule.ops.nn_conv import ConvGeometry

#: Largest C·kh·kw for which "auto" sums the taps directly (3 × 3 kernels on RGB images).
MAX_PATCH = 27


def applies(g: ConvGeometry) -> bool:
    """Whether the direct kernels compute this convolution: stride 1, no dilation."""
    return g.stride == (1, 1) and g.dilation == (1, 1)


def preferred(g: ConvGeometry) -> bool:
    """Whether they are the fastest choice: 3 × 3 kernels (the compiled case; other sizes run
    the NumPy reference) over at most :data:`MAX_PATCH` inputs."""
    return applies(g) and g.kernel == (3, 3) and g.patch <= MAX_PATCH


def _padded(x_cn, g: ConvGeometry, dtype):
    """The (C, N, H, W) input with its zero padding, as a new (C, N, Hp + 1, Wp) array: the
    compiled kernels read the padded rows as one long row, up to kw − 1 elements past the
    last, so a spare row of zeros follows."""
    (top, _), (left, _) = g.padding
    hp, wp = g.padded
    padded = np.zeros((g.channels, x_cn.shape[1], hp + 1, wp), dtype=dtype)
    padded[:, :, top:top + g.height, left:left + g.width] = x_cn
    return padded


def forward(x_cn, w, g: ConvGeometry, bias=None, relu: bool = False):
    """The convolution of ``x_cn`` (C, N, H, W) with ``w`` (F, C, kh, kw) as (F, N, OH, OW);
    the filters are dealt out to :func:`chainrule.kernels.workers` threads."""
    dtype = np.result_type(x_cn.dtype, w.dtype)
    bias = np.zeros(g.filters, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    y = np.empty((g.filters, g.batch, g.out_height, g.out_width), dtype=dtype)
    padded, w = _padded(x_cn, g, dtype), np.ascontiguousarray(w, dtype)
    correlate = kernels.select(x_cn).direct_correlate
    parts = kernels.split(g.filters, kernels.workers())

    def run(index):  # each thread its filters: one contiguous block of the output
        first, last = parts[index]
        correlate(padded, w[first:last], bias[first:last], relu, y[first:last])

    kernels.run_each(run, len(parts))
    return y


def kernel_gradient(gy_cn, x_cn, y_cn, g: ConvGeometry, relu: bool):
    """(∂L/∂W as (F, C, kh, kw), ∂L/∂b as (F,)) from ∂L/∂y (F, N, OH, OW); with ``relu``,
    ``y_cn`` is the layer's output and ∂L/∂y is first masked by [y > 0]. The filters are dealt
    out to :func:`chainrule.kernels.workers` threads."""
    dtype = gy_cn.dtype
    gw = np.empty((g.filters, g.channels, *g.kernel), dtype=dtype)
    gb = np.empty(g.filters, dtype=dtype)
    padded = _padded(x_cn, g, dtype)
    gradient = kernels.select(gy_cn).direct_kernel_gradient
    parts = kernels.split(g.filters, kernels.workers())

    def run(index):
        first, last = parts[index]
        kept = None if y_cn is None else y_cn[first:last]
        gradient(padded, gy_cn[first:last], kept, relu, gw[first:last], gb[first:last])

    kernels.run_each(run, len(parts))
    return gw, gb
