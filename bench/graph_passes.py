"""The graph passes measured: elementwise fusion's speed and the memory plan's peak.

    python bench/graph_passes.py                # both parts
    python bench/graph_passes.py --part fusion --repeats 30

**fusion**: chains of 5 to 6 elementwise ops over 10⁶ floats, replayed one op at a time
(``Trace.plan``) and fused (``passes.optimize``), with NumPy's and Numba's kernels (medians
of alternating runs, milliseconds).

**memory**: the peak of Python-tracked memory (``tracemalloc``: NumPy reports its arrays to
it) during one forward-only replay (the second: the first makes the fused kernels' buffers,
which are listed apart) of wide MLPs and of a small CNN, replayed plainly, with the memory
plan only, and with every pass.
"""

from __future__ import annotations

import argparse
import tracemalloc

import _common as common  # puts the repository root on sys.path
import numpy as np

import chainrule as cr
from chainrule import kernels, layers, models
from chainrule.graph import passes
from chainrule.graph.trace import Trace

CHAINS = {
    "relu(x·a + b)·c − b (5 ops)": lambda x, b: cr.relu(x * 0.5 + b) * 2.0 - b,
    "x·σ(x) + tanh(x)·b (5 ops)": lambda x, b: x * cr.sigmoid(x) + cr.tanh(x) * b,
    "clip(|x − b|², 0, 4) + √|b| (6 ops)": lambda x, b: cr.clip(cr.abs(x - b) ** 2, 0.0, 4.0)
    + cr.sqrt(cr.abs(b)),
}


def record(fn, *examples, free_batch=False):
    trace = Trace()
    tensors = [cr.tensor(a, dtype=a.dtype) for a in examples]
    with trace.recording():
        handles = [trace.add_input(t, free_batch=free_batch) for t in tensors]
        out = trace.handle(fn(*tensors))
    return trace, handles, out


def numbers(trace) -> set:
    return {h for h, kind in enumerate(trace.kind) if kind == "capture"}


def fusion(repeats: int) -> None:
    rows = []
    modes = kernels.available()
    for name, fn in CHAINS.items():
        for dtype in (np.float32, np.float64):
            ms = time_chain(fn, dtype, repeats)
            rows.append([name, np.dtype(dtype).name, f"{ms['plain']:.2f}"]
                        + [f"{ms[m]:.2f} ({ms['plain'] / ms[m]:.1f}x)" for m in modes])
    kernels.use("auto")
    common.print_table(["chain over 10^6", "dtype", "ops one by one"]
                       + [f"fused, {m}" for m in modes], rows)


def time_chain(fn, dtype, repeats: int) -> dict[str, float]:
    """Median milliseconds of the chain replayed plainly and fused (each kernel kind)."""
    rng = np.random.default_rng(0)
    x, b = (rng.normal(size=1_000_000).astype(dtype) for _ in range(2))
    trace, handles, out = record(fn, x, b)
    feeds = dict(zip(handles, (x, b)))
    plain = trace.plan([out], handles)
    fused = passes.optimize(trace, [out], handles, constants=numbers(trace))
    workloads = {"plain": lambda: plain.run(feeds)}
    for mode in kernels.available():
        kernels.use(mode)
        fused.run(feeds)  # compiles the kernel
        workloads[mode] = lambda: fused.run(feeds)

    def setup(name):
        if name != "plain":
            kernels.use(name)

    times = common.alternate(workloads, repeats, setup=setup)
    return {k: common.median(v) * 1e3 for k, v in times.items()}


def peak_mb(plan, feeds) -> float:
    plan.run(feeds)  # first run: buffers and compiled kernels are made
    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    plan.run(feeds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - start) / 2**20


def memory() -> None:
    cr.manual_seed(0)
    mlp = models.Sequential([layers.Dense(2048, activation="relu") for _ in range(4)]
                            + [layers.Dense(10)])
    mlp_smooth = models.Sequential([layers.Dense(2048, activation=a)
                                    for a in ("elu", "softplus", "sigmoid")]
                                   + [layers.Dense(10)])
    cnn = models.Sequential([
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10)])
    cases = {
        "MLP 784-2048x4-10 relu, batch 1024": (mlp, (1024, 784)),
        "MLP 784-2048x3-10 elu/softplus/sigmoid, batch 1024": (mlp_smooth, (1024, 784)),
        "CNN conv32-pool-conv64-pool-128-10, batch 256": (cnn, (256, 1, 28, 28)),
    }
    rows = []
    rng = np.random.default_rng(0)
    for name, (model, shape) in cases.items():
        x = rng.normal(size=shape).astype(np.float32)
        model(cr.tensor(x[:2]))  # builds the weights
        trace, (hx,), out = record(lambda t, m=model: m(t, training=False), x[:2],
                                   free_batch=True)
        weights = {trace.handle(p) for p in model.parameters()}
        feeds = {hx: x}
        plans = {
            "plain": trace.plan([out], [hx]),
            "memory plan": passes.optimize(trace, [out], [hx], passes=[passes.plan_memory]),
            "all passes": passes.optimize(trace, [out], [hx], constants=weights | numbers(trace)),
        }
        results = [plan.run(feeds)[0] for plan in plans.values()]
        assert all(np.allclose(r, results[0], rtol=1e-5, atol=1e-6) for r in results)
        peaks = {k: peak_mb(p, feeds) for k, p in plans.items()}
        rows.append([name, len(trace.nodes)] + [f"{peaks[k]:.1f}" for k in plans]
                    + [f"{buffers_mb(plans['all passes']):.1f}"])
    common.print_table(["forward replay", "nodes", "plain MB", "memory plan MB",
                        "all passes MB", "+ kept buffers MB"], rows)


def buffers_mb(plan) -> float:
    """The fused kernels' output buffers, kept between runs (outside the measured peak)."""
    held = {id(n.buffer): n.buffer.array for n in plan.steps
            if getattr(n, "buffer", None) is not None}
    return sum(a.nbytes for a in held.values()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("fusion", "memory", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if args.part in ("fusion", "both"):
        fusion(args.repeats)
    if args.part in ("memory", "both"):
        memory()


if __name__ == "__main__":
    main()
