"""The experiment runner: grid coverage, failures, resume after a kill, parallel workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

from chainrule.experiments import Study, runner  # noqa: E402
from tests.experiments import runs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _calls(directory: Path) -> Counter:
    log = directory / "calls.log"
    return Counter(log.read_text().split()) if log.exists() else Counter()


def test_grid_runs_every_point_once_and_records_metrics(tmp_path):
    study = Study(runs.quadratic, tmp_path, grid={"x": [0, 1, 2, 3], "y": [0, 10]},
                  fixed={"tag": "t"})
    rows = study.run()
    assert sorted((r["x"], r["y"]) for r in rows) == [(x, y) for x in range(4) for y in (0, 10)]
    for row in rows:
        assert row["status"] == "ok" and row["value"] == (row["x"] - 2) ** 2 + row["y"]
        assert row["tag"] == "t"
        folder = Path(row["run_dir"])
        assert json.loads((folder / "spec.json").read_text()) == {"tag": "t", "x": row["x"],
                                                                  "y": row["y"]}
        assert json.loads((folder / "metrics.json").read_text())["value"] == row["value"]
    assert set(_calls(tmp_path).values()) == {1}
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_run_that_raises_is_recorded_and_the_study_goes_on(tmp_path):
    study = Study(runs.quadratic, tmp_path, grid={"x": [0, 1, 2], "y": [0]},
                  fixed={"fail_x": 1})
    rows = {r["x"]: r for r in study.run()}
    assert rows[1]["status"] == "failed"
    assert rows[1]["error"] == "ValueError: x=1 is not allowed"
    assert rows[0]["status"] == rows[2]["status"] == "ok"
    study.run(resume=True)  # a failed run is finished: not run again
    assert _calls(tmp_path)["1,0"] == 1


def test_an_existing_study_needs_resume(tmp_path):
    study = Study(runs.quadratic, tmp_path, grid={"x": [0], "y": [0]})
    study.run()
    with pytest.raises(FileExistsError, match="resume=True"):
        study.run()
    assert len(study.run(resume=True)) == 1
    assert _calls(tmp_path)["0,0"] == 1


def test_sampled_space_runs_n_trials(tmp_path):
    import optuna

    study = Study(runs.quadratic, tmp_path, n_trials=5, sampler=optuna.samplers.RandomSampler(0),
                  space={"x": optuna.distributions.IntDistribution(0, 4),
                         "y": optuna.distributions.FloatDistribution(0.0, 1.0)})
    rows = study.run()
    assert len(rows) == 5 and all(r["status"] == "ok" for r in rows)
    assert all(0 <= r["x"] <= 4 and 0 <= r["y"] <= 1 for r in rows)


@pytest.mark.parametrize("bad, match", [
    ({"grid": {"x": []}}, "non-empty"),
    ({"grid": {"x": [1]}, "space": {}}, "exactly one"),
    ({"space": {}, "n_trials": 0}, "n_trials"),
    ({"grid": {"x": [1]}, "direction": "up"}, "direction"),
])
def test_bad_study_arguments(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        Study(runs.quadratic, tmp_path, **bad)


def test_missing_objective_metric_fails_the_run_with_its_name(tmp_path):
    study = Study(runs.quadratic, tmp_path, grid={"x": [0], "y": [0]}, objective="accuracy")
    (row,) = study.run()
    assert row["status"] == "failed" and "'accuracy'" in row["error"]


def test_missing_optuna_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"chainrule\[tune\]"):
        runner.import_optuna()


def test_parallel_workers_give_the_results_of_one_worker(tmp_path):
    grid = {"seed": [0, 1, 2], "lr": [0.05, 0.1]}
    one = Study(runs.tiny_training, tmp_path / "one", grid=grid, objective="loss").run()
    two = Study(runs.tiny_training, tmp_path / "two", grid=grid, objective="loss").run(workers=2)
    key = lambda r: (r["seed"], r["lr"])  # noqa: E731
    assert [(key(r), r["loss"], r["checksum"], r["first"]) for r in sorted(one, key=key)] == \
           [(key(r), r["loss"], r["checksum"], r["first"]) for r in sorted(two, key=key)]


def test_two_workers_share_the_grid_without_running_a_point_twice(tmp_path):
    study = Study(runs.quadratic, tmp_path, grid={"x": [0, 1, 2, 3, 4, 5], "y": [0]})
    rows = study.run(workers=2)
    assert sorted(r["x"] for r in rows) == list(range(6))
    assert set(_calls(tmp_path).values()) == {1}


_KILLABLE = textwrap.dedent("""
    import sys
    from chainrule.experiments import Study
    from tests.experiments import runs

    if __name__ == "__main__":
        study = Study(runs.slow, sys.argv[1], grid={"x": [0, 1, 2, 3, 4], "y": [0]},
                      fixed={"seconds": 0.4})
        study.run(resume=len(sys.argv) > 2)
