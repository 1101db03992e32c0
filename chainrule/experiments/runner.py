"""The experiment runner: a study is a set of runs, a run is a plain function of its spec.

A *run* is ``run(spec: dict, directory: pathlib.Path) -> dict``: it seeds itself from the
spec, writes what it wants into its own ``directory`` and returns its metrics (a dict of
numbers). Nothing in this module knows what a run does: the shift/scale study and the
hyper-parameter search both hand their run function to :class:`Study`.

The engine is Optuna (``pip install chainrule[tune]``), not a scheduler of ours: a study is
an Optuna study whose trials are the runs, and whose storage holds every spec, metric, error
and state. A grid is searched by Optuna's ``GridSampler`` (trial k runs grid point k, so
workers never collide); other samplers (random, TPE) draw ``n_trials`` specs from a space of
Optuna distributions.

Storage. By default an Optuna journal file ``DIR/study.journal``: embedded, no server, safe for
several processes on one machine (SQLite is not: concurrent writers hit "database is locked").
``storage=`` takes any Optuna storage URL instead (``sqlite:///x.db``, ``postgresql://...``) or
a journal file path on a shared filesystem; start the same study with the same storage on
other machines (``resume=True``, the CLI's ``--resume``) and they share the work.

Faults.

* A run that raises is recorded (state FAIL, its error and traceback in the trial's user
  attributes, ``status`` "failed") and the study goes on; it is not run again.
* A killed study (SIGKILL, a lost machine) leaves trials RUNNING. Every worker keeps a
  heartbeat on its running trial. ``resume=True`` marks RUNNING trials whose worker is gone
  (same host and the process is dead, or no heartbeat for :data:`STALE_AFTER` seconds) as
  interrupted and enqueues their spec again, so they are run from the start; Ctrl-C does the
  same for the trial it interrupts. Finished runs are never redone, and :meth:`Study.results`
  keeps one row per spec, so nothing is lost or counted twice.
* A run's directory is emptied before the run starts, and the runner writes its ``spec.json``
  and ``metrics.json`` atomically: a folder with ``metrics.json`` is a finished run.

Pruning (Optuna's pruners, ``pruner=``). A run reports intermediate values with
:func:`report` (a training run: its validation score after each epoch), which returns True
when the study's pruner says the run is worse than the others were at that step; the run then
raises :class:`RunPruned` with its partial metrics. The trial is recorded PRUNED (``status``
"pruned", its metrics kept) and counts as finished. Outside a study, or in a study without a
pruner, :func:`report` returns False, so a run function works the same on its own.

>>> def run(spec, directory):                                 # doctest: +SKIP
...     return {"error": (spec["x"] - 2) ** 2}
>>> study = Study(run, "runs/demo", grid={"x": [0, 1, 2, 3]}, objective="error")
>>> study.run(workers=2)                                      # doctest: +SKIP
>>> [(row["x"], row["error"]) for row in study.results()]   # doctest: +SKIP
[(0, 4), (1, 1), (2, 0), (3, 1)]
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import socket
import threading
import time
import traceback
from pathlib import Path

from chainrule._extras import require
from chainrule.io import json_value, write_json

#: Seconds without a heartbeat after which another machine's running trial counts as lost.
STALE_AFTER = 120.0
#: Seconds between two heartbeats of a running trial.
HEARTBEAT_EVERY = 20.0

#: Seconds a worker waits for a just-created trial of another worker to get its spec.
UNDECIDED_WAIT = 5.0

#: Trial user attribute that says how a run ended: "ok", "failed", "pruned" or "interrupted".
STATUS = "status"

#: Trial user attribute of the trials whose spec was enqueued (drawn in advance, a grid point
#: handed out again, a lost run redone), as opposed to drawn by the sampler when created.
ENQUEUED = "enqueued"

#: The statuses of a run that ended and is not run again.
FINISHED = ("ok", "failed", "pruned")


def import_optuna():
    """Optuna, or an ImportError that names the extra to install (``[tune]``)."""
    optuna = require("optuna", "tune", "chainrule.experiments")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# -- run folders -----------------------------------------------------------------------------------


def default_run_name(params: dict) -> str:
    """``"a=1,b=x"``-style folder name of a spec's varying parameters, in sorted order."""
    text = ",".join(f"{key}={params[key]}" for key in sorted(params))
    return "".join(c if c.isalnum() or c in "=,.+-_" else "_" for c in text)


# -- the study ------------------------------------------------------------------------------------


