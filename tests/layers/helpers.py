"""Shared checks for layer tests: float64 gradient checks and PyTorch parity."""

from __future__ import annotations

import numpy as np

import chainrule as cr


def gradcheck_layer(layer, *inputs, atol=1e-5, rtol=1e-3):
    """Check the gradients of ``layer``'s output w.r.t. its inputs and all its parameters."""
    layer(*inputs)  # build
    n = len(inputs)
    return cr.gradcheck(lambda *ts: layer(*ts[:n]), [*inputs, *layer.parameters()],
                        atol=atol, rtol=rtol)


def assert_torch_parity(layer, torch_forward, x, weight_pairs=(), rtol=1e-9, atol=1e-10,
                        seed=0):
    """Same input and weights → same output and same gradients as PyTorch (float64).

    Args:
        layer: a chainrule layer, built, with its weights already copied from PyTorch.
        torch_forward: the PyTorch computation, a function of the torch input.
        x: the input as a NumPy array (float64, or integers for ids).
        weight_pairs: ``(chainrule weight, torch tensor, to_ours)`` triples; ``to_ours`` maps a
            torch gradient to chainrule's layout (e.g. a transpose), or None.
    """
    torch = _torch()
    floating = np.asarray(x).dtype.kind == "f"
    cx = cr.tensor(x, requires_grad=floating)
    tx = torch.tensor(x, requires_grad=floating)
    y, ty = layer(cx), torch_forward(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=rtol, atol=atol)
    upstream = np.random.default_rng(seed).standard_normal(ty.shape)
    (y * cr.tensor(upstream, dtype=y.dtype)).sum().backward()
    (ty * torch.tensor(upstream, dtype=ty.dtype)).sum().backward()
    if floating:
        np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol)
    for ours, theirs, to_ours in weight_pairs:
        expected = theirs.grad.numpy()
        expected = expected if to_ours is None else to_ours(expected)
        np.testing.assert_allclose(ours.grad.numpy(), expected, rtol=rtol, atol=atol)


def torch_param(array):
    """A float64 torch leaf with the given values."""
    torch = _torch()
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def _torch():
    import torch

    return torch
