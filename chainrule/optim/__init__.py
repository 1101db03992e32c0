"""The PyTorch face of the optimizers: ``import chainrule.optim as optim``.

``optim.SGD(model.parameters(), lr=0.1, momentum=0.9)``, ``optim.Adam(params, lr=1e-3,
betas=(0.9, 0.999))``, ...: PyTorch's constructor signatures, keyword names and defaults, on
chainrule's optimizers (:mod:`chainrule.optimizers`, whose update rules already follow
``torch.optim``'s arithmetic). Each class here *is* the chainrule optimizer (a subclass that only
translates the arguments), so ``zero_grad()``, ``step()``, ``param_groups[i]["lr"]``,
``add_param_group``, ``state_dict()`` and ``load_state_dict()`` are the same code.
:mod:`chainrule.optim.lr_scheduler` holds PyTorch's learning-rate schedulers.

>>> import chainrule.nn as nn
>>> import chainrule.optim as optim
>>> opt = optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
>>> opt.param_groups[0]["lr"]
0.1
"""

from __future__ import annotations

from chainrule import optimizers as _optimizers
from chainrule.optim import lr_scheduler
from chainrule.optimizers import Optimizer


def _torch_only(name: str, maximize: bool, extras: dict) -> None:
    """Refuse what is not implemented; accept PyTorch's performance switches as no-ops."""
    if maximize:
        raise NotImplementedError(f"{name}: maximize=True is not supported")
    switches = {"foreach", "capturable", "differentiable", "fused"}
    unknown = sorted(set(extras) - switches)
    if unknown:
        raise TypeError(f"{name}: unexpected keyword argument(s) {unknown}")


class SGD(_optimizers.SGD):
    """Stochastic gradient descent with momentum (PyTorch's ``torch.optim.SGD``):

    b ← μ·b + (1 − dampening)·g,  p ← p − lr·(g + μ·b if nesterov else b), with
    g = ∇ + weight_decay·p.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 **switches):
        _torch_only("SGD", maximize, switches)
        super().__init__(params, learning_rate=lr, momentum=momentum, nesterov=nesterov,
                         weight_decay=weight_decay, dampening=dampening)


class Adam(_optimizers.Adam):
    """Adam (PyTorch's ``torch.optim.Adam``); ``weight_decay`` is added to the gradient (L2)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 **switches):
        _torch_only("Adam", maximize, switches)
        beta_1, beta_2 = betas
        super().__init__(params, learning_rate=lr, beta_1=beta_1, beta_2=beta_2, epsilon=eps,
                         weight_decay=weight_decay, amsgrad=amsgrad)


class AdamW(_optimizers.AdamW):
    """AdamW (PyTorch's ``torch.optim.AdamW``): decoupled weight decay, default 0.01."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 **switches):
        _torch_only("AdamW", maximize, switches)
        beta_1, beta_2 = betas
        super().__init__(params, learning_rate=lr, beta_1=beta_1, beta_2=beta_2, epsilon=eps,
                         weight_decay=weight_decay, amsgrad=amsgrad)


class RMSprop(_optimizers.RMSprop):
    """RMSprop (PyTorch's ``torch.optim.RMSprop``): ``alpha`` is the squared-gradient average's
    decay (chainrule's and Keras's ``rho``); ε is added outside the square root."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False, **switches):
        _torch_only("RMSprop", maximize, switches)
        super().__init__(params, learning_rate=lr, rho=alpha, epsilon=eps, momentum=momentum,
                         centered=centered, weight_decay=weight_decay)


class Adagrad(_optimizers.Adagrad):
    """Adagrad (PyTorch's ``torch.optim.Adagrad``)."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *,
                 maximize: bool = False, **switches):
        _torch_only("Adagrad", maximize, switches)
        super().__init__(params, learning_rate=lr, epsilon=eps,
                         initial_accumulator_value=initial_accumulator_value, lr_decay=lr_decay,
                         weight_decay=weight_decay)


class Adadelta(_optimizers.Adadelta):
    """Adadelta (PyTorch's ``torch.optim.Adadelta``), lr=1.0, rho=0.9, eps=1e-6."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False, **switches):
        _torch_only("Adadelta", maximize, switches)
        super().__init__(params, learning_rate=lr, rho=rho, epsilon=eps,
                         weight_decay=weight_decay)


__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop",
           "lr_scheduler"]
