"""random_split, train_val_test_split, KFold and StratifiedKFold (checked against sklearn)."""

import numpy as np
import pytest

import chainrule.random as cr_random
from chainrule.data import (
    ArrayDataset,
    KFold,
    StratifiedKFold,
    random_split,
    train_val_test_split,
)


def _indices(subset):
    return subset.indices.tolist()


def test_random_split_with_counts_and_fractions():
    ds = ArrayDataset(np.arange(10))
    parts = random_split(ds, [3, 7], seed=0)
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(_indices(parts[0]) + _indices(parts[1])) == list(range(10))
    # Fractions: floors 3, 3, 3 and the leftover sample goes to the first split (as torch).
    assert [len(p) for p in random_split(ds, [1 / 3, 1 / 3, 1 / 3], seed=0)] == [4, 3, 3]
    again = random_split(ds, [3, 7], seed=0)
    assert _indices(again[0]) == _indices(parts[0])
    cr_random.manual_seed(5)
    a = random_split(ds, [0.5, 0.5])
    cr_random.manual_seed(5)
    assert _indices(random_split(ds, [0.5, 0.5])[0]) == _indices(a[0])


def test_random_split_errors():
    ds = ArrayDataset(np.arange(10))
    with pytest.raises(ValueError, match="sum to 10"):
        random_split(ds, [3, 6])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.2])


def test_train_val_test_layout_and_sizes():
    x = np.arange(200).reshape(100, 2)
    y = np.arange(100)
    x_tr, y_tr, x_val, y_val, x_te, y_te = train_val_test_split(x, y, val=0.15, test=0.1, seed=0)
    assert (len(x_tr), len(x_val), len(x_te)) == (75, 15, 10)
    for xs, ys in ((x_tr, y_tr), (x_val, y_val), (x_te, y_te)):
        np.testing.assert_array_equal(xs[:, 0] // 2, ys)  # rows stay paired
    assert sorted(np.concatenate([y_tr, y_val, y_te]).tolist()) == list(range(100))
    again = train_val_test_split(x, y, val=0.15, test=0.1, seed=0)
    np.testing.assert_array_equal(again[1], y_tr)
    counts = train_val_test_split(y, val=5, test=0, seed=1)
    assert [len(c) for c in counts] == [95, 5, 0]


def test_fraction_rounding_matches_sklearn():
    sklearn_ms = pytest.importorskip("sklearn.model_selection")
    for n, frac in [(10, 0.25), (1797, 0.2), (7, 0.1), (100, 0.333)]:
        _, sk_test = sklearn_ms.train_test_split(np.arange(n), test_size=frac, random_state=0)
        _, _, ours = train_val_test_split(np.arange(n), val=0, test=frac, seed=0)
        assert len(ours) == len(sk_test)


def test_stratified_split_keeps_proportions():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), [50, 30, 15, 5])
    rng.shuffle(y)
    x = np.arange(len(y))
    x_tr, y_tr, x_val, y_val, x_te, y_te = train_val_test_split(
        x, y, val=0.2, test=0.2, seed=3, stratify=y
    )
    assert (len(y_tr), len(y_val), len(y_te)) == (60, 20, 20)
    for part in (y_val, y_te):
        np.testing.assert_array_equal(np.bincount(part, minlength=4), [10, 6, 3, 1])
    np.testing.assert_array_equal(y[x_te], y_te)
    assert sorted(np.concatenate([x_tr, x_val, x_te]).tolist()) == list(range(100))
    # (N, 1) labels, as Keras' CIFAR loaders return them, are accepted.
    parts = train_val_test_split(x, val=0.2, test=0.2, seed=3, stratify=y[:, None])
    np.testing.assert_array_equal(parts[2], x_te)


def test_stratified_split_with_tiny_classes_stays_valid():
    y = np.array([0] * 8 + [1, 2])
    tr, val, te = train_val_test_split(np.arange(10), val=0.1, test=0.1, seed=0, stratify=y)
    assert (len(tr), len(val), len(te)) == (8, 1, 1)
    assert sorted(np.concatenate([tr, val, te]).tolist()) == list(range(10))


