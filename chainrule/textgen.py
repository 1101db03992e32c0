"""A character-level language model that writes text and source code (Karpathy's char-rnn).

The model reads characters and predicts the next one at every position::

    ids (batch, time) → Embedding(vocab, 64) → LSTM(256, return_sequences) → Dense(vocab) → logits

It is trained by minimising the cross-entropy of the next character over random windows of the
corpus (by default the Python standard library's source, :func:`chainrule.datasets.text.load`),
with Adam and gradient-norm clipping, the cure for the exploding gradients of backpropagation
through time. Then it writes: starting from a prompt, it samples a character from
softmax(logits / temperature), feeds it back, and carries the LSTM's state along. A low
temperature makes it cautious and repetitive, a high one inventive and misspelt.

>>> from chainrule import textgen
>>> from chainrule.datasets import text
>>> generator = textgen.train(text.load(max_chars=200_000), epochs=1)   # doctest: +SKIP
>>> print(generator.sample(200, temperature=0.8, prompt="def "))       # doctest: +SKIP
>>> generator.save("runs/char-lstm")                                    # doctest: +SKIP
>>> generator = textgen.TextGenerator.load("runs/char-lstm")            # doctest: +SKIP

From the command line: ``chainrule textgen train --out DIR`` and
``chainrule textgen sample --model-path DIR --prompt "def "``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

import chainrule as cr
from chainrule import functional as F
from chainrule import io
from chainrule.datasets.text import Corpus
from chainrule.layers.base import Layer
from chainrule.layers.core import Dense
from chainrule.layers.embedding import Embedding
from chainrule.layers.recurrent import LSTM
from chainrule.optimizers import Adam, clip_grad_norm

#: The file a trained generator is saved to, inside its folder.
MODEL_FILE = "model.npz"
#: The training history, as JSON beside it (also inside the model file).
HISTORY_FILE = "history.json"


class CharLanguageModel(Layer):
    """Embedding → LSTM(return_sequences) → Dense: next-character logits at every position.

    ``model(ids, initial_state=None)`` returns ``(logits, [h, c])``: logits (batch, time, vocab)
    and the LSTM's final states, to continue from when sampling one character at a time.

    Args:
        vocab_size: the number of distinct characters.
        embedding_dim: the length of a character's vector (default 64).
        units: the LSTM's state size (default 256).
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 64, units: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.embedding_dim, self.units = vocab_size, embedding_dim, units
        self.embedding = Embedding(vocab_size, embedding_dim)
        self.lstm = LSTM(units, return_sequences=True, return_state=True)
        self.head = Dense(vocab_size)

    def forward(self, ids, initial_state=None):
        sequence, h, c = self.lstm(self.embedding(ids), initial_state=initial_state)
        return self.head(sequence), [h, c]

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim, "units": self.units}


@dataclass
class TrainConfig:
    """The settings of :func:`train` (saved with the model)."""

    epochs: int = 1
    steps_per_epoch: int | None = None
    seq_len: int = 64
    batch_size: int = 32
    learning_rate: float = 2e-3
    clip_norm: float = 5.0
    embedding_dim: int = 64
    units: int = 256
    validation_fraction: float = 0.05
    seed: int = 0


@dataclass
class History:
    """What training recorded: the loss of every step, and per epoch the mean training loss,
    the validation loss (nats per character) and the seconds taken."""

    step_loss: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    seconds: list = field(default_factory=list)


