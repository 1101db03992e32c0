"""Fused kernels: work that NumPy does in several passes over memory, done in one.

Each kernel exists twice, with the same arguments and the same results:

* :mod:`chainrule.kernels.reference`, written with NumPy: always there, the definition of what
  the kernel computes, and what CuPy arrays and unusual layouts use;
* :mod:`chainrule.kernels.compiled`, the same loops compiled to machine code by Numba (a
  dependency of ``pip install chainrule``). One pass over memory where NumPy makes
  temporaries: the optimizers' updates (:mod:`chainrule.kernels.updates`, re-exported here,
  with the switch that flushes denormals), 2 × 2 max pooling with its argmax, the gate
  arithmetic of an LSTM step, Winograd's tile transforms, direct 3 × 3 convolution, and a
  dense layer's bias and ReLU.

Which one runs: the compiled kernels when Numba can be imported, unless the environment
variable ``CHAINRULE_KERNELS=numpy`` says otherwise. Where Numba is missing or broken, the
first kernel call warns once, in one line (:class:`KernelsNotice`), and the NumPy kernels
run; ``CHAINRULE_KERNELS=numpy`` chooses them without a notice. With the NumPy kernels, glibc's
malloc is asked to keep freed memory for the next step (:mod:`chainrule.kernels.malloc`).
:func:`use` switches at run time (the tests run every kernel both ways). Both do their
arithmetic in the arrays' dtype, in the same order, so float32 results agree bit for bit (the
long sums of a convolution's kernel gradient and bias gradient excepted: their loops add in
another order, and agree to rounding)::

    >>> from chainrule import kernels
    >>> kernels.use("numpy")
    >>> kernels.active()
    'numpy'

Threads are this package's too (:mod:`chainrule.kernels.threads`, re-exported here):
:func:`blas_threads` caps BLAS's, and :func:`own_threads` swaps them for chainrule's pool
(:func:`run_each`) around the ops that run compiled kernels on several threads; the ops with
large BLAS products take BLAS's threads back (:func:`blas_for`, or :func:`give_blas_back` by
hand).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from chainrule.kernels import malloc, reference
from chainrule.kernels.threads import (  # noqa: F401 (re-exported: kernels.own_threads etc.)
    blas_for,
    blas_threads,
    deal_out,
    give_blas_back,
    own_threads,
    product,
    run_blocks,
    run_each,
    split,
    summed,
    workers,
)
from chainrule.kernels.updates import (  # noqa: F401 (re-exported: kernels.adam_update etc.)
    adadelta_update,
    adagrad_update,
    adam_update,
    flush_denormals,
    flushes_denormals,
    momentum_update,
    rmsprop_update,
    scaled_subtract,
)

CHOICES = ("numpy", "numba")

_active = None  # the module in use; chosen on first use (importing Numba takes ~0.3 s)
_chosen: str | None = None


class KernelsNotice(UserWarning):
    """The compiled kernels cannot run here and the NumPy ones do (slower, same results)."""


def available() -> tuple[str, ...]:
    """The kernel implementations that can run here: ("numpy",) or ("numpy", "numba")."""
    return CHOICES if _numba_import_error() is None else ("numpy",)


def _numba_import_error() -> Exception | None:
    """Why Numba cannot be imported (a missing package, or one built for another NumPy), or
    None when it can."""
    try:
        import numba  # noqa: F401
    except Exception as error:  # noqa: BLE001 - a broken install fails in many ways
        return error
    return None


def use(name: str) -> None:
    """Run the kernels of ``name``: "numpy" (the reference), "numba" (compiled) or "auto"
    (numba when installed). Choosing the NumPy kernels also asks glibc's malloc to keep
    freed memory for reuse (:func:`chainrule.kernels.malloc.keep_freed_memory`)."""
    global _active, _chosen
    if name == "auto":
        name = available()[-1]
    if name not in CHOICES:
        raise ValueError(f"kernels.use: expected one of {CHOICES} or 'auto', got {name!r}")
    if name == "numba":
        if "numba" not in available():
            raise ImportError(
                "kernels.use('numba'): Numba cannot be imported here; pip install "
                "'chainrule[fast]' (or numba) to compile the fused kernels"
            )
        from chainrule.kernels import compiled as module
    else:
        module = reference
        malloc.keep_freed_memory()
    _active, _chosen = module, name


def active() -> str:
    """The name of the kernels in use ("numpy" or "numba")."""
    if _active is None:
        _choose_default()
    return _chosen


def _choose_default() -> None:
    """The choice of ``CHAINRULE_KERNELS`` (default "auto"); "auto" without a working Numba
    runs the NumPy kernels after a one-line notice."""
    choice = os.environ.get("CHAINRULE_KERNELS", "auto").strip().lower() or "auto"
    if choice == "auto":
        error = _numba_import_error()
        if error is not None:
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            warnings.warn(f"chainrule: Numba could not be imported ({reason}); running the "
                          "NumPy kernels (same results, slower). CHAINRULE_KERNELS=numpy "
                          "chooses them without this notice", KernelsNotice, stacklevel=3)
    use(choice)


def select(*arrays):
    """The active kernel module, or the reference for arrays Numba can't take (CuPy).

    Ops that keep state between forward and backward (the argmax of max pooling, whose form
    differs between the two) hold on to the module that ran their forward.
    """
    if _active is None:
        _choose_default()
    if _active is reference:
        return reference
    for a in arrays:
        if type(a) is not np.ndarray:
            return reference
    return _active


# -- the kernels -----------------------------------------------------------------------------

# Max pooling over tiling windows, from ``select(planes)``:
#
#   module.max_pool_tiles(planes, kh, kw, track) -> (maxima, argmax)
#       planes (P, kh·OH, kw·OW), contiguous; maxima (P, OH, OW); argmax None unless ``track``,
#       else in a form private to the module (the first maximum in row-major order). NaN
#       propagates to the output.
#   module.max_pool_tiles_backward(gy, argmax, kh, kw) -> gx (P, kh·OH, kw·OW)
#       gy (P, OH, OW) sent to each window's maximum, zeros elsewhere.
#
# A dense layer's bias and fused ReLU (chainrule.ops.nn.Linear), from ``select(y)``:
#
#   module.bias_and_relu(y, bias, relu) -> None
#       y (rows, units) ← y + bias (None: none), then max(0, ·) if ``relu``, in place.
#   module.relu_gradient_and_bias_sum(gy, y, need_sum) -> (G, Σ_rows G or None)
#       G = gy ⊙ [y > 0] (a new array) and its sum over the rows, ∂L/∂b.
