"""The Optimizer base class: binding parameters, groups, the learning rate, saving and loading,
in-place float32 updates, and the threaded path."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule import kernels, optimizers
from chainrule.kernels import threads as kernel_threads
from chainrule.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    GradientDescent,
    RMSprop,
    schedules,
)
from chainrule.optimizers import optimizer as optimizer_module
from tests.optimizers._parity import chainrule_loss, chainrule_params, make_weights, train

# One configuration per algorithm that exercises every buffer it can keep.
CONFIGS = {
    "sgd": lambda p: SGD(p, learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda p: Adam(p, learning_rate=0.01, amsgrad=True, weight_decay=0.01),
    "adamw": lambda p: AdamW(p, learning_rate=schedules.ExponentialDecay(0.01, 10, 0.5)),
    "rmsprop": lambda p: RMSprop(p, momentum=0.5, centered=True, learning_rate=0.002),
    "adagrad": lambda p: Adagrad(p, learning_rate=0.1, lr_decay=0.01,
                                 initial_accumulator_value=0.1),
    "adadelta": lambda p: Adadelta(p, weight_decay=0.01),
    "gradient_descent": lambda p: GradientDescent(p, learning_rate=0.1, global_clipnorm=0.5),
    "groups": lambda p: Adam([{"params": p[:2], "lr": schedules.StepDecay(0.02, every=5)},
                              {"params": p[2:], "betas": (0.5, 0.9)}]),
}


def _param(*shape, dtype=np.float64):
    return cr.zeros(shape, dtype=dtype, requires_grad=True)


# -- binding parameters: PyTorch style and Keras style ------------------------------------------


def test_an_unbound_optimizer_refuses_to_step():
    opt = SGD(learning_rate=0.1)
    assert not opt.built
    with pytest.raises(RuntimeError, match=r"no parameters yet.*optimizer.build\(params\)"):
        opt.step()


def test_build_binds_parameters_later_like_compile():
    weights = make_weights()
    eager, _ = train(lambda p: Adam(p, learning_rate=0.01), steps=5, weights=weights)
    lazy = Adam(learning_rate=0.01)
    params = chainrule_params(weights)
    lazy.build(params)
    lazy.build(params)  # again with the same parameters: nothing happens
    assert lazy.built and len(lazy.param_groups) == 1
    train(None, steps=5, weights=weights, params=params, optimizer=lazy)
    for a, b in zip(eager, params):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="already holds 4 other parameters"):
        lazy.build([_param(2)])


def test_add_param_group_binds_too_and_fills_in_the_defaults():
    w, b = _param(2, 2), _param(2)
    opt = SGD(learning_rate=0.1, momentum=0.9)
    opt.add_param_group({"params": [w]})
    opt.add_param_group({"params": b, "lr": 0.01})
    assert [g["learning_rate"] for g in opt.param_groups] == [0.1, 0.01]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    assert opt.params == [w, b]


def test_named_parameters_are_accepted():
    w, b = _param(2), _param(3)
    opt = SGD([("weight", w), ("bias", b)])
    assert opt.params == [w, b]
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


@pytest.mark.parametrize("params, error, message", [
    ([np.zeros(2)], TypeError, "must be chainrule Tensors"),
    ([cr.zeros(2, dtype=np.int64)], TypeError, "must be real floating"),
    ([], ValueError, "empty list"),
])
def test_bad_parameter_lists_are_refused(params, error, message):
    with pytest.raises(error, match=message):
        SGD(params)


def test_a_parameter_may_appear_only_once():
    w = _param(2)
    with pytest.raises(ValueError, match="listed twice"):
        SGD([w, w])
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [w]}, {"params": [w]}])


def test_non_leaf_tensors_cannot_be_optimized():
    w = _param(2)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([w * 2])


def test_unknown_group_keys_are_refused():
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['alpha'\]"):
        RMSprop([{"params": [_param(2)], "alpha": 0.9}])


def test_pytorch_group_names_are_aliases():
    opt = Adam([{"params": [_param(2)], "lr": 0.5, "eps": 1e-3, "betas": (0.8, 0.88)}])
    group = opt.param_groups[0]
    assert (group["learning_rate"], group["epsilon"]) == (0.5, 1e-3)
    assert (group["beta_1"], group["beta_2"]) == (0.8, 0.88)
    group["lr"] = 0.25  # the PyTorch idiom for a hand-made schedule
    assert group["learning_rate"] == 0.25 and "lr" in group and group.get("lr") == 0.25
    group.update(lr=0.125)
    assert dict(group)["learning_rate"] == 0.125 and "lr" not in dict(group)


# -- the learning rate --------------------------------------------------------------------------


def test_lr_is_a_synonym_and_a_number_first_is_the_learning_rate():
    w = _param(2)
    assert SGD([w], lr=0.3).param_groups[0]["learning_rate"] == 0.3
    assert SGD(0.3).learning_rate == 0.3  # Keras's SGD(0.3)
    assert AdamW(lr=0.2).defaults["learning_rate"] == 0.2
    with pytest.raises(TypeError, match="given twice"):
        SGD([w], learning_rate=0.1, lr=0.2)
    with pytest.raises(TypeError, match="given twice"):
        SGD(0.1, lr=0.2)


def test_numpy_scalars_become_python_numbers_so_float32_is_not_upcast():
    opt = SGD([_param(2, dtype=np.float32)], learning_rate=np.float64(0.1),
              momentum=np.float64(0.9))
    opt.add_param_group({"params": [_param(1, dtype=np.float32)], "lr": np.float32(0.5)})
    opt.learning_rate = np.float64(0.25)
    assert all(type(v) is float for g in opt.param_groups for k, v in g.items()
               if k in ("learning_rate", "momentum"))


def test_a_plain_function_first_is_not_taken_for_a_learning_rate():
    with pytest.raises(TypeError, match=r"got function \(did you mean model.parameters\(\)\?\)"):
        SGD(lambda: [_param(2)])


@pytest.mark.parametrize("rate", [-0.1, "0.1", None, True])
def test_invalid_learning_rates_are_refused(rate):
    with pytest.raises(ValueError, match="learning_rate"):
        SGD([_param(2)], learning_rate=rate)


def test_learning_rate_property_reads_and_sets_every_group():
    opt = SGD([{"params": [_param(2)]}, {"params": [_param(2)], "lr": 0.5}], learning_rate=0.1)
    assert opt.learning_rate == 0.1 and opt.lr == 0.1
    opt.learning_rate = 0.02
    assert [g["learning_rate"] for g in opt.param_groups] == [0.02, 0.02]
    opt.lr = schedules.StepDecay(1.0, every=1)
    opt.add_param_group({"params": [_param(1)]})
    assert all(isinstance(g["learning_rate"], schedules.StepDecay) for g in opt.param_groups)
    assert opt.learning_rate == 1.0
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0


# -- the step -----------------------------------------------------------------------------------


def test_zero_grad_sets_gradients_to_none_or_to_zero():
    w = _param(3)
    opt = SGD([w])
    w.grad = cr.ones(3, dtype=np.float64)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.data, np.zeros(3))
    opt.zero_grad()
    assert w.grad is None


def test_parameters_without_gradient_keep_their_value_and_get_no_state():
    used, unused = _param(2), cr.ones(2, dtype=np.float64, requires_grad=True)
    opt = Adam([used, unused], learning_rate=0.1)
    (used * used + 1).sum().backward()
    opt.step()
    np.testing.assert_array_equal(unused.data, np.ones(2))
    assert unused not in opt.state and used in opt.state
    assert opt.iterations == 1


def test_step_calls_the_closure_and_returns_its_loss():
    w = cr.tensor([2.0], dtype=np.float64, requires_grad=True)
    opt = SGD([w], learning_rate=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    assert w.item() == 1.0


@pytest.mark.parametrize("name", CONFIGS)
def test_float32_stays_float32_and_updates_happen_in_place(name):
    weights = {k: v.astype(np.float32) for k, v in make_weights().items()}
    params = [cr.tensor(weights[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2")]
    arrays = [p.data for p in params]
    _, opt = train(CONFIGS[name], steps=2, weights=weights, params=params)
    buffers = {id(v) for s in opt.state.values() for v in s.values() if hasattr(v, "dtype")}
    train(None, steps=2, weights=weights, params=params, optimizer=opt)
    for p, array in zip(params, arrays):
        assert p.data is array and p.data.dtype == np.float32
    for state in opt.state.values():
        for key, value in state.items():
            if key == "step":
                assert isinstance(value, int)
            else:
                assert value.dtype == np.float32 and id(value) in buffers, key


@pytest.mark.parametrize("name", CONFIGS)
def test_threads_give_bit_identical_results(name, monkeypatch):
    weights = make_weights()
    serial, _ = train(CONFIGS[name], steps=6, weights=weights)
    counts = _force_threads(monkeypatch)
    threaded, opt = train(CONFIGS[name], steps=6, weights=weights)
    assert set(counts) == (set() if name == "gradient_descent" else {3})
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a.data, b.data)


def _force_threads(monkeypatch, count=3):
    """Share even the smallest step among ``count`` threads; returns the list of the thread
    counts of the steps that were shared."""
    counts, run_each = [], kernels.run_each

    def counting_run_each(work, threads):
        counts.append(threads)
        return run_each(work, threads)

    monkeypatch.setattr(optimizer_module, "PARALLEL_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setattr(optimizer_module, "SWITCHING_ELEMENTS", 1)
    monkeypatch.setattr(kernels, "workers", lambda: count)
    monkeypatch.setattr(kernels, "run_each", counting_run_each)
    return counts


def test_helper_threads_take_jobs_and_errors_reach_the_caller(monkeypatch):
    _force_threads(monkeypatch)
    params = [_param(3) for _ in range(6)]
    for p in params:
        p.grad = cr.ones(3, dtype=np.float64)
    opt = SGD(params, learning_rate=0.5)
    workers, update = set(), opt.update_step

    def slow_update(gradient, variable, *args):
        time.sleep(0.02)  # long enough for the helpers to wake up and take a job
        workers.add(threading.get_ident())
        if variable is params[4].data and opt.iterations == 1:
            raise FloatingPointError("bad parameter")
        update(gradient, variable, *args)

    monkeypatch.setattr(opt, "update_step", slow_update)
    opt.step()
    assert len(workers) > 1 and threading.get_ident() in workers
    assert all(np.array_equal(p.data, np.full(3, -0.5)) for p in params)
    with pytest.raises(FloatingPointError, match="bad parameter"):
        opt.step()


class _FakeBlas:
    """A BLAS of 2 threads that chainrule's thread switches can cap (no real library)."""

    internal_api, count = "openblas", 2

    def get_num_threads(self):
        return self.count

    def set_num_threads(self, count):
        self.count = count


