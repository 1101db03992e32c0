"""Ensembles, snapshot ensembles, SWA and Monte-Carlo dropout, measured on Fashion-MNIST
(``chainrule study ensembles``; the numbers are in ``docs/models.md``).

The model: an MLP on the flattened pixels (in [0, 1]), 784 – Dense 256 ReLU – Dropout –
Dense 128 ReLU – Dropout – Dense 10 (logits), trained with softmax cross-entropy, SGD with
momentum 0.9, batches of 128, for a fixed number of epochs E. Every training run of seed s
reseeds chainrule's generator (weights, dropout masks) and the data order with s. For each
of the M seeds S, S + 1, ..., S + M − 1 three runs of E epochs are made:

* ``one model``: the rate annealed from ``lr`` to 0 by one cosine over the E epochs (step by
  step; :class:`~chainrule.callbacks.SnapshotEnsemble` with one cycle, its only snapshot being
  the final weights). The M models of this recipe are also the members of the **ensemble**
  (:class:`~chainrule.models.Ensemble`, equal weights);
* ``snapshot ensemble``: the same budget with ``cycles`` cosine cycles and warm restarts
  (:class:`~chainrule.callbacks.SnapshotEnsemble`), the ensemble of the end of every cycle;
* ``SWA``: rate ``lr`` up to epoch ``swa_start`` (default E // 2), then ``swa_lr``, the
  weights averaged at the end of every epoch from ``swa_start`` on
  (:class:`~chainrule.models.AveragedModel`, :class:`~chainrule.callbacks.SWA`;
  :func:`~chainrule.models.update_bn` is called, a no-op here: the MLP has no batch norm),
  against the ``final weights`` of the same run.

So the training costs 3 · M · E epochs. Scores are on the 10,000 test images: ``accuracy``,
and ``nll`` = mean over i of −log max(p̄[i, y_i], 1e-12), p̄ the (averaged) predicted
probabilities (:meth:`chainrule.models.Ensemble.evaluate`'s formula). Every per-seed method is
reported for seed S and as mean and sample standard deviation (ddof = 1) over the M seeds: the
seed noise to judge a gain by.

Out-of-distribution detection, on each seed's one model: the predictive entropy
H = −Σ_c p̄_c log p̄_c (nats) of the mean of T dropout passes
(``predict_mc(x, samples=T, probabilities=True)``) on the test images (negatives) and on as
many noise images (positives): ``uniform`` pixels U[0, 1], and ``gaussian`` pixels
N(m, s²) clipped to [0, 1], m and s the mean and standard deviation of the training pixels;
both drawn from ``numpy.random.default_rng(seed)``. The AUROC (:func:`auroc`) of that entropy
is compared with the AUROC of the entropy of the deterministic softmax (``predict``, dropout
off) and of the ensemble's averaged probabilities.

:func:`measure` returns the numbers and writes ``results.json`` and ``report.md``.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import numpy as np

import chainrule
from chainrule import losses
from chainrule.callbacks import SWA, SnapshotEnsemble
from chainrule.io import write_json
from chainrule.layers import Dense, Dropout
from chainrule.models import AveragedModel, Ensemble, Input, Sequential, update_bn
from chainrule.models.ensemble import softmax
from chainrule.optimizers import SGD

#: The defaults of :func:`measure` (and of ``chainrule study ensembles``).
DEFAULTS = {"epochs": 30, "members": 5, "samples": 30, "limit": None, "seed": 0,
            "cycles": 5, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "dropout": 0.2,
            "swa_start": None, "swa_lr": 0.01}

#: The per-seed methods, in the order of the report.
METHODS = ("one_model", "snapshot_ensemble", "swa", "swa_final", "mc_dropout")

#: The noise images that the OOD detection tells apart from the test images.
NOISES = ("uniform", "gaussian")

#: The entropies whose AUROC is measured: MC dropout, the deterministic softmax, the ensemble.
DETECTORS = ("mc_dropout", "softmax", "ensemble")

_LABELS = {"one_model": "one model", "ensemble": "{members}-member ensemble",
           "snapshot_ensemble": "{cycles}-snapshot ensemble", "swa": "SWA",
           "swa_final": "final weights of the SWA run",
           "mc_dropout": "MC-dropout mean ({samples} passes)"}

_BATCH_PREDICT = 1000


# -- AUROC and entropy ---------------------------------------------------------------------------


def auroc(labels, scores) -> float:
    """The area under the ROC curve of ``scores`` for the binary ``labels`` (1 positive).

    By the Mann–Whitney rank statistic: with all N = n₊ + n₋ scores ranked 1..N in increasing
    order (tied scores sharing the average of their ranks) and R₊ the sum of the positives'
    ranks,

        AUROC = (R₊ − n₊(n₊ + 1)/2) / (n₊ · n₋),

    the probability that a random positive scores above a random negative, ties counting
    one half. 1: every positive above every negative; 0: every one below; 0.5: chance.

    Raises:
        ValueError: the shapes differ or are not 1-D, a label is not 0 or 1, a score is not
            finite, or one of the two classes is missing.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"auroc: labels and scores must be 1-D of the same length, got shapes "
                         f"{labels.shape} and {scores.shape}")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("auroc: labels must be 0 (negative) or 1 (positive)")
    if not np.all(np.isfinite(scores)):
        raise ValueError("auroc: scores must be finite")
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"auroc: needs both classes, got {n_pos} positives and {n_neg} "
                         "negatives")
    rank_sum = float(average_ranks(scores)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def average_ranks(values) -> np.ndarray:
    """The ranks 1..N of ``values`` in increasing order, tied values sharing the mean of the
    ranks they occupy (as ``scipy.stats.rankdata(method="average")``)."""
    _, inverse, counts = np.unique(np.asarray(values), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # the last rank of each distinct value
    return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def entropy(probabilities) -> np.ndarray:
    """H = −Σ_c p_c log p_c per row (nats), with 0 · log 0 = 0."""
    p = np.asarray(probabilities, dtype=np.float64)
    logs = np.log(np.where(p > 0, p, 1.0))
    return -np.sum(p * logs, axis=-1)


def scores(probabilities, labels) -> dict:
    """``{"accuracy", "nll"}`` of rows of probabilities against integer labels (the formulas
    of :meth:`chainrule.models.Ensemble.evaluate`)."""
    p = np.asarray(probabilities, dtype=np.float64)
    picked = p[np.arange(len(labels)), labels]
    return {"accuracy": float(np.mean(np.argmax(p, axis=1) == labels)),
            "nll": float(np.mean(-np.log(np.maximum(picked, 1e-12))))}


# -- data and model ------------------------------------------------------------------------------


def load_data(limit: int | None = None):
    """``(x_train, y_train), (x_test, y_test)``: Fashion-MNIST's flattened pixels in [0, 1]
    (float32) and int64 labels; the first ``limit`` training samples when given."""
    from chainrule.datasets import fashion_mnist

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    return ((_flat(x_train), y_train.astype(np.int64)), (_flat(x_test), y_test.astype(np.int64)))


def _flat(images: np.ndarray) -> np.ndarray:
    x = images.reshape(len(images), -1).astype(np.float32)
    x /= 255.0
    return x


def noise_images(kind: str, count: int, x_train: np.ndarray, seed: int) -> np.ndarray:
    """``count`` noise images like the flattened training images: ``uniform`` pixels in
    [0, 1], or ``gaussian`` pixels N(mean, std²) of the training pixels, clipped to [0, 1]."""
    generator = np.random.default_rng([seed, NOISES.index(kind)])
    shape = (count, x_train.shape[1])
    if kind == "uniform":
        return generator.random(shape, dtype=np.float32)
    mean, std = float(x_train.mean()), float(x_train.std())
    return np.clip(generator.normal(mean, std, shape), 0.0, 1.0).astype(np.float32)


def build_model(dropout: float = DEFAULTS["dropout"], lr: float = DEFAULTS["lr"],
                momentum: float = DEFAULTS["momentum"]) -> Sequential:
    """The study's MLP 784-256-128-10 with Dropout(``dropout``) after each hidden layer,
    compiled with SparseCategoricalCrossentropy(from_logits=True), SGD(lr, momentum) and
    accuracy. Seed chainrule's generator first for reproducible weights."""
    model = Sequential([Input(shape=(784,)), Dense(256, activation="relu"), Dropout(dropout),
                        Dense(128, activation="relu"), Dropout(dropout), Dense(10)],
                       name="mlp_dropout")
    model.compile(optimizer=SGD(learning_rate=lr, momentum=momentum),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


# -- the measurement -----------------------------------------------------------------------------


def check_arguments(epochs, members, samples, limit, cycles=DEFAULTS["cycles"],
                    batch_size=DEFAULTS["batch_size"], test_limit=None,
                    prefix: str = "") -> None:
    """Raise ValueError naming the first bad argument (``prefix`` + its name; with the
    prefix "--", the option's name: ``--test-limit``)."""
    for name, value, least in (("epochs", epochs, 1), ("members", members, 2),
                               ("samples", samples, 1), ("cycles", cycles, 1),
                               ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{prefix}{name} must be an integer of at least {least}, got "
                             f"{value!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"{prefix}limit must be a positive integer or None, got {limit!r}")
    if test_limit is not None and (isinstance(test_limit, bool)
                                   or not isinstance(test_limit, int) or test_limit < 2):
        name = "test-limit" if prefix == "--" else "test_limit"
        raise ValueError(f"{prefix}{name} must be an integer of at least 2 or None, got "
                         f"{test_limit!r}")
    if limit is not None and epochs * math.ceil(limit / batch_size) < cycles:
        raise ValueError(f"{prefix}epochs × steps per epoch ({epochs} × "
                         f"{math.ceil(limit / batch_size)}) must be at least the {cycles} "
                         f"snapshot cycles; raise {prefix}epochs or {prefix}limit")


def measure(epochs: int = DEFAULTS["epochs"], members: int = DEFAULTS["members"],
            samples: int = DEFAULTS["samples"], limit: int | None = DEFAULTS["limit"],
            seed: int = DEFAULTS["seed"], out=None, *, cycles: int = DEFAULTS["cycles"],
            batch_size: int = DEFAULTS["batch_size"], lr: float = DEFAULTS["lr"],
            momentum: float = DEFAULTS["momentum"], dropout: float = DEFAULTS["dropout"],
            swa_start: int | None = DEFAULTS["swa_start"], swa_lr: float = DEFAULTS["swa_lr"],
            test_limit: int | None = None, log=None) -> dict:
    """Measure the ensembles, snapshot ensembles, SWA and MC dropout (module docstring).

    Args:
        epochs: E, the epochs of every training run.
        members: M ≥ 2, the ensemble's members and the number of seeds of every method.
        samples: T ≥ 1, the dropout passes of MC dropout.
        limit: train on the first ``limit`` training samples (default: all 60,000).
        test_limit: score on the first ``test_limit`` test images only, and as many noise
            images (default: all 10,000; fewer for quick checks).
        seed: S, the first seed; also seeds the noise images.
        out: a folder to write ``results.json`` and ``report.md`` into (created), or None.
        cycles, batch_size, lr, momentum, dropout, swa_start, swa_lr: the recipe (module
            docstring); ``swa_start`` defaults to E // 2.
        log: a function called with one line of progress, or None.

    Returns:
        a JSON-able dict: ``config``; ``methods``: for each of :data:`METHODS` ``accuracy``
        and ``nll`` of seed S, their lists over the seeds (``accuracy_seeds``, ``nll_seeds``)
        and ``accuracy_mean``/``_std``, ``nll_mean``/``_std``; ``ensemble``: ``accuracy`` and
        ``nll``; ``ood``: for each of :data:`NOISES` and :data:`DETECTORS` the entropy AUROC
        (``auroc`` of seed S for the per-seed detectors, ``auroc_seeds``, ``auroc_mean``,
        ``auroc_std``) and the mean entropies on the test and the noise images;
        ``time_s``.

    Raises:
        ValueError: a bad argument (named); the data set is missing (its loader's error).
    """
    check_arguments(epochs, members, samples, limit, cycles, batch_size, test_limit)
    swa_start = epochs // 2 if swa_start is None else int(swa_start)
    if not 0 <= swa_start < epochs:
        raise ValueError(f"swa_start must be in [0, {epochs}), got {swa_start}")
    say = log or (lambda line: None)
    started = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_data(limit)
    x_test, y_test = x_test[:test_limit], y_test[:test_limit]
    noise = {kind: noise_images(kind, len(x_test), x_train, seed) for kind in NOISES}
    recipe = {"batch_size": batch_size, "lr": lr, "momentum": momentum, "dropout": dropout}
    seeds = list(range(seed, seed + members))

    per_seed = {name: [] for name in METHODS}
    detection = {(kind, d): [] for kind in NOISES for d in ("mc_dropout", "softmax")}
    entropies = {}
    singles = []
    for index, s in enumerate(seeds):
        say(f"seed {s} ({index + 1}/{members}): one model, snapshots, SWA")
        model = _train(x_train, y_train, epochs, s, SnapshotEnsemble(cycles=1), recipe)
        singles.append(model)
        per_seed["one_model"].append(scores(_probabilities(model, x_test), y_test))
        snapshots = SnapshotEnsemble(cycles=cycles)
        _train(x_train, y_train, epochs, s, snapshots, recipe)
        per_seed["snapshot_ensemble"].append(_ensemble_scores(snapshots.ensemble(), x_test,
                                                              y_test))
        swa_model, averaged = _train_swa(x_train, y_train, epochs, s, swa_start, swa_lr, recipe)
        per_seed["swa"].append(scores(_probabilities(averaged.module, x_test), y_test))
        per_seed["swa_final"].append(scores(_probabilities(swa_model, x_test), y_test))

        test_mc = model.predict_mc(x_test, samples=samples, batch_size=_BATCH_PREDICT,
                                   seed=s, probabilities=True)[0]
        per_seed["mc_dropout"].append(scores(test_mc, y_test))
        test_entropy = {"mc_dropout": entropy(test_mc),
                        "softmax": entropy(_probabilities(model, x_test))}
        for kind in NOISES:
            noise_entropy = {
                "mc_dropout": entropy(model.predict_mc(noise[kind], samples=samples,
                                                       batch_size=_BATCH_PREDICT, seed=s + 1,
                                                       probabilities=True)[0]),
                "softmax": entropy(_probabilities(model, noise[kind]))}
            for detector, value in noise_entropy.items():
                detection[kind, detector].append(_separation(test_entropy[detector], value))
                if index == 0:
                    entropies[kind, detector] = (test_entropy[detector], value)

    say("ensemble")
    ensemble = Ensemble(singles)
    ensemble_scores = _ensemble_scores(ensemble, x_test, y_test)
    ensemble_test = entropy(ensemble.predict(x_test, batch_size=_BATCH_PREDICT))
    for kind in NOISES:
        value = entropy(ensemble.predict(noise[kind], batch_size=_BATCH_PREDICT))
        detection[kind, "ensemble"] = [_separation(ensemble_test, value)]
        entropies[kind, "ensemble"] = (ensemble_test, value)

    results = {
        "config": {"dataset": "fashion-mnist", "train_samples": int(len(x_train)),
                   "test_samples": int(len(x_test)), "epochs": epochs, "members": members,
                   "samples": samples, "limit": limit, "seed": seed, "seeds": seeds,
                   "cycles": cycles, "swa_start": swa_start, "swa_lr": swa_lr, **recipe,
                   "model": "784-256-128-10 MLP, ReLU, Dropout after each hidden layer",
                   "optimizer": "SGD with momentum",
                   "python": platform.python_version(), "numpy": np.__version__,
                   "chainrule": chainrule.__version__},
        "methods": {name: _summary(values) for name, values in per_seed.items()},
        "ensemble": ensemble_scores,
        "ood": {kind: {detector: _detection_summary(detection[kind, detector],
                                                    *entropies[kind, detector])
                       for detector in DETECTORS} for kind in NOISES},
        "time_s": round(time.perf_counter() - started, 1),
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "results.json", results)
        _write_text(out / "report.md", report(results))
    return results


def _train(x, y, epochs, seed, callback, recipe):
    """One run of the recipe with ``callback`` (which sets the learning rate); the model."""
    chainrule.manual_seed(seed)
    model = build_model(recipe["dropout"], recipe["lr"], recipe["momentum"])
    model.fit(x, y, batch_size=recipe["batch_size"], epochs=epochs, verbose=0, seed=seed,
              callbacks=[callback])
    return model


def _train_swa(x, y, epochs, seed, swa_start, swa_lr, recipe):
    """One SWA run: ``(model with its final weights, AveragedModel)``."""
    chainrule.manual_seed(seed)
    model = build_model(recipe["dropout"], recipe["lr"], recipe["momentum"])
    averaged = AveragedModel(model)
    model.fit(x, y, batch_size=recipe["batch_size"], epochs=epochs, verbose=0, seed=seed,
              callbacks=[SWA(averaged, start_epoch=swa_start, swa_lr=swa_lr)])
    update_bn(averaged, x, batch_size=recipe["batch_size"])  # nothing to do without batch norm
    return model, averaged


def _probabilities(model, x) -> np.ndarray:
    return softmax(model.predict(x, batch_size=_BATCH_PREDICT).astype(np.float64))


def _ensemble_scores(ensemble, x, y) -> dict:
    return scores(ensemble.predict(x, batch_size=_BATCH_PREDICT), y)


def _separation(test_entropy, noise_entropy) -> float:
    """The AUROC of the entropy with the noise images positive and the test images negative."""
    labels = np.concatenate([np.zeros(len(test_entropy)), np.ones(len(noise_entropy))])
    return auroc(labels, np.concatenate([test_entropy, noise_entropy]))


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std


def _summary(values: list[dict]) -> dict:
    summary = {}
    for key in ("accuracy", "nll"):
        column = [v[key] for v in values]
        mean, std = _mean_std(column)
        summary.update({key: column[0], f"{key}_seeds": column, f"{key}_mean": mean,
                        f"{key}_std": std})
    return summary


def _detection_summary(values, test_entropy, noise_entropy) -> dict:
    mean, std = _mean_std(values)
    return {"auroc": values[0], "auroc_seeds": values, "auroc_mean": mean, "auroc_std": std,
            "entropy_test_mean": float(np.mean(test_entropy)),
            "entropy_noise_mean": float(np.mean(noise_entropy))}


def _write_text(path: Path, text: str) -> None:
    from chainrule.io import atomic_write

    atomic_write(str(path), lambda file: file.write(text.encode("utf-8")))


# -- the report ----------------------------------------------------------------------------------


def report(results: dict) -> str:
    """The Markdown report of :func:`measure`'s results: the two tables and the recipe."""
    config = results["config"]
    seeds = config["seeds"]
    head = f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"
    lines = [
        "# Ensembles, snapshot ensembles, SWA and MC dropout on Fashion-MNIST",
        "",
        f"{config['model']} (dropout {config['dropout']}), {config['optimizer']} "
        f"{config['momentum']}, lr {config['lr']}, batch {config['batch_size']}, "
        f"{config['epochs']} epochs per run, {config['train_samples']} training samples; "
        f"scores on the {config['test_samples']} test images. SWA from epoch "
        f"{config['swa_start']} at lr {config['swa_lr']}. Seed {seeds[0]} and mean ± standard "
        f"deviation over {head}.",
        "",
        f"| method | accuracy (seed {seeds[0]}) | NLL (seed {seeds[0]}) | accuracy, "
        f"{len(seeds)} seeds | NLL, {len(seeds)} seeds |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {name: text.format(**config) for name, text in _LABELS.items()}
    for name in ("one_model", "ensemble", "snapshot_ensemble", "swa", "swa_final",
                 "mc_dropout"):
        if name == "ensemble":
            row = results["ensemble"]
            lines.append(f"| {labels[name]} | {row['accuracy']:.4f} | {row['nll']:.4f} | – "
                         "| – |")
            continue
        row = results["methods"][name]
        lines.append(f"| {labels[name]} | {row['accuracy']:.4f} | {row['nll']:.4f} | "
                     f"{row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f} | "
                     f"{row['nll_mean']:.4f} ± {row['nll_std']:.4f} |")
    lines += [
        "",
        f"Entropy AUROC, noise images (positive) vs the test images (negative); MC dropout "
        f"with {config['samples']} passes, entropies in nats:",
        "",
        f"| noise | entropy of | AUROC (seed {seeds[0]}) | AUROC, {len(seeds)} seeds | "
        "mean entropy test | mean entropy noise |",
        "|---|---|---:|---:|---:|---:|",
    ]
    names = {"mc_dropout": "MC-dropout mean", "softmax": "softmax (dropout off)",
             "ensemble": labels["ensemble"]}
    for kind, detectors in results["ood"].items():
        for detector, row in detectors.items():
            spread = (f"{row['auroc_mean']:.4f} ± {row['auroc_std']:.4f}"
                      if len(row["auroc_seeds"]) > 1 else "–")
            lines.append(f"| {kind} | {names[detector]} | {row['auroc']:.4f} | {spread} | "
                         f"{row['entropy_test_mean']:.4f} | {row['entropy_noise_mean']:.4f} |")
    lines += ["", f"{results['time_s']:.0f} s in all.", ""]
    return "\n".join(lines)


__all__ = ["DEFAULTS", "DETECTORS", "METHODS", "NOISES", "auroc", "average_ranks",
           "build_model", "check_arguments", "entropy", "load_data", "measure", "noise_images",
           "report", "scores"]
