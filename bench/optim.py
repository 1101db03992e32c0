"""One optimizer step, chainrule vs torch.optim (foreach=True), timed alternately.

    python bench/optim.py [--repeats 7] [--steps 20] [--threads 2]

The main workload is an MLP 784-512-512-512-256-10 (1,061,130 float32 parameters in 10 tensors);
gradients are fixed random arrays, so only ``optimizer.step()`` is timed. A small MLP
(20-32-32-1, 1,761 parameters in 6 tensors) shows the per-call overhead that decides speed on
small models. Prints the median time per step over the repeats, the ratio of the medians
chainrule / PyTorch (below 1.0 is faster), and the ratio of the fastest repeats ("best", less
sensitive to other processes on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, ".")
import chainrule as cr  # noqa: E402
from chainrule import kernels, optim  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - the benchmark needs torch
    sys.exit("bench/optim.py needs PyTorch: pip install torch==2.13.0")


def mlp_shapes(widths):
    shapes = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        shapes += [(fan_in, fan_out), (fan_out,)]
    return shapes


MODELS = {
    "MLP 784-512-512-512-256-10": mlp_shapes([784, 512, 512, 512, 256, 10]),
    "MLP 20-32-32-1": mlp_shapes([20, 32, 32, 1]),
}

# chainrule.optim: PyTorch's constructor arguments and defaults on chainrule's optimizers
CASES = {
    "SGD": (lambda p: optim.SGD(p, lr=0.01),
            lambda p: torch.optim.SGD(p, lr=0.01, foreach=True)),
    "SGD momentum": (lambda p: optim.SGD(p, lr=0.01, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True)),
    "Adam": (lambda p: optim.Adam(p, lr=1e-3),
             lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
    "AdamW": (lambda p: optim.AdamW(p, lr=1e-3),
              lambda p: torch.optim.AdamW(p, lr=1e-3, foreach=True)),
    "RMSprop": (lambda p: optim.RMSprop(p, lr=1e-3),
                lambda p: torch.optim.RMSprop(p, lr=1e-3, foreach=True)),
    "Adagrad": (lambda p: optim.Adagrad(p, lr=1e-2),
                lambda p: torch.optim.Adagrad(p, lr=1e-2, foreach=True)),
}


def make_pair(shapes, make_ours, make_theirs, seed=0):
    """The same float32 weights and gradients in both frameworks, with an optimizer each."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for shape in shapes:
        w = rng.normal(0, 0.05, shape).astype(np.float32)
        g = rng.normal(0, 0.01, shape).astype(np.float32)
        p = cr.tensor(w, requires_grad=True)
        p.grad = cr.tensor(g)
        q = torch.tensor(w, requires_grad=True)
        q.grad = torch.tensor(g)
        ours.append(p)
        theirs.append(q)
    return ours, make_ours(ours), theirs, make_theirs(theirs)


def seconds_per_step(step, steps) -> float:
    time.sleep(0.02)  # let the other library's idle threads stop spinning before we start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="steps per timing")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for both libraries (1 compares single-core efficiency)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with kernels.blas_threads(args.threads):  # chainrule's threads: as many as BLAS's
        compare(args)


def compare(args) -> None:
    """Time each optimizer on each model, both libraries alternately; print one row each."""
    print(f"{'model':28s} {'optimizer':14s} {'chainrule':>11s} {'pytorch':>11s} {'ratio':>7s} "
          f"{'best':>6s}")
    for model, shapes in MODELS.items():
        steps = args.steps if sum(np.prod(s) for s in shapes) > 1e5 else 50 * args.steps
        for case, (make_ours, make_theirs) in CASES.items():
            ours, opt, theirs, ref = make_pair(shapes, make_ours, make_theirs)
            opt.step()
            ref.step()
            for p, q in zip(ours, theirs):  # same update before timing anything
                np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-6)
            seconds_per_step(opt.step, steps)  # warm both up before timing
            seconds_per_step(ref.step, steps)
            ours_times, theirs_times = [], []
            for _ in range(args.repeats):
                ours_times.append(seconds_per_step(opt.step, steps))
                theirs_times.append(seconds_per_step(ref.step, steps))
            a, b = statistics.median(ours_times) * 1e6, statistics.median(theirs_times) * 1e6
            best = min(ours_times) / min(theirs_times)
            print(f"{model:28s} {case:14s} {a:9.1f}us {b:9.1f}us {a / b:6.2f}x {best:5.2f}x")


if __name__ == "__main__":
    main()
