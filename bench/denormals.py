"""Batch-size-1 training and subnormal numbers: steps/s over a long run, flushing on and off.

    python bench/denormals.py                 # 5,000 steps each, chainrule and PyTorch
    python bench/denormals.py --steps 2000 --no-torch

The MLP of bench/mlp.py (784-256-128-10, ReLU, SGD learning rate 0.05, momentum 0.9) trains on
Fashion-MNIST one sample per step, through ``model.fit`` as users run it. A momentum buffer
entry whose gradient is exactly 0 (a pixel that is black in sample after sample) decays by 0.9 a
step, into the subnormal range below 1.2e-38 where x86 arithmetic is 10 to 100 times slower.
Four runs from the same weights over the same samples: chainrule with its update kernels
flushing subnormal results to zero (the default, :func:`chainrule.kernels.flush_denormals`) and
without, and PyTorch with and without ``torch.set_flush_denormal(True)``. For every window of
``--window`` steps it prints each run's steps/s and the share of the optimizer state's entries
that are subnormal at the window's end; then the median steps/s over the windows.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common as common  # puts the repository root on sys.path
import mlp
import numpy as np

from chainrule import kernels


def subnormal_share(arrays) -> float:
    """The fraction of the entries of ``arrays`` with 0 < |x| < the dtype's smallest normal."""
    count = total = 0
    for a in arrays:
        magnitude = np.abs(a)
        count += int(np.count_nonzero((magnitude > 0) & (magnitude < np.finfo(a.dtype).tiny)))
        total += a.size
    return count / total


class Chainrule:
    """bench/mlp.py's chainrule MLP, trained a window at a time; ``flush`` sets the switch."""

    def __init__(self, weights, flush: bool):
        self.net, self.flush = mlp.ChainruleMLP(weights), flush

    def train(self, x, y) -> None:
        previous = kernels.flush_denormals(self.flush)
        try:
            self.net.train(x, y, 1)
        finally:
            kernels.flush_denormals(previous)

    def state(self):
        optimizer = self.net.model.optimizer
        return [buffer for state in optimizer.state.values() for buffer in state.values()]


class Torch:
    """bench/mlp.py's PyTorch MLP; ``flush`` sets ``torch.set_flush_denormal`` while it trains
    (the processor's flush-to-zero and denormals-are-zero modes)."""

    def __init__(self, weights, flush: bool):
        self.net, self.flush = mlp.TorchMLP(weights), flush

    def train(self, x, y) -> None:
        torch = self.net.torch
        torch.set_flush_denormal(self.flush)
        try:
            self.net.train(x, y, 1)
        finally:
            torch.set_flush_denormal(False)

    def state(self):
        optimizer = self.net.optimizer
        return [s["momentum_buffer"].numpy() for s in optimizer.state.values()]


def run(trainers: dict, x, y, window: int) -> dict[str, list[tuple[float, float]]]:
    """For each trainer, (steps/s, subnormal share of its state at the window's end) of each
    window of ``window`` steps; the trainers take turns, window after window, so that a busy
    machine slows them alike."""
    results = {name: [] for name in trainers}
    for start in range(0, len(x) - window + 1, window):
        for name, trainer in trainers.items():
            began = time.perf_counter()
            trainer.train(x[start:start + window], y[start:start + window])
            seconds = time.perf_counter() - began
            results[name].append((window / seconds, subnormal_share(trainer.state())))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--no-torch", action="store_true", help="chainrule's two runs only")
    parser.add_argument("--torch-threads", type=int, default=common.TORCH_THREADS)
    args = parser.parse_args()
    (x_train, y_train), _ = common.fashion_mnist(flat=True)
    x, y = mlp.epoch_data(x_train, y_train, 1, args.steps)
    weights = mlp.initial_weights()
    runs = {"chainrule, flush": Chainrule, "chainrule, no flush": Chainrule}
    if not args.no_torch:
        common.import_torch().set_num_threads(args.torch_threads)
        runs.update({"pytorch, flush": Torch, "pytorch, default": Torch})
    for make in dict.fromkeys(runs.values()):  # warm up (compile, first calls) on a copy
        make(weights, True).train(x[:args.window], y[:args.window])
    runs = {name: make(weights, not name.endswith(("no flush", "default")))
            for name, make in runs.items()}
    print(f"{args.steps} steps of batch 1; chainrule's kernels: {kernels.active()}")
    results = run(runs, x, y, args.window)
    headers = ["steps"] + [f"{name}: steps/s, subnormal" for name in results]
    rows = []
    for k in range(len(next(iter(results.values())))):
        cells = [f"{(k + 1) * args.window}"]
        cells += [f"{rate:7.0f}  {share:6.1%}" for rate, share in (r[k] for r in results.values())]
        rows.append(cells)
    rows.append(["median"] + [f"{statistics.median(rate for rate, _ in r):7.0f}         "
                              for r in results.values()])
    common.print_table(headers, rows)


if __name__ == "__main__":
    main()
