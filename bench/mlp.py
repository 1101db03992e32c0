"""End-to-end MLP training: chainrule's ``model.fit`` vs a PyTorch eager loop vs plain NumPy.

    python bench/mlp.py              # the tables of docs/performance.md (about a minute)
    python bench/mlp.py --scaling    # also epoch time vs batch size and width -> docs/scaling.png
    python bench/mlp.py --scaling-only
    python bench/mlp.py --repeats 5

The model is the lectures' MLP 784-256-128-10 (ReLU), SGD (learning rate 0.05, momentum 0.9),
softmax cross-entropy, on Fashion-MNIST (float32 pixels / 255). All three start from the same
initial weights and visit the same batches in the same order (one fixed permutation, then no
shuffling), so they do the same arithmetic:

1. one epoch at batch 128 (468 steps), alternating, medians of ``--repeats`` runs; then one
   epoch as users run it: the whole training set (60,000 samples, the last batch partial) in
   a fresh order each epoch, chainrule by ``fit``'s default ``shuffle=True``, PyTorch by a
   plain loop over ``torch.randperm`` gathering each batch by its indices (what a
   ``DataLoader(shuffle=True)`` without its per-sample collation does), NumPy likewise;
   every timed run follows a quarter of a second of untimed steps of the same framework
   (:func:`settle`: the one that ran before leaves threads spinning on the cores);
2. batch size 1 (``BATCH1_STEPS`` steps): the per-step Python overhead, as steps/s;
3. the test accuracy after each timed epoch, chainrule vs PyTorch: run r of every framework
   starts from the initial weights of seed r, and the means over the runs should agree to
   0.5 points (one pair alone differs by a few tenths: float32 trajectories drift apart);
4. the peak resident memory of one epoch of each, each in a fresh child process
   (the script runs itself with ``--child NAME``).
"""

from __future__ import annotations

import argparse
import sys

import _common as common  # puts the repository root on sys.path
import numpy as np

import chainrule as cr
from chainrule.layers import Dense

SIZES = (784, 256, 128, 10)
BATCH = 128
STEPS = 468  # one epoch of 60,000 samples at batch 128, the last partial batch dropped
BATCH1_STEPS = 2000
LEARNING_RATE, MOMENTUM = 0.05, 0.9
FRAMEWORKS = ("chainrule", "pytorch", "numpy")


# -- the three implementations ---------------------------------------------------------------------


def initial_weights(sizes=SIZES, seed: int = 0) -> list[np.ndarray]:
    """Glorot-uniform kernels (in, out) and zero biases, float32: [W1, b1, W2, b2, ...]."""
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        weights.append(np.zeros(fan_out, np.float32))
    return weights


class ChainruleMLP:
    def __init__(self, weights: list[np.ndarray]):
        hidden = [w.shape[1] for w in weights[0:-2:2]]
        self.model = cr.models.Sequential(
            [Dense(units, activation="relu") for units in hidden] + [Dense(weights[-2].shape[1])])
        self.model.build((None, weights[0].shape[0]))
        self.reset(weights)

    def reset(self, weights) -> None:
        self.model.set_weights(weights)
        self.model.compile(optimizer=cr.optimizers.SGD(learning_rate=LEARNING_RATE,
                                                               momentum=MOMENTUM),
                           loss=cr.losses.SparseCategoricalCrossentropy(from_logits=True))

    def train(self, x, y, batch_size: int, shuffle: bool = False) -> None:
        self.model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=shuffle)

    def logits(self, x) -> np.ndarray:
        return self.model.predict(x, batch_size=1000)


