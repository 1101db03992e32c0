"""Conv1D: gradient checks, parity with torch.nn.functional.conv1d ("valid", "same", "causal",
int padding, strides, dilation, both layouts), shapes, kernel layout, causality, configs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import config, layers
from chainrule.initializers import compute_fans
from chainrule.layers import Conv1D, Conv2D
from tests.layers.helpers import assert_torch_parity, gradcheck_layer
from tests.torch_helpers import require_torch

torch = require_torch()
tF = torch.nn.functional
rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _default_layout(monkeypatch):
    """Each test reads (N, C, L), chosen as if by set_image_data_format; restored after."""
    monkeypatch.setattr(config, "_state", {"data_format": "channels_first", "chosen": True})


def torch_pads(length, kernel, stride, dilation, padding):
    """(left, right) zeros that give our padding with torch's conv1d (Keras's rules)."""
    span = dilation * (kernel - 1)
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span, 0
    if padding == "same":
        total = max((math.ceil(length / stride) - 1) * stride + span + 1 - length, 0)
        return total // 2, total - total // 2
    return padding, padding


def torch_conv1d(weight, bias, kernel, stride, dilation, padding, channels_last=False):
    def forward(t):
        if channels_last:
            t = t.transpose(1, 2)
        t = tF.pad(t, torch_pads(t.shape[2], kernel, stride, dilation, padding))
        y = tF.conv1d(t, weight, bias, stride=stride, dilation=dilation)
        return y.transpose(1, 2) if channels_last else y
    return forward


CONFIGS = [
    # (kernel_size, strides, padding, dilation_rate)
    (3, 1, "valid", 1),
    (3, 2, "valid", 1),
    (5, 3, "valid", 2),
    (3, 1, "same", 1),
    (4, 1, "same", 1),
    (3, 2, "same", 1),
    (3, 1, "same", 2),
    (2, 1, "causal", 1),
    (3, 2, "causal", 1),
    (3, 1, "causal", 2),
    (3, 2, "causal", 3),
    (3, 1, 2, 1),
    (4, 2, 1, 2),
]


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("kernel_size, strides, padding, dilation", CONFIGS, ids=str)
def test_conv1d_matches_torch(float64, kernel_size, strides, padding, dilation, data_format):
    last = data_format == "channels_last"
    layer = Conv1D(4, kernel_size, strides=strides, padding=padding, dilation_rate=dilation,
                   data_format=data_format, input_shape=(11, 3) if last else (3, 11))
    weight = torch.tensor(rng.standard_normal((4, 3, kernel_size)), requires_grad=True)
    bias = torch.tensor(rng.standard_normal(4), requires_grad=True)
    layer.set_weights([weight.detach().numpy(), bias.detach().numpy()])
    x = rng.standard_normal((2, 11, 3) if last else (2, 3, 11))
    forward = torch_conv1d(weight, bias, kernel_size, strides, dilation, padding, last)
    assert_torch_parity(layer, forward, x,
                        [(layer.kernel, weight, None), (layer.bias, bias, None)])
    assert layer.output_shape == layer.compute_output_shape((None, *x.shape[1:]))


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("kernel_size, strides, padding, dilation", [
    (3, 1, "valid", 1), (3, 2, "same", 1), (2, 1, "same", 2), (3, 1, "causal", 2),
    (3, 2, "causal", 1), (3, 1, 1, 1)], ids=str)
def test_conv1d_gradcheck(float64, kernel_size, strides, padding, dilation, data_format):
    shape = (2, 3, 7) if data_format == "channels_first" else (2, 7, 3)
    x = cr.tensor(rng.standard_normal(shape), requires_grad=True)
    layer = Conv1D(2, kernel_size, strides=strides, padding=padding, dilation_rate=dilation,
                   activation="tanh", data_format=data_format)
    assert gradcheck_layer(layer, x)


def test_conv1d_relu_is_fused_and_matches_torch(float64):
    layer = Conv1D(3, 3, padding="causal", activation="relu", use_bias=False,
                   input_shape=(2, 9))
    assert layer.bias is None and layer.count_params() == 3 * 2 * 3
    weight = torch.tensor(rng.standard_normal((3, 2, 3)), requires_grad=True)
    layer.set_weights([weight.detach().numpy()])
    forward = torch_conv1d(weight, None, 3, 1, 1, "causal")
    assert_torch_parity(layer, lambda t: torch.relu(forward(t)), rng.standard_normal((2, 2, 9)),
                        [(layer.kernel, weight, None)])
    # one conv2d op with the ReLU inside, then the reshape back to (N, F, L): no separate ReLU
    assert type(layer(cr.zeros(1, 2, 9))._node).__name__ == "Reshape"


def test_conv1d_kernel_layout_fans_and_defaults():
    layer = Conv1D(8, 5, input_shape=(4, 20))
    assert layer.kernel.shape == (8, 4, 5) and layer.bias.shape == (8,)
    assert layer.count_params() == 8 * (4 * 5 + 1)
    assert compute_fans(layer.kernel.shape) == (4 * 5, 8 * 5)
    assert (layer.strides, layer.padding, layer.dilation_rate) == ((1,), "valid", (1,))
    assert layer.data_format == "channels_first" and layer.name.startswith("conv1d")
    config_ = layer.get_config()
    assert config_["kernel_size"] == [5] and config_["data_format"] == "channels_first"
    assert config_["kernel_initializer"]["class_name"].lower().startswith("glorot")


@pytest.mark.parametrize("length, kernel, stride, padding, dilation, expected", [
    (10, 3, 1, "valid", 1, 8), (10, 3, 1, "same", 1, 10), (10, 3, 3, "same", 1, 4),
    (10, 3, 1, "causal", 2, 10), (10, 3, 3, "causal", 1, 4), (10, 3, 2, 1, 1, 5),
    (10, 3, 1, "valid", 3, 4),
])
def test_conv1d_output_length(length, kernel, stride, padding, dilation, expected):
    layer = Conv1D(5, kernel, strides=stride, padding=padding, dilation_rate=dilation)
    assert layer.compute_output_shape((None, 2, length)) == (None, 5, expected)
    assert layer.compute_output_shape((None, 2, None)) == (None, 5, None)
    assert layer(cr.zeros(1, 2, length)).shape == (1, 5, expected)
    last = Conv1D(5, kernel, strides=stride, padding=padding, dilation_rate=dilation,
                  data_format="channels_last")
    assert last.compute_output_shape((None, length, 2)) == (None, expected, 5)
    assert last(cr.zeros(1, length, 2)).shape == (1, expected, 5)


@pytest.mark.parametrize("strides, dilation", [(1, 1), (1, 2), (2, 1)])
def test_causal_output_never_sees_the_future(float64, strides, dilation):
    layer = Conv1D(2, 3, strides=strides, padding="causal", dilation_rate=dilation)
    x = rng.standard_normal((1, 2, 12))
    y = layer(cr.tensor(x)).numpy()
    for t in range(y.shape[2]):
        changed = x.copy()
        changed[:, :, t * strides + 1:] += 1.0  # inputs after the output's last tap
        np.testing.assert_allclose(layer(cr.tensor(changed)).numpy()[:, :, :t + 1],
                                   y[:, :, :t + 1], rtol=1e-12)


def test_conv1d_config_round_trip_and_serialization():
    layer = Conv1D(4, 3, strides=2, padding="causal", dilation_rate=2, activation="relu",
                   data_format="channels_last", name="c1d")
    config_ = layer.get_config()
    again = Conv1D.from_config(config_)
    assert again.get_config() == config_
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is Conv1D and restored.get_config() == config_
    assert restored(cr.zeros(2, 9, 3)).shape == (2, 5, 4)


def test_conv1d_argument_and_input_errors():
    with pytest.raises(ValueError, match="Conv1D: padding must be 'valid', 'same', 'causal'"):
        Conv1D(2, 3, padding="full")
    with pytest.raises(ValueError, match="Conv2D: padding must be 'valid', 'same' or ints"):
        Conv2D(2, 3, padding="causal")  # causal is 1-D only, as in Keras
    with pytest.raises(ValueError, match="Conv1D: kernel_size must be a positive int"):
        Conv1D(2, (3, 3))
    with pytest.raises(ValueError, match="Conv1D: strides"):
        Conv1D(2, 3, strides=0)
    with pytest.raises(ValueError, match="Conv1D: data_format must be 'channels_first' or"):
        Conv1D(2, 3, data_format="NCL")
    layer = Conv1D(2, 3, name="c1")
    with pytest.raises(ValueError, match=r"'c1' \(Conv1D\) expects input of shape "
                                         r"\(None, None, None\) .* \(1, 3, 5, 5\)"):
        layer(cr.zeros(1, 3, 5, 5))
    layer(cr.zeros(1, 3, 5))
    with pytest.raises(ValueError, match=r"\(None, 3, None\) .* \(1, 4, 5\)"):
        layer(cr.zeros(1, 4, 5))


def test_conv1d_trains_in_a_sequential_model():
    from chainrule.models import Sequential

    x = rng.standard_normal((16, 12, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    model = Sequential([layers.Input(shape=(12, 2)),
                        Conv1D(4, 3, padding="causal", activation="relu",
                               data_format="channels_last"),
                        layers.GlobalMaxPooling1D(data_format="channels_last"),
                        layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    losses = model.fit(x, y, epochs=5, batch_size=16, verbose=0).history["loss"]
    assert model.output_shape == (None, 2) and losses[-1] < losses[0]
