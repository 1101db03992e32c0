"""Traced (``compile(jit=True)``) vs eager chainrule, beside PyTorch eager and torch.compile.

    python bench/jit.py                 # about three minutes
    python bench/jit.py --repeats 5 --no-torch-compile

The four measurements of issue 15, each through ``fit`` / ``predict`` as users run them, the
frameworks alternating, after a warm-up (which also traces), medians of ``--repeats``:

1. the MLP of bench/mlp.py (784-256-128-10, SGD 0.05 momentum 0.9) at batch size 1,
   ``BATCH1_STEPS`` steps: steps/s (the per-step Python overhead);
2. the same MLP, one epoch at batch 128 (``EPOCH_STEPS`` steps);
3. the CNN of bench/cnn.py: peak resident memory of ``CNN_STEPS`` training steps, each
   framework in a fresh child process;
4. the same CNN's inference throughput at batch 1000 (``model.predict``).

Ratios are traced / eager for chainrule (below 1.00x the traced run is faster; for
throughput, eager / traced), and chainrule traced / PyTorch.
"""

from __future__ import annotations

import argparse
import sys

import _common as common  # puts the repository root on sys.path
import cnn as cnn_bench
import mlp as mlp_bench

BATCH1_STEPS = 2000
EPOCH_STEPS = 468
CNN_STEPS = 30


class JitMLP(mlp_bench.ChainruleMLP):
    def reset(self, weights) -> None:
        super().reset(weights)
        self.model.jit = True


class JitCNN(cnn_bench.ChainruleCNN):
    def reset(self) -> None:
        super().reset()
        self.model.jit = True


class CompiledTorchMLP(mlp_bench.TorchMLP):
    """The PyTorch MLP with ``torch.compile`` (inductor) on the model."""

    def __init__(self, weights):
        super().__init__(weights)
        self.eager_model = self.model
        self.model = self.torch.compile(self.eager_model)

    def reset(self, weights) -> None:
        model = getattr(self, "eager_model", None)
        if model is not None:
            self.model, compiled = model, self.model
        super().reset(weights)
        if model is not None:
            self.model = compiled


def torch_compile_works() -> bool:
    """torch.compile needs a C++ compiler and a working inductor; try it on a tiny model."""
    torch = common.import_torch()
    try:
        compiled = torch.compile(torch.nn.Linear(2, 2))
        compiled(torch.ones(1, 2)).sum().backward()
    except Exception as error:  # noqa: BLE001 - any failure means "does not run here"
        print(f"torch.compile does not run here ({type(error).__name__}: "
              f"{str(error).splitlines()[0][:100]}); its column is left out")
        return False
    return True


def mlp_rows(repeats: int, with_compile: bool) -> list[list[str]]:
    weights = mlp_bench.initial_weights()
    nets = {"eager": mlp_bench.ChainruleMLP(weights), "jit": JitMLP(weights),
            "pytorch": mlp_bench.TorchMLP(weights)}
    if with_compile:
        nets["torch.compile"] = CompiledTorchMLP(weights)
    (x, y), _ = common.fashion_mnist(flat=True)
    x1, y1 = x[:BATCH1_STEPS], y[:BATCH1_STEPS]
    xe, ye = mlp_bench.epoch_data(x, y, mlp_bench.BATCH, EPOCH_STEPS)
    for net in nets.values():  # warm up (and trace) at both batch sizes
        net.train(x1[:200], y1[:200], 1)
        net.train(xe[:4 * mlp_bench.BATCH], ye[:4 * mlp_bench.BATCH], mlp_bench.BATCH)
    single = mlp_bench.time_training(nets, x1, y1, 1, repeats)
    epoch = mlp_bench.time_training(nets, xe, ye, mlp_bench.BATCH, repeats)
    rows = []
    rate = {name: BATCH1_STEPS / seconds for name, seconds in single.items()}
    rows.append(["MLP batch 1, steps/s (higher is better)",
                 *[f"{rate[n]:.0f}" for n in nets],
                 common.ratio(rate["eager"], rate["jit"]),
                 common.ratio(rate["pytorch"], rate["jit"])])
    rows.append([f"MLP epoch at batch {mlp_bench.BATCH}, s",
                 *[f"{epoch[n]:.2f}" for n in nets],
                 common.ratio(epoch["jit"], epoch["eager"]),
                 common.ratio(epoch["jit"], epoch["pytorch"])])
    return rows, list(nets)


def cnn_rows(repeats: int) -> list[list[str]]:
    x, y, x_test = cnn_bench.training_data(CNN_STEPS)
    eager = cnn_bench.ChainruleCNN()
    nets = {"eager": eager, "jit": JitCNN(), "pytorch": cnn_bench.TorchCNN(eager.initial)}
    for net in nets.values():
        net.logits(x_test[:2000])  # warm up (and trace) at the inference batch
    infer = common.alternate({n: (lambda net=net: net.logits(x_test)) for n, net in nets.items()},
                             repeats)
    rate = {n: cnn_bench.INFERENCE_IMAGES / common.median(t) for n, t in infer.items()}
    peaks = {n: [] for n in nets}
    for _ in range(repeats):  # alternating children: the peak varies by ~10 MB run to run
        for n in nets:
            peaks[n].append(common.peak_rss_mb(["bench/jit.py", "--child", n]))
    rss = {n: common.median(p) for n, p in peaks.items()}
    return [
        [f"CNN predict, batch {cnn_bench.INFERENCE_BATCH}, images/s (higher is better)",
         *[f"{rate[n]:.0f}" for n in nets], common.ratio(rate["eager"], rate["jit"]),
         common.ratio(rate["pytorch"], rate["jit"])],
        [f"CNN peak RSS, {CNN_STEPS} training steps (child), MB",
         *[f"{rss[n]:.0f}" for n in nets], common.ratio(rss["jit"], rss["eager"]),
         common.ratio(rss["jit"], rss["pytorch"])],
    ]


def child(name: str) -> None:
    """``--child NAME``: ``CNN_STEPS`` training steps of one network only (its peak RSS). The
    peak is reset after the data are loaded (``/proc/self/clear_refs``), so it measures the
    training: loading Fashion-MNIST alone peaks higher than 30 steps of the CNN."""
    import gc
    from pathlib import Path

    x, y, _ = cnn_bench.training_data(CNN_STEPS)
    if name == "pytorch":
        net = cnn_bench.TorchCNN(cnn_bench.ChainruleCNN().initial)
    else:
        net = JitCNN() if name == "jit" else cnn_bench.ChainruleCNN()
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak resident set size
    net.train(x, y)
    common.report_peak_rss()


def main(repeats: int, with_compile: bool) -> None:
    with_compile = with_compile and torch_compile_works()
    rows, names = mlp_rows(repeats, with_compile)
    cnn = cnn_rows(repeats)
    width = len(names)
    for row in cnn:  # the CNN has no torch.compile column
        row[1 + 3:1 + 3] = ["-"] * (width - 3)
    print(f"chainrule traced (jit) vs eager, PyTorch eager{' and torch.compile' * with_compile};"
          f" medians of {repeats} alternating runs")
    common.print_table(["workload", *names, "jit/eager", "jit/torch"], rows + cnn)
    print("ratios of times (rates: of time per step or image); below 1.00x the traced run is "
          "faster (jit/eager) or chainrule is (jit/torch)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch-compile", action="store_true")
    parser.add_argument("--child", choices=("eager", "jit", "pytorch"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child)
        sys.exit(0)
    main(max(3, arguments.repeats), not arguments.no_torch_compile)
