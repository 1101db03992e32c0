"""Reverse-mode automatic differentiation: the op base class and the backward engine."""

from chainrule.autograd.engine import backward, grad
from chainrule.autograd.function import Function

__all__ = ["Function", "backward", "grad"]
