"""Pictures of computational graphs and models, written in DOT (Graphviz's language).

The lectures' example, ``f = (x + y) * z`` at ``x = -2, y = 5, z = -4``::

    >>> import chainrule as cr
    >>> from chainrule import viz
    >>> x = cr.tensor(-2.0, requires_grad=True)
    >>> y = cr.tensor(5.0, requires_grad=True)
    >>> z = cr.tensor(-4.0, requires_grad=True)
    >>> q = x + y
    >>> f = q * z
    >>> graph = viz.trace(f, names={"x": x, "y": y, "z": z, "q": q, "f": f})
    >>> f.backward()
    >>> print(viz.to_dot(graph).splitlines()[5])
      t0 [shape=record, style=filled, fillcolor="#dbeafe", label="{x|data -2|grad -4}"];

* :func:`to_dot` walks back from a tensor through the ops that made it (``tensor.creator``) and
  returns the DOT text: one box per tensor (its name, its values when small, its gradient once
  ``backward`` has run), one ellipse per op, edges input → op → output.
* ``backward()`` frees the graph it runs through, unless ``retain_graph=True``. To draw the
  gradients, :func:`trace` the graph before ``backward`` (the trace holds the tensors, so it
  shows their ``.grad`` when drawn afterwards), or pass ``retain_graph=True``. Non-leaf tensors
  have a gradient only if they asked for it with ``tensor.retain_grad()``.
* :func:`draw` writes the ``.dot`` file and renders it to SVG, PNG or PDF with Graphviz's
  ``dot`` program (Debian: ``apt-get install graphviz``).
* :func:`model_to_dot` and :func:`plot_model` draw a model's layers (Keras's signature).

The output is deterministic: tensors and ops are numbered in the order of the walk (inputs
before the ops that use them), so the same graph always gives the same text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import weakref

import numpy as np

from chainrule import backend, io
from chainrule._config import get_default_dtype
from chainrule.tensor import Tensor

__all__ = ["Graph", "GraphvizNotFoundError", "draw", "label", "model_to_dot", "plot_model",
           "to_dot", "trace"]

#: Arrays with at most this many elements are printed in full; larger ones as shape and dtype.
MAX_ELEMENTS = 8

_RANKDIRS = ("TB", "LR", "BT", "RL")
_FORMATS = ("svg", "png", "pdf", "jpg", "jpeg", "gif", "ps", "dot")
_LEAF_COLOR = "#dbeafe"  # leaves that require a gradient: the parameters and inputs one trains
_OP_COLOR = "#f3f4f6"

# Names attached with label(): id -> (weak reference, name); an entry leaves with its tensor.
_labels: dict = {}


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is needed to render a picture and is not installed."""


# -- naming ------------------------------------------------------------------------------------


def label(tensor: Tensor, name: str) -> Tensor:
    """Attach ``name`` to ``tensor`` for pictures, and return the tensor.

    >>> import chainrule as cr
    >>> q = label(cr.tensor(1.0) + cr.tensor(2.0), "q")
    >>> "{q|data 3}" in to_dot(q)
    True
    """
    key = id(tensor)
    _labels[key] = (weakref.ref(tensor, lambda _, key=key: _labels.pop(key, None)), str(name))
    return tensor


def _label_of(tensor):
    entry = _labels.get(id(tensor))
    return entry[1] if entry is not None and entry[0]() is tensor else None


# -- the graph ---------------------------------------------------------------------------------


