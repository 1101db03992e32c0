"""Graph passes, each on its own: dead code, constant folding, common subexpressions,
elementwise fusion (both kernel implementations) and the memory plan."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import chainrule as cr
import chainrule.graph as tf
from chainrule import functional as F
from chainrule import kernels
from chainrule.autograd import Function
from chainrule.graph import fusion, passes
from chainrule.graph.fusion import FusedNode
from chainrule.graph.passes import Program, optimize
from chainrule.graph.trace import Trace


def _record(fn, *examples):
    """Trace ``fn`` on example arrays; (trace, input handles, output handles)."""
    trace = Trace()
    tensors = [cr.tensor(a, dtype=np.asarray(a).dtype) for a in examples]
    with trace.recording():
        handles = [trace.add_input(t) for t in tensors]
        outs = fn(*tensors)
    outs = outs if isinstance(outs, tuple) else (outs,)
    return trace, handles, [trace.handle(o) for o in outs]


def _program(trace, wanted, fed, constants=(), keep=()):
    return Program(trace, trace.plan(wanted, fed, keep), constants, keep)


def _names(plan_or_program):
    steps = plan_or_program.steps
    return [getattr(s, "node", s).name for s in steps]


def _assert_same(got, expected, dtype=np.float64):
    rtol = 1e-12 if np.dtype(dtype) == np.float64 else 4e-7
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300 if rtol == 1e-12 else 1e-37)


class _Noise(Function):
    """A test op that is not pure: it adds fresh random numbers on every run."""

    pure = False
    saved_inputs = ()

    def forward(self, x):
        return x + np.random.default_rng().random(x.shape).astype(x.dtype)

    def backward(self, gy):
        return (gy,)


class _Spy(Function):
    """y = x + 1, keeping a weak reference to y (to see when a run lets it go)."""

    saved_inputs = ()

    def forward(self, x):
        y = x + 1
        self.ref = weakref.ref(y)
        return y

    def backward(self, gy):
        return (gy,)


class _Probe(Function):
    """y = 2x, noting whether the spy's last array is still alive when it runs."""

    saved_inputs = ()

    def __init__(self, spy):
        self.spy = spy

    def forward(self, x):
        self.spy_alive = self.spy.ref() is not None
        return x * 2

    def backward(self, gy):
        return (gy * 2,)


# -- dead code -----------------------------------------------------------------------------


def test_dead_code_drops_steps_nothing_wanted_needs_and_keeps_roots():
    trace, (hx,), (hy, hz) = _record(lambda x: (cr.exp(x), cr.tanh(x) * 3), np.ones(3))
    program = _program(trace, [hy, hz], [hx])
    program.wanted = (hy,)
    passes.eliminate_dead_code(program)
    assert _names(program) == ["Exp"]
    # a kept node (by trace index) and an impure node survive though nothing reads them
    trace, (hx,), (hy, hn) = _record(lambda x: (cr.exp(x), _Noise()(x)), np.ones(3))
    noise = trace.producer[hn]
    program = _program(trace, [hy], [hx], keep=[noise])
    assert _names(program) == ["Exp", "_Noise"]
    passes.eliminate_dead_code(program)
    assert _names(program) == ["Exp", "_Noise"]


# -- constant folding ----------------------------------------------------------------------


def test_constant_folding_computes_constant_subtrees_once():
    w = cr.tensor(np.arange(3.0), requires_grad=True)  # recorded: a capture
    trace, (hx,), (hy,) = _record(lambda x: x * cr.exp(w * 2) + 1, np.ones(3))
    hw = trace.handle(w)
    numbers = _every_capture(trace) - {hw}  # the 2 and the 1
    plan = optimize(trace, [hy], [hx], constants=numbers | {hw},
                    passes=[passes.fold_constants])
    assert _names(plan) == ["Mul_1", "Add"]
    assert len(plan.constants) == 1
    x = np.array([1.0, -2.0, 0.5])
    _assert_same(plan.run({hx: x}), trace.plan([hy], [hx]).run({hx: x}))
    # w not declared constant: nothing folds
    plan = optimize(trace, [hy], [hx], constants=numbers, passes=[passes.fold_constants])
    assert len(plan.steps) == 4 and not plan.constants


def test_folding_skips_impure_and_wanted_values():
    w = cr.tensor(np.ones(3), requires_grad=True)
    trace, (hx,), (hy, hn, hc) = _record(
        lambda x: (x + _Noise()(w), _Noise()(w) * 1.0, cr.exp(w)), np.ones(3))
    plan = optimize(trace, [hy, hn, hc], [hx], constants=_every_capture(trace),
                    passes=[passes.fold_constants])
    assert sorted(_names(plan)) == ["Add", "Exp", "Mul", "_Noise", "_Noise_1"]
    a, b = plan.run({hx: np.zeros(3)}), plan.run({hx: np.zeros(3)})
    assert not np.array_equal(a[0], b[0])  # the noise is drawn again on each run


