"""Initializers: statistics of large draws, fans, orthogonality, seeding, lookup by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import initializers as I

DENSE = (400, 600)  # fan_in 400, fan_out 600: 240,000 samples
CONV = (64, 64, 5, 5)  # fan_in = fan_out = 64·25 = 1600: 102,400 samples

# (initializer, shape, expected mean, expected variance)
STATISTICS = [
    (I.RandomNormal(), DENSE, 0.0, 0.05**2),
    (I.RandomNormal(mean=1.0, stddev=2.0), DENSE, 1.0, 4.0),
    (I.RandomUniform(), DENSE, 0.0, 0.1**2 / 12),
    (I.RandomUniform(2.0, 4.0), DENSE, 3.0, 4.0 / 12),
    (I.TruncatedNormal(stddev=1.0), DENSE, 0.0, 0.87962566103423978**2),
    (I.GlorotUniform(), DENSE, 0.0, 2 / (400 + 600)),
    (I.GlorotNormal(), DENSE, 0.0, 2 / (400 + 600)),
    (I.HeUniform(), DENSE, 0.0, 2 / 400),
    (I.HeNormal(), DENSE, 0.0, 2 / 400),
    (I.LecunUniform(), DENSE, 0.0, 1 / 400),
    (I.LecunNormal(), DENSE, 0.0, 1 / 400),
    (I.GlorotUniform(), CONV, 0.0, 2 / 3200),
    (I.HeNormal(), CONV, 0.0, 2 / 1600),
    (I.VarianceScaling(3.0, "fan_out", "untruncated_normal"), DENSE, 0.0, 3.0 / 600),
    (I.VarianceScaling(1.0, "fan_avg", "uniform"), (100, 300, 3, 3), 0.0, 2 / 3600),
]


@pytest.mark.parametrize("init, shape, mean, variance", STATISTICS,
                         ids=[f"{type(s[0]).__name__}-{len(s[1])}d" for s in STATISTICS])
def test_statistics_of_large_draws(init, shape, mean, variance):
    w = init(shape)
    assert w.shape == shape and w.dtype == np.float32
    std = np.sqrt(variance)
    assert abs(w.mean() - mean) < 5 * std / np.sqrt(w.size)
    assert w.var(dtype=np.float64) == pytest.approx(variance, rel=0.03)


@pytest.mark.parametrize("init, limit", [
    (I.GlorotUniform(), np.sqrt(6 / 1000)),
    (I.HeUniform(), np.sqrt(6 / 400)),
    (I.LecunUniform(), np.sqrt(3 / 400)),
    (I.RandomUniform(-0.05, 0.05), 0.05),
])
def test_uniform_initializers_stay_within_their_limit(init, limit):
    w = init(DENSE)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit


@pytest.mark.parametrize("init, stddev", [
    (I.TruncatedNormal(stddev=0.5), 0.5),
    (I.HeNormal(), np.sqrt(2 / 400) / 0.87962566103423978),
    (I.GlorotNormal(), np.sqrt(2 / 1000) / 0.87962566103423978),
])
def test_truncated_normals_are_cut_at_two_standard_deviations(init, stddev):
    w = init(DENSE).astype(np.float64)
    assert np.abs(w).max() <= 2 * stddev * (1 + 1e-6)
    assert np.abs(w).max() > 1.95 * stddev


@pytest.mark.parametrize("shape, fans", [
    ((), (1, 1)),
    ((7,), (7, 7)),
    ((784, 128), (784, 128)),
    ((32, 3, 5, 5), (75, 800)),
    ((16, 8, 3), (24, 48)),
])
def test_compute_fans(shape, fans):
    assert I.compute_fans(shape) == fans


@pytest.mark.parametrize("init, value", [(I.Zeros(), 0.0), (I.Ones(), 1.0),
                                         (I.Constant(0.25), 0.25)])
def test_constant_initializers(init, value):
    w = init((3, 4), dtype="float64")
    assert w.dtype == np.float64
    np.testing.assert_array_equal(w, np.full((3, 4), value))


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (8, 3, 3, 3), (5, 5)])
def test_orthogonal(shape):
    w = I.Orthogonal(gain=2.0)(shape, dtype="float64")
    assert w.shape == shape
    matrix = w.reshape(shape[0], -1) / 2.0
    rows, cols = matrix.shape
    gram = matrix @ matrix.T if rows <= cols else matrix.T @ matrix
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_needs_a_matrix():
    with pytest.raises(ValueError, match="at least 2 axes"):
        I.Orthogonal()((5,))


@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal", "orthogonal", "uniform",
                                  "truncated_normal", "lecun_normal"])
def test_draws_are_reproducible_under_manual_seed(name):
    init = I.get(name)
    cr.manual_seed(123)
    a = init((5, 7))
    cr.manual_seed(123)
    b = init((5, 7))
    c = init((5, 7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_a_seeded_initializer_repeats_itself():
    init = I.HeNormal(seed=7)
    np.testing.assert_array_equal(init((4, 4)), init((4, 4)))
    assert not np.array_equal(init((4, 4)), I.HeNormal(seed=8)((4, 4)))


def test_dtype_follows_the_default_dtype(float64):
    assert I.GlorotUniform()((2, 3)).dtype == np.float64
    assert I.GlorotUniform()((2, 3), dtype="float32").dtype == np.float32


@pytest.mark.parametrize("identifier, cls", [
    ("he_normal", I.HeNormal), ("HeNormal", I.HeNormal), ("glorot_uniform", I.GlorotUniform),
    ("xavier_normal", I.GlorotNormal), ("zeros", I.Zeros), ("ones", I.Ones),
    ("uniform", I.RandomUniform), ("random_normal", I.RandomNormal),
    ("variance_scaling", I.VarianceScaling), ("lecun_uniform", I.LecunUniform),
])
def test_get_by_name(identifier, cls):
    assert type(I.get(identifier)) is cls


def test_get_passes_instances_callables_and_none_through():
    init = I.Constant(3.0)
    assert I.get(init) is init
    assert I.get(None) is None

    def custom(shape, dtype=None):
        return np.full(shape, 7.0, dtype)

    assert I.get(custom) is custom


def test_unknown_name_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown initializer 'he_nromal'.*he_normal"):
        I.get("he_nromal")
    with pytest.raises(TypeError, match="cannot interpret"):
        I.get(3.5)


ALL = [I.Zeros(), I.Ones(), I.Constant(2.5), I.RandomNormal(1.0, 0.5, seed=3),
       I.RandomUniform(-1, 1), I.TruncatedNormal(stddev=0.1), I.GlorotUniform(seed=1),
       I.GlorotNormal(), I.HeNormal(), I.HeUniform(), I.LecunNormal(), I.LecunUniform(),
       I.Orthogonal(gain=0.5), I.VarianceScaling(2.0, "fan_avg", "uniform")]


@pytest.mark.parametrize("init", ALL, ids=[type(i).__name__ for i in ALL])
def test_serialize_round_trips_through_json(init):
    config = json.loads(json.dumps(I.serialize(init)))
    again = I.get(config)
    assert type(again) is type(init)
    assert again.get_config() == init.get_config()


def test_serialize_refuses_plain_functions():
    with pytest.raises(TypeError, match="cannot be saved as JSON"):
        I.serialize(lambda shape, dtype=None: np.zeros(shape))


def test_user_defined_initializers_are_found_by_name():
    class Halves(I.Initializer):
        def sample(self, shape, dtype):
            return np.full(shape, 0.5)

    np.testing.assert_array_equal(I.get("halves")((2,)), [0.5, 0.5])
    assert type(I.get({"class_name": "Halves", "config": {}})) is Halves


def test_variance_scaling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        I.VarianceScaling(mode="fan_middle")
    with pytest.raises(ValueError, match="distribution"):
        I.VarianceScaling(distribution="cauchy")
    with pytest.raises(ValueError, match="scale"):
        I.VarianceScaling(scale=0.0)
