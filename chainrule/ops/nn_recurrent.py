"""Recurrent networks: the SimpleRNN, LSTM and GRU cells, and their time loops.

A recurrent layer applies one *cell* at every time step, carrying a state from step to step:

====================  =======================================================================
SimpleRNN             h_t = g(x_t·W + h_{t−1}·U + b)
LSTM                  [i, f, ĉ, o] = [σ, σ, tanh, σ](x_t·W + h_{t−1}·U + b)
                      c_t = f ⊙ c_{t−1} + i ⊙ ĉ;   h_t = o ⊙ tanh(c_t)
GRU (reset_after)     [z, r] = σ(x_t·W_zr + h_{t−1}·U_zr + b_zr)
                      ĥ = tanh(x_t·W_h + b_h + r ⊙ (h_{t−1}·U_h + b′_h))
                      h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ
====================  =======================================================================

Weights use Keras's layouts: ``kernel`` W is (input_dim, k·units), ``recurrent_kernel`` U is
(units, k·units), gate blocks side by side (LSTM i, f, c, o; GRU z, r, h). The input projections
x_t·W + b of all steps do not depend on the state, so both time loops compute them up front in
one matrix product; only h_{t−1}·U stays inside the loop.

Each layer has two implementations of its time loop that compute the same function:

* **unrolled** (:func:`lstm_unrolled`, ...): the cell written with primitive ops, applied once per
  step. The engine records every step, so backpropagation through time (BPTT) is ordinary
  backpropagation over the unrolled graph, differentiable to any order. This is the definition.
* **fused** (:func:`lstm`, ...): one op for the whole sequence. Forward runs the loop on arrays and
  keeps the gates of every step; backward runs BPTT in a reverse loop on arrays and forms the
  weight gradients at the end, in one matrix product over all steps (∂L/∂W = Xᵀ·∂L/∂Z,
  ∂L/∂U = H_{t−1}ᵀ·∂L/∂Z). No graph node per step: that is what makes it fast. It is first order
  only (``differentiable_backward = False``) and is tested against the unrolled loop. The fused
  LSTM also deals the batch's rows out in blocks to chainrule's threads (inside
  ``kernels.own_threads()``, which it enters itself): rows never meet inside the loop, so each
  block runs its own time loop, and only the weight gradients add up.

Exploding gradients through long loops are cured by clipping the gradient norm (see
``chainrule.optimizers.clip_grad_norm``); vanishing ones by the LSTM's additive cell state
c_t = f ⊙ c_{t−1} + ..., whose gradient is carried back multiplied only by the forget gate.

Every function takes ``x`` batch first, (batch, time, features), and returns the hidden state of
every step (batch, time, units) and the final state(s).

>>> import chainrule as cr
>>> x, h0, c0 = cr.randn(2, 5, 3), cr.zeros(2, 4), cr.zeros(2, 4)
>>> W, U, b = cr.randn(3, 16), cr.randn(4, 16), cr.zeros(16)
>>> sequence, h, c = lstm(x, h0, c0, W, U, b)
>>> sequence.shape, h.shape
((2, 5, 4), (2, 4))
"""

from __future__ import annotations

import contextlib

import numpy as np

from chainrule import backend, kernels
from chainrule.autograd.function import Function
from chainrule.ops.elementwise import sigmoid, tanh
from chainrule.ops.shape import split, stack
from chainrule.tensor import Tensor

# -- the cells, from primitive ops ----------------------------------------------------------------


def simple_rnn_cell(x_proj, h, recurrent_kernel, activation=tanh) -> Tensor:
    """One step of the Elman RNN: h_t = g(x_proj_t + h_{t−1}·U), x_proj_t = x_t·W + b.

    Args:
        x_proj: the input projection of this step, (batch, units).
        h: the previous hidden state, (batch, units).
        recurrent_kernel: U, (units, units).
        activation: g, a function of Tensors (default tanh).
    """
    return activation(x_proj + h @ recurrent_kernel)


def lstm_cell(x_proj, h, c, recurrent_kernel, activation=tanh, recurrent_activation=sigmoid):
    """One LSTM step (Hochreiter & Schmidhuber, 1997, with a forget gate); returns (h_t, c_t).

    z = x_proj_t + h_{t−1}·U split into the gates [i, f, ĉ, o] (Keras's and PyTorch's order),
    c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(ĉ),  h_t = σ(o) ⊙ tanh(c_t).

    Args:
        x_proj: x_t·W + b for this step, (batch, 4·units).
        h, c: the previous hidden and cell states, (batch, units) each.
        recurrent_kernel: U, (units, 4·units).
        activation, recurrent_activation: tanh and σ above (Keras's names).
    """
    i, f, g, o = split(x_proj + h @ recurrent_kernel, 4, axis=-1)
    c = recurrent_activation(f) * c + recurrent_activation(i) * activation(g)
    h = recurrent_activation(o) * activation(c)
    return h, c


