"""Hyper-parameter search on the runner: spaces, strategies, cv, results and the best model."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("optuna")

from chainrule import tuning  # noqa: E402
from tests.tuning import builders  # noqa: E402


def test_random_search_finds_the_good_rate(tmp_path):
    x, y = builders.blobs()
    search = tuning.RandomSearch(builders.mlp, {"lr": tuning.LogUniform(1e-5, 1e-1),
                                                "units": tuning.Choice([4, 16])},
                                 max_trials=6, directory=tmp_path)
    rows = search.search(x, y, epochs=4, batch_size=16, validation_split=0.2)
    assert len(rows) == 6 and all(row["status"] == "ok" for row in rows)
    table = search.results()
    scores = [row["score"] for row in table]
    assert scores == sorted(scores, reverse=True)  # accuracy: best first
    assert all(1e-5 <= row["lr"] <= 1e-1 and row["units"] in (4, 16) for row in table)
    assert search.best_params == {"lr": table[0]["lr"], "units": table[0]["units"]}
    assert table[0]["score"] > table[-1]["score"]
    model = search.best_model()
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] > 0.5


def test_grid_search_runs_every_combination(tmp_path):
    x, y = builders.blobs()
    search = tuning.GridSearch(builders.mlp, {"lr": tuning.Choice([1e-4, 0.05]),
                                              "units": tuning.IntUniform(3, 4)},
                               max_trials=4, objective="val_loss", directory=tmp_path)
    search.search(x, y, epochs=3, batch_size=16, validation_split=0.2)
    table = search.results()
    assert sorted((r["lr"], r["units"]) for r in table) == [
        (1e-4, 3), (1e-4, 4), (0.05, 3), (0.05, 4)]
    losses = [row["score"] for row in table]
    assert losses == sorted(losses)  # a loss: lowest first
    assert search.best_params["lr"] == 0.05


def test_tpe_search_and_cross_validation_scores(tmp_path):
    x, y = builders.blobs(90)
    search = tuning.TPESearch(builders.mlp, {"lr": tuning.Uniform(0.01, 0.1)}, max_trials=2,
                              directory=tmp_path)
    search.search(x, y, epochs=2, batch_size=16, cv=3)
    for row in search.results():
        assert len(row["fold_scores"]) == 3
        assert row["score"] == pytest.approx(np.mean(row["fold_scores"]))
        assert row["score_std"] == pytest.approx(np.std(row["fold_scores"]))


def test_a_trial_that_raises_is_recorded(tmp_path):
    x, y = builders.blobs()
    search = tuning.RandomSearch(builders.mlp, {"lr": tuning.Uniform(0.01, 0.1)}, max_trials=2,
                                 objective="val_top5", directory=tmp_path)
    rows = search.search(x, y, epochs=1, batch_size=16, validation_split=0.2)
    assert all(row["status"] == "failed" for row in rows)
    assert "objective 'val_top5' is not logged by this model" in rows[0]["error"]
    with pytest.raises(RuntimeError, match="no trial finished"):
        search.best_params  # noqa: B018


@pytest.mark.parametrize("make, match", [
    (lambda: tuning.Uniform(1.0, 1.0), "lo must be below hi"),
    (lambda: tuning.LogUniform(0.0, 1.0), "lo must be > 0"),
    (lambda: tuning.IntUniform(1.5, 3), "integers"),
    (lambda: tuning.Choice([]), "must not be empty"),
    (lambda: tuning.Uniform(0.0, math.inf), "finite"),
    (lambda: tuning.GridSearch(builders.mlp, {"lr": tuning.Uniform(0.1, 0.2)}),
     "a grid needs a Choice"),
    (lambda: tuning.RandomSearch(builders.mlp, {}), "non-empty"),
    (lambda: tuning.RandomSearch(builders.mlp, {"lr": (0.1, 0.2)}), "must be a Uniform"),
    (lambda: tuning.RandomSearch(builders.mlp, {"lr": tuning.Uniform(0.1, 0.2)},
                                 max_trials=0), "max_trials"),
])
def test_bad_spaces_and_strategies(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_search_arguments(tmp_path):
    x, y = builders.blobs(30)
    search = tuning.RandomSearch(builders.mlp, {"lr": tuning.Uniform(0.01, 0.1)},
                                 max_trials=1, directory=tmp_path)
    with pytest.raises(ValueError, match="exactly one of validation_split"):
        search.search(x, y)
    with pytest.raises(ValueError, match="cv=11 is larger than the smallest class"):
        search.search(x, y, cv=11)
    uncompiled = tuning.RandomSearch(builders.uncompiled, {"lr": tuning.Uniform(0.01, 0.1)},
                                     max_trials=1, directory=tmp_path / "u")
    (row,) = uncompiled.search(x, y, validation_split=0.2)
    assert row["status"] == "failed" and "build_fn must return a compiled model" in row["error"]


def test_the_objective_sets_the_direction():
    assert tuning.objective_direction("val_accuracy") == "maximize"
    assert tuning.objective_direction("val_loss") == "minimize"
    assert tuning.objective_direction("error") == "minimize"