""")


def _started(directory: Path) -> list[str]:
    log = directory / "started.log"
    return log.read_text().split() if log.exists() else []


def test_resume_after_sigkill_redoes_only_the_interrupted_run(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(_KILLABLE)
    out = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, str(script), str(out)], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while len(_started(out)) < 3 and time.monotonic() < deadline:  # two done, third running
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    finished_before = set(_calls(out))
    interrupted = _started(out)[-1]
    assert len(finished_before) == 2 and f"{interrupted},0" not in finished_before

    subprocess.run([sys.executable, str(script), str(out), "--resume"],
                   env={**env, "SLOW_RUN_SECONDS": "0.01"}, cwd=ROOT, check=True, timeout=120)
    calls = _calls(out)
    assert sorted(calls) == [f"{x},0" for x in range(5)]
    assert set(calls.values()) == {1}  # nothing finished was redone; nothing ran twice
    rows = Study(runs.slow, out, grid={"x": [0, 1, 2, 3, 4], "y": [0]},
                 fixed={"seconds": 0.4}).results()
    assert sorted(r["x"] for r in rows) == list(range(5))
    assert all(r["status"] == "ok" for r in rows)


def test_interrupted_trial_of_a_live_worker_is_not_reclaimed(tmp_path):
    """A RUNNING trial whose process is alive and beating is left to its worker."""
    import optuna

    study = Study(runs.quadratic, tmp_path, grid={"x": [0], "y": [0]})
    optuna_study = study.optuna_study()
    trial = optuna_study.ask()
    trial.suggest_categorical("x", [0])
    trial.suggest_categorical("y", [0])
    import socket
    for key, value in (("host", socket.gethostname()), ("pid", os.getpid()),
                       ("heartbeat", time.time()), ("status", "running")):
        trial.set_user_attr(key, value)
    assert runner.reclaim_interrupted(optuna_study) == 0
    trial.set_user_attr("pid", 2 ** 22 + 12345)  # no such process
    assert runner.reclaim_interrupted(optuna_study) == 1
    states = [t.state for t in optuna_study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]


def test_a_running_trial_keeps_a_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "HEARTBEAT_EVERY", 0.05)
    started = time.time()
    study = Study(runs.slow, tmp_path, grid={"x": [0], "y": [0]}, fixed={"seconds": 0.5})
    study.run()
    (trial,) = study.optuna_study().get_trials()
    assert trial.user_attrs["heartbeat"] > started + 0.2  # beaten while the run went on
    assert trial.user_attrs["status"] == "ok"


def test_resuming_with_other_options_is_refused_naming_them(tmp_path):
    Study(runs.quadratic, tmp_path, grid={"x": [0], "y": [0]}, fixed={"epochs": 3}).run()
    changed = Study(runs.quadratic, tmp_path, grid={"x": [0], "y": [0]}, fixed={"epochs": 4})
    with pytest.raises(ValueError, match=r"fixed: stored \{'epochs': 3\}, given \{'epochs': 4\}"):
        changed.run(resume=True)
    assert _calls(tmp_path)["0,0"] == 1


_JOINING = textwrap.dedent("""
    import sys
    from chainrule.experiments import Study
    from tests.experiments import runs

    if __name__ == "__main__":
        study = Study(runs.slow, sys.argv[1], grid={"x": list(range(8)), "y": [0]},
                      fixed={"seconds": 0.3}, storage=sys.argv[2])
        study.run(resume=sys.argv[3] == "join")
