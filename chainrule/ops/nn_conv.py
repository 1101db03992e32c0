"""2-D convolution over NCHW images: the op, and the rule that picks how it is computed.

    y[n, f, p, q] = b[f] + Σ_{c,i,j} W[f, c, i, j] · x_pad[n, c, p·sh + i·dh, q·sw + j·dw]

Three interchangeable algorithms compute it, each in its own module, with one interface on
channel-major arrays: ``forward(x_cn, w, geom, bias, relu)`` → y_cn (F, N, OH, OW) and
``backward(gy_cn, x_cn, w, geom, relu_output, need_x, need_w, need_b)`` → (gx_cn, gw, gb),
plus ``applies(geom)``:

* im2col (:mod:`chainrule.ops.conv_im2col`): any geometry; one BLAS product per chunk;
* Winograd's F(2 × 2, 3 × 3) (:mod:`chainrule.ops.conv_winograd`): 3 × 3, stride 1, no
  dilation; 2.25× fewer multiplications;
* direct sums (:mod:`chainrule.ops.conv_direct`): stride 1, no dilation; for inputs with few
  channels, where im2col's product would have an inner dimension of 9 or 27.

Which one runs is :func:`algorithm_for`'s rule; ``conv2d(..., algorithm=...)`` or the block
``with conv_algorithm(...)`` overrides it. All three run on chainrule's threads
(:func:`chainrule.kernels.own_threads`, entered by the algorithm itself; im2col of a single
sample on BLAS's).
The geometry (padding, output sizes, windows) is :mod:`chainrule.ops.conv_geometry`'s.

The output is returned as an NCHW *view* of the channel-major (F, N, OH, OW) array (no
transpose copy); NumPy's elementwise ops keep that memory order, so the next convolution reads
its input channel by channel for free.
"""

from __future__ import annotations

import contextlib
import contextvars

from chainrule import kernels
from chainrule.autograd.function import Function
from chainrule.ops.conv_direct import DIRECT
from chainrule.ops.conv_geometry import ConvGeometry, conv_geometry
from chainrule.ops.conv_im2col import IM2COL
from chainrule.ops.conv_winograd import WINOGRAD
from chainrule.tensor import Tensor

#: The algorithms by name.
ALGORITHMS = {algorithm.name: algorithm for algorithm in (IM2COL, WINOGRAD, DIRECT)}

#: Fewest input channels for which "auto" picks Winograd: its 16 products have C as their inner
#: dimension, and BLAS runs them slowly when it is small (a first layer with 1 or 3 channels).
WINOGRAD_MIN_CHANNELS = 16

#: Largest C·kh·kw for which "auto" sums the taps directly (3 × 3 kernels on RGB images).
DIRECT_MAX_PATCH = 27

# The algorithm asked for by the innermost ``conv_algorithm`` block of this thread (or task).
_requested = contextvars.ContextVar("conv2d_algorithm", default="auto")


def checked_algorithm(name, what: str = "conv2d: algorithm") -> str:
    """``name`` if it is "auto" or one of :data:`ALGORITHMS`; else a ValueError naming
    ``what``."""
    if name != "auto" and name not in ALGORITHMS:
        raise ValueError(f"{what} must be 'auto' or one of {tuple(ALGORITHMS)}, got {name!r}")
    return name


@contextlib.contextmanager
def conv_algorithm(name: str):
    """Compute the convolutions inside the block by ``name`` ("auto", "im2col", "winograd" or
    "direct") wherever it applies; a per-call ``algorithm=`` still wins. Per thread (a
    context variable): another thread's convolutions keep their own choice.

    >>> import chainrule as cr
    >>> from chainrule import functional as F
    >>> with F.conv_algorithm("im2col"):
    ...     F.conv2d(cr.ones(1, 1, 4, 4), cr.ones(1, 1, 3, 3)).shape
    (1, 1, 2, 2)
    """
    token = _requested.set(checked_algorithm(name, "conv_algorithm"))
    try:
        yield
    finally:
        _requested.reset(token)


