"""Conv2D and MaxPooling2D forward + backward at the Fashion-MNIST CNN shapes: chainrule vs PyTorch.

    python bench/conv.py [--repeats 15] [--steps 5] [--threads 2]

Batch 128; conv 1→32 on 28×28 and 32→64 on 14×14 (3×3, padding 1), each followed by 2×2 max
pooling, as in the lectures' CNN. Each workload is timed as forward and backward passes with a
fixed upstream gradient; the two libraries run alternately in one process (the machine is
shared and noisy), ``--steps`` passes at a time after one untimed pass, as a training loop runs
them back to back, and the script prints the median time of a pass for each and the ratio
chainrule / PyTorch, plus the ratio of the fastest runs (less sensitive to other processes on
the machine). A pass timed right after the other library's (``--steps 0``) measures something
else: its threads are still busy or its data fills the caches, and chainrule's 1 -> 32
convolution took 7.0 ms there against 3.7 ms back to back (PyTorch's 2.4 against 2.0 ms).

The first convolution's input is data (no gradient), as in a network; the second's input
requires one. chainrule's steps are bare calls, as in ``fit``: the Winograd and direct
algorithms enter ``kernels.own_threads()`` themselves (BLAS on one thread, the kernels on
``--threads``), im2col and everything else keep BLAS's ``--threads`` threads.
The standalone workloads feed both libraries contiguous NCHW arrays; "CNN block" chains
conv → relu → pool → conv → relu → pool, where chainrule's channel-major outputs feed the next
layer without copies.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

parser = argparse.ArgumentParser(description="Conv2D and MaxPooling2D: chainrule vs PyTorch")
parser.add_argument("--repeats", type=int, default=15)
parser.add_argument("--steps", type=int, default=5,
                    help="timed passes per run, after one untimed (0: one timed pass a run)")
parser.add_argument("--threads", type=int, default=2, help="BLAS threads of both libraries")
args = parser.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402

sys.path.insert(0, ".")
import chainrule as cr  # noqa: E402
from chainrule import functional as F  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - the benchmark needs torch
    sys.exit("bench/conv.py needs PyTorch: pip install torch==2.13.0")

BATCH = 128


def make_workloads(rng):
    """(name, chainrule step, PyTorch step) for every workload; each step runs fwd + bwd."""
    workloads = []

    def conv(name, channels, filters, size, input_grad):
        x = rng.standard_normal((BATCH, channels, size, size)).astype(np.float32)
        w = (rng.standard_normal((filters, channels, 3, 3)) * 0.1).astype(np.float32)
        b = np.zeros(filters, np.float32)
        g = rng.standard_normal((BATCH, filters, size, size)).astype(np.float32)
        ours = (cr.tensor(x, requires_grad=input_grad), cr.tensor(w, requires_grad=True),
                cr.tensor(b, requires_grad=True), cr.tensor(g))
        theirs = (torch.tensor(x, requires_grad=input_grad), torch.tensor(w, requires_grad=True),
                  torch.tensor(b, requires_grad=True), torch.tensor(g))

        def ours_step():
            F.conv2d(ours[0], ours[1], ours[2], padding=1).backward(ours[3])

        def theirs_step():
            TF.conv2d(theirs[0], theirs[1], theirs[2], padding=1).backward(theirs[3])

        workloads.append((name, ours_step, theirs_step, (ours, theirs)))

    def pool(name, channels, size):
        x = rng.standard_normal((BATCH, channels, size, size)).astype(np.float32)
        g = rng.standard_normal((BATCH, channels, size // 2, size // 2)).astype(np.float32)
        ours = (cr.tensor(x, requires_grad=True), cr.tensor(g))
        theirs = (torch.tensor(x, requires_grad=True), torch.tensor(g))

        def ours_step():
            F.max_pool2d(ours[0], 2).backward(ours[1])

        def theirs_step():
            TF.max_pool2d(theirs[0], 2).backward(theirs[1])

        workloads.append((name, ours_step, theirs_step, ((ours[0],), (theirs[0],))))

    conv("conv 1->32, 28x28", 1, 32, 28, input_grad=False)
    pool("maxpool 2, 32x28x28", 32, 28)
    conv("conv 32->64, 14x14", 32, 64, 14, input_grad=True)
    pool("maxpool 2, 64x14x14", 64, 14)

    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    w1 = (rng.standard_normal((32, 1, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((64, 32, 3, 3)) * 0.1).astype(np.float32)
    g = rng.standard_normal((BATCH, 64, 7, 7)).astype(np.float32)
    ours = [cr.tensor(x)] + [cr.tensor(a, requires_grad=True) for a in (w1, w2)] + [cr.tensor(g)]
    theirs = [torch.tensor(x)] + [torch.tensor(a, requires_grad=True) for a in (w1, w2)]
    theirs.append(torch.tensor(g))

    def ours_block():
        h = F.max_pool2d(F.relu(F.conv2d(ours[0], ours[1], padding=1)), 2)
        F.max_pool2d(F.relu(F.conv2d(h, ours[2], padding=1)), 2).backward(ours[3])

    def theirs_block():
        h = TF.max_pool2d(TF.relu(TF.conv2d(theirs[0], theirs[1], padding=1)), 2)
        TF.max_pool2d(TF.relu(TF.conv2d(h, theirs[2], padding=1)), 2).backward(theirs[3])

    workloads.append(("CNN block (conv-relu-pool x2)", ours_block, theirs_block,
                      (ours[1:3], theirs[1:3])))
    return workloads


def clear(tensors):
    for t in tensors:
        t.grad = None


def check_agreement(workloads) -> None:
    """Both libraries compute the same gradients before anything is timed."""
    for name, ours_step, theirs_step, (ours, theirs) in workloads:
        params = [t for t in ours if t.requires_grad]
        torch_params = [t for t in theirs if t.requires_grad]
        clear(params)
        clear(torch_params)
        ours_step()
        theirs_step()
        for a, t in zip(params, torch_params):
            expected = t.grad.numpy()
            scale = np.abs(expected).max()
            assert np.allclose(a.grad.numpy(), expected, rtol=1e-3, atol=1e-4 * scale), name


def timed(step, tensors) -> float:
    """Seconds per pass: ``--steps`` passes after an untimed one (or one timed pass)."""
    if args.steps:
        clear(tensors)
        step()
    passes = max(args.steps, 1)
    start = time.perf_counter()
    for _ in range(passes):
        clear(tensors)
        step()
    return (time.perf_counter() - start) / passes


def main() -> None:
    torch.set_num_threads(args.threads)
    workloads = make_workloads(np.random.default_rng(0))
    check_agreement(workloads)
    for _, ours_step, theirs_step, _ in workloads:  # warm up allocators and thread pools
        ours_step()
        theirs_step()

    print(f"batch {BATCH}, float32, forward + backward, {args.threads} thread(s), median of "
          f"{args.repeats} alternating runs of {max(args.steps, 1)} pass(es)"
          f"{' after an untimed one' if args.steps else ''}")
    print(f"{'workload':32s} {'chainrule':>11s} {'pytorch':>11s} {'ratio':>7s} {'(of best)':>10s}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for name, ours_step, theirs_step, (ours, theirs) in workloads:
        ours_times, theirs_times = [], []
        for _ in range(args.repeats):
            ours_times.append(timed(ours_step, ours))
            theirs_times.append(timed(theirs_step, theirs))
        a, b = statistics.median(ours_times) * 1e3, statistics.median(theirs_times) * 1e3
        best_a, best_b = min(ours_times) * 1e3, min(theirs_times) * 1e3
        if not name.startswith("CNN"):
            totals = [t + v for t, v in zip(totals, (a, b, best_a, best_b))]
        print(f"{name:32s} {a:9.2f}ms {b:9.2f}ms {a / b:6.2f}x {best_a / best_b:9.2f}x")
    a, b, best_a, best_b = totals
    print(f"{'total of the four layers':32s} {a:9.2f}ms {b:9.2f}ms {a / b:6.2f}x "
          f"{best_a / best_b:9.2f}x")

if __name__ == "__main__":
    main()
