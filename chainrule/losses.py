"""Loss functions with Keras's names: ``loss(y_true, y_pred)`` returns a scalar Tensor.

    >>> import chainrule as cr
    >>> from chainrule import losses
    >>> mse = losses.get("mse")
    >>> mse(cr.tensor([[0.0, 1.0]]), cr.tensor([[1.0, 1.0]])).item()
    0.5

Every loss first computes one value per sample, then applies ``reduction``:

* ``"mean"`` (default; Keras's "sum_over_batch_size" is accepted as a synonym): the mean over
  the samples;
* ``"sum"``: the sum over the samples;
* ``"none"``: the per-sample values.

Per-sample values of the regression losses and of binary cross-entropy are means over the last
axis, as in Keras (so "mean" equals the mean over all elements, as in PyTorch). Input of one
dimension (N,) is one value per sample.

Cross-entropies from probabilities clip them to [ε, 1 − ε] with ε = 1e-7 (Keras's epsilon)
before the logarithm; ``from_logits=True`` uses the fused, stable log-sum-exp ops of
:mod:`chainrule.functional` instead and is the better choice for training.
"""

from __future__ import annotations

import numpy as np

from chainrule import functional as F
from chainrule import ops
from chainrule.ops._util import as_tensor
from chainrule.ops.nn import PickLast
from chainrule.tensor import Tensor

#: Keras's fuzz factor: probabilities are clipped to [EPSILON, 1 − EPSILON] before log.
EPSILON = 1e-7

_REDUCTIONS = {"mean": "mean", "sum_over_batch_size": "mean", "sum": "sum", "none": "none"}


class Loss:
    """Base class: subclasses compute per-sample losses in :meth:`call`; ``__call__`` reduces.

    Args:
        reduction: "mean" (default), "sum" or "none" (see the module docstring).
        name: a name for logs; defaults to the Keras name of the loss.
    """

    #: The Keras name of the loss (what :func:`get` accepts).
    loss_name = "loss"
    #: The reduction used when none is given.
    default_reduction = "mean"

    def __init__(self, reduction: str | None = None, name: str | None = None):
        reduction = self.default_reduction if reduction is None else reduction
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', "
                             f"got {reduction!r}")
        self.reduction = _REDUCTIONS[reduction]
        self.name = name or self.loss_name

    def __call__(self, y_true, y_pred) -> Tensor:
        y_pred = as_tensor(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = ops.astype(y_pred, np.float32 if y_pred.dtype.itemsize <= 4 else np.float64)
        return F.reduce_loss(self.call(y_true, y_pred), self.reduction, type(self).__name__)

    def call(self, y_true, y_pred: Tensor) -> Tensor:
        """The per-sample losses."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    # -- helpers for subclasses --------------------------------------------------------------

    def _matching_target(self, y_true, y_pred: Tensor) -> Tensor:
        """``y_true`` as a Tensor of y_pred's shape and dtype; (N,) and (N, 1) are matched."""
        y_true = as_tensor(y_true, y_pred)
        if y_true.shape != y_pred.shape:
            if y_true.shape + (1,) == y_pred.shape or y_true.shape == y_pred.shape + (1,):
                y_true = ops.reshape(y_true, y_pred.shape)
            else:
                raise ValueError(
                    f"{type(self).__name__}: y_true of shape {y_true.shape} does not match "
                    f"y_pred of shape {y_pred.shape}"
                )
        if y_true.dtype != y_pred.dtype:
            y_true = ops.astype(y_true, y_pred.dtype)
        return y_true

    def _class_labels(self, y_true, y_pred: Tensor):
        """Integer labels of shape y_pred.shape[:-1] ((..., 1) and integral floats accepted)."""
        labels = y_true.data if isinstance(y_true, Tensor) else np.asarray(y_true)
        what = type(self).__name__
        if y_pred.ndim < 1:
            raise ValueError(f"{what}: y_pred must have a class axis, got shape {y_pred.shape}")
        sample_shape = y_pred.shape[:-1]
        if labels.shape == sample_shape + (1,):
            labels = labels.reshape(sample_shape)
        if labels.shape != sample_shape:
            raise ValueError(
                f"{what}: y_true of shape {labels.shape} must hold one integer class per sample, "
                f"shape {sample_shape}, for y_pred of shape {y_pred.shape}"
            )
        if labels.dtype.kind == "f":
            if not np.all(labels == np.round(labels)):
                raise ValueError(f"{what}: y_true must hold integer class ids, got fractions")
            labels = labels.astype(np.int64)
        elif labels.dtype.kind not in "iu":
            raise TypeError(f"{what}: y_true must hold integer class ids, got {labels.dtype}")
        classes = y_pred.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(
                f"{what}: class ids must be in [0, {classes}) for y_pred of shape "
                f"{y_pred.shape}; got min {labels.min()}, max {labels.max()}"
            )
        return _as_label_tensor(y_true, labels)


def _as_label_tensor(y_true, labels) -> Tensor:
    """The checked ``labels`` as a Tensor computed by ops from ``y_true`` where it is a Tensor
    (a reshape, a cast), so a traced step (``chainrule.jit``) reads each batch's labels."""
    if not isinstance(y_true, Tensor):
        return Tensor(labels)
    if y_true.shape != labels.shape:
        y_true = ops.reshape(y_true, labels.shape)
    return y_true if y_true.dtype == labels.dtype else ops.astype(y_true, labels.dtype)


def _mean_last(values: Tensor) -> Tensor:
    """Per-sample mean over the last axis (values of 1-D input are already per sample)."""
    return ops.mean(values, axis=-1) if values.ndim > 1 else values


def _pick_last(values: Tensor, labels: Tensor) -> Tensor:
    """values[..., labels[...]]: the entry of the last axis named by each label."""
    return PickLast()(values, labels)


def _normalised_probabilities(y_pred: Tensor, axis: int = -1) -> Tensor:
    """Rows rescaled to sum to 1, then clipped to [ε, 1 − ε] (Keras)."""
    y_pred = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
    return ops.clip(y_pred, EPSILON, 1 - EPSILON)


# -- classification ------------------------------------------------------------------------------


class CategoricalCrossentropy(Loss):
    """ℓ = −Σ_k y_k log p_k for one-hot (or probability) targets y.

    Args:
        from_logits: y_pred are logits (softmax applied inside, fused and stable) rather than
            probabilities. Probabilities are renormalised to sum to 1 and clipped (Keras).
        axis: the class axis (default last).
    """

    loss_name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False, axis: int = -1, reduction=None, name=None):
        super().__init__(reduction, name)
        self.from_logits, self.axis = from_logits, axis

    def call(self, y_true, y_pred):
        y_true = as_tensor(y_true, y_pred)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"CategoricalCrossentropy: y_true of shape {y_true.shape} must be one-hot with "
                f"y_pred's shape {y_pred.shape} (use SparseCategoricalCrossentropy for class ids)"
            )
        if self.from_logits:
            return F.softmax_cross_entropy(y_pred, y_true, axis=self.axis, reduction="none")
        if y_true.dtype != y_pred.dtype:
            y_true = ops.astype(y_true, y_pred.dtype)
        probabilities = _normalised_probabilities(y_pred, self.axis)
        return -ops.sum(y_true * ops.log(probabilities), axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "axis": self.axis}


