"""Neural-network functions on Tensors: the stateless half of every layer and loss.

Layers (:mod:`chainrule.layers`) own weights and call these functions; they can also be used
directly, PyTorch-style::

    >>> import chainrule as cr
    >>> from chainrule import functional as F
    >>> x = cr.randn(2, 3, 8, 8)
    >>> w = cr.randn(4, 3, 3, 3, requires_grad=True)
    >>> y = F.max_pool2d(F.relu(F.conv2d(x, w, padding="same")), 2)
    >>> y.shape
    (2, 4, 4, 4)

Images are NCHW (batch, channels, height, width), kernels (filters, in_channels, kh, kw) and
dense kernels (in_features, units), as in the lectures. Numbers and arrays are accepted wherever
a Tensor is; they take the dtype of the main input.
"""

from __future__ import annotations

import numpy as np

from chainrule import backend
from chainrule._config import flags
from chainrule.ops import reduction as _reduction
from chainrule.ops import relu, sigmoid, tanh  # re-exported: F.<name> for every activation
from chainrule.ops._util import as_tensor, normalize_axis
from chainrule.ops.elementwise import astype, sqrt
from chainrule.ops.nn import (
    ELU,
    GELU,
    BatchNorm,
    Dropout,
    Embedding,
    Erf,
    LeakyReLU,
    Linear,
    LogSoftmax,
    PReLU,
    SigmoidCrossEntropy,
    Softmax,
    SoftmaxCrossEntropy,
    Softplus,
)
from chainrule.ops.nn_conv import Conv2d, conv_algorithm
from chainrule.ops.nn_pool import AvgPool2d, MaxPool2d
from chainrule.ops.shape import reshape
from chainrule.tensor import Tensor

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits", "conv2d", "conv_algorithm",
    "dropout", "elu", "embedding", "erf", "gelu", "leaky_relu", "linear", "log_softmax",
    "max_pool2d", "one_hot", "prelu", "relu", "sigmoid", "softmax", "softmax_cross_entropy",
    "softplus", "tanh",
]

# -- layers' kernels -----------------------------------------------------------------------------


def linear(x, kernel, bias=None, *, relu: bool = False) -> Tensor:
    """y = x @ kernel + bias, one fused op (y = max(0, x @ kernel + bias) with ``relu``).

    Args:
        x: input of shape (..., in_features); leading axes are batch axes.
        kernel: weights of shape (in_features, units).
        bias: optional (units,) vector.
        relu: apply ReLU inside the same op (one graph node, no extra pass over the output;
            what ``Dense(activation="relu")`` uses).

    >>> import chainrule as cr
    >>> linear(cr.ones(2, 3), cr.ones(3, 4), cr.zeros(4)).shape
    (2, 4)
    """
    x = as_tensor(x)
    kernel = as_tensor(kernel, x)
    if kernel.ndim != 2:
        raise ValueError(f"linear: kernel must be 2-D (in_features, units), got {kernel.shape}")
    if x.ndim == 0 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match kernel of shape {kernel.shape} "
            f"(last axis must be {kernel.shape[0]})"
        )
    if bias is None:
        return Linear(relu)(x, kernel)
    bias = as_tensor(bias, x)
    if bias.shape != (kernel.shape[1],):
        raise ValueError(f"linear: bias must have shape ({kernel.shape[1]},), got {bias.shape}")
    return Linear(relu)(x, kernel, bias)


def conv2d(x, kernel, bias=None, stride=1, padding=0, dilation=1, *, relu: bool = False,
           algorithm: str | None = None) -> Tensor:
    """2-D cross-correlation of NCHW input (what deep learning calls convolution).

    y[n, f, i, j] = b[f] + Σ_c Σ_{p,q} W[f, c, p, q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]

    Args:
        x: input (N, C, H, W).
        kernel: weights (filters, C, kh, kw).
        bias: optional (filters,) vector.
        stride: int or (sh, sw).
        padding: "valid" (none), "same" (output size ceil(H / sh): TensorFlow/Keras's rule,
            with the odd extra row/column at the bottom/right), an int, a pair (ph, pw) for
            both sides of each axis, or ((top, bottom), (left, right)).
        dilation: int or (dh, dw): spacing between kernel taps.
        relu: apply ReLU inside the same op, chunk by chunk while the output is in the cache
            (what ``Conv2D(activation="relu")`` uses).
        algorithm: "im2col", "winograd" or "direct" to compute it so wherever that applies
            (im2col elsewhere), "auto" for the rule; None (the default): the innermost
            ``with conv_algorithm(...)`` block's choice, else the rule.

    Output (N, filters, OH, OW), OH = ⌊(H + padding − dh·(kh − 1) − 1) / sh⌋ + 1. Computed as
    im2col + one matrix product per chunk of the batch, or, with the compiled kernels, by
    Winograd's F(2 × 2, 3 × 3) or direct sums where those are faster (the rule:
    :func:`chainrule.ops.nn_conv.algorithm_for`); first-order gradients only. The result is a
    channel-major view (memory order C, N, H, W).
    """
    x = as_tensor(x)
    kernel = as_tensor(kernel, x)
    if x.dtype.kind not in "fc":
        x = Tensor(x.data.astype(kernel.dtype))
    op = Conv2d(stride, padding, dilation, relu, algorithm)
    if bias is None:
        return op(x, kernel)
    bias = as_tensor(bias, x)
    if kernel.ndim == 4 and bias.shape != (kernel.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({kernel.shape[0]},) for kernel "
                         f"{kernel.shape}, got {bias.shape}")
    return op(x, kernel, bias)


