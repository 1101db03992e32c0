"""chainrule baselines: scikit-learn's classic classifiers beside chainrule's MLP and CNN."""

from __future__ import annotations

import json
import sys

import pytest

from chainrule import baselines
from chainrule.cli import main
from tests.test_commands import needs_fashion_mnist

pytest.importorskip("sklearn")


def test_published_numbers_are_the_papers():
    published = {name: value for name, (value, _) in baselines.PUBLISHED["fashion-mnist"].items()}
    assert published == {"svc": 0.897, "rf": 0.873, "knn": 0.854, "logreg": 0.842,
                         "sk_mlp": 0.871, "mlp": 0.883, "cnn": 0.916}
    assert set(baselines.MODELS) <= set(published)


def test_parse_models():
    assert baselines.parse_models("svc, knn,svc") == ("svc", "knn")
    with pytest.raises(ValueError, match="--models.*'boost'.*knn"):
        baselines.parse_models("knn,boost")
    with pytest.raises(ValueError, match="--models"):
        baselines.parse_models(",")


def test_estimators_are_the_papers_settings():
    assert baselines.sklearn_estimator("knn").n_neighbors == 5
    assert baselines.sklearn_estimator("rf", seed=3).get_params()["n_estimators"] == 100
    svc = baselines.sklearn_estimator("svc")
    assert (svc.kernel, svc.C) == ("rbf", 10)


@needs_fashion_mnist
def test_baselines_end_to_end(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["baselines", "--models", "knn,rf,logreg,svc,mlp,cnn", "--limit", "200",
                 "--epochs", "1", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [row["model"] for row in rows] == list(baselines.MODELS)
    for row in rows:
        assert 0 <= row["test_accuracy"] <= 1
        assert row["train_samples"] == 200 and row["test_samples"] == 200
        assert row["published"] == baselines.PUBLISHED["fashion-mnist"][row["model"]][0]
    assert rows[0]["test_accuracy"] > 0.5  # k-NN on 200 images is well above chance
    printed = capsys.readouterr().out
    assert "| svc: SVC(kernel='rbf', C=10) | 200 |" in printed and "0.897" in printed
    assert (out / "results.md").is_file()


def test_the_svc_subset_is_documented():
    assert baselines.TRAIN_SUBSETS["svc"] == 10_000
    assert "10,000" in baselines.__doc__


@needs_fashion_mnist
def test_missing_scikit_learn_names_the_extra(tmp_path, capsys, monkeypatch):
    for module in ("sklearn", "sklearn.neighbors", "sklearn.ensemble", "sklearn.svm",
                   "sklearn.linear_model"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(ImportError, match=r"chainrule\[data\].*scikit-learn"):
        baselines.sklearn_estimator("knn")
    assert main(["baselines", "--models", "svc,mlp", "--limit", "50",
                 "--out", str(tmp_path)]) == 2
    assert "chainrule[data]" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("argv, named", [
    (["--models", "knn,xgboost"], "--models"),
    (["--epochs", "0", "--models", "mlp"], "--epochs"),
    (["--limit", "0", "--models", "knn"], "--limit"),
])
def test_bad_arguments_are_named(tmp_path, capsys, argv, named):
    assert main(["baselines", *argv, "--out", str(tmp_path)]) == 2
    assert named in capsys.readouterr().err