class SparseCategoricalCrossentropy(Loss):
    """ℓ = −log p_y for integer class ids y of shape (N,) (or (N, 1)).

    Args:
        from_logits: as :class:`CategoricalCrossentropy`.
    """

    loss_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False, reduction=None, name=None):
        super().__init__(reduction, name)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        labels = self._class_labels(y_true, y_pred)
        if self.from_logits:
            return F.softmax_cross_entropy(y_pred, labels, reduction="none")
        return -_pick_last(ops.log(_normalised_probabilities(y_pred)), labels)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """ℓ = −mean over the last axis of y log p + (1 − y) log(1 − p), targets y in [0, 1].

    Args:
        from_logits: y_pred are logits (σ applied inside, stable: max(x, 0) − x·y +
            log1p(e^−|x|)) rather than probabilities (clipped to [ε, 1 − ε]).
    """

    loss_name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False, reduction=None, name=None):
        super().__init__(reduction, name)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = self._matching_target(y_true, y_pred)
        if self.from_logits:
            values = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
        else:
            p = ops.clip(y_pred, EPSILON, 1 - EPSILON)
            values = -(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))
        return _mean_last(values)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class MultiClassHinge(Loss):
    """The multiclass SVM loss of the lectures: ℓ = Σ_{j ≠ y} max(0, s_j − s_y + margin).

    y_true holds integer class ids (N,), y_pred the class scores (N, C). Registered as "hinge"
    (Keras's "hinge" is the binary hinge loss; this library's "hinge" is the multiclass one) and
    "multiclass_hinge". PyTorch's ``MultiMarginLoss(p=1, margin=1)`` divides the sum by C: this
    loss is C times that.
    """

    loss_name = "multiclass_hinge"

    def __init__(self, margin: float = 1.0, reduction=None, name=None):
        super().__init__(reduction, name)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        labels = self._class_labels(y_true, y_pred)
        correct = _pick_last(y_pred, labels)
        margins = ops.relu(y_pred - ops.reshape(correct, correct.shape + (1,)) + self.margin)
        # the sum over every j includes j = y, whose term is exactly max(0, margin): take it
        # off rather than mask it (a mask made from the labels in Python would be a constant
        # of a traced step)
        return ops.sum(margins, axis=-1) - max(0.0, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


# -- regression ----------------------------------------------------------------------------------


class MeanSquaredError(Loss):
    """ℓ = mean over the last axis of (ŷ − y)²."""

    loss_name = "mean_squared_error"

    def call(self, y_true, y_pred):
        error = y_pred - self._matching_target(y_true, y_pred)
        return _mean_last(error * error)


class MeanAbsoluteError(Loss):
    """ℓ = mean over the last axis of |ŷ − y|."""

    loss_name = "mean_absolute_error"

    def call(self, y_true, y_pred):
        return _mean_last(ops.abs(y_pred - self._matching_target(y_true, y_pred)))


class Huber(Loss):
    """ℓ = mean over the last axis of ½e² where |e| ≤ δ, else δ(|e| − ½δ), e = ŷ − y.

    Computed as ½q² + δ(|e| − q) with q = min(|e|, δ) (Keras's form; PyTorch's HuberLoss).
    """

    loss_name = "huber"

    def __init__(self, delta: float = 1.0, reduction=None, name=None):
        super().__init__(reduction, name)
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        magnitude = ops.abs(y_pred - self._matching_target(y_true, y_pred))
        quadratic = ops.minimum(magnitude, self.delta)
        return _mean_last(quadratic * quadratic * 0.5 + (magnitude - quadratic) * self.delta)

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class SumOfSquares(Loss):
    """The lectures' squared error L = ½ Σ_i Σ_j (ŷ_ij − y_ij)².

    Per sample ½ Σ over all feature axes; the default reduction is "sum" over the samples, so
    the default value is exactly the lecture formula (and its gradient is ŷ − y).
    ``reduction="mean"`` averages the per-sample values instead.
    """

    loss_name = "sum_of_squares"
    default_reduction = "sum"

    def call(self, y_true, y_pred):
        error = y_pred - self._matching_target(y_true, y_pred)
        squares = error * error * 0.5
        return ops.sum(squares, axis=tuple(range(1, squares.ndim))) if squares.ndim > 1 else squares


# -- lookup --------------------------------------------------------------------------------------

_CLASSES = (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
            MultiClassHinge, MeanSquaredError, MeanAbsoluteError, Huber, SumOfSquares)

_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "hinge": MultiClassHinge,
    "multiclass_hinge": MultiClassHinge,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "sum_of_squares": SumOfSquares,
    **{cls.__name__: cls for cls in _CLASSES},
}


