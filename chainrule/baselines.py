"""Classic baselines beside chainrule's networks, on the same pixels and the same test set.

:func:`run_baselines` trains scikit-learn's k-nearest neighbours, random forest, logistic
regression and RBF support-vector machine on the pixels scaled to [0, 1] (flattened), and
chainrule's zoo ``mlp`` and ``cnn`` with ``chainrule train``'s recipe, and returns one row per
model: its measured test accuracy next to the published one. ``chainrule baselines`` prints the
rows as a table and writes them to ``results.json`` and ``results.md``.

Subsets, so that the whole command runs in about a quarter of an hour on two CPU cores (18 minutes
measured while other jobs shared them; the CNN's 10 epochs are most of it):

==========  =====================================================================================
``knn``     all 60,000 training images (fitting stores them; predicting the 10,000 test images
            is one brute-force distance product)
``rf``      all 60,000, 100 trees
``logreg``  all 60,000, lbfgs, at most 100 iterations (scikit-learn's default)
``svc``     the first 10,000 training images (the kernel matrix grows with the square of the
            samples: the fit on 60,000 would take about an hour here)
``mlp``     all 60,000, no validation hold-out; Adam 1e-3, batch 128, the halving schedule
``cnn``     the same
==========  =====================================================================================

The published accuracies are in :data:`PUBLISHED`. The paper's models were tuned over a grid of
hyper-parameters; these are the paper's best settings for each, trained once.
Needs scikit-learn (the ``[data]`` extra).
"""

from __future__ import annotations

import time

import numpy as np

#: Published test accuracies on Fashion-MNIST.
#: scikit-learn models: Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST: a Novel Image Dataset for
#: Benchmarking Machine Learning Algorithms", arXiv:1708.07747, Table 3 (mean of 5 runs).
#: chainrule's mlp and cnn: the Fashion-MNIST README's community benchmark table
#: (github.com/zalandoresearch/fashion-mnist): "MLP 256-128-100" and "2 Conv+pooling".
PUBLISHED = {
    "fashion-mnist": {
        "svc": (0.897, "arXiv:1708.07747 Table 3: SVC rbf C=10"),
        "rf": (0.873, "arXiv:1708.07747 Table 3: RandomForest, 100 trees"),
        "knn": (0.854, "arXiv:1708.07747 Table 3: KNeighbors k=5"),
        "logreg": (0.842, "arXiv:1708.07747 Table 3: LogisticRegression"),
        "sk_mlp": (0.871, "arXiv:1708.07747 Table 3: MLPClassifier (100,)"),
        "mlp": (0.883, "Fashion-MNIST README benchmark: MLP 256-128-100"),
        "cnn": (0.916, "Fashion-MNIST README benchmark: 2 Conv + pooling"),
    },
}

#: The models, in the order of the table.
SKLEARN_MODELS = ("knn", "rf", "logreg", "svc")
CHAINRULE_MODELS = ("mlp", "cnn")
MODELS = SKLEARN_MODELS + CHAINRULE_MODELS

#: What each row is.
DESCRIPTIONS = {
    "knn": "KNeighborsClassifier(n_neighbors=5)",
    "rf": "RandomForestClassifier(n_estimators=100)",
    "logreg": "LogisticRegression(max_iter=100)",
    "svc": "SVC(kernel='rbf', C=10)",
    "mlp": "chainrule zoo mlp (256-128)",
    "cnn": "chainrule zoo cnn (2 conv + pooling)",
}

#: Training samples per model (None: all of them); see the module's docstring.
TRAIN_SUBSETS = {"knn": None, "rf": None, "logreg": None, "svc": 10_000,
                 "mlp": None, "cnn": None}

#: Epochs of chainrule's networks when not given (``chainrule train``'s defaults).
EPOCHS = {"mlp": 15, "cnn": 10}


