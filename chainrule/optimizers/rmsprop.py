"""RMSprop: divide each gradient by a running root-mean-square of its recent values."""

from __future__ import annotations

from chainrule import backend, kernels
from chainrule.optimizers.optimizer import Optimizer, check_flag, check_range, state_buffer


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012); PyTorch's update rule (its ``alpha`` is ``rho`` here).

    With learning rate ``α``, decay ``ρ``, momentum ``μ`` and weight decay ``λ``::

        g ← g + λ·W                          (weight decay, when λ ≠ 0)
        v ← ρ·v + (1 − ρ)·g²                 (running mean of squares)
        m ← ρ·m + (1 − ρ)·g                  (running mean, only when centered)
        s ← √(v − m²) + ε   if centered, else √v + ε
        b ← μ·b + g / s,  W ← W − α·b        when μ > 0
        W ← W − α·g / s                      otherwise

    Args:
        params: the parameters (or groups); omit to bind them later with :meth:`build`.
        learning_rate: ``α`` (default 0.001, Keras's), a number or a schedule; ``lr=`` is a
            synonym.
        rho: ``ρ``, the decay of the running averages (default 0.9, Keras's).
        epsilon: ``ε`` (default 1e-7, Keras's).
        momentum: ``μ`` (default 0).
        centered: normalise by the running variance ``v − m²`` instead of ``v``.
        weight_decay: ``λ``, L2 regularisation added to the gradient (default 0).
        clipnorm, clipvalue, global_clipnorm: gradient clipping (see :class:`Optimizer`).

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = RMSprop([w], learning_rate=0.01)
    >>> (w * w).sum().backward()
    >>> opt.step()                            # first step: g/√(0.01 g²) = 10 · sign(g)
    >>> round(w.item(), 4)
    0.9
    """

    state_keys = ("step", "square_avg", "grad_avg", "momentum_buffer")
    required_state_keys = ("step", "square_avg")

    def __init__(self, params=None, learning_rate=0.001, rho=0.9, epsilon=1e-7, momentum=0.0,
                 centered=False, weight_decay=0, *, lr=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        defaults = dict(learning_rate=learning_rate, rho=rho, epsilon=epsilon,
                        momentum=momentum, centered=centered, weight_decay=weight_decay)
        super().__init__(params, defaults, lr=lr, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)

    def _check_group(self, group):
        check_range(self, group, "rho", 0.0, 1.0, high_open=True)
        check_range(self, group, "epsilon", low_open=True)
        check_range(self, group, "momentum", 0.0, 1.0, high_open=True)
        check_range(self, group, "weight_decay")
        check_flag(self, group, "centered")
        return group

    def _init_state(self, param, group):
        xp = backend.get_array_module(param)
        return {"step": 0, "square_avg": xp.zeros_like(param)}

    def update_step(self, gradient, variable, learning_rate, state, group):
        state["step"] += 1
        centered, momentum = group["centered"], group["momentum"]
        kernels.rmsprop_update(
            variable, gradient, state["square_avg"],
            state_buffer(state, "grad_avg", variable) if centered else None,  # m
            state_buffer(state, "momentum_buffer", variable) if momentum > 0 else None,  # b
            rho=group["rho"], epsilon=group["epsilon"], momentum=momentum,
            learning_rate=learning_rate, weight_decay=group["weight_decay"])
