"""Run under ``mpiexec -n 2``: data-parallel fits whose results tests/distributed/test_mpi.py
checks. ``python mpi_job.py KIND OUT.json``; rank 0 writes the results."""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np

import chainrule
from chainrule import callbacks, distributed, losses
from chainrule.layers import BatchNormalization, Dense
from chainrule.models import Input, Sequential
from chainrule.optimizers import SGD, Adam
from tests.models.helpers import KillAt, Killed


def data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    return x, y


def model(optimizer: str, batch_norm: bool, seed: int, width: int = 16):
    """A float64 MLP (weights made under a float64 default dtype)."""
    chainrule.manual_seed(seed)
    previous = chainrule.get_default_dtype()
    chainrule.set_default_dtype("float64")
    try:
        layers = [Input(shape=(6,)), Dense(width, activation="relu")]
        if batch_norm:
            layers.append(BatchNormalization())
        layers.append(Dense(2))
        net = Sequential(layers)
    finally:
        chainrule.set_default_dtype(previous)
    rule = SGD(0.1, momentum=0.9) if optimizer == "sgd" else Adam(0.01)
    net.compile(optimizer=rule, loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    return net


class Fail(callbacks.Callback):
    """Rank 1 raises (or is killed) in its second epoch."""

    def __init__(self, how):
        super().__init__()
        self.how = how

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1 and distributed.init().rank == 1:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("rank 1 fails on purpose")


def resume(out: str) -> None:
    """Kill a backed-up fit on every rank after step 7, run it again: it must end with the
    weights of an uninterrupted data-parallel fit."""
    comm = distributed.init()
    x, y = data()
    whole = model("adam", True, seed=0)
    whole.fit(x, y, batch_size=8, epochs=3, verbose=0, seed=3, distributed=True)
    folder = os.path.join(os.path.dirname(out), "backup")
    try:
        model("adam", True, seed=0).fit(
            x, y, batch_size=8, epochs=3, verbose=0, seed=3, distributed=True,
            callbacks=[callbacks.BackupAndRestore(folder, save_freq=2), KillAt(7)])
    except Killed:
        pass
    comm.barrier()
    resumed = model("adam", True, seed=5)
    backup = callbacks.BackupAndRestore(folder, save_freq=2)
    resumed.fit(x, y, batch_size=8, epochs=3, verbose=0, seed=3, distributed=True,
                callbacks=[backup])
    same = all(np.array_equal(a, b) for a, b in zip(resumed.get_weights(), whole.get_weights()))
    every_rank = comm.allgather(same)
    if comm.is_root:
        with open(out, "w") as file:
            json.dump({"restored_from": backup.restored_from, "same": every_rank}, file)


def main(kind: str, out: str) -> None:
    comm = distributed.init()
    x, y = data()
    if kind == "resume":
        resume(out)
        return
    if kind == "mismatch":
        model("sgd", False, seed=0, width=16 if comm.rank == 0 else 12).fit(
            x, y, batch_size=8, epochs=1, verbose=0, distributed=True)
        return
    if kind in ("raise", "kill"):
        model("sgd", False, seed=0).fit(x, y, batch_size=8, epochs=3, verbose=0, seed=3,
                                        distributed=True, callbacks=[Fail(kind)])
        return
    optimizer, batch_norm = kind.split("-")
    net = model(optimizer, batch_norm == "bn", seed=100 + comm.rank)  # broadcast must fix this
    history = net.fit(x, y, batch_size=8, epochs=4, verbose=0, seed=3, distributed=True,
                      validation_data=data(20, seed=1))
    weights = [w.tolist() for w in net.get_weights()]
    every_rank = comm.allgather(weights)
    if comm.is_root:
        with open(out, "w") as file:
            json.dump({"weights": weights, "same_on_every_rank": all(
                w == weights for w in every_rank), "history": history.history,
                "size": comm.size, "steps": net.optimizer.iterations}, file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