class Graph:
    """The structure of a recorded graph, taken by :func:`trace`.

    Attributes:
        tensors: the Tensors, inputs before the ops that use them (the picture reads their
            ``data`` and ``grad`` when it is drawn, so a trace taken before ``backward`` shows
            the gradients after it).
        ops: one ``(name, inputs, outputs)`` per op: the Function's name (``"Add"``) and the
            positions in ``tensors`` of its inputs and of its outputs reached by the walk.
        names: position in ``tensors`` -> name, for the tensors that have one.
    """

    def __init__(self, tensors, ops, names):
        self.tensors = tensors
        self.ops = ops
        self.names = names

    def to_dot(self, show_values: bool = True, show_grads: bool = True,
               rankdir: str = "LR") -> str:
        """The DOT text of this graph (see :func:`to_dot`)."""
        lines = _header(rankdir)
        for i, t in enumerate(self.tensors):
            fields = [self.names.get(i) or _shape_title(t)]
            if show_values:
                fields.append("data " + _values(t.data))
            if show_grads and t.grad is not None:
                fields.append("grad " + _values(t.grad.data))
            style = (f', style=filled, fillcolor="{_LEAF_COLOR}"'
                     if t._node is None and t.requires_grad else "")
            lines.append(f'  t{i} [shape=record{style}, label="{_record(fields)}"];')
        for j, (name, _, _) in enumerate(self.ops):
            lines.append(f'  op{j} [shape=ellipse, style=filled, fillcolor="{_OP_COLOR}", '
                         f'label="{_escape(name)}"];')
        for j, (_, inputs, outputs) in enumerate(self.ops):
            lines.extend(f"  t{i} -> op{j};" for i in inputs)
            lines.extend(f"  op{j} -> t{i};" for i in outputs)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"<Graph: {len(self.tensors)} tensors, {len(self.ops)} ops>"


def trace(outputs, names=None) -> Graph:
    """Take the structure of the graph that made ``outputs`` (a Tensor or a list of them).

    Args:
        outputs: the tensor(s) to walk back from.
        names: the tensors' names, ``{"x": x, "q": q}`` or pairs such as
            ``model.named_parameters()``; otherwise a name attached with :func:`label`, else
            the picture shows the shape.

    Raises:
        RuntimeError: ``backward`` already freed part of the graph (trace before it, or pass
            ``retain_graph=True``).
    """
    roots = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    for t in roots:
        if not isinstance(t, Tensor):
            raise TypeError(f"trace: expected a Tensor, got {type(t).__name__}")
    tensors, position, ops, op_position, seen = [], {}, [], {}, set()
    stack = [(t, False) for t in reversed(roots)]
    while stack:  # iterative depth-first walk: inputs are numbered before their users
        t, inputs_done = stack.pop()
        key = _key(t)
        node = t._node
        if inputs_done:
            position[key] = len(tensors)
            tensors.append(t)
            if node is not None:
                j = op_position.get(id(node))
                if j is None:
                    j = op_position[id(node)] = len(ops)
                    ops.append((node.name, [position[_key(x)] for x in node.inputs], []))
                ops[j][2].append(position[key])
            continue
        if key in seen:
            continue
        seen.add(key)
        stack.append((t, True))
        if node is not None:
            if node.inputs is None:
                raise RuntimeError(
                    f"viz: the graph below {node.name} (output of shape {t.shape}) was freed by "
                    "backward(); take viz.trace(tensor) before backward (it shows the gradients "
                    "once backward has run), or call backward(retain_graph=True)"
                )
            stack.extend((x, False) for x in reversed(node.inputs) if _key(x) not in seen)
    return Graph(tensors, ops, _names(tensors, names))


def _key(t):
    # One entry per value: a leaf by identity, a result by the op output it is (as the engine).
    return (id(t),) if t._node is None else (id(t._node), t._index)


def _names(tensors, names) -> dict:
    if names is None:
        given = {}
    else:
        pairs = names.items() if isinstance(names, dict) else names
        given = {id(t): str(name) for name, t in pairs}
    found = {}
    for i, t in enumerate(tensors):
        name = given.get(id(t)) or _label_of(t)
        if name:
            found[i] = name
    return found


