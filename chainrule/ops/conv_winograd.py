"""Stride-1 3 × 3 convolutions by Winograd's minimal filtering F(2 × 2, 3 × 3).

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). Cut the padded
input into 4 × 4 tiles d that overlap by two pixels; each gives a 2 × 2 block of the output:

    Y = Aᵀ [ (G W Gᵀ) ⊙ (Bᵀ d B) ] A,

    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]],
    G  = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]],
    Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].

Summed over the input channels, the 16 elementwise products of a tile become 16 matrix products

    M[k] (F, tiles) = U[k] (F, C) @ V[k] (C, tiles),   U = G W Gᵀ,  V = Bᵀ d B,  k = 4a + b,

with 16·F·C multiplications per tile (4 outputs), against 36·F·C for the direct sum: 2.25×
fewer, and the products read V (16 values per 4 outputs) instead of an im2col matrix (9·C
values per output).

Backward runs the same steps in reverse. With ∂M = A ∂Y Aᵀ (per tile):

    ∂U[k] = Σ_tiles ∂M[k] @ V[k]ᵀ,    ∂W = Gᵀ ∂U G,
    ∂V[k] = U[k]ᵀ @ ∂M[k],            ∂d = B ∂V Bᵀ, added onto the overlapping windows,

so the weight and input gradients cost 16 products each, like the forward pass. The tile
transforms are kernels (:mod:`chainrule.kernels`); the batch is processed in chunks
(:data:`CHUNK_BYTES`), dealt out to :func:`chainrule.kernels.workers` threads, and V is
computed again in backward rather than stored.

F(2 × 2, 3 × 3) is exact in exact arithmetic and loses little in floating point (its
transforms only add and halve): float32 outputs stay within a few ulps of the direct sum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chainrule import kernels
from chainrule.kernels.reference import tile_buffer
from chainrule.ops.conv_geometry import ConvGeometry

#: Where Linux describes the caches of the first core.
CPU_CACHES = "/sys/devices/system/cpu/cpu0/cache"


def cache_bytes(level: int, root: str = CPU_CACHES) -> int | None:
    """The size in bytes of one core's level-``level`` data (or unified) cache, as Linux
    reports it under ``root`` (one ``indexN`` folder per cache); None where it does not say."""
    for entry in sorted(Path(root).glob("index*")):
        try:
            entry_level, kind, size = ((entry / name).read_text().strip()
                                       for name in ("level", "type", "size"))
        except OSError:
            continue
        if entry_level == str(level) and kind in ("Data", "Unified"):
            return _bytes(size)
    return None


def _bytes(size: str) -> int | None:
    """"2048K" (sysfs's spelling), "2M" or "2097152" as bytes; None if it is none of these."""
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:].upper(), 1)
    digits = size[:-1] if scale > 1 else size
    return int(digits) * scale if digits.isdigit() else None


def chunk_bytes(l2_bytes: int | None) -> int:
    """One core's L2 cache, kept within 1-4 MB (1 MB where unknown): see :data:`CHUNK_BYTES`."""
    return min(max(l2_bytes or 2**20, 2**20), 2**22)


#: Largest size in bytes of one chunk's tile matrices (V and M, or their gradients): small
#: enough to stay in one core's L2 cache between the transforms and the products, which also
#: lets two threads work without contending for the shared L3. Measured, the forward and
#: backward of the 32 -> 64 layer of bench/cnn.py on 2 threads: with 1 MB L2 caches, chunks
#: of 2-8 MB were slower than 1 MB; with 2 MB L2 caches, 12.8 ms in chunks of 2 MB against
#: 14.5 ms in chunks of 1 MB and 21.3 ms in chunks of 512 KB (4-15 % faster on four other
#: layer shapes). Hence the L2's size, within 1-4 MB. (The chunks group the terms of ∂W's
#: sums, so machines with other L2 sizes, like other thread counts, agree to rounding only.)
CHUNK_BYTES = chunk_bytes(cache_bytes(2))

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