def max_pool2d(x, pool_size=2, strides=None, padding="valid") -> Tensor:
    """Max over each pool_size window of NCHW input.

    Args:
        pool_size: int or (kh, kw).
        strides: int or pair; default ``pool_size`` (as Keras).
        padding: "valid", "same" (pads with −∞; output ceil(H / stride)), or an int or pair of
            at most half the pool size (PyTorch's ``padding``).

    The gradient goes to the first maximum of each window (row-major), as in PyTorch.
    """
    x = as_tensor(x)
    track = flags.grad_enabled and x.requires_grad
    return MaxPool2d(pool_size, strides, padding, track)(x)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid") -> Tensor:
    """Mean over each pool_size window of NCHW input (arguments as :func:`max_pool2d`).

    Padding is never counted: a window that overlaps the border averages its input elements
    only, as Keras does for "same" (PyTorch: ``count_include_pad=False``).
    """
    return AvgPool2d(pool_size, strides, padding)(as_tensor(x))


# -- activations ---------------------------------------------------------------------------------


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """y = x for x > 0, negative_slope·x otherwise."""
    return LeakyReLU(float(negative_slope))(as_tensor(x))


def prelu(x, alpha) -> Tensor:
    """Parametric ReLU: y = x for x > 0, α·x otherwise, with a learned α.

    How α broadcasts (PyTorch's rule, extended to Keras's per-element α):

    * one element: shared by every input element;
    * a vector of length C with input of 2 or more dimensions: one slope per channel, the channel
      being axis 1 (features of (N, F) input, channels of NCHW input), as
      ``torch.nn.functional.prelu``;
    * otherwise α has the shape of one sample, ``x.shape[1:]``, with 1 on shared axes (Keras).
    """
    x = as_tensor(x)
    alpha = as_tensor(alpha, x)
    if alpha.size != 1:
        if alpha.ndim == 1 and x.ndim >= 2 and alpha.shape[0] == x.shape[1]:
            alpha = reshape(alpha, (1, alpha.shape[0]) + (1,) * (x.ndim - 2))
        elif alpha.ndim != x.ndim - 1 or any(
                a not in (1, s) for a, s in zip(alpha.shape, x.shape[1:])):
            raise ValueError(
                f"prelu: alpha of shape {alpha.shape} fits neither one per channel (axis 1) nor "
                f"per sample element for input of shape {x.shape}"
            )
    return PReLU()(x, alpha)


def elu(x, alpha: float = 1.0) -> Tensor:
    """y = x for x > 0, alpha·(eˣ − 1) otherwise."""
    return ELU(float(alpha))(as_tensor(x))


def softplus(x) -> Tensor:
    """y = log(1 + eˣ), computed as max(x, 0) + log1p(e^−|x|) (no overflow)."""
    return Softplus()(as_tensor(x))


def erf(x) -> Tensor:
    """The error function erf(x) = (2/√π) ∫₀ˣ e^(−t²) dt, elementwise (relative error < 1e-14)."""
    return Erf()(as_tensor(x))


def gelu(x, approximate=False) -> Tensor:
    """Gaussian error linear unit: y = x·Φ(x), Φ the standard normal CDF.

    Args:
        approximate: False (or "none") for the exact Φ(x) = ½(1 + erf(x/√2)); "tanh" (or True)
            for ½(1 + tanh(√(2/π)(x + 0.044715x³))), as PyTorch's ``approximate="tanh"``.
    """
    if approximate in (False, None, "none"):
        mode = "none"
    elif approximate in (True, "tanh"):
        mode = "tanh"
    else:
        raise ValueError(f"gelu: approximate must be False, 'none' or 'tanh', got {approximate!r}")
    return GELU(mode)(as_tensor(x))


def softmax(x, axis: int = -1) -> Tensor:
    """softmax(x)_i = e^(x_i) / Σ_j e^(x_j) along ``axis``, with the max subtracted first."""
    x = as_tensor(x)
    return Softmax(normalize_axis(axis, x.ndim)[0])(x)


