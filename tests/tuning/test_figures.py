"""plot_random_vs_grid: the numbers behind the random-versus-grid figure, and the PNG."""

import numpy as np
import pytest

from chainrule.tuning.figures import default_objective, plot_random_vs_grid


def test_random_search_tries_more_values_of_the_important_parameter():
    result = plot_random_vs_grid(trials=9, seed=0)
    assert result["grid"]["distinct_x"] == 3
    assert result["random"]["distinct_x"] == 9
    assert result["grid"]["points"].shape == (9, 2)
    assert result["random"]["points"].shape == (9, 2)


def test_random_best_beats_grid_best_for_the_default_seed():
    result = plot_random_vs_grid(trials=9, seed=0)
    assert result["random"]["best"] >= result["grid"]["best"]
    assert result["random"]["best"] > 0.99  # a point lands next to x = 0.73
    assert result["grid"]["best"] < 0.2  # the grid's nearest x is 5/6
    assert result["optimum"] == pytest.approx(1.0)
    assert result["random"]["best"] <= result["optimum"]


@pytest.mark.parametrize("trials", [4, 16, 25])
def test_distinct_counts_for_other_budgets(trials):
    result = plot_random_vs_grid(trials=trials, seed=3)
    side = int(round(trials ** 0.5))
    assert result["grid"]["distinct_x"] == side
    assert result["grid"]["distinct_y"] == side
    assert result["random"]["distinct_x"] == trials


def test_points_lie_in_the_unit_square():
    result = plot_random_vs_grid(trials=16, seed=1)
    for name in ("grid", "random"):
        points = result[name]["points"]
        assert np.all(points > 0.0) and np.all(points < 1.0)


def test_same_seed_same_points_and_other_seed_other_points():
    a = plot_random_vs_grid(seed=5)["random"]["points"]
    b = plot_random_vs_grid(seed=5)["random"]["points"]
    c = plot_random_vs_grid(seed=6)["random"]["points"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_custom_objective_is_used():
    result = plot_random_vs_grid(trials=4, objective=lambda x, y: -abs(x - 0.25))
    assert result["grid"]["best"] == pytest.approx(0.0)  # the grid has x = 0.25
    assert result["optimum"] == pytest.approx(0.0)


def test_default_objective_peaks_at_the_bump():
    assert default_objective(0.73, 0.5) == pytest.approx(1.0)
    assert default_objective(0.73, 0.0) == pytest.approx(1.0, abs=0.01)
    assert default_objective(0.2, 0.5) < 1e-6


@pytest.mark.parametrize("trials", [0, 1, 3, 8, 10, -4, 9.0, "9", True])
def test_bad_trials_raise_naming_it(trials):
    with pytest.raises(ValueError, match="trials"):
        plot_random_vs_grid(trials=trials)


def test_png_is_written_atomically(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib ([plot] extra)")
    path = tmp_path / "random_vs_grid.png"
    result = plot_random_vs_grid(path, trials=9, seed=0)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["random_vs_grid.png"]
    assert result["random"]["distinct_x"] == 9
