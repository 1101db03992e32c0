"""Recurrent layers and their time loops: gradient checks through time, the fused loops against
the loops built from primitive ops, and parity with PyTorch's nn.RNN, nn.LSTM and nn.GRU."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers.base import deserialize, serialize
from chainrule.layers.core import Dense
from chainrule.layers.embedding import Embedding
from chainrule.layers.recurrent import GRU, LSTM, Bidirectional, SimpleRNN, TimeDistributed
from chainrule.ops import nn_recurrent as R
from tests.torch_helpers import require_torch

torch = require_torch()

BATCH, TIME, FEATURES, UNITS = 2, 3, 2, 3


def _randn(rng, *shape, scale=0.5, requires_grad=True):
    return cr.tensor(rng.standard_normal(shape) * scale, requires_grad=requires_grad)


# -- the time loops: fused against unrolled ------------------------------------------------------

# name -> (fused loop, unrolled loop, gate blocks k, number of states, bias shape for units u)
LOOPS = {
    "simple_rnn": (R.simple_rnn, R.simple_rnn_unrolled, 1, 1, lambda u: (u,)),
    "simple_rnn_relu": (lambda *a: R.simple_rnn(*a, activation="relu"),
                        lambda *a: R.simple_rnn_unrolled(*a, activation=cr.relu), 1, 1,
                        lambda u: (u,)),
    "simple_rnn_sigmoid": (lambda *a: R.simple_rnn(*a, activation="sigmoid"),
                           lambda *a: R.simple_rnn_unrolled(*a, activation=cr.sigmoid), 1, 1,
                           lambda u: (u,)),
    "simple_rnn_linear": (lambda *a: R.simple_rnn(*a, activation="linear"),
                          lambda *a: R.simple_rnn_unrolled(*a, activation=lambda t: t), 1, 1,
                          lambda u: (u,)),
    "lstm": (R.lstm, R.lstm_unrolled, 4, 2, lambda u: (4 * u,)),
    "gru": (R.gru, R.gru_unrolled, 3, 1, lambda u: (2, 3 * u)),
    "gru_reset_before": (lambda *a: R.gru(*a, reset_after=False),
                         lambda *a: R.gru_unrolled(*a, reset_after=False), 3, 1,
                         lambda u: (3 * u,)),
}


def _loop_inputs(rng, gates, states, bias_shape, batch=BATCH, steps=TIME, features=FEATURES,
                 units=UNITS):
    return [_randn(rng, batch, steps, features)] + [
        _randn(rng, batch, units) for _ in range(states)
    ] + [_randn(rng, features, gates * units), _randn(rng, units, gates * units),
         _randn(rng, *bias_shape(units))]


@pytest.mark.parametrize("name", list(LOOPS))
@pytest.mark.parametrize("blocked", [False, True], ids=["one-product", "column-blocks"])
def test_fused_loop_matches_unrolled_loop(name, blocked, float64, rng, monkeypatch):
    if blocked:  # small shapes too run the recurrent products as batches of column blocks
        monkeypatch.setattr(R, "SMALL_PRODUCT", 60)
    fused, unrolled, gates, states, bias_shape = LOOPS[name]
    inputs = _loop_inputs(rng, gates, states, bias_shape, batch=3, steps=5)
    ours, reference = fused(*inputs), unrolled(*inputs)
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)
    upstream = [cr.tensor(rng.standard_normal(y.shape)) for y in ours]
    fused_grads = cr.grad(list(ours), inputs, grad_outputs=upstream)
    unrolled_grads = cr.grad(list(reference), inputs, grad_outputs=upstream)
    for a, b in zip(fused_grads, unrolled_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(LOOPS))
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unrolled"])
def test_loop_gradcheck(name, fused, float64, rng):
    loop = LOOPS[name][0 if fused else 1]
    _, _, gates, states, bias_shape = LOOPS[name]
    assert cr.gradcheck(loop, _loop_inputs(rng, gates, states, bias_shape))


@pytest.mark.parametrize("batch, k, n, width", [
    (32, 256, 1024, 64),   # the char-LSTM's forward product: 16 blocks of 64 columns
    (32, 1024, 256, 16),   # ... and its backward product
    (2, 3, 12, 12),        # small products stay one block
    (4096, 512, 2048, 2048),  # so do products too large for blocks to pay
])
def test_step_product_blocks_and_values(batch, k, n, width, rng):
    weight = rng.standard_normal((k, n)).astype(np.float32)
    product = R.StepProduct(weight, batch)
    assert product.blocks.shape == (n // width, k, width)
    if batch * k * n <= 1e8:
        a = rng.standard_normal((batch, k)).astype(np.float32)
        out = product(a, np.empty((batch, n), np.float32))
        np.testing.assert_allclose(out, a @ weight, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [2, 3])
def test_lstm_rows_on_threads_agree_with_one_block(threads, float64, rng, monkeypatch):
    inputs = _loop_inputs(rng, 4, 2, lambda u: (4 * u,), batch=7, steps=6)
    upstream = None
    results = []
    for count in (1, threads):  # one block of rows, then one block per thread (2 or 3 rows)
        monkeypatch.setattr(R, "LSTM_MIN_ROWS", 2)
        monkeypatch.setattr(R.kernels, "workers", lambda count=count: count)
        outputs = R.lstm(*inputs)
        upstream = upstream or [cr.tensor(rng.standard_normal(y.shape)) for y in outputs]
        results.append([y.numpy() for y in outputs]
                       + [g.numpy() for g in cr.grad(list(outputs), inputs, upstream)])
    for one_block, blocks in zip(*results):
        np.testing.assert_allclose(blocks, one_block, rtol=1e-12, atol=1e-12)


def test_lstm_row_blocks_follow_the_kernels_threads(monkeypatch):
    x = np.zeros((32, 5, 3), np.float32)
    monkeypatch.setattr(R.kernels, "workers", lambda: 2)
    assert [block.rows for block in R._row_blocks(x)] == [slice(0, 16), slice(16, 32)]
    assert len(R._row_blocks(x[:15])) == 1  # blocks of fewer than LSTM_MIN_ROWS rows: one
    monkeypatch.setattr(R.kernels, "workers", lambda: 1)
    assert len(R._row_blocks(x)) == 1


def test_lstm_backward_twice_with_retain_graph(float64, rng):
    inputs = _loop_inputs(rng, 4, 2, lambda u: (4 * u,))
    sequence, _, _ = R.lstm(*inputs)
    loss = (sequence * sequence).sum()
    first = cr.grad(loss, inputs, retain_graph=True)
    second = cr.grad(loss, inputs)  # the first backward turned the gates into ∂L/∂z
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fused_loop_float32_stays_float32(rng):
    inputs = [cr.tensor(t.data.astype(np.float32), requires_grad=True)
              for t in _loop_inputs(rng, 4, 2, lambda u: (4 * u,))]
    outputs = R.lstm(*inputs)
    assert all(y.dtype == np.float32 for y in outputs)
    outputs[0].sum().backward()
    assert all(t.grad.dtype == np.float32 for t in inputs)


def test_fused_loop_is_first_order_only(float64, rng):
    x, h0, c0, kernel, recurrent_kernel, bias = _loop_inputs(rng, 4, 2, lambda u: (4 * u,))
    sequence, _, _ = R.lstm(x, h0, c0, kernel, recurrent_kernel, bias)
    with pytest.raises(RuntimeError, match="LSTMSequence.*first-order only"):
        cr.grad(sequence.sum(), [kernel], create_graph=True)


def test_unrolled_loop_has_second_derivatives(float64, rng):
    x, h0, c0, kernel, recurrent_kernel, bias = _loop_inputs(rng, 4, 2, lambda u: (4 * u,))

    def input_gradient(x, kernel):
        sequence, _, _ = R.lstm_unrolled(x, h0, c0, kernel, recurrent_kernel, bias)
        return cr.grad((sequence * sequence).sum(), [x], create_graph=True)[0]

    assert cr.gradcheck(input_gradient, [x, kernel])


@pytest.mark.parametrize("loop, states, gates", [(R.simple_rnn, 1, 1), (R.lstm, 2, 4),
                                                 (R.gru, 1, 3)])
def test_loop_shape_errors_name_the_loop_and_shapes(loop, states, gates, rng):
    x, *rest = _loop_inputs(rng, gates, states, lambda u: (u,))
    name = loop.__name__
    with pytest.raises(ValueError, match=rf"{name}: initial state must have shape \(2, 3\)"):
        loop(x, *[cr.zeros(5, UNITS)] * states, *rest[states:states + 2])
    with pytest.raises(ValueError, match=rf"{name}: kernel must have shape"):
        loop(x, *rest[:states], cr.zeros(7, gates * UNITS), rest[states + 1])
    with pytest.raises(ValueError, match=rf"{name}: x must be \(batch, time, features\)"):
        loop(x[0], *rest[:states + 2])


def test_unstack_is_one_node_and_its_gradient_stacks(float64, rng):
    x = _randn(rng, 2, 4, 3)
    slices = R.unstack(x, axis=1)
    assert len(slices) == 4 and slices[1].shape == (2, 3)
    np.testing.assert_array_equal(slices[2].numpy(), x.numpy()[:, 2])
    assert cr.gradcheck(lambda t: R.unstack(t, axis=1)[1:3], [x])


# -- layers: gradient checks through time --------------------------------------------------------

LAYERS = {
    "SimpleRNN": lambda **kw: SimpleRNN(UNITS, **kw),
    "SimpleRNN-relu": lambda **kw: SimpleRNN(UNITS, activation="relu", **kw),
    "LSTM": lambda **kw: LSTM(UNITS, **kw),
    "LSTM-relu": lambda **kw: LSTM(UNITS, activation="relu", **kw),
    "GRU": lambda **kw: GRU(UNITS, **kw),
    "GRU-reset-before": lambda **kw: GRU(UNITS, reset_after=False, **kw),
    "Bidirectional-LSTM": lambda **kw: Bidirectional(LSTM(UNITS, **kw)),
    "Bidirectional-GRU-sum": lambda **kw: Bidirectional(GRU(UNITS, **kw), merge_mode="sum"),
}


def _check_layer_gradients(layer, x):
    layer(x)
    return cr.gradcheck(lambda x, *weights: layer(x), [x, *layer.parameters()])


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_layer_gradcheck_through_time(name, return_sequences, float64, rng):
    layer = LAYERS[name](return_sequences=return_sequences)
    assert _check_layer_gradients(layer, _randn(rng, BATCH, TIME, FEATURES))


@pytest.mark.parametrize("layer_type", [SimpleRNN, LSTM, GRU])
def test_layer_gradcheck_go_backwards_initial_state_unrolled(layer_type, float64, rng):
    count = 2 if layer_type is LSTM else 1
    layer = layer_type(UNITS, go_backwards=True, return_sequences=True, unroll=True)
    x = _randn(rng, BATCH, TIME, FEATURES)
    states = [_randn(rng, BATCH, UNITS) for _ in range(count)]
    layer(x)
    assert cr.gradcheck(lambda x, *rest: layer(x, initial_state=list(rest[:count])),
                        [x, *states, *layer.parameters()])


def test_time_distributed_gradcheck_and_shape(float64, rng):
    layer = TimeDistributed(Dense(4, activation="tanh"))
    x = _randn(rng, BATCH, TIME, FEATURES)
    assert layer(x).shape == (BATCH, TIME, 4)
    assert layer.compute_output_shape((None, TIME, FEATURES)) == (None, TIME, 4)
    np.testing.assert_allclose(layer(x)[:, 1].numpy(), layer.layer(x[:, 1]).numpy())
    assert _check_layer_gradients(layer, x)


# -- layers: fused and unrolled give the same results ------------------------------------------


@pytest.mark.parametrize("layer_type", [SimpleRNN, LSTM, GRU])
@pytest.mark.parametrize("options", [{}, {"go_backwards": True}, {"return_sequences": True}],
                         ids=["last", "backwards", "sequences"])
def test_fused_and_unrolled_layers_agree(layer_type, options, float64, rng):
    fused = layer_type(4, return_state=True, **options)
    unrolled = layer_type.from_config({**fused.get_config(), "name": None, "unroll": True})
    x = _randn(rng, 3, 6, 5)
    fused(x)
    unrolled(x)
    unrolled.set_weights(fused.get_weights())
    ours, reference = fused(x), unrolled(x)
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


# -- parity with PyTorch -------------------------------------------------------------------------


def _swap_gru_blocks(array):
    """PyTorch's GRU blocks r, z, n ↔ Keras's z, r, h (the map is its own inverse)."""
    first, second, third = np.split(array, 3, axis=0)
    return np.concatenate([second, first, third], axis=0)


TORCH_MODULES = {SimpleRNN: "RNN", LSTM: "LSTM", GRU: "GRU"}


def _keras_weights(layer_type, module, suffix=""):
    """(kernel, recurrent_kernel, bias) of our layer from a PyTorch module's weights."""
    w_ih, w_hh, b_ih, b_hh = (getattr(module, f"{name}_l0{suffix}").detach().numpy()
                              for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    if layer_type is GRU:
        return (_swap_gru_blocks(w_ih).T, _swap_gru_blocks(w_hh).T,
                np.stack([_swap_gru_blocks(b_ih), _swap_gru_blocks(b_hh)]))
    return w_ih.T, w_hh.T, b_ih + b_hh


def _assert_weight_gradients(layer_type, layer, module, suffix=""):
    grads = {name: getattr(module, f"{name}_l0{suffix}").grad.numpy()
             for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    if layer_type is GRU:
        expected = (_swap_gru_blocks(grads["weight_ih"]).T,
                    _swap_gru_blocks(grads["weight_hh"]).T,
                    np.stack([_swap_gru_blocks(grads["bias_ih"]),
                              _swap_gru_blocks(grads["bias_hh"])]))
    else:
        # PyTorch's two bias gradients are equal in exact arithmetic; its threads may add them
        # in another order (1.2e-12 apart once, on a loaded machine)
        np.testing.assert_allclose(grads["bias_ih"], grads["bias_hh"], rtol=1e-10, atol=1e-15)
        expected = grads["weight_ih"].T, grads["weight_hh"].T, grads["bias_ih"]
    for weight, grad in zip((layer.kernel, layer.recurrent_kernel, layer.bias), expected):
        np.testing.assert_allclose(weight.grad.numpy(), grad, rtol=1e-9, atol=1e-12)


CASES = ["sequences", "last", "go_backwards", "initial_state", "bidirectional"]


@pytest.mark.parametrize("layer_type", [SimpleRNN, LSTM, GRU])
@pytest.mark.parametrize("case", CASES)
def test_parity_with_pytorch(layer_type, case, float64, rng):
    batch, steps, features, units = 3, 5, 4, 6
    bidirectional = case == "bidirectional"
    module = getattr(torch.nn, TORCH_MODULES[layer_type])(
        features, units, batch_first=True, bidirectional=bidirectional).double()
    layer = layer_type(units, return_sequences=case != "last", return_state=True,
                       go_backwards=case == "go_backwards")
    ours = Bidirectional(layer) if bidirectional else layer
    x_np = rng.standard_normal((batch, steps, features))
    x = cr.tensor(x_np, requires_grad=True)
    ours(x)
    layer.set_weights(_keras_weights(layer_type, module))
    if bidirectional:
        ours.backward_layer.set_weights(_keras_weights(layer_type, module, "_reverse"))

    count = 2 if layer_type is LSTM else 1
    directions = 2 if bidirectional else 1
    states_np = [rng.standard_normal((directions, batch, units)) for _ in range(count)]
    states = [cr.tensor(s[d], requires_grad=True) for d in range(directions) for s in states_np]
    torch_states = [torch.tensor(s, requires_grad=True) for s in states_np]
    given = case == "initial_state"

    tx = torch.tensor(x_np[:, ::-1].copy() if case == "go_backwards" else x_np,
                      requires_grad=True)
    torch_hx = (tuple(torch_states) if count == 2 else torch_states[0]) if given else None
    t_sequence, t_final = module(tx, torch_hx) if given else module(tx)
    t_final = list(t_final) if count == 2 else [t_final]
    # Ours: [output, h_T (, c_T)] per direction; PyTorch: (batch, time, directions·units) and
    # final states (directions, batch, units).
    outputs = ours(x, initial_state=states if given else None)
    t_output = t_sequence if case != "last" else t_sequence[:, -1]
    expected = [t_output] + [s[d] for d in range(directions) for s in t_final]
    assert len(outputs) == len(expected)
    for a, b in zip(outputs, expected):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-12)

    upstream = [rng.standard_normal(a.shape) for a in outputs]
    sum(((a * cr.tensor(u)).sum() for a, u in zip(outputs, upstream)), cr.tensor(0.0)).backward()
    sum((b * torch.tensor(u)).sum() for b, u in zip(expected, upstream)).backward()
    t_grad_x = tx.grad.numpy()
    np.testing.assert_allclose(x.grad.numpy(),
                               t_grad_x[:, ::-1] if case == "go_backwards" else t_grad_x,
                               rtol=1e-9, atol=1e-12)
    _assert_weight_gradients(layer_type, layer, module)
    if bidirectional:
        _assert_weight_gradients(layer_type, ours.backward_layer, module, "_reverse")
    if given:
        for k, t_state in enumerate(torch_states):
            for d in range(directions):
                np.testing.assert_allclose(states[d * count + k].grad.numpy(),
                                           t_state.grad.numpy()[d], rtol=1e-9, atol=1e-12)


def test_lstm_float32_parity_with_pytorch_at_training_size(rng):
    batch, steps, features, units = 8, 40, 16, 32
    module = torch.nn.LSTM(features, units, batch_first=True)
    layer = LSTM(units, return_sequences=True)
    x_np = rng.standard_normal((batch, steps, features)).astype(np.float32)
    x = cr.tensor(x_np, requires_grad=True)
    layer(x)
    layer.set_weights(_keras_weights(LSTM, module))
    tx = torch.tensor(x_np, requires_grad=True)
    y, (ty, _) = layer(x), module(tx)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    upstream = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(cr.tensor(upstream))
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.recurrent_kernel.grad.numpy(),
                               module.weight_hh_l0.grad.numpy().T, rtol=1e-4, atol=1e-5)


