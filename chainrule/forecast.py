"""Time-series forecasting: an LSTM forecaster against the naive and autoregressive baselines.

A forecaster sees the last ``input_len`` values of a series and predicts the next ``horizon``
values. Windows (past, future) are cut by :func:`chainrule.data.sliding_windows`; the last
``test_size`` values are held out, and every model is scored on the windows whose futures lie
there (one-step-ahead with ``horizon=1``: each forecast starts from the true past):

* **naive**: the last observed value, repeated: ŷ_{t+k} = y_t. The bar to beat.
* **AR(p)**: the linear autoregression ŷ_{t+1} = c + Σ_{i=1..p} a_i·y_{t+1−i}, fitted by least
  squares; for a longer horizon it feeds its own forecasts back.
* **LSTM**: Sequential([LSTM(units), Dense(horizon)]) on the standardised series, trained with
  Adam on the mean squared error.

Scores are the mean absolute error MAE = mean |y − ŷ| and the root mean squared error
RMSE = √mean (y − ŷ)², in the series' units.

>>> series = load_sunspots()                                           # doctest: +SKIP
>>> results = compare(series, input_len=12, test_size=60)               # doctest: +SKIP
>>> {name: round(r.mae, 1) for name, r in results.items()}              # doctest: +SKIP

The sunspot numbers (yearly, 1700–2008) come with statsmodels: ``pip install chainrule[data]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

import chainrule as cr
from chainrule.data import sliding_windows
from chainrule.layers.core import Dense
from chainrule.layers.recurrent import LSTM
from chainrule.models import Sequential
from chainrule.optimizers import Adam

DATA_EXTRA_HINT = "pip install chainrule[data] (or pip install statsmodels)"


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """Yearly mean sunspot numbers 1700–2008 (309 values) from statsmodels' data sets.

    Returns ``(years, values)`` as float64 arrays. Raises ImportError with the install hint when
    statsmodels is missing.
    """
    try:
        from statsmodels.datasets import sunspots
    except ImportError as error:
        raise ImportError(f"the sunspots series ships with statsmodels: {DATA_EXTRA_HINT}"
                          ) from error
    frame = sunspots.load_pandas().data
    return (frame["YEAR"].to_numpy(dtype=np.float64),
            frame["SUNACTIVITY"].to_numpy(dtype=np.float64))


# -- scores ---------------------------------------------------------------------------------------


def mae(actual, predicted) -> float:
    """Mean absolute error: mean |y − ŷ|."""
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(predicted))))


def rmse(actual, predicted) -> float:
    """Root mean squared error: √(mean (y − ŷ)²)."""
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


# -- baselines ------------------------------------------------------------------------------------


def naive_forecast(inputs, horizon: int = 1) -> np.ndarray:
    """The last value of each input window repeated ``horizon`` times: (n, input_len) → (n, h)."""
    inputs = np.asarray(inputs)
    return np.repeat(inputs[:, -1:], horizon, axis=1)


class AutoRegression:
    """AR(p), fitted by least squares: ŷ_t = c + a_1·y_{t−1} + ... + a_p·y_{t−p}.

    ``fit`` solves min Σ_t (y_t − c − Σ_i a_i y_{t−i})² over every window of the training
    series (``numpy.linalg.lstsq``). ``predict`` forecasts ``horizon`` steps after each input
    window, feeding forecasts back in for steps beyond the first.

    Args:
        order: p, the number of past values used.

    >>> y = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    >>> ar = AutoRegression(order=1).fit(y)
    >>> round(float(ar.coefficients[0]), 6), round(float(ar.intercept), 6)
    (2.0, 0.0)
    >>> ar.predict([[16.0, 32.0]], horizon=2).round(6).tolist()
    [[64.0, 128.0]]
    """

    def __init__(self, order: int):
        if int(order) < 1:
            raise ValueError(f"AutoRegression: order must be >= 1, got {order}")
        self.order = int(order)
        self.intercept = 0.0
        self.coefficients = None  # a_1 ... a_p (a_1 multiplies the most recent value)

    def fit(self, series) -> AutoRegression:
        series = np.asarray(series, dtype=np.float64)
        past, future = sliding_windows(series, self.order, 1)
        design = np.column_stack([np.ones(len(past)), past[:, ::-1]])
        solution, *_ = np.linalg.lstsq(design, future[:, 0], rcond=None)
        self.intercept, self.coefficients = float(solution[0]), solution[1:]
        return self

    def predict(self, inputs, horizon: int = 1) -> np.ndarray:
        """Forecasts (n, horizon) from input windows (n, input_len ≥ order)."""
        if self.coefficients is None:
            raise RuntimeError("AutoRegression: call fit(series) before predict")
        history = np.array(inputs, dtype=np.float64)
        if history.ndim != 2 or history.shape[1] < self.order:
            raise ValueError(f"AutoRegression.predict: inputs must be (n, input_len >= "
                             f"{self.order}), got shape {history.shape}")
        history = history[:, -self.order:]
        forecasts = np.empty((len(history), horizon))
        for k in range(horizon):
            forecasts[:, k] = self.intercept + history[:, ::-1] @ self.coefficients
            history = np.column_stack([history[:, 1:], forecasts[:, k]])
        return forecasts


# -- the LSTM forecaster --------------------------------------------------------------------------


def lstm_forecaster(input_len: int, horizon: int = 1, units: int = 32) -> Sequential:
    """Sequential([LSTM(units), Dense(horizon)]) for windows (batch, input_len, 1)."""
    return Sequential([LSTM(units, input_shape=(input_len, 1)), Dense(horizon)])


@dataclass
class Standardizer:
    """z = (y − mean) / std with the training part's statistics, and back."""

    mean: float
    std: float

    @classmethod
    def fit(cls, series) -> Standardizer:
        series = np.asarray(series, dtype=np.float64)
        return cls(float(series.mean()), float(series.std()) or 1.0)

    def transform(self, values):
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std

    def inverse(self, values):
        return np.asarray(values, dtype=np.float64) * self.std + self.mean


