"""Gradient clipping: keep one bad batch from throwing the weights far away.

Two functions to call between ``loss.backward()`` and ``optimizer.step()``, as in PyTorch:

* :func:`clip_grad_norm` scales all gradients together so their joint norm is at most
  ``max_norm`` and returns the norm they had;
* :func:`clip_grad_value` clips every gradient element into ``[-clip_value, clip_value]``.

The optimizers' ``clipnorm=`` / ``global_clipnorm=`` / ``clipvalue=`` options (Keras) use
:func:`clip_by_norm`, :func:`clip_by_global_norm` and :func:`clip_by_value` below.

Gradients are changed in place (the engine gives every leaf its own ``.grad`` array); a
read-only gradient array is replaced by a new one instead.
"""

from __future__ import annotations

import math

from chainrule import backend
from chainrule.tensor import Tensor


def clip_grad_norm(params, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale the gradients of ``params`` so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradients seen as one long vector,
    ``‖g‖ = (Σ_i ‖g_i‖^p)^(1/p)`` (``p = inf``: the largest ``|g|``). When
    ``max_norm / (‖g‖ + 1e-6) < 1`` every gradient is multiplied by that factor, exactly as
    PyTorch's ``torch.nn.utils.clip_grad_norm_``. Parameters without a gradient are skipped.

    Args:
        params: a Tensor or an iterable of Tensors (parameters whose ``.grad`` is clipped).
        max_norm: the largest total norm allowed.
        norm_type: ``p`` of the p-norm (2.0 by default; ``float("inf")`` or ``"inf"`` for max).

    Returns:
        The total norm of the gradients before clipping, as a float.

    >>> import chainrule as cr
    >>> w = cr.tensor([3.0, 4.0], requires_grad=True)
    >>> (w * w).sum().backward()          # grad = [6, 8], norm 10
    >>> clip_grad_norm([w], max_norm=5.0)
    10.0
    >>> [round(v, 4) for v in w.grad.tolist()]
    [3.0, 4.0]
    """
    grads = _grads(params)
    p = float(norm_type)
    if not grads:
        return 0.0
    total = _combine([_norm(g.data, p) for g in grads], p)
    factor = float(max_norm) / (total + 1e-6)
    if factor < 1.0:
        for g in grads:
            _scale(g, factor)
    return total


def clip_grad_value(params, clip_value: float) -> None:
    """Clip every gradient element of ``params`` into ``[-clip_value, clip_value]``, in place
    (PyTorch's ``torch.nn.utils.clip_grad_value_``)."""
    for g in _grads(params):
        clip_by_value(g, clip_value)


# -- the optimizers' per-step clipping (Keras semantics) ---------------------------------------


def clip_by_norm(grad: Tensor, clipnorm: float) -> None:
    """``g ← g · clipnorm / ‖g‖₂`` when ``‖g‖₂ > clipnorm``: each gradient on its own."""
    norm = _norm(grad.data, 2.0)
    if norm > clipnorm:
        _scale(grad, clipnorm / norm)


def clip_by_global_norm(grads, clipnorm: float) -> float:
    """``g_i ← g_i · clipnorm / ‖g‖`` for all ``i`` when the joint norm
    ``‖g‖ = sqrt(Σ_i ‖g_i‖₂²) > clipnorm``; returns ``‖g‖``."""
    total = _combine([_norm(g.data, 2.0) for g in grads], 2.0)
    if total > clipnorm:
        for g in grads:
            _scale(g, clipnorm / total)
    return total


def clip_by_value(grad: Tensor, clipvalue: float) -> None:
    """``g ← min(max(g, -clipvalue), clipvalue)`` elementwise."""
    xp = backend.get_array_module(grad.data)
    if _writeable(grad.data):
        xp.clip(grad.data, -clipvalue, clipvalue, out=grad.data)
    else:
        grad.data = xp.clip(grad.data, -clipvalue, clipvalue)


# -- pieces -------------------------------------------------------------------------------------


def _grads(params) -> list:
    if isinstance(params, Tensor):
        params = [params]
    return [p.grad for p in params if p.grad is not None]


def _norm(array, p: float) -> float:
    """The p-norm of all elements of ``array``, as a Python float."""
    xp = backend.get_array_module(array)
    flat = array.reshape(-1)
    if p == 2.0:
        return math.sqrt(float(xp.dot(flat, flat)))
    if math.isinf(p):
        return float(xp.abs(flat).max()) if flat.size else 0.0
    if p == 1.0:
        return float(xp.abs(flat).sum())
    return float((xp.abs(flat) ** p).sum()) ** (1.0 / p)


def _combine(norms: list, p: float) -> float:
    """The p-norm of a vector of norms: the norm of all the arrays seen as one."""
    if math.isinf(p):
        return max(norms)
    if p == 2.0:
        return math.sqrt(math.fsum(n * n for n in norms))
    return math.fsum(n**p for n in norms) ** (1.0 / p)


def _scale(grad: Tensor, factor: float) -> None:
    """``grad *= factor`` in place (or into a new array when the array is read-only)."""
    if _writeable(grad.data):
        grad.data *= factor
    else:
        grad.data = grad.data * factor


def _writeable(array) -> bool:
    return getattr(array.flags, "writeable", True)  # CuPy arrays are always writeable
