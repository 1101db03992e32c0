"""chainrule train survives kills: refusing a used --out, --overwrite, --resume after SIGKILL
and after Ctrl-C (bit-identical weights), and one-line errors for bad options."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.models import load_model

pytest.importorskip("sklearn", reason="the digits need scikit-learn ([data] extra)")

TRAIN = ["train", "--model", "cnn", "--dataset", "digits", "--limit", "384", "--epochs", "3",
         "--batch-size", "16", "--backup-every", "2"]


def command(*arguments) -> list:
    return [sys.executable, "-m", "chainrule", *arguments]


def weights(folder) -> list:
    return load_model(str(Path(folder) / "model.npz")).get_weights()


def backup_time(folder) -> float:
    try:
        return (Path(folder) / "backup" / "fit-state.npz").stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def run_until_backed_up(folder, arguments, extra_seconds, stop=signal.SIGKILL, timeout=120):
    """Start the command, wait for a new backup, let it run ``extra_seconds`` more, then send
    ``stop``; returns the finished process (it may also have ended on its own), with its
    output in ``.output``."""
    before = backup_time(folder)
    process = subprocess.Popen(command(*arguments), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while backup_time(folder) == before and process.poll() is None:
        assert time.monotonic() < deadline, "no backup written"
        time.sleep(0.01)
    time.sleep(extra_seconds)
    if process.poll() is None:
        process.send_signal(stop)
    process.output = process.communicate(timeout=timeout)
    return process


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole") / "run"
    subprocess.run(command(*TRAIN, "--out", str(folder)), check=True, capture_output=True,
                   timeout=300)
    return folder


def test_killed_at_random_points_then_resumed_ends_as_the_uninterrupted_run(tmp_path,
                                                                           uninterrupted):
    folder = tmp_path / "run"
    draw = random.Random(0)
    first = run_until_backed_up(folder, [*TRAIN, "--out", str(folder)], draw.uniform(0, 0.3))
    kills = int(first.returncode == -signal.SIGKILL)
    while kills < 3 and not (folder / "summary.json").exists():
        process = run_until_backed_up(folder, ["train", "--resume", str(folder)],
                                      draw.uniform(0, 0.3))
        kills += process.returncode == -signal.SIGKILL
    if not (folder / "summary.json").exists():
        subprocess.run(command("train", "--resume", str(folder)), check=True,
                       capture_output=True, timeout=300)
    assert kills >= 1
    for got, want in zip(weights(folder), weights(uninterrupted)):
        np.testing.assert_array_equal(got, want)
    assert (folder / "history.csv").read_text() == (uninterrupted / "history.csv").read_text()
    assert not list(folder.rglob("*.tmp")) and not (folder / "backup" / "fit-state.npz").exists()


def test_ctrl_c_backs_up_says_how_to_resume_and_resumes(tmp_path, uninterrupted):
    folder = tmp_path / "run"
    process = run_until_backed_up(folder, [*TRAIN, "--out", str(folder)], 0.05, signal.SIGINT)
    if process.returncode == 0:
        pytest.skip("the run ended before Ctrl-C reached it")
    stderr = process.output[1]
    assert process.returncode == 130, stderr
    assert f"continue with chainrule train --resume {folder}" in stderr
    assert "Traceback" not in stderr
    result = subprocess.run(command("train", "--resume", str(folder)), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Resuming" in result.stdout
    for got, want in zip(weights(folder), weights(uninterrupted)):
        np.testing.assert_array_equal(got, want)


def test_a_used_out_folder_is_refused_and_overwrite_replaces_it(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "history.csv").write_text("old\n")
    (out / "notes.txt").write_text("mine\n")
    assert main([*TRAIN, "--epochs", "1", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "already holds a run (history.csv)" in error and "--resume" in error
    assert error.count("\n") == 1
    assert main([*TRAIN, "--epochs", "1", "--out", str(out), "--overwrite"]) == 0
    assert (out / "history.csv").read_text().startswith("epoch,")
    assert (out / "notes.txt").read_text() == "mine\n"  # only the run's own files go


def test_resume_refuses_other_options_and_a_finished_run(tmp_path, capsys, uninterrupted):
    assert main(["train", "--resume", str(uninterrupted), "--epochs", "5"]) == 2
    assert "do not give --epochs" in capsys.readouterr().err
    assert main(["train", "--resume", str(uninterrupted)]) == 2
    assert "that run has finished" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no config.json there" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [
    ("--epochs", "0"), ("--limit", "0"), ("--limit", "-5"), ("--batch-size", "0"),
    ("--lr", "nan"), ("--validation-split", "1"), ("--seed", "-1"),
])
def test_bad_numbers_are_refused_before_anything_runs(option, value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", option, value])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}: expected" in error and "Traceback" not in error


def test_user_errors_print_one_line_and_traceback_shows_it_all(tmp_path, capsys):
    missing = str(tmp_path / "none.npz")
    assert main(["evaluate", "--model-path", missing]) == 2
    error = capsys.readouterr().err
    assert error.startswith("chainrule evaluate: error:") and error.count("\n") == 1
    with pytest.raises(FileNotFoundError):
        main(["--traceback", "evaluate", "--model-path", missing])


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    from chainrule.io import _host, atomic_write

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".model.npz.{_host()}.{dead}.abcdef.tmp"
    live = tmp_path / f".model.npz.{_host()}.{os.getpid()}.abcdef.tmp"
    other_host = tmp_path / f".model.npz.elsewhere.{dead}.abcdef.tmp"
    for path in (stale, live, other_host):
        path.write_bytes(b"half")
    atomic_write(str(tmp_path / "model.npz"), lambda file: file.write(b"whole"))
    assert not stale.exists() and live.exists() and other_host.exists()
