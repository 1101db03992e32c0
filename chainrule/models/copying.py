"""A copy of a model: same architecture, copied weights, compiled alike.

Below :mod:`chainrule.models.model` (it needs only the layers' config and state), so the
callbacks that keep copies (``SnapshotEnsemble``) and the averaging of weights
(:class:`~chainrule.models.AveragedModel`) use it without importing the models they copy.
"""

from __future__ import annotations

import copy

from chainrule.layers.base import deserialize, serialize


def copy_model(model, owner: str = "copy_model", optimizer="sgd"):
    """A new model like ``model``: rebuilt from its config (deep-copied when that fails), the
    same weights (copies, in the default dtype's layers when rebuilt), and compiled with the
    same loss and metrics when ``model`` is compiled, with ``optimizer`` (default a plain SGD:
    a copy for predicting and evaluating)."""
    if not model.built:
        raise ValueError(f"{owner}: the model is not built yet; build it (or call it on data) "
                         "first")
    try:
        clone = deserialize(serialize(model))
        if not clone.built:
            clone.build(model._build_input_shape, getattr(model, "_input_dtype", None))
        clone.load_state_dict(model.state_dict(), strict=True)
    except (ValueError, TypeError, NotImplementedError, KeyError, AttributeError):
        clone = _deep_copy(model)
    if getattr(model, "compiled", False):
        clone.compile(optimizer=optimizer, loss=model.loss,
                      metrics=[copy.deepcopy(spec) for spec in model._metric_specs])
    return clone


def _deep_copy(model):
    """``copy.deepcopy(model)`` without its optimizer and history (not needed by the copy)."""
    memo = {}
    for name in ("optimizer", "history"):
        value = model.__dict__.get(name)
        if value is not None:
            memo[id(value)] = None
    return copy.deepcopy(model, memo)
