"""``chainrule tune``: --param parsing, a tiny search end to end, resume, bad options."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("optuna")
pytest.importorskip("sklearn")  # the digits data set

from chainrule import cli, tuning  # noqa: E402
from chainrule.commands_tune import parse_param, parse_space  # noqa: E402

TINY = ["tune", "--model", "mlp", "--dataset", "digits", "--limit", "300", "--epochs", "2",
        "--batch-size", "32"]


@pytest.mark.parametrize("text, kind, expected", [
    ("lr=log:1e-4:1e-1", tuning.LogUniform, (1e-4, 1e-1)),
    ("dropout=uniform:0:0.5", tuning.Uniform, (0.0, 0.5)),
    ("layers=int:1:3", tuning.IntUniform, (1, 3)),
])
def test_ranges(text, kind, expected):
    name, space = parse_param(text)
    assert name == text.split("=")[0] and type(space) is kind
    assert (space.lo, space.hi) == expected


def test_choices_keep_numbers_numbers():
    assert parse_param("units=64,128")[1].values() == [64, 128]
    assert parse_param("optimizer=adam,sgd")[1].values() == ["adam", "sgd"]
    assert parse_param("momentum=0.9,0.99")[1].values() == [0.9, 0.99]


@pytest.mark.parametrize("text, match", [
    ("lr", "NAME=SPEC"),
    ("=1,2", "NAME=SPEC"),
    ("lr=log:0.1", "needs LO:HI"),
    ("lr=log:0.1:0.01", "lo must be below hi"),
    ("lr=log:0:1", "lo must be > 0"),
    ("units=64,,128", "a choice is empty"),
])
def test_bad_params_name_the_param(text, match):
    with pytest.raises(ValueError, match=match):
        parse_param(text)


def test_a_param_given_twice_is_refused():
    with pytest.raises(ValueError, match="--param lr is given twice"):
        parse_space(["lr=0.1,0.2", "lr=log:1e-3:1e-1"])


def test_a_tiny_search_writes_its_results_and_resumes(tmp_path, capsys):
    out = tmp_path / "search"
    arguments = [*TINY, "--param", "lr=log:1e-3:3e-1", "--param", "units=16,32",
                 "--trials", "3", "--out", str(out)]
    assert cli.main(arguments) == 0
    printed = capsys.readouterr().out
    assert "3 random trials" in printed and "3 trials ok, 0 pruned, 0 failed" in printed
    with open(out / "results.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3 and all(row["status"] == "ok" for row in rows)
    scores = [float(row["score"]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    best = json.loads((out / "best.json").read_text())
    assert best["params"] == {"lr": float(rows[0]["lr"]), "units": int(rows[0]["units"])}
    assert (out / "search.png").stat().st_size > 0

    assert cli.main(arguments) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main([*arguments, "--resume"]) == 0  # every trial is done: nothing runs
    assert "3 trials ok" in capsys.readouterr().out
    changed = [*arguments, "--resume", "--epochs", "3"]
    assert cli.main(changed) == 2
    assert "other options (settings" in capsys.readouterr().err
    assert not list(out.rglob("*.tmp"))


def test_a_grid_runs_every_choice(tmp_path, capsys):
    arguments = [*TINY, "--strategy", "grid", "--param", "lr=0.01,0.1", "--param",
                 "layers=int:1:2", "--out", str(tmp_path)]
    assert cli.main(arguments) == 0
    assert "4 grid trials" in capsys.readouterr().out


@pytest.mark.parametrize("extra, match", [
    (["--param", "dropout=0.1,0.2"], "mlp takes no hyper-parameter 'dropout'"),
    (["--param", "lr=log:1e-3:1e-1", "--strategy", "grid"], "--param lr is a range"),
    (["--param", "lr=0.1", "--workers", "0"], "--workers must be at least 1"),
    (["--param", "lr=0.1", "--validation-split", "1.5"], "--validation-split must be in"),
])
def test_bad_options_are_named(tmp_path, capsys, extra, match):
    assert cli.main([*TINY, *extra, "--out", str(tmp_path)]) == 2
    assert match in capsys.readouterr().err
