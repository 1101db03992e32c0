"""CUDA against NumPy: the op table, the layer harness, optimizer trajectories and a model.

Every test runs the same computation twice, on the CPU (NumPy) and on the GPU (CuPy), from the
same inputs and weights, and compares the results on the host:

* float64: forward values and every gradient to ``rtol = atol = 1e-10``;
* float32 (ops only): to ``rtol = 1e-5``, ``atol = 1e-6`` (GPU math libraries round
  differently from NumPy's; a 32-bit sum of a few dozen terms is off by a few ulps).

The whole module is skipped, with the reason, where CuPy is missing or sees no GPU. It is run
by ``tests/gpu/run_on_device.sh`` on a machine with an NVIDIA GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend

if not cr.cuda_available():
    pytest.skip("no CUDA device: CuPy is not installed (pip install chainrule[gpu]) or sees no "
                "GPU; run tests/gpu/run_on_device.sh on a machine with an NVIDIA GPU",
                allow_module_level=True)

from chainrule import functional, layers, models, optimizers  # noqa: E402
from chainrule.testing.op_table import OPS  # noqa: E402
from tests.layers.test_harness import CASES  # noqa: E402

#: The device compared with the CPU (a dry run of this file's logic may set it to "cpu").
GPU = "cuda"
F64 = {"rtol": 1e-10, "atol": 1e-10}
F32 = {"rtol": 1e-5, "atol": 1e-6}


def close(ours, expected, tolerance, what):
    if ours is None or expected is None:
        assert ours is None and expected is None, f"{what}: a gradient is missing on one device"
        return
    np.testing.assert_allclose(ours, expected, err_msg=what, **tolerance)


def on(array, device, requires_grad=False):
    """A leaf Tensor holding ``array`` on ``device``."""
    data = backend.to_device(np.array(array), device)
    return cr.Tensor(data, requires_grad=requires_grad and data.dtype.kind == "f")


def host(value):
    """A NumPy copy of a Tensor's data or of an array, from either device (None stays)."""
    if value is None:
        return None
    return np.array(backend.to_numpy(value.data if isinstance(value, cr.Tensor) else value))


# -- the op table ---------------------------------------------------------------------------------


def run_op(op, arrays, upstream, device):
    """Forward and the gradient of each input under ``Σ upstream · y``, as NumPy arrays."""
    inputs = [on(a, device, requires_grad=True) for a in arrays]
    y = op.ours(*inputs)
    assert y.device == device, f"{op.name}: the output is on {y.device}, not {device}"
    (y * on(upstream, device)).sum().backward()
    return [host(y)] + [host(t.grad) for t in inputs]


OP_SAMPLES = [(op, sample) for op in OPS for sample in op.samples]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("op,sample", OP_SAMPLES,
                         ids=[f"{op.name}-{sample!r}" for op, sample in OP_SAMPLES])
def test_op_matches_numpy(op, sample, dtype):
    rng = np.random.default_rng(0)
    arrays = op.make_inputs(sample, rng, dtype)
    shape = np.shape(op.numpy(*arrays))
    upstream = rng.standard_normal(shape).astype(dtype)
    expected = run_op(op, arrays, upstream, "cpu")
    ours = run_op(op, arrays, upstream, GPU)
    tolerance = F64 if dtype == np.float64 else F32
    for name, a, b in zip(["y"] + [f"grad {i}" for i in range(len(arrays))], ours, expected):
        assert a.dtype == b.dtype, f"{op.name} {name}: {a.dtype} on the GPU, {b.dtype} on CPU"
        close(a, b, tolerance, f"{op.name} {sample!r} {name}")


# -- the layer harness ----------------------------------------------------------------------------

RECURRENT = [
    ("lstm", lambda: layers.LSTM(4, return_sequences=True)),
    ("lstm_last", lambda: layers.LSTM(3)),
    ("gru", lambda: layers.GRU(4, return_sequences=True)),
    ("simple_rnn", lambda: layers.SimpleRNN(4)),
]


def _leaves(inputs, device):
    """The harness's inputs (Tensors, or lists of them) copied to ``device``, as leaves."""
    return tuple([on(t.data, device, True) for t in x] if isinstance(x, list)
                 else on(x.data, device, True) for x in inputs)


def _flat(inputs):
    return [t for x in inputs for t in (x if isinstance(x, list) else [x])]


def run_layer(make, inputs, weights, upstream, device):
    """Output, input gradients, weight gradients and the weights after one call (batch
    norm's moving statistics change), all as NumPy arrays."""
    layer = make()
    layer(*_leaves(inputs, "cpu"))  # build on the CPU, as a user's model is built
    layer.set_weights(weights)
    layer.to(device)
    assert layer.device == device
    leaves = _leaves(inputs, device)
    cr.manual_seed(0)  # dropout: the same mask on both devices
    y = layer(*leaves)
    assert y.device == device, f"{layer.name}: the output is on {y.device}"
    (y * on(upstream, device)).sum().backward()
    return ([host(y)], [host(t.grad) for t in _flat(leaves) if t.requires_grad],
            [host(w.grad) for w in layer.parameters()], [host(w) for w in layer.weights])


def compare_layer(name, make, inputs):
    rng = np.random.default_rng(1)
    reference = make()
    reference(*_leaves(inputs, "cpu"))
    weights = [rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w in reference.weights]
    cr.manual_seed(0)
    shape = reference(*_leaves(inputs, "cpu")).shape
    upstream = rng.standard_normal(shape)
    expected = run_layer(make, inputs, weights, upstream, "cpu")
    ours = run_layer(make, inputs, weights, upstream, GPU)
    for part, a_list, b_list in zip(("output", "input grad", "weight grad", "weight"),
                                    ours, expected):
        assert len(a_list) == len(b_list), f"{name}: {part} count differs"
        for i, (a, b) in enumerate(zip(a_list, b_list)):
            close(a, b, F64, f"{name} {part} {i}")


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_layer_matches_numpy(float64, case):
    compare_layer(case.name, case.make, case.inputs())


