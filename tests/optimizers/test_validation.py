"""Optimizers refuse bad hyper-parameters, and load_state_dict refuses bad or foreign state
without changing anything."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest

import chainrule as cr
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

NAN, INF = math.nan, math.inf

#: (optimizer, argument, a value it must refuse)
BAD = [
    *[(cls, "learning_rate", value) for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta,
                                                GradientDescent)
      for value in (NAN, INF, -1e-3)],
    (SGD, "momentum", 2.0), (SGD, "momentum", 1.0), (SGD, "momentum", -0.1), (SGD, "momentum", NAN),
    (SGD, "dampening", 1.5), (SGD, "weight_decay", -1.0), (SGD, "weight_decay", INF),
    (SGD, "nesterov", "yes"),
    (Adam, "beta_1", 1.0), (Adam, "beta_1", NAN), (Adam, "beta_2", -0.5), (Adam, "beta_2", INF),
    (Adam, "epsilon", 0.0), (Adam, "epsilon", NAN), (Adam, "weight_decay", -0.1),
    (Adam, "amsgrad", 1), (AdamW, "weight_decay", NAN), (AdamW, "beta_1", True),
    (RMSprop, "rho", 1.0), (RMSprop, "rho", NAN), (RMSprop, "epsilon", 0.0),
    (RMSprop, "momentum", 1.0), (RMSprop, "weight_decay", INF), (RMSprop, "centered", None),
    (Adagrad, "epsilon", 0.0), (Adagrad, "lr_decay", -1.0), (Adagrad, "lr_decay", NAN),
    (Adagrad, "initial_accumulator_value", -0.1), (Adagrad, "weight_decay", INF),
    (Adadelta, "rho", 1.0), (Adadelta, "rho", -0.1), (Adadelta, "epsilon", 0.0),
    (Adadelta, "weight_decay", NAN),
]


def _param(*shape):
    return cr.zeros(shape, requires_grad=True)


@pytest.mark.parametrize("cls, key, value", BAD,
                         ids=[f"{c.__name__}-{k}-{v!r}" for c, k, v in BAD])
def test_bad_hyper_parameters_are_refused_naming_optimizer_argument_and_value(cls, key, value):
    pattern = rf"{cls.__name__}: invalid {key} {re.escape(repr(value))}"
    with pytest.raises(ValueError, match=pattern):
        cls([_param(2)], **{key: value})
    with pytest.raises(ValueError, match=pattern):
        cls(**{key: value})  # unbound (Keras style) too
    if key != "learning_rate":
        opt = cls([_param(2)])
        with pytest.raises(ValueError, match=pattern):
            opt.add_param_group({"params": [_param(1)], key: value})


def test_the_probe_cases():
    with pytest.raises(ValueError, match=r"Adam: invalid learning_rate nan"):
        Adam(learning_rate=NAN)
    with pytest.raises(ValueError, match=r"SGD: invalid momentum 2.0; expected a finite number "
                                         r">= 0.0 and < 1.0"):
        SGD(momentum=2.0)


@pytest.mark.parametrize("make", [
    lambda: SGD(learning_rate=0.0, momentum=0.0, dampening=1.0, weight_decay=0.0),
    lambda: SGD(momentum=0.99, nesterov=True),
    lambda: Adam(beta_1=0.0, beta_2=0.0, epsilon=1e-30, amsgrad=True),
    lambda: RMSprop(rho=0.0, momentum=0.9, centered=True),
    lambda: Adagrad(initial_accumulator_value=0.0, lr_decay=0.0),
    lambda: Adadelta(rho=0.0),
    lambda: SGD(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.5)),
    lambda: Adam(learning_rate=lambda step: 0.1 / (1 + step)),
    lambda: Adam(learning_rate=np.float32(1e-3), beta_1=np.float64(0.8)),
])
def test_edge_values_that_are_valid_are_accepted(make):
    make()


@pytest.mark.parametrize("option", ["clipnorm", "clipvalue", "global_clipnorm"])
@pytest.mark.parametrize("value", [NAN, INF, True, 0.0])
def test_clipping_options_must_be_finite_positive_numbers(option, value):
    with pytest.raises(ValueError, match=rf"SGD: {option} must be > 0"):
        SGD(**{option: value})


@pytest.mark.parametrize("goal", [NAN, INF, 0.0, True])
def test_gradient_descent_goal_must_be_a_finite_positive_number(goal):
    with pytest.raises(ValueError, match="GradientDescent: goal must be a finite number > 0"):
        GradientDescent(goal=goal)


def test_the_learning_rate_setter_refuses_nan():
    opt = SGD([_param(2)])
    with pytest.raises(ValueError, match="SGD: invalid learning_rate nan"):
        opt.learning_rate = NAN
    assert opt.learning_rate == 0.01


# -- load_state_dict ----------------------------------------------------------------------------


def _steps(opt, params, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss = ((params[0] * 0.5 + 1.0) ** 2).sum() + ((params[1] - 2.0) ** 2).sum()
        loss.backward()
        opt.step()


def _trained(cls, steps=2, **kwargs):
    """An optimizer over two parameters after a few steps (so it has state)."""
    params = [_param(3, 2), _param(2)]
    opt = cls(params, **kwargs)
    _steps(opt, params, steps)
    return params, opt


def _snapshot(opt):
    return copy.deepcopy(opt.state_dict())


def _assert_unchanged(opt, before):
    after = opt.state_dict()
    assert after["iterations"] == before["iterations"]
    assert after["param_groups"] == before["param_groups"]
    for old, new in zip(before["state"], after["state"]):
        assert old.keys() == new.keys()
        for key in old:
            np.testing.assert_array_equal(new[key], old[key])


def test_state_dict_records_the_class():
    _, opt = _trained(AdamW)
    assert opt.state_dict()["class_name"] == "AdamW"


@pytest.mark.parametrize("source, target", [(SGD, Adam), (Adam, AdamW), (RMSprop, Adadelta)])
def test_state_of_another_optimizer_class_is_refused(source, target):
    _, saved = _trained(source, momentum=0.9) if source is SGD else _trained(source)
    params, opt = _trained(target)
    before = _snapshot(opt)
    with pytest.raises(ValueError, match=rf"{target.__name__}.load_state_dict: the state was "
                                         rf"saved by '{source.__name__}', not {target.__name__}"):
        opt.load_state_dict(saved.state_dict())
    _assert_unchanged(opt, before)


def test_old_state_without_class_name_is_accepted_when_it_fits():
    _, saved = _trained(Adam, steps=3)
    state = saved.state_dict()
    del state["class_name"]
    _, opt = _trained(Adam, steps=1)
    opt.load_state_dict(state)
    assert opt.iterations == 3
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["exp_avg"],
                                  state["state"][0]["exp_avg"])


def test_old_state_of_another_class_is_refused_by_its_names():
    _, sgd = _trained(SGD, momentum=0.9)
    state = sgd.state_dict()
    del state["class_name"]
    _, opt = _trained(Adam)
    before = _snapshot(opt)
    with pytest.raises(ValueError, match=r"state of parameter 0 has \['momentum_buffer'\]; "
                                         r"Adam keeps"):
        opt.load_state_dict(state)
    state["state"] = [{} for _ in state["state"]]  # no per-parameter state: the names tell
    with pytest.raises(ValueError, match=r"hyper-parameter\(s\) \['dampening', 'momentum', "
                                         r"'nesterov'\] that Adam does not take"):
        opt.load_state_dict(state)
    _assert_unchanged(opt, before)


def _corrupt(state, how):
    if how == "nan learning rate":
        state["param_groups"][0]["learning_rate"] = NAN
    elif how == "beta_1 of 1.5":
        state["param_groups"][0]["beta_1"] = 1.5
    elif how == "nan in the last state array":
        state["state"][1]["exp_avg_sq"] = np.full(2, NAN, np.float32)
    elif how == "object array":
        state["state"][1]["exp_avg"] = np.array([None, None], dtype=object)
    elif how == "wrong shape":
        state["state"][1]["exp_avg"] = np.zeros(5)
    elif how == "missing buffer":
        del state["state"][1]["exp_avg_sq"]
    elif how == "negative step":
        state["state"][1]["step"] = -1
    elif how == "fractional iterations":
        state["iterations"] = 2.5
    elif how == "a number for an array":
        state["state"][1]["exp_avg"] = 0.0


CORRUPTIONS = {
    "nan learning rate": r"Adam: invalid learning_rate nan",
    "beta_1 of 1.5": r"Adam: invalid beta_1 1.5",
    "nan in the last state array": r"state 'exp_avg_sq' of parameter 1 holds NaN or infinite",
    "object array": r"state 'exp_avg' of parameter 1 is a object array",
    "wrong shape": r"state 'exp_avg' of parameter 1 has shape \(5,\), the parameter \(2,\)",
    "missing buffer": r"missing: \['exp_avg_sq'\]",
    "negative step": r"state 'step' of parameter 1 is -1; expected an integer >= 0",
    "fractional iterations": r"iterations is 2.5; expected an integer >= 0",
    "a number for an array": r"state 'exp_avg' of parameter 1 is 0.0; expected an array",
}


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_bad_state_is_refused_and_nothing_changes(how):
    _, saved = _trained(Adam, steps=3, learning_rate=0.05)
    state = saved.state_dict()
    _corrupt(state, how)
    _, opt = _trained(Adam, steps=1)
    before = _snapshot(opt)
    with pytest.raises(ValueError, match=CORRUPTIONS[how]):
        opt.load_state_dict(state)
    _assert_unchanged(opt, before)


def test_a_good_state_still_loads_and_training_continues_the_same():
    straight, _ = _trained(RMSprop, steps=4, momentum=0.5, centered=True)
    halfway, first = _trained(RMSprop, steps=2, momentum=0.5, centered=True)
    copies = [cr.tensor(p.data.copy(), requires_grad=True) for p in halfway]
    resumed = RMSprop(copies, momentum=0.5, centered=True)
    resumed.load_state_dict(first.state_dict())
    _steps(resumed, copies, 2)
    assert resumed.iterations == 4
    for a, b in zip(straight, copies):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("make, message", [
    (lambda: schedules.ExponentialDecay(NAN, 10, 0.5), "initial_learning_rate must be a finite"),
    (lambda: schedules.ExponentialDecay(0.1, 10, -0.5), "decay_rate must be a finite"),
    (lambda: schedules.InverseTimeDecay(0.1, INF, 0.5), "decay_steps must be > 0"),
    (lambda: schedules.PiecewiseConstantDecay([5], [0.1, NAN]), "values must be a finite"),
    (lambda: schedules.CosineDecay(INF, 10), "initial_learning_rate must be a finite"),
    (lambda: schedules.StepDecay(0.1, drop=-1.0), "drop must be a finite"),
])
def test_schedules_refuse_rates_that_would_poison_every_step(make, message):
    with pytest.raises(ValueError, match=message):
        make()
