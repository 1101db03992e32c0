"""Keras's functional API: ``chainrule.Model(inputs, outputs)`` over a graph of layer calls.

``Input(shape=...)`` returns a :class:`SymbolicTensor` (Keras's KerasTensor): a shape whose batch
axis is None, a dtype, and the call that produced it. Calling any layer on symbolic tensors
computes no data: it builds the layer for their shapes, records the call (a :class:`Node`) and
returns new symbolic tensors. ``Model(inputs, outputs)`` then collects the calls between them
into a :class:`Functional` model, whose ``forward`` replays the calls, in order, on real
Tensors::

    inputs = Input(shape=(40, 1))
    x = Flatten()(inputs)
    x = Dense(32, activation="relu")(x)
    outputs = Dense(1)(x)
    model = Model(inputs, outputs)

Several inputs (``Model([a, b], y)``; ``fit``/``predict`` then take a list or a dict of arrays),
several outputs (``predict`` returns a list; training sums their losses, see below), shared layers
(one layer called twice: one set of weights) and models used as layers all work. Weights are
named ``<layer name>.<weight>`` in ``state_dict()``; ``save`` / ``load_model`` store the graph
as layer configs and connections (JSON, no pickle).

A model of several outputs trains on the weighted sum of one loss per output (Keras's rule):
``compile(loss=[loss_a, loss_b] or {"out_a": loss_a, ...} or one loss for all,
loss_weights=[1.0, 0.5] or {...})``, and ``fit(x, [y_a, y_b])`` or ``fit(x, {"out_a": y_a,
...})`` (outputs named by the layer that makes them). The logs hold that total ``loss``;
per-output losses and metrics are not logged (``compile`` refuses ``metrics`` for such a
model: evaluate an output with ``predict``).
"""

from __future__ import annotations

import itertools

import numpy as np

from chainrule._config import get_default_dtype, no_grad
from chainrule.layers.base import Layer, deserialize, serialize
from chainrule.models import training
from chainrule.models.input_layer import InputLayer
from chainrule.models.model import Model, _restore_modes, register_functional
from chainrule.tensor import Tensor

# -- the loss of several outputs ----------------------------------------------------------------


class SumOfLosses:
    """L = Σ_k w_k · loss_k(y_k, ŷ_k): the loss of a model of several outputs (Keras's rule).
    ``y_true`` is the targets packed by output (a structured array's fields), ``y_pred`` the
    list of the outputs."""

    def __init__(self, losses: list, weights: list):
        from chainrule import losses as losses_module

        self.losses = [losses_module.get(loss) for loss in losses]
        self.weights = [float(w) for w in weights]

    def __call__(self, y_true, y_pred):
        packed = y_true.data if isinstance(y_true, Tensor) else np.asarray(y_true)
        total = None
        for field, loss, weight, prediction in zip(packed.dtype.names, self.losses,
                                                   self.weights, y_pred):
            term = loss(Tensor(np.ascontiguousarray(packed[field])), prediction) * weight
            total = term if total is None else total + term
        return total

    def get_config(self) -> dict:
        return {"losses": [type(loss).__name__ for loss in self.losses],
                "weights": self.weights}


# -- symbolic tensors -----------------------------------------------------------------------------


class Node:
    """One call of a layer on symbolic tensors: ``outputs = layer(*args, **kwargs)``.

    ``args`` and ``kwargs`` hold :class:`SymbolicTensor` items (also inside lists, tuples and
    dicts) and plain values; ``training`` is the call's ``training=`` argument (None: the
    model's mode). An Input is a node of an InputLayer with no arguments.
    """

    _made = itertools.count()  # the order of the calls, a topological order of the graph

    def __init__(self, layer, args=(), kwargs=None, training=None):
        self.order = next(Node._made)
        self.layer, self.args, self.kwargs = layer, tuple(args), dict(kwargs or {})
        self.training = training
        self.outputs: list[SymbolicTensor] = []

    def parents(self) -> list[Node]:
        """The nodes whose outputs this call reads, in argument order."""
        found = []
        for t in _symbolic_items((self.args, self.kwargs)):
            if t.node not in found:
                found.append(t.node)
        return found


