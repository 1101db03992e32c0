"""Normalization layers: BatchNormalization, and the learned Shift and Scale layers.

Shift and Scale are the layers of the thesis this library comes from: a learned constant added to
(Shift) or multiplied with (Scale) every element, channel or layer, placed after the input and
after every activation but the last. They are BatchNormalization's affine part (γ·x̂ + β) without
its statistics, and are compared with it on MLPs and all-convolutional networks.
"""

from __future__ import annotations

from chainrule import config, initializers, regularizers
from chainrule import functional as F
from chainrule.layers import _checks as check
from chainrule.layers.base import InputSpec, _SameShapeLayer


class BatchNormalization(_SameShapeLayer):
    """Batch normalization (Ioffe & Szegedy, 2015), Keras's arguments and update rule.

    Per channel c (``axis``: by default the channel axis of the image layout,
    :func:`chainrule.config.image_data_format`, read when the layer is made: 1 for
    "channels_first", chainrule's default (the features of (N, C) input, the channels of NCHW),
    -1 for "channels_last", Keras's default ``axis=-1``; both are the features of (N, F) input):

    * training mode: x̂ = (x − μ_B) / √(σ²_B + ε) with the mean μ_B and the (biased) variance
      σ²_B over the batch (and spatial) axes, and the moving statistics are updated in place,
      moving ← momentum · moving + (1 − momentum) · batch statistic;
    * evaluation mode: x̂ = (x − moving_mean) / √(moving_variance + ε);

    then y = γ · x̂ + β. ``gamma`` (γ, initialised 1) and ``beta`` (β, 0) are trained by
    gradient; ``moving_mean`` and ``moving_variance`` are non-trainable state, saved with the
    weights. A frozen layer (``trainable = False``) always uses the moving statistics (Keras).
    PyTorch's ``momentum`` is 1 − Keras's, and its running variance is the unbiased one.

    Args:
        axis: the channel axis, or None for the one of the image layout (see above).
        momentum: the weight of the old value in the moving averages.
        epsilon: added to the variance before the square root.
        center, scale: whether to learn β and γ.
        beta_initializer, gamma_initializer, moving_mean_initializer,
            moving_variance_initializer: initializers (names) of the four vectors.
        beta_regularizer, gamma_regularizer: regularizers of β and γ, or None.
    """

    def __init__(self, axis: int | None = None, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        what = "BatchNormalization"
        if not (check.is_real(momentum) and check.is_real(epsilon)
                and 0.0 <= momentum <= 1.0 and epsilon > 0):
            raise ValueError(f"{what}: need 0 <= momentum <= 1 and epsilon > 0, "
                             f"got momentum={momentum!r}, epsilon={epsilon!r}")
        if axis is None:
            axis = 1 if config.image_data_format() == "channels_first" else -1
        self.axis = check.integer(what, "axis", axis)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center = check.flag(what, "center", center)
        self.scale = check.flag(what, "scale", scale)
        check.weight_options(self, what, beta_initializer=beta_initializer,
                             gamma_initializer=gamma_initializer,
                             moving_mean_initializer=moving_mean_initializer,
                             moving_variance_initializer=moving_variance_initializer,
                             beta_regularizer=beta_regularizer,
                             gamma_regularizer=gamma_regularizer)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"layer '{self.name}' (BatchNormalization): axis {self.axis} is out "
                             f"of range for input of shape {tuple(input_shape)}")
        axis = self.axis % ndim
        channels = input_shape[axis]
        self.gamma = self.beta = None
        if self.scale:
            self.gamma = self.add_weight("gamma", (channels,), self.gamma_initializer,
                                         self.gamma_regularizer)
        if self.center:
            self.beta = self.add_weight("beta", (channels,), self.beta_initializer,
                                        self.beta_regularizer)
        self.moving_mean = self.add_weight("moving_mean", (channels,),
                                           self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (channels,),
                                               self.moving_variance_initializer, trainable=False)
        self.input_spec = InputSpec(ndim=ndim, axes={axis: channels})

    def forward(self, x):
        return F.batch_norm(x, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                            training=self.training and self.trainable, momentum=self.momentum,
                            epsilon=self.epsilon, axis=self.axis)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **check.weight_options_config(self, (
                "beta_initializer", "gamma_initializer", "moving_mean_initializer",
                "moving_variance_initializer", "beta_regularizer", "gamma_regularizer")),
        }


