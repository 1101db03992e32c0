"""Fused neural-network ops: linear layers, activations, softmax, losses, normalisation, lookup.

Every op here could be written from the primitives in :mod:`chainrule.ops`; it exists as one op
because that is faster (fewer temporaries and graph nodes) or numerically safer (log-sum-exp).
The tests compare each against its composite.

Two kinds of backward appear:

* written with Tensor ops (Linear, the elementwise activations, Softmax, LogSoftmax, Embedding):
  gradients of gradients work, as for the primitives;
* written with raw arrays for speed (BatchNorm, SoftmaxCrossEntropy): these set
  ``differentiable_backward = False`` and the engine refuses ``create_graph`` through them.
"""

from __future__ import annotations

import math

import numpy as np

from chainrule import backend, kernels
from chainrule._config import flags
from chainrule.autograd.function import Function, constant
from chainrule.ops.elementwise import exp, relu_gradient, sigmoid, tanh, where
from chainrule.ops.erf import erf_array
from chainrule.ops.linalg import matmul
from chainrule.ops.reduction import sum as reduce_sum
from chainrule.ops.shape import reshape
from chainrule.random import get_generator
from chainrule.tensor import Tensor

# -- linear --------------------------------------------------------------------------------------


class Linear(Function):
    """y = x @ W + b for x of shape (..., in), W (in, units), b (units,).

    Forward is one matrix product on x viewed as 2-D plus an in-place bias add. Backward:
    ∂L/∂x = G @ Wᵀ,  ∂L/∂W = x₂ᵀ @ G₂,  ∂L/∂b = Σ G₂ over rows, where x₂ and G₂ are x and
    the upstream gradient G viewed as (rows, features).

    An ordinary backward (no ``create_graph``) computes these on raw arrays: the same formulas
    without a graph node per product (a third of the engine's work at batch size 1). With
    ``create_graph`` they are written with Tensor ops, so gradients of gradients work.

    ``relu=True`` fuses y = max(0, x @ W + b) into the op (what ``Dense(activation="relu")``
    uses): the maximum is taken in place, while the output is still in the cache, and backward
    starts from G ⊙ [y > 0]. One graph node and one pass over the output fewer than Linear
    followed by ReLU.
    """

    saved_inputs = (0, 1)

    def __init__(self, relu: bool = False):
        self.relu = self.keeps_output = relu

    def forward(self, x, w, b=None):
        y = kernels.product(x.reshape(-1, x.shape[-1]), w)
        kernels.select(y).bias_and_relu(y, b, self.relu)  # one pass with the compiled kernels
        return y.reshape(x.shape[:-1] + (w.shape[1],))

    def backward(self, gy):
        if flags.grad_enabled:
            if self.relu:  # ∂max(0, z)/∂z = [z > 0] = [y > 0], a constant for higher orders
                gy = relu_gradient(gy, self.saved_output())
            return self._recorded_backward(gy)
        x, w = self.inputs[0], self.inputs[1]
        g2 = gy.data.reshape(-1, w.shape[1])
        need_b = len(self.inputs) == 3 and self.inputs[2].requires_grad
        gb = None
        if self.relu:  # G ⊙ [y > 0] and, in the same pass, its sum ∂L/∂b
            y2 = self.saved_output().reshape(g2.shape)
            g2, gb = kernels.select(g2, y2).relu_gradient_and_bias_sum(g2, y2, need_b)
        elif need_b:
            gb = g2.sum(axis=0)
        gx = gw = None
        if x.requires_grad:
            gx = constant(kernels.product(g2, w.data.T).reshape(x.shape))
        if w.requires_grad:
            gw = constant(kernel_gradient(x.data.reshape(-1, w.shape[0]), g2))
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, (constant(gb) if gb is not None else None)

    def _recorded_backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        g2 = reshape(gy, (-1, w.shape[1]))
        gx = reshape(matmul(g2, w.T), x.shape) if x.requires_grad else None
        gw = matmul(reshape(x, (-1, w.shape[0])).T, g2) if w.requires_grad else None
        if len(self.inputs) == 2:
            return gx, gw
        gb = reduce_sum(g2, axis=0) if self.inputs[2].requires_grad else None
        return gx, gw, gb


def kernel_gradient(x2, g2):
    """x₂ᵀ @ G₂, the (in, units) gradient of a dense kernel.

    With one row (batch size 1) this is an outer product, which ``np.matmul`` computes with a
    plain loop (inner dimension 1 is not handed to BLAS): ``np.dot`` is 5× faster there.
    """
    if x2.shape[0] == 1 and type(x2) is np.ndarray:
        return np.dot(x2.T, g2)
    return kernels.product(x2.T, g2)


