"""Each optimizer's ``update_step`` computes the formula of its docstring: one step on float64
arrays against the same formula written out in plain NumPy (with the kernels of each kind)."""

from __future__ import annotations

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
)

SHAPE = (4, 3)
ALPHA = 0.05


def _random(rng, positive=False):
    values = rng.standard_normal(SHAPE)
    return np.abs(values) + 0.1 if positive else values


def sgd(W, g, state, rng):
    λ = 0.1
    return SGD(learning_rate=ALPHA, weight_decay=λ), {}, W - ALPHA * (g + λ * W)


def sgd_momentum(W, g, state, rng):
    μ, τ, λ = 0.9, 0.2, 0.01
    b = state["momentum_buffer"] = _random(rng)
    b = μ * b + (1 - τ) * (g + λ * W)
    return SGD(learning_rate=ALPHA, momentum=μ, dampening=τ, weight_decay=λ), b, W - ALPHA * b


def sgd_nesterov_first_step(W, g, state, rng):
    μ, λ = 0.9, 0.01
    g = g + λ * W
    b = g  # the buffer starts as the gradient, undamped
    optimizer = SGD(learning_rate=ALPHA, momentum=μ, nesterov=True, weight_decay=λ)
    return optimizer, b, W - ALPHA * (g + μ * b)


def _adam(W, g, state, rng, amsgrad):
    β1, β2, ε, t = 0.9, 0.999, 1e-7, 3
    m, v = state["exp_avg"], state["exp_avg_sq"] = _random(rng), _random(rng, positive=True)
    state["step"] = t - 1
    m = β1 * m + (1 - β1) * g
    v = β2 * v + (1 - β2) * g**2
    v_hat = v
    if amsgrad:
        v_hat = np.maximum(state.setdefault("max_exp_avg_sq", 2 * v), v)
    W = W - ALPHA * (m / (1 - β1**t)) / (np.sqrt(v_hat / (1 - β2**t)) + ε)
    return m, W


def adam(W, g, state, rng):
    λ = 0.01
    m, W = _adam(W, g + λ * W, state, rng, amsgrad=True)
    return Adam(learning_rate=ALPHA, weight_decay=λ, amsgrad=True), m, W


def adamw(W, g, state, rng):
    λ = 0.1
    m, W = _adam(W * (1 - ALPHA * λ), g, state, rng, amsgrad=False)
    return AdamW(learning_rate=ALPHA, weight_decay=λ), m, W


def rmsprop(W, g, state, rng):
    ρ, ε, λ = 0.9, 1e-7, 0.01
    state["step"], state["square_avg"] = 4, _random(rng, positive=True)
    g = g + λ * W
    v = ρ * state["square_avg"] + (1 - ρ) * g**2
    return RMSprop(learning_rate=ALPHA, rho=ρ, weight_decay=λ), v, W - ALPHA * g / (
        np.sqrt(v) + ε)


def rmsprop_centered_momentum(W, g, state, rng):
    ρ, ε, μ = 0.9, 1e-7, 0.5
    state["step"], state["square_avg"] = 4, _random(rng, positive=True) + 1
    state["grad_avg"], state["momentum_buffer"] = _random(rng) / 4, _random(rng)
    v = ρ * state["square_avg"] + (1 - ρ) * g**2
    m = ρ * state["grad_avg"] + (1 - ρ) * g
    b = μ * state["momentum_buffer"] + g / (np.sqrt(v - m**2) + ε)
    optimizer = RMSprop(learning_rate=ALPHA, rho=ρ, momentum=μ, centered=True)
    return optimizer, b, W - ALPHA * b


def adagrad(W, g, state, rng):
    ε, η, λ, t = 1e-7, 0.1, 0.01, 5
    state["step"], state["sum"] = t - 1, _random(rng, positive=True)
    g = g + λ * W
    G = state["sum"] + g**2
    optimizer = Adagrad(learning_rate=ALPHA, lr_decay=η, weight_decay=λ)
    return optimizer, G, W - ALPHA / (1 + (t - 1) * η) * g / (np.sqrt(G) + ε)


def adadelta(W, g, state, rng):
    ρ, ε, λ = 0.9, 1e-6, 0.01
    state["step"] = 2
    state["square_avg"], state["acc_delta"] = _random(rng, True), _random(rng, True)
    g = g + λ * W
    square_avg = ρ * state["square_avg"] + (1 - ρ) * g**2
    delta = np.sqrt(state["acc_delta"] + ε) / np.sqrt(square_avg + ε) * g
    acc_delta = ρ * state["acc_delta"] + (1 - ρ) * delta**2
    optimizer = Adadelta(learning_rate=ALPHA, rho=ρ, epsilon=ε, weight_decay=λ)
    return optimizer, acc_delta, W - ALPHA * delta


def gradient_descent(W, g, state, rng):
    return GradientDescent(learning_rate=ALPHA), {}, W - ALPHA * g


# what each rule computes: (W, g, state to fill in, rng) -> (optimizer, a buffer, the new W)
FORMULAS = [sgd, sgd_momentum, sgd_nesterov_first_step, adam, adamw, rmsprop,
            rmsprop_centered_momentum, adagrad, adadelta, gradient_descent]
# the state entry each formula returns besides W
BUFFER = {"sgd_momentum": "momentum_buffer", "sgd_nesterov_first_step": "momentum_buffer",
          "adam": "exp_avg", "adamw": "exp_avg", "rmsprop": "square_avg",
          "rmsprop_centered_momentum": "momentum_buffer", "adagrad": "sum",
          "adadelta": "acc_delta"}


@pytest.mark.parametrize("formula", FORMULAS, ids=lambda f: f.__name__)
def test_update_step_computes_the_formula(each_kernels, formula, rng):
    W, g = _random(rng), _random(rng)
    state = {}
    optimizer, buffer, expected = formula(W, g, state, rng)
    state = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in state.items()}
    optimizer.build([cr.tensor(W, dtype=np.float64, requires_grad=True)])
    optimizer.change = 0.0  # GradientDescent's step() starts its sum of |ΔW|
    variable, gradient = W.copy(), g.copy()
    optimizer.update_step(gradient, variable, ALPHA, state, dict(optimizer.param_groups[0]))
    np.testing.assert_allclose(variable, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(gradient, g)  # the user's gradient is not touched
    if formula.__name__ in BUFFER:
        np.testing.assert_allclose(state[BUFFER[formula.__name__]], buffer, rtol=1e-12,
                                   atol=1e-15)