def parse_models(text) -> tuple:
    """``"knn,svc"`` (or a list) as a tuple of model names; a clear error for unknown ones."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise ValueError(f"--models: unknown model(s) {unknown or names!r}; choose from "
                         f"{', '.join(MODELS)}")
    return tuple(dict.fromkeys(names))


def sklearn_estimator(name: str, seed: int = 0):
    """The scikit-learn estimator of row ``name``; an ImportError naming the ``[data]`` extra
    when scikit-learn is missing."""
    from chainrule._extras import require

    who = f"chainrule baselines ({name})"
    if name == "knn":
        return require("sklearn.neighbors", "data", who, "scikit-learn").KNeighborsClassifier(
            n_neighbors=5)
    if name == "rf":
        return require("sklearn.ensemble", "data", who, "scikit-learn").RandomForestClassifier(
            n_estimators=100, random_state=seed, n_jobs=-1)
    if name == "logreg":
        return require("sklearn.linear_model", "data", who,
                       "scikit-learn").LogisticRegression(max_iter=100)
    if name == "svc":
        return require("sklearn.svm", "data", who, "scikit-learn").SVC(kernel="rbf", C=10)
    raise ValueError(f"not a scikit-learn baseline: {name!r}; choose from {SKLEARN_MODELS}")


def load_pixels(dataset: str = "fashion-mnist", limit: int | None = None):
    """``(x_train, y_train), (x_test, y_test)``: uint8 NCHW images and int64 labels, the first
    ``limit`` of each part when given."""
    from chainrule.commands import DATASETS

    if dataset not in DATASETS:
        raise ValueError(f"--dataset: unknown data set {dataset!r}; choose from "
                         f"{', '.join(sorted(DATASETS))}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    (x_train, y_train), (x_test, y_test) = DATASETS[dataset].load()
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
        x_test, y_test = x_test[:limit], y_test[:limit]
    return (x_train, y_train), (x_test, y_test)


def run_baselines(dataset: str = "fashion-mnist", models=MODELS, limit: int | None = None,
                  epochs: int | None = None, seed: int = 0, verbose: int = 1) -> list[dict]:
    """Train every model of ``models`` and score it on the test set; one row (a dict) each:
    ``model``, ``description``, ``test_accuracy``, ``train_samples``, ``test_samples``,
    ``seconds`` (fit and predict), ``published`` (None where none) and ``source``.

    ``epochs`` applies to chainrule's networks (default :data:`EPOCHS`); ``limit`` keeps the
    first N training and test samples (then the subsets of :data:`TRAIN_SUBSETS` apply within
    them)."""
    from chainrule.commands import DATASETS

    models = parse_models(models)
    if epochs is not None and epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    (x_train, y_train), (x_test, y_test) = load_pixels(dataset, limit)
    max_pixel = DATASETS[dataset].max_pixel
    if any(m in SKLEARN_MODELS for m in models):
        for name in models:  # fail before any training when scikit-learn is missing
            if name in SKLEARN_MODELS:
                sklearn_estimator(name, seed)
    published = PUBLISHED.get(dataset, {})
    rows = []
    for name in models:
        subset = TRAIN_SUBSETS[name]
        n = len(y_train) if subset is None else min(subset, len(y_train))
        if verbose:
            print(f"{name}: training on {n} samples ...", flush=True)
        started = time.perf_counter()
        if name in SKLEARN_MODELS:
            accuracy = _sklearn_accuracy(name, x_train[:n], y_train[:n], x_test, y_test,
                                         max_pixel, seed)
        else:
            accuracy = _network_accuracy(name, x_train[:n], y_train[:n], x_test, y_test,
                                         max_pixel, epochs or EPOCHS[name], seed,
                                         len(DATASETS[dataset].class_names), verbose)
        seconds = time.perf_counter() - started
        value, source = published.get(name, (None, None))
        rows.append({"model": name, "description": DESCRIPTIONS[name],
                     "test_accuracy": round(float(accuracy), 4), "train_samples": int(n),
                     "test_samples": int(len(y_test)), "seconds": round(seconds, 1),
                     "published": value, "source": source})
        if verbose:
            print(f"{name}: test accuracy {accuracy:.4f} in {seconds:.0f}s", flush=True)
    return rows


def _flat(images, max_pixel: float) -> np.ndarray:
    x = images.reshape(len(images), -1).astype(np.float32)
    x /= max_pixel
    return x


def _sklearn_accuracy(name, x_train, y_train, x_test, y_test, max_pixel, seed) -> float:
    import warnings

    estimator = sklearn_estimator(name, seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(converge|max_iter).*")
        estimator.fit(_flat(x_train, max_pixel), y_train)
    predicted = estimator.predict(_flat(x_test, max_pixel))
    return float(np.mean(predicted == y_test))


def train_network(name, x_train, y_train, epochs: int, seed: int, num_classes: int = 10,
                  lr: float = 1e-3, batch_size: int = 128, verbose: int = 0):
    """A zoo network (``mlp`` or ``cnn``) trained with ``chainrule train``'s recipe (Adam,
    batch 128, the halving schedule) on all of ``(x_train, y_train)``: inputs already scaled
    and shaped, no validation hold-out."""
    import chainrule
    from chainrule import zoo
    from chainrule.callbacks import LearningRateScheduler
    from chainrule.optimizers.schedules import halving_schedule

    chainrule.manual_seed(seed)
    model = zoo.build(name, x_train.shape[1:], num_classes)
    zoo.compile_for_classification(model, "adam", lr)
    callbacks = [LearningRateScheduler(halving_schedule(lr, epochs))]
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, seed=seed,
              callbacks=callbacks, verbose=verbose)
    return model


def network_inputs(name, images, max_pixel: float) -> np.ndarray:
    """Images scaled to [0, 1] and shaped for the zoo network ``name``."""
    from chainrule import zoo
    from chainrule.commands import prepare_inputs

    shape = images.shape[1:] if zoo.TAKES_IMAGES[name] else (int(np.prod(images.shape[1:])),)
    return prepare_inputs(images, max_pixel, shape)


def _network_accuracy(name, x_train, y_train, x_test, y_test, max_pixel, epochs, seed,
                      num_classes, verbose) -> float:
    from chainrule.metrics import SparseCategoricalAccuracy

    model = train_network(name, network_inputs(name, x_train, max_pixel), y_train, epochs, seed,
                          num_classes, verbose=2 if verbose else 0)
    logits = model.predict(network_inputs(name, x_test, max_pixel), batch_size=256)
    return float(SparseCategoricalAccuracy()(y_test, logits))


def format_table(rows: list[dict]) -> str:
    """The rows as a Markdown table, measured next to published."""
    lines = ["| model | training samples | test accuracy | published | difference | seconds |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        published, measured = row["published"], row["test_accuracy"]
        shown = "–" if published is None else f"{published:.3f}"
        difference = "–" if published is None else f"{measured - published:+.3f}"
        lines.append(
            f"| {row['model']}: {row['description']} | {row['train_samples']:,} | "
            f"{measured:.4f} | {shown} | {difference} | {row['seconds']:.0f} |")
    return "\n".join(lines)


__all__ = ["MODELS", "PUBLISHED", "TRAIN_SUBSETS", "format_table", "parse_models",
           "run_baselines", "sklearn_estimator", "train_network"]
