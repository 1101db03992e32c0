"""erf for NumPy arrays: NumPy has no erf, and SciPy is not a dependency.

erf is evaluated from two Chebyshev series fitted once, at import, to Python's correctly rounded
``math.erf``/``math.erfc`` (relative error below 1e-14 in float64; float32 input is evaluated in
float32)::

    |x| < 1:       erf(x)  = x · f(x²),            f(t) = erf(√t)/√t on t ∈ [0, 1]
    1 ≤ |x| < 6:   erfc(|x|) = e^(−x²) · h(1/|x|),  h(s) = erfc(1/s)·e^(1/s²) on s ∈ [1/6, 1]
    |x| ≥ 6:       erf(x) = ±1 (erfc(6) ≈ 2e−17)

On CuPy arrays, CuPy's own ``cupyx.scipy.special.erf`` is used. The GELU op
(:mod:`chainrule.ops.nn`) is its user.
"""

from __future__ import annotations

import math

import numpy as np

from chainrule import backend


def _chebyshev_fit(function, lo: float, hi: float, degree: int) -> np.ndarray:
    """Chebyshev coefficients of ``function`` on [lo, hi], interpolated at Chebyshev nodes."""
    nodes = np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))
    values = [function((lo + hi) / 2 + (hi - lo) / 2 * t) for t in nodes]
    return np.polynomial.chebyshev.chebfit(nodes, values, degree)


def _clenshaw(coefficients, t):
    """Σ c_k T_k(t) by Clenshaw's recurrence, in t's dtype."""
    coefficients = coefficients.astype(t.dtype)
    b1 = np.zeros_like(t)
    b2 = np.zeros_like(t)
    two_t = t + t
    for c in coefficients[:0:-1]:
        b0 = two_t * b1
        b0 -= b2
        b0 += c
        b1, b2 = b0, b1
    result = t * b1
    result -= b2
    result += coefficients[0]
    return result


_ERF_SMALL = _chebyshev_fit(
    lambda t: math.erf(math.sqrt(t)) / math.sqrt(t) if t > 0 else 2 / math.sqrt(math.pi),
    0.0, 1.0, 12)
_ERFC_LARGE = _chebyshev_fit(lambda s: math.erfc(1 / s) * math.exp(1 / (s * s)), 1 / 6, 1.0, 22)


def erf_array(x):
    """erf of a floating array, elementwise (see the module docstring for the method)."""
    xp = backend.get_array_module(x)
    if xp is not np:  # CuPy ships erf
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    magnitude = np.abs(x)
    y = np.sign(x)  # ±1 for |x| ≥ 6, 0 at 0, NaN at NaN
    small = magnitude < 1
    if small.any():
        xs = x[small]
        y[small] = xs * _clenshaw(_ERF_SMALL, xs * xs * 2 - 1)
    middle = (magnitude >= 1) & (magnitude < 6)
    if middle.any():
        a = magnitude[middle]
        s = 1 / a
        t = (s - (1 + 1 / 6) / 2) * (2 / (1 - 1 / 6))
        erfc = np.exp(-(a * a)) * _clenshaw(_ERFC_LARGE, t)
        y[middle] = np.copysign(1 - erfc, x[middle])
    return y