def test_embedding_feeds_lstm_and_gets_gradients(rng):
    embedding, lstm = Embedding(10, 4), LSTM(5)
    ids = rng.integers(0, 10, size=(3, 7))
    lstm(embedding(ids)).sum().backward()
    used = np.zeros(10, bool)
    used[np.unique(ids)] = True
    grad = embedding.embeddings.grad.numpy()
    assert np.abs(grad[used]).sum(axis=1).min() > 0 and not grad[~used].any()


# -- long sequences --------------------------------------------------------------------------


@pytest.mark.parametrize("unroll", [True, False], ids=["unrolled", "fused"])
def test_two_thousand_step_chain_backpropagates(unroll, rng):
    layer = SimpleRNN(4, unroll=unroll)
    x = cr.tensor(rng.standard_normal((1, 2000, 2)).astype(np.float32), requires_grad=True)
    layer(x).sum().backward()  # thousands of graph nodes when unrolled: no RecursionError
    assert x.grad.shape == x.shape and np.isfinite(x.grad.numpy()).all()
    assert np.abs(x.grad.numpy()[0, -1]).sum() > 0


def test_lstm_cell_state_carries_gradient_further_than_simple_rnn(rng):
    """The vanishing gradient: ∂h_T/∂x_0 after 100 steps, SimpleRNN against LSTM (forget bias
    1 keeps the cell's memory)."""
    x = cr.tensor(rng.standard_normal((1, 100, 3)).astype(np.float32), requires_grad=True)
    reach = {}
    for layer_type in (SimpleRNN, LSTM):
        x.grad = None
        cr.manual_seed(0)
        layer_type(16)(x).sum().backward()
        grad = np.abs(x.grad.numpy()[0])
        reach[layer_type] = grad[0].sum() / grad[-1].sum()
    assert reach[LSTM] > 100 * reach[SimpleRNN]


