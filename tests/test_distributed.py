"""chainrule.distributed in one process: the single-process communicator, the optimizer
wrapper, sharding, bucketing, and fit(distributed=True) changing nothing alone."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import chainrule
from chainrule import distributed, losses
from chainrule.data import ArrayDataset, DataLoader
from chainrule.layers import Dense, Flatten
from chainrule.models import Input, Sequential
from chainrule.optimizers import SGD


class FakeComm(distributed.Communicator):
    """Rank ``rank`` of ``size`` whose collectives act as if every rank held the same
    buffers (a sum is size × the buffer)."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def allreduce_sum_(self, buffer):
        buffer *= self.size
        return buffer

    def allgather(self, value):
        return [value] * self.size


def model(seed=0):
    chainrule.manual_seed(seed)
    net = Sequential([Input(shape=(4,)), Dense(8, activation="relu"), Dense(2)])
    net.compile(optimizer=SGD(0.1, momentum=0.9),
                loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    return net


def data(n=48):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def test_alone_the_communicator_is_rank_0_of_1_and_does_nothing(monkeypatch):
    for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distributed, "_job", None)
    comm = distributed.init()
    assert (comm.rank, comm.size, comm.is_root) == (0, 1, True)
    buffer = np.arange(3.0)
    assert comm.allreduce_sum_(buffer) is buffer and buffer.tolist() == [0, 1, 2]
    assert comm.broadcast_object("x") == "x" and comm.any(True) and not comm.any(False)
    assert distributed.init() is comm


def test_fit_distributed_alone_equals_an_ordinary_fit():
    plain, alone = model(), model()
    x, y = data()
    plain.fit(x, y, batch_size=16, epochs=2, seed=1, verbose=0)
    alone.fit(x, y, batch_size=16, epochs=2, seed=1, verbose=0,
              distributed=distributed.Communicator())
    for got, want in zip(alone.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert type(alone.optimizer).__name__ == "SGD"
    assert isinstance(alone.optimizer, SGD)


def test_the_distributed_optimizer_averages_weighted_by_samples():
    param = chainrule.tensor(np.zeros(3, np.float32), requires_grad=True)
    optimizer = distributed.DistributedOptimizer(SGD([param], learning_rate=1.0),
                                                 FakeComm(0, 2), bucket_bytes=1024)
    param.grad = chainrule.tensor(np.array([1.0, 2.0, 3.0], np.float32))
    optimizer.local_samples = 5  # every fake rank had 5 samples: the mean is the gradient
    optimizer.step()
    np.testing.assert_allclose(param.data, [-1.0, -2.0, -3.0])
    assert optimizer.state_dict()["class_name"] == "SGD"
    assert distributed.DistributedOptimizer(optimizer) is optimizer


def test_buckets_respect_their_size_and_dtype():
    arrays = [np.zeros(100, np.float32), np.zeros(100, np.float32), np.zeros(300, np.float32),
              np.zeros(10, np.float64)]
    sizes = [[a.size for a in bucket] for bucket in distributed._buckets(arrays, 800)]
    assert sizes == [[100, 100], [300], [10]]


@pytest.mark.parametrize("n, sizes, seen", [
    (50, [[8, 8], [8, 8], [8, 8]], 48),  # 2 global batches of 24; the last 2 (< 3 ranks) drop
    (52, [[8, 8, 2], [8, 8, 1], [8, 8, 1]], 52),  # the last 4 are split 2, 1, 1
])
def test_shards_split_every_global_batch_and_cover_the_epoch_once(n, sizes, seen):
    x, y = data(n)
    loader = DataLoader(ArrayDataset(x, y), batch_size=8, shuffle=True, seed=4)
    order = loader.epoch_order()
    rows = []
    for rank in range(3):
        shard = distributed.shard_loader(loader, FakeComm(rank, 3))
        batches = list(shard.batches(order))
        assert len(shard) == len(sizes[rank]) and [len(b[0]) for b in batches] == sizes[rank]
        rows += [tuple(row) for b in batches for row in b[0].tolist()]
    assert len(rows) == seen and len(set(rows)) == seen


def test_missing_mpi_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"chainrule\[dist\]"):
        distributed.import_mpi()


def test_fit_refuses_a_distributed_that_is_not_a_communicator():
    with pytest.raises(TypeError, match="distributed must be True, False or a"):
        model().fit(*data(), verbose=0, distributed="mpi")


def test_a_model_built_in_the_fit_of_a_rank_whose_first_shard_is_empty(monkeypatch):
    # rank 1 of 2 at a batch of 1 sample holds nothing of "batch" [0]: the model is built from
    # sample 0 itself, not from the rank's share of it
    from chainrule.models.fit_state import FitState

    chainrule.manual_seed(0)
    net = Sequential([Flatten(), Dense(2)])  # built lazily; Flatten cannot take 0 samples
    net.compile(optimizer=SGD(0.1), loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = data(8)
    x = x.reshape(8, 2, 2)
    loader = distributed.shard_loader(DataLoader(ArrayDataset(x, y), batch_size=4),
                                      FakeComm(1, 2))
    FitState(net, loader, history=None)._ready_to_load()
    assert net.built and net.optimizer.built


class TwoRanks(distributed.Communicator):
    """Rank 0 of 2 whose partner's gradient is ``other`` (its sample weight 1, as ours)."""

    rank, size = 0, 2

    def __init__(self, other):
        self.other = np.asarray(other, np.float32)

    def allreduce_sum_(self, buffer):
        buffer += buffer if buffer.size == 1 else self.other  # weights: 1 + 1
        return buffer


def test_clipping_sees_the_averaged_gradient():
    param = chainrule.tensor(np.zeros(2, np.float32), requires_grad=True)
    optimizer = distributed.DistributedOptimizer(SGD([param], learning_rate=1.0, clipnorm=1.0),
                                                 TwoRanks([0.0, 0.0]))
    param.grad = chainrule.tensor(np.array([4.0, 0.0], np.float32))
    optimizer.step()  # mean (2, 0), clipped to norm 1: (1, 0); clipping first would give 0.5
    np.testing.assert_allclose(param.data, [-1.0, 0.0])