class Study:
    """A set of runs of ``run`` stored in one Optuna study.

    Args:
        run: the run function ``run(spec, directory) -> metrics``; a module-level function
            (worker processes import it by name).
        directory: the study's folder: ``runs/<name>/`` for each run, the journal file.
        grid: ``{parameter: [values, ...]}``: run every combination (Optuna's GridSampler).
        space: ``{parameter: optuna distribution}`` for a ``sampler`` to draw from instead.
        sampler: an Optuna sampler for ``space`` (ignored with ``grid``).
        n_trials: how many runs to draw from ``space``.
        fixed: parameters shared by every run, added to each spec (not searched).
        objective: the metric that is the trial's value (Optuna needs one number).
        direction: "minimize" or "maximize" ``objective``.
        storage: an Optuna storage URL or a journal file path; default DIR/study.journal.
        name: the Optuna study's name (default "study").
        pruner: an Optuna pruner that stops runs from the values they :func:`report`
            (default: none, every run goes to its end).
        settings: what else defines the runs but is not a spec's parameter (the epochs and
            data of a search, say): stored with the study, and a resume with other settings
            is refused like one with another grid.
        run_name: ``params -> folder name`` of a run (default :func:`default_run_name`).
        verbose: print a line as each run ends.
    """

    def __init__(self, run, directory, *, grid: dict | None = None, space: dict | None = None,
                 sampler=None, n_trials: int | None = None, fixed: dict | None = None,
                 objective: str = "value", direction: str = "minimize", storage=None,
                 name: str = "study", run_name=None, verbose: bool = False, pruner=None,
                 settings: dict | None = None):
        import_optuna()
        if (grid is None) == (space is None):
            raise ValueError("Study: give exactly one of grid= (values to combine) and space= "
                             "(distributions for a sampler)")
        if grid is not None:
            for key, values in grid.items():
                if not isinstance(values, (list, tuple)) or not values:
                    raise ValueError(f"Study: grid[{key!r}] must be a non-empty list of values, "
                                     f"got {values!r}")
        elif n_trials is None or n_trials < 1:
            raise ValueError(f"Study: space= needs n_trials >= 1, got {n_trials!r}")
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"Study: direction must be 'minimize' or 'maximize', "
                             f"got {direction!r}")
        self.run_function = run
        self.directory = Path(directory)
        self.grid = None if grid is None else {k: list(v) for k, v in grid.items()}
        self.space = space
        self.sampler = sampler
        self.n_trials = math.prod(len(v) for v in self.grid.values()) if grid else n_trials
        self.fixed = dict(fixed or {})
        self.objective = objective
        self.direction = direction
        self.storage_spec = storage
        self.name = name
        self.run_name = run_name or default_run_name
        self.verbose = verbose
        self.pruner = pruner
        self.settings = dict(settings or {})
        self._grid_sampler = None  # GridSampler(grid, seed=0): the same order in every worker

    # -- storage --------------------------------------------------------------------------------

    def storage(self):
        """The Optuna storage: a journal file unless a URL was given."""
        import_optuna()
        spec = self.storage_spec or str(self.directory / "study.journal")
        if "://" in str(spec):
            return str(spec)
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(spec)))

    def exists(self) -> bool:
        """Whether the storage already holds this study."""
        optuna = import_optuna()
        try:
            names = optuna.get_all_study_names(self.storage())
        except Exception:  # a journal file that does not exist yet
            return False
        return self.name in names

    def optuna_study(self):
        """The Optuna study (created on first use), with this study's sampler."""
        optuna = import_optuna()
        if self.grid is not None:
            sampler = self._grid_sampler = optuna.samplers.GridSampler(self.grid, seed=0)
        else:
            sampler = self.sampler or optuna.samplers.RandomSampler(seed=0)
        pruner = self.pruner or optuna.pruners.NopPruner()  # Optuna's own default prunes
        return optuna.create_study(study_name=self.name, storage=self.storage(),
                                   sampler=sampler, pruner=pruner, direction=self.direction,
                                   load_if_exists=True)

    # -- running --------------------------------------------------------------------------------

    def run(self, workers: int = 1, resume: bool = False) -> list[dict]:
        """Run the study's runs on ``workers`` processes; return :meth:`results`.

        ``resume=False`` refuses a study that already exists in the storage (so no run is
        mixed into another by mistake); ``resume=True`` continues it, or joins it from
        another machine: runs that finished are kept, interrupted ones run again.
        Each worker process gets ``cores // workers`` BLAS threads.
        """
        if workers < 1:
            raise ValueError(f"Study.run: workers must be >= 1, got {workers}")
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.exists() and not resume:
            raise FileExistsError(
                f"a study named {self.name!r} already exists in {self._storage_text()}; pass "
                f"resume=True (--resume) to continue it, or choose another directory")
        optuna_study = self.optuna_study()
        self._check_same_study(optuna_study)
        self._write_description()
        self._enqueue_random_draws(optuna_study)
        reclaim_interrupted(optuna_study)
        threads = max(1, (os.cpu_count() or 1) // workers)
        if workers == 1:
            _work(self, threads)
        else:
            _run_processes(self, workers, threads)
        return self.results()

    def draws_in_advance(self) -> bool:
        """Whether the specs are drawn when the study starts (a RandomSampler's space): then
        only enqueued trials run, and a trial the sampler makes when none is left is surplus."""
        if self.grid is not None:
            return False
        return self.sampler is None or isinstance(self.sampler,
                                                  import_optuna().samplers.RandomSampler)

    def _enqueue_random_draws(self, optuna_study) -> None:
        """A study with a RandomSampler: draw its ``n_trials`` specs now, in this process,
        with that sampler, and enqueue those that no trial holds yet (all of them in a new
        study). Workers then run exactly the draws one worker would (each worker's copy of a
        seeded sampler would draw the same specs again)."""
        optuna = import_optuna()
        if not self.draws_in_advance():
            return
        held = [trial for trial in optuna_study.get_trials(deepcopy=False)
                if trial.user_attrs.get(STATUS) in FINISHED or _is_active(trial)
                or trial.state.name == "WAITING"]
        missing = self.n_trials - len(held)
        if missing <= 0:
            return
        known = {_key(self.intended_params(trial) or trial.params) for trial in held}
        draws = optuna.create_study(sampler=self.sampler or optuna.samplers.RandomSampler(0))
        for _ in range(self.n_trials):
            params = draws.ask(self.space).params
            if _key(params) not in known and missing > 0:
                optuna_study.enqueue_trial(params, user_attrs={ENQUEUED: True})
                missing -= 1

    def _storage_text(self) -> str:
        return str(self.storage_spec or self.directory / "study.journal")

    def description(self) -> dict:
        """What defines the study's runs, as plain JSON values."""
        return json.loads(json.dumps({
            "grid": self.grid, "fixed": self.fixed,
            "space": None if self.space is None else {k: repr(v) for k, v in self.space.items()},
            "n_trials": self.n_trials, "objective": self.objective, "direction": self.direction,
            **({"settings": self.settings} if self.settings else {}),
        }, default=json_value))

    def _check_same_study(self, optuna_study) -> None:
        """The first worker stores the study's description in the storage; a worker that
        resumes or joins with other options is refused, naming them (its runs would not be
        the study's)."""
        stored = optuna_study.user_attrs.get("chainrule_study")
        mine = self.description()
        if stored is None:
            optuna_study.set_user_attr("chainrule_study", mine)
            return
        differ = [key for key in mine if stored.get(key) != mine[key]]
        if differ:
            details = "; ".join(f"{key}: stored {stored.get(key)!r}, given {mine[key]!r}"
                                for key in differ)
            raise ValueError(f"the study {self.name!r} in {self._storage_text()} was started "
                             f"with other options ({details}); resume it with the same ones, "
                             f"or start a new study in another directory")

    def _write_description(self) -> None:
        write_json(self.directory / "study.json", {
            "name": self.name, **self.description(), "storage": self._storage_text()})

    def next_params(self, trial) -> dict:
        """The varying parameters of ``trial``: its grid point, or a draw from the space."""
        if self.grid is not None:
            return {k: trial.suggest_categorical(k, v) for k, v in self.grid.items()}
        return {k: suggest(trial, k, distribution) for k, distribution in self.space.items()}

    def run_directory(self, params: dict) -> Path:
        return self.directory / "runs" / self.run_name(params)

    # -- results --------------------------------------------------------------------------------

    def results(self) -> list[dict]:
        """One row per run that ended: its spec, its metrics, ``status`` ("ok", "failed" or
        "pruned"), ``error`` and ``run_dir``. A spec run more than once (a lost worker's run redone)
        appears once, with its finished result."""
        optuna = import_optuna()
        study = optuna.load_study(study_name=self.name, storage=self.storage())
        rows: dict = {}
        for trial in study.get_trials(deepcopy=False):
            status = trial.user_attrs.get(STATUS)
            if status not in FINISHED:
                continue
            key = _key(trial.params) if self.grid is not None else trial.number
            if key in rows and rows[key]["status"] == "ok":
                continue  # the first finished result stands
            rows[key] = {**self.fixed, **trial.params,
                         **trial.user_attrs.get("metrics", {}), "status": status,
                         "error": trial.user_attrs.get("error"),
                         "run_dir": str(self.run_directory(trial.params)),  # from here
                         "trial": trial.number}
        return sorted(rows.values(), key=lambda row: row["trial"])

    def pending(self, trials) -> list:
        """Specs still to run, given the study's ``trials``: grid points (dicts) that no
        trial has finished or is running; for a sampled space, one None per missing run."""
        taken = set()
        for trial in trials:
            status = trial.user_attrs.get(STATUS)
            if status in FINISHED or _is_active(trial):
                intended = self.intended_params(trial)
                taken.add(_key(intended) if self.grid is not None else trial.number)
        if self.grid is None:
            return [None] * max(0, self.n_trials - len(taken))
        points = (dict(zip(self.grid, values))
                  for values in itertools.product(*self.grid.values()))
        return [point for point in points if _key(point) not in taken]

    def intended_params(self, trial) -> dict | None:
        """The spec a trial was given when it was created, before its run suggested any
        value: an enqueued spec, or its GridSampler grid point (None if neither)."""
        fixed = trial.system_attrs.get("fixed_params")
        if fixed is not None:
            return fixed
        grid_id = trial.system_attrs.get("grid_id")
        if grid_id is None or self._grid_sampler is None:
            return trial.params
        sampler = self._grid_sampler
        return dict(zip(sampler._param_names, sampler._all_grids[grid_id]))  # Optuna's order


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def suggest(trial, name: str, distribution):
    """``trial``'s value for ``name`` drawn from an Optuna distribution, by the public
    ``suggest_*`` method of its kind."""
    optuna = import_optuna()
    kinds = optuna.distributions
    if isinstance(distribution, kinds.CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, kinds.IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high,
                                 step=distribution.step, log=distribution.log)
    if isinstance(distribution, kinds.FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high,
                                   step=distribution.step, log=distribution.log)
    raise TypeError(f"Study: space[{name!r}] must be an Optuna distribution, got "
                    f"{type(distribution).__name__}")


# -- a worker ---------------------------------------------------------------------------------


def _work(study: Study, threads: int, worker: int = 0) -> None:
    """One worker: take runs from the storage until none is left. Workers after the first
    reseed their copy of a sampler that draws as it goes (TPE), which would otherwise propose
    the first worker's specs again (Optuna reseeds per thread for ``n_jobs`` alike)."""
    from chainrule import kernels

    if worker > 0 and study.sampler is not None and study.grid is None:
        study.sampler.reseed_rng()
    optuna_study = study.optuna_study()
    with kernels.blas_threads(threads):
        while True:
            reclaim_interrupted(optuna_study)  # a lost worker's run is taken over at once
            trials = optuna_study.get_trials(deepcopy=False)
            pending = study.pending(trials)
            if not pending:
                return
            if study.grid is not None and len(trials) >= study.n_trials:
                _enqueue_missing(optuna_study, pending, trials)
            if study.draws_in_advance() and not any(t.state.name == "WAITING" for t in trials):
                return  # the other workers run the last specs

            optuna_study.optimize(lambda trial: _objective(study, trial), n_trials=1,
                                  catch=(_RunFailed,))


def _enqueue_missing(optuna_study, points: list, trials) -> None:
    """Enqueue the grid points that no trial waits for: once GridSampler has handed out every
    trial number of the grid, this is how a point whose run was lost gets its turn."""
    waiting = {_key(t.system_attrs.get("fixed_params") or {}) for t in trials
               if t.state.name == "WAITING"}
    for point in points:
        if _key(point) not in waiting:
            optuna_study.enqueue_trial(point, user_attrs={ENQUEUED: True})


class _RunFailed(Exception):
    """A run raised: the trial is recorded as failed and the study goes on."""


class RunPruned(Exception):
    """Raised by a run that stops because :func:`report` returned True; ``metrics`` are the
    run's partial metrics, recorded with the pruned trial."""

    def __init__(self, metrics: dict | None = None):
        super().__init__("the study's pruner stopped this run")
        self.metrics = dict(metrics or {})


class _Running:
    """The Optuna trial of the run going on in this process (a worker runs one at a time) and
    the last step it reported."""

    trial = None
    last_step: int | None = None


def report(step: int, value: float) -> bool:
    """Report ``value``, the running run's intermediate score at ``step`` (an epoch), to the
    study's pruner; return True when the run should stop (then raise :class:`RunPruned`).

    This is Optuna's ``trial.report(value, step)`` then ``trial.should_prune()``. Outside a
    study, or with no pruner, it returns False. A NaN value is reported as it is: Optuna's
    median pruner stops a run whose best value is NaN (a diverged run).
    """
    trial = _Running.trial
    if trial is None:
        return False
    trial.report(float(value), int(step))
    _Running.last_step = int(step)
    return bool(trial.should_prune())


class _Heartbeat:
    """Marks ``trial`` alive every :data:`HEARTBEAT_EVERY` seconds while a run goes on."""

    def __init__(self, trial):
        self.trial = trial
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="chainrule-heartbeat")

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_EVERY):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except Exception:  # the storage is busy or gone: the next beat tries again
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join()


