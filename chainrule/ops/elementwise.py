"""Elementwise ops: arithmetic, the usual unary functions, and comparisons.

Binary ops broadcast as NumPy does; the engine sums each gradient back to its input's shape.
"""

from __future__ import annotations

import numpy as np

from chainrule import backend
from chainrule._config import flags
from chainrule.autograd.function import Function, constant
from chainrule.ops._util import as_tensor, binary_operands
from chainrule.tensor import Tensor

# -- binary arithmetic -----------------------------------------------------------------------


class Add(Function):
    """y = a + b;  ∂y/∂a = ∂y/∂b = 1."""

    saved_inputs = ()

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    """y = a − b;  ∂y/∂a = 1, ∂y/∂b = −1."""

    saved_inputs = ()

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, (-gy if self.inputs[1].requires_grad else None)


class Mul(Function):
    """y = a · b;  ∂y/∂a = b, ∂y/∂b = a.

    Under ``create_graph`` the two products are recorded; an ordinary backward computes them on
    the arrays (the same products, no graph node for each: a quarter of a tiny graph's
    backward)."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        if not flags.grad_enabled:
            return (constant(gy.data * b.data) if a.requires_grad else None,
                    constant(gy.data * a.data) if b.requires_grad else None)
        return (gy * b if a.requires_grad else None), (gy * a if b.requires_grad else None)


class Div(Function):
    """y = a / b;  ∂y/∂a = 1/b, ∂y/∂b = −a/b²."""

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = gy / b
        gb = -ga * a / b if b.requires_grad else None
        return (ga if a.requires_grad else None), gb


class Pow(Function):
    """y = a ** b;  ∂y/∂a = b·a^(b−1), ∂y/∂b = y·log a."""

    keeps_output = True

    def forward(self, a, b):
        return a**b

    def backward(self, gy):
        a, b = self.inputs
        ga = gy * b * a ** (b - 1) if a.requires_grad else None
        gb = gy * self.output() * log(a) if b.requires_grad else None
        return ga, gb


class PowConstant(Function):
    """y = x ** p for a constant p;  dy/dx = p·x^(p−1)."""

    def __init__(self, p):
        self.p = p

    def forward(self, x):
        return x**self.p

    def backward(self, gy):
        (x,) = self.inputs
        p = self.p
        if p == 2:
            return (gy * (2 * x),)
        return (gy * (p * x ** (p - 1)),)


class Maximum(Function):
    """y = max(a, b);  the gradient goes to the larger input, split in half on ties."""

    saved_inputs = ()

    def forward(self, a, b):
        self.to_a = (a > b) + 0.5 * (a == b)
        return np.maximum(a, b)

    def backward(self, gy):
        to_a = Tensor(self.to_a.astype(gy.dtype))
        return gy * to_a, gy * (1 - to_a)


class Minimum(Function):
    """y = min(a, b);  the gradient goes to the smaller input, split in half on ties."""

    saved_inputs = ()

    def forward(self, a, b):
        self.to_a = (a < b) + 0.5 * (a == b)
        return np.minimum(a, b)

    def backward(self, gy):
        to_a = Tensor(self.to_a.astype(gy.dtype))
        return gy * to_a, gy * (1 - to_a)


class Where(Function):
    """y = condition ? a : b;  the gradient flows to whichever input was chosen.

    The condition is the first input (boolean, no gradient), so a traced function reads each
    call's condition.
    """

    saved_inputs = ()

    def forward(self, condition, a, b):
        self.condition = condition
        return backend.get_array_module(a).where(condition, a, b)

    def backward(self, gy):
        chosen = Tensor(self.condition.astype(gy.dtype))
        return None, gy * chosen, gy * (1 - chosen)


class Compare(Function):
    """A NumPy comparison (``np.greater``, ...): a boolean result with no gradient. An op, so
    that a traced function (``chainrule.jit``) compares each call's values."""

    saved_inputs = ()
    has_gradient = False

    def __init__(self, ufunc):
        self.ufunc_name = ufunc.__name__

    def forward(self, a, b):
        return getattr(backend.get_array_module(a), self.ufunc_name)(a, b)


# -- unary ---------------------------------------------------------------------------------------


class Neg(Function):
    """y = −x."""

    saved_inputs = ()

    def forward(self, x):
        return -x

    def backward(self, gy):
        return (-gy,)


class Exp(Function):
    """y = eˣ;  dy/dx = y."""

    keeps_output = True
    saved_inputs = ()

    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, gy):
        return (gy * self.output(),)


class Log(Function):
    """y = ln x;  dy/dx = 1/x."""

    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return (gy / self.inputs[0],)


class Sqrt(Function):
    """y = √x;  dy/dx = 1 / (2y)."""

    keeps_output = True
    saved_inputs = ()

    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy):
        return (gy / (2 * self.output()),)


class Abs(Function):
    """y = |x|;  dy/dx = sign(x) (0 at 0, as in PyTorch)."""

    def forward(self, x):
        return backend.get_array_module(x).abs(x)

    def backward(self, gy):
        x = self.inputs[0].data
        return (gy * Tensor(backend.get_array_module(x).sign(x)),)


