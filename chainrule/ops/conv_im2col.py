"""Convolution by im2col: one large matrix product per chunk of the batch, for every geometry.

A convolution is a matrix product in disguise. Unfold every kh × kw window of the (padded)
input into a column ("im2col"), and the output for all positions at once is

    Y (F, positions) = W (F, C·kh·kw) @ cols (C·kh·kw, positions) + b,

with the gradients ∂L/∂W = G @ colsᵀ and ∂L/∂b = Σ G (G = ∂L/∂Y). The input gradient is the
*transposed* convolution: col2im(Wᵀ @ G), which adds every column back onto the input pixels
its window covered; with stride 1 and fewer than twice as many filters as input channels it is
cheaper as a convolution of G (padded by the kernel's span) with the flipped kernel, computed
the same way (:func:`col2im_is_cheaper`).

How the arrays are laid out decides the speed:

* the columns are ordered (C, kh, kw) × (N, OH, OW): every product is one BLAS call on
  contiguous matrices, and the output comes out as (F, N, OH, OW), channel-major;
* the batch is processed in a few chunks (:data:`CHUNK_BYTES`); the columns are rebuilt in
  backward rather than stored (the whole im2col matrix of a CNN layer is tens of megabytes);
* with stride 1 the windows are read off the flattened padded image ("wide" rows): the window at
  offset (i, j) of all outputs of a row is one contiguous run of the padded plane, so im2col
  copies long runs instead of short rows. Each output row is computed over the whole padded
  width and the few extra columns are dropped. With strides the exact positions are gathered
  with strided slices instead.

The loops that remain are over the chunks and over the kh·kw kernel offsets (9 for 3 × 3), each
step moving a whole block of the batch.

**Threads.** A batch of several chunks is dealt out to chainrule's threads inside
:func:`chainrule.kernels.own_threads`, each thread with its own buffers and BLAS on one thread:
im2col's copies, col2im's additions and the ReLU's mask then run on every core, not only the
products. A one-sample batch runs its products on BLAS's threads instead
(:func:`chainrule.kernels.blas_for`). (Measured on 2 cores, the 32 → 64 channel layer of
``bench/cnn.py``: forward 8.9 → 7.0 ms and backward 27 → 18 ms, against one thread's copies
with BLAS's two threads for the products.)
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, fields

import numpy as np

from chainrule import kernels
from chainrule.ops.conv_geometry import ConvGeometry, conv_geometry, window

#: Largest size in bytes of one chunk's im2col matrix and output (per thread). With the chunks on
#: chainrule's threads, the 32 → 64 channel layer of bench/cnn.py ran its forward in 9.3, 7.8,
#: 7.3 and 7.0 ms with chunks of 2, 4, 8 and 16 MB (2 cores); with BLAS's threads per product
#: (before), 16 MB was also what a busy machine needed (each product could wait milliseconds
#: for OpenBLAS's worker thread).
CHUNK_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Im2colGeometry(ConvGeometry):
    """A convolution's geometry with im2col's layout: rows and chunks of the batch."""

    #: Whether output rows are computed over the whole padded width (see the module docstring).
    wide: bool
    #: Output columns computed per row: the padded width when ``wide``, else out_width.
    row: int
    #: Samples per chunk of the batch.
    chunk: int

    @property
    def positions(self) -> int:
        """Columns of the im2col matrix per sample: OH · row."""
        return self.out_height * self.row

    def chunks(self):
        """(start, stop) of each chunk of the batch."""
        for start in range(0, self.batch, self.chunk):
            yield start, min(start + self.chunk, self.batch)


def im2col_geometry(geom: ConvGeometry, itemsize: int, wide: bool = True,
                    parts: int = 1) -> Im2colGeometry:
    """``geom`` laid out for im2col: wide rows where possible (``wide=False`` asks for exact
    rows), and chunks of at most :data:`CHUNK_BYTES` of columns and output, at least ``parts``
    of them where the batch has that many samples (one or more per thread)."""
    wide = wide and geom.stride == (1, 1) and geom.out_width < geom.padded[1]
    row = geom.padded[1] if wide else geom.out_width
    per_sample = (geom.patch + geom.filters) * geom.out_height * row * itemsize
    n = geom.batch
    count = -(-n // max(1, CHUNK_BYTES // per_sample))  # chunks needed
    count = min(max(n, 1), -(-count // parts) * parts)  # a multiple of the threads, if it can
    chunk = -(-n // count) if n else 1  # then evened out
    sizes = {field.name: getattr(geom, field.name) for field in fields(ConvGeometry)}
    return Im2colGeometry(**sizes, wide=wide, row=row, chunk=chunk)


# -- im2col and col2im ---------------------------------------------------------------------------


class _Unfolder:
    """Builds the im2col matrix of one chunk of the batch at a time, reusing its buffers.

    The chunk is first copied into a zero-padded buffer of shape (C, chunk, Hp (+1), Wp); the
    windows are then copied out of it, one kernel offset at a time, into the columns.
    """

    def __init__(self, geom: Im2colGeometry, dtype):
        self.geom = geom
        hp, wp = geom.padded
        # wide rows read up to kw − 1 elements past the last padded row: one spare row of zeros
        self.padded = np.zeros((geom.channels, geom.chunk, hp + geom.wide, wp), dtype=dtype)
        self.columns = np.empty((geom.channels, *geom.kernel, geom.chunk, geom.positions),
                                dtype=dtype)

    def __call__(self, x_cn, start: int, stop: int):
        """The (C·kh·kw, m·positions) im2col matrix of samples start..stop of ``x_cn``.

        ``x_cn`` is the input viewed as (C, N, H, W).
        """
        geom, m = self.geom, stop - start
        (top, _), (left, _) = geom.padding
        padded = self.padded[:, :m]
        padded[:, :, top:top + geom.height, left:left + geom.width] = x_cn[:, start:stop]
        columns = self.columns[:, :, :, :m]
        if geom.wide:
            flat = padded.reshape(geom.channels, m, -1)
            length = geom.positions
            for i, j, di, dj in geom.offsets():
                first = di * geom.row + dj
                columns[:, i, j] = flat[:, :, first:first + length]
        else:
            shaped = columns.reshape(geom.channels, *geom.kernel, m, geom.out_height,
                                     geom.out_width)
            for i, j, di, dj in geom.offsets():
                shaped[:, i, j] = padded[:, :, window(di, geom.out_height, geom.stride[0]),
                                         window(dj, geom.out_width, geom.stride[1])]
        return self.columns.reshape(geom.patch, -1)[:, : m * geom.positions]


class _Folder:
    """col2im for one chunk of a strided convolution: adds each column of ∂L/∂cols back onto the
    input pixels its window covered (overlapping windows add up)."""

    def __init__(self, geom: Im2colGeometry, dtype):
        self.geom = geom
        self.padded = np.empty((geom.channels, geom.chunk, *geom.padded), dtype=dtype)

    def __call__(self, grad_columns, gx_cn, start: int, stop: int) -> None:
        """Fold ``grad_columns`` (C·kh·kw, m·positions) into ``gx_cn[:, start:stop]``."""
        geom, m = self.geom, stop - start
        padded = self.padded[:, :m]
        padded[...] = 0
        columns = grad_columns.reshape(geom.channels, *geom.kernel, m, geom.out_height,
                                       geom.out_width)
        for i, j, di, dj in geom.offsets():
            padded[:, :, window(di, geom.out_height, geom.stride[0]),
                   window(dj, geom.out_width, geom.stride[1])] += columns[:, i, j]
        (top, _), (left, _) = geom.padding
        gx_cn[:, start:stop] = padded[:, :, top:top + geom.height, left:left + geom.width]


class _Worker:
    """One thread's buffers, made when first used and reused across the chunks it takes, and
    its running sum of the chunks' terms (``sum``, zeros of ``sum_shape`` to start from)."""

    def __init__(self, geom: Im2colGeometry, dtype, sum_shape=None):
        self.geom, self.dtype = geom, dtype
        self.sum = None if sum_shape is None else np.zeros(sum_shape, dtype)

    @functools.cached_property
    def unfold(self) -> _Unfolder:
        return _Unfolder(self.geom, self.dtype)

    @functools.cached_property
    def fold(self) -> _Folder:
        return _Folder(self.geom, self.dtype)

    @functools.cached_property
    def product(self):
        """(F, chunk·positions): a chunk's output on wide rows."""
        return np.empty((self.geom.filters, self.geom.chunk * self.geom.positions), self.dtype)

    @functools.cached_property
    def zero_rows(self):
        """(F, chunk, OH, row) zeros: an output-shaped array on wide rows, whose extra columns
        stay 0 (the chunks write only the first out_width of each row)."""
        geom = self.geom
        return np.zeros((geom.filters, geom.chunk, geom.out_height, geom.row), self.dtype)