def _objective(study: Study, trial) -> float:
    """Run one trial's spec; its value is the study's objective metric."""
    optuna = import_optuna()
    for key, value in (("host", socket.gethostname()), ("pid", os.getpid()),
                       ("heartbeat", time.time()), (STATUS, "running")):
        trial.set_user_attr(key, value)
    if study.draws_in_advance() and not trial.user_attrs.get(ENQUEUED):
        # two workers raced for the last enqueued spec; the loser's trial was drawn afresh
        trial.set_user_attr(STATUS, "surplus")
        raise optuna.TrialPruned("every spec of this study was drawn in advance")
    if study.grid is None and _earlier_runs(trial) >= study.n_trials:
        trial.set_user_attr(STATUS, "surplus")  # workers raced for the last draw
        raise optuna.TrialPruned("the study's n_trials are taken by earlier trials")
    params = study.next_params(trial)
    if study.grid is not None and _is_duplicate(study, trial, params):
        trial.set_user_attr(STATUS, "surplus")
        raise optuna.TrialPruned("another worker runs or ran this spec")
    directory = study.run_directory(params)
    trial.set_user_attr("run_dir", str(directory))
    spec = {**study.fixed, **params}
    try:
        _Running.trial, _Running.last_step = trial, None
        with _Heartbeat(trial):
            metrics = _run_in(study.run_function, spec, directory)
        value = _objective_value(metrics, study.objective)
    except RunPruned as stop:
        _record_pruned(study, trial, directory, stop.metrics)
        raise optuna.TrialPruned(f"pruned at step {_Running.last_step}") from None
    except Exception as error:
        trial.set_user_attr(STATUS, "failed")
        trial.set_user_attr("error", f"{type(error).__name__}: {error}")
        trial.set_user_attr("traceback", traceback.format_exc())
        _say(study, f"{directory.name}: failed: {type(error).__name__}: {error}")
        raise _RunFailed(str(error)) from error
    except BaseException:  # Ctrl-C: the run is redone on --resume
        trial.set_user_attr(STATUS, "interrupted")
        study.optuna_study().enqueue_trial(params, user_attrs={"redo_of": trial.number,
                                                               ENQUEUED: True})
        raise
    finally:
        _Running.trial = None
    trial.set_user_attr("metrics", metrics)
    trial.set_user_attr(STATUS, "ok")
    _say(study, f"{directory.name}: {study.objective} {value:.4g} "
                f"({metrics.get('time_s', 0):.1f}s, trial {trial.number})")
    return value


