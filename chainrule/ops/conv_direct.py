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
input gradient; where one is needed the im2col algorithm computes all the gradients
(:mod:`chainrule.ops.conv_im2col`). The loops are kernels (:mod:`chainrule.kernels`; compiled
for 3 × 3 kernels); both passes deal the filters out to :func:`chainrule.kernels.workers`
threads, inside :func:`chainrule.kernels.own_threads`.
"""

from __future__ import annotations

import numpy as np

from chainrule import kernels
from chainrule.ops.conv_geometry import ConvGeometry
from chainrule.ops.conv_im2col import IM2COL


class Direct:
    """Direct sums of the taps for stride-1 convolutions, on chainrule's threads.

    The algorithm interface of :mod:`chainrule.ops.nn_conv` (channel-major arrays in and
    out). Forward, and backward where x needs no gradient, run inside
    :func:`chainrule.kernels.own_threads`; an input gradient comes from im2col (whose chunks
    share the threads likewise).
    """

    name = "direct"

    def applies(self, geom: ConvGeometry) -> bool:
        """Whether the direct kernels compute this convolution: stride 1, no dilation."""
        return geom.stride == (1, 1) and geom.dilation == (1, 1)

    def forward(self, x_cn, w, geom: ConvGeometry, bias=None, relu: bool = False):
        """y = Σ_taps W · shifted x + b (then max(0, ·) with ``relu``), as (F, N, OH, OW)."""
        with kernels.own_threads(work=geom.multiply_adds, hold=True):
            return _forward(x_cn, w, geom, bias, relu)

    def backward(self, gy_cn, x_cn, w, geom: ConvGeometry, relu_output=None, need_x=True,
                 need_w=True, need_b=True):
        """(∂L/∂x, ∂L/∂W, ∂L/∂b), each None unless asked for: by im2col where ∂L/∂x is
        needed, else ∂L/∂W and ∂L/∂b in one pass over G."""
        if need_x:
            return IM2COL.backward(gy_cn, x_cn, w, geom, relu_output, need_x, need_w, need_b)
        with kernels.own_threads(work=geom.multiply_adds, hold=True):
            gw, gb = _kernel_gradient(gy_cn, x_cn, relu_output, geom)
        return None, gw if need_w else None, gb if need_b else None


DIRECT = Direct()


def _padded(x_cn, geom: ConvGeometry, dtype):
    """The (C, N, H, W) input with its zero padding, as a new (C, N, Hp + 1, Wp) array: the
    compiled kernels read the padded rows as one long row, up to kw − 1 elements past the
    last, so a spare row of zeros follows."""
    (top, _), (left, _) = geom.padding
    hp, wp = geom.padded
    padded = np.zeros((geom.channels, x_cn.shape[1], hp + 1, wp), dtype=dtype)
    padded[:, :, top:top + geom.height, left:left + geom.width] = x_cn
    return padded


def _forward(x_cn, w, geom: ConvGeometry, bias=None, relu: bool = False):
    """The convolution of ``x_cn`` (C, N, H, W) with ``w`` (F, C, kh, kw) as (F, N, OH, OW);
    the filters are dealt out to :func:`chainrule.kernels.workers` threads."""
    dtype = np.result_type(x_cn.dtype, w.dtype)
    bias = np.zeros(geom.filters, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    y = np.empty((geom.filters, geom.batch, geom.out_height, geom.out_width), dtype=dtype)
    padded, w = _padded(x_cn, geom, dtype), np.ascontiguousarray(w, dtype)
    correlate = kernels.select(x_cn).direct_correlate

    def run(first, last):  # each thread its filters: one contiguous block of the output
        correlate(padded, w[first:last], bias[first:last], relu, y[first:last])

    kernels.run_blocks(geom.filters, run)
    return y


def _kernel_gradient(gy_cn, x_cn, relu_output, geom: ConvGeometry):
    """(∂L/∂W as (F, C, kh, kw), ∂L/∂b as (F,)) from ∂L/∂y (F, N, OH, OW); with
    ``relu_output`` (a fused ReLU's y), ∂L/∂y is first masked by [y > 0]. The filters are
    dealt out to :func:`chainrule.kernels.workers` threads."""
    dtype = gy_cn.dtype
    gw = np.empty((geom.filters, geom.channels, *geom.kernel), dtype=dtype)
    gb = np.empty(geom.filters, dtype=dtype)
    padded = _padded(x_cn, geom, dtype)
    gradient = kernels.select(gy_cn).direct_kernel_gradient

    def run(first, last):
        kept = None if relu_output is None else relu_output[first:last]
        gradient(padded, gy_cn[first:last], kept, relu_output is not None, gw[first:last],
                 gb[first:last])

    kernels.run_blocks(geom.filters, run)
    return gw, gb