class Tanh(Function):
    """y = tanh x;  dy/dx = 1 − y²."""

    keeps_output = True
    saved_inputs = ()

    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return (gy * (1 - y * y),)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ);  dy/dx = y(1 − y). Computed as ½(1 + tanh(x/2)): no overflow."""

    keeps_output = True
    saved_inputs = ()

    def forward(self, x):
        xp = backend.get_array_module(x)
        y = xp.tanh(x * 0.5)
        y += 1
        y *= 0.5
        return y

    def backward(self, gy):
        y = self.output()
        return (gy * (y * (1 - y)),)


class ReLU(Function):
    """y = max(0, x);  dy/dx = 1 where x > 0, else 0 (the mask is read off the output)."""

    keeps_output = True
    saved_inputs = ()

    def forward(self, x):
        return backend.get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        return (relu_gradient(gy, self.saved_output()),)


def relu_gradient(gy, y):
    """∂L/∂x = G ⊙ [y > 0] for y = max(0, x), read off the output ``y`` (an array).

    Recorded (a product with a constant mask) under ``create_graph``, else computed on raw
    arrays. Shared by :class:`ReLU` and the ops that fuse a ReLU (Linear, Conv2d).
    """
    if flags.grad_enabled:
        return gy * Tensor(y > 0)
    return constant(gy.data * (y > 0))


class Clip(Function):
    """y = min(max(x, lo), hi);  dy/dx = 1 where lo ≤ x ≤ hi (PyTorch's clamp), else 0."""

    saved_inputs = ()

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        inside = np.ones(x.shape, dtype=bool) if x.ndim else np.bool_(True)
        if self.lo is not None:
            inside = inside & (x >= self.lo)
        if self.hi is not None:
            inside = inside & (x <= self.hi)
        self.inside = backend.get_array_module(x).asarray(inside)
        return backend.get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy):
        return (gy * Tensor(self.inside),)


class AsType(Function):
    """y = x converted to another floating dtype; the gradient converts back."""

    saved_inputs = ()

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.source_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return (astype(gy, self.source_dtype),)


class ToDevice(Function):
    """y = x moved to another device; the gradient moves back."""

    saved_inputs = ()

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.source_device = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return (to_device(gy, self.source_device),)


# -- functions -----------------------------------------------------------------------------------


def add(a, b) -> Tensor:
    """a + b, broadcasting."""
    return Add()(*binary_operands(a, b))


def sub(a, b) -> Tensor:
    """a − b, broadcasting."""
    return Sub()(*binary_operands(a, b))


def mul(a, b) -> Tensor:
    """a · b elementwise, broadcasting."""
    return Mul()(*binary_operands(a, b))


def div(a, b) -> Tensor:
    """a / b elementwise, broadcasting."""
    return Div()(*binary_operands(a, b))


def pow(a, b) -> Tensor:  # noqa: A001 - the operator's name
    """a ** b; a constant number exponent records the cheaper :class:`PowConstant`."""
    if isinstance(a, Tensor) and isinstance(b, (int, float)):
        return PowConstant(b)(a)
    return Pow()(*binary_operands(a, b))


def neg(x) -> Tensor:
    return Neg()(as_tensor(x))


def exp(x) -> Tensor:
    """eˣ elementwise."""
    return Exp()(as_tensor(x))


def log(x) -> Tensor:
    """Natural logarithm elementwise."""
    return Log()(as_tensor(x))


def sqrt(x) -> Tensor:
    """√x elementwise."""
    return Sqrt()(as_tensor(x))


def abs(x) -> Tensor:  # noqa: A001 - NumPy's name
    """|x| elementwise; the gradient at 0 is 0."""
    return Abs()(as_tensor(x))


def tanh(x) -> Tensor:
    """Hyperbolic tangent elementwise."""
    return Tanh()(as_tensor(x))


def sigmoid(x) -> Tensor:
    """Logistic sigmoid 1 / (1 + e⁻ˣ) elementwise."""
    return Sigmoid()(as_tensor(x))


def relu(x) -> Tensor:
    """max(0, x) elementwise; the gradient at 0 is 0 (as in PyTorch)."""
    return ReLU()(as_tensor(x))


def maximum(a, b) -> Tensor:
    """Elementwise maximum; on ties each input gets half the gradient (as PyTorch)."""
    return Maximum()(*binary_operands(a, b))


def minimum(a, b) -> Tensor:
    """Elementwise minimum; on ties each input gets half the gradient (as PyTorch)."""
    return Minimum()(*binary_operands(a, b))


def where(condition, a, b) -> Tensor:
    """Elementwise ``a`` where ``condition`` is true, else ``b`` (no gradient to ``condition``)."""
    a, b = binary_operands(a, b)
    if not (isinstance(condition, Tensor) and condition.dtype == bool):
        data = condition.data if isinstance(condition, Tensor) else condition
        condition = Tensor(backend.get_array_module(a.data).asarray(data, dtype=bool))
    return Where()(condition, a, b)


def clip(x, min=None, max=None) -> Tensor:  # noqa: A002 - NumPy's argument names
    """Limit values to [min, max]; the gradient passes where min ≤ x ≤ max."""
    if min is None and max is None:
        raise ValueError("clip: give min, max or both")
    return Clip(min, max)(as_tensor(x))


def astype(x, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (differentiable between floating dtypes)."""
    x = as_tensor(x)
    if x.data.dtype == np.dtype(dtype):
        return x
    return AsType(dtype)(x)


def to_device(x, device) -> Tensor:
    """``x`` on ``device`` ("cpu" or "cuda"), differentiable across the transfer."""
    return ToDevice(backend.normalize_device(device))(as_tensor(x))


def compare(ufunc, a, b) -> Tensor:
    """A boolean Tensor from a NumPy comparison ufunc (an op with no gradient)."""
    a, b = binary_operands(a, b)
    return Compare(ufunc)(a, b)
