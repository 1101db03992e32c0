"""The character-level language model: batches, state carrying, training, sampling, saving, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import textgen
from chainrule.cli import main
from chainrule.datasets.text import Corpus

PATTERN = "def f(x):\n    return x\n"


def _tiny_settings(**overrides):
    settings = dict(epochs=1, steps_per_epoch=150, seq_len=16, batch_size=16,
                    learning_rate=1e-2, embedding_dim=8, units=32, seed=0)
    return {**settings, **overrides}


@pytest.fixture(scope="module")
def trained():
    """A small model trained on a repeated snippet until it knows it by heart."""
    cr.manual_seed(0)
    return textgen.train(Corpus(PATTERN * 60), log=None, sample_length=0, **_tiny_settings())


def test_random_windows_targets_are_the_next_characters(rng):
    ids = np.arange(100)
    inputs, targets = textgen.random_windows(ids, seq_len=10, batch_size=4, rng=rng)
    assert inputs.shape == targets.shape == (4, 10)
    np.testing.assert_array_equal(targets, inputs + 1)
    np.testing.assert_array_equal(np.diff(inputs, axis=1), 1)
    with pytest.raises(ValueError, match="fewer than seq_len"):
        textgen.random_windows(ids[:5], seq_len=10, batch_size=1, rng=rng)


def test_one_pass_equals_character_by_character_with_carried_state(rng):
    model = textgen.build(vocab_size=7, embedding_dim=4, units=5)
    ids = rng.integers(0, 7, size=(2, 9))
    whole, _ = model(ids)
    state, steps = None, []
    for t in range(ids.shape[1]):
        logits, state = model(ids[:, t:t + 1], initial_state=state)
        steps.append(logits.numpy())
    np.testing.assert_allclose(np.concatenate(steps, axis=1), whole.numpy(), rtol=1e-5,
                               atol=1e-6)
    assert whole.shape == (2, 9, 7)


def test_training_learns_a_repeated_snippet(trained):
    history = trained.history
    assert len(history.step_loss) == 150 and len(history.loss) == 1
    assert np.mean(history.step_loss[:10]) > 2.0  # about log(vocabulary) at the start
    assert np.mean(history.step_loss[-10:]) < 0.3
    assert history.val_loss[0] < 0.3
    greedy = trained.sample(len(PATTERN), temperature=0, prompt="def f(x):\n")
    assert greedy == "def f(x):\n" + (PATTERN * 2)[len("def f(x):\n"):][:len(PATTERN)]


def test_sampling_is_seeded_and_checks_its_arguments(trained):
    first = trained.sample(40, temperature=1.0, prompt="ret", seed=3)
    assert first == trained.sample(40, temperature=1.0, prompt="ret", seed=3)
    assert first.startswith("ret") and len(first) == 43
    assert trained.sample(0, prompt="def") == "def"
    assert set(trained.sample(30, temperature=1.5, seed=1)) <= set(PATTERN)
    with pytest.raises(ValueError, match=r"character 'Z' .* not in the corpus vocabulary"):
        trained.sample(10, prompt="Z")
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        trained.sample(10, temperature=-1)


def test_pick_follows_the_tempered_softmax():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([0.2, 0.8]))
    draws = [textgen._pick(logits, 1.0, rng) for _ in range(4000)]
    assert abs(np.mean(draws) - 0.8) < 0.03
    sharpened = [textgen._pick(logits, 0.25, rng) for _ in range(2000)]  # p ∝ p^4: 0.9961
    assert np.mean(sharpened) > 0.98
    assert textgen._pick(logits, 0, rng) == 1


def test_save_and_load_round_trip(trained, tmp_path):
    path = trained.save(tmp_path / "model")
    again = textgen.TextGenerator.load(tmp_path / "model")
    assert path.endswith("model.npz") and again.vocab == trained.vocab
    assert again.config == trained.config
    assert again.history.step_loss == trained.history.step_loss
    assert again.sample(50, prompt="def", seed=7) == trained.sample(50, prompt="def", seed=7)
    with open(tmp_path / "model" / "history.json") as file:
        assert json.load(file)["loss"] == trained.history.loss
    with pytest.raises(FileNotFoundError, match="no trained model there"):
        textgen.TextGenerator.load(tmp_path / "missing")


def test_untrained_loss_is_about_log_vocabulary():
    corpus = Corpus("abcdefgh" * 50)
    model = textgen.build(corpus.vocab_size, embedding_dim=4, units=8)
    loss = textgen.evaluate(model, corpus.ids, seq_len=16, batch_size=8)
    assert abs(loss - np.log(8)) < 0.1


def test_command_line_trains_and_samples(tmp_path, capsys):
    import chainrule.commands_textgen  # noqa: F401 - registers the subcommand

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(PATTERN * 20)
    out = tmp_path / "run"
    assert main(["textgen", "train", "--corpus", str(corpus), "--out", str(out), "--steps", "3",
                 "--seq-len", "8", "--batch-size", "4", "--units", "8", "--embedding-dim", "4",
                 "--seed", "1"]) == 0
    assert (out / "model.npz").exists() and "saved to" in capsys.readouterr().out
    assert main(["textgen", "sample", "--model-path", str(out), "--length", "20",
                 "--prompt", "def ", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("def ") and len(printed.rstrip("\n")) >= 24
    assert main(["textgen", "sample", "--model-path", str(tmp_path / "none")]) == 1
    assert "no trained model there" in capsys.readouterr().err


class Killed(Exception):
    """Stands for a kill: training stops at once."""


def _kill_at(line_number: int):
    """A log function that kills training at its ``line_number``-th progress line."""
    seen = []

    def log(line):
        seen.append(line)
        if len(seen) == line_number:
            raise Killed(line)

    return log


@pytest.mark.parametrize("kill_at_line", [3, 5, 8])
def test_a_killed_run_resumed_from_its_backup_ends_bit_identical(tmp_path, kill_at_line):
    corpus = Corpus(PATTERN * 40)
    settings = _tiny_settings(epochs=3, steps_per_epoch=12, units=8, embedding_dim=4)
    whole = textgen.train(corpus, out_dir=tmp_path / "whole", log=None, sample_length=0,
                          backup_every=2, **settings)
    out = tmp_path / "killed"
    with pytest.raises(Killed):  # lines: start, then every 4th step and each epoch's end
        textgen.train(corpus, out_dir=out, log=_kill_at(kill_at_line), log_every=4,
                      sample_length=0, backup_every=2, **settings)
    assert (out / "backup.npz").exists()
    cr.manual_seed(99)  # another process: chainrule's generator elsewhere
    resumed = textgen.train(corpus, out_dir=out, log=None, sample_length=0, backup_every=2,
                            resume=True, **settings)
    for name, weight in whole.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[name], weight, err_msg=name)
    assert resumed.history.step_loss == whole.history.step_loss
    assert resumed.history.loss == whole.history.loss
    assert not (out / "backup.npz").exists()


def test_resume_needs_a_backup_made_with_the_same_settings(tmp_path):
    corpus = Corpus(PATTERN * 40)
    settings = _tiny_settings(epochs=2, steps_per_epoch=6, units=8, embedding_dim=4)
    with pytest.raises(FileNotFoundError, match="no backup to continue from"):
        textgen.train(corpus, out_dir=tmp_path, log=None, resume=True, **settings)
    with pytest.raises(Killed):
        textgen.train(corpus, out_dir=tmp_path, log=_kill_at(2), log_every=2, sample_length=0,
                      backup_every=1, **settings)
    with pytest.raises(ValueError, match=r"another config \(learning_rate differ"):
        textgen.train(corpus, out_dir=tmp_path, log=None, resume=True,
                      **{**settings, "learning_rate": 0.5})
