"""Data-parallel fits under ``mpiexec -n 2`` (skipped without mpi4py/MPICH): bitwise-identical
ranks, the same steps as one process at twice the batch, and faults that end the job."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.distributed import mpi_job

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which(
    "mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install mpich)")
JOB = Path(mpi_job.__file__)
ROOT = JOB.parents[2]


def run_job(kind, tmp_path, timeout=60):
    out = tmp_path / f"{kind}.json"
    started = time.monotonic()
    result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(JOB), kind, str(out)],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    return result, out, time.monotonic() - started


@pytest.mark.parametrize("kind", ["sgd-plain", "adam-plain", "sgd-bn", "adam-bn"])
def test_two_ranks_hold_the_same_weights_and_match_one_process_at_twice_the_batch(tmp_path,
                                                                                  kind):
    result, out, _ = run_job(kind, tmp_path)
    assert result.returncode == 0, result.stderr
    got = json.loads(out.read_text())
    assert got["size"] == 2 and got["same_on_every_rank"]
    assert got["steps"] == 4 * 5  # 20 steps: 80 samples, global batches of 16
    optimizer, batch_norm = kind.split("-")
    if batch_norm == "bn":
        return  # each rank normalises its own 8 samples: one process at 16 differs (docs)
    alone = mpi_job.model(optimizer, False, seed=100)
    x, y = mpi_job.data()
    history = alone.fit(x, y, batch_size=16, epochs=4, verbose=0, seed=3,
                        validation_data=mpi_job.data(20, seed=1))
    for mine, theirs in zip(alone.get_weights(), got["weights"]):
        np.testing.assert_allclose(mine, np.array(theirs), rtol=1e-12, atol=1e-12)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(history.history[key], got["history"][key], rtol=1e-12,
                                   err_msg=key)


def test_a_killed_data_parallel_fit_resumes_bit_for_bit(tmp_path):
    result, out, _ = run_job("resume", tmp_path)
    assert result.returncode == 0, result.stderr
    got = json.loads(out.read_text())
    assert got["restored_from"] == [1, 1] and got["same"] == [True, True]


@pytest.mark.parametrize("kind", ["raise", "kill"])
def test_a_failing_rank_ends_the_whole_job_quickly(tmp_path, kind):
    result, _, seconds = run_job(kind, tmp_path, timeout=60)
    assert result.returncode != 0 and seconds < 30
    if kind == "raise":
        assert ("rank 1 of 2 failed (RuntimeError: rank 1 fails on purpose); aborting the job"
                in result.stderr)


def test_models_that_differ_across_ranks_fail_at_the_first_collective(tmp_path):
    result, _, _ = run_job("mismatch", tmp_path)
    assert result.returncode != 0
    assert "broadcast_parameters: the models differ across ranks" in result.stderr
    assert ("rank 0 has ('layers.0.kernel', (6, 16), 'float64'), rank 1 has "
            "('layers.0.kernel', (6, 12), 'float64')") in result.stderr


def test_mpiexec_chainrule_train_writes_one_run(tmp_path):
    pytest.importorskip("sklearn", reason="the digits need scikit-learn ([data] extra)")
    out = tmp_path / "run"
    result = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, "-m", "chainrule", "train", "--model", "mlp",
         "--dataset", "digits", "--limit", "600", "--epochs", "3", "--batch-size", "16",
         "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Training mlp on digits") == 1  # rank 0 alone prints
    assert "2 processes, 16 samples each per step" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.8
    assert len((out / "history.csv").read_text().splitlines()) == 4
    assert not (out / "backup" / "fit-state.npz").exists()
