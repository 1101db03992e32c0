"""Adagrad: per-weight learning rates that shrink with the sum of squared gradients."""

from __future__ import annotations

from chainrule import backend, kernels
from chainrule.optimizers.optimizer import Optimizer, check_range


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011); PyTorch's update rule.

    Each weight accumulates the squares of its gradients, so weights with large past gradients
    take smaller steps. With learning rate ``α``, decay ``η`` and step count ``t``::

        g ← g + λ·W                          (weight decay, when λ ≠ 0)
        G ← G + g²                           (G starts at initial_accumulator_value)
        W ← W − α / (1 + (t − 1)·η) · g / (√G + ε)

    Args:
        params: the parameters (or groups); omit to bind them later with :meth:`build`.
        learning_rate: ``α`` (default 0.001, Keras's), a number or a schedule; ``lr=`` is a
            synonym.
        epsilon: ``ε``, added to the denominator (default 1e-7, Keras's).
        initial_accumulator_value: the starting value of ``G`` (default 0.1, Keras's).
        lr_decay: ``η`` (default 0).
        weight_decay: ``λ``, L2 regularisation added to the gradient (default 0).
        clipnorm, clipvalue, global_clipnorm: gradient clipping (see :class:`Optimizer`).

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Adagrad([w], learning_rate=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()                            # a first step moves each weight by about α
    >>> w.tolist()
    [0.5, -1.5]
    """

    state_keys = required_state_keys = ("step", "sum")

    def __init__(self, params=None, learning_rate=0.001, epsilon=1e-7,
                 initial_accumulator_value=0.1, lr_decay=0, weight_decay=0, *, lr=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None):
        defaults = dict(learning_rate=learning_rate, epsilon=epsilon,
                        initial_accumulator_value=initial_accumulator_value, lr_decay=lr_decay,
                        weight_decay=weight_decay)
        super().__init__(params, defaults, lr=lr, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)

    def _check_group(self, group):
        check_range(self, group, "epsilon", low_open=True)
        for key in ("initial_accumulator_value", "lr_decay", "weight_decay"):
            check_range(self, group, key)
        return group

    def _init_state(self, param, group):
        xp = backend.get_array_module(param)
        return {"step": 0,
                "sum": xp.full_like(param, group["initial_accumulator_value"])}

    def update_step(self, gradient, variable, learning_rate, state, group):
        state["step"] += 1
        t = state["step"]
        kernels.adagrad_update(
            variable, gradient, state["sum"],
            learning_rate=learning_rate / (1 + (t - 1) * group["lr_decay"]),
            epsilon=group["epsilon"], weight_decay=group["weight_decay"])
