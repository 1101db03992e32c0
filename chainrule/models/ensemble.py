"""Predictive uncertainty: deep ensembles and Monte-Carlo dropout.

* :class:`Ensemble` averages the class probabilities of several trained models (which may
  differ in architecture), Lakshminarayanan et al. (2017);
* :meth:`chainrule.models.Model.predict_mc` (Gal & Ghahramani, 2016) runs a model several
  times with its dropout layers active; the helpers it uses (:func:`mc_dropout_mode`,
  :func:`seeded_masks`, :func:`softmax`) live in :mod:`chainrule.models.mc_dropout`.
"""

from __future__ import annotations

import numpy as np

from chainrule.layers.base import Layer
from chainrule.models.mc_dropout import mc_dropout_mode, seeded_masks, softmax

#: Rows of a member's output summing to 1 within this (and non-negative) are probabilities.
PROBABILITY_TOLERANCE = 1e-5

#: Probabilities are clipped to at least this before the logarithm of the NLL.
NLL_EPSILON = 1e-12

_OUTPUT_KINDS = ("auto", "logits", "probabilities")


class Ensemble:
    """The weighted mean of its members' class probabilities.

    Args:
        models: a non-empty list of built chainrule models, each giving ``(N, classes)``
            outputs for the same ``classes``; compiling them is not needed.
        weights: optional non-negative member weights (one per model, summing to > 0); they
            are normalised to sum to 1. Default: equal weights.
        output: how each member's ``predict`` output becomes probabilities:

            * ``"auto"`` (default), member by member: a member compiled with a loss that has
              ``from_logits=True`` gives logits (softmax applied); otherwise, outputs whose
              rows are non-negative and sum to 1 within ``1e-5`` are used as they are;
              anything else is taken for logits (softmax applied);
            * ``"logits"``: softmax is applied to every member's outputs;
            * ``"probabilities"``: every member's outputs are used as they are.

    Raises:
        ValueError: ``models`` is empty; the members' output sizes differ (checked here from
            ``output_shape`` when the members know it, else at the first ``predict``);
            ``weights`` has the wrong length, a negative or non-finite entry, or a zero sum;
            ``output`` is not one of the three names.
        TypeError: a member is not a chainrule :class:`~chainrule.models.Model`.

    >>> import numpy as np
    >>> from chainrule.layers import Dense
    >>> from chainrule.models import Ensemble, Sequential
    >>> a = Sequential([Dense(3, input_shape=(4,))])
    >>> b = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3)])
    >>> ensemble = Ensemble([a, b], weights=[2, 1], output="logits")
    >>> p = ensemble.predict(np.zeros((5, 4), np.float32))
    >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0))
    ((5, 3), True)
    """

    def __init__(self, models, weights=None, output: str = "auto"):
        self.models = _check_members(models)
        self.weights = _normalised_weights(weights, len(self.models))
        if output not in _OUTPUT_KINDS:
            raise ValueError(f"Ensemble: output must be one of {_OUTPUT_KINDS}, got {output!r}")
        self.output = output
        _check_output_sizes(self.models, [_declared_classes(m) for m in self.models])

    def member_probabilities(self, x, batch_size: int = 32) -> list[np.ndarray]:
        """Each member's class probabilities for ``x``: a list of ``(N, classes)`` arrays, in
        the order of :attr:`models` (see ``output`` for how outputs become probabilities)."""
        outputs = [np.asarray(m.predict(x, batch_size=batch_size)) for m in self.models]
        _check_output_sizes(self.models, [_output_classes(out, i) for i, out in
                                          enumerate(outputs)])
        return [self._to_probabilities(model, out) for model, out in zip(self.models, outputs)]

    def predict(self, x, batch_size: int = 32) -> np.ndarray:
        """The weighted mean of the members' probabilities for ``x``: ``(N, classes)``, each
        row non-negative and summing to 1 (float64)."""
        probabilities = self.member_probabilities(x, batch_size)
        return sum(w * p for w, p in zip(self.weights, probabilities))

    def evaluate(self, x, y, batch_size: int = 32) -> dict:
        """``{"loss": ..., "accuracy": ...}`` of the averaged probabilities p on ``(x, y)``.

        ``loss`` is the negative log-likelihood mean(−log max(p[i, y_i], 1e-12)) and
        ``accuracy`` the fraction of samples whose argmax p is y_i, both Python floats. ``y``
        holds integer labels ``(N,)`` or one-hot rows ``(N, classes)``.
        """
        probabilities = self.predict(x, batch_size)
        labels = _integer_labels(y, probabilities.shape)
        picked = probabilities[np.arange(len(labels)), labels]
        return {"loss": float(np.mean(-np.log(np.maximum(picked, NLL_EPSILON)))),
                "accuracy": float(np.mean(np.argmax(probabilities, axis=1) == labels))}

    def _to_probabilities(self, model, outputs: np.ndarray) -> np.ndarray:
        """One member's outputs as probabilities (float64), by the rule of ``output``."""
        outputs = outputs.astype(np.float64)
        if self.output == "logits":
            return softmax(outputs)
        if self.output == "probabilities":
            return outputs
        if _loss_from_logits(model) or not looks_like_probabilities(outputs):
            return softmax(outputs)
        return outputs

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        names = ", ".join(m.name for m in self.models)
        return f"Ensemble([{names}], weights={np.round(self.weights, 4).tolist()})"


