"""The optimizer base class: parameter groups, per-parameter state, clipping, saving and loading.

Every algorithm (:class:`~chainrule.optimizers.SGD`, :class:`~chainrule.optimizers.Adam`, ...)
is a subclass that writes one method, ``_update``: the update rule for one parameter, applied in
place to NumPy arrays. Everything else lives here, once:

* **parameter groups** (PyTorch): ``optimizer.param_groups`` is a list of dicts, each with its
  ``"params"`` and its own hyper-parameters (missing ones come from the constructor);
* **per-parameter state** (moment estimates, momentum buffers, step counts) in
  ``optimizer.state[param]``, created the first time the parameter has a gradient;
* **two ways to use it**: ``SGD(model.parameters(), learning_rate=0.1)`` then ``step()`` in a
  hand-written loop, or ``SGD(learning_rate=0.1)`` handed to ``model.compile``, which binds the
  parameters later with :meth:`Optimizer.build`;
* **learning-rate schedules** (Keras): ``learning_rate`` may be a callable ``schedule(step)``;
  the rate used by a step is ``schedule(t)`` with ``t`` the number of steps already taken;
* **gradient clipping** (Keras): ``clipnorm``, ``clipvalue`` or ``global_clipnorm``;
* **saving** with :meth:`Optimizer.state_dict` (NumPy arrays, numbers and strings only) and
  :meth:`Optimizer.load_state_dict`; state is matched to parameters by position.

Large updates are spread over a few threads (NumPy releases the GIL inside its array loops); each
parameter is updated by exactly one thread with the same arithmetic, so results do not depend on
the number of threads.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from numbers import Real

import numpy as np

from chainrule import backend
from chainrule._config import enable_grad
from chainrule.autograd.function import notify_recorder, recorders
from chainrule.optimizers import clipping
from chainrule.optimizers import schedules as schedules_module
from chainrule.tensor import Tensor

#: Each extra thread must have at least this many elements to update: handing work to a thread
#: costs tens of microseconds, as much as updating ~100,000 numbers, so small models stay serial.
PARALLEL_ELEMENTS_PER_THREAD = 1 << 17
#: The most threads one step uses.
MAX_THREADS = 8

_ALIASES = {"lr": "learning_rate", "eps": "epsilon"}  # PyTorch's names for group keys
_GROUP_EXTRAS = ("params", "param_names", "name")  # group keys that are not hyper-parameters


class ParamGroup(dict):
    """One parameter group: ``"params"`` (a list of Tensors) and its hyper-parameters.

    A plain dict, except that PyTorch's short names are aliases of the keyword names used by
    the constructors: ``group["lr"]`` is ``group["learning_rate"]`` and ``group["eps"]`` is
    ``group["epsilon"]``, so the PyTorch idiom ``for g in opt.param_groups: g["lr"] *= 0.1``
    works.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.update(*args, **kwargs)

    def __getitem__(self, key):
        return super().__getitem__(_ALIASES.get(key, key))

    def __setitem__(self, key, value):
        super().__setitem__(_ALIASES.get(key, key), value)

    def __contains__(self, key):
        return super().__contains__(_ALIASES.get(key, key))

    def get(self, key, default=None):
        return super().get(_ALIASES.get(key, key), default)

    def update(self, other=(), **kwargs):
        for key, value in dict(other, **kwargs).items():
            self[key] = value


