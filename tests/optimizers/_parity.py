"""Shared harness: train the same small MLP with a chainrule optimizer and a torch.optim one.

The model is a 2-layer tanh MLP on random regression data, ``mean((tanh(x W1 + b1) W2 + b2 −
y)²)``, written with chainrule ops and with torch ops; both start from identical float64
weights. After every step each parameter must agree to 1e-10.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr

SHAPES = {"W1": (5, 8), "b1": (8,), "W2": (8, 3), "b2": (3,)}
TOLERANCE = 1e-10


def make_weights(seed: int = 0) -> dict:
    """The data and the initial weights, float64 arrays."""
    rng = np.random.default_rng(seed)
    arrays = {name: rng.normal(0.0, 0.5, shape) for name, shape in SHAPES.items()}
    arrays["x"] = rng.normal(size=(16, 5))
    arrays["y"] = rng.normal(size=(16, 3))
    return arrays


def chainrule_params(weights: dict) -> list:
    return [cr.tensor(weights[name], dtype=np.float64, requires_grad=True) for name in SHAPES]


def chainrule_loss(params, weights):
    w1, b1, w2, b2 = params
    x = cr.tensor(weights["x"], dtype=np.float64)
    y = cr.tensor(weights["y"], dtype=np.float64)
    out = (x @ w1 + b1).tanh() @ w2 + b2
    return ((out - y) ** 2).mean()


def torch_params(torch, weights: dict) -> list:
    return [torch.tensor(weights[name], dtype=torch.float64, requires_grad=True)
            for name in SHAPES]


def torch_loss(torch, params, weights):
    w1, b1, w2, b2 = params
    x = torch.tensor(weights["x"])
    y = torch.tensor(weights["y"])
    out = torch.tanh(x @ w1 + b1) @ w2 + b2
    return ((out - y) ** 2).mean()


def compute_gradients(torch, ours, theirs, weights) -> None:
    """Fresh gradients of the loss in both frameworks."""
    for p in ours:
        p.grad = None
    chainrule_loss(ours, weights).backward()
    for p in theirs:
        p.grad = None
    torch_loss(torch, theirs, weights).backward()


def assert_same(ours, theirs, step, tolerance=TOLERANCE) -> None:
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(
            a.data, b.detach().numpy(), rtol=tolerance, atol=tolerance,
            err_msg=f"parameter {i} after step {step}",
        )


def run_parity(torch, make_ours, make_theirs, steps=50, before_step=None, seed=0):
    """Train with both optimizers for ``steps`` steps, comparing every parameter each step.

    Args:
        make_ours: ``params -> chainrule optimizer``.
        make_theirs: ``params -> torch optimizer`` or ``(optimizer, lr_scheduler)``.
        before_step: ``(step, ours, theirs) -> None``, called between backward and step (to clip
            gradients, or drop some of them).

    Returns:
        The chainrule parameters and optimizer at the end.
    """
    weights = make_weights(seed)
    ours, theirs = chainrule_params(weights), torch_params(torch, weights)
    optimizer = make_ours(ours)
    made = make_theirs(theirs)
    reference, scheduler = made if isinstance(made, tuple) else (made, None)
    for step in range(steps):
        compute_gradients(torch, ours, theirs, weights)
        if before_step is not None:
            before_step(step, ours, theirs)
        optimizer.step()
        reference.step()
        if scheduler is not None:
            scheduler.step()
        assert_same(ours, theirs, step)
    assert optimizer.iterations == steps
    return ours, optimizer


def train(make_optimizer, steps, weights=None, params=None, optimizer=None):
    """Train with a chainrule optimizer only; returns ``(params, optimizer)``."""
    weights = make_weights() if weights is None else weights
    params = chainrule_params(weights) if params is None else params
    optimizer = make_optimizer(params) if optimizer is None else optimizer
    for _ in range(steps):
        optimizer.zero_grad()
        chainrule_loss(params, weights).backward()
        optimizer.step()
    return params, optimizer


def torch_optimizer(torch, name: str, **kwargs):
    """``params -> torch.optim.<name>(params, **kwargs)``."""
    return lambda params: getattr(torch.optim, name)(params, **kwargs)
