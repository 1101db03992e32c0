"""``chainrule study``: reproducible studies on the experiment runner.

``chainrule study shift-scale --out runs/shift-scale`` runs the thesis's shift/scale study
(:mod:`chainrule.experiments.shift_scale`): every variant × architecture × dropout × learning
rate × seed, on ``--workers`` processes, then writes ``results.csv``, ``curves/``,
``learned.png`` and ``report.md`` into ``--out``. Kill it at any moment and run the same command
with ``--resume``: finished runs are kept, interrupted ones run again. To share the work with
other machines, give every machine the same ``--storage`` (an Optuna storage URL such as
``postgresql://user@host/db``, or a journal file on a shared filesystem) and ``--out`` on a
shared filesystem, and start the command with ``--resume`` on each (see
``docs/study-shift-scale.md``). Needs the ``[tune]`` extra (Optuna).

``chainrule study ensembles --out runs/ensembles`` measures one model against a deep ensemble,
a snapshot ensemble and SWA, and MC dropout's entropy on noise images, on Fashion-MNIST
(:mod:`chainrule.experiments.ensembles`), and writes ``results.json`` and ``report.md``.
"""

from __future__ import annotations

import sys

from chainrule.cli import command

_OUT_DEFAULT = "runs/shift-scale"


@command("study", "Run a reproducible study (shift-scale: the thesis's shift/scale layers; "
                  "ensembles: ensembles, SWA and MC dropout).")
def _study_arguments(parser):
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    shift_scale = studies.add_parser(
        "shift-scale", help="shift and scale layers vs none vs batch norm (the thesis)",
        description="Shift and scale layers (per element, channel, layer) after the input and "
                    "every hidden activation, against no change and batch normalisation.")
    _shift_scale_arguments(shift_scale)
    shift_scale.set_defaults(run=run_shift_scale)
    ensembles = studies.add_parser(
        "ensembles", help="ensembles, snapshot ensembles, SWA and MC dropout on Fashion-MNIST",
        description="One model against a deep ensemble, a snapshot ensemble and SWA (accuracy, "
                    "NLL), and the entropy AUROC of MC dropout on noise vs test images.")
    _ensembles_arguments(ensembles)
    ensembles.set_defaults(run=run_ensembles)
    return run_shift_scale


def _shift_scale_arguments(parser) -> None:
    from chainrule.experiments.shift_scale import DEFAULTS, LEARNING_RATES, QUICK, VARIANTS
    from chainrule.experiments.shift_scale.training import DATASETS

    add = parser.add_argument
    add("--dataset", choices=sorted(DATASETS), default=DEFAULTS["dataset"],
        help="the data set (default: %(default)s); CIFAR files must be in the loader's cache "
             "or given by --data-path")
    add("--arch", nargs="+", choices=("allconv", "mlp"), default=list(DEFAULTS["archs"]),
        help="architectures (default: both)")
    add("--dropout", nargs="?", choices=("off", "on", "both"), const="on", default=None,
        help="dropout off (default), on (bare --dropout), or both: each run with and without")
    add("--lr", nargs="+", type=float, default=None,
        help=f"learning rates of SGD momentum 0.9 (default: the thesis's "
             f"{' '.join(map(str, LEARNING_RATES))})")
    add("--epochs", type=int, default=None, help=f"epochs per run (default {DEFAULTS['epochs']})")
    add("--batch-size", type=int, default=DEFAULTS["batch_size"],
        help="samples per step; 1 is online learning (default: %(default)s)")
    add("--seeds", type=int, default=None,
        help=f"seeds 0..K-1 per cell (default {DEFAULTS['seeds']})")
    add("--limit", type=int, default=None, help="use only N training samples (default: all)")
    add("--val-size", type=int, default=None,
        help=f"validation samples held out of the training set (default {DEFAULTS['val_size']})")
    add("--width", type=float, default=None,
        help=f"channel multiplier of the all-convolutional net (default {DEFAULTS['width']}; "
             f"the paper's is 1)")
    add("--variants", nargs="+", metavar="NAME", default=None,
        help="variants to run (default: all 11: " + ", ".join(VARIANTS) + ")")
    add_runner_arguments(parser, "study", _OUT_DEFAULT, "the study's folder (default: "
                                                         "%(default)s)")
    add("--quick", action="store_true",
        help="the whole grid on a subset in under 15 minutes: " + ", ".join(
            f"{k}={v}" for k, v in QUICK.items()) + " (options given explicitly win)")


