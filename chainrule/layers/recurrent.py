"""Recurrent layers: SimpleRNN, LSTM and GRU, and the Bidirectional and TimeDistributed wrappers.

A recurrent layer reads a sequence (batch, time, features), batch first as in Keras, and carries a
state from step to step (the cells are written out in :mod:`chainrule.ops.nn_recurrent`)::

    SimpleRNN   h_t = tanh(x_t·W + h_{t−1}·U + b)
    LSTM        c_t = f ⊙ c_{t−1} + i ⊙ ĉ,   h_t = o ⊙ tanh(c_t)     (gates i, f, ĉ, o)
    GRU         h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ                     (gates z, r, ĥ)

It returns the last hidden state h_T (batch, units), or every h_t (batch, time, units) with
``return_sequences=True``; ``return_state=True`` appends the final states ([output, h_T] or, for
the LSTM, [output, h_T, c_T]). ``layer(x, initial_state=[h0, c0])`` starts from given states
(zeros otherwise).

Weights follow Keras: ``kernel`` (input_dim, k·units), ``recurrent_kernel`` (units, k·units) and
``bias``, k = 1, 4, 3. With PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (batch_first=True):

* SimpleRNN, LSTM: kernel = weight_ih_l0ᵀ, recurrent_kernel = weight_hh_l0ᵀ,
  bias = bias_ih_l0 + bias_hh_l0 (the LSTM gate order i, f, g, o is the same in both).
* GRU (``reset_after=True``): Keras orders the gates z, r, h and PyTorch r, z, n, so the first
  two blocks swap: kernel = [W_iz; W_ir; W_in]ᵀ, recurrent_kernel = [W_hz; W_hr; W_hn]ᵀ,
  bias = [[b_iz, b_ir, b_in], [b_hz, b_hr, b_hn]] (rows: input bias, recurrent bias).

By default the time loop runs as one fused op (forward and backpropagation through time on
arrays, no graph node per step); ``unroll=True`` runs the cell built from primitive ops once per
step instead, which is slower but differentiable to any order and accepts any activation.

>>> import chainrule as cr
>>> lstm = LSTM(8, return_sequences=True)
>>> lstm(cr.randn(2, 5, 3)).shape
(2, 5, 8)
>>> [w.shape for w in lstm.weights]
[(3, 32), (8, 32), (32,)]
"""

from __future__ import annotations

import numpy as np

from chainrule import activations
from chainrule._config import get_default_dtype
from chainrule.layers import _checks as check
from chainrule.layers.base import InputSpec, Layer, deserialize, serialize
from chainrule.ops import nn_recurrent as R
from chainrule.ops.shape import concat
from chainrule.tensor import Tensor


def _activation_name(function) -> str | None:
    """The built-in name of an activation function ("tanh"), or None for one of one's own."""
    try:
        return activations.serialize(function)
    except ValueError:
        return None


