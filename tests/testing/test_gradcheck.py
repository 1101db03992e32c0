"""gradcheck itself must catch a wrong gradient and say where."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import Function
from chainrule.testing import GradcheckError


class WrongSquare(Function):
    """y = x² with a deliberately wrong gradient 3x (the check must catch it)."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return (gy * 3 * self.inputs[0],)


def test_passes_on_correct_gradients():
    x = cr.tensor(np.array([0.3, -1.2]), dtype="float64", requires_grad=True)
    assert cr.gradcheck(lambda t: (t * t).exp().sum(), [x])


def test_catches_a_wrong_gradient_and_reports_the_element():
    x = cr.tensor(np.array([0.5, 2.0]), dtype="float64", requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 of shape \(2,\).*numerical.*backprop"):
        cr.gradcheck(lambda t: WrongSquare()(t), [x])
    assert cr.gradcheck(lambda t: WrongSquare()(t), [x], raise_exception=False) is False


def test_warns_on_float32():
    x = cr.tensor([0.5], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cr.gradcheck(lambda t: t * 2, [x], atol=1e-2, rtol=1e-2)
    assert any("float64" in str(w.message) for w in caught)


def test_checks_multiple_outputs_and_skips_constant_inputs():
    a = cr.tensor(np.array([0.3, 0.4]), dtype="float64", requires_grad=True)
    c = cr.tensor(np.array([1.0, 2.0]), dtype="float64")
    assert cr.gradcheck(lambda x, k: (x * k, x.tanh()), [a, c])


def test_requires_some_input_with_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        cr.gradcheck(lambda t: t, [cr.tensor([1.0], dtype="float64")])
