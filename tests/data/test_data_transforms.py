"""Preprocessing and augmentation: values, dtypes, fitting rules, seeding, vectorisation."""

import warnings

import numpy as np
import pytest

import chainrule.random as cr_random
from chainrule.data import ArrayDataset, DataLoader
from chainrule.data.transforms import (
    Compose,
    MeanImage,
    NotFittedError,
    PerChannelMean,
    RandomCrop,
    RandomFlip,
    RandomShift,
    Rescale,
    Standardize,
    one_hot,
    to_categorical,
)

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(16, 3, 8, 8), dtype=np.uint8)
TABLE = (RNG.normal(size=(50, 4)) * [1, 10, 100, 0] + [0, 5, -3, 7]).astype(np.float32)


# ----------------------------------------------------------------- fitted preprocessing


def test_standardize_per_feature():
    s = Standardize().fit(TABLE)
    out = s.transform(TABLE)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, :3].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out[:, :3].std(0), 1, atol=1e-5)
    np.testing.assert_array_equal(out[:, 3], 0)  # constant feature: epsilon guards the std
    np.testing.assert_allclose(s.inverse_transform(out), TABLE, rtol=1e-5, atol=1e-4)
    assert s.mean_.shape == (1, 4)


def test_standardize_per_channel_nchw_and_global():
    x = IMAGES.astype(np.float32)
    s = Standardize(axis=1).fit(IMAGES)
    assert s.mean_.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(s.mean_.ravel(), x.mean(axis=(0, 2, 3)), rtol=1e-6)
    out = s.transform(IMAGES)
    assert out.dtype == np.float32  # uint8 in -> float32 out
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    g = Standardize(axis=None).fit(x)
    assert g.mean_.shape == (1, 1, 1, 1)
    np.testing.assert_allclose(g.transform(x).std(), 1, rtol=1e-5)
    per_pixel = Standardize(axis=(1, 2, 3)).fit(x)
    assert per_pixel.mean_.shape == (1, 3, 8, 8)


def test_fit_transform_and_float64():
    out = Standardize().fit_transform(TABLE.astype(np.float64))
    assert out.dtype == np.float64


def test_zero_variance_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Standardize(axis=None).fit_transform(np.ones((4, 2), np.float32))
    np.testing.assert_array_equal(out, 0)


def test_fitted_transforms_refuse_to_work_unfitted():
    for t in (Standardize(), MeanImage(), PerChannelMean()):
        with pytest.raises(NotFittedError, match="not fitted yet: call .fit"):
            t.transform(IMAGES)
        with pytest.raises(NotFittedError):
            t(IMAGES)
    assert issubclass(NotFittedError, ValueError)


def test_shape_mismatch_and_bad_axes():
    s = Standardize(axis=1).fit(IMAGES)
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(3, 1, 1\)"):
        s.transform(np.zeros((2, 4, 8, 8), np.float32))
    s.transform(np.zeros((2, 3, 5, 5), np.float32))  # pooled axes may differ in size
    with pytest.raises(ValueError, match="sample axis"):
        Standardize(axis=0).fit(TABLE)
    with pytest.raises(ValueError, match="out of range"):
        Standardize(axis=5).fit(TABLE)
    with pytest.raises(ValueError, match="at least one sample"):
        Standardize().fit(np.zeros((0, 3)))


def test_mean_image_and_per_channel_mean():
    m = MeanImage().fit(IMAGES)
    assert m.mean_.shape == (1, 3, 8, 8)
    out = m.transform(IMAGES)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(m.inverse_transform(out), IMAGES, atol=1e-4)
    p = PerChannelMean().fit(IMAGES)
    assert p.mean_.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(p.transform(IMAGES).mean(axis=(0, 2, 3)), 0, atol=1e-4)
    with pytest.raises(ValueError, match="NCHW"):
        PerChannelMean().fit(np.zeros((2, 8, 8)))


def test_rescale():
    out = Rescale(1 / 255)(IMAGES)
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    half = np.array([0.5, 1.0], np.float16)
    assert Rescale(2.0, offset=-1)(half).dtype == np.float16
    x = np.ones(3, np.float32)
    Rescale(3.0)(x)
    np.testing.assert_array_equal(x, 1)  # input untouched


def test_transforms_pass_targets_through():
    y = np.arange(16)
    out_x, out_y = Rescale(2.0)(IMAGES, y)
    assert out_y is y and out_x.dtype == np.float32
    pipeline = Compose([Rescale(1 / 255), RandomFlip(seed=0)])
    a, b = pipeline(IMAGES, y)
    assert b is y and a.shape == IMAGES.shape
    assert pipeline(IMAGES).shape == IMAGES.shape


