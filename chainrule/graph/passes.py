"""Graph passes: rewrite a trace's plan before it is replayed many times.

:func:`optimize` makes a :class:`~chainrule.graph.trace.Plan` like :meth:`Trace.plan
<chainrule.graph.trace.Trace.plan>` does, then runs the passes over its list of steps::

    plan = optimize(trace, [y], fed=[x], constants={w_handle})
    (out,) = plan.run({x: array})

Each pass is a function of a :class:`Program` (the steps being rewritten) and can run on its
own (the tests do); :data:`DEFAULT_PASSES` is the order :func:`optimize` uses:

* :func:`fold_constants`: a pure op whose inputs are all constants is computed once, now;
* :func:`merge_common_subexpressions`: two pure ops of one type and one configuration on
  the same inputs become one;
* :func:`eliminate_dead_code`: steps that no wanted value or kept node needs are dropped;
* :func:`fuse_elementwise`: trees of elementwise ops become one kernel
  (:mod:`chainrule.graph.fusion`);
* :func:`plan_memory`: each value is dropped after its last use, and a fused kernel whose
  value never escapes writes into a buffer kept between runs.

The passes never touch the trace: they make new steps (a merged op's readers get new input
handles in the plan, not in the trace's nodes). Ops that are not pure (dropout, training
batch norm), the nodes in ``keep`` and nodes that are not recorded ops (gradients, assign)
are never folded, merged, fused or dropped; neither are the ops whose saved values a
gradients node reads on the same run (the ``steps`` such a node lists).
"""

from __future__ import annotations

import math

import numpy as np

from chainrule.autograd.function import set_recorder
from chainrule.graph.fusion import (
    MAX_LEAVES,
    Buffer,
    Expression,
    FusedNode,
    can_fuse,
    is_compound,
)
from chainrule.graph.trace import CAPTURE, COMPUTED, OpNode, Plan, Trace
from chainrule.ops.elementwise import (
    Abs,
    Add,
    Clip,
    Div,
    Exp,
    Log,
    Maximum,
    Minimum,
    Mul,
    Neg,
    PowConstant,
    ReLU,
    Sigmoid,
    Sqrt,
    Sub,
    Tanh,
)
from chainrule.ops.linalg import MatMul
from chainrule.ops.nn import ELU, GELU, LeakyReLU, Linear, LogSoftmax, Softmax, Softplus
from chainrule.ops.reduction import Mean, Sum

#: Ops whose forward returns a new array and keeps no reference to its inputs once it
#: returns (for the next run's forward): a buffer read only by these never escapes.
FRESH_RESULT_OPS = frozenset({
    Add, Sub, Mul, Div, Neg, Exp, Log, Sqrt, Abs, Tanh, Sigmoid, ReLU, Maximum, Minimum,
    Clip, PowConstant, LeakyReLU, ELU, Softplus, GELU, MatMul, Linear, Sum, Mean, Softmax,
    LogSoftmax,
})

#: Constants of at most this many elements are compared by value to find equal ones.
SMALL_CONSTANT = 64

#: The attributes the engine sets on every recorded Function (not the op's configuration).
_BOOKKEEPING = frozenset({"inputs", "_versions", "output_meta", "_output_arrays",
                          "_output_refs"})


class Step:
    """One step of a program: a node and the handles it reads (renamed by merging)."""

    __slots__ = ("node", "inputs")

    def __init__(self, node, inputs):
        self.node, self.inputs = node, tuple(inputs)

    @property
    def outputs(self) -> tuple:
        return self.node.outputs


