"""Forecast the yearly sunspot numbers with an LSTM, against the naive and AR(p) baselines.

    python examples/forecast_sunspots.py [--input-len 12] [--test-size 60] [--seeds 3]

The series (1700–2008, 309 years) ships with statsmodels (``pip install chainrule[data]``).
The last ``--test-size`` years are held out; every model forecasts each of them one year ahead
from the true values of the ``--input-len`` years before. The LSTM (Sequential([LSTM(32),
Dense(1)]) on the standardised series, Adam 1e-2, MSE) is trained with ``--seeds`` different
seeds; the table shows the first seed's scores and the spread over all of them, and the plot
(``--plot``, needs matplotlib) the forecasts of the first seed.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

sys.path.insert(0, ".")
from chainrule import forecast  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-len", type=int, default=12)
    parser.add_argument("--test-size", type=int, default=60)
    parser.add_argument("--order", type=int, default=None, help="p of AR(p) (default input-len)")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plot", default="docs/forecast.png")
    args = parser.parse_args()

    years, series = forecast.load_sunspots()
    runs = [forecast.compare(series, input_len=args.input_len, test_size=args.test_size,
                             order=args.order, units=args.units, epochs=args.epochs, seed=seed)
            for seed in range(args.seeds)]
    results = runs[0]
    print(f"sunspots {int(years[0])}–{int(years[-1])}: one-step-ahead forecasts of the last "
          f"{args.test_size} years ({int(years[-args.test_size])}–{int(years[-1])}) from the "
          f"{args.input_len} years before")
    print(f"{'model':10s} {'MAE':>7s} {'RMSE':>7s}")
    for name, result in results.items():
        print(f"{name:10s} {result.mae:7.2f} {result.rmse:7.2f}")
    if args.seeds > 1:
        maes = [run["LSTM"].mae for run in runs]
        rmses = [run["LSTM"].rmse for run in runs]
        print(f"LSTM over {args.seeds} seeds: MAE {np.mean(maes):.2f} ± {np.std(maes):.2f}, "
              f"RMSE {np.mean(rmses):.2f} ± {np.std(rmses):.2f}")
    *_, test_start = forecast.split_windows(series, args.input_len, 1, args.test_size)
    try:
        forecast.plot_forecast(args.plot, years, series, test_start, results,
                               title="Yearly sunspot numbers: one-year-ahead forecasts")
        print(f"plot: {args.plot}")
    except ImportError:
        print("(no matplotlib: pip install chainrule[plot] for the plot)")


if __name__ == "__main__":
    main()
