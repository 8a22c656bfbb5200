"""bpgan-export --tune N: a measured search over the hand schedules' register tiles, one kernel at a time.

The hand schedules (tvm.schedule) pick each conv's tile (output-channel blocks x pixels) from the Isa's register
budget. Tuning compiles each scheduled conv of the program on its own with up to N tiles that fit the budget
(the default first), times it on this CPU at the tuning size (the input it sees when the program decodes a
latent of that size) and keeps the fastest. Only the schedule changes, never the arithmetic: the library is
verified against the test vectors like any other.

The database (decoder-llvm.tune.json beside the library) holds one entry per kernel, keyed by op, shapes, ISA and
mcpu. A later export reuses the entries it finds; with --tune N it measures again only the kernels that have no
entry, one measured at another size, or fewer than N tiles tried. Not MetaSchedule: its tuned functions need static shapes, while one library here decodes any
size, and on these kernels it measured slower than the hand schedules (../shared/notes/tvm-0.27-int8.md).
"""
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import tvm
from tvm import te, tirx

from bpgan.firmware_ref.program import Program, ProgramError
from bpgan.firmware_ref.stripes import heights_of

from . import kernels as K
from .blocked import plan_conv
from .schedule import Tiles, conv_prim_func, tiles_for

FORMAT = "bpgan-tune/1"
DEFAULT_SIZES = {2: (32, 48), 1: (157,)}   # the bench sizes: 768x512 at 1/16; 10 s of 125 mel frames/s at 1/8


def tune_path(lib_path) -> Path:
    p = Path(lib_path)
    return p.with_name(p.name.split(".")[0] + ".tune.json")


def conv_plans(prog: Program, isa) -> List[Tuple[str, object, list]]:
    """(op name, plan, consts) of every conv the blocked lowering schedules (blocked.plan_conv decides)."""
    return [(op.name, *planned) for op in prog.ops if op.kind.startswith("conv")
            for planned in [plan_conv(op, prog, isa)] if planned is not None]


def candidates(plan, trials: int) -> List[Tiles]:
    """Up to `trials` tiles within the Isa's accumulator budget: the hand schedule's first, then the largest."""
    isa, default = plan.isa, tiles_for(plan)
    if isinstance(plan, K.PhaseConv):
        ob = plan.wp.shape[2]
        every = [Tiles(tob, tx) for tob in range(1, isa.max_tob + 1) if ob % tob == 0
                 for tx in range(1, 17) if tob * tx <= isa.acc_vectors]
    else:
        every = [Tiles(1, tx) for tx in range(1, 17) if tx * plan.out_channels <= max(isa.acc_vectors, plan.out_channels)]
    rest = sorted((t for t in every if t != default), key=lambda t: (-t.tob * t.tile_x, -t.tile_x))
    return ([default] + rest)[:max(trials, 1)]


class _Shapes:
    """Each tensor's spatial size when the program decodes a latent of `size`."""

    def __init__(self, prog: Program, size):
        self.prog, self.dims = prog, prog.spatial_dims
        self.axes = [heights_of(prog, s, axis) for axis, s in enumerate(size)]

    def hw(self, name) -> Tuple[int, int]:
        return (1, self.axes[0][name]) if self.dims == 1 else (self.axes[0][name], self.axes[1][name])