@pytest.mark.parametrize("name,make", RECURRENT, ids=[name for name, _ in RECURRENT])
def test_recurrent_layer_matches_numpy(float64, name, make):
    x = np.random.default_rng(2).standard_normal((3, 5, 2))
    compare_layer(name, make, (cr.tensor(x),))


def test_conv2d_algorithms_match_numpy(float64):
    """3 × 3 stride-1 convolutions (Winograd and direct kernels on the CPU) and a 5 × 5 one."""
    rng = np.random.default_rng(3)
    for channels, size in ((1, 3), (3, 3), (16, 3), (3, 5)):
        x = rng.standard_normal((2, channels, 9, 9))
        compare_layer(f"conv{size}x{size}-c{channels}",
                      lambda size=size: layers.Conv2D(8, size, padding="same"), (cr.tensor(x),))


# -- optimizer trajectories -----------------------------------------------------------------------

OPTIMIZERS = [
    ("sgd", lambda p: optimizers.SGD(p, learning_rate=0.1)),
    ("sgd_nesterov", lambda p: optimizers.SGD(p, learning_rate=0.05, momentum=0.9,
                                              nesterov=True, weight_decay=1e-3)),
    ("adam", lambda p: optimizers.Adam(p, learning_rate=0.01)),
    ("adam_amsgrad", lambda p: optimizers.Adam(p, learning_rate=0.01, amsgrad=True)),
    ("adamw", lambda p: optimizers.AdamW(p, learning_rate=0.01)),
    ("rmsprop_centered", lambda p: optimizers.RMSprop(p, learning_rate=0.01, momentum=0.5,
                                                      centered=True)),
    ("adagrad", lambda p: optimizers.Adagrad(p, learning_rate=0.1)),
    ("adadelta", lambda p: optimizers.Adadelta(p, learning_rate=1.0)),
    ("sgd_clipnorm", lambda p: optimizers.SGD(p, learning_rate=0.1, clipnorm=0.5)),
]
SHAPES = {"W1": (5, 8), "b1": (8,), "W2": (8, 3), "b2": (3,)}


def trajectory(make, device, steps=20):
    """The parameters after each step of a small tanh MLP's regression, as NumPy arrays."""
    rng = np.random.default_rng(0)
    params = [on(rng.normal(0.0, 0.5, shape), device, True) for shape in SHAPES.values()]
    x, y = on(rng.normal(size=(16, 5)), device), on(rng.normal(size=(16, 3)), device)
    optimizer = make(params)
    path = []
    for _ in range(steps):
        w1, b1, w2, b2 = params
        loss = ((((x @ w1 + b1).tanh() @ w2 + b2) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        path.append([host(p) for p in params])
    assert all(p.device == device for p in params)
    return path


@pytest.mark.parametrize("name,make", OPTIMIZERS, ids=[name for name, _ in OPTIMIZERS])
def test_optimizer_trajectory_matches_numpy(name, make):
    for step, (ours, expected) in enumerate(zip(trajectory(make, GPU),
                                                trajectory(make, "cpu"))):
        for key, a, b in zip(SHAPES, ours, expected):
            close(a, b, F64, f"{name} step {step + 1} {key}")


# -- a model --------------------------------------------------------------------------------------


def small_cnn():
    return models.Sequential([
        layers.Conv2D(4, 3, activation="relu", input_shape=(1, 8, 8)),
        layers.MaxPooling2D(2), layers.BatchNormalization(), layers.Flatten(),
        layers.Dropout(0.25), layers.Dense(3),
    ])


def test_model_to_cuda_trains_like_the_cpu_in_a_hand_written_loop(float64):
    rng = np.random.default_rng(4)
    x, labels = rng.standard_normal((6, 1, 8, 8)), rng.integers(0, 3, 6)
    weights = small_cnn().get_weights()
    paths = {}
    for device in ("cpu", GPU):
        model = small_cnn()
        model.set_weights(weights)
        optimizer = optimizers.Adam(model.parameters(), learning_rate=0.01)
        model.to(device)
        cr.manual_seed(0)
        for _ in range(3):
            loss = functional.softmax_cross_entropy(model(on(x, device)),
                                                 on(labels, device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert model.device == device
        paths[device] = [host(w) for w in model.to("cpu").weights]
    for i, (a, b) in enumerate(zip(paths[GPU], paths["cpu"])):
        close(a, b, F64, f"weight {i}")


def test_fit_evaluate_predict_on_cuda_match_the_cpu(float64):
    """Needs fit/evaluate/predict to move each batch with training.to_device_of."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 1, 8, 8)), rng.integers(0, 3, 40)
    weights = small_cnn().get_weights()
    results = {}
    for device in ("cpu", GPU):
        model = small_cnn()
        model.set_weights(weights)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.to(device)
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, seed=0, verbose=0)
        assert model.device == device
        scores = model.evaluate(x, y, verbose=0)
        predictions = model.predict(x)
        assert isinstance(predictions, np.ndarray)
        results[device] = history.history["loss"], scores, predictions
    close(results[GPU][0], results["cpu"][0], F64, "fit losses")
    close(results[GPU][1], results["cpu"][1], F64, "evaluate")
    close(results[GPU][2], results["cpu"][2], F64, "predict")
