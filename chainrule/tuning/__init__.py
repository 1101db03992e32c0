"""Hyper-parameter search on the experiment runner (Optuna; the ``[tune]`` extra).

A search space is a dict of named ranges; a strategy draws hyper-parameter sets from it, trains
the model that ``build_fn(hp)`` returns on each, and keeps every trial in the runner's storage
(:class:`chainrule.experiments.Study`): worker processes, a shared storage, resume after a kill
and failed trials recorded all come from there. Samplers are Optuna's; nothing of theirs is
written again here.

==================  ================================================================
``Uniform(lo, hi)``      a float, uniformly in [lo, hi]
``LogUniform(lo, hi)``   a float, uniformly in log space (learning rates, weight decays)
``IntUniform(lo, hi)``   an int in [lo, hi], both included
``Choice([a, b, ...])``  one of the values
==================  ================================================================

``RandomSearch`` (Optuna's RandomSampler), ``GridSearch`` (GridSampler; every parameter must be
a Choice or an IntUniform) and ``TPESearch`` (TPESampler) share one interface, KerasTuner's::

    def build_fn(hp):
        model = Sequential([Input(shape=(784,)), Dense(hp["units"], activation="relu"),
                            Dense(10)])
        model.compile(optimizer=SGD(learning_rate=hp["lr"], momentum=0.9),
                      loss=SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    search = RandomSearch(build_fn, {"lr": LogUniform(1e-4, 1e-1),
                                     "units": Choice([64, 128, 256])},
                          objective="val_accuracy", max_trials=20, directory="runs/tune")
    search.search(x, y, epochs=5, batch_size=128, validation_split=0.1)   # or cv=5
    search.results()       # one row per trial: hp, score (and its std with cv), status
    search.best_params     # {"lr": ..., "units": ...}
    model = search.best_model()   # retrained on all of x, y with the best hp

A trial's score is the best epoch's value of ``objective`` (KerasTuner's rule), maximised for
accuracies and minimised for losses (names containing "loss" or "error"). With ``cv=k`` each
trial trains k models on stratified folds (:class:`chainrule.data.StratifiedKFold`), and its
score is their mean (``score_std`` beside it).

:func:`plot_random_vs_grid` (:mod:`.figures`) draws the lectures' figure: with one of two
parameters mattering, random search tries more of its values than a grid of the same size.

``best_model()`` retrains: the search keeps no weights (a trial's folder holds its history,
not a model), so the best hyper-parameters are trained again on all the data given to
``search``, with the same epochs, batch size and seed.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np

import chainrule
from chainrule.callbacks import Callback
from chainrule.experiments.runner import RunPruned, Study, import_optuna, report
from chainrule.tuning.figures import plot_random_vs_grid, plot_search

# -- spaces ---------------------------------------------------------------------------------


class Uniform:
    """A float drawn uniformly from [lo, hi]."""

    log = False  # drawn (and plotted) on a log scale
    categorical = False  # values without an order of magnitude (plotted as categories)

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = _checked_range(type(self).__name__, lo, hi)

    def distribution(self):
        return import_optuna().distributions.FloatDistribution(self.lo, self.hi)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.lo!r}, {self.hi!r})"


class LogUniform(Uniform):
    """A float drawn uniformly in log space from [lo, hi] (lo > 0)."""

    log = True

    def __init__(self, lo: float, hi: float):
        super().__init__(lo, hi)
        if self.lo <= 0:
            raise ValueError(f"LogUniform: lo must be > 0, got lo={lo!r}")

    def distribution(self):
        return import_optuna().distributions.FloatDistribution(self.lo, self.hi, log=True)


class IntUniform(Uniform):
    """An int drawn uniformly from lo..hi, both included."""

    def __init__(self, lo: int, hi: int):
        if int(lo) != lo or int(hi) != hi:
            raise ValueError(f"IntUniform: lo and hi must be integers, got {lo!r}, {hi!r}")
        super().__init__(int(lo), int(hi))

    def distribution(self):
        return import_optuna().distributions.IntDistribution(self.lo, self.hi)

    def values(self) -> list[int]:
        return list(range(self.lo, self.hi + 1))


class Choice:
    """One of ``values`` (ints, floats, strings, booleans or None)."""

    log = False
    categorical = True

    def __init__(self, values):
        self.values_ = list(values)
        if not self.values_:
            raise ValueError("Choice: values must not be empty")

    def distribution(self):
        return import_optuna().distributions.CategoricalDistribution(self.values_)

    def values(self) -> list:
        return list(self.values_)

    def __repr__(self) -> str:
        return f"Choice({self.values_!r})"


def _checked_range(name: str, lo, hi) -> tuple:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name}: lo and hi must be finite, got {lo!r}, {hi!r}")
    if lo >= hi:
        raise ValueError(f"{name}: lo must be below hi, got lo={lo!r}, hi={hi!r}")
    return lo, hi


def _check_space(space: dict) -> dict:
    if not isinstance(space, dict) or not space:
        raise ValueError("space must be a non-empty dict of name: Uniform/LogUniform/"
                         "IntUniform/Choice")
    for name, value in space.items():
        if not isinstance(value, (Uniform, Choice)):
            raise TypeError(f"space[{name!r}] must be a Uniform, LogUniform, IntUniform or "
                            f"Choice, got {type(value).__name__}")
    return space


# -- one trial ------------------------------------------------------------------------------


def objective_direction(objective: str) -> str:
    """"minimize" for losses and errors, "maximize" for everything else (accuracies)."""
    return "minimize" if ("loss" in objective or "error" in objective) else "maximize"


class _Trial:
    """The run function of a search: train ``build_fn(hp)`` and score it (picklable when
    ``build_fn`` is a module-level function, as worker processes need)."""

    def __init__(self, build_fn, data: dict, fit_options: dict, objective: str, cv, seed: int):
        self.build_fn, self.data, self.fit_options = build_fn, data, fit_options
        self.objective, self.cv, self.seed = objective, cv, seed

    def __call__(self, spec: dict, directory) -> dict:
        hp, name = dict(spec), Path(directory).name
        if not self.cv:
            return {"score": self._score(hp, self.data["x"], self.data["y"],
                                         self.data.get("validation"), name, report_epochs=True)}
        scores: list = []
        for k, fold in enumerate(self._folds()):
            scores.append(self._score(hp, *fold, f"{name}/fold-{k}"))
            summary = {"score": float(np.mean(scores)), "score_std": float(np.std(scores)),
                       "fold_scores": scores}
            if k + 1 < self.cv and report(k, summary["score"]):  # the running mean, per fold
                raise RunPruned(summary)
        return summary

    def _folds(self):
        from chainrule.data import StratifiedKFold

        x, y = self.data["x"], self.data["y"]
        labels = y.argmax(axis=-1) if y.ndim > 1 else y
        splitter = StratifiedKFold(self.cv, shuffle=True, seed=self.seed)
        for train, val in splitter.split(labels):
            yield x[train], y[train], (x[val], y[val])

    def _score(self, hp, x, y, validation, name: str, report_epochs: bool = False) -> float:
        """Train one model; its score is the best epoch's value of the objective."""
        chainrule.manual_seed(self.seed)  # before building: the initial weights too
        model = build_checked(self.build_fn, hp)
        options = dict(self.fit_options)
        if validation is not None:
            options["validation_data"] = validation
            options.pop("validation_split", None)
        callbacks = trial_callbacks(options.pop("callbacks", None), name, hp)
        if report_epochs:
            callbacks.append(ReportToPruner(self.objective))
        history = model.fit(x, y, verbose=0, seed=self.seed, callbacks=callbacks,
                            **options).history
        if self.objective not in history:
            raise KeyError(f"objective {self.objective!r} is not logged by this model; it logs "
                           f"{sorted(history)}")
        return best_value(history[self.objective], self.objective)