def test_only_captures_can_be_constants():
    trace, (hx,), (hy,) = _record(cr.exp, np.ones(2))
    with pytest.raises(ValueError, match="only captures"):
        optimize(trace, [hy], [hx], constants={hx})


# -- common subexpressions -------------------------------------------------------------------


def test_common_subexpressions_merge_and_later_readers_are_renamed():
    def f(x):
        return cr.tanh(x * 2) + cr.tanh(x * 2) * cr.sigmoid(x)

    trace, (hx,), (hy,) = _record(f, np.ones((2, 3)))
    program = _program(trace, [hy], [hx], constants=_every_capture(trace))
    passes.merge_common_subexpressions(program)
    assert _names(program) == ["Mul", "Tanh", "Sigmoid", "Mul_2", "Add"]
    plan = program.to_plan()
    x = np.random.default_rng(0).normal(size=(4, 3))
    _assert_same(plan.run({hx: x}), trace.plan([hy], [hx]).run({hx: x}))


def _every_capture(trace):
    """The handles of every capture (weights and Python numbers): a caller's constants."""
    return {h for h, kind in enumerate(trace.kind) if kind == "capture"}


def test_different_configurations_and_impure_ops_do_not_merge():
    def f(x):
        return (cr.clip(x, 0.0, 1.0) + cr.clip(x, 0.0, 2.0) + cr.clip(x, -0.0, 1.0)
                + _Noise()(x) + _Noise()(x))

    trace, (hx,), (hy,) = _record(f, np.ones(3))
    plan = optimize(trace, [hy], [hx], constants=_every_capture(trace),
                    passes=[passes.merge_common_subexpressions])
    assert len(plan.steps) == len(trace.nodes)
    # the same configuration merges, arrays compared by value (Clip keeps its mask)
    trace, (hx,), (hy,) = _record(lambda x: cr.clip(x, 0.0, 1.0) * cr.clip(x, 0.0, 1.0),
                                  np.linspace(-1, 2, 5))
    plan = optimize(trace, [hy], [hx], passes=[passes.merge_common_subexpressions])
    assert _names(plan) == ["Clip", "Mul"]


def test_a_wanted_duplicate_is_not_merged_away():
    trace, (hx,), (ha, hb) = _record(lambda x: (cr.exp(x), cr.exp(x)), np.ones(2))
    plan = optimize(trace, [ha, hb], [hx], passes=[passes.merge_common_subexpressions])
    a, b = plan.run({hx: np.zeros(2)})
    assert a is not b and len(plan.steps) == 2


# -- fusion ------------------------------------------------------------------------------------

CHAINS = {
    "arithmetic": lambda x, b: cr.relu(x * 0.5 + b) * 2.0 - b / 3.0,
    "transcendental": lambda x, b: cr.tanh(cr.sigmoid(x) * 3.0) + cr.exp(-x) * b,
    "activations": lambda x, b: F.leaky_relu(F.elu(x + b), 0.1) + F.softplus(x) - F.gelu(
        x, approximate="tanh"),
    "clip_and_powers": lambda x, b: cr.clip(cr.abs(x) ** 2 + cr.sqrt(cr.abs(b)), 0.1, 2.0)
    + cr.maximum(x, b) - cr.minimum(x, -b) + cr.log(cr.abs(x) + 1.0) + (cr.abs(x) ** 1.5),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((5, 7), (5, 7)), ((6, 4), (4,)), ((3,), ()),
                                    ((2, 3, 4), (3, 1))])
