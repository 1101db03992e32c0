"""max_pool2d and avg_pool2d: PyTorch parity (tiling fast path, overlap, padding, "same"),
first-max routing on ties, gradcheck, memory layouts and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import functional as F
from tests.torch_helpers import require_torch

torch = require_torch()

# every test runs with each kernel implementation (NumPy, and Numba with the [fast] extra)
pytestmark = pytest.mark.usefixtures("each_kernels")
TF = torch.nn.functional


def explicit_padding(size, pool, stride, padding):
    """(before, after) along one axis, written out independently of chainrule."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = max((math.ceil(size / stride) - 1) * stride + pool - size, 0)
        return total // 2, total - total // 2
    return padding, padding


def pads(x_shape, pool, stride, padding):
    pool = (pool, pool) if isinstance(pool, int) else pool
    stride = pool if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    top, bottom = explicit_padding(x_shape[2], pool[0], stride[0], padding)
    left, right = explicit_padding(x_shape[3], pool[1], stride[1], padding)
    return pool, stride, (left, right, top, bottom)


def torch_max_pool(x, pool, stride, padding):
    pool, stride, widths = pads(x.shape, pool, stride, padding)
    return TF.max_pool2d(TF.pad(x, widths, value=-math.inf), pool, stride)


def torch_avg_pool(x, pool, stride, padding):
    """Mean over the input elements of each window: sum pooling / count pooling."""
    pool, stride, widths = pads(x.shape, pool, stride, padding)
    sums = TF.avg_pool2d(TF.pad(x, widths), pool, stride) * (pool[0] * pool[1])
    counts = TF.avg_pool2d(TF.pad(torch.ones_like(x), widths), pool, stride) * (pool[0] * pool[1])
    return sums / counts


# (x shape, pool_size, strides, padding)
CASES = {
    "2x2 tiling (fast path)": ((2, 3, 8, 6), 2, None, "valid"),
    "3x2 tiling (fast path)": ((2, 2, 9, 8), (3, 2), None, "valid"),
    "2x2 on 7x7 (floor)": ((2, 2, 7, 7), 2, None, "valid"),
    "3x3 stride 2 overlap": ((2, 2, 9, 8), 3, 2, "valid"),
    "3x3 stride 1 pad 1": ((2, 2, 6, 5), 3, 1, 1),
    "2x2 same on odd input": ((2, 2, 7, 5), 2, None, "same"),
    "3x3 same stride 2": ((2, 2, 8, 7), 3, 2, "same"),
    "2x3 stride (1, 2)": ((2, 2, 6, 9), (2, 3), (1, 2), "valid"),
    "4x4 stride 2 pad 2": ((1, 2, 8, 8), 4, 2, 2),
}


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_torch(kind, case, rng):
    x_shape, pool, stride, padding = CASES[case]
    x = rng.standard_normal(x_shape)
    ours, theirs = (F.max_pool2d, torch_max_pool) if kind == "max" else (F.avg_pool2d,
                                                                         torch_avg_pool)
    xt = cr.tensor(x, dtype="float64", requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    y = ours(xt, pool, stride, padding)
    ty = theirs(tx, pool, stride, padding)
    assert y.shape == tuple(ty.shape)
    gy = rng.standard_normal(y.shape)
    y.backward(cr.tensor(gy, dtype="float64"))
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ["2x2 tiling (fast path)", "3x3 stride 2 overlap",
                                  "3x3 stride 1 pad 1"])
def test_max_pool_routes_ties_to_the_first_maximum(case, rng):
    """With many equal values, PyTorch's rule decides the gradient: first max, row-major."""
    x_shape, pool, stride, padding = CASES[case]
    x = rng.integers(0, 2, x_shape).astype(np.float64)
    xt = cr.tensor(x, dtype="float64", requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    gy = rng.standard_normal(F.max_pool2d(xt, pool, stride, padding).shape)
    F.max_pool2d(xt, pool, stride, padding).backward(cr.tensor(gy, dtype="float64"))
    torch_max_pool(tx, pool, stride, padding).backward(torch.tensor(gy))
    # overlapping windows add in another order: equal up to rounding, misrouting is O(1)
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", ["2x2 tiling (fast path)", "3x3 same stride 2",
                                  "3x3 stride 1 pad 1"])
