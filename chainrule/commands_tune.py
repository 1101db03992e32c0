"""``chainrule tune``: search the hyper-parameters of a zoo model on an image data set.

::

    chainrule tune --model mlp --dataset fashion-mnist --strategy random --trials 20 \\
        --param lr=log:1e-4:1e-1 --param units=64,128,256 --workers 2 --out runs/tune

A ``--param`` is ``NAME=log:LO:HI`` (:class:`~chainrule.tuning.LogUniform`),
``NAME=uniform:LO:HI`` (``Uniform``), ``NAME=int:LO:HI`` (``IntUniform``, both ends included)
or ``NAME=A,B,C`` (``Choice``; numbers stay numbers). The names an architecture takes are
listed in :mod:`chainrule.tuning.hypermodels`. Each trial trains on the training set less a
stratified validation hold-out (``--validation-split``), or by ``--cv K`` folds, and is scored
by ``--objective`` (the best epoch's value). The test set is not touched.

``--out`` gets the study's journal, one folder per trial, ``results.csv`` (one row per trial,
best first), ``best.json`` (the best hyper-parameters and score) and ``search.png``. Like the
studies, a killed search continues with ``--resume``; ``--storage`` shares it across machines.
Needs the ``[tune]`` extra (Optuna).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time

from chainrule.cli import command
from chainrule.commands import DATASETS, _model_and_dataset_arguments, _stratified_holdout
from chainrule.commands_study import add_runner_arguments
from chainrule.io import atomic_write, write_json

#: The strategies by their command-line name.
STRATEGIES = ("random", "grid", "tpe")
DEFAULT_TRIALS = 20


@command("tune", "Search a zoo model's hyper-parameters (random, grid or TPE; Optuna).")
def _tune_arguments(parser):
    _model_and_dataset_arguments(parser)
    add = parser.add_argument
    add("--strategy", choices=STRATEGIES, default="random",
        help="random (default), grid (every combination) or tpe")
    add("--param", action="append", required=True, metavar="NAME=SPEC",
        help="a searched hyper-parameter: lr=log:1e-4:1e-1, dropout=uniform:0:0.5, "
             "layers=int:1:3 or units=64,128,256; repeat for each")
    add("--trials", type=int, default=None,
        help=f"trials to run (default {DEFAULT_TRIALS}; a grid: its size)")
    add("--objective", default="val_accuracy",
        help="the logged value to optimise, maximised unless it names a loss or error "
             "(default: %(default)s)")
    add("--epochs", type=int, default=3, help="epochs per trial (default: %(default)s)")
    add("--batch-size", type=int, default=128, help="samples per step (default: %(default)s)")
    add("--validation-split", type=float, default=0.1,
        help="fraction of the training set held out, stratified, to score each trial "
             "(default: %(default)s)")
    add("--cv", type=int, default=None,
        help="score each trial by K-fold stratified cross-validation instead")
    add("--pruner", choices=("none", "median"), default="none",
        help="median: stop a trial whose epoch score is below the median of the earlier "
             "trials' at that epoch (Optuna's MedianPruner; default: none)")
    add("--limit", type=int, default=None, help="use only the first N training samples")
    add("--seed", type=int, default=0, help="seed of the sampler and of every trial")
    add_runner_arguments(parser, "search", None,
                         "the search's folder (default: runs/tune-MODEL-DATASET)")
    return run_tune


# -- --param ------------------------------------------------------------------------------------


def parse_param(text: str) -> tuple:
    """``"lr=log:1e-4:1e-1"`` -> ``("lr", LogUniform(1e-4, 1e-1))``; see the module docstring."""
    from chainrule import tuning

    name, _, spec = text.partition("=")
    if not name.strip() or not spec:
        raise ValueError(f"--param must be NAME=SPEC (lr=log:1e-4:1e-1, units=64,128,256), "
                         f"got {text!r}")
    name, kinds = name.strip(), {"log": tuning.LogUniform, "uniform": tuning.Uniform,
                                 "int": tuning.IntUniform}
    kind, _, bounds = spec.partition(":")
    try:
        if kind in kinds:
            parts = bounds.split(":")
            if len(parts) != 2:
                raise ValueError(f"{kind}: needs LO:HI, got {bounds!r}")
            number = int if kind == "int" else float
            return name, kinds[kind](number(parts[0]), number(parts[1]))
        return name, tuning.Choice([_literal(value) for value in spec.split(",")])
    except ValueError as error:
        raise ValueError(f"--param {text}: {error}") from None


def _literal(text: str):
    """A choice's value: an int, else a float, else the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if not text:
        raise ValueError("a choice is empty (two commas, or a trailing one?)")
    return text


def parse_space(params: list) -> dict:
    space: dict = {}
    for text in params:
        name, value = parse_param(text)
        if name in space:
            raise ValueError(f"--param {name} is given twice")
        space[name] = value
    return space


# -- running ------------------------------------------------------------------------------------