def time_kernel(name, plan, consts, shapes: _Shapes, tiles: Tiles, target, repeat: int = 5) -> float:
    """Milliseconds (min of `repeat`) of one scheduled conv, built as the library builds it (symbolic sizes)."""
    op = next(o for o in shapes.prog.ops if o.name == name)
    dtype, cin = shapes.prog.fmt(op.inputs[0])[0], shapes.prog.tensors[op.inputs[0]]["channels"]
    blocks = -(-cin // K.LANES)
    x = te.placeholder((1, blocks, tirx.Var("h", "int64"), tirx.Var("w", "int64"), K.LANES), dtype, "x")
    cs = [te.placeholder(c.shape, str(c.dtype), f"c{i}") for i, c in enumerate(consts)]
    lib = tvm.compile(tvm.IRModule({"main": conv_prim_func(plan, x, cs, tiles)}), target=target)
    (h, w), (ho, wo) = shapes.hw(op.inputs[0]), shapes.hw(op.output)
    if isinstance(plan, K.PhaseConv):
        (ph, pw), ob = plan.phases, plan.wp.shape[2]
        out_shape = (1, ob, ho // ph, ph, wo // pw, pw, K.LANES)
    else:
        out_shape = (1, plan.out_channels, ho, wo)
    dev = tvm.cpu()
    args = [np.zeros((1, blocks, h, w, K.LANES), dtype), *consts, np.zeros(out_shape, plan.req.dtype)]
    args = [tvm.runtime.tensor(a, dev) for a in args]
    f = lib["main"]
    f(*args)   # warm up (first touch of the buffers, thread pool start)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(3):
            f(*args)
        times.append((time.perf_counter() - t) / 3)
    return 1e3 * min(times)


def _key(name, plan, isa, target) -> str:
    w = plan.wp if isinstance(plan, K.PhaseConv) else plan.wq
    return f"{name}|{type(plan).__name__}|{'x'.join(map(str, w.shape))}|{isa.name}|{target.attrs.get('mcpu', '')}"


def _checked(tiles: Tiles, plan, name, db_path) -> Tiles:
    if tiles not in candidates(plan, 1 << 10):
        raise ProgramError(f"{db_path}: tiles {tiles.tob}x{tiles.tile_x} for {name} do not fit its kernel's register "
                           f"budget; delete the database to tune again")
    return tiles


def tuned_tiles(prog: Program, isa, target, db_path: Path, trials: int = 0, size=None,
                log=None) -> Tuple[Dict[str, Tiles], dict]:
    """{op name: Tiles} from the database at db_path, measuring (trials > 0) the kernels it lacks; the database is
    rewritten with what was measured. -> (tiles, summary of what was reused and measured)."""
    size = tuple(size or DEFAULT_SIZES[prog.spatial_dims])
    if len(size) != prog.spatial_dims:
        raise ProgramError(f"--tune-size: a {prog.spatial_dims}-D program needs {prog.spatial_dims} size(s), "
                           f"got {len(size)}")
    db = {"format": FORMAT, "entries": {}}
    if db_path.is_file():
        try:
            db = json.loads(db_path.read_text())
            assert db.get("format") == FORMAT and isinstance(db.get("entries"), dict)
        except (ValueError, AssertionError):
            raise ProgramError(f"{db_path} is not a tuning database (format {FORMAT}); delete it to tune again") \
                from None
    plans, shapes = conv_plans(prog, isa), None
    tiles, summary, t0 = {}, {"reused": 0, "measured": 0, "trials": 0, "saved_ms": 0.0}, time.perf_counter()
    for name, plan, consts in plans:
        key = _key(name, plan, isa, target)
        entry = db["entries"].get(key)
        stale = entry is None or entry.get("size") != list(size) or \
            entry.get("tried", 0) < min(trials, len(candidates(plan, 1 << 10)))
        if trials > 0 and stale:
            shapes = shapes or _Shapes(prog, size)
            timed = [(time_kernel(name, plan, consts, shapes, t, target), t) for t in candidates(plan, trials)]
            best_ms, best = min(timed, key=lambda mt: mt[0])
            entry = {"tob": best.tob, "tile_x": best.tile_x, "ms": round(best_ms, 4),
                     "default_ms": round(timed[0][0], 4), "tried": len(timed), "size": list(size)}
            db["entries"][key] = entry
            summary["measured"] += 1
            summary["trials"] += len(timed)
            if log:
                log(f"tune {name}: {entry['default_ms']:.3f} -> {entry['ms']:.3f} ms with tiles "
                    f"{best.tob}x{best.tile_x} ({len(timed)} tried)")
        elif entry is not None:
            summary["reused"] += 1
        if entry is not None:
            tiles[name] = _checked(Tiles(int(entry["tob"]), int(entry["tile_x"])), plan, name, db_path)
            summary["saved_ms"] += entry["default_ms"] - entry["ms"]
    if summary["measured"]:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        db_path.write_text(json.dumps(db, indent=1, sort_keys=True) + "\n")
    summary["seconds"] = time.perf_counter() - t0
    summary["kernels"], summary["size"] = len(plans), list(size)
    return tiles, summary


def parse_size(text: Optional[str]):
    """--tune-size "32x48" (2-D latent rows x columns) or "157" (1-D latent steps) -> tuple, None when unset."""
    if not text:
        return None
    try:
        size = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ProgramError(f"--tune-size {text!r}: expected ROWSxCOLUMNS or STEPS (latent positions)") from None
    if not size or any(v < 1 for v in size):
        raise ProgramError(f"--tune-size {text!r}: sizes must be positive")
    return size