class TorchMLP:
    def __init__(self, weights: list[np.ndarray]):
        self.torch = torch = common.import_torch()
        layers = []
        for w in weights[0:-2:2]:
            layers += [torch.nn.Linear(*w.shape), torch.nn.ReLU()]
        layers.append(torch.nn.Linear(*weights[-2].shape))
        self.model = torch.nn.Sequential(*layers)
        self.loss = torch.nn.CrossEntropyLoss()
        self.reset(weights)

    def reset(self, weights) -> None:
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        with self.torch.no_grad():
            for layer, kernel, bias in zip(linears, weights[0::2], weights[1::2]):
                layer.weight.copy_(self.torch.from_numpy(kernel.T.copy()))
                layer.bias.copy_(self.torch.from_numpy(bias))
        self.optimizer = self.torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE,
                                              momentum=MOMENTUM)

    def train(self, x, y, batch_size: int, shuffle: bool = False) -> None:
        """One epoch; with ``shuffle``, as a plain PyTorch loop does it: a fresh
        ``torch.randperm`` and each batch gathered by its indices."""
        x, y = self.torch.from_numpy(x), self.torch.from_numpy(y)
        order = self.torch.randperm(len(x)) if shuffle else None
        for start in range(0, len(x), batch_size):
            if shuffle:
                batch = order[start:start + batch_size]
                xb, yb = x[batch], y[batch]
            else:
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            self.optimizer.zero_grad()
            loss = self.loss(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()

    def logits(self, x) -> np.ndarray:
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(x)).numpy()


class NumpyMLP:
    """Forward and backward written by hand, float32, buffers reused where it is easy."""

    def __init__(self, weights: list[np.ndarray]):
        self.reset(weights)

    def reset(self, weights) -> None:
        self.params = [w.copy() for w in weights]
        self.velocity = [np.zeros_like(w) for w in weights]

    def train(self, x, y, batch_size: int, shuffle: bool = False) -> None:
        params, velocity = self.params, self.velocity
        kernels, biases = params[0::2], params[1::2]
        order = np.random.default_rng().permutation(len(x)) if shuffle else None
        for start in range(0, len(x), batch_size):
            if shuffle:
                batch = order[start:start + batch_size]
                xb, yb = x[batch], y[batch]
            else:
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            activations = [xb]
            for kernel, bias in zip(kernels[:-1], biases[:-1]):
                h = activations[-1] @ kernel
                h += bias
                np.maximum(h, 0, out=h)
                activations.append(h)
            logits = activations[-1] @ kernels[-1]
            logits += biases[-1]
            # softmax cross-entropy, mean over the batch: dL/dlogits = (softmax - onehot) / n
            logits -= logits.max(axis=1, keepdims=True)
            np.exp(logits, out=logits)
            logits /= logits.sum(axis=1, keepdims=True)
            logits[np.arange(len(yb)), yb] -= 1
            grad = logits
            grad /= np.float32(len(yb))
            grads = [None] * len(params)
            for layer in range(len(kernels) - 1, -1, -1):
                grads[2 * layer] = activations[layer].T @ grad
                grads[2 * layer + 1] = grad.sum(axis=0)
                if layer > 0:
                    grad = grad @ kernels[layer].T
                    grad *= activations[layer] > 0
            for param, buffer, g in zip(params, velocity, grads):
                buffer *= np.float32(MOMENTUM)
                buffer += g
                param -= np.float32(LEARNING_RATE) * buffer

    def logits(self, x) -> np.ndarray:
        h = x
        for kernel, bias in zip(self.params[0:-2:2], self.params[1:-2:2]):
            h = np.maximum(h @ kernel + bias, 0)
        return h @ self.params[-2] + self.params[-1]


IMPLEMENTATIONS = {"chainrule": ChainruleMLP, "pytorch": TorchMLP, "numpy": NumpyMLP}


# -- the workloads ---------------------------------------------------------------------------------


def epoch_data(x, y, batch: int, steps: int):
    """The first ``steps`` full batches of one fixed permutation of (x, y), contiguous."""
    order = np.random.default_rng(1).permutation(len(x))[:batch * steps]
    return np.ascontiguousarray(x[order]), y[order]


def settle(net, weights, x, y, batch: int) -> None:
    """Train ``net`` untimed on the first four batches of (x, y) for
    :data:`_common.SETTLE_SECONDS` (see there), then reset it to ``weights``."""
    common.settle(lambda: net.train(x[:4 * batch], y[:4 * batch], batch))
    net.reset(weights)