def to_dot(tensor, show_values: bool = True, show_grads: bool = True, rankdir: str = "LR",
           names=None) -> str:
    """The DOT text of the graph that made ``tensor``.

    Args:
        tensor: a Tensor (walked now), a list of Tensors, or a :class:`Graph` from
            :func:`trace`.
        show_values: print each tensor's ``data``: in full for scalars and arrays of at most
            8 elements, else its shape and dtype.
        show_grads: print each tensor's ``grad`` where it has one (leaves after ``backward``;
            non-leaf tensors after ``retain_grad()``).
        rankdir: the layout's direction: "LR" (left to right), "TB", "RL" or "BT".
        names: names of tensors, ``{"x": x, ...}`` (see :func:`trace`).

    One record per tensor (a leaf that requires a gradient is shaded), one ellipse per op with
    the op's name (``Add``, ``Mul``), edges input → op → output; ids ``t0, t1, ...`` and
    ``op0, op1, ...`` follow the walk, so the text is the same on every run.
    """
    graph = tensor if isinstance(tensor, Graph) else trace(tensor, names)
    if names is not None and isinstance(tensor, Graph):
        graph = Graph(graph.tensors, graph.ops,
                      {**graph.names, **_names(graph.tensors, names)})
    return graph.to_dot(show_values=show_values, show_grads=show_grads, rankdir=rankdir)


# -- formatting --------------------------------------------------------------------------------


def _header(rankdir, name="chainrule", extra=()) -> list[str]:
    if rankdir not in _RANKDIRS:
        raise ValueError(f"viz: rankdir must be one of {', '.join(_RANKDIRS)}; got {rankdir!r}")
    return [f"digraph {name} {{", f"  rankdir={rankdir};", *extra,
            '  graph [fontname="Helvetica"];',
            '  node [fontname="Helvetica", fontsize=11];',
            '  edge [fontname="Helvetica", fontsize=9];']


def _shape_title(t) -> str:
    return "scalar" if t.ndim == 0 else _shape_text(t.shape)


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _values(array) -> str:
    """A scalar or a small array in full (4 significant digits); else shape and dtype."""
    array = backend.to_numpy(array)
    if array.size > MAX_ELEMENTS:
        return f"{_shape_text(array.shape)} {array.dtype}"
    if array.ndim == 0:
        return _number(array.item(), array.dtype)
    return _nested(array)


def _nested(array) -> str:
    if array.ndim == 1:
        return "[" + ", ".join(_number(v.item(), array.dtype) for v in array) + "]"
    return "[" + ", ".join(_nested(row) for row in array) + "]"


def _number(value, dtype) -> str:
    if dtype.kind in "biu":
        return str(value)
    if dtype.kind == "c":
        return f"{value:.4g}"
    text = f"{float(value):.4g}"
    return "0" if text == "-0" else text


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _record(fields) -> str:
    """A record label ``{a|b|c}`` (fields stacked across the rank direction)."""
    special = str.maketrans({c: "\\" + c for c in '\\"{}|<>'})
    return "{" + "|".join(str(f).translate(special) for f in fields) + "}"


# -- models ------------------------------------------------------------------------------------


