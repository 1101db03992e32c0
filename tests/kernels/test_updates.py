"""chainrule.kernels' optimizer updates: the compiled loops give the reference's results (bit for
bit, float32 and float64), they reach parameters that are not contiguous, and subnormal results
are flushed to zero behind a switch."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import kernels
from chainrule.kernels import reference

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (33, 5), (2, 3, 4, 5)])
def test_momentum_update_matches_the_reference(each_kernels, shape, dtype, rng):
    param, buffer, grad = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    expected_param, expected_buffer = param.copy(), buffer.copy()
    reference.momentum_update(expected_param, expected_buffer, grad, dtype(0.9), dtype(0.05))
    for _ in range(1):
        kernels.momentum_update(param, buffer, grad, 0.9, 0.05)
    np.testing.assert_array_equal(param, expected_param)
    np.testing.assert_array_equal(buffer, expected_buffer)
    assert param.dtype == buffer.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_scaled_subtract_matches_the_reference(each_kernels, dtype, rng):
    param, direction = (rng.standard_normal((9, 4)).astype(dtype) for _ in range(2))
    expected = param - direction * dtype(0.3)
    kernels.scaled_subtract(param, direction, 0.3, np.empty_like(param))
    np.testing.assert_array_equal(param, expected)


def test_updates_reach_parameters_that_are_not_contiguous(each_kernels, rng):
    # a transposed view cannot be flattened in place: the kernels must still update it
    base = rng.standard_normal((4, 6)).astype(np.float32)
    param, buffer = base.T, np.ones((6, 4), np.float32)
    grad = rng.standard_normal((6, 4)).astype(np.float32)
    expected = param - (buffer * np.float32(0.9) + grad) * np.float32(0.1)
    kernels.momentum_update(param, buffer, grad, 0.9, 0.1)
    np.testing.assert_allclose(base.T, expected, rtol=1e-6)
    before = base.T.copy()
    kernels.scaled_subtract(param, grad, 0.5, np.empty((6, 4), np.float32))
    np.testing.assert_allclose(base.T, before - grad * np.float32(0.5), rtol=1e-6)


# -- every update kernel: the compiled loop gives the reference's results --------------------

BETAS = dict(beta_1=0.9, beta_2=0.999)

# name -> (buffers it updates besides the parameter, kernels.<name>(param, grad, *buffers))
UPDATES = {
    "sgd": (0, lambda p, g: kernels.scaled_subtract(p, g, 0.1)),
    "sgd, weight decay": (0, lambda p, g: kernels.scaled_subtract(p, g, 0.1, weight_decay=0.3)),
    "momentum": (1, lambda p, g, b: kernels.momentum_update(p, b, g, 0.9, 0.05)),
    "momentum, dampening, weight decay": (1, lambda p, g, b: kernels.momentum_update(
        p, b, g, 0.9, 0.05, dampening=0.3, weight_decay=0.01)),
    "nesterov": (1, lambda p, g, b: kernels.momentum_update(p, b, g, 0.8, 0.05, nesterov=True)),
    "adam": (2, lambda p, g, m, v: kernels.adam_update(
        p, g, m, v, None, **BETAS, step_size=0.01, epsilon=1e-7)),
    "adam, amsgrad, weight decay": (3, lambda p, g, m, v, v_max: kernels.adam_update(
        p, g, m, v, v_max, **BETAS, step_size=0.01, epsilon=1e-7, weight_decay=0.1)),
    "rmsprop": (1, lambda p, g, v: kernels.rmsprop_update(
        p, g, v, None, None, rho=0.9, epsilon=1e-7, momentum=0.0, learning_rate=0.01)),
    "rmsprop, centered, momentum": (3, lambda p, g, v, m, b: kernels.rmsprop_update(
        p, g, v, m, b, rho=0.9, epsilon=1e-7, momentum=0.5, learning_rate=0.01,
        weight_decay=0.1)),
    "adagrad": (1, lambda p, g, s: kernels.adagrad_update(
        p, g, s, learning_rate=0.1, epsilon=1e-7, weight_decay=0.1)),
    "adadelta": (2, lambda p, g, v, d: kernels.adadelta_update(
        p, g, v, d, rho=0.95, epsilon=1e-6, learning_rate=1.0, weight_decay=0.1)),
}


def _arrays(rng, count, shape, dtype):
    """A parameter, a gradient and ``count`` state buffers: non-negative, as averages of
    squares are, and the first in [1, 2), the others in [0, 0.5), so that RMSprop's centered
    mean ḡ keeps v − ḡ² positive."""
    param, grad = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    buffers = [(rng.random(shape) * (1.0 if k == 0 else 0.5) + (k == 0)).astype(dtype)
               for k in range(count)]
    return [param, grad] + buffers


def _apply(update, arrays, implementation):
    """A copy of ``arrays`` after three updates with the kernels of ``implementation``."""
    arrays = [a.copy() for a in arrays]
    previous = kernels.active()
    kernels.use(implementation)
    try:
        for _ in range(3):
            update(*arrays)
    finally:
        kernels.use(previous)
    return arrays


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UPDATES)
def test_each_update_matches_the_reference_bit_for_bit(each_kernels, name, dtype, rng):
    count, update = UPDATES[name]
    arrays = _arrays(rng, count, (33, 5), dtype)
    expected = _apply(update, arrays, "numpy")
    for got, want in zip(_apply(update, arrays, each_kernels), expected):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == dtype


@pytest.mark.parametrize("name", UPDATES)
def test_each_update_reaches_a_parameter_that_is_not_contiguous(each_kernels, name, rng):
    count, update = UPDATES[name]
    param, *rest = _arrays(rng, count, (6, 4), np.float32)
    expected = _apply(update, [param] + rest, "numpy")
    base = np.ascontiguousarray(param.T)
    arrays = [base.T] + [a.copy() for a in rest]
    update(*arrays)
    update(*arrays)
    update(*arrays)
    for got, want in zip(arrays, expected):
        np.testing.assert_array_equal(got, want)


# -- denormals ---------------------------------------------------------------------------------


@pytest.fixture
def flushing():
    """Restore the flushing switch after the test."""
    previous = kernels.flushes_denormals()
    yield
    kernels.flush_denormals(previous)


def test_the_switch_says_what_it_was(flushing):
    assert kernels.flushes_denormals()  # the default
    assert kernels.flush_denormals(False) is True
    assert not kernels.flushes_denormals()
    assert kernels.flush_denormals(True) is False
    assert kernels.flushes_denormals()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UPDATES)
def test_subnormal_results_are_flushed_to_zero(each_kernels, flushing, name, dtype, rng):
    count, update = UPDATES[name]
    tiny = np.finfo(dtype).tiny
    param, grad, *buffers = _arrays(rng, count, (40,), dtype)
    grad[:20] = 0.0  # these entries only decay: into the subnormal range, flushed or not
    param[:20] = np.linspace(-tiny, tiny, 20) / 8
    for buffer in buffers:  # averages of squares are not negative
        buffer[:20] = np.linspace(0, tiny, 20) / 8
    kernels.flush_denormals(True)
    flushed = _apply(update, [param, grad] + buffers, each_kernels)
    for array in flushed[:1] + flushed[2:]:
        small = np.abs(array) < tiny
        assert not (small & (array != 0)).any()
    kernels.flush_denormals(False)
    kept = _apply(update, [param, grad] + buffers, each_kernels)
    assert any((np.abs(a) < tiny).any() and (a != 0).any() for a in kept[:1] + kept[2:])
    for a, b in zip(flushed, kept):  # the normal numbers are the same either way
        np.testing.assert_array_equal(a[20:], b[20:])


def test_flushing_changes_nothing_without_subnormals(each_kernels, flushing, rng):
    for count, update in UPDATES.values():
        arrays = _arrays(rng, count, (50,), np.float32)
        kernels.flush_denormals(True)
        flushed = _apply(update, arrays, each_kernels)
        kernels.flush_denormals(False)
        for a, b in zip(flushed, _apply(update, arrays, each_kernels)):
            np.testing.assert_array_equal(a, b)


def test_nan_is_not_flushed(each_kernels):
    param = np.array([np.nan, 1e-40, 1.0], np.float32)
    buffer = np.zeros(3, np.float32)
    kernels.momentum_update(param, buffer, np.zeros(3, np.float32), 0.9, 0.1)
    np.testing.assert_array_equal(param, [np.nan, 0.0, 1.0])


def test_flush_denormals_refuses_what_is_not_a_bool():
    with pytest.raises(TypeError, match="flush_denormals: enabled must be True or False, got 'no'"):
        kernels.flush_denormals("no")
    assert kernels.flushes_denormals()