def test_gradcheck(kind, case, rng):
    x_shape, pool, stride, padding = CASES[case]
    x = cr.tensor(rng.standard_normal((1, 2) + x_shape[2:]), dtype="float64", requires_grad=True)
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    assert cr.gradcheck(lambda t: fn(t, pool, stride, padding), [x])


def test_avg_pool_matches_torch_count_include_pad_false(rng):
    x = rng.standard_normal((2, 3, 6, 7))
    y = F.avg_pool2d(cr.tensor(x, dtype="float64"), 3, 2, 1)
    expected = TF.avg_pool2d(torch.tensor(x), 3, 2, 1, count_include_pad=False)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("layout", ["channel-major", "strided slice"])
@pytest.mark.parametrize("case", ["2x2 tiling (fast path)", "3x3 stride 2 overlap"])
def test_any_input_layout_and_the_output_keeps_it(kind, layout, case, rng):
    x_shape, pool, stride, padding = CASES[case]
    if layout == "channel-major":
        x = np.ascontiguousarray(rng.standard_normal(x_shape).transpose(1, 0, 2, 3))
        x = x.transpose(1, 0, 2, 3)
    else:
        x = rng.standard_normal(x_shape[:2] + (2 * x_shape[2], x_shape[3]))[:, :, ::2]
    fn, ref = (F.max_pool2d, torch_max_pool) if kind == "max" else (F.avg_pool2d,
                                                                     torch_avg_pool)
    xt = cr.Tensor(x, requires_grad=True)
    tx = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    y = fn(xt, pool, stride, padding)
    if layout == "channel-major":
        assert y.data.swapaxes(0, 1).flags.c_contiguous
    (y * y).sum().backward()
    ty = ref(tx, pool, stride, padding)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ["2x2 tiling (fast path)", "3x3 stride 2 overlap"])
def test_float32_stays_float32(case, rng):
    x_shape, pool, stride, padding = CASES[case]
    for fn in (F.max_pool2d, F.avg_pool2d):
        x = cr.tensor(rng.standard_normal(x_shape).astype(np.float32), requires_grad=True)
        y = fn(x, pool, stride, padding)
        y.sum().backward()
        assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_max_pool_without_gradient_tracking_gives_the_same_values(rng):
    x = cr.tensor(rng.standard_normal((2, 3, 8, 8)))
    with cr.no_grad():
        fast = F.max_pool2d(x, 2)
        overlap = F.max_pool2d(x, 3, 2)
    expected = TF.max_pool2d(torch.tensor(x.numpy()), 2)
    np.testing.assert_array_equal(fast.numpy(), expected.numpy())
    np.testing.assert_array_equal(overlap.numpy(),
                                  TF.max_pool2d(torch.tensor(x.numpy()), 3, 2).numpy())


def test_max_pool_propagates_nan():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    y = F.max_pool2d(cr.tensor(x), 2).numpy()
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1, 1])


@pytest.mark.parametrize("fn", [F.max_pool2d, F.avg_pool2d])
@pytest.mark.parametrize("shape,kwargs,message", [
    ((2, 3, 4), {}, r"pool2d: input must be 4-D.*\(2, 3, 4\)"),
    ((1, 1, 2, 2), {"pool_size": 3}, r"pool2d: pool size \(3, 3\) is larger than the padded "
                                     r"input \(2, 2\)"),
    ((1, 1, 6, 6), {"pool_size": 2, "padding": 2}, r"pool2d: padding 2 must be at most half"),
    ((1, 1, 6, 6), {"pool_size": 0}, r"pool2d: pool_size must be positive"),
    ((1, 1, 6, 6), {"padding": "full"}, r"pool2d: padding must be"),
])
def test_errors_name_the_op_and_shapes(fn, shape, kwargs, message):
    with pytest.raises(ValueError, match=fn.__name__ + ": " + message.split("pool2d: ")[1]):
        fn(cr.zeros(*shape), **kwargs)