# -- elementwise activations ---------------------------------------------------------------------


class LeakyReLU(Function):
    """y = x for x > 0, slope·x otherwise;  dy/dx = 1 or slope (slope at 0, as in PyTorch)."""

    saved_inputs = ()

    def __init__(self, slope: float):
        self.slope = slope

    def forward(self, x):
        self.positive = x > 0
        return backend.get_array_module(x).where(self.positive, x, x * self.slope)

    def backward(self, gy):
        factor = backend.get_array_module(gy.data).where(self.positive, 1, self.slope)
        return (gy * Tensor(factor.astype(gy.dtype, copy=False)),)


class PReLU(Function):
    """y = x for x > 0, α·x otherwise (α broadcasts against x).

    ∂y/∂x = 1 or α,  ∂y/∂α = min(x, 0).
    """

    def forward(self, x, alpha):
        self.positive = x > 0
        return backend.get_array_module(x).where(self.positive, x, x * alpha)

    def backward(self, gy):
        x, alpha = self.inputs
        positive = Tensor(self.positive)
        gx = where(positive, gy, gy * alpha) if x.requires_grad else None
        galpha = gy * where(positive, 0.0, x) if alpha.requires_grad else None
        return gx, galpha


class ELU(Function):
    """y = x for x > 0, α(eˣ − 1) otherwise;  dy/dx = 1 or α·eˣ = y + α."""

    keeps_output = True
    saved_inputs = ()

    def __init__(self, alpha: float):
        self.alpha = alpha

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.positive = x > 0
        negative = xp.minimum(x, 0)  # expm1 of the negative part only: no overflow
        xp.expm1(negative, out=negative)
        negative *= self.alpha
        return xp.where(self.positive, x, negative)

    def backward(self, gy):
        return (gy * where(Tensor(self.positive), 1.0, self.output() + self.alpha),)


