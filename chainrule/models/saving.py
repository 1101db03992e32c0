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

Before anything is built, the sizes the architecture declares are checked against the weights
stored in the file: a layer's ``units``, ``filters``, ``kernel_size``, ``input_dim`` /
``output_dim`` (and a first layer's input features) give a lower bound on the size of one of
its weights, which must not exceed the largest array in the file. So a file whose JSON was
changed to say ``units: 10**12`` is refused at once, instead of allocating terabytes and
failing later. (Layers of your own declare sizes under other names; for them the strict weight
check after the build is what remains.)

A functional model (``Model(inputs, outputs)``) stores its graph in its config: the layer
configs and, for every call, the layer's name and which outputs of which earlier calls it
reads (:meth:`~chainrule.models.functional.Functional.get_config`); loading replays the calls.

Keras's file names ``.keras``, ``.h5`` and ``.hdf5`` are accepted by ``save``, ``load_model``,
``save_weights``, ``load_weights`` and ``ModelCheckpoint``: the file is chainrule's own format
(an npz) under that name, which Keras cannot read, so the first such save of a process warns
(:data:`KERAS_SUFFIXES`; docs/compat.md says why).

A subclassed :class:`~chainrule.models.Model` is rebuilt with ``cls.from_config(config)``: give
it a ``get_config`` that returns its constructor arguments, and pass the class in
``custom_objects`` unless it was defined in the loading program (classes are found by name).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
import warnings

import numpy as np

from chainrule import io, losses, optimizers
from chainrule import metrics as metrics_module
from chainrule.layers.base import deserialize, serialize

# -- Keras's file names ----------------------------------------------------------------------------

#: Keras's file name suffixes, accepted and written in chainrule's own format (an npz).
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")

_warned_suffixes: set = set()


def is_keras_name(path) -> bool:
    """Whether ``path`` ends in one of Keras's suffixes (:data:`KERAS_SUFFIXES`)."""
    return os.path.splitext(os.fspath(path))[1].lower() in KERAS_SUFFIXES


def _warn_keras_name(path: str) -> None:
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _warned_suffixes:
        return
    _warned_suffixes.add(suffix)
    warnings.warn(f"{path} is written in chainrule's own format (an npz), not Keras's; Keras "
                  "cannot read it; use .npz to avoid this warning", UserWarning, stacklevel=5)


def write_file(path, write) -> None:
    """``write(path)`` (``io.save_tree`` or ``io.save_weights``), also for a Keras file name:
    then the npz is written beside it and renamed to ``path`` (atomically), with the warning
    once per suffix and process."""
    path = os.fspath(path)
    if not is_keras_name(path):
        write(path)
        return
    _warn_keras_name(path)
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.npz")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def read_tree(path, with_metadata: bool = False):
    """:func:`chainrule.io.load_tree`, also for a Keras file name written by chainrule."""
    path = os.fspath(path)
    if not is_keras_name(path):
        return io.load_tree(path, with_metadata=with_metadata)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    with tempfile.TemporaryDirectory() as folder:
        alias = os.path.join(folder, "model.npz")
        try:
            os.symlink(os.path.abspath(path), alias)
        except OSError:
            shutil.copyfile(path, alias)
        try:
            return io.load_tree(alias, with_metadata=with_metadata)
        except io.FormatError as error:
            raise io.FormatError(
                str(error).replace(alias, path) + " (chainrule reads only the files it wrote "
                "itself under a Keras name; a file written by Keras cannot be read)") from error


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
    ``filepath`` (``.npz`` or ``.safetensors``; ``.keras`` / ``.h5`` hold an npz), atomically.
    Folders are created."""
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists; pass overwrite=True to replace it")
    folder = os.path.dirname(filepath)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tree = model_tree(model, include_optimizer)
    write_file(filepath, lambda path: io.save_tree(
        path, tree, metadata={"kind": "model", "class_name": type(model).__name__}))


def load_model(filepath, custom_objects: dict | None = None, compile: bool = True,  # noqa: A002
               *, allow_nonfinite: bool = False):
    """Load a model written by ``model.save`` / :func:`save_model`.

    Args:
        filepath: the ``.npz`` or ``.safetensors`` file (or a ``.keras`` / ``.h5`` file that
            chainrule wrote).
        custom_objects: ``{"ClassName": cls}`` for layers and models of your own.
        compile: compile the model again and restore the optimizer state (default True).
        allow_nonfinite: load weights holding NaN or infinity (refused by default: see
            :meth:`~chainrule.layers.Layer.load_state_dict`).

    Returns:
        the model, with the same weights (and so the same predictions), and when compiled the
        same optimizer state.

    Raises:
        FileNotFoundError, chainrule.io.FormatError: no such file, not a model file, damaged,
            or an architecture whose sizes the stored weights cannot match.
    """
    tree, metadata = read_tree(filepath, with_metadata=True)
    if metadata.get("kind") != "model" or not isinstance(tree, dict) or "model" not in tree:
        raise io.FormatError(f"{os.fspath(filepath)}: not a saved model (a weights file? use "
                             "model.load_weights)")
    check_declared_sizes(os.fspath(filepath), tree)
    model = deserialize(tree["model"], custom_objects)
    if tree.get("build_input_shape") is not None and not model.built:
        shape = tree["build_input_shape"]
        shape = [tuple(s) for s in shape] if shape and isinstance(shape[0], list) else tuple(shape)
        model.build(shape, tree.get("input_dtype"))
    model.load_state_dict(tree["weights"], strict=True, allow_nonfinite=allow_nonfinite)
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


# -- the sizes an architecture declares ------------------------------------------------------------

#: Config entries whose product is at most the size of one of the layer's weights (Dense and
#: recurrent ``units``, Maxout ``pieces``, Conv ``filters``, Embedding ``input_dim·output_dim``).
_SIZE_KEYS = ("units", "pieces", "filters", "input_dim", "output_dim")


def check_declared_sizes(path: str, tree: dict) -> None:
    """Refuse a model file whose architecture declares a weight larger than any array the file
    holds, before anything is built (so nothing large is allocated).

    Raises:
        chainrule.io.FormatError: naming the file, the layer, the sizes and the largest array.
    """
    weights = tree.get("weights")
    if not isinstance(weights, dict) or not all(isinstance(a, np.ndarray)
                                                 for a in weights.values()):
        raise io.FormatError(f"{path}: its 'weights' entry is not a dict of arrays")
    largest = max((int(a.size) for a in weights.values()), default=0)
    features = _last_dim(tree.get("build_input_shape"))
    for name, declared, size in _declared_sizes(tree.get("model"), features):
        if size > largest:
            raise io.FormatError(
                f"{path}: layer '{name}' declares {declared}, a weight of at least {size} "
                f"elements, but the largest array in the file has {largest}; refusing to "
                "build it (the file's architecture was changed or does not match its weights)"
            )


def _declared_sizes(node, features=None):
    """``(layer name, "units=..., ...", lower bound)`` for every layer config in ``node``."""
    if isinstance(node, list):
        for item in node:
            yield from _declared_sizes(item)
        return
    if not isinstance(node, dict):
        return
    config = node.get("config") if "class_name" in node else None
    if isinstance(config, dict):
        found = _layer_bound(config, features)
        if found is not None:
            yield (str(config.get("name", node["class_name"])), *found)
        layers = config.get("layers")
        if isinstance(layers, list) and layers:  # a Sequential: its input feeds layers[0]
            first = _last_dim(config.get("input_shape")) or features
            yield from _declared_sizes(layers[0], first)
            yield from _declared_sizes(layers[1:])
        for key, value in config.items():
            if key != "layers":
                yield from _declared_sizes(value)
        return
    for value in node.values():
        yield from _declared_sizes(value)


def _layer_bound(config: dict, features):
    """``("units=..., ...", lower bound)`` of one layer's config, or None if it declares no
    size: the product of its size entries, its kernel size and (with ``units``) its input
    features, each a factor of one weight's shape."""
    factors = {key: config[key] for key in _SIZE_KEYS if _is_count(config.get(key))}
    kernel = config.get("kernel_size")
    kernel = [kernel] if _is_count(kernel) else kernel
    if isinstance(kernel, list) and kernel and all(_is_count(k) for k in kernel):
        factors["kernel_size"] = kernel
    if not factors:
        return None
    own_features = _last_dim(config.get("input_shape")) or features
    if "units" in factors and own_features is not None:
        factors["input features"] = own_features
    bound = 1
    for value in factors.values():
        bound *= math.prod(value) if isinstance(value, list) else value
    return ", ".join(f"{k}={v}" for k, v in factors.items()), bound


def _last_dim(shape):
    """The last entry of a (JSON) shape when it is a positive int, else None."""
    if isinstance(shape, list) and shape and _is_count(shape[-1]):
        return shape[-1]
    return None


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


__all__ = ["KERAS_SUFFIXES", "check_declared_sizes", "is_keras_name", "load_model",
           "model_tree", "read_tree", "save_model", "write_file"]
