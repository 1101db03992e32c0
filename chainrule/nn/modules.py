"""PyTorch's ``torch.nn`` modules: chainrule Layers with PyTorch's signatures, built eagerly.

``nn.Module`` *is* a :class:`chainrule.layers.Layer` (a subclass adding PyTorch's few extra
methods), so a module has ``forward``, ``parameters()``, ``named_parameters()``,
``state_dict()``, ``load_state_dict()``, ``train()``, ``eval()``, ``zero_grad()``,
``children()`` and ``modules()`` from the one implementation, and any chainrule layer can sit
inside a module and the other way round.

Unlike chainrule's Keras-style layers, these are **built at construction**, as in PyTorch: the
weights exist after ``nn.Linear(784, 128)``, so ``optim.SGD(model.parameters(), ...)`` right
after building the model sees them all. Weight names, shapes and initialisation are PyTorch's:

* ``Linear.weight`` is (out_features, in_features), ``Conv2d.weight`` (out, in, kh, kw);
* both are drawn from kaiming_uniform(a=√5), i.e. U(−1/√fan_in, 1/√fan_in), and their biases
  from U(−1/√fan_in, 1/√fan_in); ``Embedding`` from N(0, 1); ``LSTM``/``GRU`` everything
  from U(−1/√hidden_size, 1/√hidden_size); BatchNorm weight 1, bias 0;
* draws come from chainrule's generator, so :func:`chainrule.manual_seed` makes them
  reproducible (the numbers differ from PyTorch's for the same seed).

The computation is chainrule's functions (the ops the Keras-style layers use); no gradient is
derived here.
"""

from __future__ import annotations

import math

import numpy as np

from chainrule import backend
from chainrule._config import get_default_dtype
from chainrule.layers.base import Layer
from chainrule.nn import functional as F
from chainrule.ops import concat, stack
from chainrule.ops.nn_recurrent import gru as _gru
from chainrule.ops.nn_recurrent import lstm as _lstm
from chainrule.random import get_generator
from chainrule.tensor import Tensor

# -- Parameter and Module ------------------------------------------------------------------------


class Parameter(Tensor):
    """A leaf Tensor that requires a gradient: assigning one to a module registers it.

    >>> import chainrule as cr
    >>> Parameter(cr.zeros(3)).requires_grad
    True
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.zeros(0, dtype=get_default_dtype())
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)


class Module(Layer):
    """Base class of PyTorch-style modules: chainrule's :class:`~chainrule.layers.Layer`.

    Subclass it as in PyTorch (sub-modules and Parameters assigned in ``__init__``, the
    computation in ``forward``). Added here: ``to(device)``, ``cpu()``, ``cuda()``,
    ``float()``, ``double()``, ``apply(fn)``, ``register_buffer``, ``register_parameter``,
    ``add_module``, ``buffers()``, ``named_buffers()``, ``requires_grad_()``.
    """

    def __init__(self, *args, **kwargs):
        if args:
            raise TypeError(f"{type(self).__name__}: Module.__init__ takes no positional "
                            f"arguments, got {len(args)}")
        super().__init__(**kwargs)

    # -- devices and dtypes -----------------------------------------------------------------

    def to(self, *args, **kwargs) -> Module:
        """Move every weight to a device ("cpu", or "cuda" where available) and/or cast the
        floating ones to a dtype, in place (``to("cpu")``, ``to(dtype=np.float64)``)."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}.to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if _is_device(arg):
                device = arg
            else:
                dtype = arg
        if device is not None:
            device = backend.normalize_device(device)
        for weight in self.weights:
            if device is not None and backend.device_of(weight.data) != device:
                weight.data = backend.to_device(weight.data, device)
            if dtype is not None and weight.dtype.kind == "f":
                weight.data = weight.data.astype(np.dtype(dtype))
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        return self.to("cuda")

    def float(self) -> Module:
        return self.to(dtype=np.float32)

    def double(self) -> Module:
        return self.to(dtype=np.float64)

    # -- registration -----------------------------------------------------------------------

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Register state that is saved but not trained (``running_mean``): a non-trainable
        weight, in ``state_dict()`` and ``buffers()``, not in ``parameters()``."""
        data = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
        self.add_weight(name, data.shape, initializer=_constant(data), trainable=False,
                        dtype=data.dtype)

    def register_parameter(self, name: str, param) -> None:
        if param is None:
            object.__setattr__(self, name, None)
            return
        setattr(self, name, param if isinstance(param, Tensor) else Parameter(param))

    def add_module(self, name: str, module) -> None:
        setattr(self, name, module)

    def named_buffers(self) -> list[tuple[str, Tensor]]:
        """The non-trainable weights (running statistics) with dotted names."""
        trainable = {id(w) for _, w in self.named_parameters()}
        return [(name, w) for name, w in self.named_weights() if id(w) not in trainable]

    def buffers(self) -> list[Tensor]:
        return [w for _, w in self.named_buffers()]

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module, children first, then on this one."""
        for module in reversed(self.modules()):
            fn(module)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for weight in self.parameters():
            weight.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of all weights (``.grad = None``)."""
        super().zero_grad()


def _is_device(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        backend.normalize_device(value)
    except ValueError:
        return False
    return True


def _constant(values):
    def initializer(shape, dtype=None):
        return np.array(values, dtype=dtype).reshape(shape)
    return initializer


def _uniform(bound: float):
    """U(−bound, bound) from chainrule's generator."""
    def initializer(shape, dtype=None):
        return get_generator().uniform(-bound, bound, size=shape).astype(dtype)
    return initializer


