"""chainrule.ops.conv_geometry: padding rules, output sizes and windows, shared by conv2d, its
algorithms, pooling and the convolution layers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule.ops.conv_geometry import (
    conv_geometry,
    output_size,
    pair,
    pool_geometry,
    resolve_padding,
    spatial_padding,
    window,
)
from tests.ops.test_nn_conv import same_padding


@pytest.mark.parametrize("size,kernel,stride,dilation", [
    (7, 3, 2, 1), (8, 2, 1, 1), (8, 4, 3, 1), (5, 3, 1, 2), (1, 5, 1, 1), (9, 1, 4, 1),
])
def test_same_padding_gives_ceil_of_size_over_stride(size, kernel, stride, dilation):
    before, after = resolve_padding("same", size, kernel, stride, dilation, "t")
    assert (before, after) == same_padding(size, kernel, stride, dilation)
    assert output_size(size, kernel, stride, dilation, before, after) == math.ceil(
        size / stride)


def test_geometry_of_same_padding_is_ceil_of_size_over_stride():
    geom = pool_geometry((1, 1, 7, 8), 3, 2, "same", "t")
    assert (geom.out_height, geom.out_width) == (4, 4)
    assert geom.padding == ((1, 1), (0, 1))


def test_padding_forms():
    assert spatial_padding(2, (5, 5), (3, 3), (1, 1), (1, 1), "t") == ((2, 2), (2, 2))
    assert spatial_padding((1, 2), (5, 5), (3, 3), (1, 1), (1, 1), "t") == ((1, 1), (2, 2))
    assert spatial_padding(((0, 1), (2, 3)), (5, 5), (3, 3), (1, 1), (1, 1),
                           "t") == ((0, 1), (2, 3))
    assert spatial_padding("valid", (5, 5), (3, 3), (1, 1), (1, 1), "t") == ((0, 0), (0, 0))
    with pytest.raises(ValueError, match="op: padding must be an int, a pair"):
        spatial_padding((1, 2, 3), (5, 5), (3, 3), (1, 1), (1, 1), "op")


def test_pair_names_the_argument():
    assert pair(3, "s") == (3, 3) and pair(np.int64(2), "s") == (2, 2)
    assert pair((1, 2), "s") == (1, 2)
    with pytest.raises(ValueError, match="op: stride must be an int or a pair"):
        pair((1, 2, 3), "op: stride")
    with pytest.raises(ValueError, match="op: dilation must be positive"):
        pair(0, "op: dilation")


def test_a_window_reads_every_stride_th_pixel_from_its_tap():
    x = np.arange(20)
    assert list(x[window(2, 4, 3)]) == [2, 5, 8, 11]
    assert list(x[window(0, 1, 5)]) == [0]


def test_conv_geometry_sizes_and_taps():
    geom = conv_geometry((2, 3, 9, 8), (4, 3, 3, 2), (2, 1), ((1, 0), (2, 2)), (2, 1))
    assert (geom.batch, geom.channels, geom.filters) == (2, 3, 4)
    assert geom.padded == (10, 12)
    assert geom.patch == 3 * 3 * 2
    assert geom.out_height == (9 + 1 - 2 * 2 - 1) // 2 + 1
    assert geom.out_width == 12 - 1
    assert list(geom.offsets())[-1] == (2, 1, 4, 1)  # (i, j, i·dh, j·dw)


@pytest.mark.parametrize("x_shape,w_shape,kwargs,message", [
    ((2, 3, 5, 5), (4, 2, 3, 3), {}, r"conv2d: input has 3 channels but the kernel expects 2 "
                                     r"\(input \(2, 3, 5, 5\), kernel \(4, 2, 3, 3\)\)"),
    ((2, 3, 4, 4), (4, 3, 5, 5), {}, r"conv2d: kernel \(5, 5\).*padded input \(4, 4\) "
                                     r"\(input \(2, 3, 4, 4\), kernel \(4, 3, 5, 5\)"),
    ((3, 5, 5), (4, 3, 3, 3), {}, r"conv2d: input must be 4-D \(N, C, H, W\), got shape"),
])
def test_errors_name_conv2d_and_the_shapes(x_shape, w_shape, kwargs, message):
    arguments = {"stride": 1, "padding": 0, "dilation": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        conv_geometry(x_shape, w_shape, **arguments)


def test_pool_geometry_errors_name_the_op():
    with pytest.raises(ValueError, match=r"max_pool2d: pool size \(5, 5\) is larger"):
        pool_geometry((1, 1, 4, 4), 5, None, "valid", "max_pool2d")
    with pytest.raises(ValueError, match=r"avg_pool2d: padding 2 must be at most half"):
        pool_geometry((1, 1, 8, 8), 2, None, 2, "avg_pool2d")
