"""Saving a whole model to one file and loading it back: ``model.save(path)`` and
:func:`load_model`.

The file (``.npz``, or ``.safetensors`` when that package is installed; see
:mod:`chainrule.io`) holds a tree with:

=====================  =======================================================================
``model``              the architecture: ``{"class_name", "config"}`` (JSON)
``build_input_shape``  the input shape the model was built for, batch axis None (JSON)
``input_dtype``        the dtype of the input, when not the float dtype (JSON)
``weights``            ``model.state_dict()``: every weight by dotted name (arrays)
``compile``            optimizer, loss and metrics as given to ``compile`` (JSON), if compiled
``optimizer``          ``model.optimizer.state_dict()`` (arrays and JSON), once it is bound
=====================  =======================================================================

Nothing is pickled. Loading rebuilds the model from its config, builds it for the stored input
shape, loads the weights strictly, compiles it again and restores the optimizer state, so
training continues exactly where it stopped (given the same data order: random generators are
not saved; seed ``fit`` for that).

A subclassed :class:`~chainrule.models.Model` is rebuilt with ``cls.from_config(config)``: give
it a ``get_config`` that returns its constructor arguments, and pass the class in
``custom_objects`` unless it was defined in the loading program (classes are found by name).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from chainrule import io, losses, optimizers
from chainrule import metrics as metrics_module
from chainrule.layers.base import deserialize, serialize


def _compile_config(model) -> dict | None:
    if not model.compiled:
        return None
    loss = model.loss
    if loss is None or isinstance(loss, losses.Loss):
        loss_config = None if loss is None else losses.serialize(loss)
    else:
        warnings.warn(f"save: the loss {loss!r} is a plain function and cannot be saved; "
                      "load_model will leave the model without a loss (compile it again)",
                      stacklevel=3)
        loss_config = None
    metric_configs = []
    for spec in model._metric_specs:
        if isinstance(spec, str):
            metric_configs.append(spec)
            continue
        try:
            metric_configs.append(metrics_module.serialize(spec))
        except ValueError:
            warnings.warn(f"save: the metric {spec!r} cannot be saved and is left out",
                          stacklevel=3)
    optimizer = model.optimizer
    return {
        "optimizer": {"class_name": type(optimizer).__name__, "config": optimizer.get_config()},
        "loss": loss_config,
        "metrics": metric_configs,
    }


def _input_dtype(model) -> str | None:
    dtype = getattr(model, "_input_dtype", None)
    return None if dtype is None else np.dtype(dtype).name


def model_tree(model, include_optimizer: bool = True) -> dict:
    """Everything :func:`save_model` writes, as a tree of JSON values and arrays."""
    if not model.built:
        raise ValueError(f"save: model '{model.name}' is not built yet (it has no weights); "
                         "call it on data, fit it or build(input_shape) first")
    tree = {
        "model": serialize(model),
        "build_input_shape": _json_shape(model._build_input_shape),
        "input_dtype": _input_dtype(model),
        "weights": model.state_dict(),
        "compile": _compile_config(model),
        "optimizer": None,
    }
    optimizer = model.optimizer
    if include_optimizer and optimizer is not None and optimizer.built:
        tree["optimizer"] = optimizer.state_dict()
    return tree


def _json_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_json_shape(s) for s in shape]
    return [None if n is None else int(n) for n in shape]


def save_model(model, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """Write ``model`` (architecture, weights, compile settings, optimizer state) to
    ``filepath`` (``.npz`` or ``.safetensors``), atomically. Folders are created."""
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists; pass overwrite=True to replace it")
    folder = os.path.dirname(filepath)
    if folder:
        os.makedirs(folder, exist_ok=True)
    io.save_tree(filepath, model_tree(model, include_optimizer),
                 metadata={"kind": "model", "class_name": type(model).__name__})


def load_model(filepath, custom_objects: dict | None = None, compile: bool = True):  # noqa: A002
    """Load a model written by ``model.save`` / :func:`save_model`.

    Args:
        filepath: the ``.npz`` or ``.safetensors`` file.
        custom_objects: ``{"ClassName": cls}`` for layers and models of your own.
        compile: compile the model again and restore the optimizer state (default True).

    Returns:
        the model, with the same weights (and so the same predictions), and when compiled the
        same optimizer state.

    Raises:
        FileNotFoundError, chainrule.io.FormatError: no such file, or not a model file.
    """
    tree, metadata = io.load_tree(filepath, with_metadata=True)
    if metadata.get("kind") != "model" or not isinstance(tree, dict) or "model" not in tree:
        raise io.FormatError(f"{os.fspath(filepath)}: not a saved model (a weights file? use "
                             "model.load_weights)")
    model = deserialize(tree["model"], custom_objects)
    if tree.get("build_input_shape") is not None and not model.built:
        shape = tree["build_input_shape"]
        shape = [tuple(s) for s in shape] if shape and isinstance(shape[0], list) else tuple(shape)
        model.build(shape, tree.get("input_dtype"))
    model.load_state_dict(tree["weights"], strict=True)
    settings = tree.get("compile")
    if compile and settings is not None:
        model.compile(
            optimizer=optimizers.get(settings["optimizer"]),
            loss=losses.get(settings["loss"]) if settings["loss"] is not None else None,
            metrics=[m if isinstance(m, str) else metrics_module.get(m)
                     for m in settings["metrics"]],
        )
        if tree.get("optimizer") is not None:
            model.optimizer.build(model.parameters())
            model.optimizer.load_state_dict(tree["optimizer"])
    return model


__all__ = ["load_model", "model_tree", "save_model"]