@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_fusion_equals_the_ops_one_by_one(each_kernels, chain, shapes, dtype, monkeypatch):
    monkeypatch.setattr(FusedNode, "run_members", _not_expected)  # the kernel itself runs
    rng = np.random.default_rng(1)
    x0, b0 = (rng.normal(size=s).astype(dtype) for s in shapes)
    trace, (hx, hb), (hy,) = _record(CHAINS[chain], x0, b0)
    plan = optimize(trace, [hy], [hx, hb], constants=_every_capture(trace))
    assert isinstance(plan.steps[-1], FusedNode)  # values smaller than the result (b / 3
    assert len(plan.steps) < len(trace.nodes)  # with a broadcast b) are computed on their own
    reference = trace.plan([hy], [hx, hb])
    for scale in (1.0, 30.0):
        feeds = {hx: (x0 * scale).astype(dtype), hb: b0}
        got, expected = plan.run(feeds), reference.run(feeds)
        _assert_same(got, expected, dtype)
        # bit for bit: the same ufuncs in the same order, or compiled IEEE arithmetic
        np.testing.assert_array_equal(got[0], expected[0])


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_the_numpy_evaluation_block_by_block(chain, monkeypatch):
    monkeypatch.setattr(fusion, "BLOCK_BYTES", 64)  # 8 float64 a block: 35 = 4 blocks + 3
    monkeypatch.setattr(FusedNode, "run_members", _not_expected)
    previous = kernels.active()
    kernels.use("numpy")
    try:
        rng = np.random.default_rng(2)
        x0, b0 = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
        trace, (hx, hb), (hy,) = _record(CHAINS[chain], x0, b0)
        plan = optimize(trace, [hy], [hx, hb], constants=_every_capture(trace))
        feeds = {hx: x0, hb: b0}
        for _ in range(2):  # the second run reuses the scratch arrays
            np.testing.assert_array_equal(plan.run(feeds)[0],
                                          trace.plan([hy], [hx, hb]).run(feeds)[0])
    finally:
        kernels.use(previous)


def _not_expected(node, arrays):
    raise AssertionError(f"{node.name} ran its ops one by one")


def test_fused_kernels_follow_a_new_batch_size_and_broadcast(each_kernels, monkeypatch):
    monkeypatch.setattr(FusedNode, "run_members", _not_expected)
    trace, (hx, hb), (hy,) = _record(lambda x, b: cr.relu(x * 2.0 + b) - 1.0,
                                     np.ones((2, 3), np.float32), np.ones(3, np.float32))
    plan = optimize(trace, [hy], [hx, hb], constants=_every_capture(trace))
    assert len(plan.steps) == 1
    reference = trace.plan([hy], [hx, hb])
    rng = np.random.default_rng(0)
    for x in (rng.normal(size=(5000, 3)), rng.normal(size=(1, 3)),
              rng.normal(size=(4, 6))[:, ::2]):  # big, small, not contiguous
        feeds = {hx: x.astype(np.float32), hb: rng.normal(size=3).astype(np.float32)}
        _assert_same(plan.run(feeds), reference.run(feeds), np.float32)


def test_fusion_keeps_nan_and_infinities_like_numpy(each_kernels):
    trace, (hx, hb), (hy,) = _record(
        lambda x, b: cr.maximum(cr.relu(x) * b, x) + cr.minimum(x, b) / b, np.ones(4),
        np.ones(4))
    plan = optimize(trace, [hy], [hx, hb])
    x = np.array([np.nan, -np.inf, 1.0, 0.0])
    b = np.array([1.0, 2.0, np.nan, 0.0])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(plan.run({hx: x, hb: b})[0],
                                      trace.plan([hy], [hx, hb]).run({hx: x, hb: b})[0])


def test_values_read_outside_a_group_or_wanted_end_it():
    def f(x):
        a = x * 2
        b = cr.exp(a) + 1  # a is read again below: it ends a group
        return b * a, cr.tanh(b)

    trace, (hx,), (hy, hz) = _record(f, np.ones(3))
    plan = optimize(trace, [hy, hz], [hx], passes=[passes.fuse_elementwise])
    assert _names(plan) == ["Mul", "Fused[Exp, Add]", "Mul_1", "Tanh"]
    plan = optimize(trace, [hy, hz], [hx])
    _assert_same(plan.run({hx: np.arange(3.0)}), trace.plan([hy, hz], [hx]).run(
        {hx: np.arange(3.0)}))


def test_other_dtypes_than_recorded_run_the_ops_one_by_one(each_kernels):
    trace, (hx,), (hy,) = _record(lambda x: cr.tanh(x) * 2.0 + 1.0, np.ones(3, np.float32))
    plan = optimize(trace, [hy], [hx], constants=_every_capture(trace))
    x = np.array([0.1, 0.2, 0.3])  # float64 fed to a float32 trace
    (got,) = plan.run({hx: x})
    _assert_same([got], trace.plan([hy], [hx]).run({hx: x}))
    assert got.dtype == np.float64


@pytest.mark.skipif("numba" not in kernels.available(), reason="needs Numba")
def test_compiled_kernels_are_cached_per_expression():
    previous = kernels.active()
    kernels.use("numba")
    try:
        def make():
            trace, (hx,), (hy,) = _record(lambda x: cr.relu(x * 3.0) - 1.0,
                                          np.ones(8, np.float32))
            plan = optimize(trace, [hy], [hx], constants=_every_capture(trace))
            plan.run({hx: np.ones(8, np.float32)})
            return plan.steps[0]._compiled

        assert make() is make()  # a second trace of the same function compiles nothing
    finally:
        kernels.use(previous)