class Program:
    """The steps of a plan while passes rewrite them.

    Attributes:
        trace: the recorded trace (read, never changed).
        steps: :class:`Step` list in a topological order.
        wanted: the handles the plan returns.
        captures: handle -> Tensor read at each run.
        constants: the handles whose values do not change between runs (the caller's
            constant captures and the folded values).
        folded: handle -> array computed by :func:`fold_constants`.
        roots: ids of the nodes that must run even if nothing reads them.
        pinned: ids of the Functions whose saved values another node reads (gradients).
        frees: per step, the handles to drop after it (:func:`plan_memory`), or None.
    """

    def __init__(self, trace: Trace, plan: Plan, constants=(), keep=()):
        self.trace = trace
        self.steps = [Step(node, node.inputs) for node in plan.steps]
        self.wanted = tuple(plan.wanted)
        self.captures = dict(plan.captures)
        self.constants = set(constants).intersection(self.captures)
        self.folded: dict = {}
        kept = {id(trace.nodes[i]) for i in keep}
        self.roots = {id(s.node) for s in self.steps
                      if id(s.node) in kept or not is_op(s.node) or not s.node.function.pure}
        self.pinned = {id(inner.function) for s in self.steps
                       for inner in getattr(s.node, "steps", ())}
        self.frees: list | None = None

    def changeable(self, step) -> bool:
        """Whether a pass may fold, merge, fuse or drop ``step``: a pure recorded op that
        must not run for its own sake and whose saved values nothing reads."""
        return (is_op(step.node) and id(step.node) not in self.roots
                and id(step.node.function) not in self.pinned)

    def to_plan(self) -> Plan:
        if self.frees is not None and len(self.frees) != len(self.steps):
            raise ValueError("plan_memory must be the last pass: the steps changed after it")
        read = {h for s in self.steps for h in s.inputs} | set(self.wanted)
        captures = [(h, t) for h, t in self.captures.items() if h in read]
        folded = {h: a for h, a in self.folded.items() if h in read}
        return Plan([s.node for s in self.steps], captures, self.wanted,
                    step_inputs=[s.inputs for s in self.steps], constants=folded,
                    frees=self.frees)


def is_op(node) -> bool:
    """A recorded op (including a batch reshape), as opposed to gradients, assign, ..."""
    return isinstance(node, OpNode)


# -- constant folding ----------------------------------------------------------------------------


def fold_constants(program: Program) -> None:
    """Compute now, once, each pure op whose inputs are all constants; its outputs become
    constants of the plan (seeded into every run) and the op leaves the steps.

    Ops whose outputs are wanted still run (a folded array handed to the caller could be
    changed in place and change every later run); so do impure ops, kept and pinned ones.
    """
    trace, wanted = program.trace, set(program.wanted)
    known = {h: trace.tensors[h].data for h in program.constants}
    kept = []
    previous = set_recorder(None)
    try:
        for step in program.steps:
            if (program.changeable(step) and all(h in known for h in step.inputs)
                    and not wanted.intersection(step.outputs)):
                arrays = step.node.compute([known[h] for h in step.inputs])
                for h, array in zip(step.outputs, arrays):
                    known[h] = program.folded[h] = array
                    program.constants.add(h)
            else:
                kept.append(step)
    finally:
        set_recorder(previous)
    program.steps = kept


# -- common subexpressions -------------------------------------------------------------------


def merge_common_subexpressions(program: Program) -> None:
    """Keep one of several pure ops of one type and configuration that read the same
    handles; the readers of the others read its outputs instead.

    Small constants with equal bytes count as one value first (``x * 2`` twice makes two
    captures of 2). Configuration is every attribute of the Function except the engine's
    bookkeeping: numbers, strings and tuples compare exactly (0.0 and -0.0 differ, NaN never
    matches), arrays by content, anything else only when it is the same object. An op whose
    outputs are wanted may be the one kept, never one removed (two results would be one
    array).
    """
    wanted = set(program.wanted)
    rename = _equal_constants(program)
    seen: dict = {}
    kept = []
    for step in program.steps:
        if rename:
            step.inputs = tuple(rename.get(h, h) for h in step.inputs)
        match = _same_as_earlier(step, seen, program) if program.changeable(step) else None
        if match is not None and not wanted.intersection(step.outputs):
            rename.update(zip(step.outputs, match.outputs))
        else:
            kept.append(step)
    program.steps = kept


def _equal_constants(program) -> dict[int, int]:
    """Small constant captures with equal values (each Python number in ``x * 2`` is a
    capture of its own) renamed to the first of them, so ops on them can merge."""
    first: dict = {}
    rename = {}
    for h in sorted(program.constants):
        if h not in program.captures:
            continue
        array = program.trace.tensors[h].data
        if type(array) is not np.ndarray or array.size > SMALL_CONSTANT:
            continue
        key = (array.dtype.str, array.shape, array.tobytes())
        if key in first:
            rename[h] = first[key]
        else:
            first[key] = h
    return rename


def _same_as_earlier(step, seen: dict, program) -> Step | None:
    """An earlier step computing what ``step`` computes, or None (then ``step`` is
    remembered)."""
    signature = _configuration(step.node.function)
    if signature is None:
        return None
    hashable, arrays = signature
    key = (type(step.node), type(step.node.function), step.inputs, hashable)
    candidates = seen.setdefault(key, [])
    for earlier, earlier_arrays in candidates:
        if all(a is b or (a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b))
               for a, b in zip(arrays, earlier_arrays)):
            return earlier
    candidates.append((step, arrays))
    return None