def best_value(values, objective: str) -> float:
    """The best finite value of ``objective`` over epochs (NaN if none is finite)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan
    best = min if objective_direction(objective) == "minimize" else max
    return float(best(values))


def trial_callbacks(callbacks, name: str, hp: dict) -> list:
    """A trial's own copies of the search's callbacks (KerasTuner deep-copies them too, so no
    state leaks from one trial into the next). A callback with a ``for_trial(name, hp)``
    method, such as :class:`chainrule.tensorboard.TensorBoard`, gives its per-trial version:
    TensorBoard writes to ``log_dir/<trial>`` with the trial's hyper-parameters."""
    copies = []
    for callback in copy.deepcopy(list(callbacks or [])):
        for_trial = getattr(callback, "for_trial", None)
        copies.append(for_trial(name, hp) if for_trial is not None else callback)
    return copies


class ReportToPruner(Callback):
    """Reports the objective after every epoch to the study's pruner (Optuna's
    ``trial.report``); raises :class:`~chainrule.experiments.RunPruned` with the best score
    so far when the pruner says to stop, except after the last epoch (the trial has then run
    to its end, and is kept as finished)."""

    def __init__(self, objective: str):
        super().__init__()
        self.objective = objective
        self.values: list = []

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is None:  # not logged: the trial fails with the objective's name after fit
            return
        self.values.append(float(value))
        last_epoch = epoch + 1 >= int(self.params.get("epochs") or 0)
        if report(epoch, float(value)) and not last_epoch:  # at the end, nothing to save
            raise RunPruned({"score": best_value(self.values, self.objective),
                             "epochs": epoch + 1})