@dataclass
class Result:
    """One model's held-out forecasts and scores."""

    name: str
    predictions: np.ndarray  # (n_test, horizon)
    mae: float
    rmse: float


def split_windows(series, input_len: int, horizon: int, test_size: int):
    """Windows of ``series`` split into training and test windows without leakage.

    Training windows have their whole future before the last ``test_size`` values; test windows
    have their first forecast step inside them. Returns ``(X_train, y_train, X_test, y_test,
    test_start)``, where ``test_start[i]`` is the index in the series of test window i's first
    forecast step.
    """
    series = np.asarray(series, dtype=np.float64)
    boundary = len(series) - test_size
    if boundary < input_len + horizon:
        raise ValueError(f"split_windows: a series of {len(series)} values leaves too few "
                         f"({boundary}) for training windows of {input_len} + {horizon}")
    inputs, targets = sliding_windows(series, input_len, horizon)
    first_step = np.arange(len(inputs)) + input_len
    train = first_step + horizon <= boundary
    test = first_step >= boundary
    return (np.array(inputs[train]), np.array(targets[train]), np.array(inputs[test]),
            np.array(targets[test]), first_step[test])


def fit_lstm(x_train, y_train, input_len: int, horizon: int = 1, units: int = 32,
             epochs: int = 100, batch_size: int = 16, learning_rate: float = 1e-2,
             seed: int = 0, verbose=0) -> Sequential:
    """Train :func:`lstm_forecaster` on (standardised) windows with Adam and the MSE."""
    cr.manual_seed(seed)
    model = lstm_forecaster(input_len, horizon, units)
    model.compile(optimizer=Adam(learning_rate=learning_rate), loss="mse")
    model.fit(x_train[..., None], y_train, epochs=epochs, batch_size=batch_size, seed=seed,
              verbose=verbose)
    return model


def compare(series, input_len: int = 12, horizon: int = 1, test_size: int = 60,
            order: int | None = None, units: int = 32, epochs: int = 100,
            batch_size: int = 16, learning_rate: float = 1e-2, seed: int = 0,
            verbose=0) -> dict[str, Result]:
    """Fit the naive, AR(order) and LSTM forecasters on the start of ``series`` and score them
    on its last ``test_size`` values.

    Args:
        series: a 1-D series.
        input_len: the past values each forecast sees.
        horizon: steps forecast at once (scores average over all of them).
        test_size: the held-out tail.
        order: p of the AR model (default ``input_len``).
        units, epochs, batch_size, learning_rate, seed: the LSTM and its training.

    Returns:
        ``{"naive": Result, "AR(p)": Result, "LSTM": Result}`` in that order.
    """
    series = np.asarray(series, dtype=np.float64)
    x_train, y_train, x_test, y_test, _ = split_windows(series, input_len, horizon, test_size)
    training_part = series[:len(series) - test_size]
    order = order or input_len
    scale = Standardizer.fit(training_part)
    model = fit_lstm(scale.transform(x_train), scale.transform(y_train), input_len, horizon,
                     units, epochs, batch_size, learning_rate, seed, verbose)
    lstm_predictions = scale.inverse(model.predict(scale.transform(x_test)[..., None]))
    predictions = {
        "naive": naive_forecast(x_test, horizon),
        f"AR({order})": AutoRegression(order).fit(training_part).predict(x_test, horizon),
        "LSTM": lstm_predictions,
    }
    return {name: Result(name, p, mae(y_test, p), rmse(y_test, p))
            for name, p in predictions.items()}


def plot_forecast(path, time_axis, series, test_start, results: dict, title: str = "",
                  context: int | None = 60):
    """Save a PNG of the series with each model's first-step forecasts over the held-out tail.

    ``context`` values before the tail are shown too (None: the whole series). Needs
    matplotlib (``pip install chainrule[plot]``).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("plot_forecast needs matplotlib: pip install chainrule[plot]"
                          ) from error
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    first = 0 if context is None else max(0, int(test_start[0]) - context)
    time_axis, series = np.asarray(time_axis)[first:], np.asarray(series)[first:]
    test_start = np.asarray(test_start) - first
    axes.plot(time_axis, series, color="black", linewidth=1.2, label="actual")
    styles = {"naive": ":", "LSTM": "-"}
    for name, result in results.items():
        label = f"{name} (MAE {result.mae:.1f}, RMSE {result.rmse:.1f})"
        axes.plot(time_axis[test_start], result.predictions[:, 0],
                  linestyle=styles.get(name, "--"), linewidth=1.6, label=label)
    axes.axvline(time_axis[test_start[0]], color="gray", linewidth=0.8)
    axes.set_title(title or "one-step-ahead forecasts on the held-out tail")
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    figure.savefig(path)


__all__ = ["AutoRegression", "Result", "Standardizer", "compare", "fit_lstm", "load_sunspots",
           "lstm_forecaster", "mae", "naive_forecast", "plot_forecast", "rmse", "split_windows"]