class _Recurrent(Layer):
    """What SimpleRNN, LSTM and GRU share: arguments, weights, states and output conventions.

    A subclass sets ``_gates`` (the k of the weight shapes), ``_state_names`` and implements
    ``_run(x, states) -> (sequence, *final_states)``.
    """

    _gates = 1
    _state_names: tuple = ("h",)

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, **kwargs):
        super().__init__(**kwargs)
        what = type(self).__name__
        self.units = check.positive_int(what, "units", units)
        self.activation = check.activation(what, "activation", activation)
        self.use_bias = check.flag(what, "use_bias", use_bias)
        check.weight_options(self, what, kernel_initializer=kernel_initializer,
                             recurrent_initializer=recurrent_initializer,
                             bias_initializer=bias_initializer,
                             kernel_regularizer=kernel_regularizer,
                             recurrent_regularizer=recurrent_regularizer,
                             bias_regularizer=bias_regularizer)
        self.return_sequences = check.flag(what, "return_sequences", return_sequences)
        self.return_state = check.flag(what, "return_state", return_state)
        self.go_backwards = check.flag(what, "go_backwards", go_backwards)
        self.stateful = check.flag(what, "stateful", stateful)
        self.unroll = check.flag(what, "unroll", unroll)
        self.states = None  # the carried states of a stateful layer (detached), or None
        self.input_spec = InputSpec(ndim=3)

    # -- weights ------------------------------------------------------------------------------

    def build(self, input_shape):
        features, width = input_shape[-1], self._gates * self.units
        self.kernel = self.add_weight("kernel", (features, width), self.kernel_initializer,
                                      self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer,
                                                self.recurrent_regularizer)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", self._bias_shape(), self._full_bias_initializer(),
                                        self.bias_regularizer)
        self.input_spec = InputSpec(ndim=3, axes={-1: features})

    def _bias_shape(self) -> tuple:
        return (self._gates * self.units,)

    def _full_bias_initializer(self):
        return self.bias_initializer

    # -- calling ------------------------------------------------------------------------------

    def forward(self, x, initial_state=None):
        """Run over the sequence ``x`` (batch, time, features); see the class docstring."""
        if x.dtype != self.kernel.dtype:
            x = x.astype(self.kernel.dtype)
        if self.go_backwards:
            x = x[:, ::-1]
        states = self._initial_states(x, initial_state)
        sequence, *final = self._run(x, states)
        if self.stateful:
            self.states = [s.detach() for s in final]
        output = sequence if self.return_sequences else final[0]
        return [output, *final] if self.return_state else output

    def _initial_states(self, x, initial_state) -> list[Tensor]:
        """The given states, a stateful layer's carried states, or zeros; checked."""
        batch, count = x.shape[0], len(self._state_names)
        if initial_state is None and self.stateful and self.states is not None:
            initial_state = self.states
        if initial_state is None:
            zeros = np.zeros((batch, self.units), dtype=self.kernel.dtype)
            return [Tensor(zeros) for _ in range(count)]
        if isinstance(initial_state, (Tensor, np.ndarray)):
            initial_state = [initial_state]
        states = [s if isinstance(s, Tensor) else Tensor(np.asarray(s, self.kernel.dtype))
                  for s in initial_state]
        if len(states) != count:
            raise ValueError(f"layer '{self.name}' ({type(self).__name__}) takes {count} "
                             f"initial state(s) {list(self._state_names)}, got {len(states)}")
        for name, state in zip(self._state_names, states):
            if state.shape != (batch, self.units):
                hint = (" (a stateful layer keeps the batch size of its states: call "
                        "reset_states())" if self.stateful else "")
                raise ValueError(
                    f"layer '{self.name}' ({type(self).__name__}): initial state {name} must "
                    f"have shape {(batch, self.units)} for input of shape {x.shape}, got "
                    f"{state.shape}{hint}")
        return [s if s.dtype == self.kernel.dtype else s.astype(self.kernel.dtype)
                for s in states]

    def reset_states(self, states=None) -> None:
        """Forget the carried states of a stateful layer (zeros at the next call), or set them.

        Truncated backpropagation through time: a stateful layer starts each call from the
        final states of the previous one, detached (no gradient flows between calls).
        """
        if not self.stateful:
            raise AttributeError(f"layer '{self.name}' is not stateful (stateful=False)")
        if states is not None:
            states = [states] if isinstance(states, (Tensor, np.ndarray)) else list(states)
            dtype = self.kernel.dtype if self.built else self.dtype or get_default_dtype()
            states = [Tensor(np.array(s.data if isinstance(s, Tensor) else s, dtype=dtype))
                      for s in states]
        self.states = states

    def _bias_or_none(self):
        return self.bias if self.use_bias else None

    # -- shapes and configuration -------------------------------------------------------------

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape[0], input_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [output] + [(batch, self.units)] * len(self._state_names)
        return output

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **check.weight_options_config(self, (
                "kernel_initializer", "recurrent_initializer", "bias_initializer",
                "kernel_regularizer", "recurrent_regularizer", "bias_regularizer")),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
        }


