"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from chainrule import kernels
from chainrule.optimizers.optimizer import Optimizer, check_flag, check_range, state_buffer


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum; PyTorch's update rule.

    With gradient ``g``, learning rate ``α``, momentum ``μ``, dampening ``τ`` and weight
    decay ``λ``, one step is::

        g ← g + λ·W                          (weight decay, when λ ≠ 0)
        b ← μ·b + (1 − τ)·g                  (momentum buffer; b = g on the first step)
        d ← g + μ·b   if nesterov, else b    (d = g when μ = 0)
        W ← W − α·d

    Args:
        params: the parameters (or parameter groups); omit to bind them later with
            :meth:`build` (``model.compile`` does).
        learning_rate: ``α`` (default 0.01), a number or a schedule; ``lr=`` is a synonym.
        momentum: ``μ`` (default 0: plain SGD).
        nesterov: use Nesterov momentum (needs ``μ > 0`` and ``τ = 0``).
        weight_decay: ``λ``, L2 regularisation added to the gradient (default 0).
        dampening: ``τ`` (default 0).
        clipnorm, clipvalue, global_clipnorm: gradient clipping (see :class:`Optimizer`).

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = SGD([w], learning_rate=0.1, momentum=0.9)
    >>> (w * w).sum().backward()              # grad = 2w = [2, -4]
    >>> opt.step()
    >>> [round(v, 6) for v in w.tolist()]     # W − 0.1·g (the buffer starts as g)
    [0.8, -1.6]
    """

    state_keys = ("momentum_buffer",)

    def __init__(self, params=None, learning_rate=0.01, momentum=0.0, nesterov=False,
                 weight_decay=0.0, dampening=0.0, *, lr=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        defaults = dict(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
                        weight_decay=weight_decay, dampening=dampening)
        super().__init__(params, defaults, lr=lr, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)

    def _check_group(self, group):
        check_range(self, group, "momentum", 0.0, 1.0, high_open=True)
        check_range(self, group, "weight_decay")
        check_range(self, group, "dampening", 0.0, 1.0)
        check_flag(self, group, "nesterov")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        return group

    def update_step(self, gradient, variable, learning_rate, state, group):
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if momentum == 0:  # W ← W − α·(g + λ·W)
            kernels.scaled_subtract(variable, gradient, learning_rate, weight_decay=weight_decay)
            return
        dampening = group["dampening"]
        if "momentum_buffer" not in state:  # b starts as g: b ← μ·0 + g, undamped
            state_buffer(state, "momentum_buffer", variable)
            dampening = 0.0
        kernels.momentum_update(variable, state["momentum_buffer"], gradient, momentum,
                                learning_rate, dampening=dampening, nesterov=group["nesterov"],
                                weight_decay=weight_decay)