class SymbolicTensor:
    """A placeholder for data of a known shape: what ``Input`` returns and what layers called
    on placeholders return (Keras's KerasTensor). It holds no values.

    Attributes:
        shape: the shape, batch axis first and None (``(None, 40, 1)``).
        dtype: the NumPy dtype of the data it stands for.
        node, index: the call that made it and its position among that call's outputs.
        name: the name of the layer that made it.
    """

    is_symbolic = True  # how Layer.__call__ recognises it

    def __init__(self, shape, dtype, node: Node, index: int = 0):
        self.shape = tuple(None if n is None else int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.node, self.index = node, index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        return self.node.layer.name

    def __repr__(self) -> str:
        return (f"<SymbolicTensor shape={self.shape}, dtype={self.dtype.name}, "
                f"name={self.name}>")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is a placeholder from the functional API and holds no "
                        "data; call a layer or a model on it, or call the model on arrays")

    def __bool__(self):
        raise TypeError(f"{self!r} holds no data, so it has no truth value")

    @staticmethod
    def call_layer(layer: Layer, args, training=None, kwargs=None):
        """What ``layer(*args, **kwargs)`` does when an argument is symbolic: build the layer
        by calling it once on zeros of the symbolic shapes (batch of 1, evaluation mode, no
        graph), record the call and return symbolic outputs of the output shapes."""
        kwargs = dict(kwargs or {})
        modes = [(sub, sub.training) for sub in layer.modules()]
        try:
            result = _sample_call(layer, args, kwargs)
        except (ValueError, TypeError, IndexError, NotImplementedError) as error:
            shapes = [t.shape for t in _symbolic_items((args, kwargs))]
            shown = shapes[0] if len(shapes) == 1 else shapes
            raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) cannot be called "
                             f"on input of shape {shown}: {error}") from error
        finally:
            _restore_modes(modes)
        node = Node(layer, args, kwargs, training)
        return _symbolic_outputs(result, node, layer)


#: Keras's name for the same thing.
KerasTensor = SymbolicTensor


def Input(shape=None, batch_size=None, dtype=None, name=None,  # noqa: N802
          batch_shape=None) -> SymbolicTensor:
    """Keras's ``Input``: a :class:`SymbolicTensor` for data of ``shape`` (one sample's shape,
    without the batch axis), to start a functional model or a :class:`Sequential`.

    Args:
        shape: one sample's shape, e.g. ``(784,)`` or ``(40, 1)``; None for a free size.
        batch_size: a fixed batch size (default None: any).
        dtype: the data's dtype (default: chainrule's default float dtype); "int64" for
            token ids fed to an Embedding.
        name: the input's name (default "input_layer", numbered); dict inputs use it.
        batch_shape: ``(batch_size, *shape)`` in one argument, instead of both.

    >>> Input(shape=(40, 1)).shape
    (None, 40, 1)
    """
    if batch_shape is not None:
        if shape is not None:
            raise ValueError("Input: give shape= or batch_shape=, not both")
        batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name)
    return input_tensor(layer)


def input_tensor(layer) -> SymbolicTensor:
    """The symbolic tensor an InputLayer stands for (one node, no arguments)."""
    node = Node(layer)
    dtype = layer.dtype if layer.dtype is not None else get_default_dtype()
    tensor = SymbolicTensor((layer.batch_size, *layer.shape), dtype, node)
    node.outputs.append(tensor)
    layer.__dict__["_symbolic_output"] = tensor
    return tensor


# -- the functional model -------------------------------------------------------------------------


