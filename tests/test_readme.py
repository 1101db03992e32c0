"""The README's Python examples run as written (on small synthetic data)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def synthetic_data(one_hot: bool) -> dict:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((10, 784)).astype(np.float32)
    labels = rng.integers(0, 10, size=300)
    x = centers[labels] + 0.5 * rng.standard_normal((300, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[labels] if one_hot else labels
    return {"x_train": x[:240], "y_train": y[:240], "x_test": x[240:], "y_test": y[240:]}


def test_readme_has_the_three_examples():
    assert len(python_blocks()) == 3


@pytest.mark.parametrize("index,one_hot", [(0, True), (1, False), (2, False)])
def test_readme_example_runs(index, one_hot, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Keras example saves model.npz
    namespace = synthetic_data(one_hot)
    if index == 2:
        exec(python_blocks()[1], namespace)  # the graph example uses `cr` from the loop example
    exec(python_blocks()[index], namespace)
    if index == 0:
        assert namespace["accuracy"] > 0.5
        assert (tmp_path / "model.npz").exists()
    if index == 1:
        assert np.isfinite(namespace["loss"].item())
    if index == 2:
        assert namespace["x"].grad.item() == -4.0
