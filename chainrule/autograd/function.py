"""The base class of every differentiable operation: one node of the computational graph.

An op is a small class with two methods, as in the lectures' computational graph:

* ``forward(*arrays)`` computes the result from NumPy (or CuPy) arrays and keeps what backward
  needs on ``self``;
* ``backward(gy)`` applies the chain rule: given the upstream gradient ``gy`` (a Tensor) it returns
  one gradient per input (a Tensor, or ``None`` where that input needs none).

``backward`` is written with differentiable Tensor operations, so the engine can record it too
(``create_graph=True``) and gradients of gradients work. Non-tensor arguments (axes, shapes,
constants) go to the constructor::

    class Exp(Function):
        '''y = exp(x);  dy/dx = y.'''
        keeps_output = True

        def forward(self, x):
            return np.exp(x)

        def backward(self, gy):
            return (gy * self.output(),)

The engine, not the op, sums a gradient back to its input's shape after broadcasting, and it
accumulates gradients from several uses of one value.

Saved values are guarded by version counters, as in PyTorch: every in-place Tensor operation
(``t[i] = v``, ``add_``, ``mul_``, ``copy_``, ...) bumps ``t._version``. A node records the
versions of the inputs its backward reads (``saved_inputs``) and the engine calls
:meth:`Function.check_saved_versions` before the node's backward, so a value modified in
between raises instead of giving a silently wrong gradient.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from chainrule import backend
from chainrule._config import flags

#: The recorders of the threads that are building a static graph or a trace
#: (:mod:`chainrule.graph.trace`): thread id -> an object with ``record(function, inputs,
#: outputs)``, which ``Function.__call__`` calls after each op with the input Tensors and the
#: output Tensor (a tuple for multi-output ops). Empty, the usual case, it costs one test of a
#: dict per op. Change it through :func:`set_recorder`.
recorders: dict = {}


def set_recorder(recorder):
    """Make ``recorder`` see every op that this thread runs (None: stop); returns the previous
    recorder of this thread, to be restored."""
    ident = threading.get_ident()
    previous = recorders.get(ident)
    if recorder is None:
        recorders.pop(ident, None)
    else:
        recorders[ident] = recorder
    return previous


def current_recorder():
    """The recorder of this thread, or None."""
    return recorders.get(threading.get_ident())


def notify_recorder(event: str, *args):
    """Tell this thread's recorder, if it listens for ``event``, what just happened (called
    only while ``recorders`` is not empty): "note_layer" (a layer ran: its training mode
    matters), "note_read" (a Tensor's value was read in Python), "record_effect" (an
    optimizer's step to repeat on replay). Returns the recorder's answer, or None."""
    recorder = recorders.get(threading.get_ident())
    listener = getattr(recorder, event, None)
    return None if listener is None else listener(*args)


class Function:
    """One recorded application of an op; subclasses define ``forward`` and ``backward``."""

    #: The input Tensors while the node is part of a live graph; ``None`` once released.
    inputs: tuple | None = None
    #: Set to True by ops whose backward uses their own output (exp, tanh, sigmoid, ...).
    keeps_output: bool = False
    #: Set to True by ops whose forward returns a tuple of arrays.
    multi_output: bool = False
    #: Set to False by fused ops whose backward uses raw arrays and so cannot be differentiated.
    differentiable_backward: bool = True
    #: Set to False by ops without a gradient (comparisons): they never become graph nodes,
    #: and are ops only so that a trace records them.
    has_gradient: bool = True
    #: The positions of the inputs whose values backward reads (PyTorch's saved tensors); their
    #: versions are recorded and checked. ``None``: every input (the safe default); ``()``: none
    #: (ops whose backward needs only shapes, masks made in forward, or their own output).
    saved_inputs: tuple | None = None
    #: The versions of the inputs when the node was recorded (empty if none is saved).
    _versions: tuple = ()
    #: False for ops whose forward is not a function of its inputs alone: it draws random
    #: numbers (dropout) or updates state (batch norm's moving statistics). A trace replays
    #: them on every run and never folds or merges them (:mod:`chainrule.graph.passes`).
    pure: bool = True

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    # -- recording --------------------------------------------------------------------------

    def __call__(self, *inputs):
        """Apply the op to Tensors; record a graph node when any input requires a gradient."""
        if backend._cupy is not None:  # only then can arrays live on different devices
            _check_same_device(self, inputs)
        if recorders:  # being traced: what forward adds to the op is what it saves
            self._configuration = tuple(self.__dict__)
        ys = self.forward(*[t.data for t in inputs])
        node = None
        if flags.grad_enabled and self.has_gradient:
            for t in inputs:
                if t.requires_grad:
                    node = self
                    self.inputs = inputs
                    saved = self.saved_inputs
                    if saved is None or saved:
                        self._versions = _versions_of(inputs)
                    break
        if self.multi_output:
            outputs = tuple(_wrap(y, node, i) for i, y in enumerate(ys))
            if node is not None:
                self.output_meta = [(y.shape, y.dtype) for y in outputs]
                if self.keeps_output:
                    self._keep_outputs(outputs)
        else:
            outputs = _wrap(ys, node, 0)
            if node is not None and self.keeps_output:
                self._keep_outputs((outputs,))
        if recorders:  # some thread is building a static graph or a trace
            recorder = recorders.get(threading.get_ident())
            if recorder is not None:
                recorder.record(self, inputs, outputs)
        return outputs

    def _keep_outputs(self, outputs) -> None:
        # The arrays are held strongly (first-order backward needs only them); the Tensors
        # weakly, since a strong reference would make a cycle output -> node -> output.
        self._output_arrays = tuple(y.data for y in outputs)
        self._output_refs = tuple(weakref.ref(y) for y in outputs)

    def output(self, index: int = 0):
        """The op's output Tensor, for a backward formula written in terms of it.

        When the output Tensor itself is gone (its consumers were already released) a constant
        with its values serves: exact for first-order gradients. Higher-order gradients need the
        recorded Tensor, which ``retain_graph`` (the default with ``create_graph``) keeps alive.
        """
        out = self._output_refs[index]()
        if out is not None:
            return out
        if flags.grad_enabled:
            raise RuntimeError(
                f"{self.name}: its output was freed before a create_graph backward; "
                "keep retain_graph=True (the default with create_graph=True)"
            )
        from chainrule.tensor import Tensor

        return Tensor._from_op(self._output_arrays[index], None)

    def saved_output(self, index: int = 0):
        """The array of output ``index`` as forward returned it (ops with ``keeps_output``):
        the public way for a backward to read its own result (Chainer's ``retain_outputs``),
        e.g. the mask of a fused ReLU. Under ``create_graph`` it first checks, as
        :meth:`output` does, that the recorded output Tensor still exists."""
        if flags.grad_enabled:
            return self.output(index).data
        return self._output_arrays[index]

    def check_saved_versions(self) -> None:
        """Raise if a tensor that backward reads was modified in place after it was saved.

        The engine calls this before ``backward``: one tuple comparison for the inputs and one
        integer test per kept output (an op's outputs are saved at version 0).
        """
        versions = self._versions
        if versions and _versions_of(self.inputs) != versions:
            inputs = self.inputs
            saved = range(len(inputs)) if self.saved_inputs is None else self.saved_inputs
            for i in saved:  # some input changed: raise if backward reads it
                if i < len(inputs) and inputs[i]._version != versions[i]:
                    raise _modified_error(self, inputs[i], f"input {i}", versions[i])
        if self.keeps_output:
            for i, ref in enumerate(self._output_refs):
                out = ref()
                if out is not None and out._version:
                    raise _modified_error(self, out, f"output {i}", 0)

    def release(self) -> None:
        """Free what forward saved and the references to the inputs (after backward). A node
        of a trace (``chainrule.jit``) keeps its configuration (what it held before its
        recorded forward ran) for the next replay."""
        if self.__dict__.get("in_trace"):
            keep = (*self._configuration, "_configuration", "in_trace")
            for key in [k for k in self.__dict__ if k not in keep]:
                del self.__dict__[key]  # what forward saved, the inputs, the kept outputs
            return
        self.__dict__.clear()

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _modified_error(op, t, role: str, expected: int) -> RuntimeError:
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: tensor of shape {tuple(t.shape)} ({t.dtype}), {role} of {op.name}, is at "
        f"version {t._version}; expected version {expected} (saved by {op.name}). Make the "
        "change out of place (y = y + 1 rather than y.add_(1)), or after backward"
    )


def _wrap(y, node, index):
    """A new Tensor around an op's result (this is the hot path of every op)."""
    if type(y) is not np.ndarray and backend.device_of(y) == "cpu":
        y = np.asarray(y)  # NumPy ufuncs and reductions return scalars for 0-d results
    t = _new_tensor(_Tensor)
    t.data = y
    t.grad = None
    t.requires_grad = node is not None
    t._node = node
    t._index = index
    t._version = 0
    return t


_new_tensor = object.__new__


def _versions_of(inputs) -> tuple:
    """The inputs' version counters, unrolled for one to three inputs (the hot path of every
    recorded op: a comprehension or ``map`` costs several times more)."""
    n = len(inputs)
    if n == 2:
        return (inputs[0]._version, inputs[1]._version)
    if n == 1:
        return (inputs[0]._version,)
    if n == 3:
        return (inputs[0]._version, inputs[1]._version, inputs[2]._version)
    return tuple([t._version for t in inputs])


def constant(y):
    """A Tensor outside the graph around a raw array result, e.g. a gradient that a backward
    computed on arrays (NumPy's 0-d results are scalars: they become 0-d arrays, keeping their
    dtype)."""
    return _wrap(y, None, 0)

# At the bottom: tensor.py imports the ops, which import this module (a cycle Python resolves
# because every name needed at import time is defined above this line).
from chainrule.tensor import Tensor as _Tensor  # noqa: E402


def _check_same_device(op, inputs) -> None:
    devices = {backend.device_of(t.data) for t in inputs}
    if len(devices) > 1:
        shapes = ", ".join(f"{backend.device_of(t.data)}{tuple(t.shape)}" for t in inputs)
        raise RuntimeError(
            f"{op.name}: inputs are on different devices ({shapes}); move them with .to(device)"
        )
