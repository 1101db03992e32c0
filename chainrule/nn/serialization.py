"""``save(obj, path)`` / ``load(path)``: PyTorch's ``torch.save`` / ``torch.load`` for state.

What can be saved is data, not code: a ``state_dict()`` (of a module or an optimizer), or any
nesting of dicts, lists and tuples of arrays, Tensors, numbers, strings and None. It is written
with :func:`chainrule.io.save_tree` (a ``.npz`` or ``.safetensors`` file with a JSON description
and checksums; never pickle), so loading a file cannot run code. ``load`` gives NumPy arrays
where Tensors were saved; ``model.load_state_dict(load(path))`` takes them as they are.
Whole modules cannot be saved this way (PyTorch pickles them): save their ``state_dict()``.

>>> import chainrule.nn as nn
>>> from chainrule.nn.serialization import load, save
>>> model = nn.Linear(3, 2)
>>> save(model.state_dict(), "linear.npz")                   # doctest: +SKIP
>>> model.load_state_dict(load("linear.npz"))                # doctest: +SKIP
"""

from __future__ import annotations

import os

from chainrule import backend, io
from chainrule.layers.base import Layer
from chainrule.tensor import Tensor

_SUFFIXES = (".npz", ".safetensors")


def _plain(obj, where: str):
    """``obj`` with Tensors replaced by NumPy arrays; modules and other objects refused."""
    if isinstance(obj, Tensor):
        return backend.to_numpy(obj.data)
    if isinstance(obj, dict):
        return {_key(k, where): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, Layer):
        raise TypeError(f"save: {where} is a module ({type(obj).__name__}); chainrule saves "
                        "data, not code: save its state_dict() instead")
    return obj


def _key(key, where: str) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)  # optimizer state is keyed by position; JSON keys are strings
    if not isinstance(key, str):
        raise TypeError(f"save: {where} has a key {key!r} that is not a string")
    return key


def _path(path) -> str:
    path = os.fspath(path)
    if not path.endswith(_SUFFIXES):
        raise ValueError(f"save/load: {path!r} must end in .npz or .safetensors (chainrule's "
                         "formats; PyTorch's .pt/.pth files are pickles and are not used)")
    return path


def save(obj, f) -> None:
    """Write ``obj`` (a state_dict or nested dicts/lists of arrays, Tensors and JSON values)
    to the ``.npz`` or ``.safetensors`` file ``f``, atomically."""
    io.save_tree(_path(f), _plain(obj, "obj"), metadata={"kind": "chainrule.save"})


def load(f, map_location=None, weights_only: bool = True):
    """Read what :func:`save` wrote (Tensors come back as NumPy arrays); ``map_location`` may
    only be "cpu" or None (arrays are read into host memory)."""
    if map_location not in (None, "cpu"):
        raise ValueError(f"load: map_location={map_location!r}: arrays are loaded on the CPU; "
                         "move the module with .to(device) afterwards")
    return io.load_tree(_path(f))


__all__ = ["load", "save"]