class SimpleRNN(_Recurrent):
    """The Elman recurrent layer of the lectures: h_t = g(x_t·W + h_{t−1}·U + b).

    Weights: ``kernel`` W (input_dim, units), ``recurrent_kernel`` U (units, units), ``bias``
    (units,). Parameters: (input_dim + units + 1)·units. Matches PyTorch's ``nn.RNN``
    (kernel = weight_ih_l0ᵀ, recurrent_kernel = weight_hh_l0ᵀ, bias = bias_ih_l0 + bias_hh_l0).

    Args:
        units: the size of the hidden state.
        activation: g (default "tanh"); "tanh", "sigmoid", "relu" and "linear" run fused.
        use_bias: whether to add ``bias``.
        kernel_initializer, recurrent_initializer, bias_initializer: default glorot_uniform,
            orthogonal, zeros (Keras's).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers, or None.
        return_sequences: return every h_t (batch, time, units) instead of h_T (batch, units).
        return_state: also return the final state: [output, h_T].
        go_backwards: read the sequence from its end; the returned sequence is in that order.
        stateful: start each call from the final state of the previous one, detached
            (truncated BPTT); :meth:`reset_states` forgets it.
        unroll: run the cell from primitive ops step by step (any order of derivatives) instead
            of the fused loop.

    >>> import chainrule as cr
    >>> SimpleRNN(4)(cr.randn(2, 7, 3)).shape
    (2, 4)
    """

    def _run(self, x, states):
        name = _activation_name(self.activation)
        if self.unroll or name not in R.FUSED_ACTIVATIONS:
            return R.simple_rnn_unrolled(x, states[0], self.kernel, self.recurrent_kernel,
                                         self._bias_or_none(), self.activation)
        return R.simple_rnn(x, states[0], self.kernel, self.recurrent_kernel,
                            self._bias_or_none(), name)


class _GatedRecurrent(_Recurrent):
    """LSTM and GRU: a ``recurrent_activation`` for the gates besides ``activation``."""

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = check.activation(type(self).__name__, "recurrent_activation",
                                                     recurrent_activation)

    def _fused(self) -> bool:
        """Whether the fused loop runs this layer: Keras's default activations, not unrolled."""
        return (not self.unroll and _activation_name(self.activation) == "tanh"
                and _activation_name(self.recurrent_activation) == "sigmoid")

    def get_config(self) -> dict:
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation)}


