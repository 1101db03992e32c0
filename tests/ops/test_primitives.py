"""Generic tests driven by the op table: forward vs NumPy, float64 gradcheck, double backward,
and parity with PyTorch (forward and backward) for every primitive and every sample."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.testing.op_table import OPS
from tests.torch_helpers import require_torch

CASES = [
    pytest.param(op, sample, id=f"{op.name}-{sample!r}") for op in OPS for sample in op.samples
]


@pytest.mark.parametrize("op,sample", CASES)
def test_forward_matches_numpy(op, sample, rng):
    arrays = op.make_inputs(sample, rng, np.float32)
    ours = op.ours(*[cr.tensor(a) for a in arrays], **sample.kwargs)
    expected = op.numpy(*arrays, **sample.kwargs)
    assert ours.shape == np.shape(expected)
    assert ours.dtype == np.float32, "float32 in must give float32 out"
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op,sample", CASES)
def test_gradcheck(op, sample, rng):
    arrays = op.make_inputs(sample, rng, np.float64)
    inputs = [cr.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    assert cr.gradcheck(lambda *xs: op.ours(*xs, **sample.kwargs), inputs)


@pytest.mark.parametrize("op,sample", CASES)
def test_double_backward(op, sample, rng):
    """The gradient is itself differentiable: gradcheck the map x -> (dL/dx) for a fixed L."""
    if not op.double_backward:
        pytest.skip("first-order op")
    arrays = op.make_inputs(sample, rng, np.float64)
    inputs = [cr.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    out_shape = op.ours(*inputs, **sample.kwargs).shape
    weight = cr.tensor(rng.standard_normal(out_shape), dtype="float64")

    def first_gradients(*xs):
        y = op.ours(*xs, **sample.kwargs)
        grads = cr.grad((y * weight * y).sum(), list(xs), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None and g.requires_grad)

    if not first_gradients(*inputs):
        pytest.skip("the first gradient does not depend on the inputs (a linear op)")
    assert cr.gradcheck(first_gradients, inputs)


@pytest.mark.parametrize("op,sample", CASES)
def test_parity_with_torch(op, sample, rng):
    torch = require_torch()
    arrays = op.make_inputs(sample, rng, np.float64)
    ours_in = [cr.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours = op.ours(*ours_in, **sample.kwargs)
    theirs = op.torch(torch, *theirs_in, **sample.kwargs)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng.standard_normal(ours.shape)
    ours.backward(cr.tensor(upstream, dtype="float64"))
    theirs.backward(torch.tensor(upstream))
    for mine, reference in zip(ours_in, theirs_in):
        if reference.grad is None:
            assert mine.grad is None or not np.any(mine.grad.numpy())
            continue
        np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), rtol=1e-10,
                                   atol=1e-12)
