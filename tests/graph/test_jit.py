"""chainrule.jit: one trace per signature, replays equal to eager over the op table and every
layer, backward and optimizer steps replayed, and what a trace cannot see is said."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import layers as L
from chainrule.graph.jit import JitWarning, TracedFunction
from chainrule.testing.op_table import OPS
from tests.layers.test_harness import CASES as LAYER_CASES

OP_CASES = [
    pytest.param(op, sample, id=f"{op.name}-{sample!r}") for op in OPS for sample in op.samples
]


def test_the_docstring_example():
    @cr.jit
    def f(x):
        return (x * 2 + 1).relu()

    assert isinstance(f, TracedFunction)
    assert f(cr.tensor([-1.0, 3.0])).tolist() == [0.0, 7.0]
    assert f(cr.tensor([2.0, -5.0])).tolist() == [5.0, 0.0]
    info = f.cache_info()
    assert (info.hits, info.misses, info.traces) == (1, 1, 1)


def test_a_replay_builds_no_layer_call_and_no_graph_node():
    layer = L.Dense(3)
    calls = []
    layer.forward = lambda x, _forward=layer.forward: calls.append(1) or _forward(x)
    step = cr.jit(lambda x: layer(x))
    with cr.no_grad():
        step(cr.tensor(np.ones((2, 4))))
        out = step(cr.tensor(np.zeros((2, 4))))
    assert len(calls) == 1, "the layer ran only while the trace was recorded"
    assert out.creator is None
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(layer.bias.numpy(), (2, 3)))


def test_a_new_shape_dtype_or_static_argument_traces_again():
    step = cr.jit(lambda x, k: x * k)
    step(cr.tensor(np.ones(3)), 2.0)
    step(cr.tensor(np.ones(3)), 2.0)
    step(cr.tensor(np.ones(4), dtype="float64"), 2.0)
    step(cr.tensor(np.ones(4, np.float32)), 2.0)
    out = step(cr.tensor(np.ones(4, np.float32)), 3.0)
    info = step.cache_info()
    assert (info.hits, info.misses, info.traces) == (1, 4, 4)
    assert out.tolist() == [3.0] * 4
    step.clear_cache()
    assert step.cache_info().traces == 0


def test_a_layer_in_another_training_mode_traces_again():
    cr.manual_seed(0)
    dropout = L.Dropout(0.5)
    step = cr.jit(lambda x: dropout(x))
    x = cr.tensor(np.ones((4, 50)))
    dropout.train()
    trained = step(x)
    dropout.eval()
    evaluated = step(x)
    assert (trained.numpy() == 0).any()
    np.testing.assert_array_equal(evaluated.numpy(), x.numpy())
    assert step.cache_info().traces == 2


def test_grad_mode_is_part_of_the_signature():
    w = cr.tensor([2.0], requires_grad=True)
    step = cr.jit(lambda x: x * w)
    x = cr.tensor([3.0])
    assert step(x).requires_grad
    with cr.no_grad():
        assert not step(x).requires_grad
    assert step.cache_info().traces == 2


@pytest.mark.parametrize("op,sample", OP_CASES)
def test_replays_equal_eager_over_the_op_table(op, sample, rng):
    """Every op, traced on one set of inputs and replayed on another: the values and the
    gradients (a backward inside the traced function) equal eager's."""

    ours = op.ours
    if op.name == "where":  # the table's condition is read in Python (a.data > 0): a constant
        ours = lambda a, b: cr.where(a > 0, a, b)  # noqa: E731 - the traceable spelling

    def fn(*xs):
        y = ours(*xs, **sample.kwargs)
        (y * y).sum().backward()
        return y

    step = cr.jit(fn)
    for _ in range(3):  # record, then replay twice
        arrays = op.make_inputs(sample, rng, np.float64)
        eager_in = [cr.tensor(a, requires_grad=True) for a in arrays]
        traced_in = [cr.tensor(a, requires_grad=True) for a in arrays]
        expected = fn(*eager_in)
        got = step(*traced_in)
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
        for mine, theirs in zip(traced_in, eager_in):
            if theirs.grad is None:
                assert mine.grad is None
            else:
                np.testing.assert_array_equal(mine.grad.numpy(), theirs.grad.numpy())
    assert step.cache_info().hits == 2


@pytest.mark.parametrize("case", LAYER_CASES, ids=repr)
def test_replays_equal_eager_over_every_layer(case, float64):
    """Every layer of the harness, in training mode, traced and replayed on new inputs: its
    output and the gradients of its weights equal eager's (same seed for dropout)."""
    layer = case.make()
    eager_inputs = case.inputs()
    layer(*eager_inputs)  # build
    weights = layer.trainable_weights

    def fn(*xs):
        y = layer(*xs)
        (y * y).sum().backward()
        return y

    def copy(t):  # float inputs need a gradient too (layers without weights)
        if isinstance(t, list):
            return [copy(u) for u in t]
        return cr.tensor(t.numpy(), requires_grad=True) if t.dtype.kind == "f" else t

    def copies(inputs):
        return [copy(t) for t in inputs]

    def flat(inputs):
        return [u for t in inputs for u in (t if isinstance(t, list) else [t])]

    step = cr.jit(fn)
    for _ in range(3):
        inputs = case.inputs()
        eager_inputs, traced_inputs = copies(inputs), copies(inputs)
        for w in weights:
            w.grad = None
        cr.manual_seed(5)
        expected = fn(*eager_inputs)
        expected_grads = [None if t.grad is None else t.grad.numpy().copy()
                          for t in weights + flat(eager_inputs)]
        for w in weights:
            w.grad = None
        cr.manual_seed(5)
        got = step(*traced_inputs)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
        for t, g in zip(weights + flat(traced_inputs), expected_grads):
            if g is None:
                assert t.grad is None
            else:
                np.testing.assert_allclose(t.grad.numpy(), g, rtol=1e-12, atol=1e-12)
    assert step.cache_info().traces == 1


