"""Hand schedules for the kernels of tvm_kernels.py: register tiles, 2-core parallel rows, VNNI.

The phase conv keeps a tile of (tile_x pixels x tob*16 output channels) int32 accumulators in
registers over the whole reduction (taps x input channel groups); each step broadcasts 4 input
bytes of a pixel and multiplies them with 16x4 packed weights (one vpdpbusd). The epilogue runs
on the finished tile while it is still in registers. The pixel conv does the same with 16 pixels
per vector and one broadcast weight group per output channel. Without VNNI the same loops are
vectorized over the 16 lanes in int32 (exact, slower): the fallback for other targets.
"""
from dataclasses import dataclass

from tvm import te, tirx
from tvm.s_tir import Schedule

from .tvm_kernels import PhaseConv, PixelConv, phase_conv_te, pixel_conv_te
from .tvm_vnni import OC16_INTRIN, PIX16_INTRIN

ACC_REGISTERS = 24  # of 32 zmm registers: the rest hold weights and the broadcast input


@dataclass
class Tiles:
    tob: int      # output-channel blocks of 16 per tile
    tile_x: int   # output pixels (phase conv) or groups of 16 pixels (pixel conv) per tile


def phase_tiles(plan: PhaseConv) -> Tiles:
    ob = plan.wp.shape[2]
    tob = max(d for d in (1, 2, 3, 4) if ob % d == 0)
    return Tiles(tob, max(1, min(16, ACC_REGISTERS // tob)))


def pixel_tiles(plan: PixelConv) -> Tiles:
    return Tiles(1, max(1, min(4, ACC_REGISTERS // plan.out_channels)))


def _is_one(sch, loop) -> bool:
    """A loop of constant extent 1: the row loop of a 1-D program (height 1)."""
    extent = sch.get(loop).extent
    return isinstance(extent, tirx.IntImm) and extent.value == 1


def _schedule_pad(sch):
    pad = sch.get_sblock("pad")
    n, g, y, x, lane = sch.get_loops(pad)
    if _is_one(sch, y):  # 1-D: chunks of the one row on the cores
        xo, _ = sch.split(x, [None, 256])
        sch.parallel(sch.fuse(n, g, y, xo))
    else:
        sch.parallel(sch.fuse(n, g, y))
    sch.vectorize(lane)


def _finish(sch, acc, out, at, first_reduce, inner_spatial, lane_loop, intrin, vnni):
    """Epilogue into the tile, accumulators local, init vectorized, update tensorized or vectorized."""
    sch.reverse_compute_at(out, at)
    if not vnni:  # int32 lanes: the 4 products of a group one after another, each a vector multiply-add
        *_, lane, ri = sch.get_loops(acc)
        sch.reorder(ri, lane)
        sch.unroll(ri)
        sch.vectorize(lane)
    init = sch.decompose_reduction(acc, first_reduce)
    *_, init_lane = sch.get_loops(init)
    sch.vectorize(init_lane)
    if vnni:
        sch.tensorize(lane_loop, intrin)
    for loop in inner_spatial:
        sch.unroll(loop)
    *_, out_lane = sch.get_loops(out)
    sch.vectorize(out_lane)
    sch.set_scope(init, 0, "local")  # after tensorize: the intrinsic's buffers are global-scoped


def schedule_phase_conv(func, tiles: Tiles, vnni: bool):
    sch = Schedule(func)
    _schedule_pad(sch)
    acc, out = sch.get_sblock("acc"), sch.get_sblock("out")
    n, b, m, rh, xm, rw, o, ra, rb, rc, ri = sch.get_loops(acc)
    bo, bi = sch.split(b, [None, tiles.tob])
    xo, xi = sch.split(xm, [None, tiles.tile_x])
    sch.reorder(n, bo, m, rh, xo, rw, ra, rb, rc, xi, bi, o, ri)
    # rows on the cores; a 1-D program has one row: its pixel tiles go to the cores instead
    sch.parallel(sch.fuse(n, bo, m, rh, xo) if _is_one(sch, m) and _is_one(sch, rh) else sch.fuse(n, bo, m))
    _finish(sch, acc, out, rw, ra, [xi, bi], o, OC16_INTRIN, vnni)
    return sch.mod["main"]


def schedule_pixel_conv(func, tiles: Tiles, vnni: bool):
    sch = Schedule(func)
    _schedule_pad(sch)
    acc, out = sch.get_sblock("acc"), sch.get_sblock("out")
    n, c, y, xx, ra, rb, rc, ri = sch.get_loops(acc)
    xo, xt, xv = sch.split(xx, [None, tiles.tile_x, 16])
    sch.reorder(n, y, xo, ra, rb, rc, c, xt, xv, ri)
    if _is_one(sch, y):  # 1-D: the pixel tiles go to the cores
        xo = sch.fuse(n, y, xo)
        sch.parallel(xo)
    else:
        sch.parallel(sch.fuse(n, y))
    _finish(sch, acc, out, xo, ra, [c, xt], xv, PIX16_INTRIN, vnni)
    return sch.mod["main"]


def tiles_for(plan) -> Tiles:
    return phase_tiles(plan) if isinstance(plan, PhaseConv) else pixel_tiles(plan)


def schedule_conv(func, plan, vnni: bool):
    """The unscheduled PrimFunc of phase_conv_te / pixel_conv_te (built with tiles_for(plan)) -> scheduled."""
    sched = schedule_phase_conv if isinstance(plan, PhaseConv) else schedule_pixel_conv
    return sched(func, tiles_for(plan), vnni)


def conv_prim_func(plan, x: te.Tensor, consts, vnni: bool):
    """Standalone scheduled PrimFunc (x, *consts, out): for kernel tests and benchmarks."""
    build = phase_conv_te if isinstance(plan, PhaseConv) else pixel_conv_te
    _, out = build(x, *consts, plan, tiles_for(plan).tile_x)  # padded copy stays internal here
    return schedule_conv(te.create_prim_func([x, *consts, out]), plan, vnni)