class Softplus(Function):
    """y = log(1 + eˣ) = max(x, 0) + log1p(e^−|x|) (no overflow);  dy/dx = σ(x)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        y = xp.abs(x)
        xp.negative(y, out=y)
        xp.exp(y, out=y)
        xp.log1p(y, out=y)
        y += xp.maximum(x, 0)
        return y

    def backward(self, gy):
        return (gy * sigmoid(self.inputs[0]),)


class Erf(Function):
    """y = erf(x) = (2/√π) ∫₀ˣ e^(−t²) dt;  dy/dx = (2/√π) e^(−x²)."""

    def forward(self, x):
        return erf_array(x)

    def backward(self, gy):
        x = self.inputs[0]
        return (gy * (exp(-(x * x)) * (2 / math.sqrt(math.pi))),)


class GELU(Function):
    """y = x·Φ(x), Φ the standard normal CDF (Hendrycks & Gimpel, 2016).

    Exact: Φ(x) = ½(1 + erf(x/√2)), dy/dx = Φ(x) + x·φ(x) with φ(x) = e^(−x²/2)/√(2π).
    ``approximate="tanh"``: Φ(x) ≈ ½(1 + tanh(u)), u = √(2/π)(x + 0.044715x³), and
    dy/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²) with t = tanh(u).
    """

    def __init__(self, approximate: str):
        self.approximate = approximate

    def forward(self, x):
        xp = backend.get_array_module(x)
        if self.approximate == "tanh":
            inner = x * x
            inner *= _GELU_CUBIC
            inner += 1
            inner *= x
            inner *= _SQRT_2_OVER_PI
            cdf = xp.tanh(inner, out=inner)
        else:
            cdf = erf_array(x * (1 / math.sqrt(2)))
        cdf += 1
        cdf *= 0.5
        cdf *= x
        return cdf

    def backward(self, gy):
        x = self.inputs[0]
        if self.approximate == "tanh":
            x2 = x * x
            t = tanh(x * (x2 * _GELU_CUBIC + 1) * _SQRT_2_OVER_PI)
            du = (x2 * (3 * _GELU_CUBIC) + 1) * _SQRT_2_OVER_PI
            return (gy * ((t + 1) * 0.5 + x * (1 - t * t) * du * 0.5),)
        cdf = (Erf()(x * (1 / math.sqrt(2))) + 1) * 0.5
        pdf = exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
        return (gy * (cdf + x * pdf),)


_GELU_CUBIC = 0.044715
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


# -- softmax family ------------------------------------------------------------------------------


class Softmax(Function):
    """y = e^(x − max x) / Σ e^(x − max x) along ``axis``;  ∂L/∂x = y ⊙ (G − Σ G ⊙ y)."""

    keeps_output = True
    saved_inputs = ()

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        xp = backend.get_array_module(x)
        y = x - x.max(axis=self.axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        return y

    def backward(self, gy):
        y = self.output()
        gy_y = gy * y
        return (gy_y - y * reduce_sum(gy_y, axis=self.axis, keepdims=True),)


class LogSoftmax(Function):
    """y = x − max x − log Σ e^(x − max x) along ``axis``;  ∂L/∂x = G − softmax(x)·Σ G."""

    keeps_output = True
    saved_inputs = ()

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        return log_softmax_array(x, self.axis)

    def backward(self, gy):
        return (gy - exp(self.output()) * reduce_sum(gy, axis=self.axis, keepdims=True),)


def log_softmax_array(x, axis: int):
    """log softmax of an array along ``axis``, stable for any finite logits."""
    xp = backend.get_array_module(x)
    y = x - x.max(axis=axis, keepdims=True)
    y -= xp.log(xp.exp(y).sum(axis=axis, keepdims=True))
    return y


class SoftmaxCrossEntropy(Function):
    """Per-sample cross-entropy of softmax(logits) with a target, along ``axis``.

    Sparse (``sparse``: the target is integer classes):   ℓ = −log softmax(x)[label].
    Dense (target tensor t, one-hot or probabilities):   ℓ = −Σ t ⊙ log softmax(x).

    log softmax is computed with the max subtracted (log-sum-exp), so ±1e4 logits are fine.
    Backward: ∂ℓ/∂x = softmax(x)·Σt − t (= softmax − onehot for one-hot targets),
    ∂ℓ/∂t = −log softmax(x). First-order only (raw arrays).
    """

    saved_inputs = (1,)

    differentiable_backward = False

    def __init__(self, axis: int, sparse: bool = False):
        self.axis, self.sparse = axis, sparse

    def forward(self, logits, target):
        """``target``: integer labels (``sparse``) or a dense target. Both are inputs of the op,
        not constants of it, so a traced step reads each batch's labels."""
        self.log_probs = log_softmax_array(logits, self.axis)
        if self.sparse:
            self.labels = target
            return -self._at_labels(self.log_probs)
        return -(target * self.log_probs).sum(axis=self.axis)

    def _at_labels(self, values):
        """The entries of ``values`` at the labels, along ``axis``.

        For the usual (batch, classes) logits this is values[arange(n), labels], which is
        several times cheaper than ``take_along_axis`` at the sizes of a training step.
        """
        xp = backend.get_array_module(values)
        if values.ndim == 2 and self.axis in (1, -1):
            return values[xp.arange(values.shape[0]), self.labels]
        index = xp.expand_dims(self.labels, self.axis)
        return xp.take_along_axis(values, index, axis=self.axis).squeeze(self.axis)

    def _subtract_one_at_labels(self, values) -> None:
        xp = backend.get_array_module(values)
        if values.ndim == 2 and self.axis in (1, -1):
            values[xp.arange(values.shape[0]), self.labels] -= 1
            return
        index = xp.expand_dims(self.labels, self.axis)
        picked = xp.take_along_axis(values, index, axis=self.axis)
        xp.put_along_axis(values, index, picked - 1, axis=self.axis)

    def backward(self, gy):
        xp = backend.get_array_module(gy.data)
        g = xp.expand_dims(gy.data, self.axis)
        sparse = self.sparse
        target = None if sparse else self.inputs[1].data
        gx = gt = None
        if self.inputs[0].requires_grad:
            gx = xp.exp(self.log_probs)
            if sparse:
                self._subtract_one_at_labels(gx)
            else:
                gx *= target.sum(axis=self.axis, keepdims=True)
                gx -= target
            gx *= g
            gx = Tensor(gx)
        if not sparse and self.inputs[1].requires_grad:
            gt = Tensor(-self.log_probs * g)
        return gx, gt


