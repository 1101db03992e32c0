"""2-D convolution over NCHW images: im2col and one large matrix product per chunk of the batch.

A convolution is a matrix product in disguise. Unfold every kh × kw window of the (padded)
input into a column ("im2col"), and the output for all positions at once is

    Y (F, positions) = W (F, C·kh·kw) @ cols (C·kh·kw, positions) + b,

with the gradients ∂L/∂W = G @ colsᵀ and ∂L/∂b = Σ G (G = ∂L/∂Y). The input gradient is the
*transposed* convolution: with stride 1 it is itself a convolution of G (padded by the kernel's
span) with the flipped kernel, computed the same way; with strides it is col2im(Wᵀ @ G), which
adds every column back onto the input pixels its window covered.

How the arrays are laid out decides the speed:

* the columns are ordered (C, kh, kw) × (N, OH, OW): every product is one BLAS call on
  contiguous matrices, and the output comes out as (F, N, OH, OW). It is returned as an NCHW
  *view* of that array (no transpose copy); NumPy's elementwise ops keep that memory order, so
  the next convolution reads its input channel by channel for free;
* the batch is processed in a few chunks (:data:`CHUNK_BYTES`); the columns are rebuilt in
  backward rather than stored (the whole im2col matrix of a CNN layer is tens of megabytes);
* with stride 1 the windows are read off the flattened padded image ("wide" rows): the window at
  offset (i, j) of all outputs of a row is one contiguous run of the padded plane, so im2col
  copies long runs instead of short rows. Each output row is computed over the whole padded
  width and the few extra columns are dropped. With strides the exact positions are gathered
  with strided slices instead.

The loops that remain are over the chunks and over the kh·kw kernel offsets (9 for 3 × 3), each
step moving a whole block of the batch.

im2col is the algorithm for every geometry. With the compiled kernels two others are faster
where they apply (:func:`algorithm_for`): Winograd's F(2 × 2, 3 × 3) for 3 × 3 stride-1 layers
with many channels (:mod:`chainrule.ops.nn_winograd`: 2.25× fewer multiplications), and direct
sums for inputs with few channels (:mod:`chainrule.ops.nn_conv_direct`), where im2col's product
would have an inner dimension of 9 or 27.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule import kernels
from chainrule.autograd.function import Function
from chainrule.ops import nn_conv_direct, nn_winograd
from chainrule.ops.elementwise import relu_gradient
from chainrule.tensor import Tensor

#: Largest size in bytes of one chunk's im2col matrix and output. Chunks of 2-4 MB are the
#: fastest on an idle machine (they stay in the cache), but every chunk is a multithreaded BLAS
#: call, and on a busy machine each call can wait milliseconds for OpenBLAS's worker thread:
#: 16 MB (a handful of chunks per layer) costs ~25% on an idle machine and is 3× faster on a
#: busy one (bench/conv.py).
CHUNK_BYTES = 16 * 2**20

#: How convolutions are computed: "auto" (the fastest that applies, see :func:`algorithm_for`),
#: or one of ALGORITHMS wherever it applies (the tests set each in turn).
ALGORITHM = "auto"
ALGORITHMS = ("im2col", "winograd", "direct")

#: Fewest input channels for which "auto" picks Winograd: its 16 products have C as their inner
#: dimension, and BLAS runs them slowly when it is small (a first layer with 1 or 3 channels).
WINOGRAD_MIN_CHANNELS = 16


# -- geometry ------------------------------------------------------------------------------------


def pair(value, what: str) -> tuple[int, int]:
    """``value`` (an int or a pair of ints) as a pair of ints ≥ 1."""
    if isinstance(value, (int, np.integer)):
        values = (int(value), int(value))
    else:
        values = tuple(int(v) for v in value)
        if len(values) != 2:
            raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    if min(values) < 1:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return values


def resolve_padding(padding, size: int, kernel: int, stride: int, dilation: int,
                    what: str) -> tuple[int, int]:
    """Padding (before, after) along one spatial axis.

    ``padding`` is "valid" (none), "same" (output size = ceil(size / stride); when the total is
    odd the extra row or column goes after, as in TensorFlow/Keras), an int, or a (before,
    after) pair.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0, 0
        if mode == "same":
            span = dilation * (kernel - 1) + 1
            out = -(-size // stride)
            total = max((out - 1) * stride + span - size, 0)
            return total // 2, total - total // 2
        raise ValueError(f"{what}: padding must be 'valid', 'same' or ints, got {padding!r}")
    if isinstance(padding, (int, np.integer)):
        before = after = int(padding)
    else:
        before, after = (int(p) for p in padding)
    if before < 0 or after < 0:
        raise ValueError(f"{what}: padding must not be negative, got {padding!r}")
    return before, after


def spatial_padding(padding, sizes, kernels, strides, dilations, what: str):
    """Padding ((top, bottom), (left, right)) from the forms :func:`conv2d` accepts.

    An int pads every side alike; a pair (ph, pw) pads top and bottom by ph and left and right by
    pw (PyTorch's meaning); a pair of pairs gives ((top, bottom), (left, right)) explicitly.
    """
    if isinstance(padding, (str, int, np.integer)):
        per_axis = (padding, padding)
    else:
        per_axis = tuple(padding)
        if len(per_axis) != 2:
            raise ValueError(f"{what}: padding must be an int, a pair or 'valid'/'same', "
                             f"got {padding!r}")
    return tuple(
        resolve_padding(p, sizes[axis], kernels[axis], strides[axis], dilations[axis], what)
        for axis, p in enumerate(per_axis)
    )


def output_size(size: int, kernel: int, stride: int, dilation: int, before: int,
                after: int) -> int:
    """Number of window positions: ⌊(size + padding − dilation·(kernel − 1) − 1) / stride⌋ + 1."""
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvGeometry:
    """Every size a convolution needs, worked out once from the shapes and arguments."""

    batch: int
    channels: int
    height: int
    width: int
    filters: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    out_height: int
    out_width: int
    #: Whether output rows are computed over the whole padded width (see the module docstring).
    wide: bool
    #: Output columns computed per row: the padded width when ``wide``, else out_width.
    row: int
    #: Samples per chunk of the batch.
    chunk: int

    @property
    def padded(self) -> tuple[int, int]:
        (top, bottom), (left, right) = self.padding
        return self.height + top + bottom, self.width + left + right

    @property
    def patch(self) -> int:
        """Rows of the im2col matrix: C·kh·kw."""
        return self.channels * self.kernel[0] * self.kernel[1]

    @property
    def positions(self) -> int:
        """Columns of the im2col matrix per sample: OH · row."""
        return self.out_height * self.row

    def chunks(self):
        """(start, stop) of each chunk of the batch."""
        for start in range(0, self.batch, self.chunk):
            yield start, min(start + self.chunk, self.batch)

    def offsets(self):
        """The kernel offsets (i, j) and where their windows start in the padded input."""
        (dh, dw) = self.dilation
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                yield i, j, i * dh, j * dw


def conv_geometry(x_shape, w_shape, stride, padding, dilation, itemsize=4,
                  wide=True) -> ConvGeometry:
    """Check the shapes of a 2-D convolution and work out its geometry.

    ``wide=False`` asks for exact rows even where wide rows are possible.
    """
    if len(x_shape) != 4:
        raise ValueError(f"conv2d: input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(
            f"conv2d: kernel must be 4-D (filters, in_channels, kh, kw), got shape {tuple(w_shape)}"
        )
    n, c, h, w = x_shape
    f, kc, kh, kw = w_shape
    if kc != c:
        raise ValueError(
            f"conv2d: input has {c} channels but the kernel expects {kc} "
            f"(input {tuple(x_shape)}, kernel {tuple(w_shape)})"
        )
    stride = pair(stride, "conv2d: stride")
    dilation = pair(dilation, "conv2d: dilation")
    pads = spatial_padding(padding, (h, w), (kh, kw), stride, dilation, "conv2d")
    out_h = output_size(h, kh, stride[0], dilation[0], *pads[0])
    out_w = output_size(w, kw, stride[1], dilation[1], *pads[1])
    if out_h < 1 or out_w < 1:
        span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
        padded = (h + sum(pads[0]), w + sum(pads[1]))
        raise ValueError(
            f"conv2d: kernel {(kh, kw)} (spanning {span} with dilation {dilation}) is larger than "
            f"the padded input {padded} (input {tuple(x_shape)}, kernel {tuple(w_shape)}, "
            f"padding {pads})"
        )
    wide = wide and stride == (1, 1) and out_w < w + sum(pads[1])
    row = w + sum(pads[1]) if wide else out_w
    per_sample = (c * kh * kw + f) * out_h * row * itemsize
    count = -(-n // max(1, CHUNK_BYTES // per_sample))  # chunks needed, then evened out
    chunk = -(-n // count) if n else 1
    return ConvGeometry(n, c, h, w, f, (kh, kw), stride, dilation, pads, out_h, out_w, wide, row,
                        chunk)


# -- im2col and col2im ---------------------------------------------------------------------------


class _Unfolder:
    """Builds the im2col matrix of one chunk of the batch at a time, reusing its buffers.

    The chunk is first copied into a zero-padded buffer of shape (C, chunk, Hp (+1), Wp); the
    windows are then copied out of it, one kernel offset at a time, into the columns.
    """

    def __init__(self, g: ConvGeometry, dtype):
        self.g = g
        hp, wp = g.padded
        # wide rows read up to kw − 1 elements past the last padded row: one spare row of zeros
        self.padded = np.zeros((g.channels, g.chunk, hp + g.wide, wp), dtype=dtype)
        self.columns = np.empty((g.channels, *g.kernel, g.chunk, g.positions), dtype=dtype)

    def __call__(self, x_cn, start: int, stop: int):
        """The (C·kh·kw, m·positions) im2col matrix of samples start..stop of ``x_cn``.

        ``x_cn`` is the input viewed as (C, N, H, W).
        """
        g, m = self.g, stop - start
        (top, _), (left, _) = g.padding
        padded = self.padded[:, :m]
        padded[:, :, top:top + g.height, left:left + g.width] = x_cn[:, start:stop]
        columns = self.columns[:, :, :, :m]
        if g.wide:
            flat = padded.reshape(g.channels, m, -1)
            length = g.positions
            for i, j, di, dj in g.offsets():
                first = di * g.row + dj
                columns[:, i, j] = flat[:, :, first:first + length]
        else:
            shaped = columns.reshape(g.channels, *g.kernel, m, g.out_height, g.out_width)
            for i, j, di, dj in g.offsets():
                shaped[:, i, j] = padded[:, :, _window(di, g.out_height, g.stride[0]),
                                         _window(dj, g.out_width, g.stride[1])]
        return self.columns.reshape(g.patch, -1)[:, : m * g.positions]


class _Folder:
    """col2im for one chunk of a strided convolution: adds each column of ∂L/∂cols back onto the
    input pixels its window covered (overlapping windows add up)."""

    def __init__(self, g: ConvGeometry, dtype):
        self.g = g
        self.padded = np.empty((g.channels, g.chunk, *g.padded), dtype=dtype)

    def __call__(self, grad_columns, gx_cn, start: int, stop: int) -> None:
        """Fold ``grad_columns`` (C·kh·kw, m·positions) into ``gx_cn[:, start:stop]``."""
        g, m = self.g, stop - start
        padded = self.padded[:, :m]
        padded[...] = 0
        columns = grad_columns.reshape(g.channels, *g.kernel, m, g.out_height, g.out_width)
        for i, j, di, dj in g.offsets():
            padded[:, :, _window(di, g.out_height, g.stride[0]),
                   _window(dj, g.out_width, g.stride[1])] += columns[:, i, j]
        (top, _), (left, _) = g.padding
        gx_cn[:, start:stop] = padded[:, :, top:top + g.height, left:left + g.width]


def _window(first: int, count: int, stride: int) -> slice:
    """The input rows (or columns) that kernel offset ``first`` meets at the ``count`` outputs."""
    return slice(first, first + stride * (count - 1) + 1, stride)


def channels_first(a):
    """An (N, C, ...) array viewed as (C, N, ...): free when it was made channel-major."""
    return a.swapaxes(0, 1)


# -- the op --------------------------------------------------------------------------------------


def algorithm_for(g: ConvGeometry, x) -> str:
    """How to compute the convolution of geometry ``g`` on ``x``: "im2col", "winograd" or
    "direct".

    With the compiled kernels, "auto" picks, for 3 × 3 stride-1 kernels without dilation,

    * direct sums where C·kh·kw ≤ 27 (:mod:`chainrule.ops.nn_conv_direct`),
    * Winograd with at least :data:`WINOGRAD_MIN_CHANNELS` input channels
      (:mod:`chainrule.ops.nn_winograd`),

    and im2col for everything else; with the NumPy kernels always im2col (the other two are
    slower than its copies and products there). A forced choice that does not apply to the
    geometry falls back to im2col.
    """
    if ALGORITHM != "auto" and ALGORITHM not in ALGORITHMS:
        raise ValueError(f"conv2d: ALGORITHM must be 'auto' or one of {ALGORITHMS}, "
                         f"got {ALGORITHM!r}")
    fits = {"direct": nn_conv_direct.applies(g), "winograd": nn_winograd.applies(g)}
    if ALGORITHM != "auto":
        return ALGORITHM if fits.get(ALGORITHM) else "im2col"
    if kernels.select(x) is kernels.reference:
        return "im2col"
    if nn_conv_direct.preferred(g):
        return "direct"
    if fits["winograd"] and g.channels >= WINOGRAD_MIN_CHANNELS:
        return "winograd"
    return "im2col"


def correlate(x_cn, kernel, g: ConvGeometry, bias=None, each_chunk=None, relu=False):
    """The convolution of ``x_cn`` (C, N, H, W) as an (F, N, OH, OW) array, chunk by chunk.

    ``kernel`` is the (F, C·kh·kw) weight matrix; ``bias`` an (F,) vector or None; ``relu``
    takes max(0, ·) of each chunk as soon as it is computed.
    ``each_chunk(columns, start, stop)``, if given, also gets every chunk's im2col matrix.
    """
    dtype = kernel.dtype
    y = np.empty((g.filters, g.batch, g.out_height, g.out_width), dtype=dtype)
    unfold = _Unfolder(g, dtype)
    bias = None if bias is None else bias.astype(dtype, copy=False).reshape(-1, 1, 1, 1)
    if g.wide:
        product = np.empty((g.filters, g.chunk * g.positions), dtype=dtype)
    for start, stop in g.chunks():
        columns = unfold(x_cn, start, stop)
        if g.wide:  # rows were computed over the padded width: keep the first out_width
            out = product[:, : (stop - start) * g.positions]
            np.matmul(kernel, columns, out=out)
            rows = out.reshape(g.filters, stop - start, g.out_height, g.row)[..., : g.out_width]
            if bias is None:
                y[:, start:stop] = rows
            else:
                np.add(rows, bias, out=y[:, start:stop])
        else:
            out = y[:, start:stop].reshape(g.filters, -1)
            np.matmul(kernel, columns, out=out)
            if bias is not None:
                out += bias.reshape(-1, 1)
        if relu:
            chunk = y[:, start:stop]
            np.maximum(chunk, 0, out=chunk)
        if each_chunk is not None:
            each_chunk(columns, start, stop)
    return y


class Conv2d(Function):
    """y[n, f] = Σ_c W[f, c] ⋆ x[n, c] + b[f]: 2-D cross-correlation of NCHW input.

    Forward:  Y = W @ im2col(x) + b, one matrix product per chunk of the batch, unless
    :func:`algorithm_for` picks Winograd's F(2 × 2, 3 × 3) (forward and backward in
    :mod:`chainrule.ops.nn_winograd`) or direct sums (:mod:`chainrule.ops.nn_conv_direct`:
    the kernel gradient of a first layer in one pass over G; an input gradient, where one is
    needed, comes from im2col as below).
    Backward by im2col: ∂L/∂b = Σ G, and

    * stride 1: ∂L/∂x is the correlation of G, padded by the kernel's span, with the kernel
      flipped in space and its channel axes exchanged (the transposed convolution); the same
      im2col of G gives ∂L/∂W = x @ im2col(G)ᵀ. Two products with K = F·kh·kw, which BLAS runs
      much faster than Wᵀ @ G with K = F;
    * with strides: ∂L/∂W = Σ_chunks G @ im2col(x)ᵀ and ∂L/∂x = col2im(Wᵀ @ G).

    ``relu=True`` fuses y = max(0, conv + b): the maximum is taken chunk by chunk while the
    output is in the cache, and backward starts from G ⊙ [y > 0].

    The backward pass uses raw arrays (first-order only).
    """

    saved_inputs = (0, 1)

    differentiable_backward = False

    def __init__(self, stride, padding, dilation, relu: bool = False):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.relu = self.keeps_output = relu

    def forward(self, x, w, b=None):
        dtype = self.dtype = np.result_type(x.dtype, w.dtype)
        g = self.geometry = conv_geometry(x.shape, w.shape, self.stride, self.padding,
                                          self.dilation, dtype.itemsize)
        self.algorithm = algorithm_for(g, x)
        if self.algorithm != "im2col":
            module = nn_winograd if self.algorithm == "winograd" else nn_conv_direct
            return channels_first(module.forward(channels_first(x), w, g, b, relu=self.relu))
        kernel = w.reshape(g.filters, g.patch).astype(dtype, copy=False)
        return channels_first(correlate(channels_first(x), kernel, g, b, relu=self.relu))

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        if self.algorithm == "direct" and not x.requires_grad:
            return self._direct_kernel_gradient(gy.data, x.data)
        if self.algorithm == "winograd":
            return self._winograd_backward(gy.data, x, w)
        if self.relu:  # first order only (differentiable_backward is False): raw arrays
            gy = relu_gradient(gy, self.saved_output())
        gy_cn = channels_first(gy.data)
        gx = gw = None
        if x.requires_grad and self.geometry.stride == (1, 1):
            gx, gw = self._transposed_correlation(gy_cn, x.data, w.data, w.requires_grad)
        else:
            if x.requires_grad:
                gx = self._folded_input_gradient(gy_cn, w.data)
            if w.requires_grad:
                gw = self._kernel_gradient(gy_cn, x.data)
        gb = gy_cn.sum(axis=(1, 2, 3), dtype=self.dtype) if self._needs_bias_gradient() else None
        return self._gradients(gx, gw, gb)

    def _needs_bias_gradient(self) -> bool:
        return len(self.inputs) == 3 and self.inputs[2].requires_grad

    def _gradients(self, gx, gw, gb):
        """The arrays (or None) as the Tensors backward returns, one per input."""
        grads = (gx, gw, gb)[: len(self.inputs)]
        return tuple(None if g is None else Tensor(g) for g in grads)

    def _winograd_backward(self, gy, x, w):
        """All gradients from the Winograd tiles of G (the ReLU's mask applied on the way)."""
        relu_output = channels_first(self.saved_output()) if self.relu else None
        gx, gw, gb = nn_winograd.backward(channels_first(gy), channels_first(x.data), w.data,
                                          self.geometry, x.requires_grad, w.requires_grad,
                                          relu_output, self._needs_bias_gradient())
        return self._gradients(None if gx is None else channels_first(gx), gw, gb)

    def _direct_kernel_gradient(self, gy, x):
        """(None, ∂L/∂W, ∂L/∂b) in one pass over G, the ReLU's mask applied on the way."""
        y = channels_first(self.saved_output()) if self.relu else None
        gw, gb = nn_conv_direct.kernel_gradient(channels_first(gy), channels_first(x), y,
                                                self.geometry, self.relu)
        return self._gradients(None, gw if self.inputs[1].requires_grad else None,
                               gb if self._needs_bias_gradient() else None)

    def _kernel_gradient(self, gy_cn, x):
        """∂L/∂W = Σ over chunks of G @ colsᵀ.

        Used where x needs no gradient (a first layer, with few channels) or with strides: the
        columns are then small and exact rows let G be used in place (no wide copy of it).
        """
        g = self.geometry
        g = conv_geometry((g.batch, g.channels, g.height, g.width),
                          (g.filters, g.channels, *g.kernel), g.stride, g.padding, g.dilation,
                          self.dtype.itemsize, wide=False)
        unfold = _Unfolder(g, self.dtype)
        x_cn = channels_first(x)
        gw = np.zeros((g.filters, g.patch), dtype=self.dtype)
        for start, stop in g.chunks():
            gw += gy_cn[:, start:stop].reshape(g.filters, -1) @ unfold(x_cn, start, stop).T
        return gw.reshape(g.filters, g.channels, *g.kernel)

    def _folded_input_gradient(self, gy_cn, w):
        """∂L/∂x = col2im(Wᵀ @ G), chunk by chunk (any stride)."""
        g, dtype = self.geometry, self.dtype
        kernel_t = np.ascontiguousarray(w.reshape(g.filters, g.patch).T, dtype=dtype)
        fold = _Folder(g, dtype)
        gx = np.empty((g.batch, g.channels, g.height, g.width), dtype=dtype)
        for start, stop in g.chunks():
            grad = gy_cn[:, start:stop].reshape(g.filters, -1)
            fold(kernel_t @ grad, channels_first(gx), start, stop)
        return gx

    def _transposed_correlation(self, gy_cn, x, w, need_w: bool):
        """∂L/∂x (and ∂L/∂W if ``need_w``) for stride 1 from one im2col of G.

        G is padded by the kernel span minus the forward padding (a crop where the padding is
        wider) and correlated with the flipped kernel W'[c, f, i, j] = W[f, c, kh−1−i, kw−1−j].
        Its columns, ordered (f, i', j'), also give ∂L/∂W'ᵀ = im2col(G) @ xᵀ, with x laid out on
        the same wide rows (zeros in the extra columns).
        """
        g, dtype = self.geometry, self.dtype
        (kh, kw), (dh, dw) = g.kernel, g.dilation
        spans = ((kh - 1) * dh, (kw - 1) * dw)
        pads, crops = [], []
        for axis in range(2):
            need = [spans[axis] - p for p in g.padding[axis]]
            pads.append(tuple(max(n, 0) for n in need))
            crops.append(slice(max(-need[0], 0), gy_cn.shape[2 + axis] - max(-need[1], 0)))
        gy_cn = gy_cn[:, :, crops[0], crops[1]]
        flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, kh, kw)
        kernel = np.ascontiguousarray(flipped, dtype=dtype).reshape(g.channels, -1)
        gt = conv_geometry(channels_first(gy_cn).shape, flipped.shape, 1, tuple(pads),
                           g.dilation, dtype.itemsize)
        if not need_w:
            return channels_first(correlate(gy_cn, kernel, gt)), None

        x_cn = channels_first(x)
        x_rows = np.zeros((g.channels, gt.chunk, g.height, gt.row), dtype=dtype)
        gw_flipped = np.zeros((kernel.shape[1], g.channels), dtype=dtype)  # (F·kh·kw, C)

        def accumulate_kernel_gradient(columns, start, stop):
            m = stop - start
            x_rows[:, :m, :, : g.width] = x_cn[:, start:stop]
            gw_flipped[...] += columns @ x_rows.reshape(g.channels, -1)[:, : m * gt.positions].T

        gx_cn = correlate(gy_cn, kernel, gt, each_chunk=accumulate_kernel_gradient)
        gw = gw_flipped.reshape(g.filters, kh, kw, g.channels)[:, ::-1, ::-1].transpose(0, 3, 1, 2)
        return channels_first(gx_cn), np.ascontiguousarray(gw)


def conv2d(x: Tensor, w: Tensor, b: Tensor | None = None, stride=1, padding=0,
           dilation=1, relu: bool = False) -> Tensor:
    """The :class:`Conv2d` op on Tensors (arguments as in :func:`chainrule.functional.conv2d`)."""
    op = Conv2d(stride, padding, dilation, relu)
    return op(x, w) if b is None else op(x, w, b)