def _fake_blas(monkeypatch) -> _FakeBlas:
    """kernels.threads seeing only a fake BLAS, holding no cores; returns the BLAS."""
    blas = _FakeBlas()
    monkeypatch.setattr(kernel_threads, "_worker_shutdowns", [])
    monkeypatch.setattr(kernel_threads, "_blas_libraries", [blas])
    monkeypatch.setattr(kernel_threads, "_held", [])
    return blas


def test_a_shared_step_holds_the_cores_until_the_next_product(monkeypatch):
    """The step holds the cores it took until a product BLAS would share (the next step's
    forward: on chainrule's threads one by one its products ran slower), not for a kernel op's
    2^28 multiply-adds; steps back to back switch nothing; a kernel op's hold stays as it was."""
    blas = _fake_blas(monkeypatch)
    monkeypatch.setattr(optimizer_module, "PARALLEL_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setattr(optimizer_module, "SWITCHING_ELEMENTS", 1)
    seen = []
    params, opt = train(CONFIGS["adam"], steps=1)
    update = opt.update_step
    monkeypatch.setattr(opt, "update_step", lambda *args: seen.append(
        (blas.count, kernels.workers())) or update(*args))
    opt.step()
    opt.step()
    assert seen and set(seen) == {(1, 2)} and blas.count == 1  # taken, and held
    kernels.blas_for(kernel_threads.NEXT_PRODUCT - 1)
    assert blas.count == 1
    kernels.blas_for(kernel_threads.NEXT_PRODUCT)  # the next step's first product
    assert blas.count == 2
    with kernels.own_threads(hold=True):  # a kernel op holds the cores ...
        pass
    opt.step()  # ... and the step inside that hold keeps it
    kernels.blas_for(kernel_threads.THREADED_PRODUCT - 1)
    assert blas.count == 1
    kernels.give_blas_back()
    assert blas.count == 2


def test_a_step_switches_blas_threads_only_when_it_is_large(monkeypatch):
    """Without held cores, taking them costs BLAS a stop and a restart: a step shares its
    parameters only from SWITCHING_ELEMENTS on; with the cores held, from two threads' worth."""
    _fake_blas(monkeypatch)
    monkeypatch.setattr(optimizer_module, "PARALLEL_ELEMENTS_PER_THREAD", 1)
    params, opt = train(CONFIGS["adam"], steps=1)
    jobs = [(p.grad.data, p.data, {}, {}) for p in params]  # (only sizes and the device count)
    elements = sum(p.data.size for p in params)
    monkeypatch.setattr(optimizer_module, "SWITCHING_ELEMENTS", elements + 1)
    assert not kernel_threads.cores_taken() and not opt._may_share(jobs, elements)
    with kernels.own_threads(hold=True):
        pass
    assert kernel_threads.cores_taken() and opt._may_share(jobs, elements)
    kernels.give_blas_back()
    monkeypatch.setattr(optimizer_module, "SWITCHING_ELEMENTS", elements)
    assert opt._may_share(jobs, elements)


def _threaded_step_in_child(conn):
    params, opt = train(CONFIGS["adam"], steps=1)
    conn.send(opt.iterations)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_threads(monkeypatch):
    _force_threads(monkeypatch, 2)
    train(CONFIGS["adam"], steps=1)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_threaded_step_in_child, args=(send,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0 and receive.poll() and receive.recv() == 1


# -- saving and loading -------------------------------------------------------------------------


def _resume(name, state_dict_transform=lambda sd: sd):
    """20 steps, save, copy the weights into a fresh optimizer, load, 30 more steps."""
    weights = make_weights()
    straight, _ = train(CONFIGS[name], steps=50, weights=weights)
    first, opt = train(CONFIGS[name], steps=20, weights=weights)
    saved = state_dict_transform(opt.state_dict())
    params = [cr.tensor(p.data, dtype=p.dtype, requires_grad=True) for p in first]
    fresh = CONFIGS[name](params)
    fresh.load_state_dict(saved)
    assert fresh.iterations == 20
    resumed, _ = train(None, steps=30, weights=weights, params=params, optimizer=fresh)
    return straight, resumed


@pytest.mark.parametrize("name", CONFIGS)
def test_state_round_trip_mid_run_is_bit_identical(name):
    straight, resumed = _resume(name)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)


def _assert_plain(value, where="state_dict"):
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{where}: key {k!r}"
            _assert_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _assert_plain(v, f"{where}[{i}]")
    else:
        assert type(value) in (np.ndarray, int, float, bool, str), f"{where}: {type(value)}"


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_holds_only_arrays_numbers_and_strings(name):
    _, opt = train(CONFIGS[name], steps=3)
    _assert_plain(opt.state_dict())


def _through_json_and_npz(state_dict):
    """Save as a real file would be: arrays to .npz (no pickle), everything else to JSON."""
    arrays = {}

    def split(value):
        if isinstance(value, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {"__array__": key}
        if isinstance(value, dict):
            return {k: split(v) for k, v in value.items()}
        if isinstance(value, list):
            return [split(v) for v in value]
        return value

    text = json.dumps(split(state_dict))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    loaded = np.load(buffer, allow_pickle=False)
    return json.loads(text, object_hook=lambda d: loaded[d["__array__"]] if "__array__" in d
                      else d)


@pytest.mark.parametrize("name", ["adam", "adamw", "groups", "rmsprop"])
def test_state_survives_json_and_npz(name):
    straight, resumed = _resume(name, _through_json_and_npz)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_a_snapshot():
    params, opt = train(CONFIGS["adam"], steps=2)
    saved = opt.state_dict()
    copy = saved["state"][0]["exp_avg"].copy()
    train(None, steps=2, params=params, optimizer=opt)
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], copy)
    assert saved["iterations"] == 2 and saved["state"][0]["step"] == 2