class LSTM(_GatedRecurrent):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), Keras's layer.

    z = x_t·W + h_{t−1}·U + b split into gates [i, f, ĉ, o];
    c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(ĉ);  h_t = σ(o) ⊙ tanh(c_t).

    The cell state c is updated additively, so its gradient flows back through time multiplied
    only by the forget gates: the cure of the vanishing gradient of the SimpleRNN.

    Weights: ``kernel`` (input_dim, 4·units), ``recurrent_kernel`` (units, 4·units), ``bias``
    (4·units,), gate blocks i, f, c, o (PyTorch's ``nn.LSTM`` order too: kernel =
    weight_ih_l0ᵀ, recurrent_kernel = weight_hh_l0ᵀ, bias = bias_ih_l0 + bias_hh_l0).
    Parameters: 4·(input_dim + units + 1)·units.

    Args:
        units: the size of the hidden and cell states.
        activation, recurrent_activation: tanh and σ above (Keras's defaults run fused).
        unit_forget_bias: initialise the forget gate's bias to 1 (Jozefowicz et al., 2015), so
            the cell remembers by default.
        The other arguments are :class:`SimpleRNN`'s; states are [h, c]:
        ``layer(x, initial_state=[h0, c0])``, ``return_state`` gives [output, h_T, c_T].

    >>> import chainrule as cr
    >>> out, h, c = LSTM(4, return_state=True)(cr.randn(2, 7, 3))
    >>> out.shape, c.shape
    ((2, 4), (2, 4))
    """

    _gates = 4
    _state_names = ("h", "c")

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias: bool = True, **kwargs):
        super().__init__(units, activation, recurrent_activation, **kwargs)
        self.unit_forget_bias = check.flag("LSTM", "unit_forget_bias", unit_forget_bias)

    def _full_bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units

        def forget_bias_one(shape, dtype=None):
            """Keras's unit_forget_bias: [init(units), ones(units), init(2·units)]."""
            return np.concatenate([np.asarray(base((units,), dtype=dtype)),
                                   np.ones(units, dtype=dtype),
                                   np.asarray(base((2 * units,), dtype=dtype))])

        return forget_bias_one

    def _run(self, x, states):
        h0, c0 = states
        if self._fused():
            return R.lstm(x, h0, c0, self.kernel, self.recurrent_kernel, self._bias_or_none())
        return R.lstm_unrolled(x, h0, c0, self.kernel, self.recurrent_kernel,
                               self._bias_or_none(), self.activation, self.recurrent_activation)

    def get_config(self) -> dict:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_GatedRecurrent):
    """Gated recurrent unit (Cho et al., 2014), Keras's layer, gates in the order z, r, h.

    [z, r] = σ(x_t·W_zr + h_{t−1}·U_zr + b_zr);  h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ with
    ĥ = tanh(x_t·W_h + b_h + r ⊙ (h_{t−1}·U_h + b′_h)) when ``reset_after`` (the default, as in
    Keras 2+ and cuDNN; bias (2, 3·units) = [input bias; recurrent bias]), or
    ĥ = tanh(x_t·W_h + (r ⊙ h_{t−1})·U_h + b_h) otherwise (bias (3·units,)).

    PyTorch's ``nn.GRU`` is the ``reset_after`` cell with the gate blocks ordered r, z, n: swap
    the first two blocks (kernel = [W_iz; W_ir; W_in]ᵀ, ...; see the module docstring).
    Parameters: 3·(input_dim + units + 2)·units with ``reset_after``.

    Args:
        units: the size of the hidden state.
        reset_after: where the reset gate applies (above).
        The other arguments are :class:`SimpleRNN`'s and :class:`LSTM`'s activations.

    >>> import chainrule as cr
    >>> GRU(4, return_sequences=True)(cr.randn(2, 7, 3)).shape
    (2, 7, 4)
    """

    _gates = 3

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 reset_after: bool = True, **kwargs):
        super().__init__(units, activation, recurrent_activation, **kwargs)
        self.reset_after = check.flag("GRU", "reset_after", reset_after)

    def _bias_shape(self) -> tuple:
        width = self._gates * self.units
        return (2, width) if self.reset_after else (width,)

    def _run(self, x, states):
        if self._fused():
            return R.gru(x, states[0], self.kernel, self.recurrent_kernel, self._bias_or_none(),
                         self.reset_after)
        return R.gru_unrolled(x, states[0], self.kernel, self.recurrent_kernel,
                              self._bias_or_none(), self.reset_after, self.activation,
                              self.recurrent_activation)

    def get_config(self) -> dict:
        return {**super().get_config(), "reset_after": self.reset_after}


