"""Trace once, replay: ``chainrule.jit``, define-by-run's code at a static graph's speed.

``step = chainrule.jit(fn)`` returns a :class:`TracedFunction`. Its first call with a new
*signature* (the shapes, dtypes and ``requires_grad`` of the Tensor and array arguments, the
values of the other arguments, whether gradients are on, and the training mode of every layer
the call ran) runs ``fn`` eagerly while a :class:`~chainrule.graph.trace.Trace` records it:

* the ops ``fn`` applies (nodes of the trace);
* ``loss.backward()`` (a :class:`BackwardNode`: on replay the engine's own backward runs over
  the recorded ops, so the gradients are the same numbers as define-by-run's);
* ``optimizer.zero_grad()`` and ``optimizer.step()`` (:class:`EffectNode`: replayed as they
  are, on the parameters' arrays).

Later calls with that signature *replay* it: each recorded op's ``forward`` runs on arrays, in
order, with no layer ``__call__``, no Tensor, no graph node and no shape checks on the way,
then the backward and the effects. Dropout draws its masks and batch normalisation updates its
moving statistics inside their ops, so a replay does what the eager call does: with the same
seed, the same losses and weights (see ``tests/graph/test_jit.py``).

What a trace cannot see, as ``torch.jit.trace`` and ``jax.jit`` cannot: Python that reads
values. An ``if`` on a tensor, ``.item()``, ``float(t)`` or ``.numpy()`` inside ``fn`` runs once,
while recording, and its result is a constant of the trace; a :class:`JitWarning` names the
value read. Tensors that ``fn`` reads from outside (not arguments) are read again on each replay
when they are weights of a layer the call ran or require a gradient, and are constants of the
trace otherwise (pass them as arguments if they change). Python side effects other than the
optimizer's (printing, appending to a list, a metric's update) happen only on the tracing call.
"""

from __future__ import annotations

import functools
import warnings
from collections import namedtuple

import numpy as np

from chainrule import backend
from chainrule._config import flags
from chainrule.autograd.engine import backward as engine_backward
from chainrule.autograd.function import constant
from chainrule.graph.trace import CAPTURE, COMPUTED, INPUT, Node, OpNode, Trace, link_step
from chainrule.tensor import Tensor


class JitWarning(UserWarning):
    """A traced function did something a replay will not repeat (it read a value in Python)."""


CacheInfo = namedtuple("CacheInfo", "hits misses traces signatures")


def jit(fn=None, *, optimize: bool = True):
    """Trace ``fn`` on its first call per signature, replay the trace on later calls.

    Usable as ``step = chainrule.jit(fn)`` or as the decorator ``@chainrule.jit``.
    ``optimize``: run the graph passes (:mod:`chainrule.graph.passes`) on traces that only
    compute (no backward, no optimizer step): constant folding, common subexpressions,
    elementwise fusion and the memory plan.

    >>> import chainrule as cr
    >>> @cr.jit
    ... def f(x):
    ...     return (x * 2 + 1).relu()
    >>> f(cr.tensor([-1.0, 3.0])).tolist()
    [0.0, 7.0]
    >>> f(cr.tensor([2.0, -5.0])).tolist()        # replayed
    [5.0, 0.0]
    >>> f.cache_info().hits, f.cache_info().traces
    (1, 1)
    """
    if fn is None:
        return functools.partial(jit, optimize=optimize)
    return TracedFunction(fn, optimize)


class TracedFunction:
    """``fn`` with one trace per signature (see the module docstring)."""

    def __init__(self, fn, optimize: bool = True):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.optimize = optimize
        self._entries: dict[tuple, list[TracedCall]] = {}
        self.hits = self.misses = 0

    def __call__(self, *args):
        key = signature(args, self.fn)
        for entry in self._entries.get(key, ()):
            if entry.modes_match():
                self.hits += 1
                return entry.replay(args)
        self.misses += 1
        entry, result = TracedCall.record(self.fn, args, self.optimize)
        self._entries.setdefault(key, []).append(entry)
        return result

    def cache_info(self) -> CacheInfo:
        """``(hits, misses, traces, signatures)``: replays, tracing calls, traces kept, and the
        signature of each trace (one per signature and set of layer modes)."""
        signatures = [key for key, entries in self._entries.items() for _ in entries]
        return CacheInfo(self.hits, self.misses, len(signatures), signatures)

    def clear_cache(self) -> None:
        """Forget every trace (the next call traces again)."""
        self._entries.clear()

    def __get__(self, instance, owner):  # a jitted method binds like a function
        return self if instance is None else functools.partial(self, instance)

    def __repr__(self) -> str:
        return f"<chainrule.jit of {getattr(self.fn, '__qualname__', self.fn)!r}>"