class Winograd:
    """F(2 × 2, 3 × 3) for 3 × 3 stride-1 convolutions, on chainrule's threads.

    The algorithm interface of :mod:`chainrule.ops.nn_conv` (channel-major arrays in and
    out); both passes run inside :func:`chainrule.kernels.own_threads`, since their time is
    in the tile kernels and 16 small products a chunk, not in large BLAS products.
    """

    name = "winograd"

    def applies(self, geom: ConvGeometry) -> bool:
        """Whether F(2 × 2, 3 × 3) computes it: a 3 × 3 kernel, stride 1, no dilation."""
        return geom.kernel == (3, 3) and geom.stride == (1, 1) and geom.dilation == (1, 1)

    def forward(self, x_cn, w, geom: ConvGeometry, bias=None, relu: bool = False):
        """Y = Aᵀ [U ⊙ V] A per tile, summed over the channels, + b (then max(0, ·) with
        ``relu``), as (F, N, OH, OW)."""
        with kernels.own_threads(work=geom.multiply_adds, hold=True):
            return _forward(x_cn, w, geom, bias, relu)

    def backward(self, gy_cn, x_cn, w, geom: ConvGeometry, relu_output=None, need_x=True,
                 need_w=True, need_b=True):
        """(∂L/∂x, ∂L/∂W, ∂L/∂b) from ∂M = A ∂Y Aᵀ: ∂W = Gᵀ (Σ ∂M @ Vᵀ) G and
        ∂d = B (Uᵀ @ ∂M) Bᵀ; each None unless asked for."""
        with kernels.own_threads(work=geom.multiply_adds, hold=True):
            return _backward(gy_cn, x_cn, w, geom, relu_output, need_x, need_w, need_b)


WINOGRAD = Winograd()


def kernel_transform(w, dtype):
    """U = G W Gᵀ of every (filter, channel) pair, as (16, F, C) in ``dtype`` (computed in
    float64)."""
    u = G @ w.astype(np.float64) @ G.T  # (F, C, 4, 4)
    return np.ascontiguousarray(u.reshape(*w.shape[:2], 16).transpose(2, 0, 1), dtype=dtype)