class PickLast(Function):
    """y[...] = x[..., labels[...]]: the entry of the last axis that each integer label names.

    ∂L/∂x is zero but at the picked entries, where it is the upstream gradient. The labels are
    the second input (no gradient), so a traced step reads each batch's. First-order only.
    """

    saved_inputs = ()
    differentiable_backward = False

    def forward(self, values, labels):
        xp = backend.get_array_module(values)
        flat = values.reshape(-1, values.shape[-1])
        self.shape, self.rows, self.index = values.shape, xp.arange(flat.shape[0]), labels.ravel()
        return flat[self.rows, self.index].reshape(labels.shape)

    def backward(self, gy):
        xp = backend.get_array_module(gy.data)
        gx = xp.zeros((self.rows.size, self.shape[-1]), dtype=gy.data.dtype)
        gx[self.rows, self.index] = gy.data.ravel()
        return Tensor(gx.reshape(self.shape)), None


class SigmoidCrossEntropy(Function):
    """Elementwise ℓ = −t·log σ(x) − (1 − t)·log(1 − σ(x)) from logits x.

    Computed as max(x, 0) − x·t + log1p(e^−|x|), finite for any x.
    ∂ℓ/∂x = σ(x) − t,  ∂ℓ/∂t = −x (written with Tensor ops: differentiable again).
    """

    def forward(self, x, t):
        xp = backend.get_array_module(x)
        loss = xp.abs(x)
        xp.negative(loss, out=loss)
        xp.exp(loss, out=loss)
        xp.log1p(loss, out=loss)
        loss += xp.maximum(x, 0)
        loss -= x * t
        return loss

    def backward(self, gy):
        x, t = self.inputs
        gx = gy * (sigmoid(x) - t) if x.requires_grad else None
        gt = gy * -x if t.requires_grad else None
        return gx, gt


# -- batch normalisation -------------------------------------------------------------------------


class Dropout(Function):
    """Inverted dropout: y = x ⊙ m / (1 − p) with m_i ~ Bernoulli(1 − p);  ∂y/∂x = m / (1 − p).

    The mask is drawn inside forward, from chainrule's generator, or from a new generator of a
    seed: ``seed`` itself, or one that ``seed_source()`` gives on every forward (a seeded
    Dropout layer's next seed). So a replayed trace draws a fresh mask on every run, in the
    order define-by-run draws them: the same seed gives the same masks either way.
    """

    saved_inputs = ()
    pure = False

    def __init__(self, rate: float, seed=None, seed_source=None):
        self.rate, self.seed, self.seed_source = rate, seed, seed_source

    def forward(self, x):
        seed = self.seed if self.seed_source is None else self.seed_source()
        generator = np.random.default_rng(seed) if seed is not None else get_generator()
        draw_dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        keep = generator.random(x.shape, dtype=draw_dtype) >= self.rate
        mask = keep.astype(x.dtype)
        mask *= 1 / (1 - self.rate)
        self.mask = backend.to_device(mask, backend.device_of(x))
        return x * self.mask

    def backward(self, gy):
        return (gy * constant(self.mask),)


