"""1-D pooling layers: gradient checks and parity with torch max_pool1d / avg_pool1d and the
global reductions, in both layouts; shapes, configs and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import config, layers
from chainrule.layers import (
    AveragePooling1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
)
from tests.layers.helpers import assert_torch_parity, gradcheck_layer
from tests.torch_helpers import require_torch

torch = require_torch()
tF = torch.nn.functional
rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _default_layout(monkeypatch):
    monkeypatch.setattr(config, "_state", {"data_format": "channels_first", "chosen": True})


def same_pads(length, pool, stride):
    """(left, right) for Keras's "same": ⌈n/s⌉ windows, the extra padding at the end."""
    total = max((math.ceil(length / stride) - 1) * stride + pool - length, 0)
    return total // 2, total - total // 2


def channels_first(forward, channels_last):
    """``forward`` on (N, C, L), applied to (N, L, C) input when channels_last."""
    if not channels_last:
        return forward
    return lambda t: forward(t.transpose(1, 2)).transpose(1, 2)


def torch_max_pool(pool, stride, padding):
    def forward(t):
        if padding == "same":
            t = tF.pad(t, same_pads(t.shape[2], pool, stride), value=-math.inf)
        return tF.max_pool1d(t, pool, stride)
    return forward


def torch_avg_pool(pool, stride, padding):
    """Average over the window positions inside the input (padding not counted, as Keras)."""
    def forward(t):
        if padding == "valid":
            return tF.avg_pool1d(t, pool, stride)
        pads = same_pads(t.shape[2], pool, stride)
        sums = tF.avg_pool1d(tF.pad(t, pads), pool, stride)
        counts = tF.avg_pool1d(tF.pad(torch.ones_like(t), pads), pool, stride)
        return sums / counts
    return forward


CONFIGS = [(2, None, "valid"), (3, 2, "valid"), (3, 1, "valid"), (2, None, "same"),
           (3, 2, "same"), (4, 3, "same"), (3, 1, "same")]
LAYOUTS = ["channels_first", "channels_last"]


def _input(data_format, length=11):
    x = rng.permutation(2 * 3 * length).reshape(2, 3, length) / 10.0  # no ties
    return x if data_format == "channels_first" else x.transpose(0, 2, 1).copy()


@pytest.mark.parametrize("data_format", LAYOUTS)
@pytest.mark.parametrize("pool, strides, padding", CONFIGS, ids=str)
def test_max_pooling1d_matches_torch(float64, pool, strides, padding, data_format):
    layer = MaxPooling1D(pool, strides=strides, padding=padding, data_format=data_format)
    x = _input(data_format)
    forward = torch_max_pool(pool, pool if strides is None else strides, padding)
    assert_torch_parity(layer, channels_first(forward, data_format == "channels_last"), x)
    assert layer.output_shape == layer.compute_output_shape((None, *x.shape[1:]))


@pytest.mark.parametrize("data_format", LAYOUTS)
@pytest.mark.parametrize("pool, strides, padding", CONFIGS, ids=str)
def test_average_pooling1d_matches_torch(float64, pool, strides, padding, data_format):
    layer = AveragePooling1D(pool, strides=strides, padding=padding, data_format=data_format)
    x = _input(data_format)
    forward = torch_avg_pool(pool, pool if strides is None else strides, padding)
    assert_torch_parity(layer, channels_first(forward, data_format == "channels_last"), x)
    assert layer.output_shape == layer.compute_output_shape((None, *x.shape[1:]))


@pytest.mark.parametrize("data_format", LAYOUTS)
@pytest.mark.parametrize("cls", [MaxPooling1D, AveragePooling1D])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling1d_gradcheck(float64, cls, padding, data_format):
    x = cr.tensor(_input(data_format, 7), requires_grad=True)
    assert gradcheck_layer(cls(3, strides=2, padding=padding, data_format=data_format), x)


@pytest.mark.parametrize("data_format", LAYOUTS)
@pytest.mark.parametrize("cls, torch_reduce", [
    (GlobalAveragePooling1D, lambda t, dim, keep: t.mean(dim=dim, keepdim=keep)),
    (GlobalMaxPooling1D, lambda t, dim, keep: t.amax(dim=dim, keepdim=keep)),
])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling1d_matches_torch(float64, cls, torch_reduce, keepdims, data_format):
    last = data_format == "channels_last"
    layer = cls(data_format=data_format, keepdims=keepdims)
    x = _input(data_format, 5)
    assert_torch_parity(layer, lambda t: torch_reduce(t, 1 if last else 2, keepdims), x)
    assert gradcheck_layer(layer, cr.tensor(x, requires_grad=True))
    expected = (None, 3) if not keepdims else (None, 1, 3) if last else (None, 3, 1)
    assert layer.compute_output_shape((None, *x.shape[1:])) == expected
    assert layer(cr.tensor(x)).shape == (2, *expected[1:])


def test_pooling1d_defaults_shapes_and_config():
    layer = MaxPooling1D()
    assert (layer.pool_size, layer.strides, layer.padding) == ((2,), (2,), "valid")
    assert layer.data_format == "channels_first" and layer.name.startswith("max_pooling1d")
    assert layer.compute_output_shape((None, 4, 9)) == (None, 4, 4)
    assert layer.compute_output_shape((None, 4, None)) == (None, 4, None)
    assert AveragePooling1D(3, strides=1, padding="same").compute_output_shape(
        (None, 4, 9)) == (None, 4, 9)
    assert MaxPooling1D(2, data_format="channels_last").compute_output_shape(
        (None, 9, 4)) == (None, 4, 4)
    assert GlobalAveragePooling1D().keepdims is False
    for made in (AveragePooling1D(3, strides=2, padding="same", data_format="channels_last"),
                 GlobalMaxPooling1D(keepdims=True)):
        config_ = made.get_config()
        restored = layers.deserialize(layers.serialize(made))
        assert type(restored) is type(made) and restored.get_config() == config_


def test_pooling1d_arguments_and_errors():
    with pytest.raises(ValueError, match="MaxPooling1D: pool_size must be a positive int"):
        MaxPooling1D((2, 2))
    with pytest.raises(ValueError, match="AveragePooling1D: strides"):
        AveragePooling1D(2, strides=0)
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        MaxPooling1D(padding="causal")
    with pytest.raises(ValueError, match="GlobalMaxPooling1D: data_format"):
        GlobalMaxPooling1D(data_format="NLC")
    with pytest.raises(ValueError, match="GlobalAveragePooling1D: keepdims"):
        GlobalAveragePooling1D(keepdims="yes")
    with pytest.raises(ValueError, match=r"expects input of shape \(None, None, None\)"):
        MaxPooling1D()(cr.zeros(3, 4, 4, 4))
    with pytest.raises(ValueError, match="pool size"):
        MaxPooling1D(5)(cr.zeros(1, 2, 3))