def _normal(shape, dtype=None):
    return get_generator().standard_normal(size=shape).astype(dtype)


def _int_tuple(value, n: int, what: str, name: str) -> tuple:
    values = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                    for v in values):
        raise ValueError(f"{what}: {name} must be an int or {n} ints, got {value!r}")
    return tuple(int(v) for v in values)


def _positive(value, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what}: {name} must be a positive integer, got {value!r}")
    return int(value)


# -- layers with weights -------------------------------------------------------------------------


class Linear(Module):
    """y = x Wᵀ + b (PyTorch's ``nn.Linear``); ``weight`` is (out_features, in_features).

    >>> import chainrule as cr
    >>> layer = Linear(5, 3)
    >>> layer.weight.shape, layer(cr.ones(2, 5)).shape
    ((3, 5), (2, 3))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__(dtype=dtype)
        self.in_features = _positive(in_features, "Linear", "in_features")
        self.out_features = _positive(out_features, "Linear", "out_features")
        bound = 1 / math.sqrt(self.in_features)
        self.weight = self.add_weight("weight", (self.out_features, self.in_features),
                                      _uniform(bound))
        self.bias = self.add_weight("bias", (self.out_features,), _uniform(bound)) if bias \
            else None
        self.built = True

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Conv2d(Module):
    """2-D convolution of NCHW input (PyTorch's ``nn.Conv2d``); ``weight`` (out, in, kh, kw).

    ``padding`` is an int, a pair, "valid" or "same"; only ``groups=1`` and
    ``padding_mode="zeros"``.

    >>> import chainrule as cr
    >>> Conv2d(1, 32, 3, 1)(cr.zeros(2, 1, 28, 28)).shape
    (2, 32, 26, 26)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 dtype=None):
        super().__init__(dtype=dtype)
        if groups != 1:
            raise NotImplementedError(f"Conv2d: groups={groups} is not supported (only 1)")
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv2d: padding_mode={padding_mode!r} is not supported")
        self.in_channels = _positive(in_channels, "Conv2d", "in_channels")
        self.out_channels = _positive(out_channels, "Conv2d", "out_channels")
        self.kernel_size = _int_tuple(kernel_size, 2, "Conv2d", "kernel_size")
        self.stride = _int_tuple(stride, 2, "Conv2d", "stride")
        self.padding = padding if isinstance(padding, str) else _int_tuple(
            padding, 2, "Conv2d", "padding")
        self.dilation = _int_tuple(dilation, 2, "Conv2d", "dilation")
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1 / math.sqrt(fan_in)
        self.weight = self.add_weight(
            "weight", (self.out_channels, self.in_channels, *self.kernel_size), _uniform(bound))
        self.bias = self.add_weight("bias", (self.out_channels,), _uniform(bound)) if bias \
            else None
        self.built = True

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d({self.in_channels}, {self.out_channels}): expected NCHW "
                             f"input with {self.in_channels} channels, got shape {x.shape}")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class _BatchNorm(Module):
    """Batch normalisation with PyTorch's conventions (see :func:`F.batch_norm`)."""

    _ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None):
        super().__init__(dtype=dtype)
        self.num_features = _positive(num_features, type(self).__name__, "num_features")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        n = self.num_features
        self.weight = self.add_weight("weight", (n,), "ones") if affine else None
        self.bias = self.add_weight("bias", (n,), "zeros") if affine else None
        if track_running_stats:
            self.add_weight("running_mean", (n,), "zeros", trainable=False)
            self.add_weight("running_var", (n,), "ones", trainable=False)
            self.add_weight("num_batches_tracked", (), "zeros", trainable=False, dtype=np.int64)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.built = True

    def forward(self, x):
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input of "
                             f"{' or '.join(map(str, self._ranks))} axes with "
                             f"{self.num_features} channels on axis 1, got shape {x.shape}")
        batch_stats = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.data)
        update = self.training and self.track_running_stats
        return F.batch_norm(x, self.running_mean if update or not batch_stats else None,
                            self.running_var if update or not batch_stats else None,
                            self.weight, self.bias, training=batch_stats,
                            momentum=momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input; PyTorch's momentum 0.1 (the weight
    of the *new* batch: Keras's momentum 0.99 is the weight of the old average)."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of NCHW input, per channel; PyTorch's conventions."""

    _ranks = (4,)


class Embedding(Module):
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer ids; N(0, 1)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=None):
        super().__init__(dtype=dtype)
        self.num_embeddings = _positive(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = _positive(embedding_dim, "Embedding", "embedding_dim")
        self.weight = self.add_weight("weight", (self.num_embeddings, self.embedding_dim),
                                      _normal)
        self.built = True

    def forward(self, x):
        return F.embedding(x, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


# -- recurrent -----------------------------------------------------------------------------------


class _RNNBase(Module):
    """One-directional LSTM/GRU with PyTorch's weights (weight_ih_l{k}, weight_hh_l{k},
    bias_ih_l{k}, bias_hh_l{k}) over chainrule's fused sequence ops."""

    _gates = 0

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype=None):
        super().__init__(dtype=dtype)
        what = type(self).__name__
        if bidirectional:
            raise NotImplementedError(f"{what}: bidirectional=True is not supported")
        if dropout:
            raise NotImplementedError(f"{what}: dropout between layers is not supported")
        self.input_size = _positive(input_size, what, "input_size")
        self.hidden_size = _positive(hidden_size, what, "hidden_size")
        self.num_layers = _positive(num_layers, what, "num_layers")
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        init = _uniform(1 / math.sqrt(self.hidden_size))
        width = self._gates * self.hidden_size
        for k in range(self.num_layers):
            size = self.input_size if k == 0 else self.hidden_size
            self.add_weight(f"weight_ih_l{k}", (width, size), init)
            self.add_weight(f"weight_hh_l{k}", (width, self.hidden_size), init)
            if bias:
                self.add_weight(f"bias_ih_l{k}", (width,), init)
                self.add_weight(f"bias_hh_l{k}", (width,), init)
        self.built = True

    def _layer_weights(self, k):
        def get(name):
            return getattr(self, f"{name}_l{k}", None)
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _initial(self, hx, x, k):
        if hx is None:
            xp = backend.get_array_module(x.data)
            return Tensor(xp.zeros((x.shape[0], self.hidden_size), dtype=x.dtype))
        return hx[k]

    def _batch_major(self, x):
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected 3-D input with "
                             f"{self.input_size} features, got shape {x.shape}")
        return x if self.batch_first else x.transpose(1, 0, 2)

    def _output(self, sequence):
        return sequence if self.batch_first else sequence.transpose(1, 0, 2)


