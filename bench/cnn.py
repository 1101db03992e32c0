"""End-to-end CNN training and inference: chainrule's ``fit``/``predict`` vs PyTorch eager.

    python bench/cnn.py
    python bench/cnn.py --steps 100 --repeats 5

The lectures' CNN: conv 1→32 3×3 pad 1, ReLU, max-pool 2, conv 32→64 3×3 pad 1, ReLU, max-pool 2,
flatten, dense 128, ReLU, dense 10; SGD (0.05, momentum 0.9), softmax cross-entropy, batch 128,
Fashion-MNIST. Both start from the same weights and see the same batches in the same order.

1. ``--steps`` training steps (not a full epoch, to keep ``make bench`` short), alternating,
   medians of ``--repeats`` runs, each from the initial weights right after a quarter of a
   second of untimed steps of the same framework (``_common.settle``);
2. inference throughput at batch 1000 (``model.predict`` vs a ``torch.no_grad`` forward),
   settled the same way;
3. the peak resident memory of the training run of each, each in a fresh child process.
"""

from __future__ import annotations

import argparse
import sys

import _common as common  # puts the repository root on sys.path
import numpy as np

import chainrule as cr
from chainrule.layers import Conv2D, Dense, Flatten, MaxPooling2D

BATCH = 128
INFERENCE_BATCH, INFERENCE_IMAGES = 1000, 5000
LEARNING_RATE, MOMENTUM = 0.05, 0.9
FRAMEWORKS = ("chainrule", "pytorch")


class ChainruleCNN:
    def __init__(self):
        self.model = cr.models.Sequential([
            Conv2D(32, 3, padding="same", activation="relu"), MaxPooling2D(2),
            Conv2D(64, 3, padding="same", activation="relu"), MaxPooling2D(2),
            Flatten(), Dense(128, activation="relu"), Dense(10),
        ])
        self.model.build((None, 1, 28, 28))
        self.initial = [w.copy() for w in self.model.get_weights()]
        self.reset()

    def reset(self) -> None:
        self.model.set_weights(self.initial)
        self.model.compile(optimizer=cr.optimizers.SGD(learning_rate=LEARNING_RATE,
                                                       momentum=MOMENTUM),
                           loss=cr.losses.SparseCategoricalCrossentropy(from_logits=True))

    def train(self, x, y) -> None:
        self.model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)

    def logits(self, x) -> np.ndarray:
        return self.model.predict(x, batch_size=INFERENCE_BATCH)


class TorchCNN:
    def __init__(self, weights: list[np.ndarray]):
        self.torch = torch = common.import_torch()
        nn = torch.nn
        self.model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )
        self.loss = nn.CrossEntropyLoss()
        # chainrule's conv kernels share PyTorch's layout; its dense kernels are transposed
        params = list(self.model.parameters())
        self.initial = [w.T.copy() if p.ndim == 2 else w for p, w in zip(params, weights)]
        self.reset()

    def reset(self) -> None:
        with self.torch.no_grad():
            for param, value in zip(self.model.parameters(), self.initial):
                param.copy_(self.torch.from_numpy(value))
        self.optimizer = self.torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE,
                                              momentum=MOMENTUM)

    def train(self, x, y) -> None:
        x, y = self.torch.from_numpy(x), self.torch.from_numpy(y)
        for start in range(0, len(x), BATCH):
            self.optimizer.zero_grad()
            self.loss(self.model(x[start:start + BATCH]), y[start:start + BATCH]).backward()
            self.optimizer.step()

    def logits(self, x) -> np.ndarray:
        x = self.torch.from_numpy(x)
        with self.torch.no_grad():
            return np.concatenate([self.model(x[s:s + INFERENCE_BATCH]).numpy()
                                   for s in range(0, len(x), INFERENCE_BATCH)])


def make_nets() -> dict:
    ours = ChainruleCNN()
    return {"chainrule": ours, "pytorch": TorchCNN(ours.initial)}


def training_data(steps: int):
    (x, y), (x_test, _) = common.fashion_mnist(flat=False)
    order = np.random.default_rng(1).permutation(len(x))[:BATCH * steps]
    return np.ascontiguousarray(x[order]), y[order], x_test[:INFERENCE_IMAGES]


def child(name: str, steps: int) -> None:
    """``--child NAME``: train ``steps`` steps with one framework only (for its peak RSS)."""
    x, y, _ = training_data(steps)
    net = ChainruleCNN() if name == "chainrule" else TorchCNN(ChainruleCNN().initial)
    net.train(x, y)
    common.report_peak_rss()


def main(steps: int, repeats: int) -> None:
    x, y, x_test = training_data(steps)
    nets = make_nets()
    difference = np.abs(nets["chainrule"].logits(x_test[:100])
                        - nets["pytorch"].logits(x_test[:100])).max()
    assert difference < 1e-4, f"the two CNNs disagree before training ({difference:.2e})"

    def start_afresh(name):  # settled on its own steps, then from the initial weights
        common.settle(lambda: nets[name].train(x[:2 * BATCH], y[:2 * BATCH]))
        nets[name].reset()

    train = common.alternate({n: (lambda net=net: net.train(x, y)) for n, net in nets.items()},
                             repeats, setup=start_afresh)
    infer = common.alternate({n: (lambda net=net: net.logits(x_test)) for n, net in nets.items()},
                             repeats, setup=lambda name: common.settle(
                                 lambda: nets[name].logits(x_test[:INFERENCE_BATCH])))
    train = {n: common.median(t) for n, t in train.items()}
    rate = {n: INFERENCE_IMAGES / common.median(t) for n, t in infer.items()}
    rss = {n: common.peak_rss_mb(["bench/cnn.py", "--child", n, "--steps", str(steps)])
           for n in FRAMEWORKS}

    print(f"CNN conv32-pool-conv64-pool-dense128-10, batch {BATCH}, SGD(0.05, momentum 0.9), "
          f"Fashion-MNIST; medians of {repeats} alternating runs")
    rows = [
        [f"train {steps} steps, s", f"{train['chainrule']:.2f}", f"{train['pytorch']:.2f}",
         common.ratio(train["chainrule"], train["pytorch"])],
        [f"predict, batch {INFERENCE_BATCH}, images/s (higher is better)",
         f"{rate['chainrule']:.0f}", f"{rate['pytorch']:.0f}",
         common.ratio(rate["pytorch"], rate["chainrule"])],
        [f"peak RSS of the {steps}-step run (child), MB", f"{rss['chainrule']:.0f}",
         f"{rss['pytorch']:.0f}", common.ratio(rss["chainrule"], rss["pytorch"])],
    ]
    common.print_table(["workload", *FRAMEWORKS, "cr/torch"], rows)
    print("ratios of times (predict row: of time per image); below 1.00x chainrule is faster")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child, arguments.steps)
        sys.exit(0)
    main(arguments.steps, max(3, arguments.repeats))