class Functional(Model):
    """A model made of the layer calls between ``inputs`` and ``outputs`` (made by
    ``Model(inputs, outputs)``).

    Args:
        inputs: a symbolic tensor from :func:`Input`, a list of them, or a dict
            ``{name: tensor}`` (then ``fit``/``predict`` take a dict of arrays by those names,
            or a list in that order).
        outputs: a symbolic tensor made from the inputs by layers, or a list of them.
        name: the model's name (default "functional", numbered).
        trainable: False freezes every layer.

    ``model.layers`` lists the InputLayers and the layers in the order they are called (each
    once, even when shared); ``model.inputs`` / ``model.outputs`` are the symbolic tensors.
    """

    def __init__(self, inputs, outputs, name: str | None = None, trainable: bool = True,
                 dtype=None):
        super().__init__(name=name, trainable=trainable, dtype=dtype)
        self._input_keys = list(inputs) if isinstance(inputs, dict) else None
        flat_inputs = _as_list(inputs, "inputs", self.name)
        self._single_input = not isinstance(inputs, (list, tuple, dict))
        self._single_output = not isinstance(outputs, (list, tuple))
        flat_outputs = _as_list(outputs, "outputs", self.name)
        for t in flat_inputs:
            if not _is_input(t):
                raise ValueError(f"Model '{self.name}': inputs must come from Input(...); "
                                 f"{t!r} was made by layer '{t.name}'")
        nodes = sorted(_reachable(flat_outputs), key=lambda node: node.order)
        given = {id(t.node) for t in flat_inputs}
        for node in nodes:
            if _is_input(node.outputs[0]) and id(node) not in given:
                raise ValueError(f"Model '{self.name}': the outputs depend on the input "
                                 f"'{node.layer.name}', which is not among the model's inputs")
        firsts = [t.node for t in flat_inputs]  # the inputs first, in the order given
        nodes = firsts + [node for node in nodes if not any(node is n for n in firsts)]
        self.__dict__.update(_nodes=nodes, _inputs=flat_inputs, _outputs=flat_outputs)
        self._register_layers()
        shapes = [t.shape for t in flat_inputs]
        self._input_dtype = flat_inputs[0].node.layer.dtype if len(shapes) == 1 else None
        self._record_build(shapes[0] if len(shapes) == 1 else shapes)
        self._last_output_shape = flat_outputs[0].shape if self._single_output else None

    def _register_layers(self) -> None:
        layers, names = [], {}
        for node in self._nodes:
            layer = node.layer
            if any(layer is seen for seen in layers):
                continue
            if layer.name in names:
                raise ValueError(f"Model '{self.name}': two different layers are named "
                                 f"'{layer.name}'; layer names must be unique in a model")
            names[layer.name] = layer
            layers.append(layer)
        self.__dict__["_graph_layers"] = layers
        for layer in layers:
            self._children[layer.name] = layer  # weights are named "<layer name>.<weight>"

    # -- what it is made of ---------------------------------------------------------------------

    @property
    def layers(self) -> list[Layer]:
        """The InputLayers, then the layers in calling order, each once (a new list)."""
        return list(self._graph_layers)

    @property
    def inputs(self) -> list[SymbolicTensor]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[SymbolicTensor]:
        return list(self._outputs)

    @property
    def input_names(self) -> list[str]:
        return self._input_keys or [t.name for t in self._inputs]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name`` (or at position ``index`` of :attr:`layers`)."""
        if index is not None:
            return self._graph_layers[index]
        for layer in self._graph_layers:
            if layer.name == name:
                return layer
        raise ValueError(f"Model '{self.name}' has no layer named {name!r}; its layers are "
                         f"{[layer.name for layer in self._graph_layers]}")

    @property
    def output_shape(self):
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if self._single_output else shapes

    def compute_output_shape(self, input_shape):
        return self.output_shape

    def _summary_rows(self) -> list:
        return [(layer.name, layer) for layer in self._graph_layers]

    def extra_repr(self) -> str:
        return f"name={self.name!r}"

    # -- calling --------------------------------------------------------------------------------

    def __call__(self, *inputs, training=None, **kwargs):
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            inputs = (self._ordered(inputs[0], "call"),)
        return super().__call__(*inputs, training=training, **kwargs)

    def forward(self, *inputs):
        """Replay the recorded calls on real Tensors; one output, or a list of them."""
        tensors = self._unpack(inputs)
        values = {}
        for symbolic, x in zip(self._inputs, tensors):
            self._check_input(symbolic, x)
            values[id(symbolic)] = x
        for node in self._nodes:
            if not node.args and not node.kwargs and _is_input(node.outputs[0]):
                continue
            args, kwargs = _map_symbolic((node.args, node.kwargs), lambda t: values[id(t)])
            if node.training is not None:
                kwargs["training"] = node.training
            result = node.layer(*args, **kwargs)
            for symbolic, value in zip(node.outputs, _flatten_outputs(result)):
                values[id(symbolic)] = value
        outputs = [values[id(t)] for t in self._outputs]
        return outputs[0] if self._single_output else outputs

    def _unpack(self, inputs) -> list:
        """The call's inputs as one Tensor per model input (a packed batch from ``fit``, a
        list, a tuple, or the Tensors one after the other)."""
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        if len(inputs) == 1 and isinstance(inputs[0], Tensor) and inputs[0].dtype.names:
            packed, dtype = inputs[0].data, self._float_dtype()
            inputs = tuple(Tensor(training.cast_floats(np.ascontiguousarray(packed[field]),
                                                       dtype))
                           for field in packed.dtype.names)
        if len(inputs) != len(self._inputs):
            raise ValueError(f"Model '{self.name}' has {len(self._inputs)} input(s) "
                             f"({self.input_names}), got {len(inputs)}")
        return [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]

    def _check_input(self, symbolic: SymbolicTensor, x: Tensor) -> None:
        shape = x.shape
        expected = symbolic.shape
        if len(shape) != len(expected) or any(
                n is not None and n != m for n, m in zip(expected, shape)):
            raise ValueError(f"Model '{self.name}': input '{symbolic.name}' expects shape "
                             f"{expected}, got {shape}")

    def _ordered(self, data: dict, what: str) -> list:
        names = self.input_names
        missing = [name for name in names if name not in data]
        unknown = [key for key in data if key not in names]
        if missing or unknown:
            raise ValueError(f"{what}: model '{self.name}' takes inputs {names}; missing "
                             f"{missing}, unknown {unknown}")
        return [data[name] for name in names]

    # -- data with several inputs ---------------------------------------------------------------

    def _pack(self, x, what: str):
        """``x`` as ``fit``/``predict`` pass it on: one array per batch row. Several inputs
        are packed into one structured array (one field per input) that the loaders slice as
        any array and :meth:`forward` unpacks."""
        if isinstance(x, dict):
            x = self._ordered(x, what)
        if isinstance(x, (list, tuple)) and len(self._inputs) == 1 and len(x) == 1:
            return x[0]
        if len(self._inputs) == 1 or not isinstance(x, (list, tuple)):
            return x
        if len(x) != len(self._inputs):
            raise ValueError(f"{what}: model '{self.name}' has {len(self._inputs)} inputs "
                             f"({self.input_names}), got a list of {len(x)} arrays")
        dtype = self._float_dtype()
        arrays = [training.cast_floats(training.as_array(a, what), dtype) for a in x]
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"{what}: the inputs {self.input_names} hold different numbers "
                             f"of samples: {[len(a) for a in arrays]}")
        for symbolic, array in zip(self._inputs, arrays):
            self._check_input(symbolic, Tensor(array[:0]))
            training.check_finite_data(array, None, what)
        return _structured(arrays, "input")

    def _pack_validation(self, validation_data):
        if isinstance(validation_data, (list, tuple)) and len(validation_data) == 2:
            x_val, y_val = validation_data
            return (self._pack(x_val, "fit: validation_data"),
                    self._pack_targets(y_val, "fit: validation_data"))
        return validation_data

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                **kwargs) -> None:
        """As :meth:`Model.compile`; for several outputs, ``loss`` per output (a list, a dict
        by output name, or one for all) and ``loss_weights`` (see the module docstring)."""
        if self._single_output:
            if loss_weights is not None:
                raise ValueError(f"compile: loss_weights is for a model of several outputs; "
                                 f"model '{self.name}' has one")
            return super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        if metrics:
            raise ValueError(f"compile: model '{self.name}' has {len(self._outputs)} outputs; "
                             f"metrics per output are not logged (give none, and evaluate an "
                             f"output on predict()'s arrays)")
        super().compile(optimizer=optimizer, loss=None, metrics=None, **kwargs)
        self.loss = SumOfLosses(self._per_output(loss, "loss", required=True),
                                self._per_output(loss_weights, "loss_weights"))

    @property
    def output_names(self) -> list[str]:
        """The outputs' names: the names of the layers that make them."""
        return [t.node.layer.name for t in self._outputs]

    def _per_output(self, value, what: str, required: bool = False) -> list:
        """``value`` as one entry per output: a list in output order, a dict by output name,
        or one value for every output."""
        count, names = len(self._outputs), self.output_names
        if value is None:
            if required:
                raise ValueError(f"compile: model '{self.name}' needs a {what} (one per output "
                                 f"{names}, or one for all)")
            return [1.0] * count
        if isinstance(value, dict):
            missing = [n for n in names if n not in value]
            unknown = [k for k in value if k not in names]
            if missing or unknown:
                raise ValueError(f"compile: {what} by output name needs {names}; missing "
                                 f"{missing}, unknown {unknown}")
            return [value[n] for n in names]
        if isinstance(value, (list, tuple)):
            if len(value) != count:
                raise ValueError(f"compile: {what} has {len(value)} entries for model "
                                 f"'{self.name}''s {count} outputs {names}")
            return list(value)
        return [value] * count

    def _pack_targets(self, y, what: str):
        """Several outputs' targets packed into one structured array (as several inputs are),
        which :class:`SumOfLosses` unpacks; one output's as they are."""
        if self._single_output or y is None:
            return y
        if isinstance(y, dict):
            y = self._per_output(y, "y")
        if not isinstance(y, (list, tuple)) or len(y) != len(self._outputs):
            raise ValueError(f"{what}: model '{self.name}' has {len(self._outputs)} outputs "
                             f"{self.output_names}; give y as a list or a dict of as many "
                             f"arrays")
        dtype = self._float_dtype()
        arrays = [training.cast_floats(training.as_array(a, what), dtype) for a in y]
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(f"{what}: the targets of {self.output_names} hold different "
                             f"numbers of samples: {[len(a) for a in arrays]}")
        for array in arrays:
            training.check_finite_data(None, array, what)
        return _structured(arrays, "output")

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        return super().fit(self._pack(x, "fit"), self._pack_targets(y, "fit"), *args,
                           validation_data=self._pack_validation(validation_data), **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return super().evaluate(self._pack(x, "evaluate"), self._pack_targets(y, "evaluate"),
                                *args, **kwargs)

    def train_on_batch(self, x, y, *args, **kwargs):
        return super().train_on_batch(self._pack(x, "train_on_batch"),
                                      self._pack_targets(y, "train_on_batch"), *args, **kwargs)

    def test_on_batch(self, x, y, *args, **kwargs):
        return super().test_on_batch(self._pack(x, "test_on_batch"),
                                     self._pack_targets(y, "test_on_batch"), *args, **kwargs)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(1, _sample_count(x)))

    def predict_mc(self, x, *args, **kwargs):
        if not self._single_output:
            raise ValueError(f"predict_mc: model '{self.name}' has several outputs")
        return super().predict_mc(self._pack(x, "predict_mc"), *args, **kwargs)

    def predict(self, x, batch_size: int = 32, verbose=0, callbacks=None):
        """As :meth:`Model.predict`; a list of arrays (one per output) for several outputs."""
        x = self._pack(x, "predict")
        if self._single_output:
            return super().predict(x, batch_size=batch_size, verbose=verbose,
                                   callbacks=callbacks)
        dtype = self._float_dtype()
        loader = training.make_loader(x, None, batch_size, False, None, dtype, "predict")
        outputs = [[] for _ in self._outputs]
        modes = self._modes()
        self.eval()
        try:
            with no_grad():
                for batch in loader:
                    x_batch, _ = training.split_batch(batch, "predict")
                    results = self(Tensor(training.to_device_of(
                        self, training.cast_floats(x_batch, dtype))))
                    for store, result in zip(outputs, results):
                        store.append(result.numpy())
        finally:
            _restore_modes(modes)
        return [np.concatenate(store) for store in outputs]

    # -- configuration --------------------------------------------------------------------------

    def get_config(self) -> dict:
        """The layers (``{"class_name", "config"}``, InputLayers included), the calls
        (``{"layer": name, "args", "kwargs", "training"}``, a symbolic argument written as
        ``{"tensor": [node, output]}``) and which node outputs are the model's inputs and
        outputs."""
        position = {id(node): i for i, node in enumerate(self._nodes)}

        def encode(value):
            if isinstance(value, SymbolicTensor):
                return {"tensor": [position[id(value.node)], value.index]}
            if isinstance(value, (list, tuple)):
                return [encode(v) for v in value]
            if isinstance(value, dict):
                return {"dict": {str(k): encode(v) for k, v in value.items()}}
            if value is None or isinstance(value, (bool, int, float, str)):
                return value
            raise ValueError(f"Model '{self.name}': a layer call argument of type "
                             f"{type(value).__name__} cannot be saved")

        nodes = [{"layer": node.layer.name, "args": encode(list(node.args)),
                  "kwargs": encode(node.kwargs)["dict"], "training": node.training}
                 for node in self._nodes]
        return {"name": self.name, "trainable": self.trainable,
                "dtype": None if self.dtype is None else self.dtype.name,
                "layers": [serialize(layer) for layer in self._graph_layers],
                "nodes": nodes,
                "inputs": [encode(t) for t in self._inputs],
                "input_keys": self._input_keys,
                "outputs": encode(self._outputs if not self._single_output
                                  else self._outputs[0])}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Functional:
        layers = {}
        for layer_config in config["layers"]:
            layer = deserialize(layer_config, custom_objects)
            layers[layer.name] = layer
        made: list[list] = []

        def decode(value):
            if isinstance(value, dict) and "tensor" in value:
                node, index = value["tensor"]
                return made[node][index]
            if isinstance(value, dict) and "dict" in value:
                return {k: decode(v) for k, v in value["dict"].items()}
            if isinstance(value, list):
                return [decode(v) for v in value]
            return value

        for entry in config["nodes"]:
            layer = layers[entry["layer"]]
            if isinstance(layer, InputLayer):
                made.append([input_tensor(layer)])
                continue
            kwargs = {k: decode(v) for k, v in entry["kwargs"].items()}
            result = layer(*decode(entry["args"]), training=entry.get("training"), **kwargs)
            made.append(_flatten_outputs(result))
        inputs = [decode(t) for t in config["inputs"]]
        if config.get("input_keys"):
            inputs = dict(zip(config["input_keys"], inputs))
        elif len(inputs) == 1:
            inputs = inputs[0]
        return cls(inputs, decode(config["outputs"]), name=config.get("name"),
                   trainable=config.get("trainable", True), dtype=config.get("dtype"))