def test_a_plain_function_learning_rate_is_left_out_and_kept_on_load():
    params, opt = train(lambda p: SGD(p, learning_rate=lambda t: 0.1), steps=2)
    saved = opt.state_dict()
    assert "learning_rate" not in saved["param_groups"][0]
    fresh = SGD(params, learning_rate=0.5)
    fresh.load_state_dict(saved)
    assert fresh.learning_rate == 0.5


def test_load_state_dict_refuses_a_mismatch():
    _, opt = train(CONFIGS["adam"], steps=1)
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="1 parameter groups, the optimizer 2"):
        Adam([{"params": [_param(5, 8)]}, {"params": [_param(8)]}]).load_state_dict(saved)
    with pytest.raises(ValueError, match="group 0 has 4 parameters in the state but 1"):
        Adam([_param(5, 8)]).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 1 has shape \(8,\)"):
        Adam([_param(5, 8), _param(9), _param(8, 3), _param(3)]).load_state_dict(saved)


# -- configuration and lookup by name -----------------------------------------------------------


@pytest.mark.parametrize("name, cls", [("sgd", SGD), ("adam", Adam), ("AdamW", AdamW),
                                       ("rmsprop", RMSprop), ("Adagrad", Adagrad),
                                       ("adadelta", Adadelta),
                                       ("gradient_descent", GradientDescent)])
