"""Keras's ``keras.utils`` names: ``to_categorical``, ``normalize``, ``set_random_seed``,
``plot_model`` and ``model_to_dot``.

>>> import chainrule as keras
>>> keras.utils.to_categorical([0, 2], num_classes=3).tolist()
[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]

``plot_model`` writes Graphviz's DOT text of a model's layers; a ``.png``, ``.svg`` or ``.pdf``
file is drawn by Graphviz's ``dot`` program (Debian: ``apt install graphviz``), which is the
only thing it needs (no pydot). :mod:`chainrule.utils.data` holds PyTorch's
``torch.utils.data`` names.
"""

from __future__ import annotations

import random

import numpy as np

from chainrule.data.transforms import to_categorical as _to_categorical


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """One-hot encode integer class labels (Keras's ``to_categorical``): float32 of shape
    ``x.shape + (num_classes,)``; ``num_classes`` defaults to ``max(x) + 1``. Labels of
    shape (N, 1) (CIFAR's) give (N, num_classes), as in Keras."""
    return _to_categorical(x, num_classes=num_classes)


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """``x`` divided by its ``order``-norm along ``axis`` (Keras's ``normalize``); rows of
    norm zero stay zero.

    >>> normalize([[3.0, 4.0]]).tolist()
    [[0.6, 0.8]]
    """
    x = np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
    norm = np.atleast_1d(np.linalg.norm(x, ord=order, axis=axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def set_random_seed(seed: int) -> None:
    """Seed every generator a program may draw from (Keras's ``set_random_seed``):
    chainrule's (:func:`chainrule.manual_seed`: initial weights, dropout, shuffling), NumPy's
    global one (``np.random.*``) and Python's ``random``."""
    from chainrule.random import manual_seed

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed: seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# -- pictures of models ---------------------------------------------------------------------------


def model_to_dot(model, show_shapes: bool = False, show_dtype: bool = False,
                 show_layer_names: bool = True, rankdir: str = "TB", **options) -> str:
    """Graphviz's DOT text of ``model`` (Keras's ``model_to_dot`` gives a pydot object; this
    is the text): :func:`chainrule.viz.model_to_dot`, which draws a functional model's graph
    and any other model's layers as a chain."""
    from chainrule import viz

    return viz.model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                            show_layer_names=show_layer_names, rankdir=rankdir, **options)


def plot_model(model, to_file: str = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               dpi: int = 200, **options) -> str:
    """Keras's ``plot_model``: :func:`chainrule.viz.plot_model` (``.dot`` needs nothing;
    ``.png``, ``.svg``, ``.pdf`` need Graphviz's ``dot``, else
    :class:`~chainrule.viz.GraphvizNotFoundError` names the install command). Returns the
    path written."""
    from chainrule import viz

    return viz.plot_model(model, to_file, show_shapes=show_shapes, show_dtype=show_dtype,
                          show_layer_names=show_layer_names, rankdir=rankdir, dpi=dpi,
                          **options)


def __getattr__(name):
    # chainrule.utils.data (PyTorch's torch.utils.data names) loads on first use.
    if name == "data":
        import importlib

        return importlib.import_module("chainrule.utils.data")
    raise AttributeError(f"module 'chainrule.utils' has no attribute {name!r}")


__all__ = ["model_to_dot", "normalize", "plot_model", "set_random_seed", "to_categorical"]
