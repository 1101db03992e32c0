"""chainrule on CuPy against PyTorch on CUDA: an MLP epoch, a CNN epoch and char-LSTM steps.

    python bench/gpu.py [--repeats 3] [--batches 469] [--lstm-steps 100] [--device cuda]

Each workload is one model built in both libraries from the same initial weights (chainrule's,
copied into PyTorch's layouts), trained by a hand-written loop on the same host batches in the
same order: every step copies its batch from host memory to the device (as ``fit`` does), then
forward, loss, backward and an optimizer step. The two libraries alternate, run after run
(chainrule, PyTorch, chainrule, ...), after one untimed warm-up run each (CuPy compiles its
kernels on first use); each timed run ends by waiting for the GPU. The script prints, per
workload, the median seconds of each library, their ratio (chainrule / PyTorch) and both
libraries' mean loss over the last run, which should agree closely.

* MLP: 784 → 256 → 256 → 10 (ReLU), batch 128, SGD with momentum; one epoch = ``--batches``
  steps (469 ≈ 60,000 / 128, a Fashion-MNIST epoch).
* CNN: Conv(32, 3×3, same) → ReLU → MaxPool 2 → Conv(64, 3×3, same) → ReLU → MaxPool 2 →
  Dense 128 → Dense 10 on 1 × 28 × 28 images, batch 128, Adam; ``--batches`` steps.
* char-LSTM: Embedding(96, 64) → LSTM(256) → Dense(96) on windows of 64 characters, batch 32,
  Adam; ``--lstm-steps`` steps.

The data are random numbers of the right shapes (the timings do not depend on the values).
PyTorch runs in float32 with TF32 switched off, as chainrule computes (full float32 products).
``--device cpu`` runs the same comparison on the CPU (NumPy against PyTorch's CPU kernels),
a check of this script that needs no GPU. Without a usable GPU, ``--device cuda`` (the default)
exits with a message saying what is missing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import chainrule as cr  # noqa: E402
from chainrule import backend, functional, layers, models, optimizers  # noqa: E402
from chainrule.models import training  # noqa: E402

BATCH, LSTM_BATCH, SEQ_LEN, VOCAB, EMBEDDING, UNITS = 128, 32, 64, 96, 64, 256


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="chainrule on the GPU (CuPy) against PyTorch CUDA: MLP epoch, CNN epoch, "
                    "char-LSTM steps; medians and ratios")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each library")
    parser.add_argument("--batches", type=int, default=469,
                        help="steps of an MLP or CNN epoch (469: 60,000 samples / 128)")
    parser.add_argument("--lstm-steps", type=int, default=100, help="char-LSTM steps per run")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: the same comparison on the CPU (checks the script)")
    parser.add_argument("--only", choices=["mlp", "cnn", "lstm"], action="append",
                        help="run only these workloads (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def import_torch(device: str):
    """PyTorch, checked to see a GPU when ``device`` is cuda; else exit with the reason."""
    try:
        import torch
    except ImportError:
        sys.exit("bench/gpu.py needs PyTorch (with CUDA for --device cuda): "
                 "pip install torch --index-url https://download.pytorch.org/whl/cu124")
    if device == "cuda":
        if not torch.cuda.is_available():
            sys.exit(f"bench/gpu.py: PyTorch {torch.__version__} sees no CUDA device; install "
                     "a CUDA build of PyTorch on a machine with an NVIDIA GPU, or pass "
                     "--device cpu")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch


# -- the three workloads: chainrule model, PyTorch twin, batches ----------------------------------


def mlp():
    return models.Sequential([layers.Dense(256, activation="relu", input_shape=(784,)),
                              layers.Dense(256, activation="relu"), layers.Dense(10)])


def cnn():
    return models.Sequential([
        layers.Conv2D(32, 3, padding="same", activation="relu", input_shape=(1, 28, 28)),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10),
    ])


def char_lstm():
    return models.Sequential([layers.Embedding(VOCAB, EMBEDDING, input_shape=(SEQ_LEN,)),
                              layers.LSTM(UNITS, return_sequences=True), layers.Dense(VOCAB)])


def torch_twin(torch, name: str, model):
    """PyTorch's version of ``model`` holding the same initial weights."""
    nn = torch.nn
    arrays = [backend.to_numpy(w.data) for w in model.weights]

    def tensor(array):
        return torch.from_numpy(np.ascontiguousarray(array))

    if name == "lstm":
        embedding, kernel, recurrent, bias, head_kernel, head_bias = arrays

        class CharLSTM(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(VOCAB, EMBEDDING)
                self.lstm = nn.LSTM(EMBEDDING, UNITS, batch_first=True)
                self.head = nn.Linear(UNITS, VOCAB)

            def forward(self, ids):
                return self.head(self.lstm(self.embedding(ids))[0])

        twin = CharLSTM()
        with torch.no_grad():
            twin.embedding.weight.copy_(tensor(embedding))
            twin.lstm.weight_ih_l0.copy_(tensor(kernel.T))
            twin.lstm.weight_hh_l0.copy_(tensor(recurrent.T))
            twin.lstm.bias_ih_l0.copy_(tensor(bias))  # one Keras bias = bias_ih + bias_hh
            twin.lstm.bias_hh_l0.zero_()
            twin.head.weight.copy_(tensor(head_kernel.T))
            twin.head.bias.copy_(tensor(head_bias))
        twin.lstm.bias_hh_l0.requires_grad_(False)  # else the bias would move twice as fast
        return twin
    modules, weights = [], iter(arrays)
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            kernel, bias = next(weights), next(weights)
            linear = nn.Linear(*kernel.shape)
            with torch.no_grad():
                linear.weight.copy_(tensor(kernel.T))
                linear.bias.copy_(tensor(bias))
            modules.append(linear)
        elif isinstance(layer, layers.Conv2D):
            kernel, bias = next(weights), next(weights)
            conv = nn.Conv2d(kernel.shape[1], kernel.shape[0], kernel.shape[2], padding="same")
            with torch.no_grad():
                conv.weight.copy_(tensor(kernel))
                conv.bias.copy_(tensor(bias))
            modules.append(conv)
        elif isinstance(layer, layers.MaxPooling2D):
            modules.append(nn.MaxPool2d(2))
        elif isinstance(layer, layers.Flatten):
            modules.append(nn.Flatten())
        else:
            raise TypeError(f"no PyTorch twin for {type(layer).__name__}")
        if layer.get_config().get("activation") == "relu":
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def batches(name: str, steps: int, seed: int) -> list:
    """Host (NumPy) batches ``(x, labels)``: the same for both libraries."""
    rng = np.random.default_rng(seed)
    if name == "lstm":
        return [(rng.integers(0, VOCAB, (LSTM_BATCH, SEQ_LEN)),
                 rng.integers(0, VOCAB, (LSTM_BATCH, SEQ_LEN))) for _ in range(steps)]
    shape = (BATCH, 784) if name == "mlp" else (BATCH, 1, 28, 28)
    return [(rng.random(shape, dtype=np.float32), rng.integers(0, 10, BATCH))
            for _ in range(steps)]


def chainrule_optimizer(name: str, params):
    if name == "mlp":
        return optimizers.SGD(params, learning_rate=0.01, momentum=0.9)
    return optimizers.Adam(params, learning_rate=2e-3 if name == "lstm" else 1e-3,
                           epsilon=1e-8)


def torch_optimizer(torch, name: str, params):
    if name == "mlp":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)
    return torch.optim.Adam(params, lr=2e-3 if name == "lstm" else 1e-3, eps=1e-8)


