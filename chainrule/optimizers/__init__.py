"""Optimizers: the update rules that turn gradients into better weights.

Two ways to use one (both shown in docs/optimizers.md)::

    opt = SGD(model.parameters(), learning_rate=0.1, momentum=0.9)   # PyTorch style
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    model.compile(optimizer=Adam(learning_rate=1e-3), ...)          # Keras style
    model.compile(optimizer="adam", ...)                              # by name: get("adam")

Every algorithm matches PyTorch's ``torch.optim`` numerically; learning rates may be schedules
(:mod:`chainrule.optimizers.schedules`), and every optimizer clips gradients on request.
"""

from chainrule.optimizers import schedules
from chainrule.optimizers.adadelta import Adadelta
from chainrule.optimizers.adagrad import Adagrad
from chainrule.optimizers.adam import Adam, AdamW
from chainrule.optimizers.clipping import clip_grad_norm, clip_grad_value
from chainrule.optimizers.gradient_descent import GradientDescent
from chainrule.optimizers.optimizer import Optimizer, ParamGroup
from chainrule.optimizers.rmsprop import RMSprop
from chainrule.optimizers.sgd import SGD

_BY_NAME = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "gradient_descent": GradientDescent,
    "gradientdescent": GradientDescent,
}


def get(identifier):
    """An optimizer from a name, a class, a config or an optimizer (Keras's ``get``).

    Names ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "gradient_descent"; any
    case) and classes give an unbound optimizer with default hyper-parameters;
    ``{"class_name": ..., "config": ...}`` one from :meth:`Optimizer.get_config`; an optimizer
    is returned as is.

    >>> get("adam")
    Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08, weight_decay=0.0, \
amsgrad=False; unbound)
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str):
        return _class_named(identifier)()
    if isinstance(identifier, dict) and "class_name" in identifier:
        return _class_named(identifier["class_name"]).from_config(identifier.get("config", {}))
    raise TypeError(
        f"optimizers.get: expected an optimizer, its name or its config, got "
        f"{type(identifier).__name__}"
    )


def _class_named(name: str):
    cls = _BY_NAME.get(name.lower().replace("-", "_"))
    if cls is None:
        known = sorted(set(_BY_NAME) - {"gradientdescent"})
        raise ValueError(f"unknown optimizer {name!r}; known: {known}")
    return cls


__all__ = [
    "Adadelta", "Adagrad", "Adam", "AdamW", "GradientDescent", "Optimizer", "ParamGroup",
    "RMSprop", "SGD", "clip_grad_norm", "clip_grad_value", "get", "schedules",
]
