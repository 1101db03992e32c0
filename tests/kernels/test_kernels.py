"""chainrule.kernels: every kernel that can run here gives the reference's results (float32 bit
for bit), NaN handling, the fall-backs, and how the implementation is chosen."""

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


@pytest.mark.parametrize("pool", [(2, 2), (3, 3), (2, 3), (1, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_tiles_matches_a_direct_computation(each_kernels, pool, dtype, rng):
    kh, kw = pool
    planes = rng.standard_normal((5, 3 * kh, 4 * kw)).astype(dtype)
    planes[0, :kh, :kw] = 1.0  # a window of ties: the first (row-major) maximum wins
    module = kernels.select(planes)
    best, index = module.max_pool_tiles(planes, kh, kw, True)
    windows = planes.reshape(5, 3, kh, 4, kw).transpose(0, 1, 3, 2, 4).reshape(5, 3, 4, -1)
    np.testing.assert_array_equal(best, windows.max(axis=-1))
    gy = rng.standard_normal(best.shape).astype(dtype)
    gx = module.max_pool_tiles_backward(gy, index, kh, kw)
    routed = np.zeros_like(windows)
    np.put_along_axis(routed, windows.argmax(axis=-1)[..., None], gy[..., None], axis=-1)
    expected = routed.reshape(5, 3, 4, kh, kw).transpose(0, 1, 3, 2, 4).reshape(planes.shape)
    np.testing.assert_array_equal(gx, expected)
    assert gx[0, 0, 0] == gy[0, 0, 0] and not gx[0, :kh, :kw].ravel()[1:].any()


def test_max_pool_tiles_propagates_nan(each_kernels):
    planes = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    planes[0, 0, 1] = np.nan
    planes[1, 3, 3] = np.nan
    best, _ = kernels.select(planes).max_pool_tiles(planes, 2, 2, False)
    assert np.isnan(best[0, 0, 0]) and np.isnan(best[1, 1, 1])
    assert np.isnan(best).sum() == 2


def test_max_pool_tiles_without_tracking_returns_no_index(each_kernels, rng):
    planes = rng.standard_normal((2, 4, 4)).astype(np.float32)
    assert kernels.select(planes).max_pool_tiles(planes, 2, 2, False)[1] is None


def test_choosing_the_implementation():
    previous = kernels.active()
    try:
        kernels.use("numpy")
        assert kernels.active() == "numpy"
        assert kernels.select(np.zeros(3)) is reference
        kernels.use("auto")
        assert kernels.active() == kernels.available()[-1]
        with pytest.raises(ValueError, match="expected one of"):
            kernels.use("fortran")
    finally:
        kernels.use(previous)


def test_without_numba_asking_for_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(kernels, "_active", kernels._active)  # both restored afterwards
    monkeypatch.setattr(kernels, "_chosen", kernels._chosen)
    monkeypatch.setattr(kernels, "available", lambda: ("numpy",))
    with pytest.raises(ImportError, match=r"chainrule\[fast\]"):
        kernels.use("numba")
    kernels.use("auto")
    assert kernels.active() == "numpy"


def test_the_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setattr(kernels, "_active", None)
    monkeypatch.setattr(kernels, "_chosen", kernels._chosen)
    monkeypatch.setenv("CHAINRULE_KERNELS", "numpy")
    assert kernels.active() == "numpy"


def test_arrays_numba_cannot_take_get_the_reference(monkeypatch):
    class NotNumPy(np.ndarray):  # stands in for a CuPy array: not exactly np.ndarray
        pass

    previous = kernels.active()
    try:
        kernels.use(kernels.available()[-1])
        assert kernels.select(np.zeros(3).view(NotNumPy)) is reference
    finally:
        kernels.use(previous)
