"""Gradient checking: the analytic gradient against central differences, as in the lectures.

For a function f and a random upstream gradient v, the analytic vector-Jacobian product
``(∂f/∂x)ᵀ v`` from backpropagation must match the numerical estimate, element by element::

    ∂(v·f)/∂x_j ≈ (v·f(x + ε e_j) − v·f(x − ε e_j)) / 2ε

Run it in float64: in float32 the rounding error of the differences swamps the check.
"""

from __future__ import annotations

import warnings

import numpy as np


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    return tuple(out) if isinstance(out, (list, tuple)) else (out,)


def _weighted_sum(fn, inputs, upstream) -> float:
    # Not under no_grad: fn may differentiate internally (gradients of gradients).
    outs = _outputs(fn, inputs)
    return float(sum(np.sum(np.asarray(o.data, dtype=np.float64) * v)
                     for o, v in zip(outs, upstream)))


def numerical_grad(fn, inputs, upstream, index: int, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of Σ upstream·fn(inputs) with respect to ``inputs[index]``."""
    x = inputs[index].data
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writing it perturbs the input in place
    if not np.shares_memory(flat, x):
        raise ValueError("gradcheck: inputs must be contiguous arrays")
    for j in range(flat.size):
        original = flat[j]
        flat[j] = original + eps
        f_plus = _weighted_sum(fn, inputs, upstream)
        flat[j] = original - eps
        f_minus = _weighted_sum(fn, inputs, upstream)
        flat[j] = original
        grad.reshape(-1)[j] = (f_plus - f_minus) / (2 * eps)
    return grad


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True) -> bool:
    """Check backpropagation through ``fn`` against central differences.

    Args:
        fn: a function of Tensors returning a Tensor or a tuple of Tensors.
        inputs: the Tensors to call ``fn`` with; those with ``requires_grad`` are checked.
        eps: the finite-difference step.
        atol, rtol: an element passes when |analytic − numeric| ≤ atol + rtol·|numeric|.
        seed: seeds the random upstream gradient (so a failure can be reproduced).
        raise_exception: raise :class:`GradcheckError` on failure (else return False).

    Returns:
        True when every checked gradient matches.

    >>> import chainrule as cr
    >>> x = cr.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
    >>> cr.gradcheck(lambda t: (t * t).tanh(), [x])
    True
    """
    from chainrule.autograd.engine import grad

    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    if any(inputs[i].dtype != np.float64 for i in checked):
        warnings.warn(
            "gradcheck: inputs are not float64; finite differences in lower precision are "
            "unreliable (use chainrule.set_default_dtype('float64') or dtype='float64')",
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    upstream = [rng.standard_normal(o.shape) for o in outs]
    differentiable = [(o, v) for o, v in zip(outs, upstream) if o.requires_grad]
    if not differentiable:
        raise ValueError("gradcheck: fn's outputs do not depend on any checked input")
    grads = grad(
        [o for o, _ in differentiable],
        [inputs[i] for i in checked],
        grad_outputs=[o.__class__(v.astype(o.dtype)) for o, v in differentiable],
        allow_unused=True,
    )
    for i, analytic in zip(checked, grads):
        x = inputs[i]
        analytic = np.zeros(x.shape) if analytic is None else np.asarray(analytic.data, float)
        numeric = numerical_grad(fn, inputs, upstream, i, eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if (error > 0).any():
            worst = np.unravel_index(int(np.argmax(error)), error.shape) if error.ndim else ()
            message = (
                f"gradcheck failed for input {i} of shape {x.shape}: at index {worst} the "
                f"numerical gradient is {numeric[worst]:.8g} but backpropagation gave "
                f"{analytic[worst]:.8g} ({int((error > 0).sum())} of {error.size} elements "
                f"off; atol={atol}, rtol={rtol})"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True