def model_to_dot(model, show_shapes: bool = False, show_dtype: bool = False,
                 show_layer_names: bool = True, rankdir: str = "TB", expand_nested: bool = False,
                 dpi=None, show_layer_activations: bool = False,
                 show_trainable: bool = False) -> str:
    """The DOT text of a model: one box per layer, edges in the order data flows.

    A functional model (``Model(inputs, outputs)``) is drawn as its graph: its inputs, every
    layer, and an edge for each connection (a nested model is one box there). A Sequential's
    layers are drawn in order; any other model's ``model.layers`` (or its sub-layers, in
    order of registration) likewise, as a chain. Arguments as in :func:`plot_model`.
    """
    extra = () if dpi is None else (f"  dpi={int(dpi)};",)
    lines = _header(rankdir, "model", extra)
    edges, previous, counter = [], [None], [0]
    options = dict(show_shapes=show_shapes, show_dtype=show_dtype,
                   show_layer_names=show_layer_names, activations=show_layer_activations,
                   trainable=show_trainable)
    connections = functional_edges(model)
    if connections is not None:
        layers, pairs = connections
        for i, layer in enumerate(layers):
            fields = _record(_layer_fields(layer, **options))
            lines.append(f'  layer{i} [shape=record, label="{fields}"];')
        index = {id(layer): i for i, layer in enumerate(layers)}
        lines += [f"  layer{index[id(a)]} -> layer{index[id(b)]};" for a, b in pairs]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def add(layers, indent):
        for layer in layers:
            nested = _layers_of(layer) if expand_nested else None
            if nested:
                lines.append(f"{indent}subgraph cluster_{counter[0]} {{")
                lines.append(f'{indent}  label="{_escape(_title(layer, show_layer_names))}";')
                counter[0] += 1
                add(nested, indent + "  ")
                lines.append(f"{indent}}}")
                continue
            i = counter[0]
            counter[0] += 1
            fields = _layer_fields(layer, **options)
            lines.append(f'{indent}layer{i} [shape=record, label="{_record(fields)}"];')
            if previous[0] is not None:
                edges.append(f"  layer{previous[0]} -> layer{i};")
            previous[0] = i

    add(_layers_of(model) or [], "  ")
    lines.extend(edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def functional_edges(model):
    """``(layers, [(source, target), ...])`` of a functional model, one edge per connection
    between two layers (an input layer to the layers that read it, ...); None for any other
    model."""
    from chainrule.models.functional import Functional, _symbolic_items

    if not isinstance(model, Functional):
        return None
    edges: list = []
    for node in model._nodes:
        for t in _symbolic_items((node.args, node.kwargs)):
            edge = (t.node.layer, node.layer)
            if not any(a is edge[0] and b is edge[1] for a, b in edges):
                edges.append(edge)
    return list(model.layers), edges


def _layers_of(model):
    layers = getattr(model, "layers", None)
    if isinstance(layers, (list, tuple)):
        return list(layers)
    children = getattr(model, "children", None)
    return list(children()) if callable(children) else []


def _title(layer, show_layer_names) -> str:
    kind = type(layer).__name__
    return f"{layer.name} ({kind})" if show_layer_names else kind


def _layer_fields(layer, show_shapes, show_dtype, show_layer_names, activations, trainable):
    fields = [_title(layer, show_layer_names)]
    if activations and getattr(layer, "activation", None) is not None:
        activation = layer.activation
        fields.append("activation " + getattr(activation, "__name__", type(activation).__name__))
    if show_shapes:
        fields.append("input " + _layer_shape(layer, "input_shape"))
        fields.append("output " + _layer_shape(layer, "output_shape"))
    if show_dtype:
        fields.append(f"dtype {_layer_dtype(layer)}")
    if trainable:
        fields.append("trainable " + ("yes" if getattr(layer, "trainable", True) else "no"))
    return fields


def _layer_dtype(layer) -> np.dtype:
    """The layer's dtype: its own, else its first weight's, else chainrule's default."""
    if getattr(layer, "dtype", None) is not None:
        return np.dtype(layer.dtype)
    for weight in getattr(layer, "weights", None) or ():
        return weight.dtype
    return np.dtype(get_default_dtype())


def _layer_shape(layer, attribute) -> str:
    try:
        shape = getattr(layer, attribute)
    except (AttributeError, NotImplementedError, ValueError, TypeError):
        return "?"
    if shape is None:
        return "?"
    if isinstance(shape, list):  # several inputs (merge layers)
        return ", ".join(_shape_text(s) for s in shape)
    return _shape_text(tuple(shape))


def plot_model(model, to_file: str = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 200, show_layer_activations: bool = False,
               show_trainable: bool = False) -> str:
    """Draw ``model`` to ``to_file`` (Keras's ``plot_model``); the ``.dot`` file goes beside it.

    Args:
        model: a Sequential (layers in order) or any model (``model.layers`` in order).
        to_file: ``.png``, ``.svg``, ``.pdf`` (rendered by Graphviz's ``dot``) or ``.dot``.
        show_shapes: print each layer's input and output shape (``?`` while unbuilt).
        show_dtype: print each layer's dtype.
        show_layer_names: print each layer's name before its class.
        rankdir: "TB" (top to bottom, the default), "LR", "BT" or "RL".
        expand_nested: draw the layers of a nested model inside a box named after it.
        dpi: the resolution of raster formats (PNG, JPEG, GIF).
        show_layer_activations: print the activation of layers that have one.
        show_trainable: print whether each layer is trainable.

    Returns the path written.

    Raises:
        GraphvizNotFoundError: ``dot`` is not installed (the ``.dot`` file is written first).
    """
    raster = os.path.splitext(os.fspath(to_file))[1].lower() in (".png", ".jpg", ".jpeg", ".gif")
    text = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                        show_layer_names=show_layer_names, rankdir=rankdir,
                        expand_nested=expand_nested, dpi=dpi if raster else None,
                        show_layer_activations=show_layer_activations,
                        show_trainable=show_trainable)
    return draw(text, to_file)


