"""The char-LSTM trained by chainrule and by PyTorch from the same weights on the same batches.

    python bench/lstm.py [--warmup 30] [--rounds 5] [--chunk 100] [--threads 2] [--clock cpu]

The model of ``chainrule textgen``: Embedding(vocab≈95, 64) → LSTM(256) → Dense(vocab) on windows
of 64 characters, batch 32, of 200 KB of the Python standard library's source; Adam 2e-3 and
gradient-norm clipping at 5 (Adam's ε is chainrule's default, 1e-7, given to both). PyTorch runs
nn.Embedding + nn.LSTM(batch_first) + nn.Linear, starting from chainrule's initial weights. Both
libraries get ``--threads`` threads (default 2: torch.set_num_threads and OPENBLAS_NUM_THREADS,
set before NumPy loads OpenBLAS).

Both first train ``--warmup`` steps untimed: PyTorch's first ~20 LSTM steps on 2 threads run
30-60x slower than its steady state, and a benchmark that times them flatters chainrule. Then
``--rounds`` timed rounds of ``--chunk`` steps each, the two trainings taking turns (the one that
goes first alternates from round to round; the machine is shared and noisy), each framework
seeing the same batches in the same order. The script prints every round's times and ratio,
then the medians: the median of the per-round ratios (chainrule / PyTorch) is the number to
quote. Both losses after the last step (the mean over the last 20 steps, and the last step's)
should agree to ~0.05, and over the first steps to rounding (same weights, same math).
On a shared machine, ``--threads 1 --clock cpu`` compares the CPU time each library needs.
``--own-threads`` runs chainrule's whole training step inside ``kernels.own_threads()`` (BLAS on
one thread, so that its idle worker does not spin on the core the LSTM's second thread needs):
what a training loop that holds BLAS for the step would measure, not what ``textgen`` does now.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

parser = argparse.ArgumentParser(description="char-LSTM training: chainrule vs PyTorch")
parser.add_argument("--warmup", type=int, default=30, help="untimed steps of each first")
parser.add_argument("--rounds", type=int, default=5, help="timed rounds (at least 3)")
parser.add_argument("--chunk", type=int, default=100, help="steps of each framework per round")
parser.add_argument("--max-chars", type=int, default=200_000)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--threads", type=int, default=2, help="threads of both libraries")
parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: the process's CPU time of the main thread, which a busy machine "
                         "disturbs less (needs --threads 1: all work then runs in that thread)")
parser.add_argument("--own-threads", action="store_true",
                    help="chainrule's training step inside kernels.own_threads() (see above)")
args = parser.parse_args()
if args.rounds < 3 or args.chunk < 1 or args.warmup < 0:
    parser.error("--rounds must be at least 3, --chunk at least 1 and --warmup at least 0")
if args.clock == "cpu" and args.threads != 1:
    parser.error("--clock cpu measures one thread: use it with --threads 1")
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402

sys.path.insert(0, ".")
import chainrule as cr  # noqa: E402
from chainrule import kernels, textgen  # noqa: E402
from chainrule.datasets import text  # noqa: E402
from chainrule.optimizers import Adam  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - the benchmark needs torch
    sys.exit("bench/lstm.py needs PyTorch: pip install torch==2.13.0")

SEQ_LEN, BATCH, EMBEDDING, UNITS, LR, EPSILON, CLIP = 64, 32, 64, 256, 2e-3, 1e-7, 5.0


class TorchCharLSTM(torch.nn.Module):
    """PyTorch's twin of :class:`chainrule.textgen.CharLanguageModel`."""

    def __init__(self, vocab_size):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, EMBEDDING)
        self.lstm = torch.nn.LSTM(EMBEDDING, UNITS, batch_first=True)
        self.head = torch.nn.Linear(UNITS, vocab_size)

    def forward(self, ids):
        sequence, _ = self.lstm(self.embedding(ids))
        return self.head(sequence)

    def copy_from(self, model: textgen.CharLanguageModel):
        """Take chainrule's weights (Keras layouts) into PyTorch's layouts."""
        with torch.no_grad():
            self.embedding.weight.copy_(torch.from_numpy(model.embedding.embeddings.numpy()))
            self.lstm.weight_ih_l0.copy_(torch.from_numpy(model.lstm.kernel.numpy().T))
            self.lstm.weight_hh_l0.copy_(torch.from_numpy(model.lstm.recurrent_kernel.numpy().T))
            self.lstm.bias_ih_l0.copy_(torch.from_numpy(model.lstm.bias.numpy()))
            self.lstm.bias_hh_l0.zero_()
            self.head.weight.copy_(torch.from_numpy(model.head.kernel.numpy().T))
            self.head.bias.copy_(torch.from_numpy(model.head.bias.numpy()))
        # Keras (and chainrule) have one LSTM bias; PyTorch's two receive the same gradient, so
        # with both trained Adam would move their sum twice as fast. Freeze the second at zero.
        self.lstm.bias_hh_l0.requires_grad_(False)