def signature(args, fn=None) -> tuple:
    """What a trace is specialised to: per argument its kind and shape/dtype (arrays and
    Tensors) or value (everything else), and whether gradients are on."""
    key = []
    for i, a in enumerate(args):
        if _is_value(a):
            key.append(_value_key(a))
        elif _is_static(a):
            key.append(("static", type(a).__name__, a))
        elif isinstance(a, (list, tuple)) and all(_is_static(v) for v in a):
            key.append(("static", type(a).__name__, tuple(a)))
        elif isinstance(a, (list, tuple)) and all(_is_value(v) for v in a):
            key.append((type(a).__name__, tuple(_value_key(v) for v in a)))
        else:
            name = getattr(fn, "__qualname__", "fn")
            raise TypeError(
                f"jit({name}): argument {i} is a {type(a).__name__}; a traced function takes "
                "Tensors and arrays (or lists of them), and numbers, strings, None or tuples "
                "of them (which are part of the signature)")
    return (flags.grad_enabled, tuple(key))


def _is_value(a) -> bool:
    return isinstance(a, Tensor) or backend.is_array(a)


def _is_static(a) -> bool:
    return a is None or isinstance(a, (bool, int, float, str, np.generic))


def _value_key(a) -> tuple:
    if isinstance(a, Tensor):
        return ("tensor", a.data.shape, a.data.dtype.str, a.requires_grad,
                backend.device_of(a.data))
    return ("array", a.shape, a.dtype.str, backend.device_of(a))


# -- recording ---------------------------------------------------------------------------------


class JitTrace(Trace):
    """A Trace that also records backward calls, optimizer effects, the layers that ran (for
    their training mode) and warns about values read in Python."""

    def __init__(self, fn_name: str):
        super().__init__()
        self.fn_name = fn_name
        self.layers: dict[int, object] = {}
        self.effects: list[int] = []  # indices of the nodes that must always run
        self.current_args: dict[int, Tensor] = {}  # input handle -> this call's Tensor

    def record(self, function, inputs, outputs) -> None:
        """Keep every op the function runs, also those on Tensors from outside it (a layer's
        moving statistics, a constant): which of those change between calls is decided when
        the plan is made (:func:`constant_handles`), and constant ones are folded there."""
        self.add_node(OpNode(function), inputs,
                      outputs if function.multi_output else (outputs,), function.name)

    def note_layer(self, layer) -> None:
        self.layers.setdefault(id(layer), layer)

    def note_read(self, tensor, how: str) -> None:
        h = self.handle(tensor)
        if h is None or self.kind[h] == CAPTURE or h in self._warned:
            return
        self._warned.add(h)
        warnings.warn(
            f"jit({self.fn_name}): the function reads the value of {self.names[h]} "
            f"(shape {tuple(tensor.shape)}) in Python ({how}) while it is traced; replays keep "
            "what it did with this call's value. Return the tensor and read it outside, or "
            "leave this function eager", JitWarning, stacklevel=4)

    def record_backward(self, tensor, grad, retain_graph, create_graph) -> bool:
        """Tensor.backward's hook: record the backward as a node; returns True, the graph must
        be retained (the recorded ops are replayed)."""
        h = self.handle(tensor)
        if h is None or self.kind[h] != COMPUTED:
            warnings.warn(
                f"jit({self.fn_name}): backward() on a tensor of shape {tuple(tensor.shape)} "
                "that no op of the trace computed (an argument or a leaf): it runs on this call "
                "only, and replays do not repeat it", JitWarning, stacklevel=4)
            return bool(retain_graph)
        if create_graph:
            raise NotImplementedError(
                f"jit({self.fn_name}): backward(create_graph=True) cannot be traced; leave "
                "functions that take gradients of gradients eager")
        seed = None
        if grad is not None:
            seed = grad if isinstance(grad, Tensor) else Tensor(np.asarray(grad))
        node = BackwardNode(self, h, seed)
        self.effects.append(len(self.nodes))
        self.add_node(node, node.read_tensors(), [], "backward")
        return True

    def record_effect(self, effect, name: str) -> None:
        """An array-level side effect to repeat on every replay (``optimizer.step``)."""
        self.effects.append(len(self.nodes))
        self.add_node(EffectNode(effect), [], [], name)


