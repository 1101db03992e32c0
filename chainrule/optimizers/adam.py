"""Adam and AdamW: momentum on the gradient, RMSprop-style scaling, and bias correction."""

from __future__ import annotations

import math

from chainrule import backend, kernels
from chainrule.optimizers.optimizer import Optimizer, check_flag, check_range, state_buffer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015); PyTorch's update rule.

    Running averages of the gradient ``m`` and of its square ``v``, corrected for their start at
    zero. With learning rate ``α``, betas ``β₁, β₂`` and the parameter's step count ``t``::

        g ← g + λ·W                          (L2 weight decay, when λ ≠ 0; AdamW differs)
        m ← β₁·m + (1 − β₁)·g
        v ← β₂·v + (1 − β₂)·g²
        v̂ ← max(v̂, v)  if amsgrad, else v
        W ← W − α · (m / (1 − β₁ᵗ)) / (√(v̂ / (1 − β₂ᵗ)) + ε)

    The last line is computed as the paper suggests (section 2), with one fewer pass over the
    arrays: ``W ← W − α_t · m / (√v̂ + ε̂)``, ``α_t = α·√(1 − β₂ᵗ) / (1 − β₁ᵗ)``,
    ``ε̂ = ε·√(1 − β₂ᵗ)``.

    Args:
        params: the parameters (or groups); omit to bind them later with :meth:`build`.
        learning_rate: ``α`` (default 1e-3), a number or a schedule; ``lr=`` is a synonym.
        beta_1: ``β₁`` (default 0.9).
        beta_2: ``β₂`` (default 0.999).
        epsilon: ``ε`` (default 1e-7, Keras's).
        weight_decay: ``λ`` (default 0).
        amsgrad: use the running maximum of ``v`` (Reddi et al., 2018).
        clipnorm, clipvalue, global_clipnorm: gradient clipping (see :class:`Optimizer`).

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Adam([w], learning_rate=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()                            # the first step moves each weight by α
    >>> [round(v, 6) for v in w.tolist()]
    [0.9, -1.9]
    """

    #: Whether weight decay shrinks the weights directly (AdamW) instead of adding λ·W to g.
    decoupled_weight_decay = False
    state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    required_state_keys = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params=None, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=0.0, amsgrad=False, *, lr=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        defaults = dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                        epsilon=epsilon, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults, lr=lr, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)

    def _check_group(self, group):
        check_range(self, group, "beta_1", 0.0, 1.0, high_open=True)
        check_range(self, group, "beta_2", 0.0, 1.0, high_open=True)
        check_range(self, group, "epsilon", low_open=True)
        check_range(self, group, "weight_decay")
        check_flag(self, group, "amsgrad")
        return group

    def _init_state(self, param, group):
        xp = backend.get_array_module(param)
        return {"step": 0, "exp_avg": xp.zeros_like(param), "exp_avg_sq": xp.zeros_like(param)}

    def update_step(self, gradient, variable, learning_rate, state, group):
        beta_1, beta_2, weight_decay = group["beta_1"], group["beta_2"], group["weight_decay"]
        state["step"] += 1
        t = state["step"]
        if self.decoupled_weight_decay:
            if weight_decay != 0:  # AdamW: W ← W·(1 − α·λ), then Adam on the plain gradient
                variable *= 1.0 - learning_rate * weight_decay
            weight_decay = 0.0
        v_max = state_buffer(state, "max_exp_avg_sq", variable) if group["amsgrad"] else None
        root_bias_correction_2 = math.sqrt(1.0 - beta_2**t)
        kernels.adam_update(
            variable, gradient, state["exp_avg"], state["exp_avg_sq"], v_max,
            beta_1=beta_1, beta_2=beta_2,
            step_size=learning_rate * root_bias_correction_2 / (1.0 - beta_1**t),  # α_t
            epsilon=group["epsilon"] * root_bias_correction_2,  # ε̂
            weight_decay=weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019); PyTorch's update rule.

    The weights shrink directly, ``W ← W·(1 − α·λ)``, before the Adam step on the plain
    gradient, instead of ``λ·W`` being added to the gradient (where Adam's scaling would
    weaken it for weights with large gradients). Same arguments as :class:`Adam`, with
    ``weight_decay=0.004`` by default (Keras's; PyTorch's is 0.01: :mod:`chainrule.optim`).
    """

    decoupled_weight_decay = True

    def __init__(self, params=None, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=0.004, amsgrad=False, *, lr=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        super().__init__(params, learning_rate, beta_1, beta_2, epsilon, weight_decay, amsgrad,
                         lr=lr, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)