class _LearnedConstant(_SameShapeLayer):
    """Shared part of Shift and Scale: one learned weight per element, channel or layer.

    ``mode`` decides the weight's shape for input (N, C, ...):

    * "element": the input shape without the batch axis, (C, ...): one constant per element;
    * "channel": (C,): one constant per channel (axis 1), i.e. per feature of 2-D input;
    * "layer": (): one scalar for the whole layer.
    """

    modes = ("element", "channel", "layer")
    _weight_name: str  # "bias" or "scale"
    _default_initializer: str

    def __init__(self, mode: str = "channel", initializer=None, regularizer=None, **kwargs):
        super().__init__(**kwargs)
        what = type(self).__name__
        if not isinstance(mode, str) or mode not in self.modes:
            raise ValueError(f"{what}: mode must be one of {self.modes}, got {mode!r}")
        self.mode = mode
        self.initializer = check.initializer(
            what, "initializer", self._default_initializer if initializer is None else initializer)
        self.regularizer = check.regularizer(what, "regularizer", regularizer)
        if mode != "layer":
            self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        if self.mode == "element":
            shape = tuple(input_shape[1:])
            if None in shape:
                raise ValueError(f"layer '{self.name}' ({type(self).__name__}, mode='element') "
                                 f"needs a fully known input shape, got {tuple(input_shape)}")
            self.input_spec = InputSpec(ndim=len(input_shape),
                                        axes={i + 1: n for i, n in enumerate(shape)})
        elif self.mode == "channel":
            shape = (input_shape[1],)
            self.input_spec = InputSpec(min_ndim=2, axes={1: input_shape[1]})
        else:
            shape = ()
        self.add_weight(self._weight_name, shape, self.initializer, self.regularizer)

    def _broadcastable(self, weight, x):
        """The weight shaped to broadcast against x: (C,) → (C, 1, ..., 1) in channel mode."""
        if self.mode == "channel" and x.ndim > 2:
            return weight.reshape(weight.shape[0], *(1,) * (x.ndim - 2))
        return weight

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "mode": self.mode,
            "initializer": initializers.serialize(self.initializer),
            "regularizer": check.serialize_or_none(regularizers, self.regularizer),
        }


class Shift(_LearnedConstant):
    """y = x + b: a learned constant b added per element, per channel or per layer.

    b starts at 0 (the layer starts as the identity) and is trained by gradient:
    ∂L/∂b = Σ of ∂L/∂y over the positions that share b (batch and, per mode, the rest).
    With ``mode`` "element" b has the input's shape without the batch axis, with "channel" one
    value per channel (axis 1), with "layer" a single scalar.

    Args:
        mode: "element", "channel" (default) or "layer".
        initializer: initializer of b (default "zeros").
        regularizer: regularizer of b, or None.

    >>> import chainrule as cr
    >>> layer = Shift("channel")
    >>> layer(cr.zeros(2, 3, 4, 4)).shape, layer.bias.shape
    ((2, 3, 4, 4), (3,))
    """

    _weight_name = "bias"
    _default_initializer = "zeros"

    def forward(self, x):
        return x + self._broadcastable(self.bias, x)


class Scale(_LearnedConstant):
    """y = s · x: a learned factor s multiplied per element, per channel or per layer.

    s starts at 1 (the layer starts as the identity) and is trained by gradient:
    ∂L/∂s = Σ of x · ∂L/∂y over the positions that share s. Modes as in :class:`Shift`.

    Args:
        mode: "element", "channel" (default) or "layer".
        initializer: initializer of s (default "ones").
        regularizer: regularizer of s, or None.

    >>> import chainrule as cr
    >>> Scale("layer")(cr.ones(2, 3)).sum().item()
    6.0
    """

    _weight_name = "scale"
    _default_initializer = "ones"

    def forward(self, x):
        return x * self._broadcastable(self.scale, x)
