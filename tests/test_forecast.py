"""Forecasting: scores, the naive and AR(p) baselines, window splits, and the LSTM forecaster."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import forecast


def _ar2_series(n, rng, noise=1.0):
    """y_t = 0.5 + 1.2·y_{t−1} − 0.5·y_{t−2} + ε_t (a stationary AR(2) process)."""
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = 0.5 + 1.2 * y[t - 1] - 0.5 * y[t - 2] + noise * rng.standard_normal()
    return y


def test_scores():
    assert forecast.mae([1.0, 2.0, 3.0], [2.0, 2.0, 1.0]) == pytest.approx(1.0)
    assert forecast.rmse([1.0, 2.0, 3.0], [2.0, 2.0, 1.0]) == pytest.approx(np.sqrt(5 / 3))
    assert forecast.rmse([[1.0], [2.0]], [[1.0], [2.0]]) == 0.0


def test_naive_forecast_repeats_the_last_value():
    inputs = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(forecast.naive_forecast(inputs, horizon=2),
                                  [[3.0, 3.0], [6.0, 6.0]])


def test_autoregression_recovers_the_coefficients(rng):
    ar = forecast.AutoRegression(order=2).fit(_ar2_series(5000, rng))
    np.testing.assert_allclose(ar.coefficients, [1.2, -0.5], atol=0.03)
    assert ar.intercept == pytest.approx(0.5, abs=0.1)
    noiseless = np.zeros(40)
    noiseless[:2] = 3.0, 1.0
    for t in range(2, 40):
        noiseless[t] = 0.5 + 1.2 * noiseless[t - 1] - 0.5 * noiseless[t - 2]
    exact = forecast.AutoRegression(order=2).fit(noiseless)
    np.testing.assert_allclose([exact.intercept, *exact.coefficients], [0.5, 1.2, -0.5],
                               rtol=1e-8)


def test_autoregression_multi_step_feeds_its_forecasts_back():
    ar = forecast.AutoRegression(order=2)
    ar.intercept, ar.coefficients = 1.0, np.array([0.5, 0.25])
    first = 1.0 + 0.5 * 4.0 + 0.25 * 3.0
    second = 1.0 + 0.5 * first + 0.25 * 4.0
    np.testing.assert_allclose(ar.predict([[9.0, 3.0, 4.0]], horizon=2), [[first, second]])
    with pytest.raises(ValueError, match="input_len >= 2"):
        ar.predict([[1.0]])
    with pytest.raises(RuntimeError, match="call fit"):
        forecast.AutoRegression(3).predict([[1.0, 2.0, 3.0]])


@pytest.mark.parametrize("horizon", [1, 3])
def test_split_windows_holds_out_the_tail_without_leakage(horizon):
    series = np.arange(50.0)
    x_train, y_train, x_test, y_test, test_start = forecast.split_windows(
        series, input_len=5, horizon=horizon, test_size=10)
    assert y_train.max() < 40  # every training target lies before the tail
    assert test_start[0] == 40 and len(x_test) == 10 - horizon + 1
    np.testing.assert_array_equal(y_test[:, 0], series[test_start])
    np.testing.assert_array_equal(x_test[:, -1] + 1, y_test[:, 0])
    assert len(x_train) == len(y_train) == 40 - 5 - horizon + 1
    with pytest.raises(ValueError, match="too few"):
        forecast.split_windows(series[:12], input_len=5, horizon=1, test_size=10)


def test_lstm_forecaster_beats_the_naive_forecast_on_a_noisy_sine(rng):
    t = np.arange(300)
    series = 10 * np.sin(2 * np.pi * t / 25) + rng.standard_normal(300)
    results = forecast.compare(series, input_len=12, test_size=50, units=16, epochs=40,
                               batch_size=32, learning_rate=2e-2)
    assert list(results) == ["naive", "AR(12)", "LSTM"]
    assert results["LSTM"].predictions.shape == (50, 1)
    assert results["LSTM"].mae < 0.6 * results["naive"].mae
    assert results["AR(12)"].mae < 0.6 * results["naive"].mae


def test_sunspots_ship_with_statsmodels():
    pytest.importorskip("statsmodels", reason="the sunspots data set needs statsmodels ([data])")
    years, values = forecast.load_sunspots()
    assert years.shape == values.shape == (309,)
    assert years[0] == 1700 and years[-1] == 2008 and values.min() >= 0


def test_plot_forecast_writes_a_png(tmp_path, rng):
    pytest.importorskip("matplotlib", reason="plots need matplotlib ([plot])")
    series = np.sin(np.arange(40) / 3)
    _, _, x_test, y_test, start = forecast.split_windows(series, 5, 1, 10)
    predictions = forecast.naive_forecast(x_test)
    results = {"naive": forecast.Result("naive", predictions, forecast.mae(y_test, predictions),
                                        forecast.rmse(y_test, predictions))}
    path = tmp_path / "plots" / "forecast.png"
    forecast.plot_forecast(path, np.arange(40), series, start, results)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
