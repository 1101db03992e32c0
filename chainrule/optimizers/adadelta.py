"""Adadelta: a running ratio of update size to gradient size, with no learning rate to tune."""

from __future__ import annotations

from chainrule import backend, kernels
from chainrule.optimizers.optimizer import Optimizer, check_range


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012); PyTorch's update rule.

    Keeps running averages of the squared gradients ``E[g²]`` and of the squared updates
    ``E[Δ²]``; their ratio sets each weight's step size, so units match and ``α = 1`` works::

        g ← g + λ·W                                  (weight decay, when λ ≠ 0)
        E[g²] ← ρ·E[g²] + (1 − ρ)·g²
        Δ ← √(E[Δ²] + ε) / √(E[g²] + ε) · g
        E[Δ²] ← ρ·E[Δ²] + (1 − ρ)·Δ²
        W ← W − α·Δ

    Args:
        params: the parameters (or groups); omit to bind them later with :meth:`build`.
        learning_rate: ``α`` (default 0.001, Keras's), a number or a schedule; ``lr=`` is a
            synonym.
        rho: ``ρ``, the decay of both running averages (default 0.95, Keras's).
        epsilon: ``ε`` (default 1e-7, Keras's).
        weight_decay: ``λ``, L2 regularisation added to the gradient (default 0).
        clipnorm, clipvalue, global_clipnorm: gradient clipping (see :class:`Optimizer`).

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = Adadelta([w], learning_rate=1.0, rho=0.9, epsilon=1e-6)
    >>> (w * w).sum().backward()
    >>> opt.step()                            # the first steps are tiny: E[Δ²] starts at 0
    >>> round(1.0 - w.item(), 5)
    0.00316
    """

    state_keys = required_state_keys = ("step", "square_avg", "acc_delta")

    def __init__(self, params=None, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=0,
                 *, lr=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        defaults = dict(learning_rate=learning_rate, rho=rho, epsilon=epsilon,
                        weight_decay=weight_decay)
        super().__init__(params, defaults, lr=lr, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)

    def _check_group(self, group):
        check_range(self, group, "rho", 0.0, 1.0, high_open=True)
        check_range(self, group, "epsilon", low_open=True)
        check_range(self, group, "weight_decay")
        return group

    def _init_state(self, param, group):
        xp = backend.get_array_module(param)
        return {"step": 0, "square_avg": xp.zeros_like(param),
                "acc_delta": xp.zeros_like(param)}

    def update_step(self, gradient, variable, learning_rate, state, group):
        state["step"] += 1
        kernels.adadelta_update(
            variable, gradient, state["square_avg"], state["acc_delta"], rho=group["rho"],
            epsilon=group["epsilon"], learning_rate=learning_rate,
            weight_decay=group["weight_decay"])