def main() -> None:
    torch.set_num_threads(args.threads)

    steps = args.warmup + args.rounds * args.chunk
    corpus = text.load(max_chars=args.max_chars)
    rng = np.random.default_rng(args.seed)
    batches = [textgen.random_windows(corpus.ids, SEQ_LEN, BATCH, rng) for _ in range(steps)]

    cr.manual_seed(args.seed)
    ours = textgen.build(corpus.vocab_size, EMBEDDING, UNITS)
    our_optimizer = Adam(ours.parameters(), learning_rate=LR, epsilon=EPSILON)
    theirs = TorchCharLSTM(corpus.vocab_size)
    theirs.copy_from(ours)
    their_optimizer = torch.optim.Adam([p for p in theirs.parameters() if p.requires_grad],
                                       lr=LR, eps=EPSILON)
    torch_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def our_step(k):
        inputs, targets = batches[k]
        if args.own_threads:
            with kernels.own_threads():
                return textgen.train_step(ours, our_optimizer, inputs, targets, CLIP)
        return textgen.train_step(ours, our_optimizer, inputs, targets, CLIP)

    def their_step(k):
        inputs, targets = torch_batches[k]
        logits = theirs(inputs)
        loss = TF.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        their_optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), CLIP)
        their_optimizer.step()
        return loss.item()

    print(f"char-LSTM: {len(corpus):,} characters, vocabulary {corpus.vocab_size}, embedding "
          f"{EMBEDDING}, LSTM {UNITS}, seq {SEQ_LEN}, batch {BATCH}; {args.warmup} warm-up steps, "
          f"then {args.rounds} rounds of {args.chunk} steps each; Adam {LR} (eps {EPSILON}), "
          f"clip {CLIP}; torch {torch.__version__}, {args.threads} thread(s) each, kernels "
          f"{kernels.active()}{', step inside own_threads' if args.own_threads else ''}")
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    steppers = {"chainrule": our_step, "pytorch": their_step}
    losses = {name: [step(k) for k in range(args.warmup)] for name, step in steppers.items()}
    seconds = {name: [] for name in steppers}
    for round_ in range(args.rounds):
        first = args.warmup + round_ * args.chunk
        chunk = range(first, first + args.chunk)
        for name in sorted(steppers, reverse=round_ % 2 == 1):  # who goes first alternates
            started = clock()
            losses[name].extend(steppers[name](k) for k in chunk)
            seconds[name].append((clock() - started) * 100 / len(chunk))
        print(f"  round {round_ + 1}, steps {chunk.start + 1}-{chunk.stop}: chainrule "
              f"{seconds['chainrule'][-1]:.2f} s, pytorch {seconds['pytorch'][-1]:.2f} s per 100 "
              f"steps, ratio {seconds['chainrule'][-1] / seconds['pytorch'][-1]:.2f}x; loss "
              f"{losses['chainrule'][-1]:.4f} vs {losses['pytorch'][-1]:.4f}")

    ours_s, theirs_s = (statistics.median(seconds[n]) for n in steppers)
    ratios = [a / b for a, b in zip(seconds["chainrule"], seconds["pytorch"])]
    print(f"median {args.clock} time per 100 steps: chainrule {ours_s:.2f} s, pytorch "
          f"{theirs_s:.2f} s (ratio of the medians {ours_s / theirs_s:.2f}x); median of the "
          f"round ratios {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-"
          f"{max(ratios):.2f}x)")
    tail = min(20, steps)
    for name in steppers:
        print(f"{name} loss after {steps} steps: {losses[name][-1]:.4f} "
              f"(mean of the last {tail}: {np.mean(losses[name][-tail:]):.4f})")
    early = min(10, steps)
    start_gap = np.max(np.abs(np.subtract(losses["chainrule"][:early], losses["pytorch"][:early])))
    print(f"largest loss difference over the first {early} steps: {start_gap:.2e} (same math)")
    gap = abs(np.mean(losses["chainrule"][-tail:]) - np.mean(losses["pytorch"][-tail:]))
    print(f"loss difference (mean of the last {tail} steps): {gap:.4f}")


if __name__ == "__main__":
    main()
