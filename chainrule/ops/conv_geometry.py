"""Where the windows of a convolution or a pooling fall: padding, output sizes and offsets.

Along one spatial axis of ``size`` pixels, a kernel of ``kernel`` taps spaced ``dilation``
apart spans d·(k − 1) + 1 pixels; sliding it by ``stride`` over the input padded by
(before, after) zeros gives

    out = ⌊(size + before + after − d·(k − 1) − 1) / s⌋ + 1

window positions (:func:`output_size`). "same" padding picks the total that makes
out = ⌈size / s⌉, the odd extra zero after (TensorFlow's and Keras's rule), "valid" pads none.
The window of output p starts at input p·s (in padded coordinates), and its tap i reads
p·s + i·d: at tap i the windows of all outputs read one strided slice,
``window(i·d, out, s)``, which is how im2col, col2im and pooling move whole batches at a time.

One module for the convolution op and its algorithms (:mod:`chainrule.ops.nn_conv`), pooling
(:mod:`chainrule.ops.nn_pool`) and the convolution layers (:mod:`chainrule.layers.conv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    """Padding ((top, bottom), (left, right)) from the forms ``conv2d`` accepts.

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


def window(first: int, count: int, stride: int) -> slice:
    """The input rows (or columns) that the tap at ``first`` meets at the ``count`` outputs:
    first, first + s, ..., first + s·(count − 1)."""
    return slice(first, first + stride * (count - 1) + 1, stride)


# -- convolution ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of a 2-D convolution, worked out once from the shapes and arguments."""

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

    @property
    def padded(self) -> tuple[int, int]:
        (top, bottom), (left, right) = self.padding
        return self.height + top + bottom, self.width + left + right

    @property
    def patch(self) -> int:
        """Inputs to one output: C·kh·kw."""
        return self.channels * self.kernel[0] * self.kernel[1]

    @property
    def multiply_adds(self) -> int:
        """The work of the direct sum: N·OH·OW outputs per filter, F filters, C·kh·kw each."""
        return self.batch * self.out_height * self.out_width * self.filters * self.patch

    def offsets(self):
        """The kernel taps (i, j) and where their windows start in the padded input."""
        (dh, dw) = self.dilation
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                yield i, j, i * dh, j * dw


def conv_geometry(x_shape, w_shape, stride, padding, dilation) -> ConvGeometry:
    """Check the shapes of a 2-D convolution (NCHW input, (F, C, kh, kw) kernel) and work out
    its geometry; errors name ``conv2d`` and the shapes."""
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
    return ConvGeometry(n, c, h, w, f, (kh, kw), stride, dilation, pads, out_h, out_w)


# -- pooling -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolGeometry:
    """Sizes of a 2-D pooling, worked out once from the input shape and the arguments."""

    height: int
    width: int
    pool: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    out_height: int
    out_width: int

    @property
    def tiles(self) -> bool:
        """True when the windows tile the input exactly (the fast path)."""
        return (
            self.stride == self.pool
            and self.padding == ((0, 0), (0, 0))
            and self.height == self.out_height * self.pool[0]
            and self.width == self.out_width * self.pool[1]
        )

    def offsets(self):
        """Each window offset k = i·kw + j with the slices of the padded input it reads."""
        (sh, sw), (kh, kw) = self.stride, self.pool
        for i in range(kh):
            for j in range(kw):
                yield i * kw + j, window(i, self.out_height, sh), window(j, self.out_width, sw)


def pool_geometry(shape, pool_size, strides, padding, what: str) -> PoolGeometry:
    """Check a pooling's arguments against the input shape and work out its geometry."""
    if len(shape) != 4:
        raise ValueError(f"{what}: input must be 4-D (N, C, H, W), got shape {tuple(shape)}")
    pool = pair(pool_size, f"{what}: pool_size")
    stride = pool if strides is None else pair(strides, f"{what}: strides")
    h, w = shape[2], shape[3]
    pads = spatial_padding(padding, (h, w), pool, stride, (1, 1), what)
    if not isinstance(padding, str):
        for (before, after), k in zip(pads, pool):
            if max(before, after) > k // 2:
                raise ValueError(
                    f"{what}: padding {padding!r} must be at most half the pool size {pool} "
                    "(so that every window holds input elements)"
                )
    out_h = output_size(h, pool[0], stride[0], 1, *pads[0])
    out_w = output_size(w, pool[1], stride[1], 1, *pads[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"{what}: pool size {pool} is larger than the padded input "
            f"{(h + sum(pads[0]), w + sum(pads[1]))} (input shape {tuple(shape)})"
        )
    return PoolGeometry(h, w, pool, stride, pads, out_h, out_w)