def get(identifier):
    """The loss named by ``identifier``.

    Accepts a Keras name ("mse", "categorical_crossentropy", "hinge", ...) or class name, a
    config dict ``{"class_name": ..., "config": {...}}`` (what :func:`serialize` gives), a
    :class:`Loss` subclass (instantiated with defaults), or a callable ``fn(y_true, y_pred)``
    (returned as is). ``None`` gives ``None``.
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_NAME.get(identifier.lower())
        if cls is None:
            known = ", ".join(sorted(k for k in _BY_NAME if k.islower()))
            raise ValueError(f"unknown loss {identifier!r}; known names: {known}")
        return cls()
    if isinstance(identifier, dict):
        cls = _BY_NAME.get(identifier.get("class_name", ""))
        if cls is None:
            raise ValueError(f"losses.get: unknown class_name in {identifier!r}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"losses.get: cannot interpret {identifier!r} as a loss")


def serialize(loss) -> dict:
    """``{"class_name": ..., "config": ...}`` of a built-in loss (what :func:`get` takes back)."""
    if not isinstance(loss, Loss):
        raise ValueError(f"losses.serialize: {loss!r} is not a chainrule.losses.Loss")
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


__all__ = ["EPSILON", "BinaryCrossentropy", "CategoricalCrossentropy", "Huber", "Loss",
           "MeanAbsoluteError", "MeanSquaredError", "MultiClassHinge",
           "SparseCategoricalCrossentropy", "SumOfSquares", "get", "serialize"]
