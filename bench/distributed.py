"""Data-parallel training on MPI: throughput on 1, 2 and 4 ranks, and the cost of Allreduce.

    python bench/distributed.py                 # MLP and CNN, 1/2/4 ranks, 3 repeats
    python bench/distributed.py --plot docs/distributed.png

For each model the same global batch (128 samples per step) is split over N ranks
(``mpiexec -n N``, each rank with cores // N BLAS threads; N = 1 is a plain process with all
the cores). Each configuration trains ``--steps`` steps through ``fit(distributed=True)`` after
a warm-up epoch, in turn with the others, ``--repeats`` times; the table gives the median
throughput (samples/s), the ratio to one process, and the time per step split into the
gradient Allreduce and the rest (compute). Past the machine's cores the ranks are
oversubscribed: the table says so.

A second table times ``Allreduce(IN_PLACE)`` of float32 buffers between 2 ranks against the
memory-bandwidth floor of the same bytes (one process adding two buffers, ``a += b``: the
reads and write a reduction cannot avoid).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from _common import ROOT, median, print_table

GLOBAL_BATCH = 128


def worker(model_name: str, steps: int) -> None:
    """One rank (or the lone process): warm up, then time ``steps`` steps; rank 0 prints a
    JSON line with the seconds, and the seconds spent in the gradient Allreduce."""
    from _common import fashion_mnist

    import chainrule
    from chainrule import distributed, zoo

    comm = distributed.init()
    spent = {"allreduce": 0.0}
    if comm.size > 1:
        plain = comm.allreduce_sum_

        def timed(buffer):
            started = time.perf_counter()
            result = plain(buffer)
            spent["allreduce"] += time.perf_counter() - started
            return result

        comm.allreduce_sum_ = timed
    (x, y), _ = fashion_mnist(flat=model_name == "mlp")
    x, y = x[:GLOBAL_BATCH * steps], y[:GLOBAL_BATCH * steps]
    chainrule.manual_seed(0)
    model = zoo.build(model_name, x.shape[1:])
    zoo.compile_for_classification(model, "adam", 1e-3)
    per_rank = GLOBAL_BATCH // comm.size
    model.fit(x[:GLOBAL_BATCH * 4], y[:GLOBAL_BATCH * 4], batch_size=per_rank, epochs=1,
              verbose=0, seed=0, distributed=comm)  # warm-up
    spent["allreduce"] = 0.0
    comm.barrier()
    started = time.perf_counter()
    model.fit(x, y, batch_size=per_rank, epochs=1, verbose=0, seed=1, distributed=comm)
    comm.barrier()
    seconds = time.perf_counter() - started
    if comm.is_root:
        print(json.dumps({"seconds": seconds, "allreduce": spent["allreduce"],
                          "steps": steps, "ranks": comm.size}), flush=True)


def allreduce_worker(mebibytes: list[float], repeats: int) -> None:
    """Time Allreduce of each buffer size between the job's ranks; rank 0 prints JSON."""
    from chainrule import distributed

    comm = distributed.init()
    results = {}
    for size in mebibytes:
        buffer = np.ones(int(size * 2**20 / 4), np.float32)
        comm.allreduce_sum_(buffer)  # warm-up
        times = []
        for _ in range(repeats):
            comm.barrier()
            started = time.perf_counter()
            comm.allreduce_sum_(buffer)
            times.append(time.perf_counter() - started)
        other = np.ones_like(buffer)
        floor = []
        for _ in range(repeats):
            started = time.perf_counter()
            buffer += other
            floor.append(time.perf_counter() - started)
        results[size] = (median(times), median(floor))
    if comm.is_root:
        print(json.dumps(results), flush=True)


def launch(ranks: int, arguments: list[str]) -> dict:
    """Run this script's worker on ``ranks`` processes; return rank 0's JSON line."""
    script = [sys.executable, os.path.abspath(__file__), *arguments]
    if ranks > 1:
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or "mpiexec"
        script = [mpiexec, "-n", str(ranks), *script]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}"}
    out = subprocess.run(script, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("mlp", "cnn", "allreduce"), help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--ranks", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps (default: 100 for the MLP, 20 for the CNN)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot", default=None, help="draw the throughputs into this PNG")
    args = parser.parse_args()
    if args.worker == "allreduce":
        return allreduce_worker([1, 4, 16, 40], args.repeats)
    if args.worker:
        return worker(args.worker, args.steps)

    cores = os.cpu_count() or 1
    print(f"load: {os.getloadavg()[0]:.2f}, cores: {cores}, global batch {GLOBAL_BATCH}")
    rows, curves = [], {}
    for name in args.models:
        steps = args.steps or (100 if name == "mlp" else 20)
        runs = {n: [] for n in args.ranks}
        for _ in range(args.repeats):  # the configurations in turn, repeat after repeat
            for n in args.ranks:
                runs[n].append(launch(n, ["--worker", name, "--steps", str(steps)]))
        base = median([steps * GLOBAL_BATCH / r["seconds"] for r in runs[args.ranks[0]]])
        curves[name] = []
        for n in args.ranks:
            throughput = median([steps * GLOBAL_BATCH / r["seconds"] for r in runs[n]])
            step_ms = median([r["seconds"] / steps * 1e3 for r in runs[n]])
            reduce_ms = median([r["allreduce"] / steps * 1e3 for r in runs[n]])
            curves[name].append(throughput)
            rows.append([name, str(n) + (" (oversubscribed)" if n > cores else ""),
                         f"{throughput:,.0f}", f"{throughput / base:.2f}x",
                         f"{step_ms - reduce_ms:.1f}", f"{reduce_ms:.1f}"])
    print_table(["model", "ranks", "samples/s", "vs 1 rank", "compute ms/step",
                 "allreduce ms/step"], rows)

    if 2 in args.ranks:
        sizes = launch(2, ["--worker", "allreduce", "--repeats", "5"])
        print_table(["float32 buffer", "Allreduce (2 ranks)", "a += b (floor)", "ratio"],
                    [[f"{float(size):g} MiB", f"{t * 1e3:.2f} ms", f"{f * 1e3:.2f} ms",
                      f"{t / f:.2f}x"] for size, (t, f) in sizes.items()])
    if args.plot:
        _plot(curves, args.ranks, args.plot)


def _plot(curves: dict, ranks: list, path: str) -> None:
    from chainrule.io import atomic_write
    from chainrule.plot import _figure

    figure = _figure(6.0, 3.8)
    ax = figure.add_subplot(1, 1, 1)
    for name, values in curves.items():
        ax.plot(ranks, [v / values[0] for v in values], marker="o", label=name)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(ranks)
    ax.set_xlabel(f"ranks (global batch {GLOBAL_BATCH}, {os.cpu_count()} cores)")
    ax.set_ylabel("throughput / one process")
    ax.legend()
    figure.tight_layout()
    atomic_write(path, lambda file: figure.savefig(file, format="png"))


if __name__ == "__main__":
    main()
