"""Record the ops applied to some Tensors once, then replay them on new arrays.

A :class:`Trace` is a straight-line program. Its values are numbered *handles*, each one of

* an **input**: fed with a new array on every replay (a placeholder, a traced function's
  argument);
* a **capture**: a Tensor from outside the program whose ``.data`` is read when a replay
  starts (a Variable, a layer's kernel, a constant), so updates between replays are seen;
* a **node output**: computed by a recorded :class:`Node`.

Recording uses the one hook of the engine: while :meth:`Trace.recording` is active,
``Function.__call__`` hands every op it runs to :meth:`Trace.record`, which keeps it as an
:class:`OpNode` when one of the op's inputs is a value of the trace or a Tensor that requires a
gradient (the weights of a model); other ops compute constants and are not recorded. The ops
still run on the arrays they get, so recording also computes every value once, on stand-in
data: shapes are checked, and errors name the op and the shapes, as in define-by-run.

Replaying is :meth:`Trace.plan` (once per set of wanted values and fed inputs: it prunes the
nodes they do not need and finds the inputs they do) and :meth:`Plan.run`, which calls each
kept node's ``Function.forward`` on arrays: no Tensor is made and nothing is recorded.

This module knows nothing of sessions or placeholders. A static graph
(:mod:`chainrule.graph`) is a Trace whose inputs are placeholders; a traced function (jit)
is a Trace whose inputs are the function's arguments::

    trace = Trace()
    with trace.recording():
        handles = [trace.add_input(t) for t in example_args]
        out = fn(*example_args)
    plan = trace.plan([trace.handle(out)], fed=handles)
    (y,) = plan.run(dict(zip(handles, new_arrays)))

A free batch axis: an input added with ``free_batch=True`` holds a stand-in whose leading axis
has length :data:`STAND_IN`, and every recorded result of batched values whose leading axis has
that length is batched too. A Reshape of a batched value to ``(STAND_IN, ...)`` (``Flatten``'s
``x.reshape(x.shape[0], -1)``) is kept as a :class:`BatchReshapeNode`, which takes each
replay's batch size; a constant of that leading length used with batched values is warned
about, since it was computed from stand-ins.

A replay keeps what the ops save (masks, softmax probabilities) on the recorded Function
instances, so one trace must not be replayed by two threads at once.

What a trace cannot see: Python that reads values (an ``if`` on a tensor, ``.item()``,
``.numpy()``, ``x.shape[0]``) runs once, during recording, and its result is a constant of the
trace; so are results of functions that are not ops (``argmax``, ``one_hot``, NumPy on
``.data``).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from chainrule import backend
from chainrule.autograd.function import set_recorder
from chainrule.ops.shape import Reshape
from chainrule.tensor import Tensor

INPUT, CAPTURE, COMPUTED = "input", "capture", "computed"

#: The length a free leading (batch) axis has while a trace is recorded (a placeholder's
#: None). Not 1: a size-1 axis would broadcast silently against any batch size on replay.
STAND_IN = 2


class Node:
    """One step of a trace: ``compute(arrays)`` maps its input values to its output values.

    Attributes:
        inputs: the handles of the values it reads.
        outputs: the handles of the values it makes.
        name: for messages, e.g. "Mul_2".
    """

    __slots__ = ("inputs", "outputs", "name")

    def compute(self, arrays) -> tuple:
        raise NotImplementedError


class OpNode(Node):
    """A recorded op: replaying it is its Function's ``forward`` on the input arrays."""

    __slots__ = ("function",)

    def __init__(self, function):
        self.function = function

    def compute(self, arrays) -> tuple:
        ys = self.function.forward(*arrays)
        if self.function.multi_output:
            return tuple(_as_array(y) for y in ys)
        return (_as_array(ys),)


