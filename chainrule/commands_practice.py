"""``chainrule baselines`` and ``chainrule reproduce``: measured accuracies next to published ones.

``chainrule baselines --dataset fashion-mnist --out runs/baselines`` trains scikit-learn's
classic classifiers and chainrule's zoo mlp and cnn (:mod:`chainrule.baselines`);
``chainrule reproduce mnist1d --seeds 3`` rebuilds MNIST-1D's four reference models and
``chainrule reproduce fashion-mnist`` checks the zoo networks against their targets
(:mod:`chainrule.reproduce`). Both print a Markdown table and write ``results.json`` (the
command's arguments and the rows) and ``results.md`` (the table) into ``--out``, atomically.
"""

from __future__ import annotations

import os
import sys
import time

from chainrule.cli import command


@command("baselines", "Train scikit-learn baselines beside chainrule's MLP and CNN; compare "
                      "with the published accuracies.")
def _baselines_arguments(parser):
    from chainrule.baselines import MODELS
    from chainrule.commands import DATASETS

    add = parser.add_argument
    add("--dataset", choices=sorted(DATASETS), default="fashion-mnist",
        help="the data set (default: %(default)s; published numbers exist for fashion-mnist)")
    add("--models", default=",".join(MODELS),
        help="comma-separated models (default: %(default)s)")
    add("--epochs", type=int, default=None,
        help="epochs of chainrule's mlp and cnn (default: 15 and 10, as chainrule train)")
    add("--limit", type=int, default=None,
        help="use only the first N training and test samples, for quick runs")
    add("--seed", type=int, default=0, help="seed of the forest and the networks (default 0)")
    add("--out", default="runs/baselines", help="the results' folder (default: %(default)s)")
    return run_baselines


def run_baselines(args) -> int:
    from chainrule.baselines import format_table, parse_models, run_baselines

    started = time.perf_counter()
    try:
        models = parse_models(args.models)
        rows = run_baselines(args.dataset, models, limit=args.limit, epochs=args.epochs,
                             seed=args.seed)
    except (ValueError, ImportError) as error:
        print(f"chainrule baselines: error: {error}", file=sys.stderr)
        return 2
    table = format_table(rows)
    _write(args.out, "baselines", args, rows, table, started)
    return 0


@command("reproduce", "Reproduce published results: MNIST-1D's four models, Fashion-MNIST "
                      "targets.")
def _reproduce_arguments(parser):
    from chainrule.reproduce import EXPERIMENTS

    add = parser.add_argument
    add("experiment", choices=EXPERIMENTS, help="what to reproduce")
    add("--seeds", type=int, default=None,
        help="runs per model, seeds 0..K-1 (default: 3 for mnist1d, 2 for fashion-mnist)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None,
                        help="mnist1d: training steps (default: the reference's 8000)")
    length.add_argument("--epochs", type=int, default=None,
                        help="epochs (fashion-mnist: default the recipes'; mnist1d: 40 steps "
                             "each)")
    add("--limit", type=int, default=None,
        help="use only the first N training and test samples, for quick runs")
    add("--out", default=None, help="the results' folder (default: runs/reproduce-EXPERIMENT)")
    return run_reproduce


def run_reproduce(args) -> int:
    from chainrule.reproduce import format_table, reproduce

    started = time.perf_counter()
    try:
        rows = reproduce(args.experiment, seeds=args.seeds, steps=args.steps,
                         epochs=args.epochs, limit=args.limit)
    except (ValueError, ImportError) as error:
        print(f"chainrule reproduce: error: {error}", file=sys.stderr)
        return 2
    table = format_table(rows)
    out = args.out or os.path.join("runs", f"reproduce-{args.experiment}")
    _write(out, f"reproduce {args.experiment}", args, rows, table, started)
    return 0


def _write(out: str, name: str, args, rows: list, table: str, started: float) -> None:
    """Print the table; write results.json and results.md into ``out`` (atomically)."""
    import chainrule
    from chainrule.io import write_json

    seconds = time.perf_counter() - started
    os.makedirs(out, exist_ok=True)
    arguments = {k: v for k, v in vars(args).items() if k not in ("run", "command")}
    write_json(os.path.join(out, "results.json"), {
        "command": name, "arguments": arguments, "rows": rows,
        "seconds": round(seconds, 1), "chainrule": chainrule.__version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    _write_text(os.path.join(out, "results.md"),
                f"# chainrule {name}\n\n{table}\n\nTotal {seconds:.0f} s.\n")
    print(table)
    print(f"Wrote {out}/results.json and results.md in {seconds:.0f}s.")


def _write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    from chainrule.io import atomic_write

    atomic_write(path, lambda file: file.write(text.encode("utf-8")))