def log_softmax(x, axis: int = -1) -> Tensor:
    """log softmax(x) = x − logsumexp(x) along ``axis``; finite for any finite logits."""
    x = as_tensor(x)
    return LogSoftmax(normalize_axis(axis, x.ndim)[0])(x)


# -- regularisation and normalisation ------------------------------------------------------------


def dropout(x, rate: float, training: bool = True, seed=None) -> Tensor:
    """Inverted dropout: keep each element with probability 1 − rate and scale it by 1/(1 − rate).

    The expected value is unchanged, so nothing needs rescaling at inference. The identity when
    ``training`` is False or ``rate`` is 0.

    Args:
        rate: probability of dropping an element, in [0, 1).
        seed: seed of a generator of its own for the mask; None draws from chainrule's
            generator (:func:`chainrule.manual_seed`).
    """
    rate = float(rate)
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    x = as_tensor(x)
    if not training or rate == 0:
        return x
    return Dropout(rate, seed)(x)


def batch_norm(x, gamma, beta, moving_mean, moving_variance, training: bool,
               momentum: float = 0.99, epsilon: float = 1e-3, axis: int = 1) -> Tensor:
    """Batch normalisation over every axis but ``axis`` (the features/channels).

    Training: y = γ (x − μ_B)/√(σ²_B + ε) + β with the batch mean μ_B and *biased* batch variance
    σ²_B (one fused op), and the moving statistics are updated in place, as in Keras::

        moving = moving · momentum + batch_statistic · (1 − momentum)

    (Keras's momentum is PyTorch's 1 − momentum; PyTorch also puts the unbiased variance into
    ``running_var``, Keras and chainrule the biased one.) Inference: the moving statistics
    replace the batch's.

    Args:
        x: input with at least 2 dimensions, e.g. (N, F) or NCHW.
        gamma, beta: (C,) scale and offset, or None to leave them out.
        moving_mean, moving_variance: (C,) Tensors updated in place in training (None: no
            update).
        training: use batch statistics (True) or the moving ones (False).
        axis: the feature axis: 1 (default: (N, F) and NCHW) or -1 (channels last).
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must have at least 2 dimensions, got {x.shape}")
    axis = normalize_axis(axis, x.ndim)[0]
    channels = x.shape[axis]
    gamma = None if gamma is None else as_tensor(gamma, x)
    beta = None if beta is None else as_tensor(beta, x)
    for name, t in (("gamma", gamma), ("beta", beta), ("moving_mean", moving_mean),
                    ("moving_variance", moving_variance)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(f"batch_norm: {name} must have shape ({channels},) for input of "
                             f"shape {x.shape} with axis={axis}, got {tuple(t.shape)}")
    if training:
        op = BatchNorm(axis, epsilon, gamma is not None, beta is not None,
                       (moving_mean, moving_variance), momentum)
        return op(x, *(t for t in (gamma, beta) if t is not None))
    if moving_mean is None or moving_variance is None:
        raise ValueError("batch_norm: inference (training=False) needs the moving statistics")
    # ops on the moving statistics' Tensors (not on their arrays): a traced evaluation step
    # reads the statistics of each call
    mean = astype(as_tensor(moving_mean, x), x.dtype)
    variance = astype(as_tensor(moving_variance, x), x.dtype)
    scale = 1 / sqrt(variance + epsilon)
    if gamma is not None:
        scale = scale * gamma
    shift = -(mean * scale)
    if beta is not None:
        shift = shift + beta
    shape = [1] * x.ndim
    shape[axis] = channels
    return x * reshape(scale, tuple(shape)) + reshape(shift, tuple(shape))


# -- lookup and encoding -------------------------------------------------------------------------


def embedding(ids, weights) -> Tensor:
    """Rows of ``weights`` (input_dim, output_dim) picked by integer ``ids`` of any shape.

    The result has shape ``ids.shape + (output_dim,)``; repeated ids accumulate gradient.
    """
    weights = as_tensor(weights)
    given, ids = ids, _integer_array(ids, "embedding", "ids")
    if weights.ndim != 2:
        raise ValueError(f"embedding: weights must be 2-D (input_dim, output_dim), "
                         f"got {weights.shape}")
    _check_range(ids, weights.shape[0], "embedding", f"ids for weights of shape {weights.shape}")
    return Embedding()(weights, _checked_tensor(given, ids))


def one_hot(labels, num_classes: int, dtype=None) -> Tensor:
    """One-hot encoding: out[..., k] = 1 where labels == k, else 0 (no gradient).

    Args:
        labels: integer class ids of any shape.
        num_classes: length of the new last axis.
        dtype: default: chainrule's default float dtype (float32), as Keras (PyTorch: int64).
    """
    labels = _integer_array(labels, "one_hot", "labels")
    _check_range(labels, num_classes, "one_hot", f"labels with num_classes={num_classes}")
    xp = backend.get_array_module(labels)
    out = xp.zeros(labels.shape + (num_classes,), dtype=dtype or flags.default_dtype)
    xp.put_along_axis(out, labels[..., None], 1, axis=-1)
    return Tensor(out)


def _integer_array(values, what: str, name: str):
    data = values.data if isinstance(values, Tensor) else values
    if backend.device_of(data) == "cpu":
        data = np.asarray(data)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{what}: {name} must be integers, got dtype {data.dtype} "
                        f"of shape {data.shape}")
    return data


def _checked_tensor(given, checked) -> Tensor:
    """``given`` itself when it is the Tensor whose array was checked, so that the op takes it
    as an input (a traced function then reads each call's ids or labels); else ``checked``
    (an array given, or one reshaped) in a new Tensor."""
    return given if isinstance(given, Tensor) and given.data is checked else Tensor(checked)


def _check_range(ids, size: int, what: str, context: str) -> None:
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise ValueError(
            f"{what}: values must be in [0, {size}); got min {int(ids.min())}, max "
            f"{int(ids.max())} ({context}, shape {ids.shape})"
        )


# -- losses --------------------------------------------------------------------------------------


def reduce_loss(values: Tensor, reduction: str, what: str) -> Tensor:
    """Apply ``reduction``: "mean" (of all values), "sum", or "none" (values as they are)."""
    if reduction == "mean":
        return _reduction.mean(values)
    if reduction == "sum":
        return _reduction.sum(values)
    if reduction == "none":
        return values
    raise ValueError(f"{what}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def softmax_cross_entropy(logits, labels, axis: int = -1, reduction: str = "mean") -> Tensor:
    """Cross-entropy of softmax(logits) with the labels, fused and stable (log-sum-exp).

    ℓ = −log softmax(logits)[label] for integer class ids (shape of logits without ``axis``),
    or ℓ = −Σ t · log softmax(logits) for one-hot or probability targets t (logits' shape).
    The gradient is (softmax − target) · upstream, e.g. (softmax − onehot)/N for the mean.

    Args:
        reduction: "mean" over the samples (as ``torch.nn.functional.cross_entropy``), "sum",
            or "none" (per-sample losses).

    >>> import chainrule as cr
    >>> softmax_cross_entropy(cr.zeros(2, 4), [1, 3]).item()  # log 4
    1.3862943649291992
    """
    logits = as_tensor(logits)
    if logits.ndim == 0:
        raise ValueError("softmax_cross_entropy: logits must have a class axis, got a scalar")
    axis = normalize_axis(axis, logits.ndim)[0]
    sample_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    data = labels.data if isinstance(labels, Tensor) else labels
    if backend.device_of(data) == "cpu":
        data = np.asarray(data)
    if data.dtype.kind in "iu":
        if data.shape != sample_shape and data.shape == sample_shape + (1,):
            data = data.reshape(sample_shape)  # Keras's (N, 1) labels
        if data.shape != sample_shape:
            raise ValueError(
                f"softmax_cross_entropy: integer labels must have shape {sample_shape} for "
                f"logits of shape {logits.shape} (axis {axis}), got {data.shape}"
            )
        _check_range(data, logits.shape[axis], "softmax_cross_entropy",
                     f"labels for logits of shape {logits.shape}")
        losses = SoftmaxCrossEntropy(axis, sparse=True)(logits, _checked_tensor(labels, data))
    else:
        target = as_tensor(labels, logits)
        if target.shape != logits.shape:
            raise ValueError(
                f"softmax_cross_entropy: target of shape {target.shape} must have the logits' "
                f"shape {logits.shape} (or be integer labels of shape {sample_shape})"
            )
        losses = SoftmaxCrossEntropy(axis)(logits, target)
    return reduce_loss(losses, reduction, "softmax_cross_entropy")


def binary_cross_entropy_with_logits(logits, targets, reduction: str = "mean") -> Tensor:
    """Elementwise ℓ = −t log σ(x) − (1 − t) log(1 − σ(x)) from logits x, stable for any x.

    Args:
        targets: values in [0, 1] of the logits' shape.
        reduction: "mean" over all elements (as PyTorch), "sum", or "none" (elementwise).
    """
    logits = as_tensor(logits)
    targets = as_tensor(targets, logits)
    if targets.shape != logits.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: targets of shape {targets.shape} must have the "
            f"logits' shape {logits.shape}"
        )
    losses = SigmoidCrossEntropy()(logits, targets)
    return reduce_loss(losses, reduction, "binary_cross_entropy_with_logits")

