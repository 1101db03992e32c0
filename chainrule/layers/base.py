"""The Layer: a callable that owns weights and sub-layers (Keras's Layer, PyTorch's Module).

A layer is written in three parts::

    class Affine(Layer):
        '''y = x · w + b'''

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):            # once, on the first call: sizes are known now
            self.w = self.add_weight("w", (input_shape[-1], self.units))
            self.b = self.add_weight("b", (self.units,), initializer="zeros")

        def forward(self, x):                    # Keras's name ``call`` works too
            return x @ self.w + self.b

The contract:

* **Lazy build.** ``layer(x)`` calls ``build(x.shape)`` the first time, so ``Dense(64)`` needs no
  input size. ``input_shape=`` (Keras: the shape without the batch axis) builds at construction.
  After the build, an input whose shape the layer cannot take is an error naming the layer, the
  expected and the received shape (see :class:`InputSpec`).
* **Registration by assignment.** Assigning a Layer, a list or tuple of Layers, or a leaf Tensor
  that requires a gradient to an attribute registers it, in order (PyTorch's rule). Weights made
  by :meth:`Layer.add_weight` are registered under their name. Names are dotted paths:
  ``blocks.0.kernel``.
* **State.** ``parameters()`` are the trainable weights (what an optimizer updates);
  ``weights`` adds non-trainable state such as BatchNormalization's moving statistics;
  ``state_dict()`` / ``load_state_dict()`` and ``get_weights()`` / ``set_weights()`` save and
  restore all of it. ``train()`` / ``eval()`` switch the ``training`` flag of the whole tree;
  ``trainable = False`` freezes a layer (its weights leave ``parameters()``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from chainrule import backend, initializers, regularizers
from chainrule._config import get_default_dtype
from chainrule.autograd.function import notify_recorder, recorders
from chainrule.initializers import _snake_case
from chainrule.layers import _checks
from chainrule.tensor import Tensor, tensor

# -- names ----------------------------------------------------------------------------------------

_name_counts: dict[str, int] = {}


def unique_name(base: str) -> str:
    """``base``, then ``base_1``, ``base_2``, ... on later calls (Keras's automatic names)."""
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def reset_names() -> None:
    """Start automatic names again from "dense", "conv2d", ... (Keras's ``clear_session``)."""
    _name_counts.clear()


# -- input checks ---------------------------------------------------------------------------------


class InputSpec:
    """What input a layer accepts: its rank and the sizes of some axes (Keras's InputSpec).

    Args:
        ndim: the exact number of axes, batch included (e.g. 4 for NCHW), or None.
        min_ndim: the least number of axes, or None.
        axes: ``{axis: size}`` for axes whose size is fixed (negative axes count from the end).

    >>> InputSpec(min_ndim=2, axes={-1: 4}).expected_shape()
    '(..., 4)'
    """

    def __init__(self, ndim: int | None = None, min_ndim: int | None = None,
                 axes: dict | None = None):
        self.ndim, self.min_ndim, self.axes = ndim, min_ndim, dict(axes or {})

    def problem(self, shape: tuple) -> str | None:
        """Why ``shape`` is not accepted, or None when it is."""
        if self.ndim is not None and len(shape) != self.ndim:
            return f"expected {self.ndim} axes, got {len(shape)}"
        if self.min_ndim is not None and len(shape) < self.min_ndim:
            return f"expected at least {self.min_ndim} axes, got {len(shape)}"
        for axis, size in self.axes.items():
            if not -len(shape) <= axis < len(shape):
                return f"axis {axis} is missing"
            if size is not None and shape[axis] != size:
                return f"axis {axis} must have size {size}, got {shape[axis]}"
        return None

    def expected_shape(self) -> str:
        """The accepted shapes as text: None for any size, ``...`` for any leading axes."""
        if self.ndim is not None:
            sizes = [None] * self.ndim
            for axis, size in self.axes.items():
                sizes[axis] = size
            return "(" + ", ".join(str(s) for s in sizes) + ("," if self.ndim == 1 else "") + ")"
        tail = max([-a for a in self.axes if a < 0] + [0])
        sizes = [None] * tail
        for axis, size in self.axes.items():
            if axis < 0:
                sizes[axis] = size
        lead = [None] * max(0, (self.min_ndim or 0) - tail - 1)
        return "(" + ", ".join(["..."] + [str(s) for s in lead + sizes]) + ")"

    def __repr__(self) -> str:
        return f"InputSpec(ndim={self.ndim}, min_ndim={self.min_ndim}, axes={self.axes})"


# -- the layer ------------------------------------------------------------------------------------

LoadResult = namedtuple("LoadResult", ["missing_keys", "unexpected_keys"])

_LAYER_CLASSES: dict[str, type] = {}


class _LayerType(type):
    """Makes every layer in three steps: empty registries, ``__init__``, then ``build`` if the
    constructor was given ``input_shape=`` (so a subclass gets the eager build for free)."""

    def __call__(cls, *args, **kwargs):
        layer = cls.__new__(cls)
        layer._init_registries()
        layer.__init__(*args, **kwargs)
        if layer._given_input_shape is not None and not layer.built:
            layer._build((None, *layer._given_input_shape))
        return layer


class Layer(metaclass=_LayerType):
    """Base class of all layers and models; see the module docstring for the contract.

    Args:
        name: a unique name; by default the class name in snake_case, numbered ("dense_1").
        trainable: False freezes the layer (its weights are excluded from ``parameters()``).
        dtype: the dtype of the weights (default: chainrule's default dtype at build time).
        input_shape: the input shape without the batch axis; builds the layer at once.

    Attributes:
        training: True in training mode (dropout active, batch statistics), False after
            ``eval()``.
        built: whether ``build`` has run (the weights exist).
        input_spec: an :class:`InputSpec` that inputs are checked against, or None.
    """

    input_spec: InputSpec | None = None
    _given_input_shape: tuple | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _LAYER_CLASSES.setdefault(registered_name(cls), cls)

    def _init_registries(self) -> None:
        state = self.__dict__
        state["_weights"] = {}  # name -> Tensor, in order of creation
        state["_weight_trainable"] = {}  # name -> whether the weight was created trainable
        state["_regularizers"] = {}  # name -> regularizer of that weight
        state["_children"] = {}  # name -> Layer, or list/tuple holding layers
        state["_trainable"] = True
        state["training"] = True
        state["built"] = False
        state["_build_input_shape"] = None
        state["_last_output_shape"] = None
        state["_checked_shape"] = None

    def __init__(self, name: str | None = None, trainable: bool = True, dtype=None,
                 input_shape=None, **kwargs):
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}"
            )
        what = type(self).__name__
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{what}: name must be a string, got {name!r}")
        self.name = name if name is not None else unique_name(_snake_case(what))
        self.dtype = None if dtype is None else _checks.dtype(what, "dtype", dtype)
        if input_shape is not None:
            self._given_input_shape = _checks.shape(what, "input_shape", input_shape)
        if not _checks.flag(what, "trainable", trainable):
            self.trainable = False

    # -- building and calling ---------------------------------------------------------------

    def build(self, input_shape) -> None:
        """Create the weights, now that the input shape (batch axis first) is known.

        Called once, by the first call (``input_shape`` is the input's shape) or at construction
        when ``input_shape=`` was given (its batch axis is None). Layers without weights need
        not override it.
        """

    def forward(self, *inputs, **kwargs):
        """Compute the output; override this (PyTorch) or :meth:`call` (Keras)."""
        return self.call(*inputs, **kwargs)

    def call(self, *inputs, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} must override forward(x) (or Keras's call(x))"
        )

    def __call__(self, *inputs, training: bool | None = None, **kwargs):
        """Convert the inputs to Tensors, build on the first call, check the shape, forward.

        ``training=True/False`` runs this one call in that mode (Keras's argument).
        """
        if recorders:  # being traced: the trace depends on this layer's training mode
            notify_recorder("note_layer", self)
        if len(inputs) != 1 or not isinstance(inputs[0], Tensor):
            symbolic = _first_symbolic(inputs)
            if symbolic is not None:  # the functional API: record the call, compute no data
                return type(symbolic).call_layer(self, inputs, training, kwargs)
            inputs = tuple(_as_input(x) for x in inputs)
        first = inputs[0] if inputs else None
        if isinstance(first, Tensor) and first.data.shape != self._checked_shape:
            self._check_input_shape(first.data.shape)
        if not self.built or self._build_input_shape is None:
            shape = _shape_of(first) if len(inputs) <= 1 else [_shape_of(x) for x in inputs]
            if self.built:  # built at construction without an input shape (Embedding)
                self._build_input_shape = _free_batch(shape)
            else:
                self._build(shape)
        if training is None or training == self.training:
            output = self.forward(*inputs, **kwargs)
        else:
            output = self._forward_in_mode(training, inputs, kwargs)
        if isinstance(output, Tensor):  # bookkeeping on the hot path: skip __setattr__
            self.__dict__["_last_output_shape"] = output.data.shape
        return output

    def _forward_in_mode(self, training, inputs, kwargs):
        modes = [(layer, layer.training) for layer in self.modules()]
        self.train(training)
        try:
            return self.forward(*inputs, **kwargs)
        finally:
            for layer, mode in modes:
                layer.training = mode

    def _build(self, input_shape) -> None:
        self.build(input_shape)
        self.built = True
        self._build_input_shape = _free_batch(input_shape)
        self._checked_shape = None  # build may have fixed sizes in input_spec: check again

    def _check_input_shape(self, shape: tuple) -> None:
        spec = self.input_spec
        problem = None if spec is None else spec.problem(shape)
        if problem is not None:
            raise ValueError(
                f"layer '{self.name}' ({type(self).__name__}) expects input of shape "
                f"{spec.expected_shape()} but received input of shape {shape}: {problem}"
            )
        self.__dict__["_checked_shape"] = shape

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape`` (batch axis first, None allowed).

        Built-in layers compute it; for a layer of one's own, call it once on an input instead.
        """
        raise NotImplementedError(
            f"layer '{self.name}' ({type(self).__name__}) does not implement "
            "compute_output_shape; call it on an input to record its output shape"
        )

    @property
    def input_shape(self):
        """The input shape the layer was built for (or first called with), batch axis None:
        ``(None, 784)``."""
        if not self.built:
            raise AttributeError(f"layer '{self.name}' is not built yet, so it has no input "
                                 "shape; call it on an input or pass input_shape=")
        return self._build_input_shape

    @property
    def output_shape(self):
        """The output shape of the last call (or computed from the input shape), batch None."""
        if self._last_output_shape is not None:
            return _free_batch(self._last_output_shape)
        return self.compute_output_shape(self.input_shape)

    # -- registration -----------------------------------------------------------------------

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Layer) or _is_layer_sequence(value):
            self._unregister(name)
            self._children[name] = value
        elif isinstance(value, Tensor) and name in self._weights:
            if not value.is_leaf:
                raise TypeError(
                    f"layer '{self.name}': cannot replace weight '{name}' by a computed tensor; "
                    f"write into {name}.data instead"
                )
            self._weights[name] = value
        elif isinstance(value, Tensor) and value.requires_grad and value.is_leaf:
            self._unregister(name)
            self._weights[name] = value
            self._weight_trainable[name] = True
        elif name in self._weights or name in self._children:
            self._unregister(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._unregister(name)
        object.__delattr__(self, name)

    def _unregister(self, name: str) -> None:
        for registry in (self._weights, self._weight_trainable, self._regularizers,
                         self._children):
            registry.pop(name, None)

    def add_weight(self, name: str, shape, initializer="glorot_uniform", regularizer=None,
                   trainable: bool = True, dtype=None) -> Tensor:
        """Create a weight, register it as attribute ``name`` and return it (a leaf Tensor).

        Args:
            name: the attribute and state_dict name ("kernel", "bias", ...).
            shape: the weight's shape.
            initializer: an initializer, its name ("he_normal") or a config dict.
            regularizer: a regularizer, its name ("l2") or None; its penalty on this weight is
                part of :meth:`regularization_loss`.
            trainable: False for state that is not trained by gradient (moving averages).
            dtype: the weight's dtype (default: the layer's, else chainrule's default dtype).
        """
        if name in self._weights:
            raise ValueError(f"layer '{self.name}' already has a weight named '{name}'")
        shape = tuple(int(n) for n in shape)
        dtype = np.dtype(next(d for d in (dtype, self.dtype, get_default_dtype()) if d is not None))
        array = np.asarray(initializers.get(initializer)(shape, dtype=dtype), dtype=dtype)
        if array.shape != shape:
            raise ValueError(f"layer '{self.name}': initializer of weight '{name}' returned shape "
                             f"{array.shape}, expected {shape}")
        weight = Tensor(array, requires_grad=trainable and self._trainable)
        self._weights[name] = weight
        self._weight_trainable[name] = trainable
        if regularizer is not None:
            self._regularizers[name] = regularizers.get(regularizer)
        object.__setattr__(self, name, weight)
        return weight

    # -- traversal --------------------------------------------------------------------------

    def named_children(self) -> list[tuple[str, Layer]]:
        """The direct sub-layers with their names (``"blocks.0"`` for list items)."""
        children = []
        for name, value in self._children.items():
            if isinstance(value, Layer):
                children.append((name, value))
            else:
                children.extend((f"{name}.{i}", item) for i, item in enumerate(value)
                                if isinstance(item, Layer))
        return children

    def children(self) -> list[Layer]:
        return [layer for _, layer in self.named_children()]

    def named_modules(self, prefix: str = "") -> list[tuple[str, Layer]]:
        """This layer ("") and every sub-layer below it, each once, with dotted names."""
        found, seen, stack = [], set(), [(prefix, self)]
        while stack:
            name, layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            found.append((name, layer))
            stack.extend(reversed([(_join(name, child_name), child)
                                   for child_name, child in layer.named_children()]))
        return found

    def modules(self) -> list[Layer]:
        return [layer for _, layer in self.named_modules()]

    def _weight_entries(self):
        """(dotted name, owner layer, local name, tensor, trainable) for every weight, once.

        Order: a layer's own weights in order of creation, then its sub-layers' in order of
        registration. A weight is trainable when it was created so and neither its layer nor
        any layer above it is frozen (Keras's rule).
        """
        seen_weights, seen_layers = set(), set()

        def walk(layer, prefix, parents_trainable):
            if id(layer) in seen_layers:
                return
            seen_layers.add(id(layer))
            active = parents_trainable and layer._trainable
            for name, weight in layer._weights.items():
                if id(weight) not in seen_weights:
                    seen_weights.add(id(weight))
                    trainable = active and layer._weight_trainable.get(name, True)
                    yield _join(prefix, name), layer, name, weight, trainable
            for child_name, child in layer.named_children():
                yield from walk(child, _join(prefix, child_name), active)

        yield from walk(self, "", True)

    # -- weights (Keras) and parameters (PyTorch) -------------------------------------------

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        """The trainable weights with dotted names (``"layers.0.kernel"``)."""
        return [(name, w) for name, _, _, w, trainable in self._weight_entries() if trainable]

    def parameters(self) -> list[Tensor]:
        """The trainable weights, each once, in order of registration: what optimizers update.

        Raises ValueError while this layer is unbuilt and a layer below it has not made its
        weights yet (a lazily built ``Dense(64)`` before the first call): an optimizer made
        from that list would silently never train those weights. ``trainable_weights`` (the
        Keras name) still returns what exists.
        """
        if not self.built:
            pending = self._unbuilt_layers()
            if pending:
                names = ", ".join(f"'{name}'" for name in pending)
                raise ValueError(
                    f"{type(self).__name__}.parameters(): layers {names} are not built yet, so "
                    "their weights do not exist and an optimizer made now would never train "
                    "them; build the model first (pass input_shape=/Input(...), call "
                    "model.build(...) or call it once on a batch) or let compile()/fit() bind "
                    "the optimizer"
                )
        return [w for _, w in self.named_parameters()]

    def _unbuilt_layers(self) -> list[str]:
        """The names of the layers below this one that have yet to make their weights (lazily
        built leaves: their ``build`` makes weights, and it has not run)."""
        return [layer.name for layer in self.modules()
                if not layer.built and type(layer).build is not Layer.build
                and not layer._children]

    @property
    def trainable_weights(self) -> list[Tensor]:
        """The trainable weights that exist now (Keras's name; on an unbuilt model, those of
        the layers built so far, as Keras gives, where :meth:`parameters` refuses)."""
        return [w for _, w in self.named_parameters()]

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        """Weights not trained by gradient: moving statistics, and all weights of frozen layers."""
        return [w for _, _, _, w, trainable in self._weight_entries() if not trainable]

    @property
    def weights(self) -> list[Tensor]:
        """All weights, trainable or not, in order of creation (layer by layer)."""
        return [w for _, _, _, w, _ in self._weight_entries()]

    def named_weights(self) -> list[tuple[str, Tensor]]:
        return [(name, w) for name, _, _, w, _ in self._weight_entries()]

    def count_params(self) -> int:
        """The number of weight elements (trainable and not), as Keras counts them."""
        unbuilt = [layer.name for layer in self.modules() if not layer.built]
        if unbuilt:
            raise ValueError(
                f"layer '{self.name}': cannot count the parameters of unbuilt layer(s) "
                f"{unbuilt}; call the layer on an input or pass input_shape="
            )
        return sum(int(w.size) for w in self.weights)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """Freeze (False) or unfreeze this layer and every layer below it."""
        for layer in self.modules():
            layer.__dict__["_trainable"] = bool(value)
            for name, weight in layer._weights.items():
                if weight.dtype.kind in "fc":
                    weight.requires_grad = bool(value) and layer._weight_trainable[name]

    # -- modes and gradients ----------------------------------------------------------------

    def train(self, mode: bool = True) -> Layer:
        """Set training mode (True) or evaluation mode (False) for the whole tree."""
        for layer in self.modules():
            layer.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Evaluation mode: dropout off, BatchNormalization uses its moving statistics."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget the accumulated gradients of all weights (``.grad = None``)."""
        for weight in self.weights:
            weight.grad = None

    def regularization_loss(self) -> Tensor:
        """Σ of the regularizer penalties on the trainable weights of this layer and below.

        Add it to the data loss in a hand-written loop; a constant 0 when there are none.
        """
        total = None
        for _, layer, name, weight, trainable in self._weight_entries():
            regularizer = layer._regularizers.get(name)
            if regularizer is not None and trainable:
                penalty = regularizer(weight)
                total = penalty if total is None else total + penalty
        if total is None:
            dtype = get_default_dtype() if self.dtype is None else self.dtype
            return Tensor(np.zeros((), dtype=dtype))
        return total

    # -- devices ----------------------------------------------------------------------------

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda"``: where this layer's weights are (``"cpu"`` when it has none).

        Raises RuntimeError when the weights are split between devices.
        """
        where = {}
        for name, weight in self.named_weights():
            where.setdefault(backend.device_of(weight.data), name)
        if len(where) > 1:
            detail = ", ".join(f"'{name}' on {device}" for device, name in where.items())
            raise RuntimeError(f"layer '{self.name}' has weights on several devices ({detail}); "
                               "move it with .to(device)")
        return next(iter(where), "cpu")

    def to(self, device) -> Layer:
        """Move every weight (trainable or not), its gradient, and the optimizer state of
        those weights (a compiled model's ``optimizer``) to ``device``; returns ``self``.

        ``device`` is ``"cpu"``, ``"cuda"``, ``"cuda:0"`` or ``"gpu"``. The weights keep their
        identity (their ``.data`` is replaced), so an optimizer made earlier still updates
        them. Without a usable GPU, ``to("cuda")`` raises RuntimeError naming the ``[gpu]``
        extra, and nothing moves. Layers that make their weights on the first call must be
        built first (weights are made on the CPU).

        >>> from chainrule.layers import Dense
        >>> Dense(2, input_shape=(3,)).to("cpu").device
        'cpu'
        """
        device = backend.normalize_device(device)
        pending = self._unbuilt_layers()
        if pending:
            names = ", ".join(f"'{name}'" for name in pending)
            raise ValueError(
                f"layer '{self.name}'.to('{device}'): layers {names} are not built yet, so "
                "their weights would be made on the CPU later; build the model first (pass "
                "input_shape=/Input(...), call model.build(...) or call it once on a batch)")
        weights = self.weights
        optimizer_state = getattr(self.__dict__.get("optimizer"), "state", None)
        slots = [(w, "data") for w in weights]
        slots += [(w.grad, "data") for w in weights if w.grad is not None]
        if isinstance(optimizer_state, dict):
            slots += [(state, key) for w in weights for state in [optimizer_state.get(w)]
                      if isinstance(state, dict) for key, value in state.items()
                      if backend.is_array(value)]
        moved = []  # every copy is made before anything changes: a failure moves nothing
        for owner, key in slots:
            array = owner[key] if isinstance(owner, dict) else owner.data
            if backend.device_of(array) != device:
                moved.append((owner, key, backend.to_device(array, device)))
        for owner, key, array in moved:
            if isinstance(owner, dict):
                owner[key] = array
            else:
                owner.data = array
        return self

    # -- saving and loading -----------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every weight (trainable or not) by dotted name, as a NumPy copy, in creation order."""
        return {name: backend.to_numpy(w.data).copy() for name, w in self.named_weights()}

    def load_state_dict(self, state: dict, strict: bool = True, *,
                        allow_nonfinite: bool = False) -> LoadResult:
        """Copy the arrays of ``state`` into the existing weights, in place (dtype preserved).

        All or nothing: every value is checked before any weight changes, so a bad entry
        leaves every weight as it was. With ``strict`` (the default) missing and unexpected
        names are an error; a value is always refused when its shape differs from the
        weight's, when it is not numeric (object, string or ragged arrays, ``None``), when it
        cannot be cast to the weight's dtype without changing kind (float into an integer
        weight), or, unless ``allow_nonfinite=True``, when it holds NaN or infinity (after the
        cast: a float64 too large for a float32 weight counts). Returns the
        ``(missing_keys, unexpected_keys)`` found.
        """
        own = dict(self.named_weights())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        arrays, bad = _checked_values(own, state, allow_nonfinite)
        problems.extend(bad)
        if problems:
            raise ValueError(f"load_state_dict into layer '{self.name}': "
                             + "; ".join(problems) + self._unbuilt_hint())
        for name, array in arrays.items():
            _copy_into(own[name], array)
        return LoadResult(missing, unexpected)

    def get_weights(self) -> list[np.ndarray]:
        """NumPy copies of all weights in order of creation (Keras: kernel, bias, ...)."""
        return list(self.state_dict().values())

    def set_weights(self, weights) -> None:
        """Copy a list of arrays (as from :meth:`get_weights`) into the weights, in place."""
        own = self.named_weights()
        weights = list(weights)
        if len(weights) != len(own):
            raise ValueError(
                f"set_weights on layer '{self.name}': expected {len(own)} arrays "
                f"({[name for name, _ in own]}), got {len(weights)}" + self._unbuilt_hint()
            )
        for (name, weight), value in zip(own, weights):
            if np.shape(_array_of(value)) != weight.shape:
                raise ValueError(
                    f"set_weights on layer '{self.name}': weight '{name}' has shape "
                    f"{weight.shape}, got an array of shape {np.shape(_array_of(value))}"
                )
        for (_, weight), value in zip(own, weights):
            _copy_into(weight, value)

    def _unbuilt_hint(self) -> str:
        unbuilt = [layer.name for layer in self.modules() if not layer.built]
        if not unbuilt:
            return ""
        return (f" (layer(s) {unbuilt} are not built yet and have no weights: call the model on "
                "an input or pass input_shape= first)")

    # -- configuration ----------------------------------------------------------------------

    def get_config(self) -> dict:
        """The constructor arguments as JSON-able values: ``type(layer).from_config`` rebuilds
        an equal (freshly initialised) layer. Subclasses add their own arguments."""
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": None if self.dtype is None else self.dtype.name}
        if self._given_input_shape is not None:
            config["input_shape"] = list(self._given_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``: the simple values of ``get_config``."""
        skip = {"name", "trainable", "dtype", "input_shape"}
        try:
            config = self.get_config()
        except (AttributeError, TypeError, ValueError):  # half-made, or not JSON-able
            return ""
        return ", ".join(f"{k}={v!r}" for k, v in config.items()
                         if k not in skip and isinstance(v, (int, float, str, tuple, list)))

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()})"
        children = self.named_children()
        if not children:
            return head
        lines = [head[:-1] + ("\n" if head.endswith("()") else ",\n")]
        for name, child in children:
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  ") + "\n")
        return "".join(lines) + ")"


class _SameShapeLayer(Layer):
    """A layer whose output has its input's shape (activations, dropout, normalization)."""

    def compute_output_shape(self, input_shape):
        return input_shape


# -- serialization of layers ----------------------------------------------------------------------


def registered_name(cls) -> str:
    """The name a layer class is saved under: its own, or ``nn.<name>`` for the PyTorch face
    (:mod:`chainrule.nn`), whose ``Sequential``, ``Dropout``, ``LSTM`` ... must not take the
    Keras layers' names, whichever module is imported first."""
    if cls.__module__.startswith("chainrule.nn"):
        return f"nn.{cls.__name__}"
    return cls.__name__


def serialize(layer: Layer) -> dict:
    """``{"class_name": ..., "config": ...}``: a JSON-able description of ``layer``."""
    return {"class_name": registered_name(type(layer)), "config": layer.get_config()}


def deserialize(config: dict, custom_objects: dict | None = None) -> Layer:
    """A new layer from :func:`serialize`'s output (layer classes are found by name)."""
    classes = {**_LAYER_CLASSES, **(custom_objects or {})}
    name = config.get("class_name")
    if name not in classes:
        raise ValueError(f"unknown layer class {name!r}; pass it in custom_objects")
    return classes[name].from_config(dict(config.get("config", {})))


# -- helpers --------------------------------------------------------------------------------------


def _as_input(x):
    """A Tensor as is; lists of inputs element by element; numbers and arrays as new Tensors."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (list, tuple)) and any(isinstance(v, Tensor) for v in x):
        return [v if isinstance(v, Tensor) else tensor(v) for v in x]
    return tensor(x)


def _first_symbolic(inputs):
    """The first symbolic tensor (``chainrule.Input(...)`` and what layers make of it) among
    ``inputs`` and the items of their lists, tuples and dicts; None when there is none."""
    for x in inputs:
        items = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else (x,)
        for item in items:
            if getattr(type(item), "is_symbolic", False) is True:
                return item
    return None


def _shape_of(x):
    if x is None:
        return None
    if isinstance(x, list):
        return [t.shape for t in x]
    return x.shape


def _free_batch(shape):
    """The shape with its batch axis replaced by None (lists of shapes element by element)."""
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_free_batch(s) for s in shape]
    return (None, *shape[1:]) if len(shape) else tuple(shape)


def _is_layer_sequence(value) -> bool:
    """A list or tuple that holds layers (an empty list too: layers may be appended later)."""
    if not isinstance(value, (list, tuple)):
        return False
    if isinstance(value, list) and not value:
        return True
    return any(isinstance(item, Layer) for item in value)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _array_of(value):
    return value.data if isinstance(value, Tensor) else value


def _checked_values(own: dict, state: dict, allow_nonfinite: bool):
    """The values of ``state`` for the weights in ``own``, cast to each weight's dtype, and
    the problems found (for :meth:`Layer.load_state_dict`, which copies nothing if any)."""
    arrays, shapes, problems = {}, [], []
    for name, value in state.items():
        if name not in own:
            continue
        array, problem = _checked_value(own[name], value, allow_nonfinite)
        if array is not None:
            arrays[name] = array
        elif isinstance(problem, tuple):  # (expected shape, given shape)
            shapes.append(f"'{name}': expected {problem[0]}, got {problem[1]}")
        else:
            problems.append(f"weight '{name}': {problem}")
    if shapes:
        problems.insert(0, "shape mismatch for " + ", ".join(shapes))
    return arrays, problems


def _checked_value(weight: Tensor, value, allow_nonfinite: bool):
    """``(array, None)``: ``value`` as a NumPy array of the weight's dtype; or ``(None, why)``
    when it cannot be loaded into ``weight`` (``why`` is ``(expected, given)`` for a shape)."""
    try:
        array = np.asarray(backend.to_numpy(_array_of(value)))
    except (TypeError, ValueError) as error:  # ragged nested lists, odd objects
        return None, f"not an array of numbers ({type(value).__name__}: {error})"
    if array.dtype.kind not in "biuf":
        return None, (f"got a {array.dtype} array; expected numbers castable to "
                      f"{weight.dtype} (object, string and complex values are refused)")
    if array.shape != weight.shape:
        return None, (weight.shape, array.shape)
    target = np.dtype(weight.dtype)
    if array.dtype.kind != "b" and not np.can_cast(array.dtype, target, casting="same_kind"):
        return None, f"cannot cast a {array.dtype} array to the weight's {target}"
    with np.errstate(over="ignore", invalid="ignore"):
        array = array.astype(target, copy=True)
    if target.kind == "f" and not allow_nonfinite:
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            return None, (f"{bad} of {array.size} values are NaN or infinite (as {target}); "
                          "pass allow_nonfinite=True to load them anyway")
    return array, None


def _copy_into(weight: Tensor, value) -> None:
    """Write ``value`` into ``weight.data`` in place, keeping the weight's dtype and device."""
    xp = backend.get_array_module(weight.data)
    weight.data[...] = xp.asarray(_array_of(value), dtype=weight.dtype)
