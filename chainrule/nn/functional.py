"""PyTorch's ``torch.nn.functional`` names and signatures, over chainrule's functions.

``import chainrule.nn.functional as F`` serves code written for ``torch.nn.functional``: the
keyword names are PyTorch's (``dim``, ``p``, ``reduction``, ``kernel_size``, ``stride``), weights
have PyTorch's layout (``linear``'s weight is ``(out_features, in_features)``), and every function
calls the op that :mod:`chainrule.functional` and the Keras-style layers use: no gradient here is
derived a second time. Where a PyTorch default differs from chainrule's, PyTorch's applies here
(see ``docs/compat.md``).

>>> import chainrule as cr
>>> import chainrule.nn.functional as F
>>> x = cr.randn(4, 1, 28, 28)
>>> F.max_pool2d(F.relu(x), 2).shape
(4, 1, 14, 14)
"""

from __future__ import annotations

import numpy as np

from chainrule import functional as _F
from chainrule.ops import pad as _pad
from chainrule.ops import reduction as _reduction
from chainrule.ops import relu, sigmoid, tanh  # re-exported with PyTorch's names
from chainrule.ops._util import as_tensor
from chainrule.ops.shape import reshape
from chainrule.random import get_generator
from chainrule.tensor import Tensor

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv2d", "cross_entropy", "dropout", "dropout2d", "elu", "embedding", "flatten", "gelu",
    "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "one_hot",
    "relu", "sigmoid", "softmax", "softplus", "tanh",
]

# -- layers' kernels ------------------------------------------------------------------------------


def linear(input, weight, bias=None) -> Tensor:  # noqa: A002 - PyTorch's argument name
    """y = input @ weightᵀ + bias, with PyTorch's weight layout (out_features, in_features).

    One fused op (chainrule's ``linear``) on the transposed view of ``weight``.
    """
    weight = as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), "
                         f"got {weight.shape}")
    return _F.linear(input, weight.T, bias)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1) -> Tensor:
    """2-D cross-correlation of NCHW ``input`` with ``weight`` (out, in, kh, kw), as PyTorch.

    ``padding`` is an int, a pair, ``"valid"`` or ``"same"``; ``groups`` other than 1 is not
    supported.
    """
    if groups != 1:
        raise NotImplementedError(f"conv2d: groups={groups} is not supported (only groups=1)")
    return _F.conv2d(input, weight, bias, stride=stride, padding=padding, dilation=dilation)


def _pool_arguments(what, padding, dilation, ceil_mode):
    if dilation not in (1, (1, 1)):
        raise NotImplementedError(f"{what}: dilation={dilation} is not supported (only 1)")
    if ceil_mode:
        raise NotImplementedError(f"{what}: ceil_mode=True is not supported")
    if isinstance(padding, str):
        raise ValueError(f"{what}: padding must be an int or a pair, got {padding!r}")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """Max over each ``kernel_size`` window; ``stride`` defaults to ``kernel_size``.

    ``padding`` (at most half the kernel) pads with −∞, as PyTorch.
    """
    _pool_arguments("max_pool2d", padding, dilation, ceil_mode)
    if return_indices:
        raise NotImplementedError("max_pool2d: return_indices=True is not supported")
    return _F.max_pool2d(input, kernel_size, stride, padding)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,  # noqa: A002
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Mean over each ``kernel_size`` window; ``stride`` defaults to ``kernel_size``.

    With ``padding`` and PyTorch's default ``count_include_pad=True`` the zeros of the padding
    count in the mean (the input is zero-padded, then pooled); ``False`` averages the input
    elements of each window only (chainrule's own rule).
    """
    _pool_arguments("avg_pool2d", padding, 1, ceil_mode)
    if divisor_override is not None:
        raise NotImplementedError("avg_pool2d: divisor_override is not supported")
    pads = (padding, padding) if isinstance(padding, int) else tuple(padding)
    if count_include_pad and any(pads):
        x = as_tensor(input)
        widths = ((0, 0), (0, 0), (pads[0], pads[0]), (pads[1], pads[1]))
        return _F.avg_pool2d(_pad(x, widths), kernel_size, stride, 0)
    return _F.avg_pool2d(input, kernel_size, stride, padding)


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:  # noqa: A002
    """``input`` with the axes ``start_dim`` … ``end_dim`` merged into one (``torch.flatten``)."""
    x = as_tensor(input)
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for "
                         f"an input of shape {x.shape}")
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


# -- activations ----------------------------------------------------------------------------------


def _softmax_dim(dim, ndim: int) -> int:
    """PyTorch's choice when ``dim`` is not given: 0 for 0-, 1- and 3-D input, else 1."""
    if dim is not None:
        return dim
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, dtype=None) -> Tensor:  # noqa: A002
    """softmax along ``dim`` (give it: PyTorch's implicit choice is deprecated there too)."""
    x = as_tensor(input) if dtype is None else as_tensor(input).astype(dtype)
    return _F.softmax(x, axis=_softmax_dim(dim, x.ndim))