# -- memory plan -------------------------------------------------------------------------------


def test_memory_plan_frees_each_value_after_its_last_use():
    spy = _Spy()
    probe = _Probe(spy)
    trace, (hx,), (hy,) = _record(lambda x: probe(cr.sum(spy(x), axis=1)), np.ones((3, 4)))
    unplanned = optimize(trace, [hy], [hx], passes=[])
    unplanned.run({hx: np.ones((3, 4))})
    assert probe.spy_alive  # without the plan the run holds every value to its end
    planned = optimize(trace, [hy], [hx], passes=[passes.plan_memory])
    (got,) = planned.run({hx: np.ones((3, 4))})
    assert not probe.spy_alive
    np.testing.assert_array_equal(got, np.full(3, 16.0))


def test_fused_outputs_reuse_buffers_between_runs_and_never_escape():
    w = cr.tensor(np.eye(4) * 2, requires_grad=True)

    def f(x):
        a = cr.relu(x * 2.0 + 1.0)  # fused, read by a matmul only: a buffer
        b = cr.tanh(cr.matmul(a, w)) * 3.0  # fused, read by a sum: shares a's buffer
        return cr.sum(b, axis=0), cr.sigmoid(x) * 2.0  # the second is wanted: no buffer

    trace, (hx,), (hy, hz) = _record(f, np.ones((4, 4)))
    plan = optimize(trace, [hy, hz], [hx], constants=_every_capture(trace))
    fused = [n for n in plan.steps if isinstance(n, FusedNode)]
    assert len(fused) == 3
    first, second, wanted = fused
    assert first.buffer is not None and first.buffer is second.buffer
    assert wanted.buffer is None
    reference = trace.plan([hy, hz], [hx])
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    got1 = plan.run({hx: x1})
    kept = first.buffer.array
    got2 = plan.run({hx: x2})
    assert first.buffer.array is kept  # the same array on the next run
    _assert_same(got1, reference.run({hx: x1}))
    _assert_same(got2, reference.run({hx: x2}))
    assert not any(np.shares_memory(g, kept) for g in got1 + got2)


def test_a_buffer_read_by_a_view_op_is_not_reused():
    trace, (hx,), (hy,) = _record(lambda x: cr.reshape(cr.exp(x) * 2.0, (-1,)), np.ones((2, 2)))
    plan = optimize(trace, [hy], [hx])
    (fused,) = [n for n in plan.steps if isinstance(n, FusedNode)]
    assert fused.buffer is None
    a = plan.run({hx: np.zeros((2, 2))})[0]
    plan.run({hx: np.ones((2, 2))})
    np.testing.assert_array_equal(a, np.full(4, 2.0))


# -- the whole pipeline --------------------------------------------------------------------------


def test_optimize_keeps_gradients_of_a_graph_right():
    with tf.Graph() as g:
        x = tf.placeholder((None, 3))
        w = tf.Variable(np.arange(6.0).reshape(3, 2) / 6, name="w")
        h = cr.tanh(cr.matmul(x, w)) * 2.0 + 1.0
        loss = cr.mean(cr.relu(h - 1.5) * h)
        (dw,) = tf.gradients(loss, [w])
    trace = g.trace
    hx, hl, hd = trace.handle(x), trace.handle(loss), trace.handle(dw)
    plan = optimize(trace, [hl, hd], [hx], constants=_every_capture(trace) - {
        trace.handle(w)})
    xs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    _assert_same(plan.run({hx: xs}), trace.plan([hl, hd], [hx]).run({hx: xs}), np.float32)


def test_optimize_on_a_model_forward_equals_the_plain_replay(each_kernels):
    from chainrule import layers, models

    model = models.Sequential([
        layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(16, activation="tanh"), layers.Dense(8), layers.Dense(3, activation="elu"),
        layers.Dense(3, activation="sigmoid")])
    x0 = np.zeros((2, 1, 6, 6), np.float32)
    trace = Trace()
    t = cr.tensor(x0)
    with trace.recording():
        hx = trace.add_input(t, free_batch=True)
        hy = trace.handle(model(t))
    weights = {trace.handle(p) for p in model.parameters()}
    plan = optimize(trace, [hy], [hx], constants=weights)
    assert any(isinstance(n, FusedNode) for n in plan.steps)
    xs = np.random.default_rng(0).normal(size=(7, 1, 6, 6)).astype(np.float32)
    _assert_same(plan.run({hx: xs}), trace.plan([hy], [hx]).run({hx: xs}), np.float32)
