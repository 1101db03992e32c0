"""Dropout: randomly zero activations in training, to regularize (Srivastava et al., 2014)."""

from __future__ import annotations

import numpy as np

from chainrule.layers import _checks as check
from chainrule.layers.base import _SameShapeLayer
from chainrule.ops.nn import Dropout as DropoutOp


class Dropout(_SameShapeLayer):
    """Inverted dropout: y = x · m / (1 − rate) in training mode, y = x in evaluation mode.

    Each m_i is 1 with probability 1 − rate and 0 otherwise, drawn anew on every call; dividing
    by 1 − rate keeps the expected value of y equal to x, so nothing changes at evaluation.

    Args:
        rate: the fraction of elements to drop, in [0, 1).
        seed: seeds the layer's own generator, so its sequence of masks is reproducible; by
            default masks come from chainrule's generator (see :func:`chainrule.manual_seed`).

    >>> import chainrule as cr
    >>> layer = Dropout(0.5).eval()
    >>> layer(cr.ones(2, 3)).sum().item()
    6.0
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not check.is_real(rate) or not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = check.optional_seed("Dropout", "seed", seed)
        self._generator = None if seed is None else np.random.default_rng(seed)

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        # the op asks for the next seed when it runs (a replayed trace draws a new mask too)
        return DropoutOp(self.rate, seed_source=self._next_seed)(x)

    def _next_seed(self) -> int | None:
        """A seed from the layer's own generator, or None (chainrule's generator draws)."""
        return None if self._generator is None else int(self._generator.integers(2**63))

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