def over_chunks(geom: Im2colGeometry, dtype, each_chunk, sum_shape=None) -> list[_Worker]:
    """Runs ``each_chunk(worker, start, stop)`` for every chunk of the batch, the chunks dealt
    out to chainrule's threads (:func:`chainrule.kernels.deal_out`), each with its own
    :class:`_Worker`. Returns the workers, at least one: with ``sum_shape``, the sum of their
    ``sum`` is zeros for an empty batch."""
    return kernels.deal_out(list(geom.chunks()), lambda: _Worker(geom, dtype, sum_shape),
                            each_chunk)


def correlate(x_cn, kernel, geom: Im2colGeometry, bias=None, each_chunk=None, relu=False,
              sum_shape=None):
    """The convolution of ``x_cn`` (C, N, H, W) as an (F, N, OH, OW) array, chunk by chunk.

    ``kernel`` is the (F, C·kh·kw) weight matrix; ``bias`` an (F,) vector or None; ``relu``
    takes max(0, ·) of each chunk as soon as it is computed.
    ``each_chunk(worker, columns, start, stop)``, if given, also gets every chunk's im2col
    matrix, and the :class:`_Worker` of the thread that built it (with a running ``sum`` of
    ``sum_shape``). Returns (y, the workers).
    """
    dtype = kernel.dtype
    y = np.empty((geom.filters, geom.batch, geom.out_height, geom.out_width), dtype=dtype)
    bias = None if bias is None else bias.astype(dtype, copy=False).reshape(-1, 1, 1, 1)

    def chunk_of_output(worker, start, stop):
        columns = worker.unfold(x_cn, start, stop)
        if geom.wide:  # rows were computed over the padded width: keep the first out_width
            out = worker.product[:, : (stop - start) * geom.positions]
            np.matmul(kernel, columns, out=out)
            rows = out.reshape(geom.filters, stop - start, geom.out_height,
                               geom.row)[..., : geom.out_width]
            if bias is None:
                y[:, start:stop] = rows
            else:
                np.add(rows, bias, out=y[:, start:stop])
        else:
            out = y[:, start:stop].reshape(geom.filters, -1)
            np.matmul(kernel, columns, out=out)
            if bias is not None:
                out += bias.reshape(-1, 1)
        if relu:
            chunk = y[:, start:stop]
            np.maximum(chunk, 0, out=chunk)
        if each_chunk is not None:
            each_chunk(worker, columns, start, stop)

    return y, over_chunks(geom, dtype, chunk_of_output, sum_shape)


