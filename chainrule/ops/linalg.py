"""Matrix products."""

from __future__ import annotations

from chainrule import kernels
from chainrule.autograd.function import Function
from chainrule.ops._util import binary_operands
from chainrule.ops.shape import reshape, swapaxes
from chainrule.tensor import Tensor


class MatMul(Function):
    """Y = A @ B (batched over leading axes);  ∂L/∂A = G @ Bᵀ, ∂L/∂B = Aᵀ @ G.

    Both operands have at least 2 dimensions here; :func:`matmul` handles vectors. Broadcast
    batch axes are summed back by the engine.
    """

    def forward(self, a, b):
        if a.ndim == 2 and b.ndim == 2:  # on the threads that are free (see kernels.product)
            return kernels.product(a, b)
        kernels.blas_for(a.size * b.shape[-1])
        return a @ b

    def backward(self, gy):
        a, b = self.inputs
        ga = matmul(gy, swapaxes(b, -1, -2)) if a.requires_grad else None
        gb = matmul(swapaxes(a, -1, -2), gy) if b.requires_grad else None
        return ga, gb


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules for vectors and batches."""
    a, b = binary_operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: scalars are not allowed (shapes {a.shape} and {b.shape})")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not match "
            f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})"
        )
    vector_a, vector_b = a.ndim == 1, b.ndim == 1
    if vector_a:
        a = reshape(a, (1, a.shape[0]))
    if vector_b:
        b = reshape(b, (b.shape[0], 1))
    y = MatMul()(a, b)
    if vector_a and vector_b:
        return reshape(y, y.shape[:-2])
    if vector_a:
        return reshape(y, y.shape[:-2] + y.shape[-1:])
    if vector_b:
        return reshape(y, y.shape[:-1])
    return y