class _Tiles:
    """The tile sizes of a convolution and the chunks of its batch."""

    def __init__(self, geom: ConvGeometry, dtype):
        self.geom, self.dtype = geom, dtype
        self.ty, self.tx = -(-geom.out_height // 2), -(-geom.out_width // 2)
        per_sample = 16 * self.ty * self.tx * (geom.channels + geom.filters) * dtype.itemsize
        count = -(-geom.batch // max(1, CHUNK_BYTES // per_sample))
        self.chunk = -(-geom.batch // count) if geom.batch else 1

    def chunks(self) -> list[tuple[int, int]]:
        return [(start, min(start + self.chunk, self.geom.batch))
                for start in range(0, self.geom.batch, self.chunk)]


class _Worker:
    """The buffers of one thread, reused across the chunks it takes."""

    def __init__(self, tiles: _Tiles):
        self.tiles, geom = tiles, tiles.geom
        self.padded = np.zeros((geom.channels, tiles.chunk, 2 * tiles.ty + 2, 2 * tiles.tx + 2),
                               tiles.dtype)
        self._buffers = {}

    def buffer(self, name: str, rows: int, count: int):
        """The (16, rows, count, TY, TX) tile array ``name`` for a chunk of ``count`` samples."""
        t = self.tiles
        tiles = self._buffers.get(name)
        if tiles is None:
            tiles = self._buffers[name] = tile_buffer(rows * t.chunk * t.ty * t.tx, t.dtype)
        return tiles[:, : rows * count * t.ty * t.tx].reshape(16, rows, count, t.ty, t.tx)

    @property
    def gradient_padded(self):
        """A second padded buffer, for ∂L/∂d (the first keeps its zero border for the input)."""
        if "gradient" not in self._buffers:
            self._buffers["gradient"] = np.empty_like(self.padded)
        return self._buffers["gradient"]

    def interior(self, count: int, padded=None):
        """The part of a padded buffer that holds (C, count, H, W) images."""
        geom = self.tiles.geom
        (top, _), (left, _) = geom.padding
        padded = self.padded if padded is None else padded
        return padded[:, :count, top:top + geom.height, left:left + geom.width]

    def input_tiles(self, module, x_cn, start: int, stop: int):
        """V = Bᵀ d B of every tile of samples start..stop, as (16, C, count, TY, TX)."""
        count = stop - start
        self.interior(count)[...] = x_cn[:, start:stop]  # the padding stays zero
        v = self.buffer("v", self.tiles.geom.channels, count)
        module.winograd_input_tiles(self.padded[:, :count], v)
        return v


def _products(left, right, out):
    """out[k] = left[k] @ right[k] for the 16 tile entries; right is (16, K, ...)."""
    np.matmul(left, right.reshape(16, right.shape[1], -1), out=out.reshape(16, out.shape[1], -1))
    return out


def _over_chunks(tiles: _Tiles, each_chunk) -> list[_Worker]:
    """Runs ``each_chunk(worker, start, stop)`` for every chunk, the chunks dealt out to
    :func:`chainrule.kernels.workers` threads, each with its own buffers (BLAS is on one
    thread inside :func:`chainrule.kernels.own_threads`: 16 small products a chunk gain nothing
    from more). Returns the workers."""
    return kernels.deal_out(tiles.chunks(), lambda: _Worker(tiles), each_chunk)


def _forward(x_cn, w, geom: ConvGeometry, bias=None, relu: bool = False):
    """The convolution of ``x_cn`` (C, N, H, W) with ``w`` (F, C, 3, 3), as (F, N, OH, OW);
    ``bias`` (F,) and ``relu`` are applied in the output transform."""
    dtype = np.result_type(x_cn.dtype, w.dtype)
    module = kernels.select(x_cn)
    u = kernel_transform(w, dtype)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    y = np.empty((geom.filters, geom.batch, geom.out_height, geom.out_width), dtype=dtype)

    def each_chunk(worker, start, stop):
        v = worker.input_tiles(module, x_cn, start, stop)
        m = _products(u, v, worker.buffer("m", geom.filters, stop - start))
        module.winograd_output_tiles(m, y[:, start:stop], bias, relu)

    _over_chunks(_Tiles(geom, dtype), each_chunk)
    return y


def _backward(gy_cn, x_cn, w, geom: ConvGeometry, relu_output, need_x: bool, need_w: bool,
              need_b: bool):
    """(∂L/∂x (C, N, H, W), ∂L/∂W (F, C, 3, 3), ∂L/∂b (F,)), each None unless asked for, from
    ∂L/∂y (F, N, OH, OW); with ``relu_output`` (a fused ReLU's y), from ∂L/∂y ⊙ [y > 0].
    Each thread sums ∂U and ∂b over its chunks; then the threads' sums are added."""
    dtype = np.result_type(gy_cn.dtype, w.dtype)
    module = kernels.select(gy_cn)
    u_t = np.ascontiguousarray(kernel_transform(w, dtype).transpose(0, 2, 1))  # (16, C, F)
    gx_cn = None
    if need_x:
        gx_cn = np.empty((geom.channels, geom.batch, geom.height, geom.width), dtype=dtype)

    def each_chunk(worker, start, stop):
        count = stop - start
        if not hasattr(worker, "gu"):
            worker.gu = np.zeros((16, geom.filters, geom.channels), dtype=dtype)
            worker.gb, worker.chunk_gb = np.zeros((2, geom.filters), dtype=dtype)
        gm = worker.buffer("gm", geom.filters, count)
        kept = None if relu_output is None else relu_output[:, start:stop]
        module.winograd_gradient_tiles(gy_cn[:, start:stop], gm, kept, worker.chunk_gb)
        worker.gb += worker.chunk_gb
        if need_w:
            v = worker.input_tiles(module, x_cn, start, stop).reshape(16, geom.channels, -1)
            worker.gu += np.matmul(gm.reshape(16, geom.filters, -1), v.transpose(0, 2, 1))
        if need_x:
            gv = _products(u_t, gm, worker.buffer("gv", geom.channels, count))
            padded = worker.gradient_padded[:, :count]
            padded[...] = 0
            module.winograd_input_gradient(gv, padded)
            gx_cn[:, start:stop] = worker.interior(count, padded)

    workers = [w for w in _over_chunks(_Tiles(geom, dtype), each_chunk) if hasattr(w, "gu")]
    gw = gb = None
    if need_w:
        gu = sum((worker.gu.astype(np.float64) for worker in workers),
                 np.zeros((16, geom.filters, geom.channels)))
        gu = gu.transpose(1, 2, 0).reshape(geom.filters, geom.channels, 4, 4)
        gw = (G.T @ gu @ G).astype(dtype)  # ∂W = Gᵀ ∂U G
    if need_b:
        gb = sum((worker.gb for worker in workers), np.zeros(geom.filters, dtype)).astype(dtype)
    return gx_cn, gw, gb