# -- the ensemble's checks ------------------------------------------------------------------------


def _check_members(models) -> list:
    """``models`` as a list, after checking it is non-empty and holds only chainrule models."""
    if _is_model(models):
        raise TypeError("Ensemble: models must be a list of models, got a single model")
    models = list(models)
    if not models:
        raise ValueError("Ensemble: models is empty; give at least one model")
    for index, model in enumerate(models):
        if not _is_model(model):
            raise TypeError(f"Ensemble: models[{index}] is a {type(model).__name__}, not a "
                            "chainrule model")
    return models


def _is_model(value) -> bool:
    """A chainrule model: a Layer with ``predict`` (checked without importing
    :class:`~chainrule.models.Model`, whose module imports the callbacks that use this one)."""
    return isinstance(value, Layer) and callable(getattr(value, "predict", None))


def _normalised_weights(weights, count: int) -> np.ndarray:
    """The member weights as float64 summing to 1 (equal when ``weights`` is None)."""
    if weights is None:
        return np.full(count, 1.0 / count)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (count,):
        raise ValueError(f"Ensemble: weights must hold one number per model ({count}), got "
                         f"shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"Ensemble: weights must be finite and non-negative, got "
                         f"{weights.tolist()}")
    if weights.sum() <= 0:
        raise ValueError("Ensemble: weights must sum to more than 0")
    return weights / weights.sum()


def _declared_classes(model):
    """The model's output size from its ``output_shape``, or None when it cannot tell yet."""
    try:
        shape = model.output_shape
    except Exception:  # unbuilt, or a layer that cannot compute its output shape
        return None
    if not isinstance(shape, tuple) or not shape or not isinstance(shape[-1], int):
        return None
    return shape[-1]


def _output_classes(outputs: np.ndarray, index: int) -> int:
    """The number of classes in one member's ``predict`` output, which must be 2-D."""
    if outputs.ndim != 2:
        raise ValueError(f"Ensemble: models[{index}] gives outputs of shape {outputs.shape}; "
                         "expected (samples, classes)")
    return outputs.shape[1]


def _check_output_sizes(models, sizes) -> None:
    """Raise naming the first member whose output size differs from the first known one."""
    known = [(i, size) for i, size in enumerate(sizes) if size is not None]
    if not known:
        return
    first, expected = known[0]
    for index, size in known[1:]:
        if size != expected:
            raise ValueError(
                f"Ensemble: models[{index}] ('{models[index].name}') outputs {size} classes "
                f"but models[{first}] ('{models[first].name}') outputs {expected}")


def _loss_from_logits(model) -> bool:
    """Whether the model was compiled with a loss that takes logits (``from_logits=True``)."""
    return bool(getattr(getattr(model, "loss", None), "from_logits", False))


def _integer_labels(y, shape) -> np.ndarray:
    """Integer labels ``(N,)`` from integer labels or one-hot rows, checked against the
    ``(N, classes)`` shape of the probabilities."""
    y = np.asarray(getattr(y, "data", y))
    if y.ndim == 2 and y.shape[1] == shape[1] and shape[1] > 1:
        y = np.argmax(y, axis=1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (shape[0],):
        raise ValueError(f"Ensemble.evaluate: y must be {shape[0]} integer labels or one-hot "
                         f"rows of {shape[1]}, got shape {y.shape}")
    labels = y.astype(np.int64)
    if np.any(labels != y) or np.any(labels < 0) or np.any(labels >= shape[1]):
        raise ValueError(f"Ensemble.evaluate: y must hold class ids in [0, {shape[1]})")
    return labels


# -- shared numerics ------------------------------------------------------------------------------


def looks_like_probabilities(outputs: np.ndarray) -> bool:
    """Whether every row of ``outputs`` is non-negative and sums to 1 within 1e-5."""
    if outputs.ndim < 1 or not np.all(np.isfinite(outputs)) or np.any(outputs < 0):
        return False
    return bool(np.all(np.abs(outputs.sum(axis=-1) - 1.0) <= PROBABILITY_TOLERANCE))


__all__ = ["Ensemble", "looks_like_probabilities", "mc_dropout_mode", "seeded_masks", "softmax"]