def time_training(nets, x, y, batch: int, repeats: int, after=None,
                  shuffle: bool = False) -> dict[str, float]:
    """Median seconds of one pass over (x, y) per framework, alternating, each run right after
    :func:`settle`. Before its r-th run every framework starts from the initial weights of
    seed r (the same for all of them); ``after(name, r)``, if given, sees what each run
    trained; ``shuffle``: each pass in a fresh order, as each framework's users shuffle (see
    the module's docstring)."""
    runs = dict.fromkeys(nets, 0)

    def start_afresh(name):
        settle(nets[name], initial_weights([x.shape[1], *SIZES[1:]], seed=runs[name]), x, y,
               batch)
        runs[name] += 1

    # main() warmed every net up already, and run r must start from seed r: no warm-up round
    times = common.alternate(
        {name: (lambda net=net: net.train(x, y, batch, shuffle)) for name, net in nets.items()},
        repeats, setup=start_afresh, after=after, warmup=0)
    return {name: common.median(t) for name, t in times.items()}


def accuracy(net, x, y) -> float:
    return float((net.logits(x).argmax(axis=1) == y).mean())


def child(name: str) -> None:
    """``--child NAME``: train one epoch with one framework only (for its peak RSS)."""
    (x, y), _ = common.fashion_mnist(flat=True)
    x, y = epoch_data(x, y, BATCH, STEPS)
    IMPLEMENTATIONS[name](initial_weights()).train(x, y, BATCH)
    common.report_peak_rss()


def main(repeats: int) -> None:
    (x_train, y_train), (x_test, y_test) = common.fashion_mnist(flat=True)
    x, y = epoch_data(x_train, y_train, BATCH, STEPS)
    weights = initial_weights()
    nets = {name: make(weights) for name, make in IMPLEMENTATIONS.items()}
    for net in nets.values():  # warm up (BLAS threads, lazy builds), then start afresh
        net.train(x[:4 * BATCH], y[:4 * BATCH], BATCH)

    per_seed = {name: [] for name in nets}  # test accuracy after each timed epoch

    def evaluate(name, repeat):
        per_seed[name].append(accuracy(nets[name], x_test, y_test))

    epoch = time_training(nets, x, y, BATCH, repeats, after=evaluate)
    accuracies = {name: float(np.mean(values)) for name, values in per_seed.items()}
    as_users = time_training(nets, x_train, y_train, BATCH, repeats, shuffle=True)
    single = time_training(nets, x[:BATCH1_STEPS], y[:BATCH1_STEPS], 1, repeats)
    rss = {name: common.peak_rss_mb(["bench/mlp.py", "--child", name]) for name in FRAMEWORKS}

    print(f"MLP 784-256-128-10 ReLU, SGD(0.05, momentum 0.9), Fashion-MNIST; "
          f"medians of {repeats} alternating runs")
    rate = {name: BATCH1_STEPS / seconds for name, seconds in single.items()}
    rows = [
        [f"epoch, batch {BATCH} ({STEPS} steps), s", *(f"{epoch[n]:.2f}" for n in FRAMEWORKS),
         common.ratio(epoch["chainrule"], epoch["pytorch"]),
         common.ratio(epoch["chainrule"], epoch["numpy"])],
        [f"epoch as users run it ({len(x_train):,} samples, shuffled), s",
         *(f"{as_users[n]:.2f}" for n in FRAMEWORKS),
         common.ratio(as_users["chainrule"], as_users["pytorch"]),
         common.ratio(as_users["chainrule"], as_users["numpy"])],
        ["batch 1, steps/s (higher is better)", *(f"{rate[n]:.0f}" for n in FRAMEWORKS),
         common.ratio(single["chainrule"], single["pytorch"]),
         common.ratio(single["chainrule"], single["numpy"])],
        [f"test accuracy after the epoch, mean of {repeats} seeds, %",
         *(f"{100 * accuracies[n]:.2f}" for n in FRAMEWORKS), "", ""],
        ["peak RSS of one epoch (child), MB", *(f"{rss[n]:.0f}" for n in FRAMEWORKS),
         common.ratio(rss["chainrule"], rss["pytorch"]),
         common.ratio(rss["chainrule"], rss["numpy"])],
    ]
    common.print_table(["workload", *FRAMEWORKS, "cr/torch", "cr/numpy"], rows)
    print("ratios of times (batch-1 row: of time per step); below 1.00x chainrule is faster")
    gap = abs(accuracies["chainrule"] - accuracies["pytorch"])
    pairs = np.subtract(per_seed["chainrule"], per_seed["pytorch"])
    print(f"accuracy gap chainrule vs pytorch: {100 * gap:.2f} points over {repeats} seeds "
          f"({'within' if gap <= 0.005 else 'outside'} 0.5 points); per seed "
          f"{', '.join(f'{100 * d:+.2f}' for d in pairs)} (each pair from the same weights: "
          "float32 trajectories drift apart over 468 steps)")


