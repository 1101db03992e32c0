"""The subcommands of ``chainrule``: ``train``, ``evaluate``, ``summary`` and ``check``.

``chainrule train --out runs/demo`` is the main job: the default CNN on Fashion-MNIST, with a
progress bar, ending with the test loss and accuracy. The run backs itself up every
:data:`BACKUP_EVERY` steps and at Ctrl-C (``callbacks.BackupAndRestore`` into ``backup/``): after
a kill, ``chainrule train --resume runs/demo`` continues it with its own arguments and ends
with the weights an uninterrupted run would have, bit for bit. A folder that already holds a
run is refused unless ``--resume`` or ``--overwrite`` is given. The run's folder gets:

================  ==============================================================
``config.json``   the command's arguments, the model's architecture, versions
``history.csv``   one row per epoch: loss, accuracy, val_loss, val_accuracy, ...
``summary.json``  the final numbers: test_loss, test_accuracy, timings, sizes
``curves.png``    learning curves, training against validation (needs matplotlib)
``confusion.png`` the test set's confusion matrix (needs matplotlib)
``model.npz``     the trained model (``chainrule.models.load_model`` reads it)
``backup/``       the run's backup while it trains (removed when it ends)
================  ==============================================================

``chainrule evaluate --model-path runs/demo/model.npz`` re-scores a saved model on the test
set; ``chainrule summary --model cnn`` prints an architecture's table; ``chainrule check --model
cnn`` runs the sanity checks of :mod:`chainrule.diagnostics` on the untrained model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass

import numpy as np

import chainrule
from chainrule import zoo
from chainrule.callbacks import BackupAndRestore, Callback, LearningRateScheduler
from chainrule.cli import command, fraction, non_negative_int, positive_float, positive_int
from chainrule.io import atomic_write, write_json
from chainrule.metrics import ConfusionMatrix, SparseCategoricalAccuracy
from chainrule.optimizers.schedules import CosineDecay, halving_schedule

# -- data sets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageDataset:
    """How to load one data set and turn its pixels into network inputs."""

    module: str  # the chainrule.datasets module
    image_shape: tuple  # (channels, height, width)
    max_pixel: float  # pixels are divided by this, to lie in [0, 1]

    @property
    def class_names(self) -> tuple:
        """The classes' names, from the dataset module (its ``CLASS_NAMES``; digits 0-9)."""
        return getattr(self._module(), "CLASS_NAMES", tuple(str(i) for i in range(10)))

    def _module(self):
        import importlib

        return importlib.import_module(f"chainrule.datasets.{self.module}")

    def load(self):
        """``(x_train, y_train), (x_test, y_test)``: uint8 NCHW images and int64 labels."""
        (x_train, y_train), (x_test, y_test) = self._module().load_data()
        return ((x_train.reshape((-1, *self.image_shape)), _labels(y_train)),
                (x_test.reshape((-1, *self.image_shape)), _labels(y_test)))


def _labels(y) -> np.ndarray:
    return np.asarray(y).reshape(-1).astype(np.int64)


DATASETS = {
    "fashion-mnist": ImageDataset("fashion_mnist", (1, 28, 28), 255.0),
    "mnist": ImageDataset("mnist", (1, 28, 28), 255.0),
    "cifar10": ImageDataset("cifar10", (3, 32, 32), 255.0),
    "digits": ImageDataset("digits", (1, 8, 8), 16.0),
}


def prepare_inputs(images: np.ndarray, max_pixel: float, input_shape) -> np.ndarray:
    """uint8 images as float32 in [0, 1], shaped for a model taking ``input_shape`` (one sample,
    e.g. (1, 28, 28) for a CNN, (784,) for an MLP: then the pixels are flattened)."""
    x = images.astype(np.float32)
    x /= max_pixel
    return x.reshape((len(x), *input_shape))


# -- defaults of the main job ---------------------------------------------------------------------

#: The defaults of ``chainrule train``: the demo (`make demo`) is exactly these.
DEFAULTS = {
    "model": "cnn",
    "dataset": "fashion-mnist",
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "seed": 0,
    "validation_split": 0.1,
    "lr_schedule": "halve",
}

