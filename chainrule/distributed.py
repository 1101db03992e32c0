"""Data-parallel training across processes and machines on MPI (the ``[dist]`` extra).

Launch the same script on N processes with ``mpiexec -n N python train.py`` (or ``mpiexec -n
N chainrule train ...``); each process holds a whole copy of the model and trains on its own
share of every batch, and after every ``backward`` the gradients are averaged across the
processes, so every copy takes the same step:

    θ ← θ − η · (Σ_r n_r · g_r) / (Σ_r n_r)    (g_r: process r's mean gradient, n_r samples)

which is the gradient of one process at batch Σ n_r. The collectives are MPI's (mpi4py on
MPICH, ``pip install 'chainrule[dist]'``): nothing here is a protocol of our own.

* :func:`init` returns the :class:`Communicator` of the job: MPI's when the process was started
  by ``mpiexec`` (MPI's environment variables say so), else a single-process one whose
  collectives do nothing, so the same script runs alone too. Each process gets cores // size
  BLAS threads (``init(threads=...)`` overrides it).
* :func:`DistributedOptimizer` wraps an optimizer: its ``step`` first averages the gradients
  with ``Allreduce(IN_PLACE)``, packed into contiguous buffers of at most :data:`BUCKET_BYTES`,
  so gradient clipping (inside the wrapped ``step``) sees the averaged gradient. It works in a
  hand-written loop and in ``model.compile(optimizer=...)``.
* ``model.fit(..., distributed=True)`` does the rest (see :meth:`chainrule.models.Model.fit`):
  broadcasts the initial weights from rank 0, shards each epoch's order by rank, reduces the
  metrics so every rank logs the same numbers, and lets only rank 0 print and write files.

Faults: an exception on one rank would leave the others waiting in a collective forever, so
:func:`init` installs an excepthook that prints the error with its rank and calls
``MPI_Abort``: the whole job ends with a non-zero exit. Models that differ across ranks
(parameter counts, shapes, dtypes) fail at :meth:`Communicator.broadcast_parameters` with the
first difference named, never with garbage.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from chainrule import backend

#: Largest buffer of one gradient Allreduce (PyTorch DDP's default bucket, 25 MiB).
BUCKET_BYTES = 25 * 2**20

#: Environment variables that MPI launchers set (MPICH/hydra, Open MPI, PMIx).
_MPI_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (``mpiexec``)."""
    return any(name in os.environ for name in _MPI_VARIABLES)


def import_mpi():
    """mpi4py's ``MPI``, or an ImportError that names the ``[dist]`` extra (also when mpi4py is
    there but finds no MPI library: ``RuntimeError: cannot load MPI library``)."""
    from chainrule._extras import require

    require("mpi4py", "dist", "chainrule.distributed")
    try:
        from mpi4py import MPI
    except RuntimeError as error:
        raise ImportError(f"chainrule.distributed: mpi4py found no MPI library ({error}); "
                          f"pip install 'chainrule[dist]' installs MPICH") from error
    return MPI