class LSTM(_RNNBase):
    """PyTorch's ``nn.LSTM`` (one direction): returns ``output, (h_n, c_n)``.

    Gates in PyTorch's order i, f, g, o, which is chainrule's (Keras's) i, f, c, o.
    """

    _gates = 4

    def forward(self, x, hx=None):
        x = self._batch_major(x)
        h_all, c_all = (None, None) if hx is None else hx
        hs, cs = [], []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer_weights(k)
            h0, c0 = self._initial(h_all, x, k), self._initial(c_all, x, k)
            bias = None if b_ih is None else b_ih + b_hh
            x, h, c = _lstm(x, h0, c0, w_ih.T, w_hh.T, bias)
            hs.append(h)
            cs.append(c)
        return self._output(x), (stack(hs), stack(cs))


class GRU(_RNNBase):
    """PyTorch's ``nn.GRU`` (one direction): returns ``output, h_n``.

    PyTorch's gates r, z, n are reordered into chainrule's z, r, h (reset after the recurrent
    product, PyTorch's formula) for the fused op; the gradients flow back through the reorder.
    """

    _gates = 3

    def forward(self, x, hx=None):
        x = self._batch_major(x)
        hs = []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer_weights(k)
            h0 = self._initial(hx, x, k)
            bias = None if b_ih is None else stack([self._reorder(b_ih), self._reorder(b_hh)])
            x, h = _gru(x, h0, self._reorder(w_ih).T, self._reorder(w_hh).T, bias)
            hs.append(h)
        return self._output(x), stack(hs)

    def _reorder(self, w):
        n = self.hidden_size
        return concat([w[n:2 * n], w[:n], w[2 * n:]], axis=0)