def add_runner_arguments(parser, what: str, out_default, out_help: str) -> None:
    """The options of every command on the experiment runner (a study, a search):
    --workers, --out, --storage and --resume."""
    add = parser.add_argument
    add("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    add("--out", default=out_default, help=out_help)
    add("--storage", default=None,
        help="an Optuna storage URL (sqlite:///..., postgresql://...) or a journal file path "
             "shared by several machines (default: OUT/study.journal)")
    add("--resume", action="store_true",
        help=f"continue the {what} in --out (or join it from another machine)")


def _options(args) -> dict:
    """The study's options: the defaults, then --quick's, then what was given."""
    from chainrule.experiments.shift_scale import DEFAULTS, QUICK

    options = {k: v for k, v in DEFAULTS.items()}
    if args.quick:
        options.update(QUICK)
    given = {"dataset": args.dataset, "archs": args.arch, "lrs": args.lr,
             "epochs": args.epochs, "batch_size": args.batch_size, "seeds": args.seeds,
             "limit": args.limit, "val_size": args.val_size, "width": args.width,
             "variants": args.variants}
    if args.dropout is not None:
        given["dropouts"] = {"off": (False,), "on": (True,), "both": (False, True)}[args.dropout]
    options.update({k: v for k, v in given.items() if v is not None})
    return options


def run_shift_scale(args) -> int:
    import time

    from chainrule.experiments.shift_scale import make_study, run_study
    from chainrule.experiments.shift_scale.study import check_data

    started = time.perf_counter()
    try:
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        study = make_study(args.out, storage=args.storage, **_options(args))
        if study.exists() and not args.resume:
            raise FileExistsError(f"--out {args.out} already holds a study; add --resume to "
                                  f"continue it, or choose another --out")
        check_data(study.fixed["dataset"])
        print(f"shift-scale study: {study.n_trials} runs ({_grid_text(study.grid)}) on "
              f"{args.workers} worker(s), into {args.out}/", flush=True)
        verdicts = run_study(study, workers=args.workers, resume=args.resume)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as error:
        print(f"chainrule study shift-scale: error: {error}", file=sys.stderr)
        return 2
    print(f"{verdicts['runs']} runs ok, {verdicts['failed']} failed, in "
          f"{time.perf_counter() - started:.0f}s. Report: {args.out}/report.md")
    return 0


def _grid_text(grid: dict) -> str:
    return " × ".join(f"{len(values)} {name}" for name, values in grid.items())


# -- chainrule study ensembles --------------------------------------------------------------------


def _ensembles_arguments(parser) -> None:
    from chainrule.experiments.ensembles import DEFAULTS

    add = parser.add_argument
    add("--epochs", type=int, default=DEFAULTS["epochs"],
        help="epochs of every training run (default: %(default)s)")
    add("--members", type=int, default=DEFAULTS["members"],
        help="ensemble members, also the seeds of every method (default: %(default)s)")
    add("--samples", type=int, default=DEFAULTS["samples"],
        help="dropout passes of MC dropout (default: %(default)s)")
    add("--limit", type=int, default=None, help="use only N training samples (default: all)")
    add("--seed", type=int, default=DEFAULTS["seed"], help="the first seed (default: %(default)s)")
    add("--test-limit", type=int, default=None,
        help="score on the first N test images and N noise images (default: all 10,000)")
    add("--out", default="runs/ensembles",
        help="folder for results.json and report.md (default: %(default)s)")


def run_ensembles(args) -> int:
    from chainrule.experiments.ensembles import check_arguments, measure, report

    try:
        check_arguments(args.epochs, args.members, args.samples, args.limit,
                        test_limit=args.test_limit, prefix="--")
        results = measure(epochs=args.epochs, members=args.members, samples=args.samples,
                          limit=args.limit, seed=args.seed, out=args.out,
                          test_limit=args.test_limit,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, OSError) as error:
        print(f"chainrule study ensembles: error: {error}", file=sys.stderr)
        return 2
    print(report(results))
    print(f"Written: {args.out}/results.json, {args.out}/report.md")
    return 0
