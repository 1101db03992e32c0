"""How much does feeding the data cost next to training on it?

Times one shuffled Fashion-MNIST epoch (batches of 128) through ``chainrule.data.DataLoader``
(plain; with ``Rescale(1/255)``; with ``RandomShift(2)`` augmentation then ``Rescale``; and over
data rescaled to float32 once up front), and
one training epoch of a hand-written NumPy MLP 784-256-128-10 (float32, SGD with momentum,
forward and backward) on the same data, and prints the loader/MLP ratio. Target: <= 3 %.

Usage: ``python bench/loader.py [--repeats 5]``. Uses the Debian Fashion-MNIST files when
present, else random uint8 data of the same shape (with a note).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BATCH = 128


def load_images():
    """Fashion-MNIST training images and labels, or random stand-ins of the same shape."""
    from chainrule.datasets import DatasetError, fashion_mnist

    try:
        (x, y), _ = fashion_mnist.load_data()
        return x, y, "Fashion-MNIST"
    except DatasetError as err:
        print(f"note: Fashion-MNIST unavailable ({type(err).__name__}); using random uint8 data")
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, size=(60000, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=60000, dtype=np.uint8)
        return x, y, "random uint8 (60000, 28, 28)"


def time_rounds(cases: dict, repeats: int) -> dict[str, list[float]]:
    """Wall times of each ``fn()`` in ``cases`` over ``repeats`` rounds.

    Every round runs every case once (after one warm-up round), so slow drifts of the machine
    (caches, memory, other load) affect all cases alike instead of biasing one of them.
    """
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def loader_epoch(loader) -> None:
    for _batch in loader:
        pass


class NumpyMLP:
    """784-256-128-10 ReLU network trained with SGD + momentum, all float32 NumPy."""

    def __init__(self, sizes=(784, 256, 128, 10), lr=0.01, momentum=0.9, seed=0):
        rng = np.random.default_rng(seed)
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype(np.float32)
            self.params += [w, np.zeros(fan_out, np.float32)]
        self.velocity = [np.zeros_like(p) for p in self.params]
        self.lr, self.momentum = np.float32(lr), np.float32(momentum)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        w1, b1, w2, b2, w3, b3 = self.params
        # forward
        h1 = np.maximum(x @ w1 + b1, 0)
        h2 = np.maximum(h1 @ w2 + b2, 0)
        logits = h2 @ w3 + b3
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        n = len(x)
        loss = -np.log(p[np.arange(n), y] + 1e-12).mean()
        # backward
        d3 = p
        d3[np.arange(n), y] -= 1
        d3 /= n
        d2 = (d3 @ w3.T) * (h2 > 0)
        d1 = (d2 @ w2.T) * (h1 > 0)
        grads = [x.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]
        # SGD with momentum
        for param, vel, grad in zip(self.params, self.velocity, grads, strict=True):
            vel *= self.momentum
            vel -= self.lr * grad
            param += vel
        return float(loss)


def mlp_epoch(model: NumpyMLP, x: np.ndarray, y: np.ndarray) -> float:
    """One epoch over already shuffled, already float32 data (contiguous slices)."""
    loss = 0.0
    for start in range(0, len(x), BATCH):
        loss = model.step(x[start : start + BATCH], y[start : start + BATCH])
    return loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (>= 3)")
    args = parser.parse_args()
    repeats = max(3, args.repeats)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from chainrule.data import ArrayDataset, DataLoader
    from chainrule.data.transforms import Compose, RandomShift, Rescale

    x, y, source = load_images()
    dataset = ArrayDataset(x, y)
    cases = {
        "DataLoader (uint8 batches)": DataLoader(dataset, BATCH, shuffle=True, seed=0),
        "DataLoader + Rescale(1/255)": DataLoader(
            dataset, BATCH, shuffle=True, seed=0, transform=Rescale(1 / 255)
        ),
        "DataLoader + RandomShift(2) + Rescale": DataLoader(
            dataset,
            BATCH,
            shuffle=True,
            seed=0,
            transform=Compose([RandomShift(2, seed=0), Rescale(1 / 255)]),
        ),
        "DataLoader over pre-scaled float32 data": DataLoader(
            ArrayDataset(x.astype(np.float32) / np.float32(255), y), BATCH, shuffle=True, seed=0
        ),
    }

    order = np.random.default_rng(0).permutation(len(x))
    x_flat = (x[order].reshape(len(x), -1) / np.float32(255)).astype(np.float32)
    y_int = y[order].astype(np.int64)
    model = NumpyMLP()
    mlp = "NumPy MLP 784-256-128-10 train epoch"
    fns = {mlp: lambda: mlp_epoch(model, x_flat, y_int)}
    fns.update(
        {name: (lambda loader=loader: loader_epoch(loader)) for name, loader in cases.items()}
    )
    times = time_rounds(fns, repeats)
    median = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}

    print(f"data: {source}, {len(x)} samples, batch {BATCH}, {repeats} rounds")
    print(f"{'':40s} {'median':>9s}    {'ratio':>7s}  {'(best':>8s}    {'ratio)':>7s}")
    print(f"{mlp:40s} {median[mlp] * 1e3:9.1f} ms {'':9s}  {best[mlp] * 1e3:8.1f} ms")
    for name in cases:
        print(
            f"{name:40s} {median[name] * 1e3:9.1f} ms {100 * median[name] / median[mlp]:7.2f} %"
            f"  {best[name] * 1e3:8.1f} ms {100 * best[name] / best[mlp]:7.2f} %"
        )
    print("ratio = loader epoch / MLP epoch; target: plain and Rescale loaders <= 3 %")


if __name__ == "__main__":
    main()