def test_get_by_name_gives_defaults(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls and not opt.built
    assert opt.defaults == cls().defaults


def test_get_passes_objects_through_and_reads_classes_and_configs():
    opt = SGD(learning_rate=0.3, momentum=0.5, clipnorm=1.0)
    assert optimizers.get(opt) is opt
    assert type(optimizers.get(RMSprop)) is RMSprop
    copy = optimizers.get({"class_name": "SGD", "config": opt.get_config()})
    assert copy.defaults == opt.defaults and copy.clipnorm == 1.0
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamax'; known: \['adadelta'"):
        optimizers.get("adamax")
    with pytest.raises(TypeError, match="expected an optimizer"):
        optimizers.get(3)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_round_trip(name):
    opt = CONFIGS[name]([_param(2), _param(2), _param(2), _param(2)])
    config = json.loads(json.dumps(opt.get_config()))
    copy = type(opt).from_config(config)
    assert copy.defaults == opt.defaults
    assert (copy.clipnorm, copy.clipvalue, copy.global_clipnorm) == (
        opt.clipnorm, opt.clipvalue, opt.global_clipnorm)


def test_repr_shows_hyper_parameters_and_binding():
    assert repr(SGD(momentum=0.9)) == (
        "SGD(learning_rate=0.01, momentum=0.9, nesterov=False, weight_decay=0.0, "
        "dampening=0.0; unbound)")
    assert repr(GradientDescent([_param(2)])).endswith("; 1 group(s), 1 parameter(s))")


def test_chainrule_loss_helper_is_differentiable():
    params = chainrule_params(make_weights())
    chainrule_loss(params, make_weights()).backward()
    assert all(p.grad is not None for p in params)