# -- states --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_type", [SimpleRNN, LSTM, GRU])
def test_stateful_layer_carries_detached_state_between_calls(layer_type, rng):
    whole = layer_type(4, return_sequences=True)
    stateful = layer_type(4, return_sequences=True, stateful=True)
    x = cr.tensor(rng.standard_normal((2, 8, 3)).astype(np.float32), requires_grad=True)
    expected = whole(x)
    stateful(x[:, :1])
    stateful.set_weights(whole.get_weights())
    stateful.reset_states()
    first, second = stateful(x[:, :5]), stateful(x[:, 5:])
    np.testing.assert_allclose(cr.concat([first, second], axis=1).numpy(), expected.numpy(),
                               rtol=1e-5, atol=1e-6)
    second.sum().backward()  # truncated BPTT: no gradient reaches the first call's inputs
    assert not x.grad.numpy()[:, :5].any() and x.grad.numpy()[:, 5:].any()
    stateful.reset_states()
    np.testing.assert_allclose(stateful(x[:, :5]).numpy(), first.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="stateful layer keeps the batch size"):
        stateful(x[:1, :5])


def test_initial_state_errors_name_the_layer(rng):
    layer = LSTM(4, name="encoder")
    x = cr.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"'encoder' \(LSTM\) takes 2 initial state"):
        layer(x, initial_state=[cr.zeros(2, 4)])
    with pytest.raises(ValueError, match=r"initial state c must have shape \(2, 4\)"):
        layer(x, initial_state=[cr.zeros(2, 4), cr.zeros(3, 4)])
    with pytest.raises(ValueError, match=r"'encoder' \(LSTM\) expects input of shape"):
        layer(cr.randn(2, 5))
    with pytest.raises(AttributeError, match="not stateful"):
        layer.reset_states()


