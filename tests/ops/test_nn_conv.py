"""conv2d: PyTorch parity (forward and every gradient), gradcheck, the composite from primitives,
chunking, memory layouts and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import functional as F
from chainrule.ops import conv_geometry, conv_im2col
from tests.torch_helpers import require_torch

torch = require_torch()
TF = torch.nn.functional


def same_padding(size, kernel, stride, dilation):
    """TensorFlow's "same" rule, written out independently: (before, after)."""
    span = dilation * (kernel - 1) + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def torch_conv(x, w, b, stride, padding, dilation):
    """Reference: explicit padding with F.pad, then an unpadded torch convolution."""
    stride = (stride, stride) if isinstance(stride, int) else stride
    dilation = (dilation, dilation) if isinstance(dilation, int) else dilation
    kh, kw = w.shape[2:]
    if padding == "same":
        (top, bottom) = same_padding(x.shape[2], kh, stride[0], dilation[0])
        (left, right) = same_padding(x.shape[3], kw, stride[1], dilation[1])
    elif padding == "valid":
        top = bottom = left = right = 0
    elif isinstance(padding, int):
        top = bottom = left = right = padding
    elif isinstance(padding[0], int):
        (top, left), (bottom, right) = padding, padding
    else:
        (top, bottom), (left, right) = padding
    x = TF.pad(x, (left, right, top, bottom))
    return TF.conv2d(x, w, b, stride=stride, dilation=dilation)


# (x shape, kernel shape, stride, padding, dilation)
CASES = {
    "3x3 pad 1": ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1, 1),
    "stride 2": ((2, 3, 7, 6), (4, 3, 3, 2), 2, 0, 1),
    "stride (2, 1) pad (1, 2)": ((2, 2, 7, 6), (3, 2, 3, 3), (2, 1), (1, 2), 1),
    "dilation 2": ((2, 3, 9, 8), (4, 3, 3, 3), 1, 0, 2),
    "dilation (2, 1) stride 2 pad 1": ((2, 3, 9, 8), (4, 3, 3, 3), 2, 1, (2, 1)),
    "same, odd kernel": ((2, 2, 6, 5), (3, 2, 3, 3), 1, "same", 1),
    "same, even kernel": ((2, 2, 6, 5), (3, 2, 2, 4), 1, "same", 1),
    "same, stride 2, odd input": ((2, 2, 7, 8), (3, 2, 3, 3), 2, "same", 1),
    "same, stride 3, even kernel": ((2, 2, 8, 7), (3, 2, 4, 2), 3, "same", 1),
    "same, dilation 2": ((2, 2, 7, 6), (3, 2, 3, 2), 1, "same", 2),
    "valid, non-square kernel": ((2, 3, 6, 9), (2, 3, 2, 5), 1, "valid", 1),
    "1x1": ((3, 4, 5, 5), (2, 4, 1, 1), 1, 0, 1),
    "explicit ((0, 1), (2, 0))": ((2, 2, 5, 6), (3, 2, 3, 3), 1, ((0, 1), (2, 0)), 1),
    "kernel = padded input": ((2, 2, 3, 4), (3, 2, 5, 4), 1, (1, 0), 1),
    "padding wider than the kernel": ((2, 2, 5, 4), (3, 2, 3, 2), 1, 3, 1),
    "1x1 with padding": ((2, 2, 4, 3), (3, 2, 1, 1), 1, 1, 1),
    "more filters than patch rows": ((2, 1, 6, 5), (12, 1, 3, 3), 1, 1, 1),
    # stride 1 with at least twice the filters: the input gradient by col2im, not the
    # transposed correlation (conv_im2col.col2im_is_cheaper)
    "twice the filters, same, even kernel": ((2, 2, 6, 5), (4, 2, 2, 4), 1, "same", 1),
    "twice the filters, dilation 2, wide padding": ((2, 2, 7, 6), (5, 2, 3, 2), 1, 3, 2),
}


def run_both(x, w, b, stride, padding, dilation, dtype):
    ours = [cr.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ours, stride=stride, padding=padding, dilation=dilation)
    ty = torch_conv(*theirs, stride, padding, dilation)
    gy = np.random.default_rng(1).standard_normal(ty.shape).astype(dtype)
    y.backward(cr.tensor(gy, dtype=dtype))
    ty.backward(torch.tensor(gy))
    return [y] + [t.grad for t in ours], [ty] + [t.grad for t in theirs]


@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_torch_float64(case, rng):
    x_shape, w_shape, stride, padding, dilation = CASES[case]
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (w_shape[0],))]
    ours, theirs = run_both(*arrays, stride, padding, dilation, "float64")
    for name, a, t in zip(("y", "gx", "gw", "gb"), ours, theirs):
        assert a.shape == tuple(t.shape), name
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("stride,channels", [(1, 1), (1, 3), (2, 3)])
def test_parity_float32_keeps_float32(stride, channels, rng):
    x = rng.standard_normal((4, channels, 12, 12)).astype(np.float32)
    w = (rng.standard_normal((8, channels, 3, 3)) * 0.3).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    ours, theirs = run_both(x, w, b, stride, 1, 1, "float32")
    for name, a, t in zip(("y", "gx", "gw", "gb"), ours, theirs):
        assert a.dtype == np.float32, name
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=name)