def log_softmax(input, dim=None, dtype=None) -> Tensor:  # noqa: A002
    """log softmax along ``dim``; finite for any finite input."""
    x = as_tensor(input) if dtype is None else as_tensor(input).astype(dtype)
    return _F.log_softmax(x, axis=_softmax_dim(dim, x.ndim))


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    return _F.leaky_relu(input, negative_slope)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    return _F.elu(input, alpha)


def gelu(input, approximate: str = "none") -> Tensor:  # noqa: A002
    """GELU; ``approximate="tanh"`` for the tanh approximation, as PyTorch."""
    return _F.gelu(input, approximate=approximate == "tanh")


def softplus(input) -> Tensor:  # noqa: A002
    return _F.softplus(input)


# -- regularisation and normalisation -------------------------------------------------------------


def dropout(input, p: float = 0.5, training: bool = True,  # noqa: A002
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1 − p).

    PyTorch's default ``training=True`` applies (a module passes ``self.training``); ``p=1``
    gives zeros, as PyTorch.
    """
    if training and p == 1:
        return as_tensor(input) * 0.0
    return _F.dropout(input, p, training=training)


def dropout2d(input, p: float = 0.5, training: bool = True,  # noqa: A002
              inplace: bool = False) -> Tensor:
    """Zero whole channels of NCHW (or CHW) input with probability ``p``; scale the rest."""
    x = as_tensor(input)
    p = float(p)
    if not 0 <= p <= 1:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected 3-D or 4-D input, got shape {x.shape}")
    mask_shape = x.shape[:-2] + (1, 1)
    draw_dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    keep = get_generator().random(mask_shape, dtype=draw_dtype) >= p
    mask = keep.astype(x.dtype) * (0.0 if p == 1 else 1 / (1 - p))
    return x * Tensor(mask.astype(x.dtype))


def batch_norm(input, running_mean, running_var, weight=None, bias=None,  # noqa: A002
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation with PyTorch's conventions, over every axis but 1.

    Training: the batch statistics normalise, and the running ones (when given) are updated as
    ``running = (1 − momentum) · running + momentum · batch`` with the *unbiased* batch variance
    in ``running_var``, as PyTorch. Otherwise the running statistics normalise.
    """
    x = as_tensor(input)
    if not training:
        return _F.batch_norm(x, weight, bias, running_mean, running_var, training=False,
                             epsilon=eps, axis=1)
    channels = x.shape[1]
    batch_mean = np.zeros(channels, dtype=np.float64)
    batch_var = np.zeros(channels, dtype=np.float64)
    # momentum 0: the op writes the batch statistics into the two scratch vectors
    y = _F.batch_norm(x, weight, bias, batch_mean, batch_var, training=True, momentum=0.0,
                      epsilon=eps, axis=1)
    count = x.data.size // channels
    if count <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input of shape {x.shape}")
    for running, batch in ((running_mean, batch_mean),
                           (running_var, batch_var * (count / (count - 1)))):
        if running is not None:
            data = running.data if isinstance(running, Tensor) else running
            data *= 1 - momentum
            data += momentum * batch.astype(data.dtype)
    return y