def _mlp_and_optimizer(seed=0):
    cr.manual_seed(seed)
    model = cr.models.Sequential([L.Dense(16, activation="relu"), L.BatchNormalization(),
                                  L.Dropout(0.3), L.Dense(3)])
    model.build((None, 8))
    return model, cr.optimizers.Adam(model.parameters(), learning_rate=1e-2)


def test_a_traced_training_loop_equals_eager_to_1e_12_in_float64(float64):
    """zero_grad, forward, backward and the optimizer's step, replayed: after 8 steps the
    losses, weights and batch-norm statistics equal eager's (dropout under the same seed)."""
    rng = np.random.default_rng(1)
    batches = [(rng.normal(size=(5, 8)), rng.integers(0, 3, 5)) for _ in range(8)]

    def train(model, optimizer, step_fn):
        cr.manual_seed(42)
        return [step_fn(cr.tensor(x), cr.tensor(y)).item() for x, y in batches]

    def make_step(model, optimizer):
        def step(x, y):
            optimizer.zero_grad()
            loss = cr.functional.softmax_cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss
        return step

    eager_model, eager_opt = _mlp_and_optimizer()
    eager = train(eager_model, eager_opt, make_step(eager_model, eager_opt))
    model, opt = _mlp_and_optimizer()
    traced_step = cr.jit(make_step(model, opt))
    traced = train(model, opt, traced_step)
    np.testing.assert_allclose(traced, eager, rtol=1e-12)
    for mine, theirs in zip(model.weights, eager_model.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)
    assert traced_step.cache_info().hits == 7


def test_outputs_that_need_a_gradient_can_be_backpropagated_after_a_replay():
    w = cr.tensor([2.0, 3.0], requires_grad=True)
    step = cr.jit(lambda x: (x * w).sum())
    for x in ([1.0, 1.0], [4.0, 5.0]):
        w.grad = None
        step(cr.tensor(x)).backward()
        np.testing.assert_array_equal(w.grad.numpy(), x)


def test_reading_a_value_in_python_warns():
    def fn(x):
        y = x * 2
        if y.sum() > 0:  # control flow on a value: the trace keeps the first call's branch
            return y
        return -y

    step = cr.jit(fn)
    with pytest.warns(JitWarning, match=r"reads the value of Compare.*bool\(\), e.g. an if"):
        step(cr.tensor([1.0]))
    with pytest.warns(JitWarning, match=r"\.item\(\)"):
        cr.jit(lambda x: x * (x.sum().item()))(cr.tensor([1.0]))


def test_a_constant_with_the_batch_length_warns():
    """one_hot reads the labels in Python: its result is a constant of the trace."""
    step = cr.jit(lambda logits, y: (logits * cr.functional.one_hot(y, 3)).sum())
    with pytest.warns(JitWarning, match=r"shape \(4, 3\)\) is a constant of the trace whose "
                                        "first axis has the length of an argument's batch"):
        step(cr.tensor(np.ones((4, 3))), np.array([0, 1, 2, 0]))


def test_arguments_a_trace_cannot_take_are_refused():
    step = cr.jit(lambda x: x)
    with pytest.raises(TypeError, match=r"jit\(.*<lambda>\): argument 0 is a dict"):
        step({"x": 1})
    x = cr.tensor([1.0])
    with pytest.raises(ValueError, match="arg0 and arg1 are the same Tensor"):
        cr.jit(lambda a, b: a + b)(x, x)


def test_backward_on_a_leaf_inside_a_trace_warns():
    def fn(x):
        x.sum().backward()  # recorded: a Sum op of the trace
        x.backward(cr.tensor(np.ones(2)))  # on the argument itself: not replayable
        return x

    with pytest.warns(JitWarning, match=r"backward\(\) on a tensor of shape \(2,\) that no op"):
        cr.jit(fn)(cr.tensor([1.0, 2.0], requires_grad=True))


def test_backward_with_create_graph_cannot_be_traced():
    def fn(x):
        (x * x).sum().backward(create_graph=True)
        return x

    with pytest.raises(NotImplementedError, match="create_graph=True"):
        cr.jit(fn)(cr.tensor([1.0], requires_grad=True))


def test_arrays_are_passed_as_tensors_and_results_come_back_as_tensors():
    step = cr.jit(lambda x: {"double": x * 2, "pair": (x, x + 1)})
    for value in (1.0, 5.0):
        out = step(np.array([value]))
        assert out["double"].tolist() == [2 * value]
        assert out["pair"][1].tolist() == [value + 1]


def test_the_jit_example_of_the_docs_runs(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "graph.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                 if "@cr.jit" in b)
    exec(block, {})
    assert capsys.readouterr().out == "(49, 1, 1)\n"


def test_a_seeded_dropout_layer_draws_a_new_mask_on_every_replay():
    """The layer's own generator is read by the op when it runs, so replays follow the same
    sequence of masks as eager calls (not the traced call's mask again)."""
    x = cr.tensor(np.ones((4, 30)))
    eager_layer, traced_layer = L.Dropout(0.5, seed=7), L.Dropout(0.5, seed=7)
    step = cr.jit(lambda t: traced_layer(t))
    for _ in range(3):
        np.testing.assert_array_equal(step(x).numpy(), eager_layer(x).numpy())
    assert step.cache_info().hits == 2