class Optimizer:
    """Base class of the optimizers: holds parameters, hyper-parameters and state.

    Subclasses call ``super().__init__(params, defaults, ...)`` with their hyper-parameters in
    ``defaults`` (``learning_rate`` among them) and implement :meth:`_update`, the rule for one
    parameter; :meth:`_init_state` makes a parameter's buffers and :meth:`_check_group`
    validates a group's hyper-parameters.

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (parameter
            groups, each with a ``"params"`` entry and optional hyper-parameter overrides);
            ``None`` to bind them later with :meth:`build`. A number or a schedule here is taken
            as the learning rate, as Keras's ``SGD(0.1)``.
        defaults: the hyper-parameters of every group that does not override them.
        lr: a synonym of ``learning_rate`` (PyTorch's name).
        clipnorm: clip each gradient's own L2 norm to at most this (Keras).
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]`` (Keras).
        global_clipnorm: scale all gradients together so their joint L2 norm is at most this.

    Attributes:
        param_groups: the list of :class:`ParamGroup` dicts.
        state: ``{param: {name: array or number}}``, e.g. Adam's ``exp_avg`` of each parameter.
        iterations: the number of steps taken (Keras's name); schedules are evaluated at it.
    """

    #: Set to False by optimizers whose ``_update`` writes shared Python state (no threads then).
    _thread_safe = True
    #: The names a parameter's state may hold (None: not checked by :meth:`load_state_dict`),
    #: and those a non-empty state must hold (what :meth:`_init_state` makes).
    state_keys: tuple | None = None
    required_state_keys: tuple = ()

    def __init__(self, params, defaults: dict, *, lr=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        if _looks_like_learning_rate(params):  # Keras's positional form: SGD(0.1)
            self._give_learning_rate(defaults, params)
            params = None
        if lr is not None:  # PyTorch's name
            self._give_learning_rate(defaults, lr)
        _check_clipping(type(self).__name__, clipnorm=clipnorm, clipvalue=clipvalue,
                        global_clipnorm=global_clipnorm)
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        defaults = {key: _to_python(value) for key, value in defaults.items()}
        self._check_group(_check_learning_rate(self, dict(defaults)))
        self.defaults = defaults
        self.param_groups: list[ParamGroup] = []
        self.state: dict = {}
        self.iterations = 0
        self._scratch = [_Scratch()]
        if params is not None:
            self._add_params(params)

    def _give_learning_rate(self, defaults, rate) -> None:
        """Take the rate given as ``lr=`` or positionally, unless learning_rate= was given too."""
        if defaults["learning_rate"] != _declared_learning_rate(type(self), defaults):
            raise TypeError(
                f"{type(self).__name__}: the learning rate was given twice (as learning_rate=, "
                "lr= or the first argument); give it once"
            )
        defaults["learning_rate"] = rate

    # -- binding parameters ---------------------------------------------------------------------

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters, optionally with its own hyper-parameters (PyTorch).

        >>> import chainrule as cr
        >>> from chainrule.optimizers import SGD
        >>> w, b = cr.zeros((2, 2), requires_grad=True), cr.zeros(2, requires_grad=True)
        >>> opt = SGD([w], learning_rate=0.1)
        >>> opt.add_param_group({"params": [b], "lr": 0.01})
        >>> [g["learning_rate"] for g in opt.param_groups]
        [0.1, 0.01]
        """
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(
                f"{type(self).__name__}.add_param_group: expected a dict with a 'params' entry, "
                f"got {type(param_group).__name__}"
            )
        group = ParamGroup()
        for key, value in param_group.items():
            if key == "betas":  # PyTorch's Adam packs both betas in one entry
                group["beta_1"], group["beta_2"] = value
            else:
                group[key] = _to_python(value)
        params, names = _tensors_and_names(group["params"], type(self).__name__)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        unknown = [k for k in dict.keys(group)
                   if k not in self.defaults and k not in _GROUP_EXTRAS]
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown hyper-parameter(s) {unknown} in a parameter "
                f"group; known: {sorted(self.defaults)}"
            )
        for key, value in self.defaults.items():
            dict.setdefault(group, key, value)
        held = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in held for p in params):
            raise ValueError(
                f"{type(self).__name__}: some parameters appear in more than one parameter group"
            )
        self._check_group(_check_learning_rate(self, group))
        self.param_groups.append(group)

    def build(self, params) -> None:
        """Bind parameters to an optimizer made without them (what ``model.compile`` calls).

        Calling it again with the parameters it already holds does nothing, so an optimizer
        made with ``SGD(model.parameters())`` can still be given to ``compile``.
        """
        params = _as_list(params, type(self).__name__)
        if self.param_groups:
            held = [id(p) for g in self.param_groups for p in g["params"]]
            given, _ = _tensors_and_names(params, type(self).__name__)
            if sorted(held) == sorted(id(p) for p in given):
                return
            raise ValueError(
                f"{type(self).__name__}.build: the optimizer already holds {len(held)} other "
                "parameters; use add_param_group to add more, or a new optimizer"
            )
        self._add_params(params)

    def _add_params(self, params) -> None:
        params = _as_list(params, type(self).__name__)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty list of parameters")
        if all(isinstance(p, dict) for p in params):
            for group in params:
                self.add_param_group(group)
        else:
            self.add_param_group({"params": params})

    @property
    def built(self) -> bool:
        """Whether the optimizer holds parameters (Keras's name)."""
        return bool(self.param_groups)

    @property
    def params(self) -> list:
        """Every parameter, group after group: the order ``state_dict`` uses."""
        return [p for group in self.param_groups for p in group["params"]]

    # -- the learning rate ----------------------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step uses (of the first group; a schedule is evaluated).

        Setting it sets every group's rate (and the default for groups added later); a number or
        a schedule may be assigned, as in Keras.
        """
        group = self.param_groups[0] if self.param_groups else self.defaults
        return self._learning_rate_now(group)

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        value = _to_python(value)
        _check_learning_rate(self, {"learning_rate": value})
        self.defaults["learning_rate"] = value
        for group in self.param_groups:
            group["learning_rate"] = value

    lr = learning_rate

    def _learning_rate_now(self, group) -> float:
        rate = group["learning_rate"]
        return float(rate(self.iterations) if callable(rate) else rate)

    # -- the step -------------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set every parameter's ``.grad`` to None (or fill it with 0)."""
        if recorders:  # being traced (chainrule.jit): a replay forgets them too
            notify_recorder("record_effect", lambda: self.zero_grad(set_to_none), "zero_grad")
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place; parameters without one are
        skipped. ``closure`` (optional) re-evaluates the model and returns the loss, which
        ``step`` returns."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        elif recorders:  # being traced (chainrule.jit): a replay updates the weights too
            notify_recorder("record_effect", self.step, "step")
        if not self.param_groups:
            raise RuntimeError(
                f"{type(self).__name__}.step(): the optimizer has no parameters yet; pass them "
                f"when making it ({type(self).__name__}(model.parameters(), ...)), call "
                "optimizer.build(params), or give it to model.compile"
            )
        self._clip_gradients()
        jobs = []
        for group in self.param_groups:
            lr = self._learning_rate_now(group)
            hyper = dict(group)  # a plain dict: faster lookups in the update rules
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self._init_state(p.data, hyper)
                jobs.append((p.data, p.grad.data, state, hyper, lr))
        self._run(jobs)
        self.iterations += 1
        return loss

    def _init_state(self, param, group) -> dict:
        """The state of a parameter before its first update (buffers shaped like ``param``)."""
        return {}

    def _update(self, param, grad, state, group, lr, scratch) -> None:
        """Apply the update rule to one parameter, in place.

        Args:
            param: the parameter's array, to be updated in place.
            grad: its gradient array (read only: it belongs to the user).
            state: this parameter's state dict (buffers are updated in place).
            group: its parameter group (hyper-parameters).
            lr: the learning rate of this step (a float).
            scratch: a :class:`_Scratch` giving work arrays shaped like ``param``.
        """
        raise NotImplementedError

    def _check_group(self, group) -> dict:
        """Validate a group's hyper-parameters (raise ValueError naming the bad one)."""
        return group

    def _clip_gradients(self) -> None:
        if self.clipnorm is None and self.clipvalue is None and self.global_clipnorm is None:
            return
        grads = [p.grad for p in self.params if p.grad is not None]
        if self.clipnorm is not None:
            for g in grads:
                clipping.clip_by_norm(g, self.clipnorm)
        elif self.global_clipnorm is not None:
            clipping.clip_by_global_norm(grads, self.global_clipnorm)
        else:
            for g in grads:
                clipping.clip_by_value(g, self.clipvalue)

    def _run(self, jobs) -> None:
        """Run ``_update`` on every job: here, or shared with a few threads when the work is
        large (the threads take jobs one at a time, so a thread that starts late costs
        nothing: this one does the work it did not take)."""
        threads = _thread_count() if self._thread_safe and len(jobs) > 1 else 1
        if threads > 1:
            elements = sum(job[0].size for job in jobs)
            threads = min(threads, len(jobs), elements // PARALLEL_ELEMENTS_PER_THREAD)
            if backend.device_of(jobs[0][0]) != "cpu":
                threads = 1  # GPU kernels are asynchronous already
        if threads <= 1:
            scratch = self._scratch[0]
            for param, grad, state, group, lr in jobs:
                self._update(param, grad, state, group, lr, scratch)
            return
        while len(self._scratch) < threads:
            self._scratch.append(_Scratch())
        work = _SharedWork(jobs)
        pool = _thread_pool()
        for helper in range(1, threads):
            pool.submit(self._work_on, work, self._scratch[helper])
        self._work_on(work, self._scratch[0])
        work.wait()

    def _work_on(self, work, scratch) -> None:
        while (job := work.take()) is not None:
            try:
                self._update(*job, scratch)
            except BaseException as error:  # handed to the calling thread by work.wait()
                work.finish(error)
            else:
                work.finish()

    # -- saving and loading ---------------------------------------------------------------------

    def state_dict(self) -> dict:
        """A snapshot of the optimizer: ``{"class_name", "state", "param_groups",
        "iterations"}``.

        Made of NumPy arrays (copies), Python numbers, strings, lists and dicts only, so it can
        be written to ``.npz`` or JSON. ``state`` is a list with one dict per parameter, in the
        order of :attr:`params`; each group lists its parameters' positions in ``"params"``. A
        schedule is saved as ``{"class_name", "config"}``; a learning rate given as a plain
        function cannot be saved and is left out (the loading optimizer keeps its own).
        """
        positions = {id(p): i for i, p in enumerate(self.params)}
        groups = []
        for group in self.param_groups:
            saved = {}
            for key, value in group.items():
                if key == "params":
                    saved[key] = [positions[id(p)] for p in value]
                elif key == "param_names":
                    saved[key] = list(value)
                elif callable(value):
                    if hasattr(value, "get_config"):
                        saved[key] = schedules_module.serialize(value)
                else:
                    saved[key] = value
            groups.append(saved)
        state = [
            {k: (backend.to_numpy(v).copy() if _is_array(v) else v)
             for k, v in self.state.get(p, {}).items()}
            for p in self.params
        ]
        return {"class_name": type(self).__name__, "state": state, "param_groups": groups,
                "iterations": int(self.iterations)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict` into an optimizer over parameters of the same shapes.

        Groups and parameters are matched by position; hyper-parameters, state and
        ``iterations`` are replaced. All or nothing: everything is checked before anything
        changes. The state must come from the same optimizer class (``class_name``; a state
        saved before it was recorded is checked by its shapes and names alone), its
        hyper-parameters must pass the constructor's checks, and its arrays must be numeric,
        finite and shaped like their parameters. The arrays are copied (cast to each
        parameter's dtype).
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict from state_dict(), got "
                            f"{type(state_dict).__name__}")
        saved_class = _to_python(state_dict.get("class_name", name))
        if saved_class != name:
            raise ValueError(f"{name}.load_state_dict: the state was saved by {saved_class!r}, "
                             f"not {name}; load it into a {saved_class} or start afresh")
        saved_groups, saved_state = self._saved_structure(state_dict)
        new_state = {}
        for i, (p, entries) in enumerate(zip(self.params, saved_state)):
            if entries:
                new_state[p] = self._import_param_state(entries, p, i)
        loaded_groups = [self._import_group(group, saved, i) for i, (group, saved)
                         in enumerate(zip(self.param_groups, saved_groups))]
        iterations = _import_count(state_dict.get("iterations", 0), f"{name}.load_state_dict",
                                   "iterations")
        for group, loaded in zip(self.param_groups, loaded_groups):  # nothing failed: replace
            group.update(loaded)  # in place: callers may hold the group dicts
        self.state = new_state
        self.iterations = iterations

    def _saved_structure(self, state_dict: dict):
        """The saved groups and per-parameter states, once their counts match this
        optimizer's (ValueError naming the mismatch otherwise)."""
        name = type(self).__name__
        saved_groups, saved_state = state_dict.get("param_groups"), state_dict.get("state")
        if not isinstance(saved_groups, list) or not isinstance(saved_state, list):
            raise ValueError(f"{name}.load_state_dict: the state needs lists 'param_groups' and "
                             "'state' (as state_dict() makes)")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state has {len(saved_groups)} parameter groups, "
                f"the optimizer {len(self.param_groups)}"
            )
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            count = len(saved.get("params", ())) if isinstance(saved, dict) else None
            if count != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {i} has {count} parameters in "
                    f"the state but {len(group['params'])} in the optimizer"
                )
        if len(saved_state) != len(self.params):
            raise ValueError(
                f"{name}.load_state_dict: state for {len(saved_state)} parameters, optimizer has "
                f"{len(self.params)}"
            )
        return saved_groups, saved_state

    def _import_group(self, group, saved: dict, index: int) -> ParamGroup:
        """A copy of ``group`` with the saved hyper-parameters, checked as the constructor
        checks them; a hyper-parameter this optimizer does not take is refused."""
        name = type(self).__name__
        unknown = sorted(k for k in saved if k not in self.defaults and k not in _GROUP_EXTRAS)
        if unknown:
            raise ValueError(
                f"{name}.load_state_dict: group {index} of the state has hyper-parameter(s) "
                f"{unknown} that {name} does not take (saved by another optimizer?)"
            )
        loaded = ParamGroup(group)
        for key, value in saved.items():
            if key == "params":
                continue
            if isinstance(value, dict) and "class_name" in value:
                value = schedules_module.deserialize(value)
            elif key == "param_names":
                value = [str(_to_python(n)) for n in value]
            loaded[key] = _to_python(value)
        return self._check_group(_check_learning_rate(self, loaded))

    def _import_param_state(self, entries, param: Tensor, index: int) -> dict:
        """The saved state of one parameter, checked (names, step counts, arrays) and copied."""
        owner = type(self).__name__
        if not isinstance(entries, dict):
            raise ValueError(f"{owner}.load_state_dict: the state of parameter {index} is a "
                             f"{type(entries).__name__}, expected a dict")
        if self.state_keys is not None:
            unknown = sorted(set(entries) - set(self.state_keys))
            missing = sorted(set(self.required_state_keys) - set(entries))
            if unknown or missing:
                raise ValueError(
                    f"{owner}.load_state_dict: the state of parameter {index} has "
                    f"{list(entries)}; {owner} keeps {list(self.state_keys)} (unknown: "
                    f"{unknown}, missing: {missing}; saved by another optimizer?)"
                )
        scalars = self.state_keys is None  # an optimizer of one's own may keep numbers
        return {k: _import_state_value(v, param, k, index, owner, scalars)
                for k, v in entries.items()}

    # -- configuration --------------------------------------------------------------------------

    def get_config(self) -> dict:
        """The constructor's arguments (Keras), enough to make a fresh copy with
        :meth:`from_config`; a schedule appears as ``{"class_name", "config"}``."""
        config = {}
        for key, value in self.defaults.items():
            if callable(value) and hasattr(value, "get_config"):
                value = schedules_module.serialize(value)
            config[key] = value
        config.update(clipnorm=self.clipnorm, clipvalue=self.clipvalue,
                      global_clipnorm=self.global_clipnorm)
        return config

    @classmethod
    def from_config(cls, config: dict):
        """A new, unbound optimizer from :meth:`get_config`'s output."""
        config = dict(config)
        rate = config.get("learning_rate")
        if isinstance(rate, dict):
            config["learning_rate"] = schedules_module.deserialize(rate)
        return cls(**config)

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        count = sum(len(g["params"]) for g in self.param_groups)
        bound = (f"; {len(self.param_groups)} group(s), {count} parameter(s)" if count
                 else "; unbound")
        return f"{type(self).__name__}({hyper}{bound})"


# -- helpers for the update rules -----------------------------------------------------------------


class _Scratch:
    """Reusable work arrays for one thread, so an update allocates nothing per step.

    ``scratch.get(i, like)`` returns work array number ``i`` with ``like``'s shape and dtype; it
    is a view of a flat buffer sized to the largest parameter seen, reused across parameters.
    """

    def __init__(self) -> None:
        self._buffers: dict = {}

    def get(self, index: int, like):
        key = (index, like.dtype, backend.device_of(like))
        buffer = self._buffers.get(key)
        if buffer is None or buffer.size < like.size:
            xp = backend.get_array_module(like)
            buffer = self._buffers[key] = xp.empty(like.size, dtype=like.dtype)
        return buffer[: like.size].reshape(like.shape)


def add_weight_decay(grad, param, weight_decay: float, scratch):
    """``grad + weight_decay * param`` (L2 regularisation folded into the gradient), written to
    scratch array 0; returns ``grad`` itself when ``weight_decay`` is 0."""
    if weight_decay == 0:
        return grad
    xp = backend.get_array_module(param)
    out = scratch.get(0, param)
    xp.multiply(param, weight_decay, out=out)
    out += grad
    return out


def subtract_scaled(param, scale: float, direction, work) -> None:
    """``param -= scale * direction`` in place, using ``work`` (may be ``direction``) as the
    temporary."""
    xp = backend.get_array_module(param)
    xp.multiply(direction, scale, out=work)
    param -= work


def check_range(optimizer, group, key, low=0.0, high=None, *, high_open=False,
                low_open=False) -> None:
    """Raise ValueError unless ``group[key]`` is a finite real number (not a bool) with
    ``low <= value`` (``<`` with ``low_open``) and ``value <= high`` (``<`` with ``high_open``).
    The message names the optimizer, the hyper-parameter, its value and the range."""
    value = group[key]
    ok = (isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
          and (value > low if low_open else value >= low))
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bound = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValueError(
            f"{type(optimizer).__name__}: invalid {key} {value!r}; expected a finite number "
            f"{'>' if low_open else '>='} {low}{bound}"
        )


def check_flag(optimizer, group, key) -> None:
    """Raise ValueError unless ``group[key]`` is True or False (``nesterov``, ``amsgrad``)."""
    if not isinstance(group[key], bool):
        raise ValueError(f"{type(optimizer).__name__}: invalid {key} {group[key]!r}; expected "
                         "True or False")


class _SharedWork:
    """Update jobs that several threads take one at a time, largest first.

    :meth:`wait` returns once every job is done; it does not wait for a thread that woke up too
    late to take any (on a busy machine a sleeping thread can take 100 µs to start).
    """

    def __init__(self, jobs) -> None:
        self._jobs = sorted(jobs, key=lambda job: -job[0].size)
        self._lock = threading.Lock()
        self._taken = 0
        self._remaining = len(self._jobs)
        self._done = threading.Event()
        self._error = None

    def take(self):
        """The next job, or None when all have been taken."""
        with self._lock:
            if self._taken == len(self._jobs):
                return None
            self._taken += 1
            return self._jobs[self._taken - 1]

    def finish(self, error=None) -> None:
        """Mark a taken job done (with the exception it raised, if any)."""
        with self._lock:
            self._error = self._error or error
            self._remaining -= 1
            if self._remaining == 0:
                self._done.set()

    def wait(self) -> None:
        """Return when every job is done; raise the first error a job raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error


# -- module-private helpers ---------------------------------------------------------------------


def _looks_like_learning_rate(value) -> bool:
    """A number or a schedule object given where the parameters go (a plain function is not
    taken: ``SGD(model.parameters)``, without the call, must not become a schedule)."""
    return isinstance(value, (Real, schedules_module.LearningRateSchedule))


def _check_clipping(owner: str, **options) -> None:
    """At most one clipping option, and it must be a positive number (Keras's rule)."""
    chosen = {name: value for name, value in options.items() if value is not None}
    if len(chosen) > 1:
        raise ValueError(
            f"{owner}: only one of clipnorm, clipvalue and global_clipnorm can be set; got "
            f"{', '.join(chosen)}"
        )
    for name, value in chosen.items():
        if (not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value)
                or value <= 0):
            raise ValueError(f"{owner}: {name} must be > 0 (a finite number), got {value!r}")


def _check_learning_rate(optimizer, group) -> dict:
    rate = group["learning_rate"]
    if callable(rate):
        return group
    if (not isinstance(rate, Real) or isinstance(rate, bool) or not math.isfinite(rate)
            or rate < 0):
        raise ValueError(
            f"{type(optimizer).__name__}: invalid learning_rate {rate!r}; expected a finite "
            "number >= 0 or a schedule (a callable step -> rate)"
        )
    return group


def _as_list(params, owner: str) -> list:
    """The parameters (or groups) as a list; a single Tensor is a list of one."""
    if isinstance(params, Tensor):
        return [params]
    try:
        return list(params)
    except TypeError:
        raise TypeError(
            f"{owner}: expected an iterable of Tensors or of parameter-group dicts, got "
            f"{type(params).__name__} (did you mean model.parameters()?)"
        ) from None


def _tensors_and_names(items, owner: str):
    """The Tensors of a parameter list, and their names when given as (name, Tensor) pairs."""
    if isinstance(items, Tensor):
        items = [items]
    items = list(items)
    names = None
    if items and all(isinstance(item, tuple) and len(item) == 2 for item in items):
        names = [str(name) for name, _ in items]
        items = [tensor for _, tensor in items]
    seen = set()
    for p in items:
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: parameters must be chainrule Tensors, got "
                            f"{type(p).__name__}")
        if not p.is_leaf:
            raise ValueError(f"{owner}: can't optimize a non-leaf Tensor (shape {p.shape}); "
                             "optimize the tensors the model holds")
        if p.data.dtype.kind != "f":
            raise TypeError(f"{owner}: parameters must be real floating tensors, got a "
                            f"{p.dtype} tensor of shape {p.shape}")
        if id(p) in seen:
            raise ValueError(f"{owner}: a parameter of shape {p.shape} is listed twice")
        seen.add(id(p))
    return items, names


def _declared_learning_rate(cls, defaults):
    """The default of ``learning_rate`` in ``cls.__init__``'s signature (the given value when
    the signature has none, so that nothing counts as given twice)."""
    declared = inspect.signature(cls.__init__).parameters.get("learning_rate")
    return defaults["learning_rate"] if declared is None else declared.default


def _to_python(value):
    """NumPy scalars and 0-d arrays (what ``.npz`` gives back) as Python numbers and strings."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, Real)


def _import_state_value(value, param: Tensor, key: str, index: int, owner: str,
                        scalars: bool = False):
    """A saved state entry for ``param``: a step count (an int >= 0), a finite number (only
    with ``scalars``), or an array that must be numeric, finite and shaped like the parameter;
    arrays are copied, cast to its dtype."""
    where = f"{owner}.load_state_dict: state {key!r} of parameter {index}"
    if key == "step":
        return _import_count(value, f"{owner}.load_state_dict", f"state 'step' of parameter "
                             f"{index}")
    if scalars and not _is_array(value) and isinstance(value, Real) and math.isfinite(value):
        return value
    if not _is_array(value):
        raise ValueError(f"{where} is {value!r}; expected an array shaped like the parameter "
                         f"{param.shape}")
    value = backend.to_numpy(value)
    if value.dtype.kind not in "biuf":
        raise ValueError(f"{where} is a {value.dtype} array; expected numbers")
    if value.shape != param.shape:
        raise ValueError(f"{where} has shape {value.shape}, the parameter {param.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        array = np.array(value, dtype=param.data.dtype, copy=True)
    if not np.isfinite(array).all():
        raise ValueError(f"{where} holds NaN or infinite values; refusing to resume from it")
    xp = backend.get_array_module(param.data)
    return array if xp is np else xp.asarray(array)


def _import_count(value, owner: str, what: str) -> int:
    """A saved count (``iterations``, a parameter's ``step``): an integer >= 0."""
    value = _to_python(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a count that went through JSON as 3.0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{owner}: {what} is {value!r}; expected an integer >= 0")
    return value


_pool: ThreadPoolExecutor | None = None
_pool_pid = None  # a forked child gets a fresh pool: the parent's threads do not exist in it


def _thread_count() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def _thread_pool() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=MAX_THREADS - 1,
                                   thread_name_prefix="chainrule-optimizer")
        _pool_pid = os.getpid()
    return _pool