class EffectNode(Node):
    """Calls ``effect()`` (an optimizer's ``step`` or ``zero_grad``) on every replay."""

    __slots__ = ("effect",)

    def __init__(self, effect):
        self.effect = effect

    def compute(self, arrays) -> tuple:
        self.effect()
        return ()


class BackwardNode(Node):
    """``loss.backward()`` replayed: the recorded ops between the leaves that require a
    gradient and the loss are linked to this run's arrays (thin Tensors, the same Function
    objects, whose forward just ran and saved this run's values) and the engine's backward
    runs over them, accumulating into the leaves' ``.grad`` as define-by-run does."""

    __slots__ = ("trace", "loss", "seed", "steps", "_read")

    def __init__(self, trace: JitTrace, loss: int, seed):
        self.trace, self.loss, self.seed = trace, loss, seed
        self.steps = path_to(trace, [loss])
        reads = [loss]
        for step in self.steps:
            reads.extend(step.inputs)
        self._read = list(dict.fromkeys(reads))

    def read_tensors(self) -> list:
        tensors = [self.trace.tensors[h] for h in self._read]
        return tensors + ([self.seed] if self.seed is not None else [])

    def compute(self, arrays) -> tuple:
        value = dict(zip(self.inputs, arrays))
        tensors = link(self.trace, self.steps, value)
        loss = tensors[self.loss]
        seed = None if self.seed is None else constant(value[self.inputs[-1]])
        previous = flags.grad_enabled
        flags.grad_enabled = True  # the engine's backward as in the eager call
        try:
            engine_backward(loss, seed, retain_graph=True)
        finally:
            flags.grad_enabled = previous
        return ()


def path_to(trace: Trace, targets) -> list:
    """The recorded op nodes through which a gradient flows into the ``targets`` (handles):
    those computing them from values that require a gradient, in recording order."""
    needs_grad: set[int] = {h for h, t in enumerate(trace.tensors)
                            if trace.kind[h] != COMPUTED and t.requires_grad}
    steps = []
    for node in trace.nodes:
        if not isinstance(node, OpNode):
            continue
        if any(h in needs_grad for h in node.inputs):
            needs_grad.update(node.outputs)
            steps.append(node)
    # keep only the nodes the targets depend on
    wanted, kept = set(targets), []
    for node in reversed(steps):
        if any(h in wanted for h in node.outputs):
            wanted.update(node.inputs)
            kept.append(node)
    kept.reverse()
    return kept


def link(trace: JitTrace, steps, value: dict) -> dict:
    """Thin Tensors around this run's arrays, wired to the recorded Functions of ``steps`` as
    the engine expects (inputs, kept outputs): a graph the engine's backward can walk. Leaves
    are the captured Tensors themselves (the weights, whose ``.grad`` accumulates) and this
    call's argument Tensors."""
    wrap = Tensor._from_op
    tensors: dict[int, Tensor] = {}
    for step in steps:
        inputs = []
        for h in step.inputs:
            t = tensors.get(h)
            if t is None:
                kind = trace.kind[h]
                if kind == CAPTURE:
                    t = trace.tensors[h]
                elif kind == INPUT:
                    t = trace.current_args[h]
                else:  # computed by an op off the gradient's path: a constant here
                    t = wrap(value[h], None)
                tensors[h] = t
            inputs.append(t)
        for h, t in zip(step.outputs, link_step(step, inputs, value)):
            tensors[h] = t
    return tensors


