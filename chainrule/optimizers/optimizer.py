"""The optimizer base class: parameter groups, per-parameter state, clipping, saving and loading.

Every algorithm (:class:`~chainrule.optimizers.SGD`, :class:`~chainrule.optimizers.Adam`, ...)
is a subclass that writes one method, :meth:`Optimizer.update_step` (Keras's name): the update
rule for one parameter, applied in place to its array, read as its formula; the in-place, fused
arithmetic is a call to :mod:`chainrule.kernels`. Everything else lives here, once:

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

Large updates are spread over chainrule's threads (:func:`chainrule.kernels.run_each`; the
compiled kernels and NumPy release the GIL); each parameter is updated by exactly one thread with
the same arithmetic, so results do not depend on the number of threads.
"""

from __future__ import annotations

import collections
import inspect
import math
from numbers import Real

import numpy as np

from chainrule import backend, kernels
from chainrule._config import enable_grad
from chainrule.autograd.function import notify_recorder, recorders
from chainrule.optimizers import clipping
from chainrule.optimizers import schedules as schedules_module
from chainrule.tensor import Tensor

#: Each extra thread must have at least this many elements to update: handing work to a thread
#: costs tens of microseconds, as much as updating ~100,000 numbers, so small models stay serial.
PARALLEL_ELEMENTS_PER_THREAD = 1 << 17

#: Unless chainrule's kernels hold the cores already (after a convolution or an LSTM), taking
#: them for the step stops BLAS's workers now and restarts them at the next product (0.5-2 ms):
#: below this many elements the step stays on the caller's thread. MLP 784-w-w-10, SGD with
#: momentum, batch 128, ms a step shared / on one thread: w = 256 (268 k) 1.68 / 1.46,
#: w = 512 (670 k) 2.93 / 2.75, w = 1024 (1.9 M) 6.25 / 6.7, w = 2048 (5.8 M) 19.8 / 20.7.
SWITCHING_ELEMENTS = 1 << 20

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
    ``defaults`` (``learning_rate`` among them) and implement :meth:`update_step`, the rule for
    one parameter; :meth:`_init_state` makes a parameter's buffers and :meth:`_check_group`
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

    #: Set to False by optimizers whose ``update_step`` writes shared Python state (no threads).
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
            learning_rate = self._learning_rate_now(group)
            hyper = dict(group)  # a plain dict: faster lookups in the update rules
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self._init_state(p.data, hyper)
                jobs.append((p.grad.data, p.data, learning_rate, state, hyper))
        self._run(jobs)
        self.iterations += 1
        return loss

    def _init_state(self, param, group) -> dict:
        """The state of a parameter before its first update (buffers shaped like ``param``)."""
        return {}

    def update_step(self, gradient, variable, learning_rate: float, state: dict,
                    group: dict) -> None:
        """Apply the update rule to one parameter, in place (Keras's ``update_step``).

        Keras keeps a variable's slots and hyper-parameters on the optimizer; here they come
        as arguments, so that several threads can update different parameters at once.

        Args:
            gradient: the parameter's gradient array (read only: it belongs to the user).
            variable: the parameter's array, to be updated in place.
            learning_rate: the learning rate of this step (a float; a schedule is evaluated).
            state: this parameter's state dict (``self.state[param]``; buffers are updated in
                place).
            group: the hyper-parameters of its parameter group (a plain dict).
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
        """Run :meth:`update_step` on every job: here, or shared with chainrule's threads when
        the work is large (the threads take jobs one at a time, largest first, so a thread that
        starts late costs nothing: the others do the work it did not take).

        The block holds the cores until the next product BLAS would share
        (``kernels.threads.NEXT_PRODUCT``), not a kernel op's ``THREADED_PRODUCT``: the
        forward pass of the next step is all products, which on chainrule's threads one by
        one ran slower than on BLAS's own (an MLP of width 1024: 8.2 against 7.0 ms a step);
        steps back to back switch nothing (``bench/optim.py``), and cores that a kernel op
        held before stay held as it asked."""
        elements = sum(job[1].size for job in jobs)
        if not self._may_share(jobs, elements):
            for job in jobs:
                self.update_step(*job)
            return
        with kernels.own_threads(hold=kernels.threads.NEXT_PRODUCT):  # BLAS's sleep meanwhile
            threads = min(kernels.workers(), len(jobs), elements // PARALLEL_ELEMENTS_PER_THREAD)
            pending = collections.deque(sorted(jobs, key=lambda job: -job[1].size))
            kernels.run_each(lambda _: self._update_until_done(pending), threads)

    def _may_share(self, jobs, elements: int) -> bool:
        """Whether the step's ``elements`` are worth more than one thread: several parameters
        on the CPU (a GPU's kernels are asynchronous already), at least two threads' worth of
        elements, and :data:`SWITCHING_ELEMENTS` where taking the cores would switch BLAS's
        threads (asked last: it reads BLAS's thread counts)."""
        if not (self._thread_safe and len(jobs) > 1 and backend.device_of(jobs[0][1]) == "cpu"
                and elements >= 2 * PARALLEL_ELEMENTS_PER_THREAD):
            return False
        return elements >= SWITCHING_ELEMENTS or kernels.threads.cores_taken()

    def _update_until_done(self, pending) -> None:
        """Take jobs from ``pending`` (a deque: ``popleft`` is atomic) until none is left."""
        while pending:
            try:
                job = pending.popleft()
            except IndexError:  # another thread took the last one
                return
            self.update_step(*job)

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


def state_buffer(state: dict, name: str, like):
    """``state[name]``, made as zeros shaped like ``like`` the first time it is needed (the
    buffers an option adds: AMSGrad's maximum, RMSprop's mean and momentum)."""
    buffer = state.get(name)
    if buffer is None:
        buffer = state[name] = backend.get_array_module(like).zeros_like(like)
    return buffer


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