def algorithm_for(geom: ConvGeometry, x, requested: str | None = None):
    """The algorithm that computes the convolution of geometry ``geom`` on the array ``x``.

    ``requested`` (a per-call choice), else the innermost :func:`conv_algorithm` block, else
    "auto". A named algorithm runs wherever it applies, im2col elsewhere. "auto" picks, with
    the compiled kernels,

    * direct sums for 3 × 3 stride-1 kernels over at most :data:`DIRECT_MAX_PATCH` inputs
      (C·kh·kw: a first layer on grey or RGB images),
    * Winograd for 3 × 3 stride-1 kernels without dilation over at least
      :data:`WINOGRAD_MIN_CHANNELS` input channels,
    * im2col for everything else;

    with the NumPy kernels always im2col (the other two are slower than its copies and
    products there).
    """
    name = requested or _requested.get()
    if name != "auto":
        chosen = ALGORITHMS[name]
        return chosen if chosen.applies(geom) else IM2COL
    if kernels.select(x) is kernels.reference:
        return IM2COL
    three_by_three = geom.kernel == (3, 3)
    if three_by_three and DIRECT.applies(geom) and geom.patch <= DIRECT_MAX_PATCH:
        return DIRECT
    if WINOGRAD.applies(geom) and geom.channels >= WINOGRAD_MIN_CHANNELS:
        return WINOGRAD
    return IM2COL


def channels_first(a):
    """An (N, C, ...) array viewed as (C, N, ...): free when it was made channel-major (and
    back: it is its own inverse)."""
    return a.swapaxes(0, 1)


class Conv2d(Function):
    """y[n, f] = Σ_c W[f, c] ⋆ x[n, c] + b[f]: 2-D cross-correlation of NCHW input.

    Computed by the algorithm :func:`algorithm_for` picks (or ``algorithm``: a name, or None
    for the rule), which also computes the gradients. ``relu=True`` fuses
    y = max(0, conv + b): the maximum is taken while the output is in the cache, and backward
    starts from G ⊙ [y > 0]. The backward pass uses raw arrays (first-order only).
    """

    saved_inputs = (0, 1)

    differentiable_backward = False

    def __init__(self, stride, padding, dilation, relu: bool = False, algorithm=None):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.relu = self.keeps_output = relu
        self.requested = None if algorithm is None else checked_algorithm(algorithm)

    def forward(self, x, w, b=None):
        geom = self.geometry = conv_geometry(x.shape, w.shape, self.stride, self.padding,
                                             self.dilation)
        self.algorithm = algorithm_for(geom, x, self.requested)
        return channels_first(self.algorithm.forward(channels_first(x), w, geom, b, self.relu))

    def backward(self, gy):
        """With G = ∂L/∂y (times [y > 0] under a fused ReLU):

            ∂L/∂x = G ⋆ᵀ W: the transposed convolution, every G[n, f, p, q] sent back through
                    W[f] onto the pixels its window read;
            ∂L/∂W[f, c, i, j] = Σ_{n,p,q} G[n, f, p, q] · x_pad[n, c, p·sh + i·dh, q·sw + j·dw];
            ∂L/∂b[f] = Σ_{n,p,q} G[n, f, p, q].

        The algorithm that ran forward computes the three together (they share its passes
        over G), each only where asked for.
        """
        x, w = self.inputs[0], self.inputs[1]
        gx_cn, gw, gb = self.algorithm.backward(
            channels_first(gy.data), channels_first(x.data), w.data, self.geometry,
            self._relu_output(), need_x=x.requires_grad, need_w=w.requires_grad,
            need_b=len(self.inputs) == 3 and self.inputs[2].requires_grad)
        gx = None if gx_cn is None else channels_first(gx_cn)
        grads = (gx, gw, gb)[: len(self.inputs)]
        return tuple(None if grad is None else Tensor(grad) for grad in grads)

    def _relu_output(self):
        """The fused ReLU's output y, channel-major, whose mask [y > 0] the gradient passes
        through; None without a fused ReLU."""
        return channels_first(self.saved_output()) if self.relu else None


def conv2d(x: Tensor, w: Tensor, b: Tensor | None = None, stride=1, padding=0,
           dilation=1, relu: bool = False, algorithm: str | None = None) -> Tensor:
    """The :class:`Conv2d` op on Tensors (arguments as in :func:`chainrule.functional.conv2d`)."""
    op = Conv2d(stride, padding, dilation, relu, algorithm)
    return op(x, w) if b is None else op(x, w, b)