def embedding(input, weight, padding_idx=None) -> Tensor:  # noqa: A002
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by the integer ``input``."""
    if padding_idx is not None:
        raise NotImplementedError("embedding: padding_idx is not supported")
    return _F.embedding(input, weight)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """Integer class ids → int64 one-hot rows (``num_classes=-1``: the largest id + 1)."""
    ids = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if num_classes == -1:
        num_classes = int(ids.max()) + 1
    return _F.one_hot(ids, num_classes, dtype=np.int64)


# -- losses ---------------------------------------------------------------------------------------


def _reduce(values: Tensor, reduction: str, what: str, denominator=None) -> Tensor:
    if reduction == "mean" and denominator is not None:
        return _reduction.sum(values) / denominator
    return _F.reduce_loss(values, reduction, what)


def _targets(target, what: str) -> np.ndarray:
    data = target.data if isinstance(target, Tensor) else np.asarray(target)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{what}: target must hold integer class ids, got dtype {data.dtype}")
    return data


def nll_loss(input, target, weight=None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """ℓ_n = −w[y_n] · input[n, y_n]: the negative log-likelihood of log-probabilities.

    ``input`` is (N, C) or (N, C, d1, ...), ``target`` integer class ids of shape (N,) or
    (N, d1, ...). The mean divides by Σ w[y_n] over the targets that are not ``ignore_index``,
    as PyTorch.
    """
    x = as_tensor(input)
    labels = _targets(target, "nll_loss")
    if x.ndim < 2 or labels.shape != x.shape[:1] + x.shape[2:]:
        raise ValueError(f"nll_loss: target of shape {labels.shape} does not fit input of "
                         f"shape {x.shape} (expected {x.shape[:1] + x.shape[2:]})")
    keep = labels != ignore_index
    safe = np.where(keep, labels, 0)
    if np.any((safe < 0) | (safe >= x.shape[1])):
        raise IndexError(f"nll_loss: target ids must be in [0, {x.shape[1]}) "
                         f"(or ignore_index {ignore_index})")
    index = np.indices(safe.shape)
    picked = x[(index[0], safe, *index[1:])]
    scale = keep.astype(x.dtype)
    if weight is not None:
        w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
        scale = scale * np.asarray(w, dtype=x.dtype)[safe]
    losses = -picked * Tensor(scale) if weight is not None or not keep.all() else -picked
    return _reduce(losses, reduction, "nll_loss",
                   float(scale.sum()) if weight is not None or not keep.all() else None)


def cross_entropy(input, target, weight=None, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of ``softmax(input, dim=1)`` with class ids or class probabilities.

    The plain case (no weight, nothing ignored, no smoothing) is chainrule's fused softmax
    cross-entropy; otherwise ``nll_loss(log_softmax(input, 1), ...)``.
    """
    x = as_tensor(input)
    data = target.data if isinstance(target, Tensor) else np.asarray(target)
    integer = data.dtype.kind in "iu"
    if weight is None and label_smoothing == 0 and (not integer or not (data == ignore_index)
                                                    .any()):
        return _F.softmax_cross_entropy(x, target, axis=1, reduction=reduction)
    log_p = log_softmax(x, dim=1)
    if not integer:
        raise NotImplementedError("cross_entropy: weight, ignore_index and label_smoothing "
                                  "need integer class ids here")
    nll = nll_loss(log_p, data, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    smooth = -_reduction.mean(log_p, axis=1)
    keep = data != ignore_index
    if weight is not None:
        raise NotImplementedError("cross_entropy: label_smoothing with weight is not supported")
    smooth = smooth * Tensor(keep.astype(x.dtype))
    smooth = _reduce(smooth, reduction, "cross_entropy", float(keep.sum()))
    return nll * (1 - label_smoothing) + smooth * label_smoothing


def mse_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    """(input − target)², reduced by ``reduction`` ("mean" over all elements, "sum", "none")."""
    x = as_tensor(input)
    t = as_tensor(target, x)
    if t.shape != x.shape:
        raise ValueError(f"mse_loss: target of shape {t.shape} must have the input's shape "
                         f"{x.shape}")
    diff = x - t
    return _F.reduce_loss(diff * diff, reduction, "mse_loss")


def binary_cross_entropy_with_logits(input, target,  # noqa: A002
                                     reduction: str = "mean") -> Tensor:
    """−t log σ(x) − (1 − t) log(1 − σ(x)), stable for any logit x."""
    return _F.binary_cross_entropy_with_logits(input, target, reduction=reduction)


def binary_cross_entropy(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    """−t log p − (1 − t) log(1 − p) of probabilities p, logs clamped at −100 as PyTorch."""
    p = as_tensor(input)
    t = as_tensor(target, p)
    log_p = _clamped_log(p)
    log_q = _clamped_log(1 - p)
    return _F.reduce_loss(-(t * log_p + (1 - t) * log_q), reduction, "binary_cross_entropy")


def _clamped_log(x: Tensor) -> Tensor:
    return x.clip(np.exp(-100.0), None).log()
