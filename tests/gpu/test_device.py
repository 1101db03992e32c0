"""Moving layers, models and batches between devices: the parts that run without a GPU.

``to("cpu")`` and the errors run as they are; the moves to "cuda" run against the
``fake_cuda`` fixture (:mod:`tests.gpu.fake_cuda`), which checks the bookkeeping (what moves,
what is refused), not CuPy. ``test_cuda.py`` repeats the real thing on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend, layers, models, optimizers
from chainrule.models import training
from tests.gpu.fake_cuda import FakeGpuArray


def small_model():
    model = models.Sequential([layers.Dense(4, activation="relu", input_shape=(3,)),
                               layers.BatchNormalization(), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    model.train_on_batch(x, y)  # the optimizer now holds state
    return model, x, y


def optimizer_arrays(optimizer):
    return [value for state in optimizer.state.values() for value in state.values()
            if backend.is_array(value)]


# -- the CPU path ---------------------------------------------------------------------------------


def test_to_cpu_keeps_weights_and_returns_self():
    model, x, _ = small_model()
    before = model.get_weights()
    ids = [id(w.data) for w in model.weights]
    assert model.to("cpu") is model
    assert model.device == "cpu"
    assert [id(w.data) for w in model.weights] == ids  # nothing copied
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_layer_without_weights_is_on_cpu():
    assert layers.ReLU().device == "cpu"
    assert layers.ReLU().to("cpu").device == "cpu"


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        layers.Dense(2, input_shape=(3,)).to("tpu")


def test_to_cuda_without_cuda_names_the_gpu_extra_and_moves_nothing(no_cuda):
    model, _, _ = small_model()
    arrays = [w.data for w in model.weights]
    for name in ("cuda", "cuda:0", "gpu"):
        with pytest.raises(RuntimeError, match=r"\[gpu\] extra"):
            model.to(name)
    assert all(w.data is a for w, a in zip(model.weights, arrays))
    assert model.device == "cpu"


def test_unbuilt_model_must_be_built_before_moving():
    model = models.Sequential([layers.Dense(4), layers.Dense(2)])
    with pytest.raises(ValueError, match="not built yet"):
        model.to("cpu")


def test_batch_helper_is_a_no_op_on_cpu(no_cuda):
    model, x, y = small_model()
    assert training.to_device_of(model, x) is x
    moved_x, moved_y = training.to_device_of(model, x, y)
    assert moved_x is x and moved_y is y


# -- moves, with the backend's bookkeeping checked against a stand-in for CuPy --------------------


def test_model_to_cuda_moves_weights_gradients_and_optimizer_state(fake_cuda):
    model, _, _ = small_model()
    before = model.get_weights()
    state_before = [np.array(a) for a in optimizer_arrays(model.optimizer)]
    assert state_before and any(w.grad is not None for w in model.weights)
    assert model.to("cuda:0") is model
    assert model.device == "cuda"
    assert all(isinstance(w.data, FakeGpuArray) for w in model.weights)
    assert all(isinstance(w.grad.data, FakeGpuArray) for w in model.weights
               if w.grad is not None)
    moved = optimizer_arrays(model.optimizer)
    assert all(isinstance(a, FakeGpuArray) for a in moved)
    for a, b in zip(state_before, moved):
        np.testing.assert_array_equal(a, b)
    model.to("cpu")
    assert model.device == "cpu"
    assert all(type(w.data) is np.ndarray for w in model.weights)
    assert all(type(a) is np.ndarray for a in optimizer_arrays(model.optimizer))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_keep_their_identity_so_an_optimizer_still_holds_them(fake_cuda):
    layer = layers.Dense(2, input_shape=(3,))
    optimizer = optimizers.SGD(layer.parameters(), learning_rate=0.1)
    layer.to("cuda")
    assert [id(p) for p in optimizer.params] == [id(p) for p in layer.parameters()]


def test_split_weights_are_reported(fake_cuda):
    layer = layers.Dense(2, input_shape=(3,))
    layer.bias.data = backend.to_device(layer.bias.data, "cuda")
    with pytest.raises(RuntimeError, match=r"'kernel' on cpu, 'bias' on cuda"):
        _ = layer.device
    assert layer.to("cuda").device == "cuda"


def test_inputs_on_another_device_name_both_devices(fake_cuda):
    model, x, _ = small_model()
    model.to("cuda")
    with pytest.raises(RuntimeError, match=r"different devices \(cpu\(8, 3\), cuda\(3, 4\)"):
        model(cr.tensor(x))


def test_batch_helper_moves_arrays_to_the_models_device(fake_cuda):
    model, x, y = small_model()
    model.to("cuda")
    moved_x, moved_y = training.to_device_of(model, x, y)
    assert isinstance(moved_x, FakeGpuArray) and isinstance(moved_y, FakeGpuArray)
    np.testing.assert_array_equal(moved_x, x)
    nested = training.to_device_of(model, [x, {"a": y}], None)
    assert isinstance(nested[0][0], FakeGpuArray)
    assert isinstance(nested[0][1]["a"], FakeGpuArray)
    assert nested[1] is None
    model.to("cpu")
    back = training.to_device_of(model, moved_x)
    assert type(back) is np.ndarray
