"""Hyper-parameter search on the runner: spaces, strategies, cv, results and the best model."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

import chainrule  # noqa: E402
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


def test_the_median_pruner_stops_bad_trials_from_their_epoch_scores(tmp_path):
    import optuna

    x, y = builders.blobs()
    rates = [0.05, 0.1, 1e-6, 1e-7, 2e-7, 0.08]
    search = tuning.GridSearch(builders.mlp, {"lr": tuning.Choice(rates)}, max_trials=6,
                               directory=tmp_path,
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    search.search(x, y, epochs=4, batch_size=16, validation_split=0.2)
    table = search.results()
    pruned = [row for row in table if row["status"] == "pruned"]
    finished = [row for row in table if row["status"] == "ok"]
    assert pruned, table  # the tiny rates learn nothing in 4 epochs
    assert all(row["lr"] < 1e-5 and row["epochs"] < 4 for row in pruned)
    assert table[:len(finished)] == finished  # finished trials first, then pruned ones
    assert search.best_params["lr"] >= 0.05


def test_cross_validated_trials_are_pruned_after_a_fold(tmp_path):
    import optuna

    x, y = builders.blobs(90)
    search = tuning.GridSearch(builders.mlp, {"lr": tuning.Choice([0.05, 0.1, 1e-7, 2e-7])},
                               max_trials=4, directory=tmp_path,
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    search.search(x, y, epochs=2, batch_size=16, cv=3)
    for row in search.results():
        folds = len(row["fold_scores"])
        assert folds == (3 if row["status"] == "ok" else row["pruned_at_step"] + 1)
        assert row["score"] == pytest.approx(np.mean(row["fold_scores"]))


def test_pruner_names():
    import optuna

    assert isinstance(tuning.make_pruner("median"), optuna.pruners.MedianPruner)
    assert tuning.make_pruner(None) is None and tuning.make_pruner("none") is None
    with pytest.raises(ValueError, match="pruner must be None, 'none', 'median'"):
        tuning.make_pruner("hyperband!")
    with pytest.raises(TypeError, match="pruner must be"):
        tuning.make_pruner(3)


def test_plot_draws_every_trial_and_parameter(tmp_path):
    x, y = builders.blobs()
    search = tuning.RandomSearch(builders.mlp, {"lr": tuning.LogUniform(1e-4, 1e-1),
                                                "units": tuning.Choice([4, 16])},
                                 max_trials=3, directory=tmp_path)
    search.search(x, y, epochs=1, batch_size=16, validation_split=0.2)
    figure = search.plot(tmp_path / "search.png")
    assert (tmp_path / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    order, rate, units = figure.axes
    assert rate.get_xscale() == "log" and order.get_xlabel() == "trial"
    assert [t.get_text() for t in units.get_xticklabels()] == ["4", "16"]
    assert sum(len(c.get_offsets()) for c in order.collections) == 3


def test_a_tensorboard_callback_logs_each_trial_with_its_hyper_parameters(tmp_path):
    pytest.importorskip("tensorboardX")
    from chainrule.tensorboard import TensorBoard
    from tests.test_tensorboard import read_events

    x, y = builders.blobs()
    board = TensorBoard(log_dir=tmp_path / "logs")
    search = tuning.RandomSearch(builders.mlp, {"lr": tuning.Uniform(0.01, 0.1)},
                                 max_trials=2, directory=tmp_path / "search")
    search.search(x, y, epochs=2, batch_size=16, validation_split=0.2, callbacks=[board])
    for row in search.results():
        folder = tmp_path / "logs" / Path(row["run_dir"]).name / "train" / "hparams"
        content = b"".join(v.metadata.plugin_data.content for e in read_events(folder)
                           for v in e.summary.value if v.tag == "_hparams_/session_start_info")
        assert b"lr" in content and struct.pack("<d", row["lr"]) in content  # a double
    assert not (tmp_path / "logs" / "train").exists()  # the search's own board never wrote


def test_a_trial_scores_the_same_whatever_ran_before_it(tmp_path):
    x, y = builders.blobs()

    def loss_at_lr_001(rates, folder, state):
        chainrule.manual_seed(state)  # whatever state the process is in before the search
        search = tuning.GridSearch(builders.mlp, {"lr": tuning.Choice(rates)},
                                   objective="val_loss", max_trials=3, directory=tmp_path / folder)
        search.search(x, y, epochs=2, batch_size=16, validation_split=0.2)
        return [row["score"] for row in search.results() if row["lr"] == 0.01][0]

    # seeded before the model is built: its initial weights do not depend on earlier trials
    assert (loss_at_lr_001([0.01], "alone", 1)
            == loss_at_lr_001([0.05, 0.01, 0.02], "after", 2)
            == loss_at_lr_001([0.01], "again", 3))