# -- weights, shapes, configuration --------------------------------------------------------------


@pytest.mark.parametrize("layer, shapes, count", [
    (SimpleRNN(8), [(5, 8), (8, 8), (8,)], (5 + 8 + 1) * 8),
    (LSTM(8), [(5, 32), (8, 32), (32,)], 4 * (5 + 8 + 1) * 8),
    (GRU(8), [(5, 24), (8, 24), (2, 24)], 3 * (5 + 8 + 2) * 8),
    (GRU(8, reset_after=False), [(5, 24), (8, 24), (24,)], 3 * (5 + 8 + 1) * 8),
    (LSTM(8, use_bias=False), [(5, 32), (8, 32)], 4 * (5 + 8) * 8),
], ids=["SimpleRNN", "LSTM", "GRU", "GRU-reset-before", "LSTM-no-bias"])
def test_weight_shapes_and_parameter_counts_are_keras(layer, shapes, count):
    layer(cr.randn(2, 3, 5))
    assert [w.shape for w in layer.weights] == shapes
    assert layer.count_params() == count


def test_lstm_initialisation_is_keras():
    layer = LSTM(6, input_shape=(None, 4))
    bias = layer.bias.numpy()
    np.testing.assert_array_equal(bias, np.r_[np.zeros(6), np.ones(6), np.zeros(12)])
    recurrent = layer.recurrent_kernel.numpy()  # orthogonal: orthonormal rows
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(6), atol=1e-5)
    limit = np.sqrt(6 / (4 + 24))  # glorot_uniform
    assert np.abs(layer.kernel.numpy()).max() <= limit
    assert not LSTM(6, unit_forget_bias=False, input_shape=(None, 4)).bias.numpy().any()


