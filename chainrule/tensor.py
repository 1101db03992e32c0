"""The Tensor: an array, its gradient, and the op that made it.

A Tensor is a thin wrapper around a NumPy (or CuPy) array. Every method and operator calls a
differentiable op from :mod:`chainrule.ops`; when any input requires a gradient, the op records a
node of the computational graph, and ``loss.backward()`` runs the chain rule back through it.
"""

from __future__ import annotations

import operator
import weakref

import numpy as np

from chainrule import backend
from chainrule._config import flags


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Attributes:
        data: the underlying ``numpy.ndarray`` (or ``cupy.ndarray``); writable in place.
        grad: the accumulated gradient (a Tensor) after ``backward``, else ``None``.
        requires_grad: whether operations on this tensor are recorded for differentiation.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_index", "_version", "__weakref__")
    # NumPy defers to our reflected operators: ndarray + Tensor -> Tensor.__radd__.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False):
        if type(data) is not np.ndarray:
            data = _to_array(data, None)
        if requires_grad and data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating tensors can require gradients; got dtype {data.dtype} "
                f"of shape {data.shape}"
            )
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad
        self._node = None
        self._index = 0
        self._version = 0

    @classmethod
    def _from_op(cls, data, node, index=0):
        """Fast constructor used by ops: no conversion, no checks."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = node is not None
        t._node = node
        t._index = index
        t._version = 0
        return t

    # -- array facts ----------------------------------------------------------------------------

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        """Number of elements (NumPy's ``size``), an int that PyTorch code may also call:
        ``t.size()`` is the shape and ``t.size(1)`` one axis's length (PyTorch's ``size()``)."""
        return _Size(self.data.size, self.data.shape)

    def dim(self) -> int:
        """The number of axes (PyTorch's name for ``ndim``)."""
        return self.data.ndim

    def numel(self) -> int:
        """The number of elements (PyTorch's name for ``size``)."""
        return self.data.size

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (no recording op made them)."""
        return self._node is None

    @property
    def creator(self):
        """The graph node (a :class:`~chainrule.autograd.Function`) that produced this tensor."""
        return self._node

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if recorders:
            notify_recorder("note_read", self, "bool(), e.g. an if")
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() or .all() on .data"
            )
        return bool(self.data)

    __hash__ = object.__hash__

    # -- conversion -----------------------------------------------------------------------------

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU if needed; shares memory on the CPU)."""
        if recorders:
            notify_recorder("note_read", self, ".numpy()")
        return backend.to_numpy(self.data)

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if recorders:
            notify_recorder("note_read", self, ".item()")
        if self.data.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.size} elements")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the same data, cut from the graph.

        Its version counter is its own (PyTorch shares one): an in-place write through the
        detached tensor is not seen by a backward that saved this one.
        """
        return Tensor._from_op(self.data, None)

    def to(self, device=None, dtype=None) -> Tensor:
        """This tensor on ``device`` ("cpu" or "cuda") and/or as ``dtype``; differentiable
        across the move. A dtype may come first, as PyTorch's ``t.to(np.float64)``."""
        if device is not None and not isinstance(device, str):  # t.to(dtype)
            device, dtype = None, device
        out = self
        if device is not None and backend.device_of(self.data) != backend.normalize_device(
                device):
            out = ops.to_device(out, device)
        if dtype is not None and out.data.dtype != np.dtype(dtype):
            out = ops.astype(out, dtype)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def astype(self, dtype) -> Tensor:
        return ops.astype(self, dtype)

    def float(self) -> Tensor:
        return ops.astype(self, np.float32)

    def double(self) -> Tensor:
        return ops.astype(self, np.float64)

    def long(self) -> Tensor:
        """As int64 (PyTorch's ``long``); not differentiable."""
        return ops.astype(self, np.int64)

    def int(self) -> Tensor:
        """As int32 (PyTorch's ``int``); not differentiable."""
        return ops.astype(self, np.int32)

    def bool(self) -> Tensor:
        return ops.astype(self, np.bool_)

    def clone(self) -> Tensor:
        """A copy with its own data, still in the graph (PyTorch's ``clone``)."""
        if self.requires_grad:
            return ops.mul(self, 1)  # a new array, and the gradient flows through
        return Tensor(self.data.copy())

    def contiguous(self) -> Tensor:
        """This tensor (PyTorch's ``contiguous``: reshapes here never need it)."""
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating tensors can require gradients; got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    # -- autograd -------------------------------------------------------------------------------

    def backward(self, grad=None, retain_graph=None, create_graph=False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (the chain rule).

        ``grad`` is the upstream gradient (needed unless this tensor has one element);
        ``retain_graph`` keeps the graph for another backward (defaults to ``create_graph``);
        ``create_graph`` records the backward pass, for higher-order gradients.
        """
        from chainrule.autograd.engine import backward

        if recorders:  # being traced (chainrule.jit): the trace records the backward as one
            # node, keeps the graph it replays, and does not see the backward's own ops
            retain_graph = notify_recorder("record_backward", self, grad, retain_graph,
                                           create_graph) or retain_graph
            previous = set_recorder(None)
            try:
                backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)
            finally:
                set_recorder(previous)
            return
        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def zero_grad(self) -> None:
        self.grad = None

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward`` (PyTorch's
        ``retain_grad``); it accumulates across backward calls as a leaf's does. A no-op on a
        leaf, which keeps its gradient anyway.

        >>> import chainrule as cr
        >>> x = cr.tensor(2.0, requires_grad=True)
        >>> q = x * 3
        >>> q.retain_grad()
        >>> (q * q).backward()
        >>> float(q.grad.item())
        12.0
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"retain_grad: a tensor of shape {self.shape} that does not require grad has "
                "no gradient to retain"
            )
        if self._node is not None:  # the engine reads this when it reaches the node
            self._node.__dict__.setdefault("retained_grads", {})[self._index] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        """True when :meth:`retain_grad` was called on this non-leaf tensor (until a backward
        without ``retain_graph`` frees its node)."""
        node = self._node
        ref = None if node is None else node.__dict__.get("retained_grads", {}).get(self._index)
        return ref is not None and ref() is self

    # -- printing -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        body = np.array2string(
            self.numpy(), separator=", ", prefix="tensor(", precision=4, threshold=200
        )
        extras = []
        if self.data.dtype not in (flags.default_dtype, np.dtype(np.int64), np.dtype(bool)):
            extras.append(f"dtype={self.data.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # -- operators ------------------------------------------------------------------------------

    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def __setitem__(self, index, value):
        if self.requires_grad and flags.grad_enabled:
            raise RuntimeError(
                f"in-place assignment to a tensor of shape {self.shape} that requires grad "
                "would corrupt its gradient; write to .data, or use chainrule.where / concat"
            )
        self.data[index] = value.data if isinstance(value, Tensor) else value
        self._version += 1

    # -- in-place operations ----------------------------------------------------------------------
    #
    # Each bumps ``_version``; a graph node that saved this tensor for its backward checks the
    # version there and refuses a modified value (see Function.check_saved_versions). Writes to
    # the ``.data`` array itself (optimizer kernels, running statistics) are not counted, as
    # PyTorch does not count writes through ``.data``.

    def add_(self, other) -> Tensor:
        """``self += other`` in place, broadcasting ``other`` (PyTorch's ``add_``)."""
        return self._in_place("add_", ops.add, operator.iadd, other)

    def sub_(self, other) -> Tensor:
        """``self -= other`` in place."""
        return self._in_place("sub_", ops.sub, operator.isub, other)

    def mul_(self, other) -> Tensor:
        """``self *= other`` in place."""
        return self._in_place("mul_", ops.mul, operator.imul, other)

    def div_(self, other) -> Tensor:
        """``self /= other`` in place."""
        return self._in_place("div_", ops.div, operator.itruediv, other)

    def copy_(self, src) -> Tensor:
        """Overwrite every element with ``src`` (broadcast to this shape, cast to this dtype)."""
        return self._in_place("copy_", _replaced_by, _assign, src)

    def fill_(self, value) -> Tensor:
        """Set every element to the number ``value``."""
        return self._in_place("fill_", _replaced_by, _assign, value)

    def zero_(self) -> Tensor:
        """Set every element to zero."""
        return self._in_place("zero_", _replaced_by, _assign, 0)

    def _in_place(self, name, op, write, other) -> Tensor:
        """``self = op(self, other)`` written into ``self.data``; bumps the version.

        Without a graph to record (grad mode off, or neither operand requires grad) this is
        ``write(self.data, other)`` on the array. Otherwise ``op`` is recorded on a copy of the
        old value and this tensor takes over the new node, as PyTorch rebases the history of a
        non-leaf; a leaf that requires grad is refused, as in PyTorch.
        """
        other_grad = isinstance(other, Tensor) and other.requires_grad
        if flags.grad_enabled and (self.requires_grad or other_grad):
            if self._node is None and self.requires_grad:
                raise RuntimeError(
                    f"{name}: a leaf tensor of shape {self.shape} that requires grad is used in "
                    "an in-place operation; wrap the update in chainrule.no_grad()"
                )
            old = Tensor._from_op(self.data.copy(), self._node, self._index)
            result = op(old, other)
            if result.shape != self.shape:
                raise RuntimeError(
                    f"{name}: the result has shape {result.shape}, which cannot be written into "
                    f"a tensor of shape {self.shape}"
                )
            self.data[...] = result.data
            self._node, self._index, self.requires_grad = result._node, result._index, True
        else:
            write(self.data, other.data if isinstance(other, Tensor) else other)
        self._version += 1
        return self

    # Comparisons give boolean tensors and record nothing.
    def __lt__(self, other):
        return ops.compare(np.less, self, other)

    def __le__(self, other):
        return ops.compare(np.less_equal, self, other)

    def __gt__(self, other):
        return ops.compare(np.greater, self, other)

    def __ge__(self, other):
        return ops.compare(np.greater_equal, self, other)

    def __eq__(self, other):  # noqa: D105 - elementwise, as in NumPy and PyTorch
        return ops.compare(np.equal, self, other)

    def __ne__(self, other):
        return ops.compare(np.not_equal, self, other)

    # PyTorch's names of the comparisons
    def eq(self, other):
        """Elementwise ``self == other`` as a boolean tensor (PyTorch's ``eq``)."""
        return ops.compare(np.equal, self, other)

    def ne(self, other):
        return ops.compare(np.not_equal, self, other)

    def lt(self, other):
        return ops.compare(np.less, self, other)

    def le(self, other):
        return ops.compare(np.less_equal, self, other)

    def gt(self, other):
        return ops.compare(np.greater, self, other)

    def ge(self, other):
        return ops.compare(np.greater_equal, self, other)

    # -- methods mirroring chainrule.f(t, ...) --------------------------------------------------

    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def abs(self):
        return ops.abs(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def maximum(self, other):
        return ops.maximum(self, other)

    def minimum(self, other):
        return ops.minimum(self, other)

    def where(self, condition, other):
        """``condition ? self : other``, elementwise (PyTorch's ``Tensor.where``)."""
        return ops.where(condition, self, other)

    def clip(self, min=None, max=None):  # noqa: A002 - NumPy's argument names
        return ops.clip(self, min, max)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Σ over ``axis`` (PyTorch's ``dim=``, ``keepdim=`` are accepted too)."""
        axis, keepdims = _torch_axis(axis, keepdims, dim, keepdim)
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _torch_axis(axis, keepdims, dim, keepdim)
        return ops.mean(self, axis, keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        return ops.var(self, axis, keepdims, ddof)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return ops.min(self, axis, keepdims)

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Index of the largest value along ``axis`` (or PyTorch's ``dim=``, ``keepdim=``)."""
        axis, keepdims = _torch_axis(axis, keepdims, dim, keepdim)
        return ops.argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _torch_axis(axis, keepdims, dim, keepdim)
        return ops.argmin(self, axis, keepdims)

    def logsumexp(self, axis=None, keepdims=False):
        return ops.logsumexp(self, axis, keepdims)

    def reshape(self, *shape):
        return ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def view(self, *shape):
        """PyTorch's ``view``: the same elements in a new shape (a reshape here)."""
        return ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def view_as(self, other):
        """This tensor in ``other``'s shape (PyTorch's ``view_as``)."""
        return ops.reshape(self, tuple(other.shape))

    def reshape_as(self, other):
        return ops.reshape(self, tuple(other.shape))

    def unsqueeze(self, dim):
        """A new axis of length 1 at ``dim`` (PyTorch's name for ``expand_dims``)."""
        return ops.expand_dims(self, dim)

    def permute(self, *dims):
        """The axes in the order ``dims`` (PyTorch's ``permute``)."""
        return ops.transpose(self, dims[0] if len(dims) == 1 else dims)

    def transpose(self, *axes):
        return ops.transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    @property
    def T(self):  # noqa: N802 - NumPy's name
        return ops.transpose(self)

    def expand_dims(self, axis):
        return ops.expand_dims(self, axis)

    def squeeze(self, axis=None):
        return ops.squeeze(self, axis)

    def flatten(self, start_axis=0):
        return ops.flatten(self, start_axis)

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, shape)


class _Size(int):
    """``Tensor.size``: the number of elements, and, when called, the shape (PyTorch)."""

    def __new__(cls, count, shape):
        value = super().__new__(cls, count)
        value.shape = shape
        return value

    def __call__(self, dim=None):
        return self.shape if dim is None else self.shape[dim]


def _torch_axis(axis, keepdims, dim, keepdim):
    """NumPy's ``axis``/``keepdims`` from PyTorch's ``dim``/``keepdim`` where given."""
    if dim is not None:
        if axis is not None:
            raise TypeError("give axis= or dim=, not both")
        axis = dim
    return axis, keepdims if keepdim is None else keepdim


def _assign(array, value) -> None:
    array[...] = value


def _replaced_by(old: Tensor, value) -> Tensor:
    """``value`` in ``old``'s shape, recorded so that ``old`` gets a zero gradient."""
    xp = backend.get_array_module(old.data)
    return ops.where(xp.zeros(old.shape, dtype=bool), old, value)


def _to_array(data, dtype):
    """Convert user data to an array: floats become the default dtype unless ``dtype`` is given."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        xp = backend.get_array_module(data)
        return xp.asarray(data, dtype=dtype)
    if backend.device_of(data) == "cuda":
        return data
    array = np.asarray(data)
    if array.dtype.kind == "f" and array.dtype != flags.default_dtype:
        array = array.astype(flags.default_dtype)
    elif array.dtype.kind in "OUS":
        raise TypeError(f"cannot make a tensor from data of dtype {array.dtype}")
    return array


def tensor(data, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    """Make a new leaf Tensor from a number, nested list, NumPy array or Tensor (copied).

    Floating data without an explicit ``dtype`` becomes the default dtype (float32 unless
    :func:`chainrule.set_default_dtype` changed it), so NumPy's float64 arrays do not silently
    slow a model down; integer and boolean data keep their dtype.
    """
    array = _to_array(data, dtype)
    if array is data or (isinstance(data, Tensor) and array is data.data):
        array = array.copy()
    if device is not None:
        array = backend.to_device(array, device)
    return Tensor(array, requires_grad=requires_grad)


from chainrule import ops  # noqa: E402 - ops import Tensor; the methods above call them
from chainrule.autograd.function import (  # noqa: E402
    notify_recorder,
    recorders,
    set_recorder,
)
