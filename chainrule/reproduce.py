"""Published results, reproduced with chainrule: MNIST-1D's four models and Fashion-MNIST targets.

**MNIST-1D** (Greydanus, 2020, arXiv:2011.14439). The reference repository's README quotes
test accuracies of logistic regression 32 %, MLP 68 %, CNN 94 % and GRU 91 %. Its
``notebooks/models.py`` defines the models and ``train.py`` the recipe, both rebuilt here:
Adam with learning rate 1e-2, no weight decay, batches of 100 taken in order
(``x[(step·100) mod 4000 :][:100]``, no shuffling), 8,000 steps (200 epochs of the 4,000
training signals), cross-entropy, the test accuracy measured every 250 steps. The quoted
score is the test accuracy after the last step; the best of the evaluations every 250 steps
is recorded beside it (it picks on the test set, so it is optimistic). The weights start from
chainrule's initialisers (Glorot uniform, zero biases), not PyTorch's.

==========  =========================================================================  =======
``linear``  Dense 40 → 10                                                                  410
``mlp``     h1 = relu(Dense 40 → 100); h2 = h1 + relu(Dense 100 → 100) (a Residual);    15,210
            Dense 100 → 10
``cnn``     three Conv1d (25 channels, kernels 5, 3, 3, stride 2, padding 1), ReLU, as   5,210
            Conv2D over a 1 × 40 image; Dense 125 → 10
``gru``     bidirectional GRU of 6 units over the 40 steps, all outputs, Dense 480 → 10  5,134
==========  =========================================================================  =======

**Fashion-MNIST**: the zoo's ``mlp`` must reach 0.89 and its ``cnn`` 0.92 test accuracy
(:data:`TARGETS`), with the recipes of :data:`FASHION_RECIPES`: all 60,000 training images (no
validation hold-out), Adam 1e-3, batch 128, ``chainrule train``'s halving schedule, more
epochs than ``chainrule train``'s defaults.

:func:`reproduce_mnist1d` and :func:`reproduce_fashion_mnist` return one row per model (mean and
standard deviation over seeds, the sample standard deviation, ddof = 1);
:func:`format_table` prints them. ``chainrule reproduce`` is the command.
"""

from __future__ import annotations

import time

import numpy as np

#: MNIST-1D test accuracies quoted by the reference repository's README
#: (github.com/greydanus/mnist1d; Greydanus 2020, arXiv:2011.14439).
MNIST1D_PUBLISHED = {"linear": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}

#: The reference recipe (train.py's get_model_args, as the README's numbers were made).
MNIST1D_RECIPE = {"learning_rate": 1e-2, "weight_decay": 0.0, "batch_size": 100,
                  "steps": 8000, "eval_every": 250}

#: Parameter counts of the reference PyTorch models (nn.Linear, nn.Conv1d, nn.GRU).
MNIST1D_PARAMETERS = {"linear": 410, "mlp": 15_210, "cnn": 5_210, "gru": 5_134}

MNIST1D_MODELS = ("linear", "mlp", "cnn", "gru")

#: Fashion-MNIST targets of test accuracy.
TARGETS = {"mlp": 0.89, "cnn": 0.92}

#: How each Fashion-MNIST model is trained (all 60,000 training images; see the docstring).
FASHION_RECIPES = {"mlp": {"epochs": 20}, "cnn": {"epochs": 20}}

EXPERIMENTS = ("mnist1d", "fashion-mnist")


# -- MNIST-1D -------------------------------------------------------------------------------------


def mnist1d_model(name: str):
    """The reference model ``name`` (linear, mlp, cnn, gru) as a chainrule Sequential taking
    (batch, 40) signals and returning 10 logits."""
    from chainrule.layers import (
        GRU,
        Activation,
        Bidirectional,
        Conv2D,
        Dense,
        Flatten,
        Reshape,
        Residual,
    )
    from chainrule.models import Input, Sequential

    if name == "linear":
        layers = [Dense(10)]
    elif name == "mlp":
        layers = [Dense(100, activation="relu"),
                  Residual(Sequential([Dense(100), Activation("relu")])),
                  Dense(10)]
    elif name == "cnn":
        layers = [Reshape((1, 1, 40)),
                  Conv2D(25, (1, 5), strides=(1, 2), padding=(0, 1), activation="relu",
                         data_format="channels_first"),
                  Conv2D(25, (1, 3), strides=(1, 2), padding=(0, 1), activation="relu",
                         data_format="channels_first"),
                  Conv2D(25, (1, 3), strides=(1, 2), padding=(0, 1), activation="relu",
                         data_format="channels_first"),
                  Flatten(), Dense(10)]
    elif name == "gru":
        layers = [Reshape((40, 1)), Bidirectional(GRU(6, return_sequences=True)),
                  Flatten(), Dense(10)]
    else:
        raise ValueError(f"unknown MNIST-1D model {name!r}; choose from "
                         f"{', '.join(MNIST1D_MODELS)}")
    return Sequential([Input(shape=(40,)), *layers], name=f"mnist1d_{name}")