# -- rendering ---------------------------------------------------------------------------------


def draw(graph, path, **options) -> str:
    """Write the picture of ``graph`` to ``path`` (``.svg``, ``.png``, ``.pdf``, ...).

    Args:
        graph: a Tensor, a :class:`Graph`, a model (see :func:`model_to_dot`), DOT text, or
            anything with a ``to_dot()`` method.
        path: the picture's file; its extension picks the format. The DOT text is always
            written beside it (``f.svg`` → ``f.dot``); ``.dot`` writes only that.
        options: passed to :func:`to_dot` (or :func:`model_to_dot`, or ``graph.to_dot``).

    Both files are written atomically. Returns ``path``.

    Raises:
        GraphvizNotFoundError: Graphviz's ``dot`` program is not on ``PATH``.
        RuntimeError: ``dot`` failed (its message is included).
    """
    path = os.fspath(path)
    stem, extension = os.path.splitext(path)
    fmt = extension[1:].lower()
    if fmt not in _FORMATS:
        raise ValueError(f"viz.draw: cannot write {path!r}; use one of "
                         + ", ".join("." + f for f in _FORMATS))
    text = _dot_text(graph, options)
    dot_path = stem + ".dot"
    io.atomic_write(dot_path, lambda file: file.write(text.encode("utf-8")))
    if fmt == "dot":
        return path
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            f"viz.draw: Graphviz's `dot` program is not installed, so {path!r} cannot be "
            f"rendered (the DOT text is in {dot_path!r}). Install Graphviz: "
            "`apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` (macOS) or "
            "`conda install graphviz`. The pip package `graphviz` does not include `dot`: it "
            "is only a Python interface to the program"
        )
    result = subprocess.run([program, "-T" + ("jpg" if fmt == "jpeg" else fmt), dot_path],
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"viz.draw: `dot -T{fmt} {dot_path}` failed: "
                           + result.stderr.decode("utf-8", "replace").strip())
    io.atomic_write(path, lambda file: file.write(result.stdout))
    return path


def _dot_text(graph, options) -> str:
    if isinstance(graph, str):
        if options:
            raise TypeError("viz.draw: options cannot change DOT text given as is")
        return graph
    if isinstance(graph, (Tensor, Graph, list, tuple)):
        return to_dot(graph, **options)
    if hasattr(graph, "to_dot"):
        return graph.to_dot(**options)
    from chainrule.layers.base import Layer

    if isinstance(graph, Layer):
        return model_to_dot(graph, **options)
    raise TypeError(f"viz.draw: cannot draw a {type(graph).__name__}; give a Tensor, a "
                    "viz.Graph, a model or DOT text")