@pytest.mark.parametrize("layer", [
    SimpleRNN(4, return_sequences=True),
    LSTM(4, return_state=True),
    GRU(4, return_sequences=True, return_state=True, go_backwards=True),
    Bidirectional(LSTM(4, return_sequences=True)),
    Bidirectional(GRU(4, return_state=True), merge_mode="ave"),
    Bidirectional(SimpleRNN(4, return_sequences=True), merge_mode=None),
    TimeDistributed(Dense(7)),
], ids=lambda layer: type(layer).__name__)
def test_output_shapes_and_config_round_trip(layer):
    x = cr.randn(2, 5, 3)
    outputs = layer(x)
    computed = layer.compute_output_shape((2, 5, 3))
    if isinstance(outputs, list):
        assert [tuple(y.shape) for y in outputs] == [tuple(s) for s in computed]
    else:
        assert outputs.shape == tuple(computed)
    copy = deserialize(serialize(layer))
    copy(x)
    copy.set_weights(layer.get_weights())
    again = copy(x)
    for a, b in zip(again if isinstance(again, list) else [again],
                    outputs if isinstance(outputs, list) else [outputs]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_bidirectional_makes_a_backward_copy_and_checks_arguments():
    layer = Bidirectional(LSTM(4, name="lstm_f"))
    assert layer.backward_layer.go_backwards and layer.backward_layer.name == "backward_lstm_f"
    layer(cr.randn(2, 5, 3))
    names = [name for name, _ in layer.named_parameters()]
    assert names[:3] == ["forward_layer.kernel", "forward_layer.recurrent_kernel",
                         "forward_layer.bias"] and len(names) == 6
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(LSTM(4), merge_mode="max")
    with pytest.raises(TypeError, match="SimpleRNN, LSTM or GRU"):
        Bidirectional(Dense(4))


def test_float64_input_runs_in_the_layers_dtype(rng):
    layer = GRU(4)
    y = layer(cr.tensor(rng.standard_normal((2, 3, 5)), dtype="float64"))
    assert y.dtype == np.float32 == layer.kernel.dtype


def test_bidirectional_stateful_layers_carry_and_reset_both_directions():
    layer = Bidirectional(GRU(3, stateful=True))
    x = cr.randn(2, 4, 5)
    first, second = layer(x).numpy(), layer(x).numpy()
    assert not np.allclose(first, second)  # the second call started from carried states
    layer.reset_states()
    np.testing.assert_allclose(layer(x).numpy(), first, rtol=1e-6)
