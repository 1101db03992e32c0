"""Per-op overhead: a tiny forward + backward graph, chainrule vs PyTorch, alternating.

    python bench/overhead.py

Times ``((a * b + c).relu().sum()).backward()`` on 4×4 float32 tensors. For networks this small
the cost is all Python bookkeeping, so this is the number that decides small-model speed.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

sys.path.insert(0, ".")
import chainrule as cr  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - the benchmark needs torch
    sys.exit("bench/overhead.py needs PyTorch: pip install torch==2.13.0")

ITERATIONS = 2000
REPEATS = 7


def chainrule_step(a, b, c):
    a.grad = b.grad = c.grad = None
    ((a * b + c).relu().sum()).backward()


def torch_step(a, b, c):
    a.grad = b.grad = c.grad = None
    ((a * b + c).relu().sum()).backward()


def time_loop(step, tensors) -> float:
    start = time.perf_counter()
    for _ in range(ITERATIONS):
        step(*tensors)
    return (time.perf_counter() - start) / ITERATIONS


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((4, 4)).astype(np.float32) for _ in range(3)]
    ours = [cr.tensor(x, requires_grad=True) for x in arrays]
    theirs = [torch.tensor(x, requires_grad=True) for x in arrays]
    chainrule_step(*ours)
    torch_step(*theirs)
    assert np.allclose(ours[0].grad.numpy(), theirs[0].grad.numpy())
    time_loop(chainrule_step, ours)  # warm both up: allocator, caches, PyTorch's dispatcher
    time_loop(torch_step, theirs)
    ours_times, theirs_times = [], []
    for _ in range(REPEATS):
        ours_times.append(time_loop(chainrule_step, ours))
        theirs_times.append(time_loop(torch_step, theirs))
    ours_us = statistics.median(ours_times) * 1e6
    theirs_us = statistics.median(theirs_times) * 1e6
    print(f"{'workload':44s} {'chainrule':>12s} {'pytorch':>12s} {'ratio':>7s}")
    print(
        f"{'((a*b+c).relu().sum()).backward(), 4x4':44s} {ours_us:10.1f}us {theirs_us:10.1f}us "
        f"{ours_us / theirs_us:6.2f}x"
    )


if __name__ == "__main__":
    main()
