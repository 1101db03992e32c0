"""Figures for the hyper-parameter search lectures (matplotlib, the ``[plot]`` extra).

:func:`plot_search` draws one search (``Strategy.plot``): each trial's score in the order the
trials ran, with the best so far, and the score against each hyper-parameter.

:func:`plot_random_vs_grid` draws Bergstra & Bengio's (2012) argument for random search over grid
search: when only one of two hyper-parameters matters, random search tries many more values of it
for the same number of trials.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plot_random_vs_grid", "plot_search", "default_objective"]

# Where the important parameter's bump peaks. With seed 0 and 9 trials a random point lands
# close to it (x = 0.7297), while the 3x3 grid's nearest value is 5/6; this is one draw, chosen
# so the figure shows the typical case, not a guarantee for every seed.
_OPTIMUM_X = 0.73
_WIDTH = 0.08
_RESOLUTION = 201  # background grid: 0, 0.005, ..., 1 (holds the default optimum exactly)


def default_objective(x: float, y: float) -> float:
    """A bump in ``x`` (the important parameter) plus a tiny term in ``y`` (the unimportant one).

    ``g(x) = exp(-((x - 0.73) / 0.08)**2)`` has its single maximum 1 at ``x = 0.73``;
    ``h(y) = -(y - 0.5)**2`` is weighted by 0.01, so ``y`` barely moves the value.
    """
    return float(np.exp(-(((x - _OPTIMUM_X) / _WIDTH) ** 2)) - 0.01 * (y - 0.5) ** 2)


def _grid_points(side: int) -> np.ndarray:
    """The ``side x side`` grid at cell centres of [0, 1]^2, one row per point (x, y)."""
    values = (np.arange(side) + 0.5) / side
    xs, ys = np.meshgrid(values, values, indexing="ij")
    return np.column_stack([xs.ravel(), ys.ravel()])


def _evaluate(objective, points: np.ndarray) -> np.ndarray:
    return np.array([float(objective(float(x), float(y))) for x, y in points])


def _summary(objective, points: np.ndarray) -> dict:
    values = _evaluate(objective, points)
    return {
        "points": points,
        "values": values,
        "best": float(values.max()),
        "best_point": points[int(values.argmax())].copy(),
        "distinct_x": int(np.unique(np.round(points[:, 0], 12)).size),
        "distinct_y": int(np.unique(np.round(points[:, 1], 12)).size),
    }


def plot_random_vs_grid(path=None, trials: int = 9, seed: int = 0, objective=None) -> dict:
    """Grid search against random search on an objective where only one parameter matters.

    The reasoning (Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR
    2012): with ``n`` trials over two parameters, grid search lays a ``sqrt(n) x sqrt(n)`` grid,
    so it tries only ``sqrt(n)`` distinct values of each parameter; every trial that differs
    only in the unimportant parameter is wasted. Random search draws ``n`` points uniformly, so
    it tries ``n`` distinct values of *each* parameter, and of the important one in particular.
    Most hyper-parameter problems have low effective dimension (a few parameters matter, which
    ones depends on the data set), so random search covers what matters better for the same
    budget.

    The default objective is :func:`default_objective`, ``f(x, y) = g(x) + 0.01 h(y)`` on
    [0, 1]^2, to be maximised: ``g`` a narrow bump at ``x = 0.73``, ``h`` a tiny term. With the
    default ``seed=0`` and ``trials=9``, random search finds ``f = 0.99998`` while the grid's
    best is ``0.189`` (its nearest x is 5/6). That is one draw: the number of distinct values
    tried (``n`` against ``sqrt(n)``) always holds, the better best value only on average.

    Args:
        path: where to write the PNG (atomically); ``None`` draws nothing, so the numbers need
            no matplotlib.
        trials: the number of trials for each method; a perfect square >= 4.
        seed: seed of ``np.random.default_rng`` for the random points.
        objective: ``objective(x, y) -> float`` to maximise, ``x`` the important parameter;
            default :func:`default_objective`.

    Returns:
        ``{"grid": {...}, "random": {...}, "optimum": float}``: for each method ``points``
        (``(trials, 2)`` array of (x, y)), ``values``, ``best`` (the best value found),
        ``best_point``, ``distinct_x`` and ``distinct_y`` (numbers of distinct values tried);
        ``optimum`` is the objective's maximum (exact for the default objective, else the
        maximum over a 201 x 201 grid and the trial points).

    Example::

        >>> result = plot_random_vs_grid("random_vs_grid.png")  # doctest: +SKIP
        >>> result["grid"]["distinct_x"], result["random"]["distinct_x"]  # doctest: +SKIP
        (3, 9)
    """
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)):
        raise ValueError(f"trials must be a perfect square integer >= 4, got {trials!r}")
    side = math.isqrt(int(trials)) if trials >= 0 else 0
    if trials < 4 or side * side != trials:
        raise ValueError(f"trials must be a perfect square integer >= 4, got {trials!r}")
    trials = int(trials)
    function = default_objective if objective is None else objective

    grid = _summary(function, _grid_points(side))
    random = _summary(function, np.random.default_rng(seed).uniform(0.0, 1.0, size=(trials, 2)))

    axis = np.linspace(0.0, 1.0, _RESOLUTION)
    surface = np.array([[float(function(x, y)) for y in axis] for x in axis])  # [x, y]
    if objective is None:
        optimum = default_objective(_OPTIMUM_X, 0.5)
    else:
        optimum = float(max(surface.max(), grid["best"], random["best"]))
    result = {"grid": grid, "random": random, "optimum": float(optimum)}

    if path is not None:
        figure = _draw(axis, surface, result)
        from chainrule.io import atomic_write

        atomic_write(str(path), lambda file: figure.savefig(file, format="png"))
    return result


def _draw(axis: np.ndarray, surface: np.ndarray, result: dict):
    """The two panels, each with the important parameter's marginal above, the other's right."""
    from chainrule.plot import _figure

    figure = _figure(12.0, 6.2)
    layout = figure.add_gridspec(
        2, 5, width_ratios=[4.0, 1.0, 0.7, 4.0, 1.0], height_ratios=[1.3, 4.0],
        wspace=0.1, hspace=0.06, left=0.06, right=0.98, bottom=0.09, top=0.88,
    )
    marginal_x = surface.mean(axis=1)  # the important parameter's curve (mean over y)
    marginal_y = surface.mean(axis=0)  # the unimportant one's: flat
    low = min(marginal_x.min(), marginal_y.min())
    high = max(marginal_x.max(), marginal_y.max())
    pad = 0.08 * (high - low or 1.0)
    limits = (low - pad, high + pad)

    for column, (name, label) in zip((0, 3), (("grid", "Grid"), ("random", "Random"))):
        entry = result[name]
        points = entry["points"]
        plane = figure.add_subplot(layout[1, column])
        top = figure.add_subplot(layout[0, column], sharex=plane)
        right = figure.add_subplot(layout[1, column + 1], sharey=plane)

        plane.imshow(
            surface.T, origin="lower", extent=(0.0, 1.0, 0.0, 1.0), aspect="auto",
            cmap="Greens", alpha=0.45,
        )
        plane.scatter(points[:, 0], points[:, 1], s=40, color="black", zorder=3)
        best = entry["best_point"]
        plane.scatter([best[0]], [best[1]], s=140, facecolors="none", edgecolors="crimson",
                      linewidths=2.0, zorder=4, label=f"best found: {entry['best']:.3f}")
        plane.legend(loc="lower left", fontsize=8)
        plane.set_xlim(0.0, 1.0)
        plane.set_ylim(0.0, 1.0)
        plane.set_xlabel("important parameter x")
        plane.set_ylabel("unimportant parameter y")

        top.plot(axis, marginal_x, color="tab:green")
        for x in points[:, 0]:
            top.axvline(x, ymin=0.0, ymax=0.18, color="black", linewidth=1.5)
        top.set_ylim(*limits)
        top.tick_params(labelbottom=False, labelsize=7)
        top.set_title(
            f"{label} search: {entry['distinct_x']} distinct values of the important parameter",
            fontsize=10,
        )

        right.plot(marginal_y, axis, color="tab:gray")
        for y in points[:, 1]:
            right.axhline(y, xmin=0.0, xmax=0.18, color="black", linewidth=1.5)
        right.set_xlim(*limits)
        right.tick_params(labelleft=False, labelsize=7)

    figure.suptitle(
        f"{len(result['grid']['points'])} trials each; only x matters "
        f"(optimum {result['optimum']:.3f})",
        fontsize=11,
    )
    return figure


# -- one search --------------------------------------------------------------------------------


def plot_search(rows: list, space: dict, objective: str, direction: str, path=None):
    """A search's trials: the score of each trial in order with the best so far (left), and the
    score against each hyper-parameter (one panel each; a log axis for a ``LogUniform``, the
    values in order for a ``Choice``). Pruned trials are hollow, failed ones left out.

    Args:
        rows: ``Strategy.results()``: dicts with ``trial``, ``status``, ``score`` and each
            hyper-parameter.
        space: the search space (``{name: Uniform/LogUniform/IntUniform/Choice}``).
        objective, direction: the score's name and "maximize" or "minimize".
        path: where to write the PNG (atomically); None writes nothing.

    Returns the matplotlib Figure.
    """
    from chainrule.plot import _figure

    scored = sorted((row for row in rows if row["status"] in ("ok", "pruned")
                     and row.get("score") is not None and math.isfinite(row["score"])),
                    key=lambda row: row["trial"])
    figure = _figure(4.0 * (1 + len(space)), 3.6)
    axes = figure.subplots(1, 1 + len(space), squeeze=False)[0]
    _draw_scores_in_order(axes[0], scored, objective, direction)
    for ax, (name, values) in zip(axes[1:], space.items()):
        _draw_score_against(ax, scored, name, values, objective)
    figure.suptitle(f"{len(scored)} trials scored ({sum(r['status'] == 'pruned' for r in rows)}"
                    f" pruned, {sum(r['status'] == 'failed' for r in rows)} failed)",
                    fontsize=11)
    figure.tight_layout()
    if path is not None:
        from chainrule.io import atomic_write

        atomic_write(str(path), lambda file: figure.savefig(file, format="png"))
    return figure


def _scatter(ax, xs, rows) -> None:
    """Trials that ran to their end filled, pruned ones hollow."""
    for pruned in (False, True):
        chosen = [(x, row["score"]) for x, row in zip(xs, rows)
                  if (row["status"] == "pruned") == pruned]
        if chosen:
            ax.scatter(*zip(*chosen), s=30, facecolors="none" if pruned else "tab:blue",
                       edgecolors="tab:blue", label="pruned" if pruned else "ran to the end")


def _draw_scores_in_order(ax, rows: list, objective: str, direction: str) -> None:
    trials = [row["trial"] for row in rows]
    _scatter(ax, trials, rows)
    if rows:
        pick = np.minimum if direction == "minimize" else np.maximum
        best = pick.accumulate([row["score"] for row in rows])
        ax.step(trials, best, where="post", color="crimson", label="best so far")
        ax.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)


def _draw_score_against(ax, rows: list, name: str, values, objective: str) -> None:
    xs = [row[name] for row in rows]
    if values.categorical:  # a Choice: its values in order, as categories
        labels = [str(v) for v in values.values()]
        xs = [labels.index(str(x)) for x in xs]
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlim(-0.5, len(labels) - 0.5)
    elif values.log:
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide
    _scatter(ax, xs, rows)
    ax.set_xlabel(name)
    ax.set_ylabel(objective)
