"""Pooling layers: gradient checks and parity with PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from tests.layers.helpers import assert_torch_parity, gradcheck_layer
from tests.torch_helpers import require_torch

torch = require_torch()
tF = torch.nn.functional
rng = np.random.default_rng(0)


def same_pads(t, pool, stride):
    """(left, right, top, bottom) for Keras's "same": ⌈n/s⌉ windows, extra padding at the end."""
    pads = []
    for axis in (3, 2):
        n = t.shape[axis]
        total = max((math.ceil(n / stride[axis - 2]) - 1) * stride[axis - 2] + pool[axis - 2] - n,
                    0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def torch_max_pool(pool, stride, padding):
    def forward(t):
        if padding == "same":
            t = tF.pad(t, same_pads(t, pool, stride), value=-math.inf)
        return tF.max_pool2d(t, pool, stride)
    return forward


def torch_avg_pool(pool, stride, padding):
    """Average over the window positions inside the input (padding not counted, as Keras)."""
    def forward(t):
        if padding == "valid":
            return tF.avg_pool2d(t, pool, stride)
        pads = same_pads(t, pool, stride)
        sums = tF.avg_pool2d(tF.pad(t, pads), pool, stride, divisor_override=1)
        counts = tF.avg_pool2d(tF.pad(torch.ones_like(t), pads), pool, stride,
                               divisor_override=1)
        return sums / counts
    return forward


CONFIGS = [(2, None, "valid"), (3, 2, "valid"), (2, None, "same"), (3, 2, "same"),
           ((2, 3), (1, 2), "valid"), ((3, 2), 1, "same")]


def _pairs(pool, strides):
    pool = (pool, pool) if isinstance(pool, int) else pool
    strides = pool if strides is None else strides
    return pool, (strides, strides) if isinstance(strides, int) else strides


@pytest.mark.parametrize("pool, strides, padding", CONFIGS, ids=str)
def test_max_pooling_matches_torch(float64, pool, strides, padding):
    layer = MaxPooling2D(pool, strides=strides, padding=padding)
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0  # no ties
    assert_torch_parity(layer, torch_max_pool(*_pairs(pool, strides), padding), x)
    assert layer.output_shape == layer.compute_output_shape((None, 3, 7, 6))


@pytest.mark.parametrize("pool, strides, padding", CONFIGS, ids=str)
def test_average_pooling_matches_torch(float64, pool, strides, padding):
    layer = AveragePooling2D(pool, strides=strides, padding=padding)
    assert_torch_parity(layer, torch_avg_pool(*_pairs(pool, strides), padding),
                        rng.standard_normal((2, 3, 7, 6)))
    assert layer.output_shape == layer.compute_output_shape((None, 3, 7, 6))


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling_gradcheck(float64, cls, padding):
    x = cr.tensor(rng.permutation(2 * 3 * 5 * 5).reshape(2, 3, 5, 5) / 7.0, requires_grad=True)
    assert gradcheck_layer(cls(2, padding=padding), x)


@pytest.mark.parametrize("cls, torch_reduce", [
    (GlobalAveragePooling2D, lambda t, keep: t.mean(dim=(2, 3), keepdim=keep)),
    (GlobalMaxPooling2D, lambda t, keep: t.amax(dim=(2, 3), keepdim=keep)),
])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_matches_torch(float64, cls, torch_reduce, keepdims):
    layer = cls(keepdims=keepdims)
    x = rng.permutation(2 * 3 * 4 * 5).reshape(2, 3, 4, 5) / 3.0
    assert_torch_parity(layer, lambda t: torch_reduce(t, keepdims), x)
    assert gradcheck_layer(layer, cr.tensor(x, requires_grad=True))
    expected = (None, 3, 1, 1) if keepdims else (None, 3)
    assert layer.compute_output_shape((None, 3, 4, 5)) == expected


def test_pooling_arguments_and_errors():
    layer = MaxPooling2D((2, 3))
    assert layer.strides == (2, 3)
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        AveragePooling2D(padding=1)
    with pytest.raises(ValueError, match=r"expects input of shape \(None, None, None, None\)"):
        MaxPooling2D()(cr.zeros(3, 4, 4))
