"""The arena plan: the size of every tensor for one latent size, then first-fit offsets by liveness.

runtime/bpgan_plan.c runs the same plan for each stream (the C needs it at run time because shapes
follow the stream's size); here it sizes the static arena: the largest plan over every latent size the
export's limits let through, so any stream within them fits (the C still refuses one that does not).
Slots: tensor t (the latent first, then each op's output in op order), then op i's int32 row buffer
(convs; 0 bytes otherwise). Op i runs at step i + 1; the latent is written at step 0; a tensor lives
from the step that writes it to the last step that reads it, the decoded output to the end. Placement:
largest slot first (ties: lower id), each at the lowest offset free of every placed slot whose lifetime
meets its own (TFLite Micro's greedy order; on the shipped models it reaches the peak of live bytes).
"""
from typing import List, Sequence, Tuple

import numpy as np

from bpgan.firmware_ref.formats import DTYPE_RANGE

ALIGN = 8   # bpgan_internal.h BPG_ALIGN
DTYPE_BYTES = {name: np.dtype(name).itemsize for name in DTYPE_RANGE}
Shape = Tuple[int, int]   # (h, w); 1-D tensors have h = 1


class ShapeError(ValueError):
    """A latent size the program cannot run (the reference kernels refuse it too)."""


def tensor_ids(prog) -> List[str]:
    return [prog.inputs[0]] + [op.output for op in prog.ops]


def geometry(prog, op) -> dict:
    """A conv's kernel, stride, padding, output padding in 2-D form (1-D convs: height 1)."""
    w = prog.arrays[op.params["weight"]]
    a = op.attrs
    if op.kind.endswith("1d"):
        return {"kernel": [1, int(w.shape[2])], "stride": [1, a["stride"][0]],
                "pad": [0, a["padding"][0], 0, a["padding"][1]], "out_pad": [0, a.get("output_padding", [0])[0]]}
    return {"kernel": [int(w.shape[2]), int(w.shape[3])], "stride": list(a["stride"]), "pad": list(a["padding"]),
            "out_pad": list(a.get("output_padding", [0, 0]))}


def op_shape(prog, op, xs: Sequence[Shape], dims: int) -> Shape:
    """The same rules as bpgan_plan.c op_shape (and the reference kernels' output sizes)."""
    (h, w) = xs[0]
    if op.kind.startswith("conv"):
        g = geometry(prog, op)
        (kh, kw), (sh, sw), (pt, pl, pb, pr), (oph, opw) = g["kernel"], g["stride"], g["pad"], g["out_pad"]
        if op.kind.startswith("conv_transpose"):
            ho, wo = (h - 1) * sh + kh + oph - pt - pb, (w - 1) * sw + kw + opw - pl - pr
            if ho < 1 or wo < 1:
                raise ShapeError(f"transposed conv output {ho}x{wo} is empty")
            return ho, wo
        if h + pt + pb - kh < 0 or w + pl + pr - kw < 0:
            raise ShapeError(f"conv input {h}x{w} is smaller than its kernel")
        return (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if op.kind == "add":
        (bh, bw) = xs[1]
        if (h != bh and 1 not in (h, bh)) or (w != bw and 1 not in (w, bw)):
            raise ShapeError("add inputs do not broadcast")
        return (bh if h == 1 else h), (bw if w == 1 else w)
    if op.kind in ("pixel_shuffle", "upsample_nearest"):
        r = op.attrs["factor"]
        return (h * r if dims == 2 else 1), w * r
    if op.kind == "concat" and any(x != xs[0] for x in xs):
        raise ShapeError("concat inputs differ in size")
    return h, w


def shapes(prog, latent: Shape, dims: int) -> dict:
    env = {prog.inputs[0]: latent}
    for op in prog.ops:
        env[op.output] = op_shape(prog, op, [env[t] for t in op.inputs], dims)
    return env


def lifetimes(prog):
    """-> (first step, last step) per slot id (tensors, then one row buffer per op)."""
    ids = tensor_ids(prog)
    index = {name: i for i, name in enumerate(ids)}
    first = list(range(len(ids))) + [i + 1 for i in range(len(prog.ops))]
    last = list(first)
    for i, op in enumerate(prog.ops):
        for t in op.inputs:
            last[index[t]] = max(last[index[t]], i + 1)
    last[index[prog.outputs[0]]] = len(prog.ops) + 1
    return first, last


def _round_up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def slot_bytes(prog, env) -> List[int]:
    ids = tensor_ids(prog)
    sizes = [_round_up(prog.tensors[t]["channels"] * env[t][0] * env[t][1] * DTYPE_BYTES[prog.fmt(t)[0]]) for t in ids]
    return sizes + [_round_up(4 * _row_columns(prog, op, env[op.output][1])) if op.kind.startswith("conv") else 0
                    for op in prog.ops]


def _row_columns(prog, op, width: int) -> int:
    """A conv's int32 row buffer: the output width, for a transposed conv in whole stride phases."""
    s = geometry(prog, op)["stride"][1]
    return -(-width // s) * s if op.kind.startswith("conv_transpose") else width


def first_fit(sizes: Sequence[int], first, last) -> int:
    """Largest first, each slot at the lowest offset free of every placed slot whose lifetime meets its own.

    -> the arena bytes (bpgan_plan.c bpg_plan does the same per stream)."""
    placed, need = [], 0
    for s in sorted(range(len(sizes)), key=lambda s: (-sizes[s], s)):
        live = [(o, o + sizes[p]) for p, o in placed if sizes[p] and first[p] <= last[s] and first[s] <= last[p]]
        at, moved = 0, True
        while moved:   # bump past every conflict, as bpgan_plan.c does
            moved = False
            for lo, hi in live:
                if lo < at + sizes[s] and at < hi:
                    at, moved = hi, True
        placed.append((s, at))
        if sizes[s]:
            need = max(need, at + sizes[s])
    return need


def plan_bytes(prog, latent: Shape, dims: int, lives=None) -> int:
    first, last = lives or lifetimes(prog)
    return first_fit(slot_bytes(prog, shapes(prog, latent, dims)), first, last)


def arena_bytes(prog, dims: int, max_positions: int) -> int:
    """The largest plan over the latent sizes with at most max_positions positions (h * w, or n for 1-D).

    1-D: every length. 2-D: for each height the widest latent only (every tensor grows with the width;
    tests/test_c99.py checks every (h, w) of a model against it, and the C refuses what would not fit)."""
    lives = lifetimes(prog)
    sizes = [(h, max_positions // h) for h in range(1, max_positions + 1)] if dims == 2 else \
        [(1, n) for n in range(1, max_positions + 1)]
    best = 0
    for latent in sizes:
        try:
            best = max(best, plan_bytes(prog, latent, dims, lives))
        except ShapeError:
            continue
    return best
