"""Shared fixtures: float64 for gradient checks, a seeded generator, and torch when present."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import kernels


@pytest.fixture
def float64():
    """Run the test with float64 as the default dtype (restored afterwards)."""
    previous = cr.get_default_dtype()
    cr.set_default_dtype(np.float64)
    yield
    cr.set_default_dtype(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seeded():
    cr.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _blas_given_back():
    """BLAS's threads as a fresh process has them: an op of the last test may hold them
    (``kernels.own_threads(hold=True)``), which a test reading BLAS's counts would see."""
    kernels.give_blas_back()
    yield
    kernels.give_blas_back()


@pytest.fixture(params=kernels.available())
def each_kernels(request):
    """Run the test once with each kernel implementation that can run here (NumPy, and Numba
    when the [fast] extra is installed), restoring the choice afterwards."""
    previous = kernels.active()
    kernels.use(request.param)
    yield request.param
    kernels.use(previous)