# -- the algorithm -------------------------------------------------------------------------------


def _threads_for(geom: ConvGeometry):
    """:func:`chainrule.kernels.own_threads` (held, as the other algorithms) for a batch of two
    samples or more, whose chunks the threads share; for one sample, BLAS's threads for its
    products (:func:`chainrule.kernels.blas_for`) and nothing to enter."""
    if geom.batch >= 2:
        return kernels.own_threads(work=geom.multiply_adds, hold=True)
    kernels.blas_for(geom.multiply_adds)
    return contextlib.nullcontext()


class Im2col:
    """Convolution by im2col and BLAS products: any stride, dilation and padding.

    Channel-major arrays in and out, as every algorithm of :mod:`chainrule.ops.nn_conv`:
    ``forward(x_cn, w, geom, bias, relu)`` → y_cn and ``backward(gy_cn, x_cn, w, geom,
    relu_output, need_x, need_w, need_b)`` → (gx_cn, gw, gb). The chunks of a batch run on
    chainrule's threads (see the module's docstring).
    """

    name = "im2col"

    def applies(self, geom: ConvGeometry) -> bool:
        """Every geometry."""
        return True

    def forward(self, x_cn, w, geom: ConvGeometry, bias=None, relu: bool = False):
        """Y = W @ im2col(x) + b, one product per chunk; ``relu`` takes max(0, ·) chunk by
        chunk while the output is in the cache."""
        dtype = np.result_type(x_cn.dtype, w.dtype)
        kernel = w.reshape(geom.filters, geom.patch).astype(dtype, copy=False)
        with _threads_for(geom):
            layout = im2col_geometry(geom, dtype.itemsize, parts=kernels.workers())
            return correlate(x_cn, kernel, layout, bias, relu=relu)[0]

    def backward(self, gy_cn, x_cn, w, geom: ConvGeometry, relu_output=None, need_x=True,
                 need_w=True, need_b=True):
        """(∂L/∂x, ∂L/∂W, ∂L/∂b), each None unless asked for; ∂L/∂b = Σ G and

        * stride 1: ∂L/∂x is the correlation of G, padded by the kernel's span, with the
          kernel flipped in space and its channel axes exchanged (the transposed convolution);
          the same im2col of G gives ∂L/∂W (:func:`transposed_correlation`);
        * with strides, or with at least twice as many filters as input channels
          (:func:`col2im_is_cheaper`): ∂L/∂x = col2im(Wᵀ @ G) and
          ∂L/∂W = Σ_chunks G @ im2col(x)ᵀ.

        With ``relu_output`` (a fused ReLU's y), G = ∂L/∂y ⊙ [y > 0].
        """
        dtype = np.result_type(x_cn.dtype, w.dtype)
        with _threads_for(geom):
            gy_cn, gb = masked_by_relu(gy_cn, relu_output, need_b, dtype)
            gx_cn = gw = None
            if need_x and geom.stride == (1, 1) and not col2im_is_cheaper(geom):
                gx_cn, gw = transposed_correlation(gy_cn, x_cn, w, geom, dtype, need_w)
            else:
                if need_x:
                    gx_cn = folded_input_gradient(gy_cn, w, geom, dtype)
                if need_w:
                    gw = kernel_gradient(gy_cn, x_cn, geom, dtype)
        return gx_cn, gw, gb


