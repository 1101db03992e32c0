"""Weight averaging: stochastic weight averaging (SWA), exponential moving averages (EMA) and
the batch-norm statistics pass they need, after ``torch.optim.swa_utils``.

* :class:`AveragedModel` keeps a copy of a model (``.module``, a real chainrule model) whose
  trainable weights are the running average of the model's:

  - ``mode="swa"`` (Izmailov et al., 2018), equal weights:
    θ̄ ← θ̄ + (θ − θ̄) / (n + 1), n the number of models averaged so far;
  - ``mode="ema"``: θ̄ ← decay · θ̄ + (1 − decay) · θ (the first update copies θ);

* :func:`update_bn` recomputes the BatchNormalization moving statistics of the averaged
  weights with one pass over the training data, since averaged weights do not match the
  statistics of any of the models averaged.

The callbacks :class:`chainrule.callbacks.SWA` and :class:`chainrule.callbacks.SnapshotEnsemble`
use them during ``fit``::

    averaged = AveragedModel(model)
    model.fit(x, y, epochs=20, callbacks=[SWA(averaged, start_epoch=15, swa_lr=0.01)])
    update_bn(averaged, x)
    averaged.predict(x_test)
"""

from __future__ import annotations

import numpy as np

from chainrule import backend
from chainrule._config import no_grad
from chainrule.layers.normalization import BatchNormalization
from chainrule.models import training
from chainrule.models.copying import copy_model
from chainrule.models.model import Model
from chainrule.tensor import Tensor

_MODES = ("swa", "ema")


class AveragedModel:
    """A copy of ``model`` whose trainable weights are the running average of ``model``'s.

    Args:
        model: a built chainrule :class:`~chainrule.models.Model`; it is copied (its class
            rebuilt from its config, or deep-copied when that fails) with its weights, and
            compiled like it (same loss and metrics) so :meth:`evaluate` works.
        mode: ``"swa"`` (equal weights, the default) or ``"ema"``.
        decay: the EMA's weight of the old average, in [0, 1) (only used by ``"ema"``).

    The average starts empty (``n_averaged == 0``): call :meth:`update_parameters` to add
    the model's current weights. In ``"swa"`` mode after n updates with weights θ_1 ... θ_n,
    θ̄ = (θ_1 + ... + θ_n) / n, computed as θ̄ ← θ̄ + (θ − θ̄)/(n + 1). In ``"ema"`` mode
    θ̄ ← decay · θ̄ + (1 − decay) · θ, the first update copying θ.

    Only trainable weights (``model.parameters()``) are averaged; the others (BatchNormalization
    moving statistics, frozen layers' weights) are copied from the model at each update, as
    PyTorch's ``AveragedModel`` leaves buffers unaveraged: call :func:`update_bn` afterwards.

    Raises:
        ValueError: ``mode`` is not "swa" or "ema"; ``decay`` is not in [0, 1); ``model`` is
            not built.
        TypeError: ``model`` is not a chainrule model.

    >>> import numpy as np
    >>> from chainrule.layers import Dense
    >>> from chainrule.models import Sequential
    >>> model = Sequential([Dense(1, use_bias=False, input_shape=(1,))])
    >>> averaged = AveragedModel(model)
    >>> for w in (1.0, 2.0, 6.0):
    ...     model.set_weights([np.array([[w]], np.float32)])
    ...     averaged.update_parameters(model)
    >>> averaged.n_averaged, float(averaged.module.get_weights()[0][0, 0])
    (3, 3.0)
    """

    def __init__(self, model, mode: str = "swa", decay: float = 0.999):
        if not isinstance(model, Model):
            raise TypeError(f"AveragedModel: model must be a chainrule model, got "
                            f"{type(model).__name__}")
        if mode not in _MODES:
            raise ValueError(f"AveragedModel: mode must be one of {_MODES}, got {mode!r}")
        decay = float(decay)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"AveragedModel: decay must be in [0, 1), got {decay}")
        self.mode, self.decay = mode, decay
        self.module = copy_model(model, "AveragedModel")
        self.n_averaged = 0

    def update_parameters(self, model) -> None:
        """Add ``model``'s current trainable weights to the average (formulas in the class
        docstring) and copy its other weights (moving statistics) as they are.

        Raises:
            ValueError: ``model``'s weights differ in number or shapes from the averaged copy's.
        """
        own = self.module.named_weights()
        theirs = model.named_weights() if isinstance(model, Model) else None
        if theirs is None or len(theirs) != len(own) or any(
                a.shape != b.shape for (_, a), (_, b) in zip(own, theirs)):
            own_shapes = [tuple(w.shape) for _, w in own]
            their_shapes = None if theirs is None else [tuple(w.shape) for _, w in theirs]
            raise ValueError(f"AveragedModel.update_parameters: model's weights have shapes "
                             f"{their_shapes}, the averaged model's {own_shapes}")
        trainable = {id(w) for w in self.module.parameters()}
        n = self.n_averaged
        for (_, mine), (_, source) in zip(own, theirs):
            target, value = mine.data, source.data
            if id(mine) not in trainable or n == 0:
                target[...] = value
            elif self.mode == "swa":
                target[...] = target + (value - target) / (n + 1)
            else:
                target[...] = self.decay * target + (1.0 - self.decay) * value
        self.n_averaged = n + 1

    def predict(self, x, batch_size: int = 32, **kwargs) -> np.ndarray:
        """``self.module.predict``: the averaged model's outputs."""
        return self.module.predict(x, batch_size=batch_size, **kwargs)

    def evaluate(self, x=None, y=None, batch_size: int = 32, **kwargs):
        """``self.module.evaluate``: the averaged model's loss and metrics (the model given at
        construction must have been compiled with a loss)."""
        return self.module.evaluate(x, y, batch_size=batch_size, **kwargs)

    def __call__(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)

    def parameters(self):
        return self.module.parameters()

    def get_weights(self) -> list[np.ndarray]:
        return self.module.get_weights()

    def __repr__(self) -> str:
        return (f"AveragedModel({self.module.name}, mode={self.mode!r}, "
                f"n_averaged={self.n_averaged})")