def run_tune(args) -> int:
    started = time.perf_counter()
    out = args.out or os.path.join("runs", f"tune-{args.model}-{args.dataset}")
    try:
        search, data = _make_search(args, out)
        print(f"tune {args.model} on {args.dataset}: {search.max_trials} {args.strategy} trials "
              f"of {', '.join(f'{k}={v!r}' for k, v in search.space.items())}, "
              f"{args.epochs} epochs each, {len(data[1])} training samples, "
              f"{args.workers} worker(s), into {out}/", flush=True)
        split = {"cv": args.cv} if args.cv else {"validation_data": data[2]}
        search.search(data[0], data[1], epochs=args.epochs, batch_size=args.batch_size,
                      resume=args.resume, **split)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as error:
        print(f"chainrule tune: error: {error}", file=sys.stderr)
        return 2
    rows = search.results()
    _write_outputs(search, rows, out)
    _print_table(rows, list(search.space))
    counts = {status: sum(row["status"] == status for row in rows)
              for status in ("ok", "pruned", "failed")}
    print(f"{counts['ok']} trials ok, {counts['pruned']} pruned, {counts['failed']} failed, in "
          f"{time.perf_counter() - started:.0f}s. Results: {out}/results.csv")
    return 0


def _make_search(args, out: str):
    """The strategy, and ``(x, y, validation)`` of the data set as the model takes it."""
    from chainrule import tuning
    from chainrule.tuning.hypermodels import ZooHyperModel

    for flag, value, least in (("--workers", args.workers, 1), ("--epochs", args.epochs, 1),
                               ("--batch-size", args.batch_size, 1), ("--trials", args.trials, 1),
                               ("--cv", args.cv, 2)):
        if value is not None and value < least:
            raise ValueError(f"{flag} must be at least {least}, got {value}")
    if args.cv is None and not 0 < args.validation_split < 1:
        raise ValueError(f"--validation-split must be in (0, 1), got {args.validation_split}")
    space = parse_space(args.param)
    x, y, input_shape = _training_set(args)
    hypermodel = ZooHyperModel(args.model, input_shape, len(DATASETS[args.dataset].class_names))
    hypermodel.check_names(space)
    strategy = {"random": tuning.RandomSearch, "grid": tuning.GridSearch,
                "tpe": tuning.TPESearch}[args.strategy]
    trials = args.trials or (_grid_size(space) if args.strategy == "grid" else DEFAULT_TRIALS)
    search = strategy(hypermodel, space, objective=args.objective, max_trials=trials,
                      seed=args.seed, directory=out, workers=args.workers,
                      storage=args.storage, pruner=args.pruner)
    validation = None
    if args.cv is None:
        x, y, validation = _stratified_holdout(x, y, args.validation_split, args.seed)
    return search, (x, y, validation)


def _grid_size(space: dict) -> int:
    import math

    for name, value in space.items():
        if not hasattr(value, "values"):
            raise ValueError(f"--strategy grid: --param {name} is a range; a grid needs "
                             f"choices (a,b,c) or int:LO:HI")
    return math.prod(len(value.values()) for value in space.values())


def _training_set(args):
    """The training images, scaled and shaped for ``args.model``; the first ``--limit``."""
    import numpy as np

    from chainrule import zoo
    from chainrule.commands import prepare_inputs

    dataset = DATASETS[args.dataset]
    (x, y), _ = dataset.load()
    if args.limit is not None:
        if args.limit < 20:
            raise ValueError(f"--limit must be at least 20, got {args.limit}")
        x, y = x[:args.limit], y[:args.limit]
    input_shape = (dataset.image_shape if zoo.TAKES_IMAGES[args.model]
                   else (int(np.prod(dataset.image_shape)),))
    return prepare_inputs(x, dataset.max_pixel, input_shape), y, input_shape


# -- outputs ------------------------------------------------------------------------------------


def _columns(rows: list, names: list) -> list:
    extra = [c for c in ("score_std", "epochs") if any(c in row for row in rows)]
    return ["trial", "status", "score", *extra, *names, "time_s", "error"]


def _write_outputs(search, rows: list, out: str) -> None:
    """results.csv (best first), best.json, and search.png when matplotlib is there."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows, list(search.space)),
                            extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(os.path.join(out, "results.csv"),
                 lambda file: file.write(buffer.getvalue().encode()))
    finished = [row for row in rows if row["status"] == "ok"]
    if finished:
        write_json(os.path.join(out, "best.json"), {
            "params": search.best_params, "score": finished[0]["score"],
            "objective": search.objective, "trial": finished[0]["trial"]})
    try:
        search.plot(os.path.join(out, "search.png"))
    except ImportError as error:
        print(f"note: search.png skipped: {error}")


def _print_table(rows: list, names: list, shown: int = 10) -> None:
    header = ["trial", "status", "score", *names]
    lines = [[str(row["trial"]), row["status"], _number(row.get("score")),
              *(_number(row.get(name)) for name in names)] for row in rows[:shown]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    for line in [header, *lines]:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths)))
    if len(rows) > shown:
        print(f"... {len(rows) - shown} more in results.csv")


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