#: Each architecture's training recipe: what ``chainrule train --model NAME`` uses for the
#: options not given (``--epochs``, ``--lr``, ``--lr-schedule``, ``--augment``, ``--batch-norm``).
#: The CNN's was chosen by the measurements in docs/performance.md ("The default CNN's recipe").
RECIPES = {
    "cnn": {"epochs": 9, "lr": 1e-3, "lr_schedule": "halve", "augment": "flip",
            "batch_norm": True},
    "lenet": {"epochs": 10, "lr": 1e-3, "lr_schedule": "halve", "augment": "none"},
    "mlp": {"epochs": 15, "lr": 1e-3, "lr_schedule": "halve", "augment": "none"},
}

#: Epochs when ``--epochs`` is not given, per architecture.
EPOCHS = {name: recipe["epochs"] for name, recipe in RECIPES.items()}

#: What a run started before an option existed did without it (for ``--resume``).
_BEFORE_OPTIONS = {"augment": "none", "batch_norm": None}

#: The models that ``--batch-norm`` applies to.
BATCH_NORM_MODELS = ("cnn",)

#: ``chainrule train`` backs the run up every this many steps (and at Ctrl-C).
BACKUP_EVERY = 100

#: The files a run writes into its folder (``--overwrite`` removes these, nothing else).
RUN_FILES = ("config.json", "history.csv", "summary.json", "curves.png", "confusion.png",
             "model.npz")


# -- learning-rate schedules ----------------------------------------------------------------------


LR_SCHEDULES = {"constant": None, "halve": halving_schedule}

#: Schedules of the rate per step (a schedule object as the optimizer's learning rate), made from
#: ``(lr, epochs, steps_per_epoch)``: "cosine" decays from --lr to 0 over the run; "warmup-cosine"
#: rises linearly from --lr/10 to --lr during the first epoch, then decays to 0 (one cycle).
STEP_SCHEDULES = {
    "cosine": lambda lr, epochs, steps: CosineDecay(lr, epochs * steps),
    "warmup-cosine": lambda lr, epochs, steps: CosineDecay(
        lr / 10, max(1, (epochs - 1) * steps), warmup_target=lr, warmup_steps=steps),
}


def learning_rate(args, steps_per_epoch: int):
    """The optimizer's learning rate: ``args.lr``, or a per-step schedule of it."""
    make = STEP_SCHEDULES.get(args.lr_schedule)
    return args.lr if make is None else make(args.lr, args.epochs, steps_per_epoch)


# -- augmentation ---------------------------------------------------------------------------------

#: Random augmentations of the training batches (``--augment``), made from a seed: "flip"
#: mirrors half the images left-right; "shift" moves each image by up to 2 pixels along each
#: axis (zeros fill in); "flip+shift" does both.
AUGMENTATIONS = ("none", "flip", "shift", "flip+shift")


def augmentation(name: str, seed: int):
    """The transform of ``--augment name`` (None for "none"), with its own seeded generators so
    that a resumed run draws what the uninterrupted one would."""
    from chainrule.data.transforms import Compose, RandomFlip, RandomShift

    parts = {"flip": lambda: RandomFlip("horizontal", seed=seed + 1),
             "shift": lambda: RandomShift(2, seed=seed + 2)}
    chosen = [parts[part]() for part in name.split("+") if part != "none"]
    return Compose(chosen) if chosen else None


# -- chainrule train ------------------------------------------------------------------------------


def _model_and_dataset_arguments(parser, dataset_help: str = "the data set") -> None:
    """--model (a zoo architecture) and --dataset, shared by train, summary and check."""
    parser.add_argument("--model", choices=sorted(zoo.MODELS), default=DEFAULTS["model"],
                        help="the architecture (default: %(default)s)")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default=DEFAULTS["dataset"],
                        help=dataset_help + " (default: %(default)s)")


def _per_model(key: str, models=None) -> str:
    """"10 for cnn, ..." from :data:`RECIPES`, for the options' help."""
    return ", ".join(f"{_shown(RECIPES[m][key])} for {m}" for m in (models or RECIPES))


def _shown(value) -> str:
    return {True: "on", False: "off"}.get(value, f"{value:g}" if isinstance(value, float)
                                          else str(value))


