"""The lectures' plain gradient descent, with its stopping rule."""

from __future__ import annotations

import math
from numbers import Real

from chainrule.optimizers.optimizer import Optimizer


class GradientDescent(Optimizer):
    """Plain gradient descent, ``W ← W − α·∇W``, that knows when to stop.

    Each :meth:`step` measures how far it moved the weights, ``Σ|W − W_old| = α·Σ|∇W|`` over
    every parameter, returns it, and keeps it in :attr:`change`. Once a step moves them by less
    than ``goal``, :attr:`converged` becomes True, the lectures' stopping rule::

        opt = GradientDescent(params, learning_rate=0.1, goal=1e-6)
        while not opt.converged:
            opt.zero_grad()
            loss_fn().backward()
            opt.step()

    (A Model's ``fit`` may stop on ``optimizer.converged`` the same way.)

    Args:
        params: the parameters (or groups); omit to bind them later with :meth:`build`.
        learning_rate: ``α`` (default 0.01), a number or a schedule; ``lr=`` is a synonym.
        goal: stop once ``Σ|ΔW|`` of a step is below this (None: never converge).
        clipnorm, clipvalue, global_clipnorm: gradient clipping (see :class:`Optimizer`).

    Attributes:
        change: ``Σ|ΔW|`` of the last step (None before the first).
        converged: whether the last step moved the weights by less than ``goal``.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = GradientDescent([w], learning_rate=0.1, goal=0.1)
    >>> (w * w).sum().backward()              # grad = [2, -4]
    >>> round(opt.step(), 6), opt.converged   # 0.1 · (2 + 4)
    (0.6, False)
    """

    _thread_safe = False  # update_step adds to self.change
    state_keys = ()

    def __init__(self, params=None, learning_rate=0.01, goal=None, *, lr=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None):
        if goal is not None and not (isinstance(goal, Real) and not isinstance(goal, bool)
                                     and math.isfinite(goal) and goal > 0):
            raise ValueError(f"GradientDescent: goal must be a finite number > 0 or None, got "
                             f"{goal!r}")
        self.goal = goal
        self.change = None
        self.converged = False
        super().__init__(params, dict(learning_rate=learning_rate), lr=lr, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm)

    def step(self, closure=None) -> float:
        """Take one step; return ``Σ|ΔW|`` and set :attr:`converged` (``closure``, if given, is
        called first, as in :meth:`Optimizer.step`)."""
        self.change = 0.0
        super().step(closure)
        self.converged = self.goal is not None and self.change < self.goal
        return self.change

    def update_step(self, gradient, variable, learning_rate, state, group):
        change = learning_rate * gradient  # ΔW = α·∇W
        variable -= change
        self.change += float(abs(change).sum())

    def get_config(self) -> dict:
        return {**super().get_config(), "goal": self.goal}