# -- wrappers -------------------------------------------------------------------------------------

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards, and merge the two outputs.

    The backward copy (``go_backwards`` flipped, its own weights) reads the sequence from the end;
    with ``return_sequences`` its outputs are reversed back so that step t of both directions
    lines up, as in Keras and PyTorch's ``bidirectional=True``.

    Args:
        layer: a SimpleRNN, LSTM or GRU (the forward direction).
        merge_mode: "concat" (default; 2·units features), "sum", "mul", "ave", or None for the
            list [forward output, backward output].
        backward_layer: the backward direction, if not a copy of ``layer``.

    ``initial_state`` is the forward states followed by the backward states; ``return_state``
    (of the wrapped layer) appends the forward then the backward final states.

    >>> import chainrule as cr
    >>> Bidirectional(LSTM(4, return_sequences=True))(cr.randn(2, 7, 3)).shape
    (2, 7, 8)
    """

    def __init__(self, layer: Layer, merge_mode: str | None = "concat",
                 backward_layer: Layer | None = None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"Bidirectional: expected a SimpleRNN, LSTM or GRU to wrap, got "
                            f"{type(layer).__name__}")
        check.one_of("Bidirectional", "merge_mode", merge_mode, _MERGE_MODES)
        if backward_layer is not None and not isinstance(backward_layer, _Recurrent):
            raise TypeError(f"Bidirectional: backward_layer must be a SimpleRNN, LSTM or GRU, "
                            f"got {type(backward_layer).__name__}")
        if backward_layer is None:
            config = {**layer.get_config(), "name": f"backward_{layer.name}",
                      "go_backwards": not layer.go_backwards}
            backward_layer = type(layer).from_config(config)
        self.forward_layer, self.backward_layer = layer, backward_layer
        self.merge_mode = merge_mode
        self.return_sequences, self.return_state = layer.return_sequences, layer.return_state
        self.input_spec = InputSpec(ndim=3)

    def build(self, input_shape):
        for layer in (self.forward_layer, self.backward_layer):
            if not layer.built:
                layer._build(input_shape)

    def forward(self, x, initial_state=None):
        forward_states = backward_states = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_states, backward_states = initial_state[:half], initial_state[half:]
        y_forward = self.forward_layer(x, initial_state=forward_states)
        y_backward = self.backward_layer(x, initial_state=backward_states)
        states = []
        if self.return_state:
            y_forward, *forward_final = y_forward
            y_backward, *backward_final = y_backward
            states = forward_final + backward_final
        if self.return_sequences:
            y_backward = y_backward[:, ::-1]
        merged = self._merge(y_forward, y_backward)
        merged = merged if isinstance(merged, list) else [merged]
        return merged + states if self.return_state or len(merged) > 1 else merged[0]

    def _merge(self, a, b):
        if self.merge_mode == "concat":
            return concat([a, b], axis=-1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        if self.merge_mode == "ave":
            return (a + b) * 0.5
        return [a, b]

    def reset_states(self, states=None) -> None:
        """Reset both directions (see :meth:`LSTM.reset_states`)."""
        half = None if states is None else len(states) // 2
        self.forward_layer.reset_states(None if states is None else states[:half])
        self.backward_layer.reset_states(None if states is None else states[half:])

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        output, states = (shape[0], shape[1:]) if self.return_state else (shape, [])
        if self.merge_mode == "concat":
            output = (*output[:-1], 2 * output[-1])
        outputs = [output, output] if self.merge_mode is None else [output]
        return outputs + states + states if self.return_state or len(outputs) > 1 else output

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": serialize(self.forward_layer),
                "merge_mode": self.merge_mode,
                "backward_layer": serialize(self.backward_layer)}

    @classmethod
    def from_config(cls, config: dict) -> Bidirectional:
        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize(config["backward_layer"])
        return cls(**config)


class TimeDistributed(Layer):
    """Apply ``layer`` to every time step: y[:, t] = layer(x[:, t]), with shared weights.

    The batch and time axes are merged, (batch·time, ...), for one call of ``layer``, then split
    again, as in Keras.

    >>> import chainrule as cr
    >>> from chainrule.layers.core import Dense
    >>> TimeDistributed(Dense(5))(cr.randn(2, 7, 3)).shape
    (2, 7, 5)
    """

    def __init__(self, layer: Layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed: expected a Layer to wrap, got "
                            f"{type(layer).__name__}")
        self.layer = layer
        self.input_spec = InputSpec(min_ndim=3)

    @staticmethod
    def _merged_shape(input_shape):
        batch, steps = input_shape[0], input_shape[1]
        merged = None if batch is None or steps is None else batch * steps
        return (merged, *input_shape[2:])

    def build(self, input_shape):
        if not self.layer.built:
            self.layer._build(self._merged_shape(input_shape))

    def forward(self, x):
        batch, steps = x.shape[:2]
        y = self.layer(x.reshape(batch * steps, *x.shape[2:]))
        return y.reshape(batch, steps, *y.shape[1:])

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(self._merged_shape(input_shape))
        return (input_shape[0], input_shape[1], *inner[1:])

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config: dict) -> TimeDistributed:
        return cls(**{**config, "layer": deserialize(config["layer"])})


__all__ = ["GRU", "LSTM", "Bidirectional", "SimpleRNN", "TimeDistributed"]