def test_to_categorical():
    np.testing.assert_array_equal(to_categorical([2, 0]), [[0, 0, 1], [1, 0, 0]])
    out = to_categorical(np.array([[1], [3]], np.uint8), num_classes=5)
    assert out.shape == (2, 5) and out.dtype == np.float32
    assert to_categorical(np.zeros((2, 3), int), 4).shape == (2, 3, 4)
    assert one_hot is to_categorical
    assert to_categorical(np.array([1.0, 2.0])).shape == (2, 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="integers"):
        to_categorical([0.5])


# ----------------------------------------------------------------- augmentation


def _brute_force_crop_positions(original, out, padding):
    """For each sample, the (top, left) windows of the padded image equal to the output."""
    p = padding
    padded = np.pad(original, ((0, 0), (0, 0), (p, p), (p, p)))
    h, w = out.shape[-2:]
    found = []
    for n in range(len(out)):
        matches = [
            (t, left)
            for t in range(padded.shape[2] - h + 1)
            for left in range(padded.shape[3] - w + 1)
            if np.array_equal(padded[n, :, t : t + h, left : left + w], out[n])
        ]
        found.append(matches)
    return found


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_random_crop_takes_windows_of_the_padded_image(dtype):
    x = IMAGES.astype(dtype)
    out = RandomCrop(6, padding=2, seed=0)(x)
    assert out.shape == (16, 3, 6, 6) and out.dtype == dtype
    positions = _brute_force_crop_positions(x, out, padding=2)
    assert all(positions)
    assert len({m[0] for m in positions}) > 3  # different samples, different crops


def test_random_crop_nhw_and_rectangles():
    x = IMAGES[:, 0]
    out = RandomCrop((5, 7), seed=1)(x)
    assert out.shape == (16, 5, 7) and out.dtype == np.uint8
    assert all(_brute_force_crop_positions(x[:, None], out[:, None], padding=0))
    with pytest.raises(ValueError, match="larger than the padded images"):
        RandomCrop(9)(x)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(N, H, W\)"):
        RandomCrop(2)(np.zeros((4, 4)))


def test_random_shift_moves_within_range_and_fills_zeros():
    x = IMAGES.astype(np.float32) + 1  # no zeros inside, so filled pixels are recognisable
    out = RandomShift(2, seed=0)(x)
    assert out.shape == x.shape and out.dtype == np.float32
    positions = _brute_force_crop_positions(x, out, padding=2)
    shifts = {(2 - t, 2 - left) for m in positions for t, left in m[:1]}
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in shifts)
    assert len(shifts) > 3
    assert (out == 0).any()


def test_random_flip_modes():
    x = IMAGES
    out = RandomFlip("horizontal", seed=0)(x)
    same = [np.array_equal(o, i) for o, i in zip(out, x, strict=True)]
    flipped = [np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x, strict=True)]
    assert all(s or f for s, f in zip(same, flipped, strict=True))
    assert 0 < sum(flipped) < len(x)
    out = RandomFlip("vertical", seed=0)(x[:, 0])  # NHW
    assert all(
        np.array_equal(o, i) or np.array_equal(o, i[::-1])
        for o, i in zip(out, x[:, 0], strict=True)
    )
    both = RandomFlip("horizontal_and_vertical", seed=3)(x)
    options = lambda i: [i, i[..., ::-1], i[..., ::-1, :], i[..., ::-1, ::-1]]  # noqa: E731
    assert all(any(np.array_equal(o, c) for c in options(i)) for o, i in zip(both, x, strict=True))
    assert both.dtype == np.uint8
    with pytest.raises(ValueError, match="mode must be one of"):
        RandomFlip("diagonal")


def test_augmentation_seeding():
    a, b = RandomCrop(4, seed=5), RandomCrop(4, seed=5)
    first = a(IMAGES)
    np.testing.assert_array_equal(first, b(IMAGES))
    assert not np.array_equal(first, a(IMAGES))  # the stream moves on
    cr_random.manual_seed(11)
    g1 = RandomFlip()(IMAGES)
    cr_random.manual_seed(11)
    np.testing.assert_array_equal(g1, RandomFlip()(IMAGES))


def test_augmentation_in_a_data_loader():
    y = np.arange(16)
    loader = DataLoader(
        ArrayDataset(IMAGES, y),
        batch_size=8,
        shuffle=True,
        seed=0,
        transform=Compose([RandomCrop(8, padding=1, seed=0), Rescale(1 / 255)]),
    )
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(8, 3, 8, 8)] * 2
    assert all(b[0].dtype == np.float32 for b in batches)
    assert sorted(np.concatenate([b[1] for b in batches]).tolist()) == list(range(16))
