"""Hand schedules for the kernels of tvm.kernels.py: register tiles, 2-core parallel rows, one tensor intrinsic.

The phase conv keeps a tile of (tile_x pixels x tob*16 output channels) int32 accumulators in
registers over the whole reduction (taps x input channel groups); each step broadcasts one group of
input channels of a pixel and multiplies it with 16 x group packed weights: one vpdpbusd (VNNI,
group 4) or two vpmaddwd + vpaddd (AVX2, group 2). The epilogue runs on the finished tile while it
is still in registers. The pixel conv does the same with 16 pixels per vector and one broadcast
weight group per output channel. The plan's Isa (tvm.isa) supplies the intrinsic and the register
budget; without an intrinsic ("generic") the same loops are vectorized over the 16 lanes in int32
(exact, slower): the fallback for other targets.
"""
from dataclasses import dataclass

from tvm import te, tirx
from tvm.s_tir import Schedule

from .kernels import PhaseConv, PixelConv, phase_conv_te, pixel_conv_te


@dataclass
class Tiles:
    tob: int      # output-channel blocks of 16 per tile
    tile_x: int   # output pixels (phase conv) or groups of 16 pixels (pixel conv) per tile


def phase_tiles(plan: PhaseConv) -> Tiles:
    ob, isa = plan.wp.shape[2], plan.isa
    tob = max(d for d in range(1, isa.max_tob + 1) if ob % d == 0)
    return Tiles(tob, max(1, min(16, isa.acc_vectors // tob)))


def pixel_tiles(plan: PixelConv) -> Tiles:
    return Tiles(1, max(1, min(plan.isa.max_pix_tile, plan.isa.acc_vectors // plan.out_channels)))


def _is_one(sch, loop) -> bool:
    """A loop of constant extent 1: the row loop of a 1-D program (height 1)."""
    extent = sch.get(loop).extent
    return isinstance(extent, tirx.IntImm) and extent.value == 1


def _schedule_pad(sch, repack: bool = False):
    """The padded copy: rows on the cores, lanes vectorized.

    repack (pixel conv: NCHW16c -> NCHW{group}c): each pixel's 16 source bytes are read once and
    scattered to the 16/group planes (g inside x); with g outside, every source line was fetched
    16/group times by different cores and the stores were group lanes wide (16->3 RGB tail at 768x512:
    VNNI 1.73 -> 1.56 ms, AVX2 4.43 -> 4.18 ms)."""
    pad = sch.get_sblock("pad")
    n, g, y, x, lane = sch.get_loops(pad)
    if repack:
        sch.reorder(n, y, x, g, lane)
    if _is_one(sch, y):  # 1-D: chunks of the one row on the cores
        xo, _ = sch.split(x, [None, 256])
        sch.parallel(sch.fuse(n, y, xo) if repack else sch.fuse(n, g, y, xo))
    else:
        sch.parallel(sch.fuse(n, y) if repack else sch.fuse(n, g, y))
    if repack:
        sch.unroll(g)
    sch.vectorize(lane)


def _finish(sch, acc, out, at, first_reduce, inner_spatial, lane_loop, intrin):
    """Epilogue into the tile, accumulators local, init vectorized, update tensorized (intrin) or vectorized."""
    sch.reverse_compute_at(out, at)
    if intrin is None:  # int32 lanes: the products of a group one after another, each a vector multiply-add
        *_, lane, ri = sch.get_loops(acc)
        sch.reorder(ri, lane)
        sch.unroll(ri)
        sch.vectorize(lane)
    init = sch.decompose_reduction(acc, first_reduce)
    *_, init_lane = sch.get_loops(init)
    sch.vectorize(init_lane)
    if intrin is not None:
        sch.tensorize(lane_loop, intrin)
    for loop in inner_spatial:
        sch.unroll(loop)
    *_, out_lane = sch.get_loops(out)
    sch.vectorize(out_lane)
    sch.set_scope(init, 0, "local")  # after tensorize: the intrinsic's buffers are global-scoped


def schedule_phase_conv(func, plan: PhaseConv, tiles: Tiles):
    sch = Schedule(func)
    _schedule_pad(sch)
    acc, out = sch.get_sblock("acc"), sch.get_sblock("out")
    n, b, m, rh, xm, rw, o, ra, rb, rc, ri = sch.get_loops(acc)
    bo, bi = sch.split(b, [None, tiles.tob])
    xo, xi = sch.split(xm, [None, tiles.tile_x])
    step = plan.isa.unroll_rc
    rcs = sch.split(rc, [None, step]) if step > 1 and plan.wp.shape[5] % step == 0 else [rc]
    sch.reorder(n, bo, m, rh, xo, rw, ra, rb, *rcs, xi, bi, o, ri)
    # rows on the cores; a 1-D program has one row: its pixel tiles go to the cores instead
    sch.parallel(sch.fuse(n, bo, m, rh, xo) if _is_one(sch, m) and _is_one(sch, rh) else sch.fuse(n, bo, m))
    _finish(sch, acc, out, rw, ra, [xi, bi], o, plan.isa.oc_intrin)
    if len(rcs) == 2:
        sch.unroll(rcs[1])
    return sch.mod["main"]


def schedule_pixel_conv(func, plan: PixelConv, tiles: Tiles):
    sch = Schedule(func)
    _schedule_pad(sch, repack=True)
    acc, out = sch.get_sblock("acc"), sch.get_sblock("out")
    n, c, y, xx, ra, rb, rc, ri = sch.get_loops(acc)
    xo, xt, xv = sch.split(xx, [None, tiles.tile_x, 16])
    sch.reorder(n, y, xo, ra, rb, rc, c, xt, xv, ri)
    if _is_one(sch, y):  # 1-D: the pixel tiles go to the cores
        xo = sch.fuse(n, y, xo)
        sch.parallel(xo)
    else:
        sch.parallel(sch.fuse(n, y))
    _finish(sch, acc, out, xo, ra, [c, xt], xv, plan.isa.pix_intrin)
    return sch.mod["main"]


def tiles_for(plan) -> Tiles:
    return phase_tiles(plan) if isinstance(plan, PhaseConv) else pixel_tiles(plan)


def schedule_conv(func, plan, tiles: Tiles = None):
    """The unscheduled PrimFunc of phase_conv_te / pixel_conv_te (built with the same tiles' tile_x) -> scheduled.
    tiles: None for the hand schedule's choice (tiles_for), or one measured by tvm.tune."""
    sched = schedule_phase_conv if isinstance(plan, PhaseConv) else schedule_pixel_conv
    return sched(func, plan, tiles or tiles_for(plan))


def conv_prim_func(plan, x: te.Tensor, consts, tiles: Tiles = None):
    """Standalone scheduled PrimFunc (x, *consts, out): for kernel tests, benchmarks and tuning."""
    tiles = tiles or tiles_for(plan)
    build = phase_conv_te if isinstance(plan, PhaseConv) else pixel_conv_te
    _, out = build(x, *consts, plan, tiles.tile_x)  # padded copy stays internal here
    return schedule_conv(te.create_prim_func([x, *consts, out]), plan, tiles)
