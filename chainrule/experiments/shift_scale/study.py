"""The shift/scale study as a grid of runs on :class:`chainrule.experiments.Study`.

The grid is arch × dropout × learning rate × seed × variant; everything else (data set,
epochs, batch size, data limit, validation size, architecture options) is fixed for the study.
:func:`make_study` builds it, :func:`run_study` runs it and writes the report.

The quick profile (``--quick``, :data:`QUICK`) runs the whole grid of variants, both
architectures, with and without dropout and the three rates, on a subset: 2,000 training and
1,000 validation samples, 3 epochs, one seed, the all-convolutional net at width 0.125. It
finishes in under 15 minutes on 2 cores; its numbers show that everything works, not what the
thesis concluded.
"""

from __future__ import annotations

from pathlib import Path

from chainrule.experiments.runner import Study
from chainrule.experiments.shift_scale import training
from chainrule.experiments.shift_scale.models import ARCHS, VARIANTS

#: The thesis's learning-rate grid.
LEARNING_RATES = (0.02, 0.04, 0.08)

#: Defaults of ``chainrule study shift-scale``.
DEFAULTS = {
    "dataset": "fashion-mnist",
    "archs": ARCHS,
    "dropouts": (False,),
    "lrs": LEARNING_RATES,
    "epochs": 10,
    "batch_size": 128,
    "seeds": 2,
    "limit": None,
    "val_size": 10_000,
    "variants": VARIANTS,
    "width": 0.25,
}

#: What ``--quick`` changes (see the module docstring).
QUICK = {"limit": 2_000, "val_size": 1_000, "epochs": 3, "seeds": 1, "width": 0.125,
         "dropouts": (False, True)}


def run_name(params: dict) -> str:
    """A run's folder: ``mlp-dropout-lr0.04-seed1-shift-layer+scale-layer``."""
    dropout = "dropout" if params["dropout"] else "nodropout"
    return (f"{params['arch']}-{dropout}-lr{params['lr']:g}-seed{params['seed']}-"
            f"{params['variant']}")


def make_study(out, *, dataset: str = "fashion-mnist", archs=ARCHS, dropouts=(False,),
               lrs=LEARNING_RATES, seeds: int = 2, variants=VARIANTS, epochs: int = 10,
               batch_size: int = 128, limit: int | None = None, val_size: int = 10_000,
               width: float = 0.25, storage=None, verbose: bool = True) -> Study:
    """The study's :class:`~chainrule.experiments.Study`, its options checked."""
    check_options(dataset=dataset, archs=archs, lrs=lrs, seeds=seeds, variants=variants,
                  epochs=epochs, batch_size=batch_size, limit=limit, val_size=val_size,
                  width=width)
    grid = {"arch": list(archs), "dropout": [bool(d) for d in dropouts],
            "lr": [float(lr) for lr in lrs], "seed": list(range(seeds)),
            "variant": list(variants)}
    fixed = {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "limit": limit,
             "val_size": val_size, "num_classes": training.DATASETS[dataset]["classes"],
             "arch_options": {"allconv": {"width": width}, "mlp": {}}}
    return Study(run, out, grid=grid, fixed=fixed, objective="best_val_error",
                 direction="minimize", storage=storage, name="shift-scale", run_name=run_name,
                 verbose=verbose)


def run(spec: dict, directory) -> dict:
    """The study's run: :func:`training.run` with the arch's own options."""
    spec = {**spec, "arch_options": spec["arch_options"][spec["arch"]]}
    return training.run(spec, Path(directory))


def check_options(*, dataset, archs, lrs, seeds, variants, epochs, batch_size, limit,
                  val_size, width) -> None:
    """Fail at once, naming the option and the fix, on any option the study cannot run."""
    def bad(option, problem):
        raise ValueError(f"shift-scale study: {option} {problem}")

    if dataset not in training.DATASETS:
        bad("--dataset", f"must be one of {sorted(training.DATASETS)}, got {dataset!r}")
    for name in archs:
        if name not in ARCHS:
            bad("--arch", f"must be one of {list(ARCHS)}, got {name!r}")
    for name in variants:
        if name not in VARIANTS:
            bad("--variants", f"got the unknown variant {name!r}; choose from {list(VARIANTS)}")
    for lr in lrs:
        if not lr > 0:
            bad("--lr", f"must be positive learning rates, got {lr}")
    for option, value in (("--seeds", seeds), ("--epochs", epochs),
                          ("--batch-size", batch_size), ("--val-size", val_size)):
        if int(value) < 1:
            bad(option, f"must be at least 1, got {value}")
    if limit is not None and limit < 1:
        bad("--limit", f"must be at least 1 when given, got {limit}")
    if not width > 0:
        bad("--width", f"must be positive, got {width}")
    if limit is not None and limit < batch_size:
        bad("--limit", f"({limit}) is smaller than --batch-size ({batch_size}): not one step "
                       f"per epoch would be a full batch")


def check_data(dataset: str) -> None:
    """Load the data set once, so that missing files fail before any run starts, with the
    loader's message (where it looked, how to get the files)."""
    import importlib

    module = importlib.import_module(f"chainrule.datasets.{training.DATASETS[dataset]['module']}")
    try:
        module.load_data()
    except (FileNotFoundError, OSError) as error:
        raise FileNotFoundError(f"shift-scale study: --dataset {dataset}: {error}") from error


def run_study(study: Study, workers: int = 1, resume: bool = False, title: str | None = None):
    """Run ``study`` and write results.csv, curves/, learned.png and report.md into its
    folder; return the report's verdicts."""
    from chainrule.experiments.shift_scale.report import write_report

    rows = study.run(workers=workers, resume=resume)
    return write_report(study.directory, rows, title=title)