@pytest.mark.parametrize("case", ["stride (2, 1) pad (1, 2)", "dilation (2, 1) stride 2 pad 1",
                                  "same, even kernel", "3x3 pad 1"])
def test_gradcheck(case, rng):
    x_shape, w_shape, stride, padding, dilation = CASES[case]
    x_shape = (1, 2) + x_shape[2:]
    w_shape = (2, 2) + w_shape[2:]
    inputs = [cr.tensor(rng.standard_normal(s), dtype="float64", requires_grad=True)
              for s in (x_shape, w_shape, (2,))]
    assert cr.gradcheck(
        lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation),
        inputs)


@pytest.mark.parametrize("filters, col2im", [(2, False), (4, True)])
def test_stride_one_input_gradient_either_way(filters, col2im, monkeypatch, rng):
    """Stride 1: the transposed correlation, or col2im with twice the filters or more; both
    pass the gradient check, through a fused ReLU, in im2col forced or chosen."""
    used = []
    transposed = conv_im2col.transposed_correlation
    monkeypatch.setattr(conv_im2col, "transposed_correlation",
                        lambda *args: used.append(True) or transposed(*args))
    inputs = [cr.tensor(rng.standard_normal(s), dtype="float64", requires_grad=True)
              for s in ((1, 2, 6, 5), (filters, 2, 3, 2), (filters,))]
    with F.conv_algorithm("im2col"):
        assert cr.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=3, dilation=2, relu=True),
                            inputs)
    assert bool(used) != col2im


@pytest.mark.parametrize("case", ["3x3 pad 1", "stride (2, 1) pad (1, 2)", "1x1"])
def test_fused_relu_matches_torch_and_gradcheck(case, rng):
    x_shape, w_shape, stride, padding, dilation = CASES[case]
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (w_shape[0],))]
    ours = [cr.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = F.conv2d(*ours, stride=stride, padding=padding, dilation=dilation, relu=True)
    ty = torch.relu(torch_conv(*theirs, stride, padding, dilation))
    gy = rng.standard_normal(ty.shape)
    y.backward(cr.tensor(gy, dtype="float64"))
    ty.backward(torch.tensor(gy))
    assert (y.numpy() == 0).any() and (y.numpy() > 0).any()
    for a, t in zip([y] + [t.grad for t in ours], [ty] + [t.grad for t in theirs]):
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10)
    small = [cr.tensor(rng.standard_normal(s), dtype="float64", requires_grad=True)
             for s in ((1, 2, 5, 5), (2, 2, 3, 3), (2,))]
    assert cr.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1, relu=True), small)


def composite_conv(x, w, b, stride, padding, dilation):
    """conv2d from primitives: pad, one strided slice per kernel offset, matmul, sum."""
    (sh, sw), (dh, dw) = conv_geometry.pair(stride, "s"), conv_geometry.pair(dilation, "d")
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    (top, bottom), (left, right) = conv_geometry.spatial_padding(
        padding, (h, wd), (kh, kw), (sh, sw), (dh, dw), "test")
    xp = cr.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
    y = 0
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                        j * dw: j * dw + sw * (ow - 1) + 1: sw]  # (N, C, OH, OW)
            y = y + window.transpose(0, 2, 3, 1) @ w[:, :, i, j].T  # (N, OH, OW, F)
    return (y + b).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("case", ["stride (2, 1) pad (1, 2)", "same, stride 3, even kernel",
                                  "dilation 2"])
