"""The shift/scale study's report: files, order, and verdicts computed from synthetic runs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from chainrule.experiments.shift_scale import report
from chainrule.experiments.shift_scale.report import VARIANTS, write_report

STEPS_PER_EPOCH = 10
EPOCHS = 4
CHANCE = 0.9  # 10 classes
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: Per variant: (best validation error, rise after the best epoch, training-error floor, speed).
GOOD = {
    "none": (0.20, 0.01, 0.15, 1.0),
    "batchnorm": (0.08, 0.01, 0.05, 2.0),
    "shift-layer+scale-layer": (0.10, 0.05, 0.01, 3.0),
}


def _profile(variant: str, flipped: bool) -> tuple:
    """The synthetic behaviour of a variant; ``flipped`` makes the candidate slow and modest."""
    if flipped and variant == "shift-layer+scale-layer":
        return (0.30, 0.0, 0.30, 0.3)
    if flipped and variant == "batchnorm":
        return (0.40, 0.01, 0.35, 1.0)
    if variant in GOOD:
        return GOOD[variant]
    return (0.15 + 0.005 * VARIANTS.index(variant), 0.01, 0.12, 1.0)


def _learned(variant: str, arch: str, seed: int) -> list[dict]:
    """learned.json entries: shifts grow by 0.1 and scales by 0.05 per position."""
    if variant in ("none", "batchnorm"):
        return []
    entries = []
    for part in variant.split("+"):
        kind, mode = part.split("-")
        for position in range(3 if arch == "mlp" else 4):
            mean = (0.1 * position if kind == "shift" else 1.0 + 0.05 * position) + 0.01 * seed
            std = 0.0 if mode == "layer" else 0.02
            entries.append({"position": position, "kind": kind, "mode": mode,
                            "layer": f"{kind}_{position}", "size": 1 if mode == "layer" else 8,
                            "mean": mean, "std": std, "min": mean - std, "max": mean + std})
    return entries


def _write_run(folder, variant, arch, seed, profile):
    """curves.npz and learned.json of one run; returns its metrics."""
    best, rise, floor, speed = profile
    folder.mkdir(parents=True)
    steps = np.arange(1, EPOCHS * STEPS_PER_EPOCH + 1, dtype=np.int64)
    ema = floor + (0.9 - floor) * np.exp(-speed * steps / STEPS_PER_EPOCH)
    epoch = np.arange(1, EPOCHS + 1, dtype=np.int64)
    best_epoch = EPOCHS - 1 if rise else EPOCHS
    val = best + 0.3 * np.maximum(best_epoch - epoch, 0) / EPOCHS
    val = val + rise * (epoch > best_epoch)
    np.savez(folder / "curves.npz", step=steps, train_error_ema=ema, train_loss=2 * ema,
             epoch=epoch, val_error=val, val_loss=2 * val, train_error=val - 0.01,
             steps_per_epoch=np.int64(STEPS_PER_EPOCH))
    with open(folder / "learned.json", "w") as file:
        json.dump(_learned(variant, arch, seed), file)
    reached = [int(e) for e, v in zip(epoch, val) if v <= 0.25]
    return {"final_train_error_ema": float(ema[-1]), "final_val_error": float(val[-1]),
            "best_val_error": float(val.min()), "best_epoch": int(np.argmin(val)) + 1,
            "epochs_to_target": reached[0] if reached else None, "time_s": 1.5,
            "target_error": 0.25}


def _row(root, variant, arch, dropout, lr, seed, *, batch_size=32, profile=None,
         flipped=False):
    """One ok run: its folder under ``root/runs`` and its row (run_dir relative to root)."""
    name = f"{arch}-{int(dropout)}-{lr}-{seed}-{batch_size}-{variant}"
    profile = profile or _profile(variant, flipped)
    metrics = _write_run(root / "runs" / name, variant, arch, seed, profile)
    return {"variant": variant, "arch": arch, "dropout": dropout, "lr": lr, "seed": seed,
            "epochs": EPOCHS, "batch_size": batch_size, "dataset": "synthetic",
            "num_classes": 10, "status": "ok", "error": None, "run_dir": f"runs/{name}",
            **metrics}


def _rows(root, *, flipped=False, online=True):
    """2 archs x 2 dropouts x 2 rates x 2 seeds x 11 variants, 6 batch-size-1 runs, 1 failure."""
    rows = []
    for arch in ("mlp", "allconv"):
        for dropout in (False, True):
            for lr in (0.02, 0.04):
                for seed in (0, 1):
                    rows += [_row(root, v, arch, dropout, lr, seed, flipped=flipped)
                             for v in VARIANTS]
    if online:
        online_profiles = {"none": (0.30, 0.0, 0.3, 1.0), "batchnorm": (0.90, 0.0, 0.9, 0.0),
                           "shift-layer+scale-layer": (0.25, 0.0, 0.25, 1.0)}
        for arch in ("mlp", "allconv"):
            rows += [_row(root, v, arch, False, 0.02, 0, batch_size=1, profile=p)
                     for v, p in online_profiles.items()]
    rows.append({"variant": "scale-channel", "arch": "mlp", "dropout": False, "lr": 0.08,
                 "seed": 0, "epochs": EPOCHS, "batch_size": 32, "dataset": "synthetic",
                 "num_classes": 10, "status": "failed",
                 "error": "FloatingPointError: loss became NaN at step 7", "run_dir": None})
    rows.reverse()  # the report sorts them
    return rows


def _plots() -> bool:
    return report._have_matplotlib()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The report of the unflipped study, written once."""
    root = tmp_path_factory.mktemp("study")
    return root, write_report(root, _rows(root), title="Synthetic study")


