"""Fused elementwise kernels: a tree of elementwise ops computed in one pass over memory.

:func:`chainrule.graph.passes.fuse_elementwise` finds the groups; this module turns one group
into a :class:`FusedNode`. Each op of the group is first written as a few *primitives* (add,
multiply, tanh, maximum, ...: a sigmoid is ``tanh(x·½)``, ``+1``, ``·½``, exactly as its
``forward`` computes it), then the primitives run in one of two ways:

* **compiled** (Numba, the ``[fast]`` extra, when :func:`chainrule.kernels.active` is
  "numba"): the expression becomes Python source for one element, compiled with ``njit``
  into a loop over the flattened arrays (every operand of the output's shape, C-contiguous,
  or 0-d), or with ``vectorize`` into a ufunc when operands broadcast. Only groups of
  *cheap* primitives are compiled: without Intel's SVML, Numba's ``exp``/``tanh``/``log``
  cost about 15 ns an element, many times NumPy's SIMD loops, so a group with one of them
  runs the NumPy way. Kernels are cached per expression and constants, so tracing again
  does not compile again.
* **NumPy** (always there): the primitives as ufunc calls with ``out=`` in one generated
  function, over blocks of ``BLOCK_BYTES`` so the temporaries stay in cache (whole arrays,
  with one temporary per live intermediate, when they fit in a block or operands
  broadcast), the result written into one output array.

Both compute in the arrays' dtypes (a Python number takes the dtype of the op's result, as
NumPy's weak scalars do), in the ops' order, so the results equal the ops run one by one bit
for bit: NumPy runs the same ufuncs, and what Numba compiles is IEEE arithmetic (correctly
rounded, no fast-math, no fused multiply-add) and a ``maximum`` that propagates NaN as
NumPy's does.
"""

from __future__ import annotations

import numpy as np

from chainrule import kernels
from chainrule.graph.trace import ArrayNode
from chainrule.ops.elementwise import (
    Abs,
    Add,
    Clip,
    Div,
    Exp,
    Log,
    Maximum,
    Minimum,
    Mul,
    Neg,
    PowConstant,
    ReLU,
    Sigmoid,
    Sqrt,
    Sub,
    Tanh,
)
from chainrule.ops.nn import _GELU_CUBIC, _SQRT_2_OVER_PI, ELU, GELU, LeakyReLU, Softplus

#: The bytes of one block of the NumPy evaluation: each temporary fits in a core's L2 cache.
BLOCK_BYTES = 1 << 18

#: The most operands one fused node takes (a ufunc takes at most 64 arguments).
MAX_LEAVES = 32


def _where_positive(x, y, out):
    """x where x > 0, else y (the select of LeakyReLU and ELU)."""
    positive = np.greater(x, 0)
    np.copyto(out, y)
    np.copyto(out, x, where=positive)
    return out


#: name -> (NumPy function taking ``out=``, Numba source for one element, cheap, may write
#: over an operand). "Cheap" primitives compile to a few instructions; the others are calls
#: into libm that NumPy's SIMD loops beat.
PRIMITIVES = {
    "add": (np.add, "({0} + {1})", True, True),
    "subtract": (np.subtract, "({0} - {1})", True, True),
    "multiply": (np.multiply, "({0} * {1})", True, True),
    "divide": (np.true_divide, "({0} / {1})", True, True),
    "negative": (np.negative, "(-{0})", True, True),
    "absolute": (np.absolute, "abs({0})", True, True),
    "sqrt": (np.sqrt, "np.sqrt({0})", True, True),
    "maximum": (np.maximum, "_maximum({0}, {1})", True, True),
    "minimum": (np.minimum, "_minimum({0}, {1})", True, True),
    "where_positive": (_where_positive, "({0} if {0} > 0 else {1})", True, False),
    "exp": (np.exp, "np.exp({0})", False, True),
    "expm1": (np.expm1, "np.expm1({0})", False, True),
    "log": (np.log, "np.log({0})", False, True),
    "log1p": (np.log1p, "np.log1p({0})", False, True),
    "tanh": (np.tanh, "np.tanh({0})", False, True),
    "power": (np.power, "({0} ** {1})", False, True),
}