# -- one trace -----------------------------------------------------------------------------


class TracedCall:
    """One signature's trace of a function and the plan that replays it."""

    def __init__(self, trace: JitTrace, inputs, output, optimize: bool):
        self.trace = trace
        #: per argument: its input handle, a tuple of them (a list of Tensors), or None (static)
        self.inputs = inputs
        self.output = output  # the returned structure, with ("value", handle) leaves
        self.modes = [(layer, layer.training) for layer in trace.layers.values()]
        wanted = sorted({h for h in _leaves(output)})
        self.wanted = wanted
        fed = [h for spec in inputs if spec is not None
               for h in (spec if type(spec) is tuple else (spec,))]
        self.links_output = flags.grad_enabled and not trace.effects and any(
            trace.kind[h] == COMPUTED and trace.tensors[h].requires_grad for h in wanted)
        self._steps_to_output = path_to(trace, wanted) if self.links_output else None
        if self.links_output:  # the replay links the path back into a graph: it needs its values
            for step in self._steps_to_output:
                wanted.extend(h for h in step.inputs + step.outputs
                              if trace.kind[h] == COMPUTED)
            self.wanted = wanted = sorted(set(wanted))
        self.plan = make_plan(trace, wanted, fed, optimize and not self.links_output
                              and not trace.effects)
        _forget_recorded_values(trace)

    @classmethod
    def record(cls, fn, args, optimize: bool):
        """Run ``fn(*args)`` eagerly while recording; returns (the trace, the result)."""
        trace = JitTrace(getattr(fn, "__qualname__", "fn"))
        inputs, call_args = [], []
        for i, a in enumerate(args):
            if _is_value(a):
                t = cls._add_argument(trace, a, f"arg{i}")
                inputs.append(trace.handle(t))
                call_args.append(t)
            elif isinstance(a, (list, tuple)) and a and all(_is_value(v) for v in a):
                ts = [cls._add_argument(trace, v, f"arg{i}[{j}]") for j, v in enumerate(a)]
                inputs.append(tuple(trace.handle(t) for t in ts))
                call_args.append(type(a)(ts))
            else:
                inputs.append(None)
                call_args.append(a)
        with trace.recording():
            result = fn(*call_args)
        for node in trace.nodes:
            if isinstance(node, OpNode):
                node.function.in_trace = True  # release() keeps what a replay needs
        output = _structure(trace, result)
        warn_about_batch_constants(trace)
        return cls(trace, inputs, output, optimize), result

    @staticmethod
    def _add_argument(trace: JitTrace, value, name: str) -> Tensor:
        t = value if isinstance(value, Tensor) else Tensor._from_op(value, None)
        if trace.handle(t) is not None:
            raise ValueError(f"jit({trace.fn_name}): {trace.names[trace.handle(t)]} and {name} "
                             "are the same Tensor; pass it once")
        trace.current_args[trace.add_input(t, name=name)] = t
        return t

    def modes_match(self) -> bool:
        return all(layer.training == mode for layer, mode in self.modes)

    def replay(self, args):
        trace = self.trace
        feeds, current = {}, trace.current_args
        for h, a in zip(self.inputs, args):
            if h is None:
                continue
            if type(h) is tuple:
                for hi, ai in zip(h, a):
                    _feed(feeds, current, hi, ai)
            else:
                _feed(feeds, current, h, a)
        results = self.plan.run(feeds)
        values = dict(zip(self.wanted, results))
        tensors = None
        if self.links_output:
            tensors = link(trace, self._steps_to_output, values)
        current.clear()  # drop this call's arguments
        return _rebuild(self.output, values, tensors)


def _forget_recorded_values(trace: JitTrace) -> None:
    """Once the plan is made, the values computed while recording are needed only for their
    shapes and dtypes: replace them by stand-ins of no memory (a CNN's first batch of
    activations would otherwise stay alive with the trace)."""
    for h, kind in enumerate(trace.kind):
        if kind == COMPUTED:
            data = trace.tensors[h].data
            if backend.device_of(data) == "cpu":
                stand_in = Tensor._from_op(np.broadcast_to(np.zeros((), data.dtype), data.shape),
                                           None)
                stand_in.requires_grad = trace.tensors[h].requires_grad
                trace._handle_of.pop(id(trace.tensors[h]), None)  # (its id may be reused)
                trace.tensors[h] = stand_in