def build_checked(build_fn, hp: dict):
    """``build_fn(hp)``, which must return a compiled chainrule model."""
    model = build_fn(dict(hp))
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise ValueError("build_fn must return a compiled model (call model.compile(...) in "
                         f"it); it returned {type(model).__name__} without loss/optimizer")
    return model


# -- strategies -----------------------------------------------------------------------------


def make_pruner(pruner):
    """None (or "none"): no pruning; "median": Optuna's ``MedianPruner()`` with its defaults
    (a trial stops when its best score so far is worse than the median of the earlier trials'
    scores at the same epoch, once 5 trials have finished); or any Optuna pruner."""
    if pruner is None or pruner == "none":
        return None
    if pruner == "median":
        return import_optuna().pruners.MedianPruner()
    if isinstance(pruner, str):
        raise ValueError(f"pruner must be None, 'none', 'median' or an Optuna pruner, "
                         f"got {pruner!r}")
    if not isinstance(pruner, import_optuna().pruners.BasePruner):
        raise TypeError(f"pruner must be None, 'median' or an optuna.pruners.BasePruner, got "
                        f"{type(pruner).__name__}")
    return pruner


class Strategy:
    """The search: ``Strategy(build_fn, space, objective="val_accuracy", max_trials=10,
    seed=0, directory="runs/tune", workers=1, storage=None, pruner=None)``; see the module
    docstring."""

    def __init__(self, build_fn, space: dict, objective: str = "val_accuracy",
                 max_trials: int = 10, seed: int = 0, directory="runs/tune", workers: int = 1,
                 storage=None, pruner=None):
        if not callable(build_fn):
            raise TypeError(f"build_fn must be a function hp -> compiled model, got "
                            f"{type(build_fn).__name__}")
        if int(max_trials) != max_trials or max_trials < 1:
            raise ValueError(f"max_trials must be an int >= 1, got {max_trials!r}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        self.build_fn, self.space = build_fn, _check_space(space)
        self.objective, self.direction = objective, objective_direction(objective)
        self.max_trials, self.seed, self.workers = int(max_trials), int(seed), int(workers)
        self.directory, self.storage = Path(directory), storage
        self.pruner = make_pruner(pruner)
        self._fit = None
        self._study = None

    def _sampler(self):
        raise NotImplementedError

    def _study_for(self, run, settings: dict) -> Study:
        space = {name: value.distribution() for name, value in self.space.items()}
        return Study(run, self.directory, space=space, sampler=self._sampler(),
                     n_trials=self.max_trials, objective="score", direction=self.direction,
                     storage=self.storage, name="search", pruner=self.pruner,
                     settings=settings)

    def search(self, x, y, epochs: int = 1, batch_size: int = 32, validation_split=None,
               validation_data=None, cv: int | None = None, callbacks=None,
               resume: bool = False) -> list[dict]:
        """Run the trials; return :meth:`results`. Give one of ``validation_split``,
        ``validation_data`` and ``cv`` (k folds, stratified by class)."""
        x, y = np.asarray(x), np.asarray(y)
        given = [v is not None for v in (validation_split, validation_data, cv)]
        if sum(given) != 1:
            raise ValueError("search: give exactly one of validation_split, validation_data "
                             "and cv")
        if cv is not None:
            _check_cv(cv, y)
        data = {"x": x, "y": y, "validation": validation_data}
        self._fit = {"epochs": epochs, "batch_size": batch_size, "callbacks": callbacks}
        fit_options = {**self._fit}
        if validation_split is not None:
            fit_options["validation_split"] = validation_split
        run = _Trial(self.build_fn, data, fit_options, self.objective, cv, self.seed)
        settings = {"epochs": epochs, "batch_size": batch_size, "cv": cv, "seed": self.seed,
                    "validation_split": validation_split, "data": fingerprint(x, y),
                    "validation_data": None if validation_data is None
                    else fingerprint(*validation_data)}
        self._study = self._study_for(run, settings)
        self._data = (x, y)
        return self._study.run(workers=self.workers, resume=resume)

    def results(self) -> list[dict]:
        """One row per trial: its hyper-parameters, ``score`` (and ``score_std`` with cv),
        ``status`` ("ok", "pruned" or "failed") and ``error``. Best first: the trials that ran
        to their end by score, then the pruned ones (their score is the best before they were
        stopped), then the failed ones."""
        if self._study is None:
            raise RuntimeError("results: call search(...) first")
        rows = self._study.results()
        worst = math.inf if self.direction == "minimize" else -math.inf
        status_rank = {"ok": 0, "pruned": 1}

        def key(row):
            score = row.get("score")
            score = worst if score is None or not math.isfinite(score) else score
            return (status_rank.get(row["status"], 2),
                    score if self.direction == "minimize" else -score)

        return sorted(rows, key=key)

    def plot(self, path=None):
        """Draw the search (:func:`~chainrule.tuning.figures.plot_search`): the score of each
        trial in order with the best so far, and the score against each hyper-parameter.
        Writes a PNG to ``path`` atomically; returns the matplotlib Figure."""
        from chainrule.tuning.figures import plot_search

        return plot_search(self.results(), self.space, self.objective, self.direction, path)

    @property
    def best_params(self) -> dict:
        """The hyper-parameters of the best trial that ran to its end (not pruned)."""
        ok = [row for row in self.results() if row["status"] == "ok"]
        if not ok:
            raise RuntimeError("best_params: no trial finished (see results() for errors)")
        return {name: ok[0][name] for name in self.space}

    def best_model(self):
        """A model built with :attr:`best_params` and trained on all the data given to
        :meth:`search` (same epochs, batch size and seed): the search keeps no weights."""
        chainrule.manual_seed(self.seed)
        model = build_checked(self.build_fn, self.best_params)
        x, y = self._data
        model.fit(x, y, verbose=0, seed=self.seed, **self._fit)
        return model


def fingerprint(x, y) -> str:
    """A short digest of a data set's shapes and bytes: a resumed search must see the same
    data (BLAKE2b of the arrays, about 0.1 s for Fashion-MNIST)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=8)
    for array in (np.ascontiguousarray(x), np.ascontiguousarray(y)):
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _check_cv(cv, y: np.ndarray) -> None:
    if int(cv) != cv or cv < 2:
        raise ValueError(f"cv must be an int >= 2, got {cv!r}")
    labels = y.argmax(axis=-1) if y.ndim > 1 else y
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if cv > smallest:
        raise ValueError(f"cv={cv} is larger than the smallest class ({smallest} samples): "
                         f"every fold needs a member of every class")


class RandomSearch(Strategy):
    """Trials drawn uniformly from the space (Optuna's RandomSampler, seeded)."""

    def _sampler(self):
        return import_optuna().samplers.RandomSampler(seed=self.seed)


class TPESearch(Strategy):
    """Trials drawn by the Tree-structured Parzen Estimator (Optuna's TPESampler, seeded)."""

    def _sampler(self):
        return import_optuna().samplers.TPESampler(seed=self.seed)


class GridSearch(Strategy):
    """Every combination of the space's values (Optuna's GridSampler); every parameter must be
    a Choice or an IntUniform, and ``max_trials`` caps the number of combinations run."""

    def __init__(self, build_fn, space: dict, **kwargs):
        for name, value in _check_space(space).items():
            if not hasattr(value, "values"):
                raise ValueError(f"GridSearch: space[{name!r}] is {value!r}; a grid needs a "
                                 f"Choice or an IntUniform")
        super().__init__(build_fn, space, **kwargs)

    def _study_for(self, run, settings: dict) -> Study:
        grid = {name: value.values() for name, value in self.space.items()}
        size = math.prod(len(values) for values in grid.values())
        if size > self.max_trials:
            raise ValueError(f"GridSearch: the grid has {size} points, more than max_trials="
                             f"{self.max_trials}; raise max_trials or shrink the space")
        return Study(run, self.directory, grid=grid, objective="score",
                     direction=self.direction, storage=self.storage, name="search",
                     pruner=self.pruner, settings=settings)


__all__ = ["Choice", "GridSearch", "IntUniform", "LogUniform", "RandomSearch", "Strategy",
           "TPESearch", "Uniform", "make_pruner", "objective_direction", "plot_random_vs_grid",
           "plot_search"]
