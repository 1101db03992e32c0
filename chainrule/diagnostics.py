"""The lectures' sanity checks: what to verify about a classifier before training it for real.

:func:`sanity_check` runs each check on copies of the model (the model itself is not changed)
and returns a :class:`SanityReport`, one pass/fail line per check with the measured number:

=======================  ====================================================================
``initial loss``         with regularisation off, the untrained loss is about ln C (C
                         classes): the outputs are near uniform. Pass: within
                         :data:`INITIAL_LOSS_TOLERANCE` (relative) of ln C
``L2 raises the loss``   adding an L2 penalty λ Σ‖W‖² (λ = :data:`L2_STRENGTH`) to every
                         kernel makes the loss larger. Pass: it rises
``overfit 20 samples``   trained on 20 samples alone, the model reaches 100 % training
                         accuracy within :data:`OVERFIT_STEPS` full-batch steps
``gradient check``       float64 backprop against central differences, on
                         :data:`GRADCHECK_ENTRIES` random entries of every parameter, for 3
                         samples. Pass: every relative error below :data:`GRADCHECK_TOLERANCE`
``update / weight``      after a few steps, ‖Δθ‖ / ‖θ‖ of the last step per kernel: about 1e-3
                         is healthy. Pass: every kernel in [:data:`RATIO_LOW`,
                         :data:`RATIO_HIGH`]
``dead ReLUs``           the fraction of ReLU units (Dense) or channels (Conv2D) that output 0
                         for every one of up to 256 samples. Pass: below :data:`DEAD_LIMIT`
=======================  ====================================================================

The model must be a compiled classifier (the loss takes integer labels or one-hot targets)
built as a :class:`~chainrule.models.Sequential` (the dead-ReLU check walks its layers).

>>> report = sanity_check(model, x_train, y_train)          # doctest: +SKIP
>>> print(report)                                           # doctest: +SKIP
>>> report.passed                                           # doctest: +SKIP
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import chainrule
from chainrule import optimizers
from chainrule.layers import Conv2D, Dense
from chainrule.tensor import Tensor

INITIAL_LOSS_TOLERANCE = 0.25
L2_STRENGTH = 1e-2
OVERFIT_SAMPLES = 20
OVERFIT_STEPS = 300
GRADCHECK_ENTRIES = 5
GRADCHECK_TOLERANCE = 1e-4
#: The noise added to the inputs of the gradient check, so that no unit sits on a kink.
KINK_NOISE = 1e-2
#: One-sided differences further apart than this (relative) mean a kink within the step. A
#: smooth loss's differ by about ε·|L''| / |L'|, around 1e-5 here.
KINK_TOLERANCE = 1e-2
RATIO_STEPS = 5
RATIO_LOW, RATIO_HIGH = 1e-5, 1e-1
DEAD_LIMIT = 0.5


@dataclass
class Check:
    """One line of the report: the check's name, whether it passed, what was measured and
    what was expected."""

    name: str
    passed: bool
    measured: str
    expected: str


@dataclass
class SanityReport:
    """The checks in order; ``passed`` when all passed; ``str()`` is the printed table."""

    checks: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def __str__(self) -> str:
        width = max(len(check.name) for check in self.checks)
        lines = [f"{'check':<{width}}  result  measured  (expected)"]
        for check in self.checks:
            verdict = "pass" if check.passed else "FAIL"
            lines.append(f"{check.name:<{width}}  {verdict:<6}  {check.measured}  "
                         f"({check.expected})")
        return "\n".join(lines)


def sanity_check(model, x, y, seed: int = 0) -> SanityReport:
    """Run the lectures' checks (module docstring) on copies of the compiled ``model`` with
    data ``x``, ``y`` (at least 20 samples); return the report."""
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise ValueError("sanity_check: compile the model first (it needs its loss and "
                         "optimizer)")
    x, y = np.asarray(x), np.asarray(y)
    if len(x) < OVERFIT_SAMPLES or len(x) != len(y):
        raise ValueError(f"sanity_check: x and y need the same length, at least "
                         f"{OVERFIT_SAMPLES} samples; got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    batch = rng.permutation(len(x))[:256]
    x, y = x[batch].astype(chainrule.get_default_dtype(), copy=False), y[batch]
    checks = [_initial_loss(model, x, y), _l2_raises_loss(model, x, y),
              _overfits(model, x[:OVERFIT_SAMPLES], y[:OVERFIT_SAMPLES]),
              _gradient_check(model, x[:3], y[:3], rng), _update_ratio(model, x[:64], y[:64]),
              _dead_relus(model, x)]
    return SanityReport(checks)


# -- helpers --------------------------------------------------------------------------------


def _copy(model, dtype=None):
    """A compiled copy of ``model`` (:func:`~chainrule.models.averaging.copy_model`), built in
    ``dtype`` when given, with a fresh optimizer of the same configuration."""
    from chainrule.models.averaging import copy_model

    fresh = optimizers.get({"class_name": type(model.optimizer).__name__,
                            "config": model.optimizer.get_config()})
    previous = chainrule.get_default_dtype()
    chainrule.set_default_dtype(dtype or previous)
    try:
        return copy_model(model, "sanity_check", optimizer=fresh)
    finally:
        chainrule.set_default_dtype(previous)


def _data_loss(model, x, y) -> float:
    """The loss without regularisation, in evaluation mode, no graph."""
    model.eval()
    with chainrule.no_grad():
        return float(model.loss(Tensor(y), model(Tensor(x))).item())


def _classes(model) -> int:
    return int(model.output_shape[-1])


def _kernels(model) -> list:
    return [layer.kernel for layer in model.modules() if isinstance(layer, (Dense, Conv2D))]


# -- the checks -------------------------------------------------------------------------------


def _initial_loss(model, x, y) -> Check:
    """ln C is the loss of uniform outputs: −ln(1/C)."""
    twin = _copy(model)
    loss, expected = _data_loss(twin, x, y), math.log(_classes(model))
    passed = abs(loss - expected) <= INITIAL_LOSS_TOLERANCE * expected
    return Check("initial loss", passed, f"{loss:.4f}",
                 f"ln {_classes(model)} = {expected:.4f} ± {INITIAL_LOSS_TOLERANCE:.0%}")


def _l2_raises_loss(model, x, y) -> Check:
    """loss + λ Σ‖W‖² > loss for any non-zero kernel."""
    twin = _copy(model)
    loss = _data_loss(twin, x, y)
    penalty = L2_STRENGTH * sum(float(np.sum(k.data.astype(np.float64) ** 2))
                                for k in _kernels(twin))
    return Check("L2 raises the loss", penalty > 0, f"{loss:.4f} -> {loss + penalty:.4f}",
                 f"higher with λ = {L2_STRENGTH:g}")


def _accuracy(model, x, y) -> float:
    model.eval()
    with chainrule.no_grad():
        scores = model(Tensor(x)).numpy()
    labels = y.argmax(axis=-1) if y.ndim > 1 else y
    return float(np.mean(scores.argmax(axis=-1) == labels))


def _overfits(model, x, y) -> Check:
    """Full-batch steps on 20 samples until every one is classified right."""
    twin = _copy(model)
    for step in range(1, OVERFIT_STEPS + 1):
        twin.train_on_batch(x, y)
        if step % 10 == 0 and _accuracy(twin, x, y) == 1.0:
            return Check("overfit 20 samples", True, f"100% after {step} steps",
                         f"100% within {OVERFIT_STEPS} steps")
    accuracy = _accuracy(twin, x, y)
    return Check("overfit 20 samples", accuracy == 1.0, f"{accuracy:.0%} after "
                 f"{OVERFIT_STEPS} steps", f"100% within {OVERFIT_STEPS} steps")


def _gradient_check(model, x, y, rng) -> Check:
    """Backprop against central differences (step 1e-6) on a few entries of each parameter,
    in float64 and evaluation mode (no dropout masks; batch norm on its statistics).

    Central differences are wrong across a kink (a ReLU's input crossing 0, a max-pooling
    window changing its maximum), and images with a zero background and zero-initialised
    biases put many units at one: nudging the first convolution's bias moves every background
    unit, and some cross (the check used to report a relative error of 1.0 on Fashion-MNIST's
    CNN). So, as the lectures advise, the inputs get a little noise (σ = 0.01), which moves the
    units off the kink itself, and an entry whose one-sided differences disagree (a kink within
    ±ε) is not compared, and is counted in the result."""
    twin = _copy(model, np.float64)
    twin.eval()
    x64 = x.astype(np.float64)
    if np.issubdtype(x64.dtype, np.floating):
        x64 = x64 + KINK_NOISE * rng.standard_normal(x64.shape)
    x64 = Tensor(x64)

    def loss() -> Tensor:
        return twin.loss(Tensor(y), twin(x64))

    parameters = twin.parameters()
    for parameter in parameters:
        parameter.grad = None
    loss().backward()
    worst, at_kinks = 0.0, 0
    for parameter in parameters:
        flat = parameter.data.reshape(-1)
        analytic = parameter.grad.numpy().reshape(-1)
        for j in rng.choice(flat.size, size=min(GRADCHECK_ENTRIES, flat.size), replace=False):
            numeric = _central_difference(loss, flat, j)
            if numeric is None:
                at_kinks += 1
                continue
            error = abs(analytic[j] - numeric) / max(abs(analytic[j]) + abs(numeric), 1e-8)
            worst = max(worst, error)
    skipped = f" ({at_kinks} entries at a kink not compared)" if at_kinks else ""
    return Check("gradient check", worst < GRADCHECK_TOLERANCE, f"max relative error "
                 f"{worst:.1e}{skipped}", f"< {GRADCHECK_TOLERANCE:g}, float64")


def _central_difference(loss, flat: np.ndarray, j: int, eps: float = 1e-6) -> float | None:
    """(L(θ + ε) − L(θ − ε)) / 2ε for entry ``j`` of ``flat`` (a view of a parameter), or None
    when the one-sided differences (L(θ ± ε) − L(θ)) / ±ε disagree beyond rounding: the loss
    has a kink within ±ε there, and no difference quotient stands for the gradient."""
    original = flat[j]
    with chainrule.no_grad():
        centre = float(loss().item())
        flat[j] = original + eps
        plus = float(loss().item())
        flat[j] = original - eps
        minus = float(loss().item())
    flat[j] = original
    forward, backward = (plus - centre) / eps, (centre - minus) / eps
    rounding = 8 * np.finfo(np.float64).eps * max(abs(centre), 1.0) / eps
    if abs(forward - backward) > KINK_TOLERANCE * (abs(forward) + abs(backward)) + rounding:
        return None
    return (plus - minus) / (2 * eps)


def _update_ratio(model, x, y) -> Check:
    """‖θ_after − θ_before‖ / ‖θ_before‖ of the last of a few steps, per kernel."""
    twin = _copy(model)
    kernels = _kernels(twin)
    for _ in range(RATIO_STEPS - 1):
        twin.train_on_batch(x, y)
    before = [k.data.copy() for k in kernels]
    twin.train_on_batch(x, y)
    ratios = [float(np.linalg.norm(k.data - b) / max(np.linalg.norm(b), 1e-12))
              for k, b in zip(kernels, before)]
    passed = all(RATIO_LOW <= r <= RATIO_HIGH for r in ratios)
    return Check("update / weight", passed, "per kernel " + ", ".join(f"{r:.1e}"
                                                                     for r in ratios),
                 f"about 1e-3; each in [{RATIO_LOW:g}, {RATIO_HIGH:g}]")


def _dead_relus(model, x) -> Check:
    """Units (channels) of ReLU layers that output 0 for every sample, walking the layers."""
    layers = getattr(model, "layers", None)
    if layers is None:
        return Check("dead ReLUs", True, "n/a (not a Sequential)", f"< {DEAD_LIMIT:.0%}")
    model.eval()
    dead = total = 0
    h = Tensor(x)
    with chainrule.no_grad():
        for layer in layers:
            h = layer(h)
            if isinstance(layer, (Dense, Conv2D)) and layer.activation is chainrule.functional.relu:
                alive = (h.numpy() > 0).any(axis=tuple(a for a in range(h.ndim) if a != 1))
                dead += int((~alive).sum())
                total += alive.size
    if total == 0:
        return Check("dead ReLUs", True, "no ReLU layer", f"< {DEAD_LIMIT:.0%}")
    fraction = dead / total
    return Check("dead ReLUs", fraction < DEAD_LIMIT, f"{fraction:.1%} ({dead} of {total})",
                 f"< {DEAD_LIMIT:.0%}")


__all__ = ["Check", "SanityReport", "sanity_check"]