def test_matches_composite_from_primitives(case, rng, float64):
    x_shape, w_shape, stride, padding, dilation = CASES[case]
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (w_shape[0],))]
    results = []
    for fn in (F.conv2d, composite_conv):
        inputs = [cr.tensor(a, requires_grad=True) for a in arrays]
        y = fn(*inputs, stride=stride, padding=padding, dilation=dilation)
        (y * y).sum().backward()
        results.append([y.numpy()] + [t.grad.numpy() for t in inputs])
    for a, c in zip(*results):
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("samples_per_chunk", [1, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_chunks_of_the_batch_give_the_same_result(monkeypatch, samples_per_chunk, stride, rng,
                                                  float64):
    """One sample per chunk, and chunks of 3 with a shorter last chunk (7 = 3 + 3 + 1)."""
    x = rng.standard_normal((7, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)

    def run():
        inputs = [cr.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = F.conv2d(*inputs, stride=stride, padding=1)
        (y * y).sum().backward()
        return [y.numpy()] + [t.grad.numpy() for t in inputs]

    whole = run()
    def layout():
        return conv_im2col.im2col_geometry(
            conv_geometry.conv_geometry(x.shape, w.shape, stride, 1, 1), 8)

    geometry = layout()
    assert geometry.chunk == 7
    sample_bytes = (geometry.patch + geometry.filters) * geometry.positions * 8
    monkeypatch.setattr(conv_im2col, "CHUNK_BYTES", samples_per_chunk * sample_bytes)
    assert layout().chunk == samples_per_chunk
    for a, c in zip(run(), whole):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["nchw", "channel-major", "strided slice"])
def test_any_input_layout(layout, rng, float64):
    base = rng.standard_normal((3, 2, 10, 8))
    if layout == "nchw":
        x = base
    elif layout == "channel-major":
        x = np.ascontiguousarray(base.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    else:
        x = rng.standard_normal((3, 2, 20, 8))[:, :, ::2]
    w = rng.standard_normal((4, 2, 3, 3))
    xt, wt = cr.Tensor(x, requires_grad=True), cr.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, padding=1)
    y.sum().backward()  # the upstream gradient is a broadcast (zero-stride) array
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = TF.conv2d(tx, tw, padding=1)
    ty.sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(wt.grad.numpy(), tw.grad.numpy(), atol=1e-12)


def test_two_layers_chain_through_channel_major_outputs(rng, float64):
    """conv → relu → conv, as in a CNN: the channel-major output feeds the next layer."""
    x = rng.standard_normal((3, 2, 8, 8))
    w1, w2 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((5, 4, 3, 3))
    ours = [cr.tensor(a, requires_grad=True) for a in (x, w1, w2)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w1, w2)]
    y = F.conv2d(F.relu(F.conv2d(ours[0], ours[1], padding=1)), ours[2], stride=2)
    ty = TF.conv2d(TF.relu(TF.conv2d(theirs[0], theirs[1], padding=1)), theirs[2], stride=2)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("samples_per_chunk", [None, 2])
@pytest.mark.parametrize("case", ["3x3 pad 1", "same, even kernel", "dilation 2"])
def test_kernel_gradient_of_a_first_layer(case, samples_per_chunk, monkeypatch, rng):
    """Input without gradient (a network's first layer): ∂L/∂W from the input's columns."""
    x_shape, w_shape, stride, padding, dilation = CASES[case]
    x, w = rng.standard_normal((5,) + x_shape[1:]), rng.standard_normal(w_shape)
    if samples_per_chunk:
        geom = conv_im2col.im2col_geometry(
            conv_geometry.conv_geometry(x.shape, w.shape, stride, padding, dilation), 8,
            wide=False)
        monkeypatch.setattr(conv_im2col, "CHUNK_BYTES",
                            samples_per_chunk * (geom.patch + geom.filters) * geom.positions * 8)
    wt, tw = cr.tensor(w, dtype="float64", requires_grad=True), torch.tensor(w,
                                                                             requires_grad=True)
    y = F.conv2d(cr.tensor(x, dtype="float64"), wt, stride=stride, padding=padding,
                 dilation=dilation)
    ty = torch_conv(torch.tensor(x), tw, None, stride, padding, dilation)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(wt.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_gradients_only_where_asked(rng):
    x = cr.tensor(rng.standard_normal((2, 3, 5, 5)))
    w = cr.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None and w.grad.shape == w.shape


def test_no_bias_and_integer_input(rng):
    x = rng.integers(0, 5, (2, 1, 5, 5))
    w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    y = F.conv2d(x, w)
    assert y.dtype == np.float32
    expected = TF.conv2d(torch.tensor(x, dtype=torch.float32), torch.tensor(w))
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_second_order_is_refused_clearly(rng):
    x = cr.tensor(rng.standard_normal((1, 1, 4, 4)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((1, 1, 3, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match="Conv2d"):
        cr.grad(F.conv2d(x, w).sum(), [x], create_graph=True)


@pytest.mark.parametrize("x_shape,w_shape,kwargs,message", [
    ((2, 3, 5, 5), (4, 2, 3, 3), {}, r"conv2d: input has 3 channels but the kernel expects 2"),
    ((2, 3, 4, 4), (4, 3, 5, 5), {}, r"conv2d: kernel \(5, 5\).*larger than the padded input"),
    ((2, 3, 4, 4), (4, 3, 3, 3), {"dilation": 2}, r"conv2d: kernel.*dilation.*\(4, 4\)"),
    ((3, 5, 5), (4, 3, 3, 3), {}, r"conv2d: input must be 4-D.*\(3, 5, 5\)"),
    ((2, 3, 5, 5), (4, 3, 3), {}, r"conv2d: kernel must be 4-D.*\(4, 3, 3\)"),
    ((2, 3, 5, 5), (4, 3, 3, 3), {"padding": "full"}, r"conv2d: padding must be"),
    ((2, 3, 5, 5), (4, 3, 3, 3), {"padding": -1}, r"conv2d: padding must not be negative"),
    ((2, 3, 5, 5), (4, 3, 3, 3), {"stride": 0}, r"conv2d: stride must be positive"),
])
def test_errors_name_conv2d_and_the_shapes(x_shape, w_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.conv2d(cr.zeros(*x_shape), cr.zeros(*w_shape), **kwargs)


def test_bias_shape_is_checked():
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(4,\)"):
        F.conv2d(cr.zeros(1, 3, 5, 5), cr.zeros(4, 3, 3, 3), cr.zeros(3))
