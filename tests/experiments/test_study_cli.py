"""``chainrule study shift-scale`` on a tiny subset: files, resume, and bad options."""

from __future__ import annotations

import csv

import pytest

pytest.importorskip("optuna")

from chainrule import cli  # noqa: E402
from chainrule.commands_study import _options  # noqa: E402
from chainrule.experiments.shift_scale import study as study_module  # noqa: E402
from tests.data_helpers import needs_fashion_mnist  # noqa: E402

needs_data = needs_fashion_mnist

TINY = ["--arch", "mlp", "--variants", "none", "shift-layer+scale-layer", "--lr", "0.05",
        "--seeds", "1", "--epochs", "2", "--limit", "256", "--val-size", "200",
        "--batch-size", "64"]


@needs_data
def test_tiny_study_writes_the_report_and_resumes(tmp_path, capsys):
    out = tmp_path / "study"
    assert cli.main(["study", "shift-scale", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 runs" in printed and "2 runs ok, 0 failed" in printed
    with open(out / "results.csv") as file:
        rows = list(csv.DictReader(file))
    assert [r["variant"] for r in rows] == ["none", "shift-layer+scale-layer"]
    assert all(r["status"] == "ok" and r["epochs"] == "2" for r in rows)
    assert 0 < float(rows[0]["final_val_error"]) < 0.9  # it learned something
    report = (out / "report.md").read_text()
    assert "(2) it trains faster than no change" in report
    assert (out / "learned.png").stat().st_size > 0
    assert len(list((out / "curves").glob("*.png"))) == 1
    assert len(list((out / "runs").iterdir())) == 2

    assert cli.main(["study", "shift-scale", *TINY, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["study", "shift-scale", *TINY, "--out", str(out), "--resume"]) == 0
    assert "2 runs ok" in capsys.readouterr().out
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("arguments, message", [
    (["--lr", "0"], "--lr must be positive"),
    (["--variants", "shift-diagonal"], "--variants got the unknown variant 'shift-diagonal'"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--limit", "10", "--batch-size", "64"], "--limit (10) is smaller than --batch-size"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--width", "-1"], "--width must be positive"),
])
def test_bad_options_fail_at_once_naming_the_option(tmp_path, capsys, arguments, message):
    assert cli.main(["study", "shift-scale", *arguments, "--out", str(tmp_path / "s")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s" / "runs").exists()


def test_an_unknown_dataset_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["study", "shift-scale", "--dataset", "imagenet"])
    assert exit_info.value.code == 2
    assert "--dataset: invalid choice: 'imagenet'" in capsys.readouterr().err


def test_missing_cifar_files_fail_before_any_run(tmp_path, capsys, monkeypatch):
    from chainrule.datasets import _download

    def offline(url, timeout=None):
        raise OSError("no network here")

    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(_download, "urlopen", offline)
    code = cli.main(["study", "shift-scale", "--dataset", "cifar10", "--out",
                     str(tmp_path / "s")])
    error = capsys.readouterr().err
    assert code == 2
    assert "--dataset cifar10" in error and "How to get CIFAR-10" in error
    assert not (tmp_path / "s" / "runs").exists()


def _parse(arguments):
    cli._load_commands()
    return cli.build_parser().parse_args(["study", "shift-scale", *arguments])


def test_quick_profile_runs_the_whole_grid_on_a_subset():
    options = _options(_parse(["--quick", "--epochs", "5"]))
    assert tuple(options["variants"]) == study_module.VARIANTS
    assert sorted(options["archs"]) == ["allconv", "mlp"]
    assert options["dropouts"] == (False, True) and options["lrs"] == (0.02, 0.04, 0.08)
    assert options["limit"] == 2000 and options["seeds"] == 1
    assert options["epochs"] == 5  # an explicit option wins over the profile


def test_dropout_option_forms():
    assert _options(_parse([]))["dropouts"] == (False,)
    assert _options(_parse(["--dropout"]))["dropouts"] == (True,)
    assert _options(_parse(["--dropout", "both"]))["dropouts"] == (False, True)
