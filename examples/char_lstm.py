"""A character-level LSTM that learns to write Python, trained on Python's own standard library.

    python examples/char_lstm.py [--max-chars 2000000] [--epochs 6] [--out runs/char_lstm]

Embedding(vocab, 64) → LSTM(256) → Dense(vocab), Adam 2e-3, gradient-norm clipping at 5, random
windows of 64 characters in batches of 32 (see chainrule.textgen). After training it saves the
model to --out, draws the loss curve to --plot (needs matplotlib) and prints samples at three
temperatures, each starting from "def ". The same from the command line::

    chainrule textgen train --max-chars 2000000 --epochs 6 --out runs/char_lstm
    chainrule textgen sample --model-path runs/char_lstm --prompt "def " --temperature 0.8
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

sys.path.insert(0, ".")
from chainrule import textgen  # noqa: E402
from chainrule.datasets import text  # noqa: E402


def plot_loss(history: textgen.History, path: str, smoothing: int = 50) -> None:
    """The training loss per step (a moving average) and the validation loss per epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    losses = np.asarray(history.step_loss)
    axes.plot(np.arange(1, len(losses) + 1), losses, color="lightgray", linewidth=0.6,
              label="training loss (per step)")
    if len(losses) >= smoothing:
        average = np.convolve(losses, np.ones(smoothing) / smoothing, mode="valid")
        axes.plot(np.arange(smoothing, len(losses) + 1), average, linewidth=1.5,
                  label=f"training loss ({smoothing}-step average)")
    steps_per_epoch = len(losses) // len(history.val_loss)
    epochs_end = steps_per_epoch * np.arange(1, len(history.val_loss) + 1)
    axes.plot(epochs_end, history.val_loss, "o-", label="validation loss (per epoch)")
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy (nats per character)")
    axes.set_ylim(0, min(4.7, float(losses.max()) + 0.1))
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title("char-LSTM on the Python standard library")
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=None, help="text file or folder (default: stdlib)")
    parser.add_argument("--max-chars", type=int, default=2_000_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch")
    parser.add_argument("--out", default="runs/char_lstm")
    parser.add_argument("--plot", default="docs/textgen_loss.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    corpus = text.load(args.corpus, max_chars=args.max_chars)
    generator = textgen.train(corpus, out_dir=args.out, log=lambda line: print(line, flush=True),
                              epochs=args.epochs, steps_per_epoch=args.steps, seed=args.seed)
    try:
        plot_loss(generator.history, args.plot)
        print(f"loss curve: {args.plot}")
    except ImportError:
        print("(no matplotlib: pip install chainrule[plot] for the loss curve)")
    for temperature in (0.5, 0.8, 1.0):
        print(f"\n--- temperature {temperature} ---")
        print(generator.sample(500, temperature=temperature, prompt="def ", seed=args.seed))


if __name__ == "__main__":
    main()
