"""The run phase: ``Session(graph).run(fetches, feed_dict)`` returns NumPy arrays."""

from __future__ import annotations

import warnings

import numpy as np

from chainrule.graph.graph import (
    GradientsNode,
    Graph,
    Operation,
    end_build,
    get_default_graph,
)
from chainrule.graph.trace import CAPTURE, COMPUTED, INPUT, MissingInput
from chainrule.tensor import Tensor


class Session:
    """Runs a graph: ``sess.run(fetches, feed_dict={placeholder: array, ...})``.

    Args:
        graph: the graph to run (default: :func:`get_default_graph`). Making a session on the
            default graph ends its implicit recording (the build phase is over).

    ``fetches`` is a graph tensor, an :class:`Operation`, or a list, tuple or dict of them
    (nested as you like); ``run`` returns the same structure with a NumPy array for each
    tensor and None for each Operation. Only the nodes the fetches need are run: a
    placeholder that they do not need need not be fed.

    >>> import chainrule.graph as tf
    >>> with tf.Graph() as g:
    ...     a = tf.placeholder((None,))
    ...     b = a * 2
    >>> with tf.Session(g) as sess:
    ...     sess.run(b, feed_dict={a: [1.0, 2.0]})
    array([2., 4.], dtype=float32)
    """

    def __init__(self, graph: Graph | None = None):
        self.graph = get_default_graph() if graph is None else graph
        self._plans: dict = {}
        self._closed = False
        end_build(self.graph)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Free the cached plans; ``run`` refuses afterwards."""
        self._closed = True
        self._plans.clear()

    def run(self, fetches, feed_dict=None):
        """Compute ``fetches`` from ``feed_dict`` (see the class docstring)."""
        if self._closed:
            raise RuntimeError("Session.run: this session is closed")
        end_build(self.graph)
        trace = self.graph.trace
        leaves: list = []
        _collect(fetches, leaves)
        wanted, run_nodes = [], []
        for i, leaf in enumerate(leaves):
            if isinstance(leaf, Operation):
                if leaf.graph is not self.graph:
                    raise ValueError(f"Session.run: fetch {i} ({leaf.name}) is an operation of "
                                     "another graph")
                run_nodes.append(leaf.index)
                continue
            h = trace.handle(leaf)
            if h is None:
                raise ValueError(
                    f"Session.run: fetch {i} (a tensor of shape {tuple(leaf.shape)}) is not an "
                    "element of this graph: it was made outside the graph's `with` block, in "
                    "another graph, or after a Session on the default graph ended its build"
                )
            wanted.append(h)
        feeds = self._feeds(feed_dict or {})
        key = (tuple(wanted), tuple(run_nodes), frozenset(feeds))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(wanted, run_nodes, feeds, leaves)
        values = iter(plan.run(feeds))
        aliased = self.graph.aliased
        results = []
        for leaf in leaves:
            if isinstance(leaf, Operation):
                results.append(None)
                continue
            h = trace.handle(leaf)
            array = next(values)
            if h in aliased or trace.kind[h] == CAPTURE:
                array = array.copy()  # never hand out a Variable's own array
            results.append(array)
        return _rebuild(fetches, iter(results))

    # -- pieces ------------------------------------------------------------------------------

    def _feeds(self, feed_dict) -> dict:
        """feed_dict as {handle: array}, converted to each placeholder's dtype and checked."""
        trace = self.graph.trace
        feeds = {}
        for key, value in feed_dict.items():
            h = trace.handle(key) if isinstance(key, Tensor) else None
            if h is None:
                raise ValueError(f"Session.run: a feed_dict key ({type(key).__name__} of shape "
                                 f"{_shape(key)}) is not an element of this graph")
            name = trace.names[h]
            declared, dtype = self.graph.placeholders.get(h, (None, key.dtype))
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.dtype != dtype:
                if not np.can_cast(array.dtype, dtype, "same_kind"):
                    raise TypeError(f"Session.run: placeholder '{name}' has dtype {dtype}; "
                                    f"fed an array of dtype {array.dtype}")
                array = array.astype(dtype)
            if declared is None:
                declared = tuple(key.shape) if trace.kind[h] == CAPTURE else None
            if declared is not None and (len(declared) != array.ndim or any(
                    d is not None and d != n for d, n in zip(declared, array.shape))):
                raise ValueError(f"Session.run: '{name}' has shape {_pretty(declared)}; fed an "
                                 f"array of shape {array.shape}")
            feeds[h] = array
        return feeds

    def _plan(self, wanted, run_nodes, feeds, leaves):
        trace = self.graph.trace
        try:
            plan = trace.plan(wanted, feeds, run_nodes)
        except MissingInput as missing:
            kind, target = missing.target
            what = trace.names[target] if kind == "value" else trace.nodes[target].name
            shape, dtype = self.graph.placeholders.get(missing.handle, (None, None))
            raise ValueError(
                f"Session.run: {what} needs placeholder '{trace.names[missing.handle]}' "
                f"(shape {_pretty(shape)}, {dtype}); feed it in feed_dict"
            ) from None
        read = {h for node in trace.nodes for h in node.inputs}
        for h in feeds:
            if trace.kind[h] == INPUT and h not in read and h not in wanted:
                warnings.warn(
                    f"Session.run: placeholder '{trace.names[h]}' is fed, but no op of the graph "
                    "reads it. If it was read as data while the graph was built (integer labels "
                    "given to a cross-entropy, .numpy(), .item()), the graph holds its stand-in "
                    "values, not the fed ones", stacklevel=3)
        for node in plan.steps:
            if isinstance(node, GradientsNode):
                for step in node.steps:
                    fed = [h for h in step.outputs if h in feeds]
                    if fed and trace.kind[fed[0]] == COMPUTED:
                        raise ValueError(
                            f"Session.run: {node.name} differentiates through "
                            f"{trace.names[fed[0]]}, which is fed: feed the placeholders "
                            "instead"
                        )
        return plan


def _collect(fetches, leaves: list) -> None:
    if isinstance(fetches, (Tensor, Operation)):
        leaves.append(fetches)
    elif isinstance(fetches, (list, tuple)):
        for f in fetches:
            _collect(f, leaves)
    elif isinstance(fetches, dict):
        for f in fetches.values():
            _collect(f, leaves)
    else:
        raise TypeError(f"Session.run: cannot fetch a {type(fetches).__name__}; fetch graph "
                        "tensors or operations (or lists, tuples and dicts of them)")


def _rebuild(fetches, results):
    if isinstance(fetches, (Tensor, Operation)):
        return next(results)
    if isinstance(fetches, dict):
        return type(fetches)((k, _rebuild(v, results)) for k, v in fetches.items())
    items = [_rebuild(f, results) for f in fetches]
    if isinstance(fetches, tuple):
        return type(fetches)(*items) if hasattr(fetches, "_fields") else tuple(items)
    return items


def _pretty(shape) -> str:
    if shape is None:
        return "unknown"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (
        ",)" if len(shape) == 1 else ")")


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else "-"