class BatchReshapeNode(OpNode):
    """A Reshape whose target starts with the batch's stand-in length: on replay it takes the
    batch size of its input instead (``Flatten``'s ``x.reshape(x.shape[0], -1)`` reads the
    batch size in Python, which a trace would otherwise keep as a constant)."""

    __slots__ = ("rest",)

    def __init__(self, function):
        super().__init__(function)
        self.rest = tuple(function.shape[1:])

    def compute(self, arrays) -> tuple:
        (x,) = arrays
        self.function.shape = (x.shape[0],) + self.rest
        return (self.function.forward(x),)


def link_step(step: OpNode, inputs, value: dict) -> list:
    """Wire a recorded op to this run's arrays as the engine's backward expects: its inputs are
    the Tensors ``inputs``, its outputs new thin Tensors around ``value``'s arrays (returned),
    kept when the op keeps its output. The Function's forward ran earlier in the same run, so
    what it saved is this run's (a replayed backward: ``gradients``, ``chainrule.jit``)."""
    fn = step.function
    fn.inputs = tuple(inputs)
    fn._versions = ()  # this run's arrays: nothing was modified in place since
    outs = [Tensor._from_op(value[h], fn, i) for i, h in enumerate(step.outputs)]
    if fn.multi_output:
        fn.output_meta = [(y.data.shape, y.data.dtype) for y in outs]
    if fn.keeps_output:
        fn._keep_outputs(outs)
    return outs


def _as_array(y):
    """NumPy returns scalars for 0-d results; the engine makes them 0-d arrays, and so do we."""
    if type(y) is not np.ndarray and backend.device_of(y) == "cpu":
        return np.asarray(y)
    return y


