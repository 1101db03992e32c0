"""Run functions for the runner's tests: module-level, so that spawned workers import them."""

from __future__ import annotations

import os
import time

import numpy as np


def quadratic(spec: dict, directory) -> dict:
    """value = (x − 2)² + y; raises where spec["fail_x"] == x; logs each call in the study's
    ``calls.log`` (so tests can count how often each spec ran)."""
    with open(directory.parent.parent / "calls.log", "a") as log:
        log.write(f"{spec['x']},{spec['y']}\n")
    (directory / "note.txt").write_text("ran\n")
    if spec.get("fail_x") == spec["x"]:
        raise ValueError(f"x={spec['x']} is not allowed")
    return {"value": (spec["x"] - 2) ** 2 + spec["y"], "pid": os.getpid()}


def slow(spec: dict, directory) -> dict:
    """Like :func:`quadratic`, but announces its start in ``started.log`` and takes
    ``spec["seconds"]`` to finish (or the environment's ``SLOW_RUN_SECONDS``, which a resumed
    study can change without changing its specs): long enough to be killed in the middle."""
    with open(directory.parent.parent / "started.log", "a") as log:
        log.write(f"{spec['x']}\n")
    time.sleep(float(os.environ.get("SLOW_RUN_SECONDS", spec["seconds"])))
    return quadratic(spec, directory)


def tiny_training(spec: dict, directory) -> dict:
    """A small seeded chainrule model trained for a few steps: its weights' checksum."""
    import chainrule
    from chainrule.layers import Dense
    from chainrule.models import Input, Sequential
    from chainrule.optimizers import SGD

    chainrule.manual_seed(spec["seed"])
    rng = np.random.default_rng(spec["seed"])
    x = rng.normal(size=(96, 20)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential([Input(shape=(20,)), Dense(64, activation="relu"), Dense(2)])
    model.compile(optimizer=SGD(learning_rate=spec["lr"], momentum=0.9),
                  loss=chainrule.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=16, epochs=2, seed=spec["seed"], verbose=0)
    weights = np.concatenate([p.data.ravel() for p in model.parameters()])
    return {"loss": history.history["loss"][-1], "checksum": float(np.abs(weights).sum()),
            "first": float(weights[0])}


def curve(spec: dict, directory) -> dict:
    """A learning curve that ends at ``spec["level"]``: reports value = level · (1 − 0.5^(e+1))
    for 8 epochs and stops when the pruner says so (the runner's pruning protocol)."""
    from chainrule.experiments import RunPruned, report

    value = 0.0
    for epoch in range(8):
        value = spec["level"] * (1.0 - 0.5 ** (epoch + 1))
        with open(directory / "epochs.log", "a") as log:
            log.write(f"{epoch}\n")
        if report(epoch, value):
            raise RunPruned({"value": value, "epochs": epoch + 1})
    return {"value": value, "epochs": 8}