class Const:
    """A number in an expression: it takes the dtype of the result of the op it is used in."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


# -- each op as primitives, as its forward computes it ------------------------------------------


def _sigmoid(emit, fn, x):
    t = emit("tanh", emit("multiply", x, Const(0.5)))
    return emit("multiply", emit("add", t, Const(1)), Const(0.5))


def _clip(emit, fn, x):
    if fn.lo is not None:
        x = emit("maximum", x, Const(fn.lo))
    if fn.hi is not None:
        x = emit("minimum", x, Const(fn.hi))
    return x


def _power(emit, fn, x):
    if fn.p == 2:  # NumPy squares for ** 2 and takes the root for ** 0.5
        return emit("multiply", x, x)
    if fn.p == 0.5:
        return emit("sqrt", x)
    return emit("power", x, Const(fn.p))


def _elu(emit, fn, x):
    negative = emit("expm1", emit("minimum", x, Const(0)))
    return emit("where_positive", x, emit("multiply", negative, Const(fn.alpha)))


def _softplus(emit, fn, x):
    y = emit("log1p", emit("exp", emit("negative", emit("absolute", x))))
    return emit("add", y, emit("maximum", x, Const(0)))


def _gelu_tanh(emit, fn, x):
    inner = emit("multiply", emit("multiply", x, x), Const(_GELU_CUBIC))
    inner = emit("multiply", emit("add", inner, Const(1)), x)
    cdf = emit("tanh", emit("multiply", inner, Const(_SQRT_2_OVER_PI)))
    cdf = emit("multiply", emit("add", cdf, Const(1)), Const(0.5))
    return emit("multiply", cdf, x)


#: Function type -> how to write it as primitives: ``expand(emit, function, *operands)``.
EXPANSIONS = {
    Add: lambda emit, fn, a, b: emit("add", a, b),
    Sub: lambda emit, fn, a, b: emit("subtract", a, b),
    Mul: lambda emit, fn, a, b: emit("multiply", a, b),
    Div: lambda emit, fn, a, b: emit("divide", a, b),
    Maximum: lambda emit, fn, a, b: emit("maximum", a, b),
    Minimum: lambda emit, fn, a, b: emit("minimum", a, b),
    Neg: lambda emit, fn, x: emit("negative", x),
    Abs: lambda emit, fn, x: emit("absolute", x),
    Sqrt: lambda emit, fn, x: emit("sqrt", x),
    Exp: lambda emit, fn, x: emit("exp", x),
    Log: lambda emit, fn, x: emit("log", x),
    Tanh: lambda emit, fn, x: emit("tanh", x),
    ReLU: lambda emit, fn, x: emit("maximum", x, Const(0)),
    LeakyReLU: lambda emit, fn, x: emit("where_positive", x,
                                        emit("multiply", x, Const(fn.slope))),
    Sigmoid: _sigmoid,
    Clip: _clip,
    PowConstant: _power,
    ELU: _elu,
    Softplus: _softplus,
    GELU: _gelu_tanh,
}


def can_fuse(function) -> bool:
    """Whether ``function`` (a recorded op) can be part of a fused kernel."""
    expand = EXPANSIONS.get(type(function))
    if expand is None or not function.pure:
        return False
    return type(function) is not GELU or function.approximate == "tanh"


def is_compound(function) -> bool:
    """Whether the op alone is several passes over memory (worth a kernel of its own)."""
    return type(function) in (Sigmoid, ELU, Softplus, GELU, LeakyReLU) or (
        type(function) is Clip and function.lo is not None and function.hi is not None)


# -- one group ------------------------------------------------------------------------------------


class Expression:
    """A group of ops as a list of primitive instructions over numbered operands.

    Operands are ``("leaf", i)`` (the i-th input array), ``("const", value)`` and
    ``("temp", k)`` (the result of instruction k). Each instruction is (primitive name,
    operands, result dtype).
    """

    def __init__(self, leaf_dtypes):
        self.leaf_dtypes = tuple(leaf_dtypes)
        self.instructions: list[tuple] = []

    def add_op(self, function, operands, dtype) -> tuple:
        """Append ``function`` applied to ``operands``; its result's operand."""
        def emit(name, *args):
            args = tuple(("const", a.value) if isinstance(a, Const) else a for a in args)
            self.instructions.append((name, args, np.dtype(dtype)))
            return ("temp", len(self.instructions) - 1)

        return EXPANSIONS[type(function)](emit, function, *operands)

    @property
    def cheap(self) -> bool:
        return all(PRIMITIVES[name][2] for name, _, _ in self.instructions)

    def key(self) -> tuple:
        """What identifies the compiled kernel: the instructions with their constants (and
        their types: 2 and 2.0 compile alike, but True and 1 should not be confused)."""
        return self.leaf_dtypes, tuple(
            (name, tuple((kind, type(v).__name__, v) for kind, v in args), dtype.str)
            for name, args, dtype in self.instructions)