class Trace:
    """The recorded program: handles for values, nodes in the order they ran."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.kind: list[str] = []  # handle -> INPUT, CAPTURE or COMPUTED
        self.tensors: list[Tensor] = []  # handle -> the Tensor recorded for it (kept alive)
        self.names: list[str] = []  # handle -> name for messages
        self.producer: dict[int, int] = {}  # handle -> index of the node that computes it
        self._handle_of: dict[int, int] = {}  # id(Tensor) -> handle
        #: handles whose leading axis is a free batch axis (its length is STAND_IN)
        self.batched: set[int] = set()
        self._warned: set[int] = set()
        self._name_counts: dict[str, int] = {}

    # -- values ------------------------------------------------------------------------------

    def handle(self, tensor) -> int | None:
        """The handle of ``tensor`` in this trace, or None if it is not one of its values."""
        return self._handle_of.get(id(tensor))

    def add_input(self, tensor: Tensor, name: str | None = None,
                  free_batch: bool = False) -> int:
        """Make ``tensor`` a value that is fed on every replay; ``free_batch``: its leading
        axis (of length :data:`STAND_IN`) takes any length then."""
        h = self._add(tensor, INPUT, name or "input")
        if free_batch:
            self.batched.add(h)
        return h

    def add_capture(self, tensor: Tensor, name: str | None = None) -> int:
        """``tensor``'s handle, registering it as a capture (its ``.data`` read at each replay)
        if it is not yet a value of this trace."""
        h = self._handle_of.get(id(tensor))
        if h is None:
            h = self._add(tensor, CAPTURE, name or f"captured{list(tensor.shape)}")
        return h

    def unique_name(self, base: str) -> str:
        """``base``, then ``base_1``, ``base_2``, ... (TensorFlow's node names)."""
        count = self._name_counts.get(base, 0)
        self._name_counts[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def _add(self, tensor, kind, name) -> int:
        if id(tensor) in self._handle_of:
            raise ValueError(f"{name}: this tensor is already a value of the trace")
        h = len(self.kind)
        self.kind.append(kind)
        self.tensors.append(tensor)
        self.names.append(name)
        self._handle_of[id(tensor)] = h
        return h

    # -- nodes -------------------------------------------------------------------------------

    def record(self, function, inputs, outputs) -> None:
        """The engine's hook: keep ``function`` as a node if it reads a value of the trace or
        a Tensor that requires a gradient; otherwise its result is a constant."""
        handle_of = self._handle_of
        for t in inputs:
            if id(t) in handle_of or t.requires_grad:
                break
        else:
            return
        outputs = outputs if function.multi_output else (outputs,)
        batched = self.batched
        if batched and type(function) is Reshape and handle_of.get(id(inputs[0])) in batched \
                and function.shape[:1] == (STAND_IN,):
            node = BatchReshapeNode(function)
        else:
            node = OpNode(function)
        self.add_node(node, inputs, outputs, function.name)
        if batched and any(h in batched for h in node.inputs):
            for h, t in zip(node.outputs, outputs):  # a batch axis stays a batch axis
                if t.data.ndim and t.data.shape[0] == STAND_IN:
                    batched.add(h)
            self._check_constants(node, inputs)

    def _check_constants(self, node, inputs) -> None:
        """Warn about a constant of the batch's stand-in length used with batched values: it
        was computed in Python from stand-in values and will not follow the fed batch."""
        for h, t in zip(node.inputs, inputs):
            if (self.kind[h] == CAPTURE and h not in self.batched and not t.requires_grad
                    and t.data.ndim and t.data.shape[0] == STAND_IN and h not in self._warned):
                self._warned.add(h)
                warnings.warn(
                    f"{node.name}: an input of shape {tuple(t.shape)} is a constant computed "
                    "while recording (not by an op: one_hot, argmax, NumPy on .data?) "
                    f"whose first axis has the batch's stand-in length {STAND_IN}; it keeps "
                    "the stand-in's values and will not follow the fed batch", stacklevel=4)

    def add_node(self, node: Node, inputs, outputs, base_name: str) -> Node:
        """Append ``node``, reading the Tensors ``inputs`` (registered as captures when they
        are not values yet) and making the new Tensors ``outputs``."""
        node.name = self.unique_name(base_name)
        node.inputs = tuple(self.add_capture(t) for t in inputs)
        index = len(self.nodes)
        handles = []
        for i, t in enumerate(outputs):
            name = node.name if len(outputs) == 1 else f"{node.name}:{i}"
            h = self._add(t, COMPUTED, name)
            self.producer[h] = index
            handles.append(h)
        node.outputs = tuple(handles)
        self.nodes.append(node)
        return node

    # -- recording ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def recording(self):
        """Record the ops run inside the block into this trace (nested blocks restore the
        recorder that was active before)."""
        previous = set_recorder(self)
        try:
            yield self
        finally:
            set_recorder(previous)

    # -- replay ------------------------------------------------------------------------------

    def plan(self, wanted, fed=(), run_nodes=()) -> Plan:
        """The nodes needed to compute the handles ``wanted`` (and to run the nodes
        ``run_nodes``, given by index) when the handles ``fed`` are given; pruned, in order.

        Raises :class:`MissingInput` naming the first input that is needed but not fed.
        """
        fed = frozenset(fed)
        needed: set[int] = set()
        captures: dict[int, None] = {}
        seen: set[int] = set()

        def visit(handles, target):
            stack = list(handles)
            while stack:
                h = stack.pop()
                if h in seen or h in fed:
                    continue
                seen.add(h)
                kind = self.kind[h]
                if kind == COMPUTED:
                    index = self.producer[h]
                    if index not in needed:
                        needed.add(index)
                        stack.extend(self.nodes[index].inputs)
                elif kind == CAPTURE:
                    captures[h] = None
                else:
                    raise MissingInput(h, target)

        for h in wanted:
            visit([h], ("value", h))
        for index in run_nodes:
            if index not in needed:
                needed.add(index)
                visit(self.nodes[index].inputs, ("node", index))
        steps = [self.nodes[i] for i in sorted(needed)]
        return Plan(steps, [(h, self.tensors[h]) for h in captures], tuple(wanted))


class MissingInput(LookupError):
    """A replay needs the input ``handle`` (for ``target``: ("value", handle) or ("node",
    index)), and it was not fed."""

    def __init__(self, handle: int, target: tuple):
        super().__init__(handle, target)
        self.handle, self.target = handle, target


class ArrayNode(Node):
    """A node with one output that a plan calls as ``forward(*arrays) -> array`` (a fused
    kernel of :mod:`chainrule.graph.passes`): no list or tuple is built around the call."""

    __slots__ = ()

    def forward(self, *arrays):
        raise NotImplementedError

    def compute(self, arrays) -> tuple:
        return (self.forward(*arrays),)


class Plan:
    """A pruned replay: the captures to read, the nodes to run in order, the values to return.

    Attributes:
        steps: the nodes run, in recording order (a topological order).
        step_inputs: the handles each step reads (its node's ``inputs`` unless a pass renamed
            them: :func:`chainrule.graph.passes.merge_common_subexpressions`).
        constants: handle -> array, values computed once when the plan was made (folded
            constants), put in place at the start of every run.
        frees: per step, the handles whose last use it is: the run drops its references to
            them once the step is done (the memory plan); empty tuples when not planned.

    Everything is decided here, once: :meth:`run` only looks things up.
    """

    def __init__(self, steps, captures, wanted, *, step_inputs=None, constants=None,
                 frees=None):
        self.steps = steps
        self.captures = captures
        self.wanted = wanted
        self.step_inputs = [node.inputs for node in steps] if step_inputs is None \
            else list(step_inputs)
        self.constants = dict(constants or {})
        self.frees = [()] * len(steps) if frees is None else [tuple(f) for f in frees]
        self._compiled = [_compile(node, inputs, free)
                          for node, inputs, free in zip(steps, self.step_inputs, self.frees)]

    def run(self, feeds: dict) -> list:
        """Run the plan with ``feeds`` (handle -> array); the arrays of the wanted handles.

        An error raised by a node is raised again as a RuntimeError naming the node and the
        shapes of its inputs.
        """
        values = dict(feeds)
        for h, t in self.captures:
            values[h] = t.data
        if self.constants:
            values.update(self.constants)
        previous = set_recorder(None)  # nodes that build Tensors (gradients) record nothing
        index = 0
        try:
            for index, (call, inputs, outputs, how, free) in enumerate(  # noqa: B007
                    self._compiled):
                if how == 0:
                    y = call(*[values[h] for h in inputs])
                    values[outputs[0]] = y if type(y) is np.ndarray else _as_array(y)
                elif how == 1:
                    for h, y in zip(outputs, call(*[values[h] for h in inputs])):
                        values[h] = _as_array(y)
                else:
                    for h, y in zip(outputs, call([values[h] for h in inputs])):
                        values[h] = y
                if free:
                    for h in free:
                        del values[h]
        except Exception as err:
            node = self.steps[index]
            shapes = ", ".join(str(tuple(np.shape(values[h])))
                               for h in self.step_inputs[index])
            raise RuntimeError(
                f"{node.name} failed on inputs of shapes {shapes}: {type(err).__name__}: {err}"
            ) from err
        finally:
            set_recorder(previous)
        return [values[h] for h in self.wanted]


def _compile(node, inputs, free) -> tuple:
    """(callable, input handles, output handles, how to call it, handles to drop after) for
    one step: a recorded op is its Function's forward itself, one output (0) or several (1);
    an :class:`ArrayNode` is its ``forward`` (0); other nodes are ``compute(arrays)`` (2)."""
    if type(node) is OpNode:
        return (node.function.forward, inputs, node.outputs,
                1 if node.function.multi_output else 0, free)
    if isinstance(node, ArrayNode):
        return node.forward, inputs, node.outputs, 0, free
    return node.compute, inputs, node.outputs, 2, free
