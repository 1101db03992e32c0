"""The build phase: Graph, placeholder, Variable, gradients, assign.

See :mod:`chainrule.graph` for the whole story; this module makes the nodes, and
:mod:`chainrule.graph.session` runs them.
"""

from __future__ import annotations

import threading

import numpy as np

from chainrule import backend
from chainrule._config import get_default_dtype
from chainrule.autograd.engine import backward
from chainrule.autograd.function import constant, current_recorder, set_recorder
from chainrule.graph.trace import CAPTURE, STAND_IN, Node, OpNode, Trace, link_step
from chainrule.tensor import Tensor


class Graph:
    """A static computational graph: the ops applied to its placeholders and Variables.

    ``with g:`` (or ``with g.as_default():``) makes ``g`` the graph that ``placeholder``,
    ``Variable``, ``gradients`` and ``assign`` add to, and records every op applied to its
    values inside the block. Outside any ``with``, they use the default graph
    (:func:`get_default_graph`).

    Attributes:
        trace: the recorded program (:class:`chainrule.graph.trace.Trace`).
        variables: the Variables made in this graph, in order.
    """

    def __init__(self):
        self.trace = Trace()
        self.variables: list[Tensor] = []
        self.placeholders: dict[int, tuple] = {}  # handle -> (declared shape, dtype)
        self._initial: dict[int, np.ndarray] = {}  # id(Variable) -> its initial value
        self.aliased: set[int] = set()  # handles whose arrays are a Variable's own

    def __enter__(self) -> Graph:
        _entered().append((self, set_recorder(self.trace)))
        return self

    def __exit__(self, *exc_info) -> None:
        graph, previous = _entered().pop()
        set_recorder(previous)

    def as_default(self) -> Graph:
        """This graph, for ``with g.as_default():`` (TensorFlow's spelling of ``with g:``)."""
        return self

    def name_of(self, tensor) -> str | None:
        """The name of ``tensor`` in this graph ("Placeholder_1", "MatMul", ...), or None."""
        h = self.trace.handle(tensor)
        return None if h is None else self.trace.names[h]

    def __contains__(self, tensor) -> bool:
        return self.trace.handle(tensor) is not None

    def __repr__(self) -> str:
        return (f"<Graph: {len(self.placeholders)} placeholders, {len(self.variables)} "
                f"variables, {len(self.trace.nodes)} nodes>")


class Operation:
    """A graph node run for its effect (TensorFlow's Operation); ``Session.run`` gives None."""

    def __init__(self, graph: Graph, index: int):
        self.graph, self.index = graph, index

    @property
    def name(self) -> str:
        return self.graph.trace.nodes[self.index].name

    def __repr__(self) -> str:
        return f"<Operation {self.name}>"


# -- the default graph -----------------------------------------------------------------------

_local = threading.local()
_default: Graph | None = None
_default_lock = threading.Lock()