def test_split_errors():
    with pytest.raises(ValueError, match=r"\(5,\), \(4,\)"):
        train_val_test_split(np.zeros(5), np.zeros(4))
    with pytest.raises(ValueError, match="exceed"):
        train_val_test_split(np.zeros(5), val=3, test=3)
    with pytest.raises(ValueError, match="float in"):
        train_val_test_split(np.zeros(5), val=1.5)
    with pytest.raises(ValueError, match="got 4 labels for 5"):
        train_val_test_split(np.zeros(5), stratify=np.zeros(4))


def _folds(splitter, arg):
    return [(tr.tolist(), va.tolist()) for tr, va in splitter.split(arg)]


@pytest.mark.parametrize(("n", "k"), [(10, 2), (10, 3), (17, 5), (5, 5), (100, 7)])
def test_kfold_matches_sklearn_without_shuffle(n, k):
    sklearn_ms = pytest.importorskip("sklearn.model_selection")
    ours = _folds(KFold(k), n)
    theirs = [(a.tolist(), b.tolist()) for a, b in sklearn_ms.KFold(k).split(np.zeros(n))]
    assert ours == theirs
    assert _folds(KFold(k), np.zeros((n, 3))) == ours


def test_kfold_shuffle_partitions_and_is_reproducible():
    folds = _folds(KFold(4, shuffle=True, seed=0), 22)
    vals = [v for _, v in folds]
    assert sorted(sum(vals, [])) == list(range(22))
    assert [len(v) for v in vals] == [6, 6, 5, 5]
    for train, val in folds:
        assert sorted(train + val) == list(range(22)) and train == sorted(train)
        assert val == sorted(val)
    assert _folds(KFold(4, shuffle=True, seed=0), 22) == folds
    assert _folds(KFold(4, shuffle=True, seed=1), 22) != folds
    assert vals != [v for _, v in _folds(KFold(4), 22)]


def test_kfold_errors():
    with pytest.raises(ValueError, match="n_splits must be an int >= 2"):
        KFold(1)
    with pytest.raises(ValueError, match="without shuffle"):
        KFold(3, seed=0)
    with pytest.raises(ValueError, match="cannot make 5 folds from 3"):
        list(KFold(5).split(3))
    assert KFold(4).get_n_splits() == 4


@pytest.mark.filterwarnings("ignore:.*(least populated|smallest) class:UserWarning")
@pytest.mark.parametrize("seed", range(5))
def test_stratified_kfold_matches_sklearn_without_shuffle(seed):
    sklearn_ms = pytest.importorskip("sklearn.model_selection")
    rng = np.random.default_rng(seed)
    y = rng.choice([3, 1, 7, 2], size=60, p=[0.4, 0.3, 0.2, 0.1])
    theirs = [(a.tolist(), b.tolist()) for a, b in sklearn_ms.StratifiedKFold(5).split(y, y)]
    assert _folds(StratifiedKFold(5), y) == theirs
    ours_xy = [(a.tolist(), b.tolist()) for a, b in StratifiedKFold(5).split(np.zeros(60), y)]
    assert ours_xy == theirs


def test_stratified_kfold_shuffle_keeps_class_counts_per_fold():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=50)
    plain = [np.bincount(y[v], minlength=3).tolist() for _, v in StratifiedKFold(4).split(y)]
    shuffled = list(StratifiedKFold(4, shuffle=True, seed=9).split(y))
    assert [np.bincount(y[v], minlength=3).tolist() for _, v in shuffled] == plain
    assert sorted(np.concatenate([v for _, v in shuffled]).tolist()) == list(range(50))
    again = list(StratifiedKFold(4, shuffle=True, seed=9).split(y))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(shuffled, again, strict=True))


def test_stratified_kfold_small_classes():
    with pytest.warns(UserWarning, match="only 2 members"):
        list(StratifiedKFold(3).split(np.array([0] * 6 + [1] * 2)))
    with pytest.raises(ValueError, match="more than the largest class"):
        list(StratifiedKFold(4).split(np.array([0, 0, 1, 1, 2, 2])))