# -- helpers --------------------------------------------------------------------------------------


def _structured(arrays: list, prefix: str) -> np.ndarray:
    """Arrays of equal length as one NumPy structured array, field ``<prefix>_<i>`` holding
    array i: what the loaders slice as one array and the model unpacks by field."""
    packed = np.empty(len(arrays[0]), dtype=[(f"{prefix}_{i}", a.dtype, a.shape[1:])
                                             for i, a in enumerate(arrays)])
    for i, array in enumerate(arrays):
        packed[f"{prefix}_{i}"] = array
    return packed


def _is_input(t) -> bool:
    return isinstance(t, SymbolicTensor) and isinstance(t.node.layer, InputLayer)


def _as_list(value, what: str, name: str) -> list:
    items = list(value.values()) if isinstance(value, dict) else (
        list(value) if isinstance(value, (list, tuple)) else [value])
    if not items or not all(isinstance(t, SymbolicTensor) for t in items):
        raise TypeError(f"Model '{name}': {what} must be symbolic tensors (from Input(...) and "
                        f"layers called on them), or a list of them; got {value!r}")
    return items


def _symbolic_items(value) -> list:
    """The symbolic tensors in ``value`` (nested lists, tuples and dicts), in order."""
    found = []
    _map_symbolic(value, lambda t: found.append(t) or t)
    return found