def gru_cell(x_proj, h, recurrent_kernel, recurrent_bias=None, reset_after=True,
             activation=tanh, recurrent_activation=sigmoid) -> Tensor:
    """One GRU step (Cho et al., 2014) in Keras's gate order [z, r, h]; returns h_t.

    With ``reset_after=True`` (Keras's default, and PyTorch's ``nn.GRU``) the reset gate scales
    the recurrent projection: ĥ = tanh(x_h + r ⊙ (h_{t−1}·U_h + b′_h)); with ``False`` (the
    original paper) it scales the state first: ĥ = tanh(x_h + (r ⊙ h_{t−1})·U_h). Then
    h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ.

    Args:
        x_proj: x_t·W + b for this step, (batch, 3·units).
        h: the previous hidden state, (batch, units).
        recurrent_kernel: U, (units, 3·units).
        recurrent_bias: b′, (3·units,), with ``reset_after`` (None otherwise).
    """
    x_z, x_r, x_h = split(x_proj, 3, axis=-1)
    units = h.shape[-1]
    if reset_after:
        h_proj = h @ recurrent_kernel
        if recurrent_bias is not None:
            h_proj = h_proj + recurrent_bias
        h_z, h_r, h_h = split(h_proj, 3, axis=-1)
        z = recurrent_activation(x_z + h_z)
        r = recurrent_activation(x_r + h_r)
        candidate = activation(x_h + r * h_h)
    else:
        u_zr, u_h = split(recurrent_kernel, [2 * units], axis=-1)
        h_z, h_r = split(h @ u_zr, 2, axis=-1)
        z = recurrent_activation(x_z + h_z)
        r = recurrent_activation(x_r + h_r)
        candidate = activation(x_h + (r * h) @ u_h)
    return z * h + (1 - z) * candidate


# -- the time loops, from primitive ops (the definition; any order of derivatives) -------------


class Unstack(Function):
    """ys = x[:, 0], x[:, 1], ... along ``axis`` (PyTorch's ``unbind``); ∂L/∂x = stack(gys).

    One node for all the slices: slicing step by step with ``x[:, t]`` would make each step's
    backward scatter into a zero array of x's full size, O(T²) work over T steps.
    """

    saved_inputs = ()

    multi_output = True

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        lead = (slice(None),) * self.axis
        return tuple(x[lead + (i,)] for i in range(x.shape[self.axis]))

    def backward(self, gys):
        return (stack(gys, axis=self.axis),)


def unstack(x: Tensor, axis: int = 0) -> tuple[Tensor, ...]:
    """The slices of ``x`` along ``axis``, each without that axis (``x.shape[axis]`` tensors)."""
    axis = axis % x.ndim
    return Unstack(axis)(x)


def _input_projection(x, kernel, bias):
    """x·W + b for every step at once: (batch, time, features) → (batch, time, k·units)."""
    batch, steps, features = x.shape
    projected = x.reshape(batch * steps, features) @ kernel
    if bias is not None:
        projected = projected + bias
    return projected.reshape(batch, steps, kernel.shape[-1])


def simple_rnn_unrolled(x, h0, kernel, recurrent_kernel, bias, activation=tanh):
    """The SimpleRNN time loop from primitive ops; returns (sequence, h_T). See :func:`simple_rnn`.

    ``activation`` is a function of Tensors; ``bias`` may be None.
    """
    h, outputs = h0, []
    for x_t in unstack(_input_projection(x, kernel, bias), axis=1):
        h = simple_rnn_cell(x_t, h, recurrent_kernel, activation)
        outputs.append(h)
    return stack(outputs, axis=1), h


def lstm_unrolled(x, h0, c0, kernel, recurrent_kernel, bias, activation=tanh,
                  recurrent_activation=sigmoid):
    """The LSTM time loop from primitive ops; returns (sequence, h_T, c_T). See :func:`lstm`."""
    h, c, outputs = h0, c0, []
    for x_t in unstack(_input_projection(x, kernel, bias), axis=1):
        h, c = lstm_cell(x_t, h, c, recurrent_kernel, activation, recurrent_activation)
        outputs.append(h)
    return stack(outputs, axis=1), h, c


def gru_unrolled(x, h0, kernel, recurrent_kernel, bias, reset_after=True, activation=tanh,
                 recurrent_activation=sigmoid):
    """The GRU time loop from primitive ops; returns (sequence, h_T). See :func:`gru`.

    ``bias`` is (2, 3·units) [input bias; recurrent bias] with ``reset_after``, else (3·units,)
    (or None for no bias).
    """
    input_bias = recurrent_bias = bias
    if bias is not None and reset_after:
        input_bias, recurrent_bias = bias[0], bias[1]
    h, outputs = h0, []
    for x_t in unstack(_input_projection(x, kernel, input_bias), axis=1):
        h = gru_cell(x_t, h, recurrent_kernel, recurrent_bias, reset_after, activation,
                     recurrent_activation)
        outputs.append(h)
    return stack(outputs, axis=1), h


# -- the fused time loops: forward and BPTT on arrays, one node per sequence -------------------

#: OpenBLAS multiplies matrices with m·k·n ≤ 10⁶ by a kernel that does not first copy ("pack")
#: its operands into blocks; for the small products of a time loop that copy costs as much as
#: the arithmetic.
SMALL_PRODUCT = 1_000_000