IM2COL = Im2col()


def col2im_is_cheaper(geom: ConvGeometry) -> bool:
    """Whether col2im computes a stride-1 input gradient faster than the transposed
    correlation: at least twice as many filters as input channels. The transposed correlation
    copies im2col(G), F·kh·kw rows; col2im adds back C·kh·kw rows and the kernel gradient
    copies as many of x. Measured forward+backward on 2 cores, NumPy kernels, batch 128, 3 × 3
    (transposed → col2im): 1 → 32 channels at 28 × 28 13.3 → 4.0 ms, 32 → 64 at 14 × 14
    15.9 → 13.6 ms; but 16 → 16 at 28 × 28 10.6 → 19.1 ms, 64 → 64 22.9 → 30.3 ms and
    64 → 32 12.3 → 26.5 ms."""
    return 2 * geom.channels <= geom.filters


def masked_by_relu(gy_cn, relu_output, need_b: bool, dtype):
    """(G, ∂L/∂b = Σ G per filter or None unless ``need_b``), with G = ∂L/∂y ⊙ [y > 0] read
    off a fused ReLU's output y (``gy_cn`` as it is where ``relu_output`` is None). Both are
    computed a block of the batch per thread."""
    masked = gy_cn if relu_output is None else np.empty(gy_cn.shape, dtype)

    def block(start, stop):
        rows = slice(start, stop)
        if relu_output is not None:
            np.multiply(gy_cn[:, rows], relu_output[:, rows] > 0, out=masked[:, rows])
        return masked[:, rows].sum(axis=(1, 2, 3), dtype=dtype) if need_b else None

    sums = kernels.run_blocks(gy_cn.shape[1], block)
    return masked, (kernels.summed(sums) if need_b else None)