# -- --scaling: epoch time vs batch size and width -------------------------------------------------

SCALING_BATCHES = (1, 4, 16, 64, 256, 1024)
SCALING_WIDTHS = (64, 128, 256, 512, 1024, 2048, 4096)
SCALING_SAMPLES = 60000


def seconds_per_epoch(nets, weights, x, y, batch: int, steps: int,
                      repeats: int) -> dict[str, float]:
    """Epoch time of each net extrapolated from ``steps`` steps: the frameworks run alternately,
    ``repeats`` times, each run from ``weights`` right after :func:`settle`; median seconds
    per step × steps per epoch. (Each run starts from the same weights: run after run on, a
    batch-1 run's momentum would go subnormal, see bench/denormals.py.)"""
    samples = batch * steps
    times = common.alternate(
        {name: (lambda net=net: net.train(x[:samples], y[:samples], batch))
         for name, net in nets.items()}, repeats,
        setup=lambda name: settle(nets[name], weights, x, y, batch))
    return {name: common.median(t) / steps * (SCALING_SAMPLES // batch)
            for name, t in times.items()}


def scaling(repeats: int) -> None:
    """Extrapolated epoch times at several batch sizes (widths 256-128) and hidden widths
    (784-w-w-10, batch 128), chainrule vs PyTorch; prints a table and plots docs/scaling.png."""
    (x, y), _ = common.fashion_mnist(flat=True)
    x, y = epoch_data(x, y, 1, SCALING_SAMPLES)
    results = {"batch": [], "width": []}
    settings = [("batch", batch, batch, initial_weights(), max(4, min(200, 4096 // batch)))
                for batch in SCALING_BATCHES]
    settings += [("width", width, BATCH, initial_weights((784, width, width, 10)),
                  20 if width <= 1024 else 5) for width in SCALING_WIDTHS]
    for kind, value, batch, weights, steps in settings:
        nets = {n: IMPLEMENTATIONS[n](weights) for n in ("chainrule", "pytorch")}
        results[kind].append(
            (value, seconds_per_epoch(nets, weights, x, y, batch, steps, repeats)))

    rows = []
    for kind, points in results.items():
        for value, times in points:
            rows.append([f"{kind} {value}", f"{times['chainrule']:.2f}",
                         f"{times['pytorch']:.2f}",
                         common.ratio(times["chainrule"], times["pytorch"])])
    print("\nscaling: epoch seconds extrapolated from a few steps (60,000 samples)")
    common.print_table(["setting", "chainrule", "pytorch", "cr/torch"], rows)
    plot_scaling(results)


def plot_scaling(results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = {"batch": "batch size (MLP 784-256-128-10)",
              "width": "hidden width w (MLP 784-w-w-10, batch 128)"}
    for axis, (kind, points) in zip(axes, results.items()):
        values = [value for value, _ in points]
        for name in ("chainrule", "pytorch"):
            axis.plot(values, [times[name] for _, times in points], "o-", label=name)
        axis.set(xscale="log", yscale="log", xlabel=labels[kind],
                 ylabel="seconds per epoch (extrapolated)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle("Epoch time on CPU, chainrule vs PyTorch (2 threads)")
    figure.tight_layout()
    path = common.ROOT / "docs" / "scaling.png"
    figure.savefig(path, dpi=100)
    print(f"wrote {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scaling", action="store_true",
                        help="also time epoch time vs batch size and width; plot docs/scaling.png")
    parser.add_argument("--scaling-only", action="store_true",
                        help="only the scaling curves (docs/scaling.png)")
    parser.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child)
        sys.exit(0)
    if not arguments.scaling_only:
        main(max(3, arguments.repeats))
    if arguments.scaling or arguments.scaling_only:
        scaling(arguments.repeats)
