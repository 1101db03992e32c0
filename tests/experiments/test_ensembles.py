"""The ensembles study: the AUROC against scikit-learn, ``measure`` and ``chainrule study
ensembles`` on a tiny subset, and bad arguments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from chainrule import cli
from chainrule.experiments import ensembles
from chainrule.experiments.ensembles import auroc, average_ranks, entropy
from tests.data_helpers import needs_fashion_mnist  # noqa: E402

roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score


needs_data = needs_fashion_mnist

#: 256 samples in batches of 128 for 3 epochs: 6 steps, enough for the 5 snapshot cycles;
#: scored on 2,000 test and 2,000 noise images.
TINY = {"epochs": 3, "members": 2, "samples": 2, "limit": 256, "seed": 0, "test_limit": 2000}


# -- AUROC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_scikit_learn_on_random_scores(seed):
    generator = np.random.default_rng(seed)
    labels = generator.integers(0, 2, 500)
    scores = generator.normal(size=500) + 0.7 * labels
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_auroc_matches_scikit_learn_on_tied_scores(seed):
    generator = np.random.default_rng(seed)
    labels = generator.integers(0, 2, 300)
    scores = generator.integers(0, 4, 300) + labels * generator.integers(0, 2, 300)
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert auroc([0, 1, 0, 1], [3.0, 3.0, 3.0, 3.0]) == 0.5  # all tied: chance


def test_auroc_is_one_for_perfect_separation_and_zero_reversed():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert auroc(labels, scores) == 1.0
    assert auroc(labels, -scores) == 0.0
    assert auroc(1 - labels, scores) == 0.0


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(average_ranks([10, 20, 10, 30, 20, 20]),
                                  [1.5, 4.0, 1.5, 6.0, 4.0, 4.0])


@pytest.mark.parametrize("labels, scores, message", [
    ([0, 0, 0], [1.0, 2.0, 3.0], "needs both classes"),
    ([0, 1, 2], [1.0, 2.0, 3.0], "labels must be 0"),
    ([0, 1], [1.0, np.nan], "scores must be finite"),
    ([0, 1], [1.0, 2.0, 3.0], "same length"),
])
def test_auroc_refuses_bad_input(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        auroc(labels, scores)


def test_entropy_of_uniform_and_certain_rows():
    h = entropy([[0.1] * 10, [1.0] + [0.0] * 9])
    assert h[0] == pytest.approx(math.log(10))
    assert h[1] == 0.0


# -- measure and the command ---------------------------------------------------------------------


def _check_results(results: dict) -> None:
    assert set(results) == {"config", "methods", "ensemble", "ood", "time_s"}
    assert set(results["methods"]) == set(ensembles.METHODS)
    rows = [*results["methods"].values(), results["ensemble"]]
    for row in rows:
        assert 0.1 < row["accuracy"] <= 1.0  # better than chance after a few steps
        assert 0.0 < row["nll"] < 10.0
    for row in results["methods"].values():
        assert len(row["accuracy_seeds"]) == len(row["nll_seeds"]) == 2
        assert row["accuracy"] == row["accuracy_seeds"][0]
        assert row["accuracy_std"] >= 0 and row["nll_std"] >= 0
    assert set(results["ood"]) == set(ensembles.NOISES)
    for detectors in results["ood"].values():
        assert set(detectors) == set(ensembles.DETECTORS)
        for row in detectors.values():
            assert all(0.0 <= a <= 1.0 for a in row["auroc_seeds"])
            assert 0.0 <= row["entropy_test_mean"] <= math.log(10) + 1e-9
            assert 0.0 <= row["entropy_noise_mean"] <= math.log(10) + 1e-9
    assert results["config"]["train_samples"] == 256
    assert results["config"]["test_samples"] == 2000
    assert results["config"]["seeds"] == [0, 1]


@needs_data
def test_measure_on_tiny_data_returns_every_number(tmp_path):
    results = ensembles.measure(**TINY, out=tmp_path)
    _check_results(results)
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert "| 2-member ensemble |" in (tmp_path / "report.md").read_text()


@needs_data
def test_the_command_writes_results_and_report(tmp_path, capsys):
    out = tmp_path / "ensembles"
    arguments = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert cli.main(["study", "ensembles", *arguments, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| one model |" in printed and "| 5-snapshot ensemble |" in printed
    _check_results(json.loads((out / "results.json").read_text()))
    assert (out / "report.md").read_text().startswith("# Ensembles")
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("arguments, message", [
    (["--members", "1"], "--members must be an integer of at least 2, got 1"),
    (["--samples", "0"], "--samples must be an integer of at least 1, got 0"),
    (["--epochs", "0"], "--epochs must be an integer of at least 1, got 0"),
    (["--limit", "0"], "--limit must be a positive integer"),
    (["--limit", "100", "--epochs", "1"], "at least the 5 snapshot cycles"),
    (["--test-limit", "1"], "--test-limit must be an integer of at least 2"),
])
def test_bad_arguments_name_the_argument(arguments, message, tmp_path, capsys):
    assert cli.main(["study", "ensembles", *arguments, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("keyword, message", [
    ({"members": 1}, "members must be an integer of at least 2"),
    ({"samples": 0}, "samples must be an integer of at least 1"),
    ({"test_limit": 1}, "test_limit must be an integer of at least 2"),
])
def test_measure_refuses_bad_arguments(keyword, message):
    with pytest.raises(ValueError, match=message):
        ensembles.measure(**{**TINY, **keyword})