def update_bn(averaged_or_model, x, batch_size: int = 32) -> None:
    """Recompute every BatchNormalization's moving mean and variance from the data ``x``.

    As ``torch.optim.swa_utils.update_bn``: the moving statistics are reset (mean 0,
    variance 1), then one pass over ``x`` runs in training mode, recording no graph, with the
    momentum of the k-th batch (k = 1, 2, ...) set to (k − 1)/k, so that
    moving ← (k − 1)/k · moving + 1/k · batch statistic: after K batches the moving mean is
    (1/K) Σ_k μ_k and the moving variance (1/K) Σ_k σ²_k, the plain average of the batch
    statistics (PyTorch's cumulative average, ``momentum=None``; chainrule's variances are the
    biased ones). The layers' modes and momenta are restored afterwards. Frozen
    BatchNormalization layers (``trainable=False``) use their moving statistics and are left
    as they are.

    Args:
        averaged_or_model: an :class:`AveragedModel` (its ``.module`` is updated) or a model.
        x: the inputs: an array, a Dataset or a DataLoader (targets are ignored).
        batch_size: the batch size of the pass over an array.

    Does nothing when the model has no BatchNormalization layer.
    """
    model = getattr(averaged_or_model, "module", averaged_or_model)
    layers = [m for m in model.modules() if isinstance(m, BatchNormalization) and m.built]
    if not layers:
        return
    dtype = model._float_dtype()
    loader = training.make_loader(x, None, batch_size, False, None, dtype, "update_bn")
    momenta = [layer.momentum for layer in layers]
    modes = [(m, m.training) for m in model.modules()]
    for layer in layers:
        xp = backend.get_array_module(layer.moving_mean.data)
        layer.moving_mean.data[...] = xp.zeros_like(layer.moving_mean.data)
        layer.moving_variance.data[...] = xp.ones_like(layer.moving_variance.data)
    model.train()
    try:
        with no_grad():
            for k, batch in enumerate(loader, start=1):
                for layer in layers:
                    layer.momentum = (k - 1) / k
                x_batch, _ = training.split_batch(batch, "update_bn")
                model(Tensor(training.cast_floats(x_batch, dtype)))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for layer, mode in modes:
            layer.training = mode


__all__ = ["AveragedModel", "copy_model", "update_bn"]
