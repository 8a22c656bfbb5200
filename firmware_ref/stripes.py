"""Stripe decoding: run a program band by band along its first spatial axis (image rows, speech time).

Two ways, same bytes as full frame: run_in_stripes computes each band independently (halo rows
recomputed; bands could run in parallel or alone), run_streaming keeps a row cache per tensor (no
recompute, least memory: what bpgan-decode --band-rows uses).

Each band of output rows is computed from the rows of every tensor that reach it, the receptive-field
halo, derived from the program op by op (not per model), so the result equals full-frame decoding
byte for byte while peak activation memory grows with the image width, not its area.

Rows are windows [lo, hi) in each tensor's own full-frame coordinates. Going backwards from the
output band, `needed` gives each input's window (clipped to the tensor); going forwards, `band_op`
computes exactly the output window from input windows that cover it, padding with zeros only where
full-frame decoding pads (outside [0, height)). ROW_MAPS holds both functions per op kind; a test
checks that every kind of the registry has one. reflect_pad maps output rows to reflected input rows;
instance_norm normalizes by statistics of the whole frame, which no band can know, so its row map refuses
the program in one ProgramError line (decode such programs full frame).
"""
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import kernels as K
from .ops.conv import CONV_KINDS, is_transpose
from .ops.layout import reflect_axis, reflect_index
from .program import Op, Program, ProgramError

Window = Tuple[int, int]


def _axis_params(op: Op, w: np.ndarray):
    """(stride, pad_before, pad_after, kernel) along the first spatial axis."""
    dims = w.ndim - 2
    a = op.attrs
    return a["stride"][0], a["padding"][0], a["padding"][dims], w.shape[2]


def _conv_needed(prog, op, out: Window, heights) -> List[Window]:
    w = prog.arrays[op.params["weight"]]
    s, pt, _, k = _axis_params(op, w)
    if is_transpose(op):  # output row Y = y*s + i - pt: y in [ceil((A + pt - k + 1) / s), floor((B - 1 + pt) / s)]
        lo, hi = -(-(out[0] + pt - k + 1) // s), (out[1] - 1 + pt) // s + 1
    else:  # output row y reads input rows y*s - pt ... y*s - pt + k - 1
        lo, hi = out[0] * s - pt, (out[1] - 1) * s - pt + k
    h = heights[op.inputs[0]]
    lo = min(max(lo, 0), h)
    return [(lo, min(max(hi, lo), h))]   # 0 <= lo <= hi <= h: an empty window is (lo, lo)


def _rows(x: np.ndarray, have: Window, want: Window, height: int) -> np.ndarray:
    """Rows want of a tensor held as window have, zeros outside [0, height) (full-frame padding)."""
    lo, hi = max(want[0], 0), min(want[1], height)
    if lo < have[0] or hi > have[1]:
        raise ProgramError(f"stripe plan bug: rows {want} not covered by {have}")
    part = x[:, :, lo - have[0]:hi - have[0]]
    pad = [(0, 0)] * x.ndim
    pad[2] = (max(lo - want[0], 0), max(want[1] - max(hi, lo), 0))
    return np.pad(part, pad) if pad[2] != (0, 0) else part


def _conv_band(prog, op, xs, haves, out: Window, heights) -> np.ndarray:
    w, b = prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]]
    s, pt, _, k = _axis_params(op, w)
    a, h = op.attrs, heights[op.inputs[0]]
    dims = w.ndim - 2
    pad = list(a["padding"])
    pad[0] = pad[dims] = 0  # the band carries its own rows; the other axes pad as in full frame
    if not is_transpose(op):
        x = _rows(xs[0], haves[0], (out[0] * s - pt, (out[1] - 1) * s - pt + k), h)
        acc = (K.conv2d_acc if dims == 2 else K.conv1d_acc)(x, w, b, a["stride"], pad)
    else:
        lo, hi = _conv_needed(prog, op, out, heights)[0]
        if lo >= hi:  # no input row reaches these output rows: bias only
            acc = np.broadcast_to(b.astype(np.int64).reshape((1, -1) + (1,) * dims),
                                  (1, len(b), out[1] - out[0]) + _other_axes(prog, op, xs[0]))
            return K.requantize(acc, a["shift"], a["clip"], prog.fmt(op.output)[0])
        x = _rows(xs[0], haves[0], (lo, hi), h)
        first = out[0] + pt - lo * s                     # row of the band in the slice's unpadded output
        extra = max(0, out[1] + pt - lo * s - ((hi - lo - 1) * s + k))
        opad = [extra] + list(a["output_padding"][1:])
        acc = (K.conv_transpose2d_acc if dims == 2 else K.conv_transpose1d_acc)(x, w, b, a["stride"], pad, opad)
        acc = acc[:, :, first:first + out[1] - out[0]]
    return K.requantize(acc, a["shift"], a["clip"], prog.fmt(op.output)[0])


