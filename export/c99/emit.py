"""Integer program -> DIR/c99: the runtime (copied verbatim), model_data.c (the model as const tables), a Makefile.

Every op kind is lowered through C_KERNELS (kind -> the runtime's enum and kernel function); the
constants come from firmware_ref itself: rounding.shift_terms for every shift, ans.code_costs for the
work rules, bitstream's limits. The arena is sized by plan.arena_bytes for the export's limits.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from bpgan.firmware_ref import ans, bitstream, speech
from bpgan.firmware_ref.bounds import prove_no_overflow
from bpgan.firmware_ref.ops import REGISTRY
from bpgan.firmware_ref.program import Program, ProgramError
from bpgan.firmware_ref.rounding import shift_terms

from . import plan
from .speech_tables import speech_tables_c

RUNTIME = Path(__file__).resolve().parent / "runtime"
RUNTIME_FILES = ("bpgan_decoder.h", "bpgan_internal.h", "bpgan_speech.h", "bpgan_speech_internal.h", "bpgan_decoder.c",
                 "bpgan_ans.c", "bpgan_plan.c", "bpgan_stream.c", "bpgan_ops.c", "bpgan_speech.c", "bpgan_speech_frame.c",
                 "bpgan_decode.c", "Makefile", "cortex_m_startup.c", "cortex_m.ld")
DTYPES = {"int8": "BPG_INT8", "uint8": "BPG_UINT8", "int16": "BPG_INT16", "int32": "BPG_INT32"}
# Each registry kind's C lowering: (the runtime's kind enum, its kernel function in bpgan_ops.c).
C_KERNELS = {kind: (f"BPG_{kind.upper()}", f"bpg_{kind}") for kind in (
    "conv2d", "conv_transpose2d", "conv1d", "conv_transpose1d", "add", "clip", "pixel_shuffle", "upsample_nearest",
    "concat", "argmax_unpool", "reflect_pad")}
assert set(C_KERNELS) <= set(REGISTRY), "a C lowering for a kind the registry does not define"
# Registry kinds this decoder refuses, and why (one ProgramError line names the op, its kind and the reason).
REFUSED = {
    "instance_norm": "it normalizes by whole-frame statistics, which a decoder streaming images by output row "
                     "cannot compute",
    "log2_abs": "it serves the lossless audio model (idf-audio), whose decoder is not a C99 target yet",
}
assert not set(REFUSED) & set(C_KERNELS) and set(REFUSED) <= set(REGISTRY)
IMAGE_ONLY = ("pixel_shuffle", "argmax_unpool")   # kinds that scale both spatial axes: 2-D programs only
DEFAULT_MAX_PIXELS = 768 * 512   # the Kodak size, either orientation
DEFAULT_MAX_WIDTH = 768          # images stream by rows: memory grows with the width
DEFAULT_MAX_FRAMES = 20 * 8000 // bitstream.AUDIO_HOP   # 20 s of 8 kHz speech


@dataclass
class C99Report:
    out_dir: Path
    arena_bytes: int
    max_stream_bytes: int
    max_pixels: int       # the decoder limits the arena was planned for (images; speech)
    max_frames: int
    dims: int = 2         # 2: an image decoder, 1: speech
    max_width: int = DEFAULT_MAX_WIDTH
    ring_rows: int = 0    # the most rows any tensor's ring holds (the band plan: one output row at a time)

    @property
    def limit(self) -> str:
        size = f"{self.max_pixels} pixels, {self.max_width} wide" if self.dims == 2 else f"{self.max_frames} mel frames"
        return f"{size}; streamed by output row, rings of at most {self.ring_rows} rows per tensor"


def spatial_dims(prog: Program) -> int:
    dims = {1 if op.kind.endswith("1d") else 2 for op in prog.ops if op.kind.startswith("conv")}
    if len(dims) != 1:
        raise ProgramError("c99 target: the program must use only 2-D or only 1-D convs")
    return dims.pop()


def check_program(prog: Program) -> int:
    """What this decoder supports beyond the program format; -> spatial dims. One ProgramError line otherwise."""
    refused = next((op for op in prog.ops if op.kind in REFUSED), None)
    if refused is not None:
        raise ProgramError(f"c99 target: op {refused.name!r} ({refused.kind}) has no C99 kernel: "
                           f"{REFUSED[refused.kind]}")
    missing = [op.kind for op in prog.ops if op.kind not in C_KERNELS]
    if missing:
        raise ProgramError(f"c99 target: op kind(s) {sorted(set(missing))} have no C lowering")
    if len(prog.inputs) != 1 or prog.fmt(prog.inputs[0])[0] != "int8" or prog.symbol_table is None:
        raise ProgramError("c99 target: the program needs one int8 input fed by its symbol table")
    if len(prog.symbols()) > 256:
        raise ProgramError("c99 target: at most 256 symbols (the decoder keeps symbol indices in bytes)")
    prog.prior(), prog.model_hash()
    if not isinstance(prog.meta.get("config", {}).get("downsample"), int):
        raise ProgramError("c99 target: the program's meta.config.downsample (the latent stride) is missing")
    dims = spatial_dims(prog)
    dtype, frac = prog.fmt(prog.outputs[0])
    if dims == 2 and (prog.tensors[prog.outputs[0]]["channels"] not in (1, 3) or frac < 0):
        raise ProgramError("c99 target: an image program needs a 1- or 3-channel output with frac_bits >= 0")
    if dims == 1 and (dtype != "int8" or any(op.kind in IMAGE_ONLY for op in prog.ops)
                      or prog.tensors[prog.outputs[0]]["channels"] != speech.N_MELS or frac != speech.CODE_FRAC_BITS):
        raise ProgramError(f"c99 target: an audio program needs an int8 mel output ({speech.N_MELS} bands at "
                           f"2^-{speech.CODE_FRAC_BITS}, the speech back end's input) and no "
                           f"{' or '.join(IMAGE_ONLY)}")
    if len(plan.tensor_ids(prog)) + len(prog.ops) > 0xFFFF:
        raise ProgramError("c99 target: too many tensors")
    return dims


def _arr(ctype: str, name: str, values, per_line: int = 24, suffix: str = "") -> str:
    vals = [f"{int(v)}{suffix}" for v in np.ravel(values)] or ["0"]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return f"static const {ctype} {name}[{len(vals)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def _i32(v: int) -> str:
    return "(-2147483647 - 1)" if int(v) == -2 ** 31 else str(int(v))


def _comment(text: str) -> str:
    """Layer and tensor names inside a C comment (a name holding '*/' would end it)."""
    return str(text).replace("*/", "* /")


def _shifts(name: str, k) -> str:
    """bpg_shift {left, right, rnd} per channel: the terms of rounding.shift_terms, the one rounding rule."""
    left, rnd, right = shift_terms(np.atleast_1d(k))
    rows = [f"{{{int(lt)}, {int(rt)}, {int(rn)}LL}}" for lt, rn, rt in zip(left, rnd, right)]
    return f"static const bpg_shift {name}[{len(rows)}] = {{{', '.join(rows)}}};\n"


def _op(prog: Program, i: int, op, index: dict, worst: dict, edge: int):
    """-> (the op's constant arrays, its bpg_op initializer)."""
    decls = [_arr("uint16_t", f"op{i}_in", [index[t] for t in op.inputs])]
    fields = {"kind": C_KERNELS[op.kind][0], "n_inputs": len(op.inputs), "inputs": f"op{i}_in",
              "output": index[op.output], "edge": edge, "weight": "NULL", "bias": "NULL", "shift": "NULL"}
    a = op.attrs
    if op.kind.startswith("conv"):
        decls += [_arr("int8_t", f"op{i}_w", prog.arrays[op.params["weight"]]),
                  _arr("int32_t", f"op{i}_b", prog.arrays[op.params["bias"]]), _shifts(f"op{i}_s", a["shift"])]
        g = plan.geometry(prog, op)
        fields.update(weight=f"op{i}_w", bias=f"op{i}_b", shift=f"op{i}_s",
                      **{k: "{" + ", ".join(map(str, v)) + "}" for k, v in g.items()})
    if op.kind == "add":
        decls.append(_shifts(f"op{i}_s", a["shift"]))
        fields.update(shift=f"op{i}_s", align="{" + ", ".join(map(str, a["align"])) + "}")
    if "clip" in a:
        fields["clip"] = "{" + ", ".join(map(_i32, a["clip"])) + "}"
    if op.kind == "reflect_pad":   # 2-D [t, l, b, r]; 1-D [l, r] runs along rows (time), width 1: (l, 0, r, 0)
        pad = list(a["padding"]) if len(a["padding"]) == 4 else [a["padding"][0], 0, a["padding"][1], 0]
        fields["pad"] = "{" + ", ".join(map(str, pad)) + "}"
    if "factor" in a:
        fields["factor"] = a["factor"]
    bound = f"; worst |intermediate| {worst[op.name]} (overflow proof)" if op.name in worst else ""
    sem = REGISTRY[op.kind].semantics.splitlines()[0]
    init = f"    /* {i}: {_comment(op.name)} ({op.kind}) {sem}{bound} */\n    {{" + \
        ", ".join(f".{k} = {v}" for k, v in fields.items()) + "},\n"
    return "".join(decls), init


def _graph(prog: Program, index: dict):
    """-> (producer op per tensor, each op's first edge, consumer CSR): what bpgan_stream.c walks."""
    ids = plan.tensor_ids(prog)
    producer = [-1] + list(range(len(prog.ops)))
    edge_of = np.cumsum([0] + [len(op.inputs) for op in prog.ops])
    edges = [[] for _ in ids]
    for i, op in enumerate(prog.ops):
        for j, t in enumerate(op.inputs):
            edges[index[t]].append(int(edge_of[i]) + j)
    start = np.cumsum([0] + [len(e) for e in edges])
    return producer, [int(e) for e in edge_of[:-1]], start, [e for es in edges for e in es], int(edge_of[-1])


def model_data(prog: Program, dims: int, arena: int, max_stream: int, max_pixels: int, max_frames: int,
               max_width: int) -> str:
    ids = plan.tensor_ids(prog)
    index = {t: i for i, t in enumerate(ids)}
    worst = prove_no_overflow(prog)
    prior = prog.prior()
    L = prior.shape[-1]
    rows = prior.reshape(-1, L).astype(np.int64)
    costs = ans.code_costs(prior, prog.prior_precision_bits())
    producer, first_edge, consumer_start, consumer_edge, n_edges = _graph(prog, index)
    left, rnd, right = (int(v) for v in shift_terms(prog.fmt(prog.outputs[0])[1] + 1))
    parts = [f"/* model_data.c: generated by bpgan.export.c99 from program {prog.content_hash}; do not edit. */\n",
             '#include "bpgan_internal.h"\n\n']
    inits = []
    for i, op in enumerate(prog.ops):
        decls, init = _op(prog, i, op, index, worst, first_edge[i])
        parts.append(decls)
        inits.append(init)
    parts.append("static const bpg_op ops[] = {\n" + "".join(inits) + "};\n")
    infos = [f"    {{{DTYPES[prog.fmt(t)[0]]}, {prog.tensors[t]['channels']}}},  /* {_comment(t)} */\n" for t in ids]
    parts.append("static const bpg_tensor_info tensors[] = {\n" + "".join(infos) + "};\n")
    cdf = np.concatenate([np.zeros((len(rows), 1), np.int64), np.cumsum(rows, 1)], 1)
    parts += [_arr("int8_t", "symbol_table", prog.symbols()), _arr("uint32_t", "freq", rows, suffix="u"),
              _arr("uint32_t", "cdf", cdf, suffix="u"), _arr("uint16_t", "cost", costs),
              _arr("uint32_t", "min_cost", costs.reshape(prior.shape[0], -1).min(1)),
              _arr("uint8_t", "model_hash", np.frombuffer(prog.model_hash(), np.uint8)),
              _arr("int16_t", "producer", producer), _arr("uint16_t", "consumer_start", consumer_start),
              _arr("uint16_t", "consumer_edge", consumer_edge)]
    parts.append(f"static bpg_ring rings[{len(ids)}];\nstatic int64_t asked[{max(n_edges, 1)}];\n"
                 f"static bpg_shape shapes[{len(ids)}];\n"
                 f"static uint64_t arena[{max(arena, 8) // 8}];   /* {arena} bytes: plan.arena_bytes */\n"
                 f"uint8_t bpg_stream_buffer[{max_stream + 1}];\n\n")
    fields = {"n_tensors": len(ids), "n_ops": len(prog.ops), "n_edges": n_edges, "tensors": "tensors", "ops": "ops",
              "input": 0, "output": index[prog.outputs[0]], "producer": "producer",
              "consumer_start": "consumer_start", "consumer_edge": "consumer_edge", "spatial_dims": dims,
              "downsample": prog.meta["config"]["downsample"], "max_pixels": f"{max_pixels}u",
              "max_frames": f"{max_frames}u", "max_width": f"{max_width}u", "audio_hop": bitstream.AUDIO_HOP,
              "max_symbols": f"{bitstream.MAX_SYMBOLS}u",
              "model_hash": "model_hash", "latent_channels": prior.shape[0], "num_symbols": L,
              "contexts": prior.shape[1] if prior.ndim == 3 else 0, "precision": prog.prior_precision_bits(),
              "symbol_table": "symbol_table", "freq": "freq", "cdf": "cdf", "cost": "cost", "min_cost": "min_cost",
              "out_frac_bits": prog.fmt(prog.outputs[0])[1],
              "pixel_one": f"{1 << max(prog.fmt(prog.outputs[0])[1], 0)}LL",
              "pixel_shift": f"{{{left}, {right}, {rnd}LL}}", "gl_iters": speech.GRIFFIN_LIM_ITERS,
              "nnls_iters": speech.NNLS_ITERS, "rings": "rings", "asked": "asked", "shapes": "shapes",
              "arena": "(uint8_t *)(void *)arena", "arena_bytes": f"{max(arena, 8) // 8 * 8}u",
              "max_stream_bytes": max_stream}
    parts.append("const bpg_model bpg_model_data = {\n" + "".join(f"    .{k} = {v},\n" for k, v in fields.items())
                 + "};\n")
    return "".join(parts)


def emit_c99(prog: Program, out_dir, max_pixels: Optional[int] = None, max_frames: Optional[int] = None,
             max_width: Optional[int] = None) -> C99Report:
    """Write the decoder sources into out_dir; -> the arena and stream limits it was planned for."""
    dims = check_program(prog)
    down = prog.meta["config"]["downsample"]
    max_pixels = int(max_pixels or DEFAULT_MAX_PIXELS)
    max_frames = int(max_frames or DEFAULT_MAX_FRAMES)
    max_width = min(int(max_width or DEFAULT_MAX_WIDTH), max_pixels)
    positions = max_pixels // down ** 2 if dims == 2 else max_frames // down
    if positions < 1 or (dims == 2 and max_width < down):
        raise ProgramError(f"c99 target: the limits admit no latent at all (stride {down})")
    probe = (3, 2) if dims == 2 else (2, 1)   # the output must be the latent times the stride (output_size)
    expect = (3 * down, 2 * down) if dims == 2 else (2 * down, 1)
    got = plan.shapes(prog, probe, dims)[prog.outputs[0]]
    if got != expect:
        raise ProgramError(f"c99 target: a {probe} latent decodes to {got}, not {expect} (stride {down})")
    caps = plan.ring_caps(prog, positions)   # a dry run per height: computed once for the arena and the report
    arena = plan.arena_bytes(prog, dims, positions, max_width // down, caps)
    head = bitstream.Header("image" if dims == 2 else "audio", bytes(16), 1, (1,) * dims, (0,) * dims,
                            (1,) * (dims + 1)).header_bytes()
    max_stream = head + 4 * (2 + prog.prior().shape[0] * positions)   # ANS reads at most 2 + one word per symbol
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_FILES:
        shutil.copyfile(RUNTIME / name, out_dir / name)
    (out_dir / "bpgan_speech_tables.c").write_text(speech_tables_c())
    (out_dir / "model_data.c").write_text(model_data(prog, dims, arena, max_stream, max_pixels, max_frames, max_width))
    rings = max(rows for name, rows in caps.items() if name != prog.inputs[0])
    return C99Report(out_dir, max(arena, 8) // 8 * 8, max_stream, max_pixels, max_frames, dims, max_width, rings)