""")


def test_a_second_machine_joins_through_the_shared_storage(tmp_path):
    """Two separate commands on one storage (as on two machines): the second, started with
    resume while the first runs, takes only runs nobody has taken and steals none."""
    script = tmp_path / "study.py"
    script.write_text(_JOINING)
    out, storage = tmp_path / "study", tmp_path / "shared.journal"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, str(script), str(out), str(storage), "start"],
                             env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not _started(out) and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run([sys.executable, str(script), str(out), str(storage), "join"],
                            env=env, cwd=ROOT, timeout=120)
    assert first.wait(timeout=120) == 0 and second.returncode == 0
    calls = _calls(out)
    assert sorted(calls) == [f"{x},0" for x in range(8)] and set(calls.values()) == {1}
    assert not (out / "study.journal").exists()  # the storage given was used


def test_a_pruner_stops_runs_below_the_median_and_keeps_their_metrics(tmp_path):
    import optuna

    levels = [1.0, 0.9, 0.8, 0.1, 0.05, 0.02]
    study = Study(runs.curve, tmp_path, grid={"level": levels}, direction="maximize",
                  pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    rows = sorted(study.run(), key=lambda row: row["trial"])
    assert len(rows) == len(levels)
    completed: list = []
    for row in rows:  # the median rule at the first step, where every curve is level / 2
        expect_pruned = len(completed) >= 2 and row["level"] < np.median(completed)
        assert row["status"] == ("pruned" if expect_pruned else "ok"), (row, completed)
        epochs_run = len((Path(row["run_dir"]) / "epochs.log").read_text().split())
        assert epochs_run == row["epochs"] == (1 if expect_pruned else 8)
        metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        assert metrics["value"] == pytest.approx(row["value"])
        if expect_pruned:
            assert metrics["pruned_at_step"] == 0
        else:
            completed.append(row["level"])
    assert any(row["status"] == "pruned" for row in rows)
    assert study.run(resume=True) == rows  # pruned runs are finished: nothing runs again


def test_report_outside_a_study_and_without_a_pruner_never_stops(tmp_path):
    from chainrule.experiments import report

    assert report(0, 0.1) is False
    study = Study(runs.curve, tmp_path, grid={"level": [1.0, 0.1, 0.01]}, direction="maximize")
    assert [row["status"] for row in study.run()] == ["ok"] * 3


def _space():
    import optuna

    return {"x": optuna.distributions.IntDistribution(0, 1000),
            "y": optuna.distributions.FloatDistribution(0.0, 1.0)}


def test_random_draws_are_those_of_one_worker_whatever_the_workers(tmp_path):
    import optuna

    def draws(folder, workers):
        study = Study(runs.quadratic, tmp_path / folder, space=_space(), n_trials=6,
                      sampler=optuna.samplers.RandomSampler(seed=3))
        return sorted((row["x"], row["y"]) for row in study.run(workers=workers))

    one = draws("one", 1)
    assert len(set(one)) == 6
    assert draws("two", 2) == one


def test_workers_of_a_seeded_tpe_search_do_not_propose_the_same_specs(tmp_path):
    import optuna

    study = Study(runs.quadratic, tmp_path, space=_space(), n_trials=6,
                  sampler=optuna.samplers.TPESampler(seed=0))
    rows = study.run(workers=2)
    assert len({(row["x"], row["y"]) for row in rows}) == 6
