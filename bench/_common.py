"""Shared helpers of the end-to-end benchmarks (bench/mlp.py, bench/cnn.py).

* :func:`alternate` times several workloads in turn, repeat after repeat, so that a noisy
  machine slows them all alike; :func:`median` summarises the repeats.
* :func:`peak_rss_mb` runs a command in a child process and returns that child's own peak
  resident set size, which the child prints with :func:`report_peak_rss` (Linux /proc).
* :func:`print_table` prints aligned columns; :func:`fashion_mnist` loads the data as float32
  pixels in [0, 1], or random data of the same shapes (with a printed note) when it is absent.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TORCH_THREADS = 2


def import_torch():
    """PyTorch with :data:`TORCH_THREADS` intra-op threads, or exit with a clear message.

    Imported lazily so that a chainrule-only child process (peak RSS) never loads it."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the benchmarks need torch
        sys.exit("this benchmark needs PyTorch: pip install torch==2.13.0")
    torch.set_num_threads(TORCH_THREADS)
    return torch


#: Seconds of untimed work that each framework runs right before each of its timed runs
#: (:func:`settle`). The frameworks take turns in one process, and the one that ran last leaves
#: threads that spin for ~0.1 s after its last product (OpenBLAS's workers): PyTorch's MLP epoch
#: timed right after chainrule's measured 0.66-0.69 s, against 0.61 s after 0.25 s of its own
#: steps (2026-12-05), and its 784-256-256-10 step 2.7-6.6 ms against 1.2 ms. A user's loop
#: runs one framework.
SETTLE_SECONDS = 0.25


def settle(work: Callable[[], object], seconds: float = SETTLE_SECONDS) -> None:
    """Run ``work`` (a little of the framework's own untimed work), again and again, for
    ``seconds``: the cores are then its own, as in a loop of its own."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        work()


def alternate(workloads: dict[str, Callable[[], object]], repeats: int,
              setup: Callable[[str], None] | None = None,
              after: Callable[[str, int], None] | None = None,
              warmup: int = 1) -> dict[str, list[float]]:
    """Wall-clock seconds of each workload, ``repeats`` times, run in turn (A B C A B C ...).

    Args:
        workloads: name -> zero-argument function doing the timed work.
        repeats: how many times each runs.
        setup: called with the name before each timed run, outside the timing (to reset
            weights and optimizer state).
        after: called with the name and the repeat's index after each timed run, outside the
            timing (to evaluate what the run trained).
        warmup: untimed rounds of every workload first (thread pools started, kernels
            compiled, caches and allocators warm in both frameworks).
    """
    for _ in range(warmup):
        for name, work in workloads.items():
            if setup is not None:
                setup(name)
            work()
    times: dict[str, list[float]] = {name: [] for name in workloads}
    for repeat in range(repeats):
        for name, work in workloads.items():
            if setup is not None:
                setup(name)
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
            if after is not None:
                after(name, repeat)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_mb(argv: list[str]) -> float:
    """Peak resident memory in MB of ``python argv...`` run as a child process from the
    repository root. The child must end by calling :func:`report_peak_rss`; its VmHWM is read
    from /proc (``getrusage`` would not do: a forked child's ru_maxrss starts at the parent's
    size, which ``exec`` keeps)."""
    result = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    for line in result.stdout.splitlines():
        if line.startswith("peak_rss_kb "):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{argv}: the child printed no peak_rss_kb line")


def report_peak_rss() -> None:
    """Print this process's peak resident set size (``VmHWM`` of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(f"peak_rss_kb {int(line.split()[1])}")


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Left-aligned first column, right-aligned others, widths fitted to the content."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:])]
        print("  ".join(cells))


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x"


def fashion_mnist(flat: bool):
    """``(x_train, y_train), (x_test, y_test)``: float32 pixels / 255, int64 labels; images
    (N, 784) when ``flat`` else (N, 1, 28, 28). Random data of the same shapes when the files
    are absent (the timings stay meaningful, the accuracies do not)."""
    try:
        from chainrule.datasets import fashion_mnist as dataset

        (x_train, y_train), (x_test, y_test) = dataset.load_data()
    except (OSError, ValueError, RuntimeError) as error:
        print(f"note: Fashion-MNIST unavailable ({type(error).__name__}); using random data")
        rng = np.random.default_rng(0)
        x_train = rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8)
        x_test = rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8)
        y_train, y_test = rng.integers(0, 10, 60000), rng.integers(0, 10, 10000)
    shape = (-1, 784) if flat else (-1, 1, 28, 28)

    def pixels(images):
        return (images.reshape(shape) / np.float32(255)).astype(np.float32)

    return ((pixels(x_train), y_train.astype(np.int64)),
            (pixels(x_test), y_test.astype(np.int64)))