def kernel_gradient(gy_cn, x_cn, geom: ConvGeometry, dtype):
    """∂L/∂W = Σ over chunks of G @ colsᵀ (each thread sums its chunks, then the threads' sums
    are added), computed as its transpose cols @ Gᵀ: OpenBLAS runs the (C·kh·kw, F) product
    faster from these layouts (the 32 → 64 layer of bench/cnn.py: 2.1 → 1.8 ms a chunk).

    Used where x needs no gradient (a first layer, with few channels), with strides, and where
    col2im computes the input gradient: exact rows let G be used in place (no wide copy).
    ``np.dot``, not ``@``: NumPy's matmul keeps the GIL for an output of fewer than 500
    numbers (a first layer's 32 × 9), so the threads' products ran one after the other.
    """
    geom = im2col_geometry(geom, dtype.itemsize, wide=False, parts=kernels.workers())

    def each_chunk(worker, start, stop):
        grad = gy_cn[:, start:stop].reshape(geom.filters, -1)
        worker.sum += np.dot(worker.unfold(x_cn, start, stop), grad.T)

    workers = over_chunks(geom, dtype, each_chunk, sum_shape=(geom.patch, geom.filters))
    gw = kernels.summed([worker.sum for worker in workers]).T
    return np.ascontiguousarray(gw).reshape(geom.filters, geom.channels, *geom.kernel)


def folded_input_gradient(gy_cn, w, geom: ConvGeometry, dtype):
    """∂L/∂x = col2im(Wᵀ @ G), chunk by chunk (any stride), as (C, N, H, W)."""
    geom = im2col_geometry(geom, dtype.itemsize, parts=kernels.workers())
    kernel_t = np.ascontiguousarray(w.reshape(geom.filters, geom.patch).T, dtype=dtype)
    gx_cn = np.empty((geom.channels, geom.batch, geom.height, geom.width), dtype=dtype)

    def each_chunk(worker, start, stop):
        grad = gy_cn[:, start:stop].reshape(geom.filters, -1)
        worker.fold(kernel_t @ grad, gx_cn, start, stop)

    over_chunks(geom, dtype, each_chunk)
    return gx_cn


def transposed_correlation(gy_cn, x_cn, w, geom: ConvGeometry, dtype, need_w: bool):
    """(∂L/∂x as (C, N, H, W), and ∂L/∂W if ``need_w``) for stride 1 from one im2col of G.

    G is padded by the kernel span minus the forward padding (a crop where the padding is
    wider) and correlated with the flipped kernel W'[c, f, i, j] = W[f, c, kh−1−i, kw−1−j].
    Its columns, ordered (f, i', j'), also give ∂L/∂W'ᵀ = im2col(G) @ xᵀ, with x laid out on
    the same wide rows (zeros in the extra columns); each thread sums its chunks' terms.
    """
    (kh, kw), (dh, dw) = geom.kernel, geom.dilation
    spans = ((kh - 1) * dh, (kw - 1) * dw)
    pads, crops = [], []
    for axis in range(2):
        need = [spans[axis] - p for p in geom.padding[axis]]
        pads.append(tuple(max(n, 0) for n in need))
        crops.append(slice(max(-need[0], 0), gy_cn.shape[2 + axis] - max(-need[1], 0)))
    gy_cn = gy_cn[:, :, crops[0], crops[1]]
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, kh, kw)
    kernel = np.ascontiguousarray(flipped, dtype=dtype).reshape(geom.channels, -1)
    gy_shape = (gy_cn.shape[1], gy_cn.shape[0], *gy_cn.shape[2:])
    transposed = im2col_geometry(
        conv_geometry(gy_shape, flipped.shape, 1, tuple(pads), geom.dilation), dtype.itemsize,
        parts=kernels.workers())
    if not need_w:
        return correlate(gy_cn, kernel, transposed)[0], None

    def accumulate_kernel_gradient(worker, columns, start, stop):
        m = stop - start
        x_rows = worker.zero_rows  # x on the output's wide rows: zeros in the extra columns
        x_rows[:, :m, :, : geom.width] = x_cn[:, start:stop]
        rows = x_rows.reshape(geom.channels, -1)[:, : m * transposed.positions]
        worker.sum += np.dot(columns, rows.T)  # (F·kh·kw, C)

    gx_cn, workers = correlate(gy_cn, kernel, transposed, each_chunk=accumulate_kernel_gradient,
                               sum_shape=(kernel.shape[1], geom.channels))
    gw_flipped = kernels.summed([worker.sum for worker in workers])
    gw = gw_flipped.reshape(geom.filters, kh, kw, geom.channels)[:, ::-1, ::-1]
    return gx_cn, np.ascontiguousarray(gw.transpose(0, 3, 1, 2))