class FusedNode(ArrayNode):
    """A group of elementwise ops run as one kernel; ``forward(*leaves)`` gives the root's
    value.

    Attributes:
        members: the fused (Function, input handles, output handle) in order, run one by one
            when the arrays are not what was recorded (another dtype, not NumPy arrays).
        buffer: a :class:`Buffer` the output is written into on every run (set by the memory
            plan when the output never escapes), or None: a new array each run.
    """

    __slots__ = ("members", "expression", "out_dtype", "buffer", "_numpy", "_compiled",
                 "_compilable")

    def __init__(self, members, leaves, output, expression, out_dtype, name):
        self.members = members
        self.inputs = tuple(leaves)
        self.outputs = (output,)
        self.name = name
        self.expression = expression
        self.out_dtype = np.dtype(out_dtype)
        self.buffer = None
        self._numpy = NumpyEvaluation(expression)
        self._compiled = None  # the Numba kernel, made on first use
        self._compilable = expression.cheap

    def forward(self, *arrays):
        dtypes = self.expression.leaf_dtypes
        for a, dtype in zip(arrays, dtypes):
            if type(a) is not np.ndarray or a.dtype != dtype:
                return self.run_members(arrays)
        shape = self._flat_shape(arrays)
        broadcast = shape is None
        if broadcast:
            shape = np.broadcast_shapes(*[a.shape for a in arrays])
        out = self._output(shape)
        if self._compilable and kernels.active() == "numba":
            if self._compiled is None:
                self._compiled = compiled_kernel(self.expression)
            self._compiled.run(arrays, out, broadcast)
        elif broadcast or out.nbytes <= BLOCK_BYTES:
            self._numpy.run_whole(arrays, out)
        else:
            self._numpy.run_blocks(arrays, out)
        return out

    def _flat_shape(self, arrays):
        """The output's shape when every operand has it (C-contiguous) or is 0-d; else
        None: the operands broadcast."""
        shape = None
        for a in arrays:
            if a.ndim == 0:
                continue
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                return None
            if not a.flags.c_contiguous:
                return None
        return () if shape is None else shape

    def _output(self, shape):
        buffer = self.buffer
        if buffer is None:
            return np.empty(shape, self.out_dtype)
        out = buffer.array
        if out is None or out.shape != shape:
            out = buffer.array = np.empty(shape, self.out_dtype)
        return out

    def run_members(self, arrays):
        """The ops one by one, as recorded (what the kernel must equal)."""
        values = dict(zip(self.inputs, arrays))
        for fn, inputs, output in self.members:
            values[output] = np.asarray(fn.forward(*[values[h] for h in inputs]))
        return values[self.outputs[0]]


