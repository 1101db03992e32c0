"""The backward pass: the chain rule applied over the recorded graph in reverse topological order.

Everything the engine does happens in exactly one place:

* the graph is sorted iteratively (no recursion, so a chain of 100,000 ops is fine);
* each node's ``backward`` gets the sum of the gradients of all uses of its output;
* a gradient whose shape differs from its input's (broadcasting in forward) is summed back to
  the input's shape with :func:`chainrule.ops.sum_to`;
* leaf gradients accumulate out of place into ``.grad`` across calls, as in PyTorch (so do
  those of non-leaf tensors that asked for it with ``retain_grad()``);
* saved arrays are freed node by node unless ``retain_graph`` is set;
* a node whose saved tensors were modified in place since forward raises before its backward
  (version counters, :meth:`Function.check_saved_versions`).
"""

from __future__ import annotations

from chainrule import backend
from chainrule._config import flags


def backward(outputs, grad_outputs=None, retain_graph=None, create_graph=False, inputs=None):
    """Run the chain rule from ``outputs`` back to the leaves.

    Args:
        outputs: a Tensor or a sequence of Tensors to differentiate.
        grad_outputs: the upstream gradient of each output (``None``: ones, for scalars only).
        retain_graph: keep the graph for another backward; defaults to ``create_graph``.
        create_graph: record the backward pass itself, for gradients of gradients.
        inputs: if given, return the gradients of these Tensors instead of accumulating
            into the leaves' ``.grad`` (this is what :func:`grad` uses).
    """
    outputs = _as_tuple(outputs)
    grad_outputs = _seed_gradients(outputs, grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    wanted = None if inputs is None else {_key(t): i for i, t in enumerate(inputs)}
    found = [None] * (0 if inputs is None else len(inputs))
    pending: dict = {}  # node -> gradient of its output (a list for multi-output nodes)
    handed: set = {id(g.data) for g in grad_outputs}  # arrays that must not become .grad as is

    previous_mode = flags.grad_enabled
    flags.grad_enabled = create_graph
    try:
        for out, g in zip(outputs, grad_outputs):
            _deliver(out, g, pending, wanted, found, handed, create_graph)
        for node in _topological_order(outputs):
            gy = pending.pop(node, None)
            if gy is None:
                continue  # no gradient flows into this node from the outputs
            if node.inputs is None:
                raise RuntimeError(
                    f"{node.name}: trying to backward through the graph a second time (its "
                    "saved values were freed); pass retain_graph=True to the first backward"
                )
            if create_graph and not node.differentiable_backward:
                raise RuntimeError(
                    f"{node.name}: this fused op's backward is first-order only; compose it "
                    "from primitive ops to take higher-order gradients"
                )
            if "retained_grads" in node.__dict__:  # Tensor.retain_grad() on an output
                _retain_grads(node, gy, handed, create_graph)
            if node._versions or node.keeps_output:
                node.check_saved_versions()
            if node.multi_output:
                gy = _fill_missing(node, gy)
            gxs = node.backward(gy)
            for x, gx in zip(node.inputs, gxs):
                if gx is not None and x.requires_grad:
                    if gx.data.shape != x.data.shape or gx.data.dtype != x.data.dtype:
                        gx = _fit_to_input(node, x, gx)
                    _deliver(x, gx, pending, wanted, found, handed, create_graph)
            if not retain_graph:
                node.release()
    finally:
        flags.grad_enabled = previous_mode
    return found


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated.

    >>> import chainrule as cr
    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> (dx,) = cr.grad(x ** 3, [x], create_graph=True)   # 3x^2 = 27
    >>> (ddx,) = cr.grad(dx, [x])                          # 6x = 18
    >>> float(dx.item()), float(ddx.item())
    (27.0, 18.0)
    """
    single = not isinstance(inputs, (list, tuple))
    inputs = (inputs,) if single else tuple(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(f"grad: an input of shape {t.shape} does not require grad")
    found = backward(outputs, grad_outputs, retain_graph, create_graph, inputs=inputs)
    for i, (t, g) in enumerate(zip(inputs, found)):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} of shape {t.shape} was not used to compute the outputs "
                "(pass allow_unused=True to get None for it)"
            )
    return found[0] if single else found


# -- pieces ------------------------------------------------------------------------------------


def _as_tuple(values):
    return tuple(values) if isinstance(values, (list, tuple)) else (values,)


def _key(t):
    return (id(t),) if t._node is None else (t._node, t._index)


def _seed_gradients(outputs, grad_outputs):
    """The gradients that start the backward pass: given ones, checked, or ones for scalars."""
    given = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    if len(given) != len(outputs):
        raise ValueError(f"backward: {len(outputs)} outputs but {len(given)} gradients")
    seeds = []
    for out, g in zip(outputs, given):
        if not out.requires_grad:
            raise RuntimeError(
                f"backward: a tensor of shape {out.shape} does not require grad and has no "
                "graph (did it come from no_grad(), or from inputs without requires_grad=True?)"
            )
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for scalar outputs; got "
                    f"shape {out.shape}. Pass grad= with the upstream gradient of that shape"
                )
            g = constant(backend.get_array_module(out.data).ones_like(out.data))
        else:
            g = g if isinstance(g, Tensor) else Tensor(g)
            if g.shape != out.shape:
                raise ValueError(
                    f"backward: gradient of shape {g.shape} given for an output of shape "
                    f"{out.shape}"
                )
        seeds.append(g)
    return seeds


def _topological_order(outputs):
    """Nodes reachable from ``outputs``, each after every node that uses its result."""
    postorder = []
    visited = set()
    stack = [(t._node, False) for t in outputs if t._node is not None]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            postorder.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for x in node.inputs or ():
            child = x._node
            if child is not None and child not in visited:
                stack.append((child, False))
    postorder.reverse()
    return postorder


def _fill_missing(node, gys):
    """Zeros for outputs of a multi-output node that received no gradient."""
    return [
        g if g is not None else ops.zeros_array_tensor(shape, dtype, node.inputs[0].data)
        for g, (shape, dtype) in zip(gys, node.output_meta)
    ]


def _fit_to_input(node, x, gx):
    """Undo broadcasting: sum ``gx`` down to ``x``'s shape, and match its dtype."""
    if gx.data.shape != x.data.shape:
        try:
            gx = ops.sum_to(gx, x.data.shape)
        except ValueError:
            raise ValueError(
                f"{node.name}: backward produced a gradient of shape {gx.shape} for an input of "
                f"shape {x.shape}, and it cannot be summed to that shape"
            ) from None
    if gx.data.dtype != x.data.dtype:
        gx = ops.astype(gx, x.data.dtype)
    return gx


def _deliver(x, gx, pending, wanted, found, handed, create_graph):
    """Add ``gx`` to what ``x`` has received: a node's pending sum, a wanted input, or a leaf."""
    if wanted is not None:
        position = wanted.get(_key(x))
        if position is not None:
            found[position] = gx if found[position] is None else found[position] + gx
    node = x._node
    if node is not None:
        if node.multi_output:
            slots = pending.setdefault(node, [None] * len(node.output_meta))
            slots[x._index] = gx if slots[x._index] is None else slots[x._index] + gx
        else:
            previous = pending.get(node)
            pending[node] = gx if previous is None else previous + gx
    elif wanted is None:
        _accumulate_leaf(x, gx, handed, create_graph)


def _retain_grads(node, gy, handed, create_graph):
    """Give the outputs of ``node`` that asked for it (``retain_grad``) their gradient ``gy``,
    accumulated as a leaf's; skipped for a tensor an in-place op has since rebound."""
    for index, ref in node.retained_grads.items():
        t = ref()
        g = gy[index] if node.multi_output else gy
        if t is not None and g is not None and t._node is node and t._index == index:
            _accumulate_leaf(t, g, handed, create_graph)


def _accumulate_leaf(leaf, gx, handed, create_graph):
    """``leaf.grad += gx`` out of place; never let two leaves share one gradient array."""
    if leaf.grad is not None:
        leaf.grad = leaf.grad + gx
        return
    array = gx.data
    if not create_graph and (
        array.base is not None or id(array) in handed or not array.flags.writeable
    ):
        gx = type(gx)(array.copy())
    handed.add(id(gx.data))
    leaf.grad = gx


# At the bottom: these modules import the autograd package (a cycle Python resolves because
# everything they need from here is defined above).
from chainrule import ops  # noqa: E402
from chainrule.autograd.function import constant  # noqa: E402
from chainrule.tensor import Tensor  # noqa: E402
