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

import os
import random
import shutil
import subprocess

import numpy as np

from chainrule.data.transforms import to_categorical as _to_categorical

#: The file types ``plot_model`` asks Graphviz's ``dot`` for; ``.dot`` / ``.gv`` are written
#: directly.
DRAWN_SUFFIXES = (".png", ".svg", ".pdf")


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
                 show_layer_names: bool = True, rankdir: str = "TB") -> str:
    """Graphviz's DOT text of ``model``: one box per layer, an arrow per connection.

    A functional model shows its graph; a Sequential its chain (Input first, when it has
    one); a subclassed model its direct sub-layers in the order they were assigned, which
    need not be the order its ``forward`` uses them. (Keras returns a pydot object; this is
    the text itself.)
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"plot_model: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    layers, edges = _layers_and_edges(model)
    lines = [f'digraph "{_quote(model.name)}" {{', f"  rankdir={rankdir};",
             '  node [shape=record, fontname="Helvetica"];']
    for i, layer in enumerate(layers):
        label = type(layer).__name__
        if show_layer_names:
            label = f"{layer.name} | {label}"
        if show_shapes:
            label += f" | {_shape_text(layer)}"
        if show_dtype:
            dtype = getattr(layer, "dtype", None)
            label += f" | {dtype.name if dtype is not None else 'float'}"
        lines.append(f'  n{i} [label="{{{_quote(label)}}}"];')
    position = {id(layer): i for i, layer in enumerate(layers)}
    for source, target in edges:
        lines.append(f"  n{position[id(source)]} -> n{position[id(target)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot_model(model, to_file: str = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               dpi: int = 200, **kwargs) -> str:
    """Draw ``model``'s layers to ``to_file`` (Keras's ``plot_model``) and return its path.

    ``.dot`` / ``.gv``: the DOT text (needs nothing); ``.png``, ``.svg``, ``.pdf``: drawn by
    Graphviz's ``dot`` program. Keras's other arguments (``expand_nested``,
    ``show_trainable``, ...) are accepted and ignored.

    Raises:
        RuntimeError: ``dot`` is not installed (Debian/Ubuntu: ``apt install graphviz``), or
            failed.
        ValueError: another file type.
    """
    del kwargs  # Keras's options that change nothing here
    path = os.fspath(to_file)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".dot", ".gv", *DRAWN_SUFFIXES):
        raise ValueError(f"plot_model: to_file must end in .png, .svg, .pdf, .dot or .gv, got "
                         f"{path!r}")
    text = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    if suffix in (".dot", ".gv"):
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        return path
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError(
            f"plot_model: drawing {path!r} needs Graphviz's 'dot' program, which is not "
            "installed (Debian/Ubuntu: apt install graphviz); or write the DOT text with "
            "to_file='model.dot', or print model.summary()")
    done = subprocess.run([program, f"-T{suffix[1:]}", f"-Gdpi={int(dpi)}", "-o", path],
                          input=text.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"plot_model: dot failed ({done.returncode}): "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return path


def _layers_and_edges(model):
    from chainrule.models.functional import Functional, _symbolic_items
    from chainrule.models.sequential import InputLayer, Sequential

    if isinstance(model, Functional):
        layers = model.layers
        edges = []
        for node in model._nodes:
            for t in _symbolic_items((node.args, node.kwargs)):
                edge = (t.node.layer, node.layer)
                if not any(e[0] is edge[0] and e[1] is edge[1] for e in edges):
                    edges.append(edge)
        return layers, edges
    if isinstance(model, Sequential):
        layers = model.layers
        if model.built and model._build_input_shape is not None:
            layers = [InputLayer(shape=model._build_input_shape[1:], name="input"), *layers]
    else:
        layers = [layer for _, layer in model.named_children()] or [model]
    return layers, list(zip(layers, layers[1:]))


def _shape_text(layer) -> str:
    try:
        shape = layer.output_shape
    except (AttributeError, NotImplementedError, ValueError, TypeError):
        return "?"
    return str(shape).replace("None", "?")


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\<").replace(">", "\\>")


def __getattr__(name):
    # chainrule.utils.data (PyTorch's torch.utils.data names) loads on first use.
    if name == "data":
        import importlib

        return importlib.import_module("chainrule.utils.data")
    raise AttributeError(f"module 'chainrule.utils' has no attribute {name!r}")


__all__ = ["model_to_dot", "normalize", "plot_model", "set_random_seed", "to_categorical"]