def _configuration(function) -> tuple | None:
    """(a hashable description of the attributes, the arrays among them in order)."""
    arrays: list = []
    try:
        items = tuple(sorted((name, _describe(value, arrays))
                             for name, value in vars(function).items()
                             if name not in _BOOKKEEPING))
    except _NotComparable:
        return None
    return items, arrays


class _NotComparable(Exception):
    pass


def _describe(value, arrays: list):
    if value is None or isinstance(value, (bool, str, bytes)):
        return (type(value), value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        if value != value:  # NaN: not equal to itself, so never merged
            raise _NotComparable
        sign = math.copysign(1.0, value) if isinstance(value, (float, np.floating)) else 1.0
        return (type(value), value, sign)
    if isinstance(value, np.dtype):
        return (np.dtype, value.str)
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_describe(v, arrays) for v in value))
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return ("array", len(arrays) - 1)
    return ("object", id(value))  # the same object: the same configuration


# -- dead code -----------------------------------------------------------------------------------


def eliminate_dead_code(program: Program) -> None:
    """Drop the steps whose outputs no wanted value and no root (kept, impure, not an op)
    needs, walking from the last step back."""
    needed = set(program.wanted)
    kept = []
    for step in reversed(program.steps):
        if id(step.node) in program.roots or needed.intersection(step.outputs):
            kept.append(step)
            needed.update(step.inputs)
    kept.reverse()
    program.steps = kept


# -- elementwise fusion --------------------------------------------------------------------------


def fuse_elementwise(program: Program) -> None:
    """Replace each maximal tree of elementwise ops by one :class:`FusedNode`.

    An op joins the group of the ops reading its value when all of them are in one group,
    its value is not wanted, and it has the shape of the group's result (a smaller value,
    e.g. a bias, is computed once on its own rather than once per output element). Groups
    of one op are left alone unless the op is several passes itself (sigmoid, softplus,
    ...). Only floating NumPy arrays are fused.
    """
    steps = program.steps
    readers = _readers(steps)
    wanted = set(program.wanted)
    group_of: dict[int, int] = {}  # step index -> the index of its group's last step
    for i in range(len(steps) - 1, -1, -1):
        if not _fusible(steps[i], program):
            continue
        (h,) = steps[i].outputs
        groups = {group_of.get(j) for j in readers.get(h, ())}
        if h not in wanted and len(groups) == 1 and None not in groups:
            (root,) = groups
            if _same_shape(program.trace, h, steps[root].outputs[0]):
                group_of[i] = root
                continue
        group_of[i] = i
    members: dict[int, list[int]] = {}
    for i in sorted(group_of):
        members.setdefault(group_of[i], []).append(i)
    fused = {root: _fused_node(program, [steps[i] for i in indices])
             for root, indices in members.items() if _worth_fusing(steps, indices)}
    fused = {root: node for root, node in fused.items() if node is not None}
    grouped = {i for root in fused for i in members[root]}
    program.steps = [Step(fused[i], fused[i].inputs) if i in fused else step
                     for i, step in enumerate(steps) if i in fused or i not in grouped]


def _readers(steps) -> dict[int, list[int]]:
    """handle -> the indices of the steps that read it."""
    readers: dict[int, list[int]] = {}
    for j, step in enumerate(steps):
        for h in dict.fromkeys(step.inputs):
            readers.setdefault(h, []).append(j)
    return readers


def _fusible(step, program) -> bool:
    node = step.node
    if type(node) is not OpNode or not program.changeable(step):
        return False
    if not can_fuse(node.function) or len(node.outputs) != 1:
        return False
    tensors = program.trace.tensors
    return all(_floating_array(tensors[h].data) for h in (*step.inputs, *node.outputs))


def _floating_array(array) -> bool:
    return type(array) is np.ndarray and array.dtype in (np.float32, np.float64)


def _same_shape(trace, a: int, b: int) -> bool:
    """Same recorded shape, and both or neither with a free batch axis."""
    return (trace.tensors[a].data.shape == trace.tensors[b].data.shape
            and (a in trace.batched) == (b in trace.batched))


def _worth_fusing(steps, indices) -> bool:
    return len(indices) > 1 or is_compound(steps[indices[0]].node.function)