def train_mnist1d(name: str, data, seed: int = 0, steps: int | None = None,
                  eval_every: int | None = None) -> dict:
    """Train model ``name`` on ``data = ((x_train, y_train), (x_test, y_test))`` with the
    reference recipe; ``{"final": test accuracy after the last step, "best": the best of the
    evaluations, "curve": [(step, accuracy)], "losses": training losses, "parameters",
    "seconds"}``."""
    import chainrule
    from chainrule import losses, optimizers

    recipe = MNIST1D_RECIPE
    steps = recipe["steps"] if steps is None else steps
    eval_every = recipe["eval_every"] if eval_every is None else eval_every
    (x_train, y_train), (x_test, y_test) = data
    y_train, y_test = np.asarray(y_train, np.int64), np.asarray(y_test, np.int64)
    chainrule.manual_seed(seed)
    model = mnist1d_model(name)
    model.compile(optimizer=optimizers.Adam(learning_rate=recipe["learning_rate"]),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    batch, n = recipe["batch_size"], len(x_train)
    started = time.perf_counter()
    curve, train_losses = [], []
    for step in range(steps):
        start = (step * batch) % n
        train_losses.append(float(model.train_on_batch(x_train[start:start + batch],
                                                       y_train[start:start + batch])))
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            curve.append((step + 1, _accuracy(model, x_test, y_test)))
    return {"final": curve[-1][1] if curve else _accuracy(model, x_test, y_test),
            "best": max(a for _, a in curve) if curve else None, "curve": curve,
            "losses": train_losses, "parameters": model.count_params(),
            "seconds": time.perf_counter() - started}


def _accuracy(model, x, y) -> float:
    logits = model.predict(x, batch_size=1000)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def load_mnist1d(limit: int | None = None):
    from chainrule.datasets import mnist1d

    (x_train, y_train), (x_test, y_test) = mnist1d.load_data()
    if limit is not None:
        x_train, y_train, x_test, y_test = (x_train[:limit], y_train[:limit],
                                            x_test[:limit], y_test[:limit])
    return (x_train, y_train), (x_test, y_test)


def reproduce_mnist1d(seeds: int = 3, steps: int | None = None, limit: int | None = None,
                      models=MNIST1D_MODELS, verbose: int = 1) -> list[dict]:
    """The four reference models, each trained ``seeds`` times (seeds 0..K−1); one row each."""
    _check_counts(seeds=seeds, steps=steps, limit=limit)
    data = load_mnist1d(limit)
    steps = MNIST1D_RECIPE["steps"] if steps is None else steps
    rows = []
    for name in models:
        runs = []
        for seed in range(seeds):
            runs.append(train_mnist1d(name, data, seed, steps))
            if verbose:
                print(f"mnist1d {name} seed {seed}: final test accuracy "
                      f"{runs[-1]['final']:.4f} (best {runs[-1]['best']:.4f}) in "
                      f"{runs[-1]['seconds']:.0f}s", flush=True)
        final = [r["final"] for r in runs]
        best = [r["best"] for r in runs]
        rows.append({"experiment": "mnist1d", "model": name,
                     "parameters": runs[0]["parameters"],
                     "published_parameters": MNIST1D_PARAMETERS[name],
                     "published": MNIST1D_PUBLISHED[name],
                     **_stats("final", final), **_stats("best", best),
                     "seeds": seeds, "steps": steps,
                     "train_samples": len(data[0][1]), "test_samples": len(data[1][1]),
                     "seconds": round(sum(r["seconds"] for r in runs), 1)})
    return rows


# -- Fashion-MNIST --------------------------------------------------------------------------------


def reproduce_fashion_mnist(seeds: int = 2, epochs: int | None = None, limit: int | None = None,
                            models=("mlp", "cnn"), verbose: int = 1) -> list[dict]:
    """The zoo's mlp and cnn trained with :data:`FASHION_RECIPES` (``epochs`` overrides the
    recipes' epochs), ``seeds`` times each; one row each with the pass/fail of the target."""
    from chainrule.baselines import load_pixels, network_inputs, train_network
    from chainrule.metrics import SparseCategoricalAccuracy

    _check_counts(seeds=seeds, epochs=epochs, limit=limit)
    (x_train, y_train), (x_test, y_test) = load_pixels("fashion-mnist", limit)
    rows = []
    for name in models:
        recipe = dict(FASHION_RECIPES[name])
        if epochs is not None:
            recipe["epochs"] = epochs
        x = network_inputs(name, x_train, 255.0)
        x_eval = network_inputs(name, x_test, 255.0)
        accuracies, seconds = [], 0.0
        for seed in range(seeds):
            started = time.perf_counter()
            model = train_network(name, x, y_train, recipe["epochs"], seed,
                                  verbose=2 if verbose else 0)
            accuracies.append(float(SparseCategoricalAccuracy()(
                y_test, model.predict(x_eval, batch_size=256))))
            seconds += time.perf_counter() - started
            if verbose:
                print(f"fashion-mnist {name} seed {seed}: test accuracy {accuracies[-1]:.4f}",
                      flush=True)
        stats = _stats("final", accuracies)
        rows.append({"experiment": "fashion-mnist", "model": name,
                     "recipe": _describe_recipe(recipe), "target": TARGETS[name],
                     **stats, "passed": bool(stats["final_mean"] >= TARGETS[name]),
                     "seeds": seeds, "epochs": recipe["epochs"],
                     "train_samples": len(y_train), "test_samples": len(y_test),
                     "seconds": round(seconds, 1)})
    return rows


def _describe_recipe(recipe: dict) -> str:
    return (f"{recipe['epochs']} epochs, all training samples, Adam 1e-3, batch 128, "
            f"halving schedule")


# -- shared ---------------------------------------------------------------------------------------


def _check_counts(**counts) -> None:
    for name, value in counts.items():
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be >= 1, got {value}")


def _stats(prefix: str, values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {f"{prefix}_mean": round(float(values.mean()), 4), f"{prefix}_std": round(std, 4),
            f"{prefix}_runs": [round(float(v), 4) for v in values]}


def reproduce(experiment: str, seeds: int | None = None, steps: int | None = None,
              epochs: int | None = None, limit: int | None = None, verbose: int = 1):
    """Run ``experiment`` ("mnist1d" or "fashion-mnist"); its rows."""
    if experiment == "mnist1d":
        if epochs is not None:
            _check_counts(epochs=epochs)
            steps = epochs * 4000 // MNIST1D_RECIPE["batch_size"]
        return reproduce_mnist1d(3 if seeds is None else seeds, steps, limit, verbose=verbose)
    if experiment == "fashion-mnist":
        if steps is not None:
            raise ValueError("--steps applies to mnist1d; give --epochs for fashion-mnist")
        return reproduce_fashion_mnist(2 if seeds is None else seeds, epochs, limit,
                                       verbose=verbose)
    raise ValueError(f"unknown experiment {experiment!r}; choose from {', '.join(EXPERIMENTS)}")


def format_table(rows: list[dict]) -> str:
    """The rows as a Markdown table, measured next to published (or the target)."""
    if rows and rows[0]["experiment"] == "fashion-mnist":
        lines = ["| model | recipe | target | test accuracy (mean ± std) | runs | pass |",
                 "|---|---|---:|---:|---|---|"]
        for row in rows:
            lines.append(
                f"| {row['model']} | {row['recipe']} | {row['target']:.2f} | "
                f"{row['final_mean']:.4f} ± {row['final_std']:.4f} | "
                f"{', '.join(f'{v:.4f}' for v in row['final_runs'])} | "
                f"{'pass' if row['passed'] else 'FAIL'} |")
        return "\n".join(lines)
    lines = ["| model | parameters (reference) | published | final test accuracy "
             "(mean ± std) | best of evaluations | seeds × steps |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['parameters']:,} ({row['published_parameters']:,}) | "
            f"{row['published']:.2f} | {row['final_mean']:.4f} ± {row['final_std']:.4f} | "
            f"{row['best_mean']:.4f} ± {row['best_std']:.4f} | "
            f"{row['seeds']} × {row['steps']:,} |")
    return "\n".join(lines)


__all__ = ["FASHION_RECIPES", "MNIST1D_MODELS", "MNIST1D_PUBLISHED", "MNIST1D_RECIPE",
           "TARGETS", "format_table", "mnist1d_model", "reproduce", "reproduce_fashion_mnist",
           "reproduce_mnist1d", "train_mnist1d"]