# -- layers without weights ----------------------------------------------------------------------


class _Stateless(Module):
    def __init__(self):
        super().__init__()
        self.built = True


class ReLU(_Stateless):
    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class Tanh(_Stateless):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(_Stateless):
    def forward(self, x):
        return F.sigmoid(x)


class LeakyReLU(_Stateless):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)


class GELU(_Stateless):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)


class Softmax(_Stateless):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(_Stateless):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Identity(_Stateless):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(_Stateless):
    """Merge the axes ``start_dim`` … ``end_dim`` (default: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)


class MaxPool2d(_Stateless):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        if return_indices:
            raise NotImplementedError("MaxPool2d: return_indices=True is not supported")

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode)


class AvgPool2d(_Stateless):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class Dropout(_Stateless):
    """Zero each element with probability ``p`` in training mode (PyTorch's ``p``: the
    probability of *dropping*, as Keras's ``rate``)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Zero whole channels of NCHW input with probability ``p`` in training mode."""

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)


# -- containers ----------------------------------------------------------------------------------


class Sequential(Module):
    """Modules applied in order; children named "0", "1", ... (state keys "0.weight").

    Accepts modules (``Sequential(Linear(4, 8), ReLU())``) or one ordered dict of named ones.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            named = list(modules[0].items())
        else:
            named = [(str(i), m) for i, m in enumerate(modules)]
        for name, module in named:
            if not isinstance(module, Layer):
                raise TypeError(f"Sequential: {name!r} is a {type(module).__name__}, "
                                "not a module")
            setattr(self, name, module)

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x

    def append(self, module) -> Sequential:
        setattr(self, str(len(self)), module)
        return self

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self):
        return iter(self.children())

    def __getitem__(self, index):
        children = self.children()
        if isinstance(index, slice):
            return Sequential(*children[index])
        return children[index]


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ... (PyTorch's ``nn.ModuleList``)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module) -> ModuleList:
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self):
        return iter(self.children())

    def __getitem__(self, index):
        return self.children()[index]


# -- losses --------------------------------------------------------------------------------------


class _Loss(_Stateless):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or "
                             f"'none', got {reduction!r}")
        self.reduction = reduction

    def __call__(self, input, target):  # noqa: A002 - PyTorch's argument name
        return self.forward(input, target)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits (N, C, ...) with class ids or probabilities (PyTorch's)."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.class_weight, self.ignore_index = weight, ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):  # noqa: A002
        return F.cross_entropy(input, target, self.class_weight, self.ignore_index,
                               self.reduction, self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C, ...) and class ids."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.class_weight, self.ignore_index = weight, ignore_index

    def forward(self, input, target):  # noqa: A002
        return F.nll_loss(input, target, self.class_weight, self.ignore_index, self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):  # noqa: A002
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, self.reduction)


class BCELoss(_Loss):
    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy(input, target, self.reduction)


__all__ = [
    "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
    "CrossEntropyLoss", "Conv2d", "Dropout", "Dropout2d", "Embedding", "Flatten", "GELU", "GRU",
    "Identity", "LSTM", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module",
    "ModuleList", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh",
]