def _fused_node(program, group) -> FusedNode | None:
    """The kernel of ``group`` (steps in order, the last one's value the result), or None
    when it reads too many arrays for one kernel."""
    tensors = program.trace.tensors
    inside = {s.outputs[0] for s in group}
    leaves = list(dict.fromkeys(h for s in group for h in s.inputs if h not in inside))
    if len(leaves) > MAX_LEAVES:
        return None
    leaf_index = {h: i for i, h in enumerate(leaves)}
    expression = Expression(tensors[h].data.dtype for h in leaves)
    operand: dict[int, tuple] = {}
    for s in group:
        args = [operand[h] if h in operand else ("leaf", leaf_index[h]) for h in s.inputs]
        (h,) = s.outputs
        operand[h] = expression.add_op(s.node.function, args, tensors[h].data.dtype)
    members = [(s.node.function, s.inputs, s.outputs[0]) for s in group]
    output = group[-1].outputs[0]
    name = "Fused[" + ", ".join(s.node.name for s in group) + "]"
    return FusedNode(members, leaves, output, expression, tensors[output].data.dtype, name)


# -- memory plan ---------------------------------------------------------------------------------


def plan_memory(program: Program) -> None:
    """Free each value after its last use; give fused kernels reusable output buffers.

    A run drops its reference to each computed value once the last step that reads it is
    done (wanted and folded values are kept), so the arrays of a long forward pass do not
    all live until it ends. A fused kernel's output goes into a :class:`Buffer` kept between
    runs when it is not wanted and only fused kernels and ops that make new arrays
    (:data:`FRESH_RESULT_OPS`) read it, so no caller and no later op can hold it; kernels
    whose values never live at the same time and have the same recorded shape and dtype
    share one buffer.
    """
    steps = program.steps
    last_use = _last_uses(steps)
    keep = set(program.wanted) | set(program.folded)
    kind = program.trace.kind
    frees: list[list[int]] = [[] for _ in steps]
    for h, i in last_use.items():
        if h not in keep and kind[h] == COMPUTED:
            frees[i].append(h)
    program.frees = [tuple(f) for f in frees]
    _assign_buffers(program, last_use)


def _last_uses(steps) -> dict[int, int]:
    """handle -> the index of the last step that reads it (its producer's if none does),
    for the values the steps compute."""
    last: dict[int, int] = {}
    for i, step in enumerate(steps):
        for h in step.outputs:
            last[h] = i
    for i, step in enumerate(steps):
        for h in step.inputs:
            if h in last:
                last[h] = i
    return last


def _assign_buffers(program, last_use) -> None:
    steps, trace = program.steps, program.trace
    wanted = set(program.wanted)
    readers = _readers(steps)
    free_at: dict[tuple, list[tuple[int, Buffer]]] = {}  # (shape, dtype) -> (free after, buf)
    for i, step in enumerate(steps):
        node = step.node
        if not isinstance(node, FusedNode):
            continue
        (h,) = node.outputs
        if h in wanted or not all(_never_keeps(steps[j]) for j in readers.get(h, ())):
            continue
        recorded = trace.tensors[h].data
        shelf = free_at.setdefault((recorded.shape, recorded.dtype.str, h in trace.batched),
                                   [])
        reusable = next((entry for entry in shelf if entry[0] < i), None)
        if reusable is None:
            node.buffer = Buffer()
        else:
            shelf.remove(reusable)
            node.buffer = reusable[1]
        shelf.append((last_use[h], node.buffer))


def _never_keeps(step) -> bool:
    """Whether ``step`` makes new arrays from what it reads and keeps none of them."""
    node = step.node
    return isinstance(node, FusedNode) or (
        type(node) is OpNode and type(node.function) in FRESH_RESULT_OPS)


# -- the entry point -----------------------------------------------------------------------------

DEFAULT_PASSES = (fold_constants, merge_common_subexpressions, eliminate_dead_code,
                  fuse_elementwise, plan_memory)


def optimize(trace: Trace, wanted, fed=(), *, constants=frozenset(), keep=(),
             passes=DEFAULT_PASSES) -> Plan:
    """A plan computing the handles ``wanted`` from the handles ``fed``, rewritten by
    ``passes`` (functions of a :class:`Program`, run in order).

    Args:
        constants: handles of captures whose values never change between runs (frozen
            weights, constants computed in Python): ops on them alone are folded.
        keep: indices of trace nodes that must run even if no wanted value needs them (side
            effects).

    Raises :class:`~chainrule.graph.trace.MissingInput` as :meth:`Trace.plan` does, and
    ValueError for a "constant" that is not a capture.
    """
    for h in constants:
        if trace.kind[h] != CAPTURE:
            raise ValueError(f"optimize: constant {trace.names[h]} is a {trace.kind[h]} "
                             "value; only captures can be constants")
    program = Program(trace, trace.plan(wanted, fed, keep), constants, keep)
    for run_pass in passes:
        run_pass(program)
    return program.to_plan()