def _map_symbolic(value, fn):
    """``value`` with every symbolic tensor ``t`` replaced by ``fn(t)``."""
    if isinstance(value, SymbolicTensor):
        return fn(value)
    if isinstance(value, list):
        return [_map_symbolic(v, fn) for v in value]
    if isinstance(value, tuple):
        return tuple(_map_symbolic(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_symbolic(v, fn) for k, v in value.items()}
    return value


def _zeros_like(t: SymbolicTensor, dtype=None) -> Tensor:
    shape = tuple(1 if n is None else n for n in t.shape)
    return Tensor(np.zeros(shape, dtype=dtype or t.dtype))


def _sample_call(layer: Layer, args, kwargs):
    """``layer`` called on zeros of the symbolic shapes (a batch of one) in evaluation mode,
    recording no graph. A layer that takes only integers (an Embedding after Keras's default
    float ``Input``) is called on integer zeros instead, as Keras casts its ids."""
    sample = _map_symbolic((args, kwargs), _zeros_like)
    with no_grad():
        try:
            return layer(*sample[0], training=False, **sample[1])
        except TypeError:
            if not any(t.dtype.kind == "f" for t in _symbolic_items((args, kwargs))):
                raise
            ids = _map_symbolic((args, kwargs), lambda t: _zeros_like(t, np.int64))
            return layer(*ids[0], training=False, **ids[1])


def _flatten_outputs(result) -> list:
    if isinstance(result, (list, tuple)):
        return list(result)
    return [result]


def _symbolic_outputs(result, node: Node, layer: Layer):
    """Symbolic stand-ins (batch axis None) for the Tensors a layer returned."""
    flat = _flatten_outputs(result)
    for index, value in enumerate(flat):
        if not isinstance(value, Tensor):
            raise TypeError(f"layer '{layer.name}' ({type(layer).__name__}) returned a "
                            f"{type(value).__name__}; the functional API needs Tensors")
        shape = (None, *value.shape[1:]) if value.ndim else value.shape
        node.outputs.append(SymbolicTensor(shape, value.dtype, node, index))
    if isinstance(result, (list, tuple)):
        return type(result)(node.outputs)
    return node.outputs[0]


def _reachable(outputs) -> list[Node]:
    """Every node the outputs depend on (a node is made after the nodes it reads, so sorting
    them by ``Node.order`` gives an order to run them in: the order the calls were written)."""
    found, seen, stack = [], set(), [t.node for t in outputs]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node)
        stack.extend(node.parents())
    return found


def _sample_count(x) -> int:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    if isinstance(x, (list, tuple)) and x and hasattr(x[0], "__len__"):
        x = x[0]
    return len(x)


register_functional(Functional)  # Model(inputs, outputs) builds one

__all__ = ["Functional", "Input", "KerasTensor", "Node", "SymbolicTensor", "input_tensor"]