def test_results_csv_header_order_and_empty_cells(written):
    root, result = written
    with open(root / "results.csv", newline="") as file:
        table = list(csv.reader(file))
    assert table[0][:14] == list(report.COLUMNS)
    assert table[0][14:] == ["error", "run_dir"]
    body = [dict(zip(table[0], line)) for line in table[1:]]
    assert len(body) == 11 * 16 + 6 + 1
    keys = [(r["arch"], r["dropout"], float(r["lr"]), int(r["seed"])) for r in body]
    assert keys == sorted(keys)
    first = [r["variant"] for r in body if r["batch_size"] == "32"][:11]
    assert first == list(VARIANTS)  # allconv, no dropout, lr 0.02, seed 0, batch 32
    failed = [r for r in body if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["final_val_error"] == ""
    assert failed[0]["error"].startswith("FloatingPointError")
    never = [r for r in body if r["variant"] == "batchnorm" and r["batch_size"] == "1"]
    assert never and all(r["epochs_to_target"] == "" for r in never)
    assert result["runs"] == 11 * 16 + 6 and result["failed"] == 1


def test_verdicts_are_computed(written):
    _, result = written
    conclusions = result["conclusions"]
    assert conclusions[1]["verdict"] == "supported"
    assert conclusions[1]["candidate_mean_rank"] == 1.0
    assert conclusions[2]["verdict"] == "supported"
    assert conclusions[2]["mean_ema"]["pairs"] == 16
    assert conclusions[2]["first_epoch"]["lower"] == 16
    assert conclusions[3]["verdict"] == "supported"
    assert conclusions[3]["gap"]["higher"] == 16
    assert conclusions[4]["final"]["verdict"] == "supported"
    online = conclusions[4]["online"]
    assert online["verdict"] == "supported" and online["tested"] == 2
    assert all(arch["batchnorm_at_chance"] for arch in online["archs"].values())
    assert conclusions[4]["verdict"] == "supported"


def test_report_quotes_the_numbers(written):
    root, result = written
    text = (root / "report.md").read_text()
    assert text.startswith("# Synthetic study")
    gap = result["conclusions"][3]["gap"]
    assert f"{100 * gap['mean_difference']:+.2f} pp" in text
    area = result["conclusions"][2]["mean_ema"]
    assert f"{100 * area['mean_first']:.2f}%" in text
    assert "## (1) Layer-wise shift-and-scale is the best of the nine: supported" in text
    assert "## (3) It tends to overfit: supported" in text
    assert "16/16 (100%)" in text
    assert "Batch norm fails (at chance)" in text
    assert "runs: 183 (182 ok, 1 failed)" in text
    assert "learning rates (SGD, momentum 0.9): 0.02, 0.04" in text
    assert "FloatingPointError: loss became NaN at step 7" in text


def test_figures_are_png(written):
    root, result = written
    if not _plots():
        pytest.skip("matplotlib is not installed")
    names = sorted(p.name for p in (root / "curves").iterdir())
    assert "mlp-dropout-lr0.02-bs32.png" in names and "allconv-nodropout-lr0.04-bs32.png" in names
    assert "mlp-nodropout-lr0.02-bs1.png" in names and len(names) == 8 + 2
    for path in [root / "learned.png", *(root / "curves").iterdir()]:
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert "[learned.png](learned.png)" in (root / "report.md").read_text()


def test_no_temporary_files_left(written):
    root, result = written
    produced = [p for p in root.rglob("*") if p.is_file() and "runs" not in p.parts]
    assert all(not p.name.startswith(".") and not p.name.endswith(".tmp") for p in produced)
    assert {p.name for p in produced} >= {"results.csv", "report.md", "verdicts.json"}
    assert all(p.exists() for p in result["files"])


def test_verdicts_json_holds_the_computed_verdicts(written):
    root, result = written
    saved = json.loads((root / "verdicts.json").read_text())
    assert [saved["conclusions"][str(k)]["verdict"] for k in (1, 2, 3, 4)] == \
        [result["conclusions"][k]["verdict"] for k in (1, 2, 3, 4)]
    assert saved["runs"] == result["runs"] and saved["failed"] == result["failed"]


def test_flipped_data_flips_the_verdicts(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_have_matplotlib", lambda: False)  # quicker, no figures
    result = write_report(tmp_path, _rows(tmp_path, flipped=True, online=False))
    conclusions = result["conclusions"]
    assert conclusions[1]["verdict"] == "not supported"
    assert conclusions[2]["verdict"] == "not supported"
    assert conclusions[3]["verdict"] == "not supported"
    assert conclusions[4]["final"]["verdict"] == "not supported"
    assert conclusions[4]["online"]["verdict"] == "not tested in these runs"
    text = (tmp_path / "report.md").read_text()
    assert "## (2) It trains faster than no change: not supported" in text
    assert "### Online learning (batch size 1): not tested in these runs" in text
    assert "chainrule study shift-scale --batch-size 1" in text


def test_mixed_when_half_the_pairs_agree(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_have_matplotlib", lambda: False)
    rows = []
    for seed in (0, 1):
        flipped = seed == 1
        rows += [_row(tmp_path, v, "mlp", False, 0.02, seed, flipped=flipped)
                 for v in ("none", "batchnorm", "shift-layer+scale-layer")]
    conclusions = write_report(tmp_path, rows)["conclusions"]
    assert conclusions[2]["first_epoch"]["lower"] == 1
    assert conclusions[2]["verdict"] == "mixed"
    assert conclusions[1]["verdict"] == "not tested in these runs"


def test_without_matplotlib_writes_csv_and_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "_have_matplotlib", lambda: False)
    rows = [_row(tmp_path, v, "mlp", False, 0.02, 0) for v in VARIANTS]
    result = write_report(tmp_path, rows)
    assert "[plot]" in capsys.readouterr().out
    assert (tmp_path / "results.csv").exists() and (tmp_path / "report.md").exists()
    assert not (tmp_path / "learned.png").exists() and not (tmp_path / "curves").exists()
    assert result["failed"] == 0
    assert "## Failed runs (0)" in (tmp_path / "report.md").read_text()


def test_chance_is_one_minus_one_over_classes():
    assert math.isclose(report._chance([{"num_classes": 10}]), CHANCE)
    assert report._verdict(2 / 3) == "supported" and report._verdict(0.5) == "mixed"
    assert report._verdict(1 / 3) == "not supported" and report._verdict(None).startswith("not t")


def test_diverged_runs_are_counted_and_left_out_of_what_the_layers_learn(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_have_matplotlib", lambda: False)
    rows = _rows(tmp_path, online=False)
    blown = next(r for r in rows if r["variant"] == "shift-layer+scale-layer"
                 and r["arch"] == "mlp" and r["status"] == "ok")
    blown["diverged"] = True
    entries = json.loads((tmp_path / blown["run_dir"] / "learned.json").read_text())
    for entry in entries:
        entry["mean"] = 1e15
    (tmp_path / blown["run_dir"] / "learned.json").write_text(json.dumps(entries))
    write_report(tmp_path, rows)
    text = (tmp_path / "report.md").read_text()
    assert "diverged (the loss became NaN or infinite" in text
    assert "1 runs: shift-layer+scale-layer 1" in text
    assert "(1 diverged run(s) left out)" in text and "1000000000000000" not in text