class StepProduct:
    """a ↦ a·W for the (batch, k) operand of every time step, with W (k, n) fixed for the loop.

    One product ``a @ W`` packs all k·n numbers of W on every call. Split into column blocks
    W[:, j·w : (j+1)·w] narrow enough for OpenBLAS's packing-free small-matrix kernel and run
    as one batched matmul, the same product is 1.3–1.6× faster at batch 32 and 256 units (on
    CuPy, or when the product is large anyway, W stays one block).

    >>> import numpy as np
    >>> a, w = np.ones((32, 256), np.float32), np.ones((256, 1024), np.float32)
    >>> product = StepProduct(w, batch=32)
    >>> product.blocks.shape                                   # 16 blocks of 64 columns
    (16, 256, 64)
    >>> bool((product(a, np.empty((32, 1024), np.float32)) == a @ w).all())
    True
    """

    def __init__(self, weight, batch: int):
        self.xp = backend.get_array_module(weight)
        k, n = weight.shape
        width = _block_width(batch * k, n) if self.xp is np else n
        self.out_shape = (batch, n // width, width)
        self.blocks = self.xp.ascontiguousarray(
            weight.reshape(k, n // width, width).transpose(1, 0, 2))

    def __call__(self, a, out):
        """out[...] = a·W, for a (batch, k) and a contiguous out (batch, n); returns out."""
        self.xp.matmul(a, self.blocks, out=out.reshape(self.out_shape).transpose(1, 0, 2))
        return out


def _block_width(rows_times_k: int, n: int) -> int:
    """The widest divisor w ≥ 16 of n with rows·k·w ≤ SMALL_PRODUCT (n when none is needed)."""
    widest = SMALL_PRODUCT // max(rows_times_k, 1)
    if widest >= n:
        return n
    for width in range(widest, 15, -1):
        if n % width == 0:
            return width
    return n


class _FusedSequence(Function):
    """Shared plumbing of the fused time loops (first-order only).

    Inside, arrays are time major, (time, batch, ...), so that the state of step t is one
    contiguous block and ``h[:-1]`` (the states h_0 ... h_{T−1} that the steps read) is one
    matrix for the weight gradient.
    """

    multi_output = True
    differentiable_backward = False

    @staticmethod
    def _time_major(x):
        """(batch, time, features) → a contiguous (time·batch, features) copy."""
        batch, steps, features = x.shape
        xp = backend.get_array_module(x)
        return xp.ascontiguousarray(x.transpose(1, 0, 2)).reshape(steps * batch, features)

    @staticmethod
    def _batch_major(a):
        """(time, batch, units) → a contiguous (batch, time, units) copy."""
        return backend.get_array_module(a).ascontiguousarray(a.transpose(1, 0, 2))

    def _input_gradients(self, dz, kernel):
        """∂L/∂x = ∂L/∂Z·Wᵀ over all steps, back to (batch, time, features)."""
        steps, batch, _ = dz.shape
        kernels.blas_for(dz.size * kernel.shape[0])
        gx = dz.reshape(steps * batch, -1) @ kernel.T
        return Tensor(self._batch_major(gx.reshape(steps, batch, -1)))

    @staticmethod
    def _weight_gradient(inputs_tm, dz):
        """Σ_t a_tᵀ·∂L/∂z_t as one product: (time·batch, n)ᵀ · (time·batch, k)."""
        steps, batch, width = dz.shape
        kernels.blas_for(inputs_tm.size * width)
        return Tensor(inputs_tm.reshape(steps * batch, -1).T @ dz.reshape(steps * batch, width))

    @staticmethod
    def _bias_gradient(dz):
        """Σ over steps and samples of ∂L/∂z, as a product with ones (faster than sum)."""
        xp = backend.get_array_module(dz)
        rows = dz.shape[0] * dz.shape[1]
        return xp.ones(rows, dtype=dz.dtype) @ dz.reshape(rows, -1)


def _tanh_inplace(xp, a):
    xp.tanh(a, out=a)


def _sigmoid_inplace(xp, a):
    """σ(a) = (1 + tanh(a/2)) / 2, in place (tanh cannot overflow)."""
    a *= 0.5
    xp.tanh(a, out=a)
    a += 1
    a *= 0.5


def _relu_inplace(xp, a):
    xp.maximum(a, 0, out=a)


def _linear_inplace(xp, a):
    pass


#: Activations the fused SimpleRNN supports: (apply in place, derivative from the output y).
FUSED_ACTIVATIONS = {
    "tanh": (_tanh_inplace, lambda y: 1 - y * y),
    "sigmoid": (_sigmoid_inplace, lambda y: y * (1 - y)),
    "relu": (_relu_inplace, lambda y: (y > 0).astype(y.dtype)),
    "linear": (_linear_inplace, None),
}


class SimpleRNNSequence(_FusedSequence):
    """The whole SimpleRNN loop: inputs (x, h0, W, U, b), outputs (sequence, h_T).

    Backward through time: ∂L/∂a_t = (∂L/∂h_t)·g′(a_t) with g′ read off h_t, and
    ∂L/∂h_{t−1} = ∂L/∂a_t·Uᵀ, plus the gradient the output of step t−1 receives directly.
    """

    def __init__(self, activation: str = "tanh"):
        self.activation = activation

    def forward(self, x, h0, kernel, recurrent_kernel, bias):
        kernels.blas_for(x.size * kernel.shape[1])  # its products on BLAS's threads
        xp = backend.get_array_module(x)
        batch, steps, _ = x.shape
        apply_activation, _ = FUSED_ACTIVATIONS[self.activation]
        self.x_tm = self._time_major(x)
        z = (self.x_tm @ kernel + bias).reshape(steps, batch, -1)
        h = xp.empty((steps + 1, *h0.shape), dtype=x.dtype)  # h[t + 1] is the output of step t
        h[0] = h0
        recurrent = StepProduct(recurrent_kernel, batch)
        for t in range(steps):
            a = recurrent(h[t], out=h[t + 1])
            a += z[t]
            apply_activation(xp, a)
        self.h = h
        return self._batch_major(h[1:]), h[steps].copy()

    def backward(self, gys):
        g_sequence, g_h = (g.data for g in gys)
        x, h0, kernel, recurrent_kernel, _ = self.inputs
        xp = backend.get_array_module(g_h)
        _, derivative = FUSED_ACTIVATIONS[self.activation]
        h, steps = self.h, self.h.shape[0] - 1
        g_sequence_tm = g_sequence.transpose(1, 0, 2)
        recurrent_t = StepProduct(recurrent_kernel.data.T, g_h.shape[0])
        da = xp.empty_like(h[1:])  # ∂L/∂a_t for every step: a_t = x_t·W + h_{t−1}·U + b
        dh = g_h.copy()
        for t in reversed(range(steps)):
            dh += g_sequence_tm[t]
            if derivative is None:
                da[t] = dh
            else:
                xp.multiply(dh, derivative(h[t + 1]), out=da[t])
            recurrent_t(da[t], out=dh)
        return (
            self._input_gradients(da, kernel.data) if x.requires_grad else None,
            Tensor(dh) if h0.requires_grad else None,
            self._weight_gradient(self.x_tm, da),
            self._weight_gradient(h[:-1], da),
            Tensor(self._bias_gradient(da)),
        )


def _lstm_gate_affine(xp, units, dtype):
    """(scale, shift) per gate column: σ for i, f, o and tanh for ĉ, all from one tanh.

    σ(z) = ½·tanh(z/2) + ½, so with the i, f, o columns of W, U and b halved, the gates are
    scale·tanh(z′) + shift with scale = shift = ½ there and (1, 0) on the ĉ block.
    """
    scale = xp.full(4 * units, 0.5, dtype=dtype)
    scale[2 * units:3 * units] = 1
    shift = scale.copy()
    shift[2 * units:3 * units] = 0
    return scale, shift


#: Inside :func:`chainrule.kernels.own_threads`, the fused LSTM deals its batch out in blocks of
#: rows, one per thread, each block no smaller than this.
LSTM_MIN_ROWS = 8


class _LSTMRows:
    """The LSTM loop over one block of the batch's rows, forward and back: one thread's work.

    The rows of a batch never meet inside the loop, so blocks of them run their time loops on
    different threads without waiting for each other, and each block's step products
    (rows × units by units × 4·units) cost the share of its rows. Only the weight gradients sum
    over the blocks.

    Arrays are time major, (time, rows, ...). Slot t of ``operands`` holds a_t = [x_t, 1, h_t]
    for the step that reads h_t and writes h_{t+1} (h_0 the initial state), so that

    * the input projections with the bias are one product [x_t, 1]·[W; b] for all steps,
    * the state h_t is one block of slot t, and the step product reads it in place,
    * the weight gradients are one product over all steps and rows:
      [∂L/∂W; ∂L/∂b; ∂L/∂U] = Σ_t a_tᵀ·∂L/∂z_t.
    """

    def __init__(self, start: int, stop: int):
        self.rows = slice(start, stop)

    def forward(self, x, h0, c0, input_weights, recurrent_kernel, scale, shift, outputs):
        """Run the steps (``input_weights`` [W; b] and ``recurrent_kernel`` U with the gate
        scale applied) and write this block's rows of the three outputs."""
        xp = backend.get_array_module(x)
        steps, features = x.shape[1:]
        rows, units = h0[self.rows].shape
        operands = xp.empty((steps + 1, rows, features + 1 + units), dtype=x.dtype)
        operands[:steps, :, :features] = x[self.rows].transpose(1, 0, 2)
        operands[:steps, :, features] = 1
        h = operands[:, :, features + 1:]  # h[t + 1]: the output of step t
        h[0] = h0[self.rows]
        projection = operands[:steps, :, :features + 1].reshape(steps * rows, features + 1)
        gates = (projection @ input_weights).reshape(steps, rows, 4 * units)
        recurrent = StepProduct(recurrent_kernel, rows)
        c = xp.empty((steps + 1, rows, units), dtype=x.dtype)
        tanh_c = xp.empty_like(c[1:])
        z = xp.empty((rows, 4 * units), dtype=x.dtype)
        c[0] = c0[self.rows]
        step = kernels.select(x).lstm_step_forward  # the elementwise work of a step, fused
        for t in range(steps):
            recurrent(h[t], out=z)
            step(z, gates[t], scale, shift, c[t], c[t + 1], tanh_c[t], h[t + 1])
        self.operands, self.gates, self.c, self.tanh_c = operands, gates, c, tanh_c
        sequence, h_last, c_last = outputs
        sequence[self.rows] = h[1:].transpose(1, 0, 2)
        h_last[self.rows], c_last[self.rows] = h[steps], c[steps]

    def backward(self, g_sequence, g_h, g_c, kernel, recurrent_kernel, g_x, g_states):
        """BPTT over this block: writes its rows of ∂L/∂x (when ``g_x`` is an array) and of
        ∂L/∂h_0, ∂L/∂c_0 (``g_states``); returns its term of [∂L/∂W; ∂L/∂b; ∂L/∂U]."""
        gates, c, tanh_c = self.gates, self.c, self.tanh_c
        steps, rows, width = gates.shape
        g_sequence_tm = g_sequence[self.rows].transpose(1, 0, 2)
        recurrent_t = StepProduct(recurrent_kernel.T, rows)
        dz = gates  # ∂L/∂z_t replaces the gates of step t, which only step t reads
        dh, dc = g_h[self.rows].copy(), g_c[self.rows].copy()
        step = kernels.select(g_h).lstm_step_backward
        for t in reversed(range(steps)):
            dh += g_sequence_tm[t]
            step(dh, dc, gates[t], c[t], tanh_c[t], dz[t])
            recurrent_t(dz[t], out=dh)
        self.gates = None
        g_states[0][self.rows], g_states[1][self.rows] = dh, dc
        dz = dz.reshape(steps * rows, width)
        if g_x is not None:
            g_x[self.rows] = (dz @ kernel.T).reshape(steps, rows, -1).transpose(1, 0, 2)
        return self.operands[:steps].reshape(steps * rows, -1).T @ dz


def _lstm_threads(x, units: int):
    """:func:`chainrule.kernels.own_threads` for a batch of NumPy rows that two blocks can
    share (≥ 2·``LSTM_MIN_ROWS``), given the step products' work (batch·steps·units·4·units);
    otherwise nothing: one block runs its products on BLAS's threads."""
    batch, steps = x.shape[:2]
    if backend.get_array_module(x) is np and batch >= 2 * LSTM_MIN_ROWS:
        return kernels.own_threads(work=batch * steps * units * 4 * units, hold=True)
    kernels.blas_for(batch * steps * units * 4 * units)  # one block: its products on BLAS
    return contextlib.nullcontext()


def _row_blocks(x) -> list[_LSTMRows]:
    """x's batch cut into one block of rows per thread that chainrule's kernels may use now
    (one outside :func:`chainrule.kernels.own_threads`, which the op enters itself for a batch
    large enough: :func:`_lstm_threads`)."""
    batch = x.shape[0]
    count = 1
    if backend.get_array_module(x) is np:
        count = max(1, min(kernels.workers(), batch // LSTM_MIN_ROWS))
    return [_LSTMRows(start, stop) for start, stop in kernels.split(batch, count)]


class LSTMSequence(_FusedSequence):
    """The whole LSTM loop: inputs (x, h0, c0, W, U, b), outputs (sequence, h_T, c_T).

    Backward through time, from h_t = o ⊙ tanh(c_t) and c_t = f ⊙ c_{t−1} + i ⊙ ĉ:

        ∂o = ∂h_t ⊙ tanh(c_t)          ∂c_t += ∂h_t ⊙ o ⊙ (1 − tanh²(c_t))
        ∂i = ∂c_t ⊙ ĉ    ∂f = ∂c_t ⊙ c_{t−1}    ∂ĉ = ∂c_t ⊙ i    ∂c_{t−1} = ∂c_t ⊙ f
        ∂z_t = [∂i, ∂f, ∂ĉ, ∂o] ⊙ [σ′, σ′, tanh′, σ′]     ∂h_{t−1} = ∂z_t·Uᵀ (+ its own output's)

    with σ′ = σ(1 − σ) and tanh′ = 1 − tanh², read off the stored gates. The op enters
    :func:`chainrule.kernels.own_threads` itself, and the batch's rows run in blocks on
    chainrule's threads (:class:`_LSTMRows`), BLAS on one thread each.
    """

    def forward(self, x, h0, c0, kernel, recurrent_kernel, bias):
        xp = backend.get_array_module(x)
        batch, steps, _ = x.shape
        units = h0.shape[-1]
        scale, shift = _lstm_gate_affine(xp, units, x.dtype)
        weights = xp.concatenate([kernel, bias[None]]) * scale, recurrent_kernel * scale
        outputs = (xp.empty((batch, steps, units), dtype=x.dtype),
                   xp.empty_like(h0), xp.empty_like(c0))
        with _lstm_threads(x, units):
            self.blocks = _row_blocks(x)
            kernels.run_each(lambda k: self.blocks[k].forward(
                x, h0, c0, *weights, scale, shift, outputs), len(self.blocks))
        return outputs

    def backward(self, gys):
        g_sequence, g_h, g_c = (g.data for g in gys)
        x, h0, c0, kernel, recurrent_kernel, _ = self.inputs
        xp = backend.get_array_module(g_h)
        if self.blocks[0].gates is None:  # backward once more (retain_graph): the first
            self.forward(*(t.data for t in self.inputs))  # turned the gates into ∂L/∂z
        g_x = xp.empty_like(x.data) if x.requires_grad else None
        g_states = xp.empty_like(g_h), xp.empty_like(g_c)
        with _lstm_threads(x.data, g_h.shape[-1]):
            terms = kernels.run_each(lambda k: self.blocks[k].backward(
                g_sequence, g_h, g_c, kernel.data, recurrent_kernel.data, g_x, g_states),
                len(self.blocks))
        g_weights, features = kernels.summed(terms), x.shape[-1]  # [∂L/∂W; ∂L/∂b; ∂L/∂U]
        return (
            Tensor(g_x) if g_x is not None else None,
            Tensor(g_states[0]) if h0.requires_grad else None,
            Tensor(g_states[1]) if c0.requires_grad else None,
            Tensor(g_weights[:features]), Tensor(g_weights[features + 1:]),
            Tensor(g_weights[features]),
        )


def _update_and_candidate_gradients(xp, dh, h_previous, z, candidate, d_z, d_a) -> None:
    """The GRU gate gradients that do not depend on where the reset gate sits, written into
    ``d_z`` and ``d_a``. From h_t = ĥ + z ⊙ (h_{t−1} − ĥ), z = σ(a_z), ĥ = tanh(a_h)::

        ∂a_z = ∂h_t ⊙ (h_{t−1} − ĥ) ⊙ z(1 − z)      ∂a_h = ∂h_t ⊙ (1 − z) ⊙ (1 − ĥ²)
    """
    xp.multiply(dh, h_previous - candidate, out=d_z)
    d_z *= z * (1 - z)
    xp.multiply(dh, 1 - z, out=d_a)
    d_a *= 1 - candidate * candidate


class GRUSequence(_FusedSequence):
    """The whole GRU loop with ``reset_after`` (Keras's default, PyTorch's ``nn.GRU``).

    Inputs (x, h0, W, U, b) with b of shape (2, 3·units) [input bias; recurrent bias]; outputs
    (sequence, h_T). Backward through time, from h_t = ĥ + z ⊙ (h_{t−1} − ĥ),
    ĥ = tanh(x_h + r ⊙ p_h) with p = h_{t−1}·U + b′:

        ∂z = ∂h_t ⊙ (h_{t−1} − ĥ) ⊙ σ′     ∂a_h = ∂h_t ⊙ (1 − z) ⊙ (1 − ĥ²)     ∂r = ∂a_h ⊙ p_h ⊙ σ′
        ∂(x·W) = [∂z, ∂r, ∂a_h]    ∂p = [∂z, ∂r, ∂a_h ⊙ r]    ∂h_{t−1} = ∂h_t ⊙ z + ∂p·Uᵀ
    """

    def forward(self, x, h0, kernel, recurrent_kernel, bias):
        kernels.blas_for(x.size * kernel.shape[1])  # its products on BLAS's threads
        xp = backend.get_array_module(x)
        batch, steps, _ = x.shape
        units = h0.shape[-1]
        self.x_tm = self._time_major(x)
        x_proj = (self.x_tm @ kernel + bias[0]).reshape(steps, batch, 3 * units)
        recurrent = StepProduct(recurrent_kernel, batch)
        h = xp.empty((steps + 1, batch, units), dtype=x.dtype)
        h[0] = h0
        gates = xp.empty((steps, batch, 3 * units), dtype=x.dtype)  # [z, r, ĥ] of every step
        p_h = xp.empty((steps, batch, units), dtype=x.dtype)  # (h_{t−1}·U + b′)_h
        p = xp.empty((batch, 3 * units), dtype=x.dtype)
        for t in range(steps):
            recurrent(h[t], out=p)
            p += bias[1]
            zr = gates[t, :, :2 * units]
            xp.add(x_proj[t, :, :2 * units], p[:, :2 * units], out=zr)
            _sigmoid_inplace(xp, zr)
            r = gates[t, :, units:2 * units]
            candidate = gates[t, :, 2 * units:]
            p_h[t] = p[:, 2 * units:]
            xp.multiply(r, p_h[t], out=candidate)
            candidate += x_proj[t, :, 2 * units:]
            xp.tanh(candidate, out=candidate)
            # h_t = ĥ + z ⊙ (h_{t−1} − ĥ)
            xp.subtract(h[t], candidate, out=h[t + 1])
            h[t + 1] *= gates[t, :, :units]
            h[t + 1] += candidate
        self.h, self.gates, self.p_h = h, gates, p_h
        return self._batch_major(h[1:]), h[steps].copy()

    def backward(self, gys):
        g_sequence, g_h = (g.data for g in gys)
        x, h0, kernel, recurrent_kernel, _ = self.inputs
        xp = backend.get_array_module(g_h)
        h, gates, p_h = self.h, self.gates, self.p_h
        steps, units = gates.shape[0], h.shape[-1]
        g_sequence_tm = g_sequence.transpose(1, 0, 2)
        recurrent_t = StepProduct(recurrent_kernel.data.T, g_h.shape[0])
        d_proj = xp.empty_like(gates)  # ∂L/∂(x_t·W + b)
        d_rec = xp.empty_like(gates)  # ∂L/∂p_t, p_t = h_{t−1}·U + b′
        dh, d_previous = g_h.copy(), xp.empty_like(g_h)
        for t in reversed(range(steps)):
            dh += g_sequence_tm[t]
            z, r, candidate = (gates[t, :, k * units:(k + 1) * units] for k in range(3))
            d_z, d_r, d_a = (d_proj[t, :, k * units:(k + 1) * units] for k in range(3))
            _update_and_candidate_gradients(xp, dh, h[t], z, candidate, d_z, d_a)
            xp.multiply(d_a, p_h[t], out=d_r)
            d_r *= r * (1 - r)
            d_rec[t, :, :2 * units] = d_proj[t, :, :2 * units]
            xp.multiply(d_a, r, out=d_rec[t, :, 2 * units:])
            dh *= z
            dh += recurrent_t(d_rec[t], out=d_previous)
        g_bias = xp.stack([self._bias_gradient(d_proj), self._bias_gradient(d_rec)])
        return (
            self._input_gradients(d_proj, kernel.data) if x.requires_grad else None,
            Tensor(dh) if h0.requires_grad else None,
            self._weight_gradient(self.x_tm, d_proj),
            self._weight_gradient(h[:-1], d_rec),
            Tensor(g_bias),
        )


class GRUResetBeforeSequence(_FusedSequence):
    """The whole GRU loop with ``reset_after=False`` (Cho et al.'s original cell).

    Inputs (x, h0, W, U, b) with b of shape (3·units,); outputs (sequence, h_T). Here
    ĥ = tanh(x_h + (r ⊙ h_{t−1})·U_h), so ∂(r ⊙ h_{t−1}) = ∂a_h·U_hᵀ gives ∂r and a third path
    into ∂h_{t−1}; U_h's gradient is (r ⊙ h_{t−1})ᵀ·∂a_h over all steps.
    """

    def forward(self, x, h0, kernel, recurrent_kernel, bias):
        kernels.blas_for(x.size * kernel.shape[1])  # its products on BLAS's threads
        xp = backend.get_array_module(x)
        batch, steps, _ = x.shape
        units = h0.shape[-1]
        self.x_tm = self._time_major(x)
        x_proj = (self.x_tm @ kernel + bias).reshape(steps, batch, 3 * units)
        update_reset = StepProduct(recurrent_kernel[:, :2 * units], batch)
        candidate_product = StepProduct(recurrent_kernel[:, 2 * units:], batch)
        h = xp.empty((steps + 1, batch, units), dtype=x.dtype)
        h[0] = h0
        gates = xp.empty((steps, batch, 3 * units), dtype=x.dtype)  # [z, r, ĥ]
        reset_h = xp.empty((steps, batch, units), dtype=x.dtype)  # r ⊙ h_{t−1}
        zr, candidate = xp.empty((batch, 2 * units), x.dtype), xp.empty((batch, units), x.dtype)
        for t in range(steps):
            update_reset(h[t], out=zr)
            zr += x_proj[t, :, :2 * units]
            _sigmoid_inplace(xp, zr)
            gates[t, :, :2 * units] = zr
            xp.multiply(zr[:, units:], h[t], out=reset_h[t])
            candidate_product(reset_h[t], out=candidate)
            candidate += x_proj[t, :, 2 * units:]
            xp.tanh(candidate, out=gates[t, :, 2 * units:])
            xp.subtract(h[t], gates[t, :, 2 * units:], out=h[t + 1])
            h[t + 1] *= zr[:, :units]
            h[t + 1] += gates[t, :, 2 * units:]
        self.h, self.gates, self.reset_h = h, gates, reset_h
        return self._batch_major(h[1:]), h[steps].copy()

    def backward(self, gys):
        g_sequence, g_h = (g.data for g in gys)
        x, h0, kernel, recurrent_kernel, _ = self.inputs
        xp = backend.get_array_module(g_h)
        h, gates = self.h, self.gates
        steps, units = gates.shape[0], h.shape[-1]
        batch = g_h.shape[0]
        g_sequence_tm = g_sequence.transpose(1, 0, 2)
        update_reset_t = StepProduct(recurrent_kernel.data[:, :2 * units].T, batch)
        candidate_t = StepProduct(recurrent_kernel.data[:, 2 * units:].T, batch)
        d_proj = xp.empty_like(gates)
        dh = g_h.copy()
        d_reset_h, d_previous = xp.empty_like(dh), xp.empty_like(dh)
        for t in reversed(range(steps)):
            dh += g_sequence_tm[t]
            z, r, candidate = (gates[t, :, k * units:(k + 1) * units] for k in range(3))
            d_z, d_r, d_a = (d_proj[t, :, k * units:(k + 1) * units] for k in range(3))
            _update_and_candidate_gradients(xp, dh, h[t], z, candidate, d_z, d_a)
            candidate_t(d_a, out=d_reset_h)
            xp.multiply(d_reset_h, h[t], out=d_r)
            d_r *= r * (1 - r)
            dh *= z
            dh += d_reset_h * r
            dh += update_reset_t(d_proj[t, :, :2 * units], out=d_previous)
        g_recurrent = xp.concatenate([
            self._weight_gradient(h[:-1], d_proj[:, :, :2 * units]).data,
            self._weight_gradient(self.reset_h, d_proj[:, :, 2 * units:]).data,
        ], axis=1)
        return (
            self._input_gradients(d_proj, kernel.data) if x.requires_grad else None,
            Tensor(dh) if h0.requires_grad else None,
            self._weight_gradient(self.x_tm, d_proj),
            Tensor(g_recurrent),
            Tensor(self._bias_gradient(d_proj)),
        )


# -- the functions layers call ------------------------------------------------------------------


def _zeros_like_bias(kernel: Tensor, shape) -> Tensor:
    xp = backend.get_array_module(kernel.data)
    return Tensor(xp.zeros(shape, dtype=kernel.dtype))


def _check_shapes(name, x, states, kernel, recurrent_kernel, gates):
    """Raise a ValueError naming ``name`` and the shapes when the operands do not fit."""
    if x.ndim != 3:
        raise ValueError(f"{name}: x must be (batch, time, features), got shape {x.shape}")
    batch, _, features = x.shape
    units = recurrent_kernel.shape[0]
    expected = {"kernel": (features, gates * units), "recurrent_kernel": (units, gates * units)}
    for label, tensor, shape in (("kernel", kernel, expected["kernel"]),
                                 ("recurrent_kernel", recurrent_kernel,
                                  expected["recurrent_kernel"])):
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name}: {label} must have shape {shape} for x of shape {x.shape} "
                             f"and {units} units, got {tensor.shape}")
    for state in states:
        if tuple(state.shape) != (batch, units):
            raise ValueError(f"{name}: initial state must have shape {(batch, units)} for x of "
                             f"shape {x.shape}, got {state.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{name}: x of shape {x.shape} has no time steps")


def simple_rnn(x, h0, kernel, recurrent_kernel, bias=None, activation: str = "tanh"):
    """The fused SimpleRNN loop: h_t = g(x_t·W + h_{t−1}·U + b); returns (sequence, h_T).

    Args:
        x: (batch, time, features).
        h0: the initial state, (batch, units).
        kernel, recurrent_kernel, bias: W (features, units), U (units, units), b (units,) or None.
        activation: g, one of ``FUSED_ACTIVATIONS`` ("tanh", "sigmoid", "relu", "linear");
            any other function runs through :func:`simple_rnn_unrolled`.
    """
    _check_shapes("simple_rnn", x, [h0], kernel, recurrent_kernel, 1)
    if activation not in FUSED_ACTIVATIONS:
        raise ValueError(f"simple_rnn: the fused loop supports the activations "
                         f"{sorted(FUSED_ACTIVATIONS)}, got {activation!r}")
    if bias is None:
        bias = _zeros_like_bias(kernel, kernel.shape[-1])
    return SimpleRNNSequence(activation)(x, h0, kernel, recurrent_kernel, bias)


def lstm(x, h0, c0, kernel, recurrent_kernel, bias=None):
    """The fused LSTM loop (see :func:`lstm_cell`); returns (sequence, h_T, c_T).

    Args:
        x: (batch, time, features).
        h0, c0: the initial hidden and cell states, (batch, units) each.
        kernel, recurrent_kernel, bias: W (features, 4·units), U (units, 4·units),
            b (4·units,) or None; gate blocks in the order i, f, c, o.
    """
    _check_shapes("lstm", x, [h0, c0], kernel, recurrent_kernel, 4)
    if bias is None:
        bias = _zeros_like_bias(kernel, kernel.shape[-1])
    return LSTMSequence()(x, h0, c0, kernel, recurrent_kernel, bias)


def gru(x, h0, kernel, recurrent_kernel, bias=None, reset_after: bool = True):
    """The fused GRU loop (see :func:`gru_cell`); returns (sequence, h_T).

    Args:
        x: (batch, time, features).
        h0: the initial state, (batch, units).
        kernel, recurrent_kernel: W (features, 3·units) and U (units, 3·units), gate blocks in
            Keras's order z, r, h.
        bias: (2, 3·units) [input; recurrent] with ``reset_after``, else (3·units,); or None.
        reset_after: where the reset gate applies (see :func:`gru_cell`).
    """
    _check_shapes("gru", x, [h0], kernel, recurrent_kernel, 3)
    width = kernel.shape[-1]
    if reset_after:
        bias = _zeros_like_bias(kernel, (2, width)) if bias is None else bias
        return GRUSequence()(x, h0, kernel, recurrent_kernel, bias)
    bias = _zeros_like_bias(kernel, width) if bias is None else bias
    return GRUResetBeforeSequence()(x, h0, kernel, recurrent_kernel, bias)


__all__ = [
    "FUSED_ACTIVATIONS", "GRUResetBeforeSequence", "GRUSequence", "LSTMSequence",
    "SimpleRNNSequence", "StepProduct", "Unstack", "gru", "gru_cell", "gru_unrolled", "lstm",
    "lstm_cell", "lstm_unrolled", "simple_rnn", "simple_rnn_cell", "simple_rnn_unrolled", "unstack",
]