class Communicator:
    """The processes of one job. This base class is the single-process job: rank 0 of 1, every
    collective a no-op; :class:`MPICommunicator` is the real one."""

    rank = 0
    size = 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # -- the collectives (in place; no-ops alone) -----------------------------------------------

    def allreduce_sum_(self, buffer: np.ndarray) -> np.ndarray:
        """Sum ``buffer`` over the ranks, in place."""
        return buffer

    def broadcast_(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``buffer`` with root's, in place."""
        return buffer

    def allgather(self, value) -> list:
        """Every rank's ``value`` (a small plain Python value), in rank order."""
        return [value]

    def barrier(self) -> None:
        """Wait until every rank gets here."""

    # -- what training needs ------------------------------------------------------------------

    def broadcast_object(self, value, root: int = 0):
        """Root's ``value`` on every rank."""
        return self.allgather(value)[root]

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank."""
        return bool(self.allreduce_sum_(np.array([float(bool(flag))]))[0] > 0)

    def allreduce_mean(self, arrays) -> list:
        """The mean over ranks of each array (all ranks give the same shapes), in place."""
        arrays = [np.asarray(a) for a in arrays]
        for bucket in _buckets(arrays, BUCKET_BYTES):
            buffer = np.concatenate([a.reshape(-1) for a in bucket])
            self.allreduce_sum_(buffer)
            buffer /= self.size
            _unpack(buffer, bucket)
        return arrays

    def broadcast_parameters(self, model_or_params, root: int = 0) -> None:
        """Give every rank root's weights (a model's weights and buffers, or a list of
        Tensors), after checking that every rank holds the same names, shapes and dtypes."""
        named = _named_arrays(model_or_params)
        self.check_same([(name, tuple(a.shape), str(a.dtype)) for name, a in named],
                        "broadcast_parameters: the models")
        for _, array in named:
            self.broadcast_(array, root)

    def check_same(self, signature, what: str) -> None:
        """Raise on every rank, naming the first difference, unless all ranks give the same
        ``signature`` (a list of plain values)."""
        signatures = self.allgather(list(signature))
        for rank, other in enumerate(signatures):
            if other != signatures[0]:
                difference = _first_difference(signatures[0], other, rank)
                raise ValueError(f"{what} differ across ranks: {difference}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class MPICommunicator(Communicator):
    """An MPI communicator (``MPI.COMM_WORLD`` by default), through mpi4py's buffer methods
    (its pickling lower-case methods only for the small values of :meth:`allgather`)."""

    def __init__(self, comm=None):
        mpi = import_mpi()
        self.MPI = mpi
        self.comm = comm if comm is not None else mpi.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce_sum_(self, buffer):
        self.comm.Allreduce(self.MPI.IN_PLACE, _contiguous(buffer), op=self.MPI.SUM)
        return buffer

    def broadcast_(self, buffer, root=0):
        self.comm.Bcast(_contiguous(buffer), root=root)
        return buffer

    def allgather(self, value):
        return self.comm.allgather(value)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


_job: Communicator | None = None
_thread_limit = None  # threadpoolctl's limiter, kept alive for the process


def init(threads: int | None = None) -> Communicator:
    """The job's communicator (made once per process): MPI's under ``mpiexec``, else a
    single-process one. Under MPI, BLAS gets ``threads`` threads per process (default:
    cores // size, at least 1), and an excepthook ends the whole job when one rank raises."""
    global _job
    if _job is None:
        _job = MPICommunicator() if launched_by_mpi() else Communicator()
        if _job.size > 1:
            _install_abort_hook(_job)
            limit_blas_threads(threads or max(1, (os.cpu_count() or 1) // _job.size))
    elif threads is not None:
        limit_blas_threads(threads)
    return _job


def limit_blas_threads(count: int) -> None:
    """Hold BLAS to ``count`` threads in this process (needs threadpoolctl, the ``[fast]``
    extra; without it nothing changes)."""
    global _thread_limit
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _thread_limit = threadpool_limits(limits=int(count), user_api="blas")


def _install_abort_hook(comm: MPICommunicator) -> None:
    """An uncaught exception on one rank prints it with the rank and aborts the whole job
    (MPI_Abort), instead of leaving the other ranks waiting forever."""
    previous = sys.excepthook

    def abort_job(kind, error, trace):
        sys.stderr.write(f"chainrule.distributed: rank {comm.rank} of {comm.size} failed "
                         f"({kind.__name__}: {error}); aborting the job\n")
        sys.stderr.flush()
        previous(kind, error, trace)
        sys.stderr.flush()
        time.sleep(0.5)  # let the launcher forward the traceback before the job is killed
        comm.abort(1)

    sys.excepthook = abort_job


# -- DistributedOptimizer -------------------------------------------------------------------------


class _AveragingStep:
    """Mixed in before an optimizer's class: ``step`` averages the gradients first."""

    def step(self, closure=None):
        self.average_gradients()
        return super().step(closure)

    def average_gradients(self) -> None:
        """g ← (Σ_r n_r g_r) / Σ_r n_r over the ranks, in place, bucket by bucket; n_r is
        :attr:`local_samples` (set by ``fit`` before each step; 1 when not set, so a
        hand-written loop with equal batches gets the plain mean)."""
        comm = self.communicator
        params = [p for p in self.params]
        grads = []
        for p in params:
            if p.grad is None:  # a rank without this gradient contributes zeros
                from chainrule.tensor import Tensor

                p.grad = Tensor(backend.get_array_module(p.data).zeros_like(p.data))
            grads.append(p.grad.data)
        weight = float(getattr(self, "local_samples", None) or 1.0)
        total = comm.allreduce_sum_(np.array([weight]))[0]
        for bucket in _buckets(grads, self.bucket_bytes):
            buffer = np.concatenate([g.reshape(-1) for g in bucket])
            if weight != 1.0:
                buffer *= weight
            comm.allreduce_sum_(buffer)
            buffer /= total
            _unpack(buffer, bucket)


def DistributedOptimizer(optimizer, comm: Communicator | None = None,  # noqa: N802
                         bucket_bytes: int = BUCKET_BYTES):
    """``optimizer``, made to average the gradients over the ranks before every step.

    The result is an instance of a subclass of the optimizer's own class, with the same name
    and state (as Horovod does): ``state_dict``, ``learning_rate``, schedules and clipping work
    as before, and ``model.compile(optimizer=DistributedOptimizer(Adam(1e-3)))`` accepts it.
    ``bucket_bytes``: the largest buffer of one Allreduce.
    """
    if isinstance(optimizer, _AveragingStep):
        return optimizer
    if int(bucket_bytes) < 1024:
        raise ValueError(f"DistributedOptimizer: bucket_bytes must be at least 1024, "
                         f"got {bucket_bytes}")
    base = type(optimizer)
    cls = type(base.__name__, (_AveragingStep, base), {"__qualname__": base.__qualname__,
                                                       "__module__": base.__module__})
    distributed = cls.__new__(cls)
    distributed.__dict__.update(optimizer.__dict__)
    distributed.communicator = comm or init()
    distributed.bucket_bytes = int(bucket_bytes)
    return distributed


# -- sharding -------------------------------------------------------------------------------------


def shard_loader(loader, comm: Communicator):
    """A loader whose batch b is this rank's share of global batch b: the global batch of
    ``batch_size · size`` samples of the epoch's order, split as evenly as possible
    (``np.array_split``) over the ranks. Every rank draws the same order (same seed), so every
    sample is seen once per epoch across the ranks; a last global batch smaller than ``size``
    is dropped (at most size − 1 samples per epoch)."""
    from chainrule.data import DataLoader

    class ShardedLoader(DataLoader):
        def __len__(self):
            n, per_step = len(self.dataset), self.batch_size * comm.size
            steps = n // per_step
            return steps + (1 if n % per_step >= comm.size else 0)

        def batches(self, order, start=0):
            per_step = self.batch_size * comm.size
            for b in range(start, len(self)):
                group = order[b * per_step:(b + 1) * per_step]
                yield self.fetch(np.array_split(group, comm.size)[comm.rank])

    sharded = ShardedLoader.__new__(ShardedLoader)
    sharded.__dict__.update(loader.__dict__)
    return sharded


# -- helpers --------------------------------------------------------------------------------------


def _named_arrays(model_or_params) -> list:
    if hasattr(model_or_params, "named_weights"):
        return [(name, w.data) for name, w in model_or_params.named_weights()]
    return [(str(i), getattr(p, "data", p)) for i, p in enumerate(model_or_params)]


def _buckets(arrays: list, limit: int):
    """Consecutive groups of ``arrays`` of one dtype and at most ``limit`` bytes (an array
    larger than ``limit`` is a group of its own)."""
    bucket, size = [], 0
    for array in arrays:
        if bucket and (size + array.nbytes > limit or array.dtype != bucket[0].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append(array)
        size += array.nbytes
    if bucket:
        yield bucket


def _unpack(buffer: np.ndarray, arrays: list) -> None:
    offset = 0
    for array in arrays:
        array[...] = buffer[offset:offset + array.size].reshape(array.shape)
        offset += array.size


def _contiguous(buffer: np.ndarray) -> np.ndarray:
    if not (isinstance(buffer, np.ndarray) and buffer.flags.c_contiguous):
        raise ValueError("chainrule.distributed: collectives need C-contiguous NumPy arrays")
    return buffer


def _first_difference(ours: list, theirs: list, rank: int) -> str:
    if len(ours) != len(theirs):
        return f"rank 0 has {len(ours)} entries, rank {rank} has {len(theirs)}"
    for mine, other in zip(ours, theirs):
        if mine != other:
            return f"rank 0 has {mine}, rank {rank} has {other}"
    return f"rank {rank} differs"


__all__ = ["BUCKET_BYTES", "Communicator", "DistributedOptimizer", "MPICommunicator", "init",
           "launched_by_mpi", "shard_loader"]
