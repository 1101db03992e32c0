"""erf for NumPy arrays (chainrule.ops.erf), against Python's correctly rounded math.erf."""

from __future__ import annotations

import math

import numpy as np

from chainrule.ops.erf import erf_array


def test_erf_is_accurate_in_float64_and_float32():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 1.0, -1.0, 6.0, -6.0, 1e-300, -1e-8]])
    expected = np.array([math.erf(v) for v in x])
    got = erf_array(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-300)
    got32 = erf_array(x.astype(np.float32))
    assert got32.dtype == np.float32
    expected32 = np.array([math.erf(v) for v in x.astype(np.float32).astype(np.float64)])
    np.testing.assert_allclose(got32, expected32, rtol=1e-6, atol=1e-37)
    special = erf_array(np.array([np.inf, -np.inf, np.nan, 30.0]))
    np.testing.assert_array_equal(special[:2], [1.0, -1.0])
    assert np.isnan(special[2]) and special[3] == 1.0