@command("train", "Train a model from the zoo on an image data set and save the run.")
def _train_arguments(parser):
    _model_and_dataset_arguments(parser)
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="passes over the training data (default: "
                             + ", ".join(f"{n} for {m}" for m, n in EPOCHS.items()) + ")")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULTS["batch_size"],
                        help="samples per step (default: %(default)s)")
    parser.add_argument("--optimizer", default=DEFAULTS["optimizer"],
                        help="an optimizer name: adam, sgd, rmsprop, ... (default: %(default)s)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="the learning rate (default: " + _per_model("lr") + ")")
    parser.add_argument("--lr-schedule", choices=sorted([*LR_SCHEDULES, *STEP_SCHEDULES]),
                        default=None,
                        help="constant: --lr throughout; halve: --lr for the first half of the "
                             "epochs, then halved every epoch; cosine: from --lr down to 0 "
                             "(every step); warmup-cosine: up from --lr/10 to --lr during the "
                             "first epoch, then cosine (default: " + _per_model("lr_schedule")
                             + ")")
    parser.add_argument("--augment", choices=AUGMENTATIONS, default=None,
                        help="random augmentation of the training images: flip (left-right, "
                             "half of them), shift (up to 2 pixels), flip+shift (default: "
                             + _per_model("augment") + ")")
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                        help="batch normalization after each convolution of the cnn (default: "
                             + _per_model("batch_norm", BATCH_NORM_MODELS) + ")")
    parser.add_argument("--seed", type=non_negative_int, default=DEFAULTS["seed"],
                        help="seed of weights, shuffling, dropout and augmentation (default: "
                             "%(default)s)")
    parser.add_argument("--validation-split", type=fraction, default=DEFAULTS["validation_split"],
                        help="fraction of the training data held out, stratified by class, "
                             "for validation curves; 0 for none (default: %(default)s)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="use only the first N training (and test) samples, for quick runs")
    parser.add_argument("--out", default=None,
                        help="the run's folder (default: runs/<model>-<dataset>)")
    parser.add_argument("--resume", metavar="DIR", default=None,
                        help="continue the killed run in DIR, with the arguments it was started "
                             "with (other options are refused)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out (its files are removed first)")
    parser.add_argument("--backup-every", type=positive_int, default=BACKUP_EVERY, metavar="N",
                        help="back the run up every N steps, and at Ctrl-C (default: "
                             "%(default)s)")
    _TRAIN_DEFAULTS.update(vars(parser.parse_args([])))
    return run_train


#: The defaults of ``chainrule train``'s options, to tell which ones were given with --resume.
_TRAIN_DEFAULTS: dict = {}


def run_train(args) -> int:
    started = time.perf_counter()
    comm = _job()
    root = comm is None or comm.is_root
    say = print if root else (lambda *parts, **options: None)
    args, out = _run_folder(args, writes=root, say=say)
    if comm is not None:
        comm.barrier()  # rank 0 has cleared --out
    dataset = DATASETS[args.dataset]
    chainrule.manual_seed(args.seed)
    data = _training_data(args, dataset)
    load_seconds = time.perf_counter() - started

    model = zoo.build(args.model, data["input_shape"], len(dataset.class_names),
                      **model_options(args))
    x_train, y_train = data["train"]
    steps_per_epoch = -(-len(y_train) // (args.batch_size * (comm.size if comm else 1)))
    zoo.compile_for_classification(model, args.optimizer, learning_rate(args, steps_per_epoch))
    if not args.resume and root:
        write_json(os.path.join(out, "config.json"), _run_config(args, model, out))
    say(f"Training {args.model} on {args.dataset}: {len(y_train)} training, "
        f"{len(data['validation'][1]) if data['validation'] else 0} validation and "
        f"{len(data['test'][1])} test samples; {model.count_params():,} parameters"
        + (f"; {comm.size} processes, {args.batch_size} samples each per step" if comm else "")
        + ".")

    fit_started = time.perf_counter()
    callbacks = _train_callbacks(args, out)
    try:
        history = model.fit(*training_batches(args, x_train, y_train),
                            batch_size=args.batch_size, epochs=args.epochs,
                            validation_data=data["validation"], seed=args.seed,
                            callbacks=callbacks, distributed=comm or False)
    except KeyboardInterrupt as interrupt:
        raise KeyboardInterrupt(f"{interrupt}; backed up in {out}/backup: continue with "
                                f"chainrule train --resume {out}") from None
    train_seconds = time.perf_counter() - fit_started

    if not root:
        return 0  # rank 0 scores and writes the run
    scores = score(model, *data["test"], len(dataset.class_names))
    model.save(os.path.join(out, "model.npz"))
    summary = {
        "model": args.model,
        "dataset": args.dataset,
        "test_loss": scores["loss"],
        "test_accuracy": scores["accuracy"],
        "epochs": len(history.epoch),
        "final_epoch": {k: v[-1] for k, v in history.history.items()},
        "parameters": model.count_params(),
        "samples": {name: 0 if part is None else len(part[1]) for name, part in
                    (("train", data["train"]), ("validation", data["validation"]),
                     ("test", data["test"]))},
        "seconds": {"load": round(load_seconds, 2), "train": round(train_seconds, 2),
                    "total": round(time.perf_counter() - started, 2)},
    }
    write_json(os.path.join(out, "summary.json"), summary)
    _write_plots(out, history, scores["confusion"], dataset.class_names,
                 f"{args.model} on {args.dataset}")
    print(f"Test loss: {scores['loss']:.4f} - test accuracy: {scores['accuracy']:.4f}")
    print(f"Wrote {out}/ (config.json, history.csv, summary.json, model.npz, plots) in "
          f"{summary['seconds']['total']:.0f}s.")
    return 0


def model_options(args) -> dict:
    """The zoo's options for ``args.model`` from the train command's arguments."""
    return ({"batch_norm": bool(args.batch_norm)} if args.model in BATCH_NORM_MODELS
            and args.batch_norm is not None else {})


def recipe_model(name: str, input_shape, num_classes: int):
    """The architecture ``name`` as ``chainrule train`` builds it by default (its recipe's
    options): what ``chainrule summary`` shows. (``chainrule check`` keeps the zoo's plain
    models: with batch normalization its "overfit 20 samples" check, scored on the moving
    statistics, reads 90 %.)"""
    options = ({"batch_norm": RECIPES[name]["batch_norm"]} if name in BATCH_NORM_MODELS
               else {})
    return zoo.build(name, input_shape, num_classes, **options)


def training_batches(args, x, y) -> tuple:
    """What ``fit`` trains on: ``(x, y)``, or with ``--augment`` ``(loader, None)``, a shuffled
    DataLoader (seeded as fit's own would be) whose transform augments every batch."""
    transform = augmentation(args.augment, args.seed)
    if transform is None:
        return x, y
    from chainrule.data import ArrayDataset, DataLoader

    return DataLoader(ArrayDataset(x, y), batch_size=args.batch_size, shuffle=True,
                      seed=args.seed, transform=transform), None


def apply_recipe(args):
    """Fill the options not given (None) from the model's entry of :data:`RECIPES`."""
    recipe = RECIPES[args.model]
    for key in ("epochs", "lr", "lr_schedule", "augment", "batch_norm"):
        if getattr(args, key, None) is None and key in recipe:
            setattr(args, key, recipe[key])
    if args.batch_norm is not None and args.model not in BATCH_NORM_MODELS:
        raise ValueError(f"--batch-norm applies to {', '.join(BATCH_NORM_MODELS)}, not "
                         f"{args.model}")
    if args.augment != "none" and not zoo.TAKES_IMAGES[args.model]:
        raise ValueError(f"--augment {args.augment} moves pixels of images; {args.model} takes "
                         f"flattened ones")
    return args


def _job():
    """The MPI job's communicator under ``mpiexec -n N`` (N > 1), else None."""
    from chainrule import distributed

    if not distributed.launched_by_mpi():
        return None
    comm = distributed.init()
    return comm if comm.size > 1 else None


def _run_folder(args, writes: bool = True, say=print):
    """``(args, out)``: with ``--resume DIR``, the arguments the run in DIR was started with;
    else the given ones, with --out checked: a folder holding a run needs --overwrite. Every
    rank of an MPI job checks (and refuses) alike; only the one that ``writes`` removes."""
    if args.resume:
        return _resumed_arguments(args, say), args.resume
    out = args.out or os.path.join("runs", f"{args.model}-{args.dataset}")
    held = [name for name in (*RUN_FILES, "backup") if os.path.exists(os.path.join(out, name))]
    if held and not args.overwrite:
        raise FileExistsError(f"--out {out} already holds a run ({', '.join(held)}); continue "
                              f"it with --resume {out}, replace it with --overwrite, or choose "
                              f"another --out")
    for name in held if writes else ():
        path = os.path.join(out, name)
        if os.path.isdir(path):
            import shutil

            shutil.rmtree(path)
        else:
            os.remove(path)
    os.makedirs(out, exist_ok=True)
    return apply_recipe(args), out


def _resumed_arguments(args, say=print):
    """The arguments stored in ``--resume DIR``'s config.json (refusing others given too)."""
    import json

    given = sorted(f"--{key.replace('_', '-')}" for key, value in vars(args).items()
                   if key in _TRAIN_DEFAULTS and key not in ("resume", "run")
                   and value != _TRAIN_DEFAULTS[key])
    if given:
        raise ValueError(f"--resume continues a run with its own arguments; do not give "
                         f"{', '.join(given)}")
    folder = args.resume
    config_path = os.path.join(folder, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"--resume {folder}: no config.json there; is it the folder "
                                f"of a chainrule train run?")
    if os.path.exists(os.path.join(folder, "summary.json")):
        raise FileExistsError(f"--resume {folder}: that run has finished (summary.json); "
                              f"train again with --overwrite to redo it")
    with open(config_path) as file:
        stored = json.load(file)["arguments"]
    resumed = argparse.Namespace(**{**_TRAIN_DEFAULTS, **_BEFORE_OPTIONS, **stored})
    resumed.resume, resumed.overwrite, resumed.out = folder, False, folder
    resumed.run, resumed.command = args.run, args.command
    resumed.traceback = getattr(args, "traceback", False)
    backup = os.path.join(folder, "backup", BackupAndRestore.FILE)
    say(f"Resuming {folder}" + ("" if os.path.exists(backup) else
                                 " (no backup yet: from the start)"))
    return resumed


def _training_data(args, dataset: ImageDataset) -> dict:
    """The data set loaded, limited, scaled and shaped for the model: ``{"input_shape",
    "train": (x, y), "validation": (x, y) or None, "test": (x, y)}``."""
    (x_train, y_train), (x_test, y_test) = dataset.load()
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    input_shape = (dataset.image_shape if zoo.TAKES_IMAGES[args.model]
                   else (int(np.prod(dataset.image_shape)),))
    x_train = prepare_inputs(x_train, dataset.max_pixel, input_shape)
    x_test = prepare_inputs(x_test, dataset.max_pixel, input_shape)
    validation = None
    if args.validation_split:
        x_train, y_train, validation = _stratified_holdout(
            x_train, y_train, args.validation_split, args.seed)
    return {"input_shape": input_shape, "train": (x_train, y_train),
            "validation": validation, "test": (x_test, y_test)}


def _train_callbacks(args, out: str) -> list:
    """The epoch learning-rate schedule unless it is constant or per step (then it is the
    optimizer's), history.csv, and the backup."""
    callbacks = []
    make_schedule = LR_SCHEDULES.get(args.lr_schedule)
    if make_schedule is not None:
        callbacks.append(LearningRateScheduler(
            make_schedule(args.lr, args.epochs)))  # the rate goes one way: option -> update
    callbacks.append(HistoryCSV(os.path.join(out, "history.csv")))
    callbacks.append(BackupAndRestore(os.path.join(out, "backup"),
                                      save_freq=args.backup_every))
    return callbacks


class HistoryCSV(Callback):
    """history.csv: one row per epoch so far, the whole file rewritten atomically at every
    epoch's end, from the run's history (restored ones included): a resumed run's file holds
    each epoch once, and a kill never leaves half a file."""

    root_only = True

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        recorded = self.model.fit_state.history  # before this epoch's row: History runs last
        rows = [{key: values[i] for key, values in recorded.history.items()}
                for i in range(len(recorded.epoch))]
        epochs = [*recorded.epoch, epoch]
        rows.append(dict(logs or {}))
        keys = list(dict.fromkeys(key for row in rows for key in row))
        lines = [",".join(["epoch", *keys])]
        lines += [",".join([str(e), *(_cell(row.get(key)) for key in keys)])
                  for e, row in zip(epochs, rows)]
        text = "\n".join(lines) + "\n"
        atomic_write(self.path, lambda file: file.write(text.encode()))


def _cell(value) -> str:
    return "" if value is None else repr(float(value))


def _stratified_holdout(x, y, fraction: float, seed: int):
    """``x_train, y_train, (x_val, y_val)``: a seeded split keeping each class's share."""
    from chainrule.data import train_val_test_split

    x_train, y_train, x_val, y_val, _, _ = train_val_test_split(
        x, y, val=fraction, test=0, seed=seed, stratify=y)
    return x_train, y_train, (x_val, y_val)


def score(model, x, y, num_classes: int, batch_size: int = 256) -> dict:
    """Loss, accuracy and confusion matrix of ``model`` on ``(x, y)`` from one pass of
    ``predict`` (evaluation mode, no graph)."""
    logits = model.predict(x, batch_size=batch_size)
    with chainrule.no_grad():
        loss = float(model.loss(chainrule.Tensor(y), chainrule.Tensor(logits)).item())
    confusion = ConfusionMatrix(num_classes)
    confusion.update_state(y, logits)
    return {"loss": loss, "accuracy": SparseCategoricalAccuracy()(y, logits),
            "confusion": confusion.result()}


def _run_config(args, model, out: str) -> dict:
    from chainrule.layers import serialize

    return {
        "command": "train",
        "arguments": {k: v for k, v in vars(args).items() if k != "run"},
        "out": out,
        "model_config": serialize(model),
        "versions": {"chainrule": chainrule.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _write_plots(out: str, history, confusion, class_names, title: str) -> None:
    try:
        from chainrule import plot

        plot.plot_history(history, os.path.join(out, "curves.png"), title=title)
        plot.plot_confusion_matrix(confusion, os.path.join(out, "confusion.png"), class_names,
                                   title=f"Confusion matrix: {title} (test set)")
    except ImportError as error:
        print(f"note: skipped curves.png and confusion.png: {error}")


# -- chainrule evaluate ---------------------------------------------------------------------------


@command("evaluate", "Score a saved model (model.npz) on a data set's test images.")
def _evaluate_arguments(parser):
    parser.add_argument("--model-path", required=True, help="a model saved by train or save()")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                        help="the data set (default: the run's, from config.json beside the "
                             "model, else fashion-mnist)")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="only the first N test samples")
    return run_evaluate


def run_evaluate(args) -> int:
    from chainrule.models import load_model

    model = load_model(args.model_path)
    name = args.dataset or _dataset_of_run(args.model_path) or "fashion-mnist"
    dataset = DATASETS[name]
    _, (x_test, y_test) = dataset.load()
    if args.limit is not None:
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    x_test = prepare_inputs(x_test, dataset.max_pixel, model.input_shape[1:])
    scores = score(model, x_test, y_test, len(dataset.class_names), args.batch_size)
    print(f"{args.model_path} on the {name} test set ({len(y_test)} samples): "
          f"test loss: {scores['loss']:.4f} - test accuracy: {scores['accuracy']:.4f}")
    return 0


def _dataset_of_run(model_path: str) -> str | None:
    config_path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
    try:
        with open(config_path) as file:
            return json.load(file)["arguments"]["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- chainrule summary ----------------------------------------------------------------------------


@command("summary", "Print the layer table of an architecture (or of a saved model).")
def _summary_arguments(parser):
    _model_and_dataset_arguments(parser, "the data set whose images it takes")
    parser.add_argument("--model-path", default=None, help="summarize a saved model instead")
    return run_summary


def run_summary(args) -> int:
    if args.model_path:
        from chainrule.models import load_model

        model = load_model(args.model_path, compile=False)
    else:
        dataset = DATASETS[args.dataset]
        input_shape = (dataset.image_shape if zoo.TAKES_IMAGES[args.model]
                       else (int(np.prod(dataset.image_shape)),))
        model = recipe_model(args.model, input_shape, len(dataset.class_names))
    model.summary()
    return 0


# -- chainrule check ------------------------------------------------------------------------------


@command("check", "Run the lectures' sanity checks on an untrained model before training it.")
def _check_arguments(parser):
    _model_and_dataset_arguments(parser)
    parser.add_argument("--optimizer", default=DEFAULTS["optimizer"],
                        help="an optimizer name (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"],
                        help="the learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                        help="seed of the weights and the samples (default: %(default)s)")
    return run_check


def run_check(args) -> int:
    """Print the table of :func:`chainrule.diagnostics.sanity_check`; exit 1 if one fails."""
    from chainrule.diagnostics import sanity_check

    dataset = DATASETS[args.dataset]
    chainrule.manual_seed(args.seed)
    (x_train, y_train), _ = dataset.load()
    input_shape = (dataset.image_shape if zoo.TAKES_IMAGES[args.model]
                   else (int(np.prod(dataset.image_shape)),))
    x = prepare_inputs(x_train[:1000], dataset.max_pixel, input_shape)
    model = zoo.build(args.model, input_shape, len(dataset.class_names))
    zoo.compile_for_classification(model, args.optimizer, args.lr)
    report = sanity_check(model, x, y_train[:1000], seed=args.seed)
    print(f"Sanity checks of {args.model} on {args.dataset} ({args.optimizer}, lr {args.lr:g}):")
    print(report)
    return 0 if report.passed else 1
