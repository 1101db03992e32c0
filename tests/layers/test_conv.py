"""Conv2D: gradient checks, parity with torch.nn.Conv2d, output shapes, fans."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import layers
from chainrule.initializers import compute_fans
from chainrule.layers import Conv2D
from tests.layers.helpers import assert_torch_parity, gradcheck_layer
from tests.torch_helpers import require_torch

torch = require_torch()
tF = torch.nn.functional
rng = np.random.default_rng(0)


def same_padding(size, kernel, stride, dilation):
    """Keras's "same": ⌈n/s⌉ outputs, the padding split evenly with the extra zero at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def torch_conv(module, padding, kernel_size, strides, dilation):
    """The torch computation for our padding argument (explicit asymmetric pads for "same")."""
    def forward(t):
        if padding == "same":
            top, bottom = same_padding(t.shape[2], kernel_size[0], strides[0], dilation[0])
            left, right = same_padding(t.shape[3], kernel_size[1], strides[1], dilation[1])
            t = tF.pad(t, (left, right, top, bottom))
        return module(t)
    return forward


CONFIGS = [
    # (kernel_size, strides, padding, dilation_rate)
    (3, 1, "valid", 1),
    (3, 2, "same", 1),
    (3, 1, "same", 2),
    (2, 1, "same", 1),
    (4, 2, "same", 1),
    ((2, 3), (2, 1), "valid", 1),
    (3, 2, 1, 1),
    (3, 1, (1, 2), 2),
]


@pytest.mark.parametrize("kernel_size, strides, padding, dilation", CONFIGS, ids=str)
def test_conv2d_matches_torch(float64, kernel_size, strides, padding, dilation):
    layer = Conv2D(4, kernel_size, strides=strides, padding=padding, dilation_rate=dilation,
                   input_shape=(3, 7, 6))
    ks, st, dl = layer.kernel_size, layer.strides, layer.dilation_rate
    torch_padding = 0 if padding in ("same", "valid") else padding
    module = torch.nn.Conv2d(3, 4, ks, stride=st, padding=torch_padding, dilation=dl).double()
    layer.set_weights([module.weight.detach().numpy(), module.bias.detach().numpy()])
    x = rng.standard_normal((2, 3, 7, 6))
    assert_torch_parity(layer, torch_conv(module, padding, ks, st, dl), x,
                        [(layer.kernel, module.weight, None), (layer.bias, module.bias, None)])
    assert layer.output_shape == layer.compute_output_shape((None, 3, 7, 6))


@pytest.mark.parametrize("kernel_size, strides, padding, dilation", [
    (3, 1, "valid", 1), (3, 2, "same", 1), (2, 1, "same", 2), (3, 1, 1, 1)], ids=str)
def test_conv2d_gradcheck(float64, kernel_size, strides, padding, dilation):
    x = cr.tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    layer = Conv2D(2, kernel_size, strides=strides, padding=padding, dilation_rate=dilation)
    assert gradcheck_layer(layer, x)


def test_conv2d_without_bias_and_with_activation(float64):
    layer = Conv2D(2, 3, use_bias=False, activation="relu", input_shape=(3, 5, 5))
    assert layer.bias is None and layer.count_params() == 2 * 3 * 9
    module = torch.nn.Conv2d(3, 2, 3, bias=False).double()
    layer.set_weights([module.weight.detach().numpy()])
    assert_torch_parity(layer, lambda t: torch.relu(module(t)), rng.standard_normal((2, 3, 5, 5)),
                        [(layer.kernel, module.weight, None)])


def test_conv2d_kernel_layout_and_fans():
    layer = Conv2D(8, (3, 5), input_shape=(4, 10, 10))
    assert layer.kernel.shape == (8, 4, 3, 5) and layer.count_params() == 8 * (4 * 15 + 1)
    assert compute_fans(layer.kernel.shape) == (4 * 15, 8 * 15)


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, expected", [
    (28, 3, 1, "valid", 1, 26), (28, 3, 1, "same", 1, 28), (28, 3, 2, "same", 1, 14),
    (7, 3, 2, "same", 1, 4), (7, 3, 1, "valid", 2, 3), (7, 3, 2, 1, 1, 4),
])
def test_conv2d_output_shape(size, kernel, stride, padding, dilation, expected):
    layer = Conv2D(5, kernel, strides=stride, padding=padding, dilation_rate=dilation)
    assert layer.compute_output_shape((None, 3, size, size)) == (None, 5, expected, expected)
    assert layer(cr.zeros(1, 3, size, size)).shape == (1, 5, expected, expected)


def test_conv2d_argument_and_input_errors():
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(2, 0)
    with pytest.raises(ValueError, match="padding"):
        Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="filters"):
        Conv2D(0, 3)
    layer = Conv2D(2, 3, name="c1")
    layer(cr.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"'c1' \(Conv2D\) expects input of shape "
                                         r"\(None, 3, None, None\) .* \(1, 4, 5, 5\)"):
        layer(cr.zeros(1, 4, 5, 5))


@pytest.mark.parametrize("make", [
    lambda activation: layers.Dense(5, activation=activation),
    lambda activation: layers.Conv2D(3, 3, padding="same", activation=activation),
])
def test_relu_activation_is_fused_and_equals_a_separate_relu(make, float64):
    # Dense and Conv2D with activation="relu" run one fused op; the results must not change
    x_shape = (4, 6) if isinstance(make(None), layers.Dense) else (2, 2, 5, 5)
    x = np.random.default_rng(0).standard_normal(x_shape)
    fused, plain = make("relu"), make(None)
    fused(cr.tensor(x))  # builds
    plain(cr.tensor(x))
    plain.set_weights(fused.get_weights())
    inputs = [cr.tensor(x, dtype="float64", requires_grad=True) for _ in range(2)]
    y_fused = fused(inputs[0])
    y_plain = cr.functional.relu(plain(inputs[1]))
    assert y_fused._node is not None and type(y_fused._node).__name__ in ("Linear", "Conv2d")
    upstream = cr.tensor(rng.standard_normal(y_fused.shape), dtype="float64")
    y_fused.backward(upstream)
    y_plain.backward(upstream)
    np.testing.assert_allclose(y_fused.numpy(), y_plain.numpy(), rtol=1e-12)
    np.testing.assert_allclose(inputs[0].grad.numpy(), inputs[1].grad.numpy(), rtol=1e-12)
    for a, b in zip(fused.trainable_weights, plain.trainable_weights):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)