class BatchNorm(Function):
    """Batch normalisation with batch statistics (training mode), over every axis but ``axis``.

    x̂ = (x − μ) / σ with μ, σ² the batch mean and biased variance and σ = √(σ² + ε);
    y = γ x̂ + β. With m the number of values per channel, backward is

        ∂L/∂x = (γ/σ)/m · (m·G − Σ G − x̂ ⊙ Σ(G ⊙ x̂)),   ∂L/∂γ = Σ G ⊙ x̂,   ∂L/∂β = Σ G.

    The inputs are x and then γ and β when present (``has_gamma``, ``has_beta``). After forward
    the op holds ``mean`` and ``variance`` (biased). Given ``moving`` (the moving mean and
    variance, Tensors or arrays) and ``momentum``, forward also updates them in place, as Keras:

        moving ← momentum · moving + (1 − momentum) · batch statistic,

    so a replayed trace updates them on every run, as define-by-run does (the op is then not
    ``pure``). First-order only (raw arrays).
    """

    differentiable_backward = False

    def __init__(self, axis: int, epsilon: float, has_gamma: bool, has_beta: bool,
                 moving=(), momentum: float = 0.99):
        self.axis, self.epsilon = axis, epsilon
        self.has_gamma, self.has_beta = has_gamma, has_beta
        self.moving, self.momentum = tuple(moving), momentum
        self.pure = not any(m is not None for m in self.moving)

    def forward(self, x, *affine):
        xp = backend.get_array_module(x)
        self.axes = tuple(a for a in range(x.ndim) if a != self.axis)
        shape = [1] * x.ndim
        shape[self.axis] = x.shape[self.axis]
        self.stat_shape = tuple(shape)
        mean = x.mean(axis=self.axes, keepdims=True)
        xhat = x - mean
        variance = xp.square(xhat).mean(axis=self.axes, keepdims=True)
        self.inv_std = 1 / xp.sqrt(variance + self.epsilon)
        xhat *= self.inv_std
        self.xhat = xhat
        self.mean, self.variance = mean.reshape(-1), variance.reshape(-1)
        self._update_moving_statistics()
        affine = list(affine)
        gamma = affine.pop(0).reshape(self.stat_shape) if self.has_gamma else None
        beta = affine.pop(0).reshape(self.stat_shape) if self.has_beta else None
        if gamma is None:
            return xhat + beta if beta is not None else xhat.copy()
        y = xhat * gamma
        if beta is not None:
            y += beta
        return y

    def _update_moving_statistics(self) -> None:
        for moving, batch in zip(self.moving, (self.mean, self.variance)):
            if moving is not None:
                data = moving.data if isinstance(moving, Tensor) else moving
                data *= self.momentum
                data += (1 - self.momentum) * batch.astype(data.dtype, copy=False)

    def backward(self, gy):
        g = gy.data
        x = self.inputs[0]
        count = g.size // g.shape[self.axis]
        need_gamma = self.has_gamma and self.inputs[1].requires_grad
        g_beta = g.sum(axis=self.axes, keepdims=True)
        g_gamma = (g * self.xhat).sum(axis=self.axes, keepdims=True)
        gx = None
        if x.requires_grad:
            scale = self.inv_std
            if self.has_gamma:
                scale = scale * self.inputs[1].data.reshape(self.stat_shape)
            gx = self.xhat * (-g_gamma / count)
            gx += g
            gx -= g_beta / count
            gx *= scale
            gx = Tensor(gx)
        grads = [gx]
        if self.has_gamma:
            grads.append(Tensor(g_gamma.reshape(-1)) if need_gamma else None)
        if self.has_beta:
            beta = self.inputs[-1]
            grads.append(Tensor(g_beta.reshape(-1)) if beta.requires_grad else None)
        return tuple(grads)


# -- lookup --------------------------------------------------------------------------------------


class Embedding(Function):
    """y = W[ids]: the rows of the table W (rows, dim) picked by integer ``ids`` of any shape.

    Backward scatter-adds the upstream rows into a zero table (:class:`EmbeddingGrad`), adding
    up repeated ids; that is itself differentiable (its gradient is a lookup again).
    """

    saved_inputs = ()

    def forward(self, table, ids):
        """``ids`` is an input (an integer Tensor, no gradient), so a traced model reads each
        batch's ids."""
        self.ids, self.rows = ids, table.shape[0]
        return backend.get_array_module(table).take(table, ids, axis=0)

    def backward(self, gy):
        return EmbeddingGrad(self.ids, self.rows)(gy), None


class EmbeddingGrad(Function):
    """y = zeros(rows, dim) with y[ids[k]] += g[k] for every k (repeated ids add up)."""

    saved_inputs = ()

    def __init__(self, ids, rows: int):
        self.ids, self.rows = ids, rows

    def forward(self, g):
        return scatter_add_rows(self.ids.reshape(-1), g.reshape(-1, g.shape[-1]), self.rows)

    def backward(self, gy):
        return (Embedding()(gy, constant(self.ids)),)


def scatter_add_rows(ids, values, rows: int):
    """A (rows, dim) array whose row r is the sum of ``values[k]`` over every k with ids[k] = r.

    ``np.add.at`` does this but slowly. The ids are sorted instead; then

    * when no id repeats more than :data:`FEW_REPEATS` times (the usual case of a large
      vocabulary), pass p adds the p-th occurrence of every id, a fancy-indexed ``+=`` over
      distinct rows;
    * otherwise every run of equal ids is summed at once with ``np.add.reduceat``.
    """
    xp = backend.get_array_module(values)
    out = xp.zeros((rows, values.shape[1]), dtype=values.dtype)
    if ids.size == 0:
        return out
    if xp is not np:
        xp.add.at(out, ids, values)
        return out
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    counts = np.diff(np.r_[starts, ids.size])
    if counts.max() > FEW_REPEATS:
        out[sorted_ids[starts]] = np.add.reduceat(values[order], starts, axis=0)
        return out
    occurrence = np.arange(ids.size) - np.repeat(starts, counts)  # 0 for the first of a run
    for p in range(int(counts.max())):
        chosen = order[occurrence == p]
        out[ids[chosen]] += values[chosen]
    return out


#: Up to this many repeats of one id, :func:`scatter_add_rows` adds occurrence by occurrence.
FEW_REPEATS = 16