class Buffer:
    """An output array kept between runs, shared by fused nodes whose values never live at
    the same time (the memory plan)."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None


# -- NumPy --------------------------------------------------------------------------------------


class NumpyEvaluation:
    """The instructions as ufunc calls with ``out=``, generated as one Python function
    ``evaluate(leaves..., temporaries..., out)`` (a list of calls costs more than the calls
    on small arrays). An instruction writes over an operand whose last use it is."""

    def __init__(self, expression: Expression):
        n_leaves = len(expression.leaf_dtypes)
        self.temp_dtypes, calls = _allocate_temporaries(expression.instructions)
        namespace: dict = {}
        lines = []
        for func, operands, dest in calls:
            names = []
            for kind, value in operands:
                if kind == "const":
                    names.append(f"c{len(namespace)}")
                    namespace[names[-1]] = value
                else:
                    names.append(f"{kind[0]}{value}")  # l0 (a leaf), t0 (a temporary)
            namespace[f"f{len(lines)}"] = func
            lines.append(f"    f{len(lines)}({', '.join(names)}, out={dest})")
        params = [f"l{i}" for i in range(n_leaves)]
        params += [f"t{j}" for j in range(len(self.temp_dtypes))] + ["out"]
        self.source = f"def evaluate({', '.join(params)}):\n" + "\n".join(lines) + "\n"
        exec(compile(self.source, "<fused numpy>", "exec"), namespace)  # noqa: S102
        self._evaluate = namespace["evaluate"]
        self._scratch = [np.empty(0, dtype) for dtype in self.temp_dtypes]

    def run_whole(self, arrays, out) -> None:
        """All at once, with temporaries of the output's shape (operands that broadcast, or
        arrays that fit in a block)."""
        self._evaluate(*arrays, *[np.empty(out.shape, d) for d in self.temp_dtypes], out)

    def run_blocks(self, arrays, out) -> None:
        """Block by block over the flattened arrays (every operand of the output's shape and
        C-contiguous, or 0-d), so each temporary stays in cache."""
        size = out.size
        block = max(1, BLOCK_BYTES // out.itemsize)
        temps = self._temporaries(min(size, block))
        flat = [a.reshape(-1) if a.ndim else a for a in arrays]
        out = out.reshape(-1)
        for start in range(0, size, block):
            stop = start + block
            if stop > size:
                temps = [t[:size - start] for t in temps]
            self._evaluate(*[a[start:stop] if a.ndim else a for a in flat], *temps,
                           out[start:stop])

    def _temporaries(self, size: int) -> list:
        """The scratch arrays, of ``size`` elements (kept between runs)."""
        scratch = self._scratch
        for i, array in enumerate(scratch):
            if array.size != size:
                scratch[i] = np.empty(size, array.dtype)
        return scratch


def _allocate_temporaries(instructions) -> tuple[list, list]:
    """(the dtypes of the temporaries, and per instruction (function, operands, destination)
    with operands ("leaf", i), ("temp", j) or ("const", value) and the destination "tJ" or
    "out"): a temporary is reused once its value's last reader is done, or by that reader
    itself when the primitive may write over its operand (ufuncs may)."""
    last_use = _last_uses(instructions)
    temp_dtypes: list = []
    register_of: dict[int, int] = {}  # instruction -> its temporary
    free: list[int] = []  # temporaries whose values are no longer needed
    calls = []
    final = len(instructions) - 1
    for k, (name, args, dtype) in enumerate(instructions):
        func, _, _, in_place = PRIMITIVES[name]
        operands = [("temp", register_of[v]) if kind == "temp" else (kind, v)
                    for kind, v in args]
        released = list(dict.fromkeys(register_of[v] for kind, v in args
                                      if kind == "temp" and last_use[v] == k))
        if in_place:
            free.extend(released)
        if k == final:
            dest = "out"
        else:
            register = next((r for r in free if temp_dtypes[r] == dtype), None)
            if register is None:
                temp_dtypes.append(dtype)
                register = len(temp_dtypes) - 1
            else:
                free.remove(register)
            register_of[k] = register
            dest = f"t{register}"
        if not in_place:
            free.extend(released)
        calls.append((func, operands, dest))
    return temp_dtypes, calls


def _last_uses(instructions) -> dict[int, int]:
    """instruction k -> the last instruction that reads its result."""
    last = {}
    for k, (_, args, _) in enumerate(instructions):
        for kind, value in args:
            if kind == "temp":
                last[value] = k
    return last


# -- Numba ---------------------------------------------------------------------------------------

_kernel_cache: dict = {}


def compiled_kernel(expression: Expression) -> CompiledKernel:
    """The Numba kernel of ``expression``, compiled once per expression and constants."""
    key = expression.key()
    kernel = _kernel_cache.get(key)
    if kernel is None:
        kernel = _kernel_cache[key] = CompiledKernel(expression)
    return kernel


class CompiledKernel:
    """One element's expression as Python source, compiled by Numba into a loop over the
    flattened arrays (``njit``) and, on first need, a broadcasting ufunc (``vectorize``)."""

    def __init__(self, expression: Expression):
        import numba

        self.source, namespace = _element_source(expression)
        namespace.update(np=np, _maximum=_nb_maximum(), _minimum=_nb_minimum())
        exec(compile(self.source, "<fused kernel>", "exec"), namespace)  # noqa: S102
        self._element = namespace["element"]
        namespace["element_jit"] = numba.njit(error_model="numpy")(self._element)
        self._namespace = namespace
        self._n = len(expression.leaf_dtypes)
        self._loops: dict = {}
        self._ufunc = None

    def _loop(self, scalars: tuple):
        """The flat loop for leaves ``scalars`` given as numbers, the others as arrays."""
        loop = self._loops.get(scalars)
        if loop is None:
            import numba

            operands = ", ".join(f"a{i}" if i in scalars else f"a{i}[i]"
                                 for i in range(self._n))
            args = ", ".join(f"a{i}" for i in range(self._n))
            source = (f"def loop(out, {args}):\n"
                      f"    for i in range(out.size):\n"
                      f"        out[i] = element_jit({operands})\n")
            exec(compile(source, "<fused loop>", "exec"), self._namespace)  # noqa: S102
            loop = numba.njit(error_model="numpy")(self._namespace.pop("loop"))
            self._loops[scalars] = loop
        return loop

    def run(self, arrays, out, broadcast: bool) -> None:
        if broadcast:
            if self._ufunc is None:
                import numba

                self._ufunc = numba.vectorize(nopython=True)(self._element)
            self._ufunc(*arrays, out=out)
            return
        scalars = tuple(i for i, a in enumerate(arrays) if a.ndim == 0)
        operands = [a[()] if a.ndim == 0 else a.reshape(-1) for a in arrays]
        self._loop(scalars)(out.reshape(-1), *operands)


def _element_source(expression: Expression) -> tuple[str, dict]:
    """``def element(a0, a1, ...)`` computing one element, and the constants it reads (each
    a global of the result's dtype, so Numba computes in that dtype, as NumPy does)."""
    namespace: dict = {}
    n = len(expression.leaf_dtypes)
    lines = [f"def element({', '.join(f'a{i}' for i in range(n))}):"]
    for k, (name, args, dtype) in enumerate(expression.instructions):
        operands = []
        for kind, value in args:
            if kind == "leaf":
                operands.append(f"a{value}")
            elif kind == "temp":
                operands.append(f"t{value}")
            else:
                constant = f"c{len(namespace)}"
                namespace[constant] = dtype.type(value)
                operands.append(constant)
        lines.append(f"    t{k} = {PRIMITIVES[name][1].format(*operands)}")
    lines.append(f"    return t{len(expression.instructions) - 1}")
    return "\n".join(lines) + "\n", namespace


_helpers: dict = {}


def _nb_maximum():
    """NumPy's maximum of two numbers in Numba: NaN when either is NaN."""
    if "maximum" not in _helpers:
        import numba

        @numba.njit(inline="always", error_model="numpy")
        def maximum(a, b):
            return a if (a >= b or a != a) else b

        _helpers["maximum"] = maximum
    return _helpers["maximum"]


def _nb_minimum():
    """NumPy's minimum of two numbers in Numba: NaN when either is NaN."""
    if "minimum" not in _helpers:
        import numba

        @numba.njit(inline="always", error_model="numpy")
        def minimum(a, b):
            return a if (a <= b or a != a) else b

        _helpers["minimum"] = minimum
    return _helpers["minimum"]