def _other_axes(prog, op, x) -> tuple:
    """The output's sizes past the banded axis (full-frame width for 2-D, nothing for 1-D)."""
    if x.ndim == 3:
        return ()
    w = prog.arrays[op.params["weight"]]
    a = op.attrs
    s, (pl, pr), k = a["stride"][1], (a["padding"][1], a["padding"][3]), w.shape[3]
    return ((x.shape[3] - 1) * s + k - pl - pr + a["output_padding"][1],)


def _same_needed(prog, op, out: Window, heights) -> List[Window]:
    """The band itself; an input of height 1 that add broadcasts: its one row."""
    return [(0, 1) if heights[name] == 1 else out for name in op.inputs]


def _same_band(prog, op, xs, haves, out: Window, heights) -> np.ndarray:
    """Elementwise ops and concat: cut every input to the band, then the op's reference kernel."""
    wins = _same_needed(prog, op, out, heights)
    parts = [_rows(x, have, win, heights[name]) for x, have, win, name in zip(xs, haves, wins, op.inputs)]
    from .ops import REGISTRY
    return REGISTRY[op.kind].kernel(prog, op, parts)


def _scale_needed(prog, op, out: Window, heights) -> List[Window]:
    """Output rows [A, B) of an op that scales rows by r come from rows [A // r, ceil(B / r)) of every input
    (argmax_unpool: of its values and its logits alike)."""
    r = op.attrs["factor"]
    return [(out[0] // r, -(-out[1] // r))] * len(op.inputs)


def _scale_band(prog, op, xs, haves, out: Window, heights) -> np.ndarray:
    """pixel_shuffle / upsample_nearest / argmax_unpool by r: input rows [A // r, ceil(B / r)) of every input,
    then the kernel, then the cut."""
    from .ops import REGISTRY
    r = op.attrs["factor"]
    lo, hi = _scale_needed(prog, op, out, heights)[0]
    parts = [_rows(x, have, (lo, hi), heights[name]) for x, have, name in zip(xs, haves, op.inputs)]
    y = REGISTRY[op.kind].kernel(prog, op, parts)
    return y[:, :, out[0] - lo * r:out[1] - lo * r]


def _reflect_rows(op, out: Window, height: int) -> np.ndarray:
    """The input row (full-frame index) behind each output row of [A, B): r(y - top) (ops.layout.reflect_index)."""
    before, after = op.attrs["padding"][0], op.attrs["padding"][len(op.attrs["padding"]) // 2]
    if before >= height or after >= height:
        raise ProgramError(f"{op.name}: reflect_pad of size {height} must exceed its pads ({before}, {after})")
    return reflect_index(np.arange(out[0] - before, out[1] - before), height)


def _reflect_needed(prog, op, out: Window, heights) -> List[Window]:
    """Output rows [A, B) read reflected input rows; the window holds them and moves only forward (RowCache keeps
    no row below the last window's start): it starts at the least row that [A, end) reads and ends past the
    greatest row that [0, B) reads. With a = A - top, b = B - top, H the input's height:
      lo = max(0, min(a, H - 1 - bottom)),   hi = min(H, max(top + 1, b))
    (a superset of the rows [A, B) read: at most `top` or `bottom` rows more)."""
    pad, h = op.attrs["padding"], heights[op.inputs[0]]
    top, bottom = pad[0], pad[len(pad) // 2]
    _reflect_rows(op, (0, 0), h)   # refuses a size not above its pads
    lo = max(0, min(out[0] - top, h - 1 - bottom))
    if out[1] <= out[0]:
        return [(lo, lo)]
    return [(lo, max(lo, min(h, max(top + 1, out[1] - top))))]


def _reflect_band(prog, op, xs, haves, out: Window, heights) -> np.ndarray:
    """The reflected rows picked from the held window, then the other axes padded as in full frame."""
    rows = _reflect_rows(op, out, heights[op.inputs[0]])
    x = np.take(xs[0], rows - haves[0][0], axis=2)
    pad = op.attrs["padding"]
    return reflect_axis(x, 3, pad[1], pad[3]) if x.ndim == 4 else x


def _whole_frame(prog, op, out: Window, heights) -> List[Window]:
    raise ProgramError(f"op {op.name!r} ({op.kind}) normalizes by whole-frame statistics: it cannot be decoded "
                       f"in row bands; decode the program full frame")


ROW_MAPS = {kind: (_conv_needed, _conv_band) for kind in CONV_KINDS}
ROW_MAPS.update({kind: (_same_needed, _same_band) for kind in ("add", "clip", "concat", "log2_abs")})
ROW_MAPS.update({kind: (_scale_needed, _scale_band) for kind in ("pixel_shuffle", "upsample_nearest", "argmax_unpool")})
ROW_MAPS["reflect_pad"] = (_reflect_needed, _reflect_band)
ROW_MAPS["instance_norm"] = (_whole_frame, None)   # refused before any band runs


def heights_of(prog: Program, latent_rows: int, axis: int = 0) -> Dict[str, int]:
    """Every tensor's full-frame size along spatial axis `axis` (0: the banded one), from the input's.

    The one output-size rule per op kind (the C99 decoder's bpgan_plan.c op_shape is its port); a size the
    program cannot run (a conv input smaller than its kernel, an empty transposed-conv output, an add
    whose inputs do not broadcast) is one ProgramError line."""
    heights = {prog.inputs[0]: latent_rows}
    for op in prog.ops:
        h = heights[op.inputs[0]]
        if op.kind == "reflect_pad":
            pad = op.attrs["padding"]
            before, after = pad[axis], pad[len(pad) // 2 + axis]
            if before >= h or after >= h:
                raise ProgramError(f"{op.name}: reflect_pad of size {h} must exceed its pads ({before}, {after})")
            heights[op.output] = h + before + after
        elif op.kind in CONV_KINDS:
            w, a = prog.arrays[op.params["weight"]], op.attrs
            dims = w.ndim - 2
            s, pt, pb, k = a["stride"][axis], a["padding"][axis], a["padding"][dims + axis], w.shape[2 + axis]
            if is_transpose(op):
                out = (h - 1) * s + k - pt - pb + a["output_padding"][axis]
                if out < 1:
                    raise ProgramError(f"{op.name}: transposed conv output of size {out} for input size {h}")
            elif h + pt + pb < k:
                raise ProgramError(f"{op.name}: conv input of size {h} is smaller than its kernel {k} with padding")
            else:
                out = (h + pt + pb - k) // s + 1
            heights[op.output] = out
        elif op.kind in ("pixel_shuffle", "upsample_nearest", "argmax_unpool"):
            if any(heights[name] != h for name in op.inputs):   # argmax_unpool: one logit per value position
                raise ProgramError(f"{op.name}: {op.kind} inputs differ in size")
            heights[op.output] = h * op.attrs["factor"]
        elif op.kind == "add":   # numpy broadcasting: a size-1 axis takes the other's size
            b = heights[op.inputs[1]]
            if h != b and 1 not in (h, b):
                raise ProgramError(f"{op.name}: add inputs of sizes {h} and {b} do not broadcast")
            heights[op.output] = max(h, b)
        else:
            if any(heights[name] != h for name in op.inputs):
                raise ProgramError(f"{op.name}: {op.kind} inputs differ in size")
            heights[op.output] = h
    return heights


def plan_band(prog: Program, heights: Dict[str, int], out: Window) -> Dict[str, Window]:
    """The window of every tensor that output rows `out` need (backwards through the ops)."""
    need = {prog.outputs[0]: out}
    for op in reversed(prog.ops):
        if op.output not in need:
            continue
        for name, win in zip(op.inputs, ROW_MAPS[op.kind][0](prog, op, need[op.output], heights)):
            old = need.get(name)
            need[name] = win if old is None else (min(old[0], win[0]), max(old[1], win[1]))
    return need


def bands(height: int, rows: int) -> List[Window]:
    return [(lo, min(lo + rows, height)) for lo in range(0, height, rows)]


def run_in_stripes(prog: Program, latent: np.ndarray, band_rows: int) -> np.ndarray:
    """The program's output, computed band_rows output rows at a time; == run_program's, byte for byte."""
    if len(prog.inputs) != 1 or len(prog.outputs) != 1:
        raise ProgramError("stripe decoding takes programs with one input and one output")
    if band_rows < 1:
        raise ProgramError(f"band rows must be >= 1, got {band_rows}")
    from .decoder import check_input
    x = check_input(prog, prog.inputs[0], latent)
    heights = heights_of(prog, x.shape[2])
    out_rows = heights[prog.outputs[0]]
    parts = [_band(prog, x, heights, win) for win in bands(out_rows, band_rows)]
    return np.concatenate(parts, axis=2)


def _band(prog, x, heights, out: Window) -> np.ndarray:
    need = plan_band(prog, heights, out)
    env = {prog.inputs[0]: (x[:, :, need[prog.inputs[0]][0]:need[prog.inputs[0]][1]], need[prog.inputs[0]])}
    for op in prog.ops:
        if op.output not in need:
            continue
        xs, haves = zip(*(env[name] for name in op.inputs))
        env[op.output] = (ROW_MAPS[op.kind][1](prog, op, list(xs), list(haves), need[op.output], heights),
                          need[op.output])
    return env[prog.outputs[0]][0]


def band_cost(prog: Program, latent_hw, band_rows: int) -> dict:
    """Peak activation bytes (live tensors, in op order) and MACs, banded against full frame."""
    heights = heights_of(prog, latent_hw[0])
    widths = heights_of(prog, latent_hw[1], axis=1) if len(latent_hw) > 1 else {k: 1 for k in heights}
    full = {name: (0, h) for name, h in heights.items()}
    peak, macs = 0, 0
    for win in bands(heights[prog.outputs[0]], band_rows):
        need = plan_band(prog, heights, win)
        p, m = _cost(prog, need, widths)
        peak, macs = max(peak, p), macs + m
    full_peak, full_macs = _cost(prog, full, widths)
    return {"band_rows": band_rows, "peak_bytes": peak, "full_frame_peak_bytes": full_peak,
            "macs": macs, "full_frame_macs": full_macs, "recompute": macs / full_macs - 1 if full_macs else 0.0}


def _cost(prog, need, widths):
    """(peak bytes of the live windows, conv MACs) for one band's windows."""
    last_use = {name: i for i, op in enumerate(prog.ops) for name in op.inputs}
    itemsize = {name: np.dtype(t["dtype"]).itemsize * t["channels"] for name, t in prog.tensors.items()}
    size = {name: itemsize[name] * max(win[1] - win[0], 0) * widths[name] for name, win in need.items()}
    live = {prog.inputs[0]} if prog.inputs[0] in need else set()
    peak = macs = 0
    for i, op in enumerate(prog.ops):
        if op.output not in need:
            continue
        live.add(op.output)
        peak = max(peak, sum(size[name] for name in live))
        if op.kind in CONV_KINDS:
            w = prog.arrays[op.params["weight"]]
            rows = need[op.inputs[0]] if is_transpose(op) else need[op.output]
            width = widths[op.inputs[0]] if is_transpose(op) else widths[op.output]
            macs += int(w.size) * max(rows[1] - rows[0], 0) * width
        live -= {name for name in op.inputs if last_use[name] == i and name not in prog.outputs}
    return peak, macs


def choose_band(prog: Program, latent_hw, max_recompute: float = 0.25) -> dict:
    """The smallest band (least memory) whose recompute overhead stays within max_recompute."""
    out_rows = heights_of(prog, latent_hw[0])[prog.outputs[0]]
    step = max(out_rows // latent_hw[0], 1)   # output rows per latent row
    for rows in range(step, out_rows + step, step):
        cost = band_cost(prog, latent_hw, rows)
        if cost["recompute"] <= max_recompute:
            return cost
    return band_cost(prog, latent_hw, out_rows)


class RowCache:
    """Streaming decoding: every tensor keeps a window of computed rows; nothing is computed twice.

    Output bands are requested in order, so every tensor's requested windows only move forward: a
    tensor computes just the rows past those it holds, and drops the rows no consumer can ask for
    again (below the lowest window its consumers asked for last). Memory is the halo plus a band per
    tensor, with no recompute; the result equals full-frame decoding byte for byte.

    With x None it only keeps the windows (no data): `max_rows` is then each tensor's largest window,
    the ring of rows the C99 decoder allocates per tensor (runtime/bpgan_stream.c is this schedule's port).
    """

    def __init__(self, prog: Program, x: Optional[np.ndarray], latent_rows: Optional[int] = None):
        rows = x.shape[2] if x is not None else latent_rows
        self.prog, self.heights, self.compute = prog, heights_of(prog, rows), x is not None
        self.producer = {op.output: op for op in prog.ops}
        self.consumers = {name: [op for op in prog.ops if name in op.inputs] for name in prog.tensors}
        self.window: Dict[str, Window] = {prog.inputs[0]: (0, rows)}
        self.data: Dict[str, np.ndarray] = {prog.inputs[0]: x} if self.compute else {}
        self.asked: Dict[Tuple[str, str], int] = {}   # (tensor, consumer) -> lowest row it asked for last
        self.max_rows: Dict[str, int] = {prog.inputs[0]: rows}
        self.peak_bytes = 0

    def rows(self, name: str, want: Window, consumer: str) -> Tuple[Optional[np.ndarray], Window]:
        """The held window of `name` covering `want` (computing what is missing), for `consumer`."""
        self.asked[(name, consumer)] = want[0]
        if name not in self.window or self.window[name][1] < want[1]:
            self._extend(name, want[1])
        return self.data.get(name), self.window[name]

    def _extend(self, name: str, hi: int) -> None:
        op = self.producer[name]
        lo, have_hi = self.window.get(name, (0, 0))
        todo = (have_hi, hi)
        wins = ROW_MAPS[op.kind][0](self.prog, op, todo, self.heights)
        ins = [self.rows(i, w, op.output) for i, w in zip(op.inputs, wins)]
        if self.compute:
            new = ROW_MAPS[op.kind][1](self.prog, op, [a for a, _ in ins], [h for _, h in ins], todo, self.heights)
            old = self.data.get(name)
            self.data[name] = new if old is None else np.concatenate([old, new], axis=2)
            self.peak_bytes = max(self.peak_bytes, sum(a.nbytes for a in self.data.values()))
        self.window[name] = (lo, hi)
        self.max_rows[name] = max(self.max_rows.get(name, 0), hi - lo)
        self._trim(op.inputs)

    def _trim(self, names) -> None:
        for name in dict.fromkeys(names):
            users = self.consumers[name]
            if name in self.prog.outputs or any((name, u.output) not in self.asked for u in users):
                continue
            floor = min(self.asked[(name, u.output)] for u in users)
            self.drop_below(name, floor)

    def drop_below(self, name: str, floor: int) -> None:
        lo, hi = self.window[name]
        if floor > lo:
            self.window[name] = (floor, hi)
            if self.compute:
                self.data[name] = self.data[name][:, :, floor - lo:]


def ring_rows(prog: Program, latent_rows: int, band_rows: int = 1) -> Dict[str, int]:
    """Each tensor's largest window of rows while streaming band_rows output rows at a time (no data)."""
    cache = RowCache(prog, None, latent_rows)
    out = prog.outputs[0]
    for win in bands(cache.heights[out], band_rows):
        cache.rows(out, win, "")
        cache.drop_below(out, win[1])   # the caller took these rows
    return cache.max_rows


def run_streaming(prog: Program, latent: np.ndarray, band_rows: int, stats: dict = None) -> np.ndarray:
    """The program's output, band_rows output rows at a time, each row of each tensor computed once."""
    if len(prog.inputs) != 1 or len(prog.outputs) != 1 or band_rows < 1:
        raise ProgramError("streaming takes programs with one input and one output, and band rows >= 1")
    from .decoder import check_input
    cache = RowCache(prog, check_input(prog, prog.inputs[0], latent))
    out = prog.outputs[0]
    parts = []
    for win in bands(cache.heights[out], band_rows):
        data, (lo, _) = cache.rows(out, win, "")
        parts.append(data[:, :, win[0] - lo:win[1] - lo])
        cache.drop_below(out, win[1])   # the caller took these rows
    if stats is not None:
        stats["peak_bytes"] = cache.peak_bytes
    return np.concatenate(parts, axis=2)
