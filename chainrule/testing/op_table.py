"""The op table: one entry per differentiable primitive, driving the generic op tests.

Each :class:`OpInfo` says how to call the op in chainrule, in NumPy (the forward reference) and
in PyTorch (parity; given as a function of the ``torch`` module so that chainrule never imports
it), and which sample inputs to try: scalars, broadcasting pairs, size-1 axes, and every
``axis``/``keepdims`` combination for reductions (PyTorch's OpInfo, Chainer's FunctionTestCase).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import chainrule as cr


@dataclass
class Sample:
    """One set of inputs for an op: array shapes plus keyword arguments."""

    shapes: tuple
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in self.kwargs.items())
        return f"{'x'.join(map(str, self.shapes)) or 'scalar'}{extra}"


@dataclass
class OpInfo:
    """How to run, check and compare one op."""

    name: str
    ours: Callable  # (*tensors, **kwargs) -> Tensor
    numpy: Callable  # (*arrays, **kwargs) -> array
    torch: Callable | None  # (torch, *torch_tensors, **kwargs) -> torch.Tensor
    samples: list
    domain: str = "real"  # "real", "positive" or "away_from_zero" (kinks at 0)
    double_backward: bool = True

    def make_inputs(self, sample: Sample, rng, dtype) -> list:
        arrays = []
        for shape in sample.shapes:
            x = rng.uniform(0.2, 1.5, size=shape)
            if self.domain != "positive":
                x = x * rng.choice([-1.0, 1.0], size=shape)
            arrays.append(np.asarray(x, dtype=dtype))
        return arrays


UNARY = [Sample(((),)), Sample(((3,),)), Sample(((2, 3),)), Sample(((2, 1, 4),))]
BINARY = [
    Sample(((), ())),
    Sample(((3,), (3,))),
    Sample(((2, 3), (3,))),
    Sample(((3, 1), (1, 4))),
    Sample(((2, 1, 4), (3, 1))),
    Sample(((), (2, 3))),
]


def _reduction_samples():
    samples = [Sample(((),), {"axis": None, "keepdims": False})]
    for axis in (None, 0, 1, -1, (0, 2)):
        for keepdims in (False, True):
            samples.append(Sample(((2, 3, 4),), {"axis": axis, "keepdims": keepdims}))
    samples.append(Sample(((1, 5),), {"axis": 0, "keepdims": False}))
    return samples


REDUCTIONS = _reduction_samples()


def _torch_reduce(name):
    def run(torch, x, axis=None, keepdims=False):
        dims = tuple(range(x.ndim)) if axis is None else axis
        if name == "var":
            return torch.var(x, dim=dims, keepdim=keepdims, correction=0)
        if name in ("max", "min"):
            fn = torch.amax if name == "max" else torch.amin
            return fn(x, dim=dims, keepdim=keepdims) if x.ndim else x.clone()
        return getattr(torch, name)(x, dim=dims, keepdim=keepdims)

    return run


def _np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis) if axis is not None else y.reshape(())


OPS = [
    # binary arithmetic
    OpInfo("add", lambda a, b: a + b, np.add, lambda t, a, b: a + b, BINARY),
    OpInfo("sub", lambda a, b: a - b, np.subtract, lambda t, a, b: a - b, BINARY),
    OpInfo("mul", lambda a, b: a * b, np.multiply, lambda t, a, b: a * b, BINARY),
    OpInfo("div", lambda a, b: a / b, np.divide, lambda t, a, b: a / b, BINARY),
    OpInfo("pow", lambda a, b: a**b, np.power, lambda t, a, b: a**b, BINARY, domain="positive"),
    OpInfo("pow_constant", lambda a: a**3, lambda a: a**3, lambda t, a: a**3, UNARY),
    OpInfo("square", lambda a: a**2, np.square, lambda t, a: a**2, UNARY),
    OpInfo("rsub_scalar", lambda a: 2.0 - a, lambda a: 2.0 - a, lambda t, a: 2.0 - a, UNARY),
    OpInfo("rdiv_scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, lambda t, a: 2.0 / a, UNARY),
    OpInfo("maximum", cr.maximum, np.maximum, lambda t, a, b: t.maximum(a, b), BINARY),
    OpInfo("minimum", cr.minimum, np.minimum, lambda t, a, b: t.minimum(a, b), BINARY),
    OpInfo(
        "where",
        lambda a, b: cr.where(a.data > 0, a, b),
        lambda a, b: np.where(a > 0, a, b),
        lambda t, a, b: t.where(a > 0, a, b),
        BINARY,
    ),
    OpInfo("matmul", lambda a, b: a @ b, np.matmul, lambda t, a, b: a @ b, [
        Sample(((2, 3), (3, 4))),
        Sample(((3,), (3, 4))),
        Sample(((2, 3), (3,))),
        Sample(((3,), (3,))),
        Sample(((2, 2, 3), (3, 4))),
        Sample(((2, 1, 2, 3), (3, 3, 2))),
    ]),
    # unary
    OpInfo("neg", lambda a: -a, np.negative, lambda t, a: -a, UNARY),
    OpInfo("exp", cr.exp, np.exp, lambda t, a: t.exp(a), UNARY),
    OpInfo("log", cr.log, np.log, lambda t, a: t.log(a), UNARY, domain="positive"),
    OpInfo("sqrt", cr.sqrt, np.sqrt, lambda t, a: t.sqrt(a), UNARY, domain="positive"),
    OpInfo("abs", cr.abs, np.abs, lambda t, a: t.abs(a), UNARY),
    OpInfo("tanh", cr.tanh, np.tanh, lambda t, a: t.tanh(a), UNARY),
    OpInfo("sigmoid", cr.sigmoid, lambda a: 1 / (1 + np.exp(-a)), lambda t, a: t.sigmoid(a),
           UNARY),
    OpInfo("relu", cr.relu, lambda a: np.maximum(a, 0), lambda t, a: t.relu(a), UNARY),
    OpInfo(
        "clip",
        lambda a: cr.clip(a, -0.5, 0.7),
        lambda a: np.clip(a, -0.5, 0.7),
        lambda t, a: t.clamp(a, -0.5, 0.7),
        UNARY,
    ),
    # reductions
    OpInfo("sum", cr.sum, np.sum, _torch_reduce("sum"), REDUCTIONS),
    OpInfo("mean", cr.mean, np.mean, _torch_reduce("mean"), REDUCTIONS),
    OpInfo("var", cr.var, np.var, _torch_reduce("var"), REDUCTIONS),
    OpInfo("max", cr.max, np.max, _torch_reduce("max"), REDUCTIONS),
    OpInfo("min", cr.min, np.min, _torch_reduce("min"), REDUCTIONS),
    OpInfo("logsumexp", cr.logsumexp, _np_logsumexp, _torch_reduce("logsumexp"), REDUCTIONS),
    # shape
    OpInfo("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1),
           lambda t, a: a.reshape(4, -1), [Sample(((2, 2, 3),)), Sample(((8,),))]),
    OpInfo("transpose", lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1),
           lambda t, a: a.permute(2, 0, 1), [Sample(((2, 3, 4),))]),
    OpInfo("T", lambda a: a.T, lambda a: a.T, lambda t, a: a.permute(*range(a.ndim - 1, -1, -1)),
           [Sample(((2, 3),)), Sample(((2, 3, 4),))]),
    OpInfo("expand_dims", lambda a: a.expand_dims(1), lambda a: np.expand_dims(a, 1),
           lambda t, a: a.unsqueeze(1), [Sample(((2, 3),))]),
    OpInfo("squeeze", lambda a: a.squeeze(), np.squeeze, lambda t, a: a.squeeze(),
           [Sample(((2, 1, 3, 1),))]),
    OpInfo("flatten", lambda a: a.flatten(1), lambda a: a.reshape(a.shape[0], -1),
           lambda t, a: a.flatten(1), [Sample(((2, 3, 4),))]),
    OpInfo("broadcast_to", lambda a: a.broadcast_to((2, 3, 4)),
           lambda a: np.broadcast_to(a, (2, 3, 4)), lambda t, a: a.expand(2, 3, 4),
           [Sample(((3, 1),)), Sample(((),)), Sample(((4,),))]),
    OpInfo("getitem_basic", lambda a: a[1:, ::2, 0], lambda a: a[1:, ::2, 0],
           lambda t, a: a[1:, ::2, 0], [Sample(((3, 4, 2),))]),
    OpInfo("getitem_repeated", lambda a: a[[0, 2, 0, 0]], lambda a: a[[0, 2, 0, 0]],
           lambda t, a: a[[0, 2, 0, 0]], [Sample(((3, 2),))]),
    OpInfo("getitem_pairs", lambda a: a[[0, 1, 1], [2, 0, 2]], lambda a: a[[0, 1, 1], [2, 0, 2]],
           lambda t, a: a[[0, 1, 1], [2, 0, 2]], [Sample(((2, 3),))]),
    OpInfo("concat", lambda a, b: cr.concat([a, b, a], axis=1),
           lambda a, b: np.concatenate([a, b, a], axis=1),
           lambda t, a, b: t.cat([a, b, a], dim=1), [Sample(((2, 3), (2, 1)))]),
    OpInfo("stack", lambda a, b: cr.stack([a, b], axis=1), lambda a, b: np.stack([a, b], 1),
           lambda t, a, b: t.stack([a, b], dim=1), [Sample(((2, 3), (2, 3)))]),
    OpInfo("split", lambda a: cr.split(a, [1, 3], axis=1)[1] * 2,
           lambda a: np.split(a, [1, 3], axis=1)[1] * 2,
           lambda t, a: a[:, 1:3] * 2, [Sample(((2, 4),))]),
    OpInfo("pad", lambda a: cr.pad(a, ((1, 0), (2, 1))), lambda a: np.pad(a, ((1, 0), (2, 1))),
           lambda t, a: t.nn.functional.pad(a, (2, 1, 1, 0)), [Sample(((2, 3),))]),
]


def ops_by_name() -> dict:
    return {op.name: op for op in OPS}
