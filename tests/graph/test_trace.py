"""The trace: record the ops applied to some Tensors once, replay them on new arrays."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.graph as tf
from chainrule import layers, models
from chainrule.autograd import Function
from chainrule.autograd.function import current_recorder
from chainrule.graph.trace import CAPTURE, COMPUTED, INPUT, MissingInput, OpNode, Trace


def _record(fn, *examples):
    """What a jit would do: trace ``fn`` on example Tensors, return (trace, inputs, output)."""
    trace = Trace()
    with trace.recording():
        handles = [trace.add_input(t) for t in examples]
        out = fn(*examples)
    return trace, handles, trace.handle(out)


def test_hook_is_off_unless_something_records():
    assert current_recorder() is None
    trace = Trace()
    with trace.recording():
        assert current_recorder() is trace
        with Trace().recording():
            assert current_recorder() is not trace
        assert current_recorder() is trace
    assert current_recorder() is None


def test_replay_a_recorded_function_on_new_arrays_like_a_jit():
    w = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)

    def f(x):
        return cr.tanh(cr.matmul(x, w)).sum(axis=1) * 2

    trace, (hx,), hy = _record(f, cr.tensor(np.zeros((3, 2))))
    assert [n.function.name for n in trace.nodes] == ["MatMul", "Tanh", "Sum", "Mul"]
    assert trace.kind[hx] == INPUT and trace.kind[hy] == COMPUTED
    assert trace.kind[trace.handle(w)] == CAPTURE
    plan = trace.plan([hy], fed=[hx])
    new = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    (got,) = plan.run({hx: new})
    np.testing.assert_array_equal(got, f(cr.tensor(new)).data)
    w.data = w.data * 0  # a capture is read when each replay starts
    (got,) = plan.run({hx: new})
    np.testing.assert_array_equal(got, np.zeros(5, np.float32))


def test_ops_on_plain_tensors_are_constants_and_not_recorded():
    c = cr.tensor([1.0, 2.0])

    def f(x):
        k = c * 3  # neither a value of the trace nor requiring a gradient: a constant
        return x + k

    trace, (hx,), hy = _record(f, cr.tensor([0.0, 0.0]))
    assert [n.function.name for n in trace.nodes] == ["Add"]
    (got,) = trace.plan([hy], fed=[hx]).run({hx: np.array([1.0, 1.0], np.float32)})
    np.testing.assert_array_equal(got, [4.0, 7.0])


def test_plan_prunes_and_reports_a_missing_input():
    trace = Trace()
    a, b = cr.tensor([1.0]), cr.tensor([2.0])
    with trace.recording():
        ha, hb = trace.add_input(a), trace.add_input(b)
        only_a = cr.exp(a)
        both = only_a * b
    plan = trace.plan([trace.handle(only_a)], fed=[ha])
    assert [n.name for n in plan.steps] == ["Exp"]
    with pytest.raises(MissingInput) as caught:
        trace.plan([trace.handle(both)], fed=[ha])
    assert caught.value.handle == hb
    assert caught.value.target == ("value", trace.handle(both))


class _TimesTwoAndThree(Function):
    """A test op with two outputs: (2x, 3x)."""

    multi_output = True
    saved_inputs = ()

    def forward(self, x):
        return 2 * x, 3 * x

    def backward(self, gys):
        g2, g3 = gys
        return (g2 * 2 + g3 * 3,)


def test_multi_output_ops_replay_and_differentiate():
    with tf.Graph() as g:
        x = tf.placeholder((None, 2))
        two, three = _TimesTwoAndThree()(x)
        y = cr.sum(two * 5)  # `three` gets no gradient: the engine fills zeros for it
        (dx,) = tf.gradients(y, [x])
    assert any(isinstance(n, OpNode) and n.function.multi_output for n in g.trace.nodes)
    xs = np.arange(6.0).reshape(3, 2)
    got_three, got_dx = tf.Session(g).run([three, dx], {x: xs})
    np.testing.assert_array_equal(got_three, 3 * xs)
    np.testing.assert_array_equal(got_dx, np.full((3, 2), 10.0))


def test_fused_relu_dense_and_sequential_gradients_match_define_by_run():
    cr.manual_seed(3)
    model = models.Sequential([layers.Dense(8, activation="relu"), layers.Dense(3)])
    with tf.Graph() as g:
        x = tf.placeholder((None, 5))
        loss = cr.mean(model(x) ** 2)
        grads = tf.gradients(loss, model.parameters())
    sess = tf.Session(g)
    for n in (7, 2, 1):
        xs = np.random.default_rng(n).normal(size=(n, 5)).astype(np.float32)
        got = sess.run(grads, {x: xs})
        for p in model.parameters():
            p.grad = None
        cr.mean(model(cr.tensor(xs)) ** 2).backward()
        for a, p in zip(got, model.parameters()):
            np.testing.assert_array_equal(a, p.grad.data)


def test_a_node_fed_directly_is_not_recomputed():
    with tf.Graph() as g:
        a = tf.placeholder((2,))
        b = a * 2
        c = b + 1
    np.testing.assert_array_equal(tf.Session(g).run(c, {b: [10.0, 20.0]}), [11.0, 21.0])


def test_feeding_a_value_that_gradients_differentiate_through_is_refused():
    with tf.Graph() as g:
        a = tf.placeholder((2,))
        b = cr.exp(a)
        (da,) = tf.gradients(cr.sum(b * b), [a])
    with pytest.raises(ValueError, match="differentiates through Exp, which is fed"):
        tf.Session(g).run(da, {a: [0.0, 1.0], b: [1.0, 1.0]})