def _record_pruned(study: Study, trial, directory: Path, metrics: dict) -> None:
    """A pruned run's partial metrics, in the storage and in its folder's metrics.json."""
    step = _Running.last_step
    metrics = json.loads(json.dumps({**metrics, "pruned_at_step": step}, default=json_value))
    write_json(directory / "metrics.json", metrics)
    trial.set_user_attr("metrics", metrics)
    trial.set_user_attr(STATUS, "pruned")
    _say(study, f"{directory.name}: pruned at step {step} (trial {trial.number})")


def _say(study: Study, line: str) -> None:
    """One line per finished run, when the study is verbose (workers print in turn)."""
    if study.verbose:
        print(line, flush=True)


def _run_in(run, spec: dict, directory: Path) -> dict:
    """Run ``run(spec, directory)`` in an emptied ``directory``; write spec.json and
    metrics.json (the mark of a finished run)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    write_json(directory / "spec.json", spec)
    started = time.perf_counter()
    metrics = run(dict(spec), directory)
    if not isinstance(metrics, dict):
        raise TypeError(f"the run function returned {type(metrics).__name__}, not a dict of "
                        f"metrics")
    metrics = {**metrics}
    metrics.setdefault("time_s", round(time.perf_counter() - started, 3))
    write_json(directory / "metrics.json", metrics)
    return json.loads(json.dumps(metrics, default=json_value))  # plain JSON values


def _objective_value(metrics: dict, objective: str) -> float:
    if objective not in metrics:
        raise KeyError(f"the run returned no metric {objective!r} (the study's objective); it "
                       f"returned {sorted(metrics)}")
    value = metrics[objective]
    return math.inf if value is None else float(value)


def _is_duplicate(study: Study, trial, params: dict) -> bool:
    """Whether a trial with a lower number finished, or runs, the same ``params``.

    Trials are compared by the spec they were created with (:meth:`Study.intended_params`):
    of two workers that got the same spec at once, the one with the lower trial number runs
    it, and the other sees that. A trial that Optuna has created but not yet given its spec
    (GridSampler writes it just after) is waited for, up to :data:`UNDECIDED_WAIT` seconds."""
    deadline = time.monotonic() + UNDECIDED_WAIT
    while True:
        undecided = False
        for other in trial.study.get_trials(deepcopy=False):
            if other.number >= trial.number:
                continue
            intended = study.intended_params(other)
            status = other.user_attrs.get(STATUS)
            if intended == params and status in FINISHED:
                return True
            if not _is_active(other):
                continue
            if not intended:
                undecided = True
            elif intended == params:
                return True
        if not undecided or time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _earlier_runs(trial) -> int:
    """How many trials numbered before ``trial`` ended or are running (lower numbers win)."""
    return sum(1 for other in trial.study.get_trials(deepcopy=False)
               if other.number < trial.number
               and (other.user_attrs.get(STATUS) in FINISHED or _is_active(other)))


def _is_active(trial) -> bool:
    """A RUNNING trial that is not a pruned surplus and whose worker is alive."""
    return (trial.state.name == "RUNNING"
            and trial.user_attrs.get(STATUS) != "surplus" and not _is_lost(trial))


# -- interrupted runs -------------------------------------------------------------------------


def _is_lost(trial) -> bool:
    """Whether a RUNNING trial's worker is gone: a dead process of this host, or no heartbeat
    for :data:`STALE_AFTER` seconds."""
    attrs = trial.user_attrs
    if attrs.get("host") == socket.gethostname() and attrs.get("pid") is not None:
        try:
            os.kill(int(attrs["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        else:
            if int(attrs["pid"]) == os.getpid():
                return False
    last_beat = attrs.get("heartbeat")
    if last_beat is None and trial.datetime_start is not None:  # created, not yet started
        last_beat = trial.datetime_start.timestamp()
    return time.time() - float(last_beat or 0.0) > STALE_AFTER


def reclaim_interrupted(optuna_study) -> int:
    """Mark the RUNNING trials whose worker is gone as interrupted (FAIL) and enqueue their
    specs again; return how many. Two workers reclaiming at once: the first to end the
    trial enqueues it, the other's update is refused."""
    optuna = import_optuna()
    states = optuna.trial.TrialState
    count = 0
    for trial in optuna_study.get_trials(deepcopy=False, states=(states.RUNNING,)):
        if not _is_lost(trial):
            continue
        storage = optuna_study._storage
        try:
            storage.set_trial_user_attr(trial._trial_id, STATUS, "interrupted")
            finished = storage.set_trial_state_values(trial._trial_id, states.FAIL)
        except Exception:  # another worker ended it first
            continue
        if finished and trial.params:
            optuna_study.enqueue_trial(trial.params, user_attrs={"redo_of": trial.number,
                                                                 ENQUEUED: True})
            count += 1
    return count


# -- worker processes -------------------------------------------------------------------------


def _run_processes(study: Study, workers: int, threads: int) -> None:
    """``workers`` processes (spawned: no inherited BLAS threads or locks), each a worker."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_work, args=(study, threads, k), name=f"worker-{k}")
                 for k in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except BaseException:
        for process in processes:
            process.terminate()
        raise
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"Study.run: worker processes {failed} ended with an error (see "
                           f"above); finished runs are kept, rerun with resume=True")
