"""Tools for checking gradients: used by chainrule's own tests and available to users."""

from chainrule.testing.gradcheck import GradcheckError, gradcheck, numerical_grad

__all__ = ["GradcheckError", "gradcheck", "numerical_grad"]