def _feed(feeds: dict, current: dict, h: int, value) -> None:
    if isinstance(value, Tensor):
        feeds[h], current[h] = value.data, value
    else:
        feeds[h], current[h] = value, Tensor._from_op(value, None)


def make_plan(trace: JitTrace, wanted, fed, optimize: bool):
    """The replay plan: the graph passes for a trace that only computes, else the pruned
    recording (a backward or an optimizer step replays the recorded ops as they are)."""
    # effects, and ops that draw random numbers or update state, run even when no wanted
    # value reads them (a batch norm whose output is dropped still updates its statistics)
    keep = sorted(set(trace.effects) | {i for i, node in enumerate(trace.nodes)
                                         if isinstance(node, OpNode) and not node.function.pure})
    if optimize:
        from chainrule.graph import passes

        return passes.optimize(trace, wanted, fed, constants=constant_handles(trace), keep=keep)
    return trace.plan(wanted, fed=fed, run_nodes=keep)


def warn_about_batch_constants(trace: JitTrace) -> None:
    """Warn about constants of the trace whose first axis has an argument's batch length: most
    likely computed from the arguments in Python (``one_hot``, ``.data``, NumPy), so replays
    would keep this call's values. A constant of one value throughout (a recurrent layer's
    zero initial state) is the same for every call of its shape and is not warned about."""
    batch = {t.data.shape[0] for h, t in trace.current_args.items() if t.data.ndim}
    batch.discard(1)
    for h in sorted(constant_handles(trace)):
        data = trace.tensors[h].data
        if (data.ndim and data.shape[0] in batch and data.size and data.min() != data.max()
                and any(h in n.inputs for n in trace.nodes)):
            warnings.warn(
                f"jit({trace.fn_name}): {trace.names[h]} (shape {tuple(data.shape)}) is a "
                "constant of the trace whose first axis has the length of an argument's batch; "
                "if it was computed from the arguments in Python (one_hot, .data, NumPy), "
                "replays keep this call's values: compute it with ops, or pass it as an "
                "argument", JitWarning, stacklevel=4)


def constant_handles(trace: JitTrace) -> frozenset:
    """Captures that no replay changes: not a weight of a layer the call ran, no gradient."""
    weights = set()
    for layer in trace.layers.values():
        for w in getattr(layer, "_weights", {}).values():
            weights.add(id(w))
    return frozenset(h for h, t in enumerate(trace.tensors)
                     if trace.kind[h] == CAPTURE and not t.requires_grad
                     and id(t) not in weights)


# -- the returned structure ------------------------------------------------------------------


def _structure(trace: JitTrace, result):
    """``result`` with each Tensor replaced by ("value", handle) (a capture when it is not a
    value of the trace) and everything else kept as ("static", value)."""
    if isinstance(result, Tensor):
        h = trace.handle(result)
        if h is None:
            h = trace.add_capture(result)
        return ("value", h)
    if isinstance(result, (list, tuple)) and type(result) in (list, tuple):
        return (type(result).__name__, [_structure(trace, r) for r in result])
    if isinstance(result, dict):
        return ("dict", {k: _structure(trace, v) for k, v in result.items()})
    return ("static", result)


def _leaves(structure):
    kind, payload = structure
    if kind == "value":
        yield payload
    elif kind in ("list", "tuple"):
        for s in payload:
            yield from _leaves(s)
    elif kind == "dict":
        for s in payload.values():
            yield from _leaves(s)


def _rebuild(structure, values, tensors):
    kind, payload = structure
    if kind == "value":
        if tensors is not None and payload in tensors:
            return tensors[payload]
        return Tensor._from_op(values[payload], None)
    if kind == "list":
        return [_rebuild(s, values, tensors) for s in payload]
    if kind == "tuple":
        return tuple(_rebuild(s, values, tensors) for s in payload)
    if kind == "dict":
        return {k: _rebuild(s, values, tensors) for k, s in payload.items()}
    return payload