class TextGenerator:
    """A trained character model with its vocabulary: samples text, saves and loads itself.

    Args:
        model: a built :class:`CharLanguageModel`.
        vocab: the characters, in id order.
        config: the :class:`TrainConfig` it was trained with (or None).
        history: the :class:`History` of training (or None).
    """

    def __init__(self, model: CharLanguageModel, vocab, config: TrainConfig | None = None,
                 history: History | None = None):
        self.model, self.vocab = model, list(vocab)
        self.config, self.history = config, history or History()
        self._codec = Corpus("".join(self.vocab))

    def encode(self, text: str) -> np.ndarray:
        return self._codec.encode(text)

    def decode(self, ids) -> str:
        return self._codec.decode(ids)

    def sample(self, length: int = 500, temperature: float = 0.8, prompt: str = "",
               seed: int | None = None) -> str:
        """The prompt followed by ``length`` sampled characters.

        The prompt is read in one pass; then each character is drawn from
        softmax(logits / temperature) of the last position and fed back with the carried LSTM
        state. ``temperature=0`` always takes the most likely character. A prompt character
        outside the vocabulary is an error naming it.
        """
        if length < 0 or temperature < 0:
            raise ValueError(f"sample: length and temperature must be >= 0, got {length}, "
                             f"{temperature}")
        rng = np.random.default_rng(seed)
        start = self.encode(prompt) if prompt else self._default_start(rng)
        generated = np.empty(length, dtype=np.int64)
        was_training = self.model.training
        self.model.eval()
        try:
            with cr.no_grad():
                logits, state = self.model(start[None, :])
                for k in range(length):
                    generated[k] = _pick(logits.data[0, -1], temperature, rng)
                    logits, state = self.model(generated[None, k:k + 1], initial_state=state)
        finally:
            self.model.train(was_training)
        return prompt + self.decode(generated)

    def _default_start(self, rng) -> np.ndarray:
        """Start an unprompted sample on a new line (or a random character if there is none)."""
        if "\n" in self.vocab:
            return self.encode("\n")
        return np.array([rng.integers(len(self.vocab))], dtype=np.int64)

    def loss(self, ids, seq_len: int = 64, batch_size: int = 32, max_batches: int = 64) -> float:
        """Mean next-character cross-entropy (nats) over consecutive windows of ``ids``."""
        return evaluate(self.model, ids, seq_len, batch_size, max_batches)

    # -- saving -------------------------------------------------------------------------------

    def save(self, folder) -> str:
        """Write the weights, vocabulary, settings and history to ``folder/model.npz`` (and the
        history to ``history.json``); returns the model file's path."""
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, MODEL_FILE)
        tree = {
            "weights": self.model.state_dict(),
            "model": {"vocab_size": self.model.vocab_size,
                      "embedding_dim": self.model.embedding_dim, "units": self.model.units},
            "vocab": self.vocab,
            "config": asdict(self.config) if self.config is not None else None,
            "history": asdict(self.history),
        }
        io.save_tree(path, tree, metadata={"kind": "chainrule.textgen"})
        io.write_json(os.path.join(folder, HISTORY_FILE), asdict(self.history))
        return path

    @classmethod
    def load(cls, folder) -> TextGenerator:
        """The generator saved in ``folder`` by :meth:`save`."""
        path = os.path.join(folder, MODEL_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{folder}: no trained model there (expected {MODEL_FILE}; "
                                    "train one with `chainrule textgen train --out DIR`)")
        tree = io.load_tree(path)
        model = CharLanguageModel(**tree["model"])
        model(np.zeros((1, 1), dtype=np.int64))  # build, then overwrite the weights
        model.load_state_dict(tree["weights"])
        config = TrainConfig(**tree["config"]) if tree.get("config") else None
        return cls(model, tree["vocab"], config, History(**tree.get("history", {})))


def _pick(logits: np.ndarray, temperature: float, rng) -> int:
    """A character id from softmax(logits / temperature); the argmax at temperature 0."""
    if temperature == 0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / temperature
    weights = np.exp(scaled - scaled.max())
    cumulative = np.cumsum(weights)
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


# -- data -----------------------------------------------------------------------------------------


def random_windows(ids: np.ndarray, seq_len: int, batch_size: int, rng):
    """A batch of random windows: inputs ids[s : s + L] and targets ids[s + 1 : s + L + 1].

    Returns two int64 arrays of shape (batch_size, seq_len); the targets are the inputs shifted
    by one character (the next character at every position).
    """
    if len(ids) < seq_len + 1:
        raise ValueError(f"random_windows: the text has {len(ids)} characters, fewer than "
                         f"seq_len + 1 = {seq_len + 1}")
    starts = rng.integers(0, len(ids) - seq_len, size=batch_size)
    positions = starts[:, None] + np.arange(seq_len + 1)
    windows = ids[positions]
    return windows[:, :-1], windows[:, 1:]


def evaluate(model: CharLanguageModel, ids, seq_len: int = 64, batch_size: int = 32,
             max_batches: int = 64) -> float:
    """Mean next-character cross-entropy (nats) over consecutive windows of ``ids``."""
    ids = np.asarray(ids, dtype=np.int64)
    count = min((len(ids) - 1) // seq_len, batch_size * max_batches)
    if count == 0:
        raise ValueError(f"evaluate: {len(ids)} characters are too few for one window of "
                         f"{seq_len + 1}")
    starts = np.arange(count) * seq_len
    total = 0.0
    was_training = model.training
    model.eval()
    try:
        with cr.no_grad():
            for first in range(0, count, batch_size):
                positions = starts[first:first + batch_size, None] + np.arange(seq_len + 1)
                windows = ids[positions]
                logits, _ = model(windows[:, :-1])
                loss = F.softmax_cross_entropy(logits, windows[:, 1:], reduction="sum")
                total += float(loss.item())
    finally:
        model.train(was_training)
    return total / (count * seq_len)


# -- training -------------------------------------------------------------------------------------


def build(vocab_size: int, embedding_dim: int = 64, units: int = 256) -> CharLanguageModel:
    """A new, built :class:`CharLanguageModel` (weights from chainrule's seeded generator)."""
    model = CharLanguageModel(vocab_size, embedding_dim, units)
    model(np.zeros((1, 1), dtype=np.int64))
    return model


def train(corpus: Corpus, out_dir=None, log=print, log_every: int = 100,
          sample_length: int = 200, backup_every: int = 100, resume: bool = False,
          **settings) -> TextGenerator:
    """Train a character LSTM on ``corpus`` and return the :class:`TextGenerator`.

    The last ``validation_fraction`` of the text is held out for the validation loss. Each step
    takes ``batch_size`` random windows of ``seq_len`` characters, minimises the mean
    next-character cross-entropy with Adam, clipping the gradient norm to ``clip_norm``.

    With ``out_dir``, the run is backed up to ``out_dir/backup.npz`` every ``backup_every``
    steps and at the end of every epoch (weights, Adam's state, the window generator's and
    chainrule's generator states, the position, the history); ``resume=True`` continues from
    that backup with the same settings and ends with the weights of an uninterrupted run, bit
    for bit. The backup is removed when training ends.

    Args:
        corpus: a :class:`~chainrule.datasets.text.Corpus` (``chainrule.datasets.text.load()``).
        out_dir: if given, the generator is saved there after every epoch.
        log: a function of one string for progress lines (None: silent).
        log_every: steps between progress lines.
        sample_length: characters of the sample logged after every epoch (0: none).
        backup_every: steps between backups (with ``out_dir``).
        resume: continue from ``out_dir``'s backup (an error if there is none, or if it was
            made with other settings or another corpus).
        **settings: the fields of :class:`TrainConfig` (epochs, steps_per_epoch, seq_len,
            batch_size, learning_rate, clip_norm, embedding_dim, units, validation_fraction,
            seed). ``steps_per_epoch`` defaults to one pass over the training text:
            len(text) // (seq_len · batch_size) steps.
    """
    config = TrainConfig(**settings)
    log = log or (lambda line: None)
    ids = corpus.ids
    held_out = int(len(ids) * config.validation_fraction)
    train_ids, val_ids = (ids[:-held_out], ids[-held_out:]) if held_out > config.seq_len else (
        ids, None)
    steps = config.steps_per_epoch or max(1, len(train_ids) // (config.seq_len
                                                                * config.batch_size))
    cr.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build(corpus.vocab_size, config.embedding_dim, config.units)
    optimizer = Adam(model.parameters(), learning_rate=config.learning_rate)
    generator = TextGenerator(model, corpus.vocab, config, History())
    backup = _Backup(out_dir, config, corpus, generator, optimizer, rng)
    epoch, done, losses = backup.restore() if resume else (1, 0, [])
    log(f"textgen: {len(train_ids):,} training characters, vocabulary {corpus.vocab_size}, "
        f"{model.count_params():,} parameters, {config.epochs} epoch(s) of {steps} steps"
        + (f"; resumed at epoch {epoch}, step {done}" if resume else ""))
    while epoch <= config.epochs:
        started = time.perf_counter()
        for step in range(done + 1, steps + 1):
            inputs, targets = random_windows(train_ids, config.seq_len, config.batch_size, rng)
            losses.append(train_step(model, optimizer, inputs, targets, config.clip_norm))
            if step % log_every == 0 or step == steps:
                rate = step * config.seq_len * config.batch_size / (time.perf_counter() - started)
                log(f"epoch {epoch} step {step}/{steps}: loss "
                    f"{np.mean(losses[-log_every:]):.4f} ({rate:,.0f} chars/s)")
            if step % backup_every == 0 and step < steps:
                backup.save(epoch, step, losses)
        history = generator.history
        history.step_loss.extend(losses)
        history.loss.append(float(np.mean(losses)))
        history.val_loss.append(evaluate(model, val_ids, config.seq_len, config.batch_size)
                                if val_ids is not None else math.nan)
        history.seconds.append(time.perf_counter() - started)
        log(f"epoch {epoch}: loss {history.loss[-1]:.4f}, val_loss {history.val_loss[-1]:.4f} "
            f"({history.seconds[-1]:.0f} s)")
        if sample_length:
            log(generator.sample(sample_length, temperature=0.8, seed=config.seed))
        if out_dir is not None:
            generator.save(out_dir)
        epoch, done, losses = epoch + 1, 0, []
        backup.save(epoch, done, losses)
    backup.remove()
    return generator


class _Backup:
    """``train``'s backup: ``out_dir/backup.npz`` (nothing without ``out_dir``)."""

    FILE = "backup.npz"

    def __init__(self, out_dir, config, corpus, generator, optimizer, rng):
        self.path = None if out_dir is None else os.path.join(out_dir, self.FILE)
        self.config, self.generator, self.optimizer, self.rng = config, generator, optimizer, rng
        self.corpus = {"characters": int(len(corpus.ids)), "vocab": list(generator.vocab)}

    def save(self, epoch: int, step: int, losses: list) -> None:
        if self.path is None:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        io.save_tree(self.path, {
            "config": asdict(self.config), "corpus": self.corpus,
            "epoch": epoch, "step": step, "losses": list(losses),
            "weights": self.generator.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "windows": self.rng.bit_generator.state,
            "generator": cr.random.get_generator().bit_generator.state,
            "history": asdict(self.generator.history),
        })

    def restore(self) -> tuple:
        """Put the backup back; returns ``(epoch, step, losses)`` to continue from."""
        if self.path is None or not os.path.exists(self.path):
            raise FileNotFoundError(f"resume: no backup to continue from "
                                    f"({self.path or 'no out_dir given'})")
        tree = io.load_tree(self.path)
        for key, mine in (("config", asdict(self.config)), ("corpus", self.corpus)):
            if tree[key] != mine:
                differ = sorted(k for k in mine if tree[key].get(k) != mine[k])
                raise ValueError(f"resume: the backup in {self.path} was made with another "
                                 f"{key} ({', '.join(differ)} differ); give the same settings "
                                 f"and corpus, or start afresh in another folder")
        self.generator.model.load_state_dict(tree["weights"])
        self.optimizer.load_state_dict(tree["optimizer"])
        self.rng.bit_generator.state = tree["windows"]
        cr.random.get_generator().bit_generator.state = tree["generator"]
        self.generator.history = History(**tree["history"])
        return int(tree["epoch"]), int(tree["step"]), list(tree["losses"])

    def remove(self) -> None:
        if self.path is not None and os.path.exists(self.path):
            os.remove(self.path)


def train_step(model, optimizer, inputs, targets, clip_norm: float | None = 5.0) -> float:
    """One update: forward, mean cross-entropy, backward, clip the gradient norm, Adam step."""
    logits, _ = model(inputs)
    loss = F.softmax_cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    if clip_norm:
        clip_grad_norm(model.parameters(), clip_norm)
    optimizer.step()
    return float(loss.item())


__all__ = ["CharLanguageModel", "History", "TextGenerator", "TrainConfig", "build", "evaluate",
           "random_windows", "train", "train_step"]
