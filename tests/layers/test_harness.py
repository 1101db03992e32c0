"""One harness over every layer: shapes, parameter counts, saving and loading, a training step,
lazy versus eager build, and configs, each checked the same way for all layers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import chainrule as cr
from chainrule import layers as L

rng = np.random.default_rng(0)


def normal(*shape):
    return lambda: (cr.tensor(rng.standard_normal(shape)),)


@dataclass
class Case:
    name: str
    make: Callable  # make(**kwargs) -> a new layer; kwargs such as input_shape=
    inputs: Callable  # () -> the call's arguments
    output_shape: tuple
    params: int  # Keras's count: all weights, trainable or not

    def __repr__(self):
        return self.name


IMAGE = normal(2, 3, 5, 5)
CASES = [
    Case("dense", lambda **kw: L.Dense(3, **kw), normal(2, 5), (2, 3), 5 * 3 + 3),
    Case("dense_3d", lambda **kw: L.Dense(3, activation="relu", **kw), normal(2, 4, 5),
         (2, 4, 3), 18),
    Case("dense_no_bias", lambda **kw: L.Dense(3, use_bias=False, **kw), normal(2, 5), (2, 3),
         15),
    Case("maxout", lambda **kw: L.Maxout(3, pieces=2, **kw), normal(2, 5), (2, 3),
         (5 + 1) * 3 * 2),
    Case("conv2d", lambda **kw: L.Conv2D(4, 3, **kw), IMAGE, (2, 4, 3, 3), 4 * (3 * 9 + 1)),
    Case("conv2d_same_strided", lambda **kw: L.Conv2D(4, 3, strides=2, padding="same", **kw),
         IMAGE, (2, 4, 3, 3), 112),
    Case("conv2d_dilated", lambda **kw: L.Conv2D(2, 2, dilation_rate=2, padding=1, **kw), IMAGE,
         (2, 2, 5, 5), 2 * (3 * 4 + 1)),
    Case("max_pooling", lambda **kw: L.MaxPooling2D(2, **kw), IMAGE, (2, 3, 2, 2), 0),
    Case("average_pooling_same", lambda **kw: L.AveragePooling2D(2, padding="same", **kw),
         IMAGE, (2, 3, 3, 3), 0),
    Case("global_average_pooling", lambda **kw: L.GlobalAveragePooling2D(**kw), IMAGE, (2, 3),
         0),
    Case("global_max_pooling", lambda **kw: L.GlobalMaxPooling2D(**kw), IMAGE, (2, 3), 0),
    Case("flatten", lambda **kw: L.Flatten(**kw), IMAGE, (2, 75), 0),
    Case("reshape", lambda **kw: L.Reshape((5, -1), **kw), IMAGE, (2, 5, 15), 0),
    Case("activation", lambda **kw: L.Activation("tanh", **kw), normal(2, 5), (2, 5), 0),
    Case("relu", lambda **kw: L.ReLU(**kw), normal(2, 5), (2, 5), 0),
    Case("leaky_relu", lambda **kw: L.LeakyReLU(0.2, **kw), normal(2, 5), (2, 5), 0),
    Case("prelu", lambda **kw: L.PReLU(**kw), IMAGE, (2, 3, 5, 5), 3),
    Case("elu", lambda **kw: L.ELU(**kw), normal(2, 5), (2, 5), 0),
    Case("softmax", lambda **kw: L.Softmax(**kw), normal(2, 5), (2, 5), 0),
    Case("dropout", lambda **kw: L.Dropout(0.5, **kw), normal(2, 5), (2, 5), 0),
    Case("batch_norm", lambda **kw: L.BatchNormalization(**kw), normal(4, 3), (4, 3), 4 * 3),
    Case("batch_norm_nchw", lambda **kw: L.BatchNormalization(**kw), IMAGE, (2, 3, 5, 5), 12),
    Case("shift_element", lambda **kw: L.Shift("element", **kw), IMAGE, (2, 3, 5, 5), 75),
    Case("shift_channel", lambda **kw: L.Shift("channel", **kw), IMAGE, (2, 3, 5, 5), 3),
    Case("shift_layer", lambda **kw: L.Shift("layer", **kw), IMAGE, (2, 3, 5, 5), 1),
    Case("scale_element", lambda **kw: L.Scale("element", **kw), IMAGE, (2, 3, 5, 5), 75),
    Case("scale_channel", lambda **kw: L.Scale("channel", **kw), normal(4, 3), (4, 3), 3),
    Case("scale_layer", lambda **kw: L.Scale("layer", **kw), IMAGE, (2, 3, 5, 5), 1),
    Case("embedding", lambda **kw: L.Embedding(10, 4, **kw),
         lambda: (cr.tensor(rng.integers(0, 10, (2, 5))),), (2, 5, 4), 40),
    Case("add", lambda **kw: L.Add(**kw),
         lambda: ([cr.tensor(rng.standard_normal((2, 5))) for _ in range(3)],), (2, 5), 0),
    Case("residual", lambda **kw: L.Residual(L.Dense(5), **kw), normal(2, 5), (2, 5), 30),
]
WITH_WEIGHTS = [case for case in CASES if case.params]
SINGLE_INPUT = [case for case in CASES if case.name != "add"]


def randomize(layer):
    """Give every weight values unlike its initial ones (positive, for moving variances)."""
    for weight in layer.weights:
        weight.data[...] = rng.uniform(0.5, 1.5, weight.shape)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_output_shape(case):
    layer = case.make()
    y = layer(*case.inputs())
    assert y.shape == case.output_shape and y.dtype == np.float32
    assert layer.output_shape == (None, *case.output_shape[1:])
    assert layer.compute_output_shape(layer.input_shape) == layer.output_shape


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_parameter_count(case):
    layer = case.make()
    layer(*case.inputs())
    assert layer.count_params() == case.params == sum(w.size for w in layer.weights)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_state_dict_round_trip(case):
    inputs = case.inputs()
    source, target = case.make(), case.make()
    source(*inputs)
    target(*inputs)
    randomize(source)
    target.load_state_dict(source.state_dict())
    source.eval()
    target.eval()
    np.testing.assert_array_equal(target(*inputs).numpy(), source(*inputs).numpy())


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_get_and_set_weights_round_trip(case):
    inputs = case.inputs()
    source, target = case.make(), case.make()
    source(*inputs)
    target(*inputs)
    randomize(source)
    target.set_weights(source.get_weights())
    for ours, theirs in zip(target.weights, source.weights):
        np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(target.eval()(*inputs).numpy(),
                                  source.eval()(*inputs).numpy())


@pytest.mark.parametrize("case", WITH_WEIGHTS, ids=repr)
def test_one_sgd_step_lowers_a_simple_loss(float64, case):
    layer = case.make()
    inputs = case.inputs()
    layer(*inputs)
    randomize(layer)
    target = cr.tensor(rng.standard_normal(case.output_shape))

    def loss():
        return ((layer(*inputs) - target) ** 2).mean()

    before = loss()
    layer.zero_grad()
    before.backward()
    assert all(p.grad is not None for p in layer.parameters())
    for p in layer.parameters():
        p.data -= 1e-2 * p.grad.data
    assert loss().item() < before.item()


@pytest.mark.parametrize("case", SINGLE_INPUT, ids=repr)
def test_lazy_and_eager_build_agree(case):
    inputs = case.inputs()
    lazy = case.make()
    lazy(*inputs)
    eager = case.make(input_shape=inputs[0].shape[1:])
    assert eager.built and eager.input_shape == lazy.input_shape
    assert [w.shape for w in eager.weights] == [w.shape for w in lazy.weights]
    eager.set_weights(lazy.get_weights())
    np.testing.assert_array_equal(eager.eval()(*inputs).numpy(), lazy.eval()(*inputs).numpy())


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_config_round_trips_through_json(case):
    layer = case.make()
    config = json.loads(json.dumps(L.serialize(layer)))
    clone = L.deserialize(config)
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    assert clone(*case.inputs()).shape == case.output_shape
    assert clone.count_params() == case.params


@pytest.mark.parametrize("case", WITH_WEIGHTS, ids=repr)
def test_frozen_layer_has_no_parameters(case):
    layer = case.make()
    layer(*case.inputs())
    layer.trainable = False
    assert layer.parameters() == [] and len(layer.weights) == len(layer.non_trainable_weights)
    assert layer.count_params() == case.params