def _entered() -> list:
    """This thread's stack of (graph, previous recorder) for the ``with`` blocks entered."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def get_default_graph() -> Graph:
    """The graph that new nodes go to: the innermost ``with g:``, else the global default graph.

    Building on the default graph (a ``placeholder`` or ``Variable`` made outside any ``with``)
    starts recording ops in this thread; making a :class:`Session` on it stops recording
    (the build phase ends where the run phase starts), and a later ``placeholder``,
    ``Variable``, ``gradients`` or ``assign`` starts it again.
    """
    stack = _entered()
    if stack:
        return stack[-1][0]
    global _default
    with _default_lock:
        if _default is None:
            _default = Graph()
        return _default


def reset_default_graph() -> None:
    """Replace the default graph by an empty one and stop recording into the old one."""
    global _default
    if _entered():
        raise RuntimeError("reset_default_graph: not allowed inside a `with graph:` block")
    if _default is not None and current_recorder() is _default.trace:
        set_recorder(None)
    _default = None


def _building() -> Graph:
    """The graph to add to; on the default graph outside ``with``, recording starts."""
    graph = get_default_graph()
    if not _entered() and current_recorder() is None:
        set_recorder(graph.trace)
    return graph


def end_build(graph: Graph) -> None:
    """Stop the implicit recording of ``graph`` in this thread (a Session on it was made)."""
    if current_recorder() is graph.trace and all(g is not graph for g, _ in _entered()):
        set_recorder(None)


# -- placeholders and Variables ----------------------------------------------------------------


def placeholder(shape, dtype="float32", name: str | None = None) -> Tensor:
    """A value fed at run time: ``Session.run(..., feed_dict={placeholder: array})``.

    Args:
        shape: a tuple of ints and None (a free axis, e.g. the batch: ``(None, 784)``).
        dtype: "float32" (default) or any NumPy dtype.
        name: for messages (default "Placeholder", then "Placeholder_1", ...).

    TensorFlow's order, ``placeholder(tf.float32, [None, 784])``, is accepted too. While the
    graph is built the placeholder holds a stand-in array of its shape (None axes of length
    2, values 0.5, or 0 for integers), so every op checks its shapes at once.
    """
    if isinstance(shape, (str, type, np.dtype)):  # TensorFlow's placeholder(dtype, shape)
        shape, dtype = dtype, shape
        if shape is None or isinstance(shape, str):
            raise ValueError("placeholder: give a shape, e.g. (None, 784) (None: a free axis)")
    shape = (shape,) if isinstance(shape, (int, np.integer)) or shape is None else shape
    shape = tuple(None if d is None else int(d) for d in shape)
    dtype = np.dtype(dtype)
    fill = 0.5 if dtype.kind in "fc" else 0
    data = np.full(tuple(STAND_IN if d is None else d for d in shape), fill, dtype=dtype)
    graph = _building()
    t = Tensor(data)
    h = graph.trace.add_input(t, graph.trace.unique_name(name or "Placeholder"),
                              free_batch=bool(shape) and shape[0] is None)
    graph.placeholders[h] = (shape, dtype)
    return t


def Variable(initial_value, name: str | None = None, dtype=None,  # noqa: N802 - TF's name
             trainable: bool = True) -> Tensor:
    """A value that lives across runs and that ``assign`` changes (TensorFlow's Variable).

    It is a leaf Tensor (``requires_grad`` when floating and ``trainable``) holding
    ``initial_value`` from the start, so ``global_variables_initializer`` is optional: it
    puts the initial values back.
    """
    graph = _building()
    if isinstance(initial_value, Tensor):
        initial_value = initial_value.data
    array = np.array(initial_value, dtype=dtype)
    if dtype is None and array.dtype.kind == "f":
        array = array.astype(get_default_dtype())
    t = Tensor(array, requires_grad=trainable and array.dtype.kind in "fc")
    graph.trace.add_capture(t, graph.trace.unique_name(name or "Variable"))
    graph.variables.append(t)
    graph._initial[id(t)] = array.copy()
    return t


# -- gradients -----------------------------------------------------------------------------


class GradientsNode(Node):
    """∂(Σ ys)/∂x for each x: the chain rule over the recorded ops between xs and ys.

    Running it makes thin Tensors around this run's arrays, links them to the recorded
    Functions (whose forward ran earlier in the same run, so what they saved is this run's)
    and calls the engine's ``backward``: the same code, and so the same numbers, as
    define-by-run's ``loss.backward()``. Each op's own backward runs, so masks (ReLU, max)
    and fused first-order ops (Dense's linear, softmax cross-entropy) are right on every run.
    """

    __slots__ = ("steps", "ys", "grad_ys", "xs")

    def __init__(self, steps, ys, grad_ys, xs):
        self.steps, self.ys, self.grad_ys, self.xs = steps, ys, grad_ys, xs
        reads = list(ys) + [h for h in grad_ys if h is not None] + list(xs)
        for step in steps:
            reads.extend(step.inputs)
            reads.extend(step.outputs)
        self.inputs = tuple(dict.fromkeys(reads))

    def compute(self, arrays) -> tuple:
        value = dict(zip(self.inputs, arrays))
        wrap = Tensor._from_op
        tensors = {}
        for h in self.xs:
            leaf = tensors[h] = wrap(value[h], None)
            leaf.requires_grad = True
        for step in self.steps:
            inputs = [tensors[h] if h in tensors else wrap(value[h], None) for h in step.inputs]
            for h, t in zip(step.outputs, link_step(step, inputs, value)):
                tensors[h] = t
        outputs, seeds = [], []
        for y, g in zip(self.ys, self.grad_ys):
            if y in tensors:
                outputs.append(tensors[y])
                seed = value[g] if g is not None else None
                if seed is None:
                    seed = backend.get_array_module(value[y]).ones_like(value[y])
                seeds.append(constant(seed))
        xs = [tensors[h] for h in self.xs]
        found = [None] * len(xs)
        if outputs:
            found = backward(outputs, seeds, retain_graph=True, inputs=xs)
        return tuple(_zeros_like(x.data) if g is None else g.data for x, g in zip(xs, found))


def _zeros_like(array):
    return backend.get_array_module(array).zeros_like(array)


def gradients(ys, xs, grad_ys=None) -> list:
    """Symbolic gradients: a graph node computing ∂(Σ ys)/∂x for each x (TensorFlow's).

    Args:
        ys: a graph tensor or a list of them (non-scalars are summed, as in TensorFlow).
        xs: a tensor or a list (Variables, placeholders, layer weights or any graph value).
        grad_ys: the upstream gradient of each y (default ones).

    Returns:
        a list with one graph tensor per x, or None where x does not reach ys.
    """
    graph = _building()
    trace = graph.trace
    ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
    xs = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    grad_ys = [None] * len(ys) if grad_ys is None else (
        list(grad_ys) if isinstance(grad_ys, (list, tuple)) else [grad_ys])
    if len(grad_ys) != len(ys):
        raise ValueError(f"gradients: {len(ys)} ys but {len(grad_ys)} grad_ys")
    y_handles = []
    for i, y in enumerate(ys):
        h = trace.handle(y)
        if h is None:
            raise ValueError(f"gradients: ys[{i}] (shape {_shape(y)}) is not a value of this graph")
        y_handles.append(h)
    g_handles = []
    for y, g in zip(ys, grad_ys):
        if g is not None:
            g = g if isinstance(g, Tensor) else Tensor(np.asarray(g, dtype=y.dtype))
            if g.shape != y.shape:
                raise ValueError(f"gradients: grad_ys of shape {g.shape} for a y of shape "
                                 f"{y.shape}")
        g_handles.append(None if g is None else trace.add_capture(g))
    x_handles = [trace.handle(x) for x in xs]
    for i, (x, h) in enumerate(zip(xs, x_handles)):
        if h is not None and x.dtype.kind not in "fc":
            raise TypeError(f"gradients: xs[{i}] ({trace.names[h]}) has dtype {x.dtype}; "
                            "only floating values have gradients")
    wanted = [h for h in dict.fromkeys(x_handles) if h is not None]
    steps, reached = _path(trace, y_handles, wanted)
    connected = [h for h in wanted if h in reached]
    results = {}
    if connected:
        node = GradientsNode(steps, y_handles, g_handles, connected)
        previous = set_recorder(None)  # the backward's own ops are not graph nodes
        try:
            for step in steps:  # what the ops saved may be a run's: save the stand-ins' again
                step.compute([trace.tensors[h].data for h in step.inputs])
            arrays = node.compute([trace.tensors[h].data for h in node.inputs])
        finally:
            set_recorder(previous)
        outs = [Tensor(a) for a in arrays]
        trace.add_node(node, [trace.tensors[h] for h in node.inputs], outs, "gradients")
        results = dict(zip(connected, outs))
    return [results.get(h) for h in x_handles]


def _path(trace: Trace, ys: list, xs: list):
    """The recorded ops between ``xs`` and ``ys``, in order, and the handles they reach."""
    depends = set(xs)
    active = []
    for node in trace.nodes:
        if any(h in depends for h in node.inputs):
            active.append(node)
            depends.update(node.outputs)
    reached = set(ys)
    steps = []
    for node in reversed(active):
        if any(h in reached for h in node.outputs):
            if not isinstance(node, OpNode):
                raise NotImplementedError(
                    f"gradients: the path from the ys to the xs goes through {node.name}, "
                    "which has no gradient in a graph (gradients of gradients, or through "
                    "assign, are not supported)"
                )
            steps.append(node)
            reached.update(node.inputs)
    steps.reverse()
    return steps, reached


def _shape(t):
    return tuple(t.shape) if hasattr(t, "shape") else type(t).__name__


# -- assign and initializers -----------------------------------------------------------------


class AssignNode(Node):
    """Write the value into the Variable; its output is the new value."""

    __slots__ = ("variable",)

    def __init__(self, variable: Tensor):
        self.variable = variable

    def compute(self, arrays) -> tuple:
        (value,) = arrays
        var = self.variable
        if value.shape != var.data.shape:
            raise ValueError(f"{self.name}: a value of shape {value.shape} for a variable of "
                             f"shape {var.data.shape}")
        new = backend.get_array_module(var.data).array(value, dtype=var.data.dtype)
        var.data = new  # a new array: the values this run already read stay as they were
        var._version += 1
        return (new,)


def assign(variable: Tensor, value, name: str | None = None) -> Tensor:
    """A node that, when run, writes ``value`` into ``variable`` (the training update).

    ``Session.run(assign(W, W - lr * dW))`` performs the update and returns the new value.
    Every run reads each Variable once, when it starts: all the nodes of one run see the
    values from before its assigns, and the next run sees the new ones.
    """
    graph = _building()
    trace = graph.trace
    h = trace.handle(variable)
    if not isinstance(variable, Tensor) or h is None or trace.kind[h] != CAPTURE:
        raise TypeError("assign: the target must be a Variable (or a layer weight) of this "
                        f"graph, got {type(variable).__name__} of shape {_shape(variable)}")
    if not isinstance(value, Tensor):
        value = Tensor(np.asarray(value, dtype=variable.dtype))
    label = trace.names[h]
    if value.shape != variable.shape:
        raise ValueError(f"assign to {label} of shape {variable.shape}: the value has shape "
                         f"{value.shape}")
    out = Tensor(value.data.astype(variable.dtype))  # what the node gives at build time
    node = trace.add_node(AssignNode(variable), [value], [out], name or f"assign_{label}")
    graph.aliased.update(node.outputs)
    return out


class _InitNode(Node):
    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = pairs

    def compute(self, arrays) -> tuple:
        for var, initial in self.pairs:
            var.data = initial.copy()
            var._version += 1
        return ()


def global_variables_initializer() -> Operation:
    """An Operation that puts every Variable of the graph back to its initial value.

    Variables already hold their initial values, so TensorFlow 1 code that runs this first
    works unchanged, and running it again restarts training.
    """
    graph = _building()
    pairs = [(v, graph._initial[id(v)]) for v in graph.variables]
    graph.trace.add_node(_InitNode(pairs), [], [], "init")
    return Operation(graph, len(graph.trace.nodes) - 1)
