"""The optimizers' updates as fused, in-place kernels, and the switch that flushes denormals.

Each function updates a parameter θ and its optimizer state in place, in one pass over memory
with the compiled kernels (NumPy needs a pass per operation and temporaries). The optimizers in
:mod:`chainrule.optimizers` call them from their ``update_step``; the formulas are in each
function's docstring and, as the definition, in :mod:`chainrule.kernels.reference`. Arrays
share one shape and dtype; the kernels cast the scalars to that dtype (as NumPy does with a
Python number), so float32 stays float32.
``weight_decay`` λ ≠ 0 folds L2 regularisation into the gradient first: g ← g + λ·θ.

**Denormals.** Numbers below the dtype's smallest normal one (``np.finfo(np.float32).tiny``,
about 1.2e-38) are *subnormal*, and x86 processors compute with them 10 to 100 times slower.
A state buffer that decays geometrically, like a momentum buffer whose gradient is exactly 0
(a pixel that is always black, batch after batch), passes through hundreds of steps of
subnormal values: batch-size-1 training of an MLP on Fashion-MNIST had most of its momentum
entries subnormal after 1,500 steps and ran 3× slower. So by default the updates flush: every
parameter and state entry they write with ``|x| < tiny`` becomes 0, which changes results only
by values below 1.2e-38 (2.2e-308 in float64). :func:`flush_denormals` switches it off and on.
"""

from __future__ import annotations

import numpy as np

from chainrule import kernels

_flushing = True


def flush_denormals(enabled: bool = True) -> bool:
    """Whether the update kernels set subnormal results to 0 (default: they do); returns the
    previous setting, so a caller can restore it.

    >>> from chainrule import kernels
    >>> previous = kernels.flush_denormals(False)   # keep subnormal numbers
    >>> kernels.flush_denormals(previous)
    False
    """
    global _flushing
    if not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"kernels.flush_denormals: enabled must be True or False, got {enabled!r}")
    previous, _flushing = _flushing, bool(enabled)
    return previous


def flushes_denormals() -> bool:
    """Whether the update kernels flush subnormal results to 0 now."""
    return _flushing


def scaled_subtract(param, direction, scale: float, work=None, *, weight_decay=0.0) -> None:
    """Plain SGD, in place: θ ← θ − s·(d + λ·θ).

    ``work``, an array like ``param``, is where the reference writes s·d (it allocates one
    otherwise); the compiled kernel needs none.
    """
    kernels.select(param, direction).scaled_subtract(
        param, direction, float(scale), work, float(weight_decay), _tiny(param.dtype.type))


def momentum_update(param, buffer, grad, momentum: float, learning_rate: float, *,
                    dampening=0.0, nesterov=False, weight_decay=0.0) -> None:
    """SGD with momentum, in place (PyTorch's rule)::

        b ← μ·b + (1 − τ)·g
        d ← g + μ·b  if nesterov, else b
        θ ← θ − η·d
    """
    kernels.select(param, buffer, grad).momentum_update(
        param, buffer, grad, float(momentum), float(learning_rate), 1.0 - dampening,
        bool(nesterov), float(weight_decay), _tiny(param.dtype.type))


def adam_update(param, grad, m, v, v_max, *, beta_1: float, beta_2: float, step_size: float,
                epsilon: float, weight_decay=0.0) -> None:
    """Adam, in place, with the bias corrections folded into the scalars::

        m ← β₁·m + (1 − β₁)·g                 (computed as m + (1 − β₁)·(g − m))
        v ← β₂·v + (1 − β₂)·g²
        v̂ ← max(v̂, v)  with amsgrad (``v_max`` is v̂), else v̂ = v (``v_max`` None)
        θ ← θ − step_size · m / (√v̂ + epsilon)
    """
    kernels.select(param, grad, m, v).adam_update(
        param, grad, m, v, v_max, 1.0 - beta_1, float(beta_2), 1.0 - beta_2,
        float(step_size), float(epsilon), float(weight_decay), _tiny(param.dtype.type))


def rmsprop_update(param, grad, square_avg, grad_avg, buffer, *, rho: float, epsilon: float,
                   momentum: float, learning_rate: float, weight_decay=0.0) -> None:
    """RMSprop, in place::

        v ← ρ·v + (1 − ρ)·g²
        m ← ρ·m + (1 − ρ)·g;  s ← √(v − m²) + ε   when centered (``grad_avg`` is m)
        s ← √v + ε                               otherwise (``grad_avg`` None)
        b ← μ·b + g/s;  θ ← θ − α·b              with a momentum ``buffer`` b
        θ ← θ − α·g/s                            without (``buffer`` None)
    """
    kernels.select(param, grad, square_avg).rmsprop_update(
        param, grad, square_avg, grad_avg, buffer, float(rho), 1.0 - rho, float(epsilon),
        float(momentum), float(learning_rate), float(weight_decay), _tiny(param.dtype.type))


def adagrad_update(param, grad, accumulator, *, learning_rate: float, epsilon: float,
                   weight_decay=0.0) -> None:
    """Adagrad, in place: G ← G + g²;  θ ← θ − α·g / (√G + ε)."""
    kernels.select(param, grad, accumulator).adagrad_update(
        param, grad, accumulator, float(learning_rate), float(epsilon), float(weight_decay),
        _tiny(param.dtype.type))


def adadelta_update(param, grad, square_avg, acc_delta, *, rho: float, epsilon: float,
                    learning_rate: float, weight_decay=0.0) -> None:
    """Adadelta, in place::

        E[g²] ← ρ·E[g²] + (1 − ρ)·g²
        Δ ← √(E[Δ²] + ε) / √(E[g²] + ε) · g
        E[Δ²] ← ρ·E[Δ²] + (1 − ρ)·Δ²
        θ ← θ − α·Δ
    """
    kernels.select(param, grad, square_avg).adadelta_update(
        param, grad, square_avg, acc_delta, float(rho), 1.0 - rho, float(epsilon),
        float(learning_rate), float(weight_decay), _tiny(param.dtype.type))


def _tiny(dtype) -> float:
    """The flushing threshold: the dtype's smallest normal number, or 0 (flush nothing)."""
    thresholds = _thresholds.get(dtype)
    if thresholds is None:  # np.finfo takes 0.4 µs: once per dtype
        thresholds = _thresholds[dtype] = (0.0, float(np.finfo(dtype).tiny))
    return thresholds[_flushing]


_thresholds: dict = {}  # dtype -> (0, its smallest normal number)