# -- training runs --------------------------------------------------------------------------------


def chainrule_run(model, optimizer, data, device: str) -> float:
    """Train on every batch; returns the mean loss (read once, at the end)."""
    losses = []
    for x, labels in data:
        x, labels = training.to_device_of(model, x, labels)
        loss = functional.softmax_cross_entropy(model(cr.Tensor(x)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.data)
    backend.synchronize(device)
    return float(np.mean([float(backend.to_numpy(v)) for v in losses]))


def torch_run(torch, model, optimizer, data, device: str) -> float:
    losses = []
    for x, labels in data:
        x = torch.from_numpy(x).to(device, non_blocking=True)
        labels = torch.from_numpy(labels).to(device, non_blocking=True)
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 labels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    if device == "cuda":
        torch.cuda.synchronize()
    return float(torch.stack(losses).mean())


def compare(torch, name: str, args) -> list:
    """One table row: median seconds of each library, their ratio, and the last mean losses."""
    steps = args.lstm_steps if name == "lstm" else args.batches
    data = batches(name, steps, args.seed)
    cr.manual_seed(args.seed)
    model = {"mlp": mlp, "cnn": cnn, "lstm": char_lstm}[name]()
    twin = torch_twin(torch, name, model).to(args.device)
    model.to(args.device)
    ours = chainrule_optimizer(name, model.parameters())
    theirs = torch_optimizer(torch, name, twin.parameters())
    runs = {"chainrule": lambda: chainrule_run(model, ours, data, args.device),
            "pytorch": lambda: torch_run(torch, twin, theirs, data, args.device)}
    for run in runs.values():  # untimed warm-up: kernel compilation, allocations (it trains
        run()  # both models alike, so they stay comparable)
    times = {library: [] for library in runs}
    losses = {}
    for _ in range(args.repeats):
        for library, run in runs.items():
            start = time.perf_counter()
            losses[library] = run()
            times[library].append(time.perf_counter() - start)
    ours_s, theirs_s = (statistics.median(times[k]) for k in ("chainrule", "pytorch"))
    label = f"{name} ({steps} steps)"
    return [label, f"{ours_s:.3f}", f"{theirs_s:.3f}", f"{ours_s / theirs_s:.2f}x",
            f"{losses['chainrule']:.4f}", f"{losses['pytorch']:.4f}"]


def print_table(headers, rows) -> None:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join([str(row[0]).ljust(widths[0])]
                        + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not cr.cuda_available():
        sys.exit("bench/gpu.py: no CUDA device for chainrule: CuPy is not installed "
                 "(pip install chainrule[gpu]) or sees no GPU; pass --device cpu to check the "
                 "script without one")
    torch = import_torch(args.device)
    torch.manual_seed(args.seed)
    print(f"device: {backend.describe_device(args.device)}; PyTorch {torch.__version__}"
          + (f" on {torch.cuda.get_device_name()}" if args.device == "cuda" else ""))
    print(f"repeats {args.repeats}, median seconds per run (lower is better)")
    rows = [compare(torch, name, args) for name in (args.only or ["mlp", "cnn", "lstm"])]
    print_table(["workload", "chainrule s", "pytorch s", "ratio", "chainrule loss",
                 "pytorch loss"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
