"""The C decoder's memory: tensor shapes for one latent, each tensor's ring of rows, the static arena.

The C decoder streams (runtime/bpgan_stream.c, the port of firmware_ref/stripes.py RowCache): output
rows are pulled one at a time and every tensor keeps a ring of the rows its consumers can still ask
for. Its arena is [latent | side | rings, int32 row buffer] (runtime/bpgan_plan.c bpg_plan, which sizes
each ring by a dry run of the schedule per stream). Here the same layout sizes the static arena: every term at its largest over the streams
the export's limits let through (the widest latent, the most latent positions, each ring's largest
window over heights), so a stream within them fits; the C still refuses one that does not.
Sides: an image's one row of pixels; speech's streamed back end (speech_tables.speech_stream_bytes, the
same whatever the duration), one mel frame and one chunk of PCM.
"""
from typing import Dict, List, Optional, Tuple

import numpy as np

from bpgan.firmware_ref.formats import DTYPE_RANGE
from bpgan.firmware_ref.program import ProgramError
from bpgan.firmware_ref.stripes import heights_of, ring_rows

from bpgan.firmware_ref.speech import GRIFFIN_LIM_ITERS, N_MELS

from .speech_tables import SPEECH_MAX_CHUNK, speech_stream_bytes

ALIGN = 8   # bpgan_internal.h BPG_ALIGN
DTYPE_BYTES = {name: np.dtype(name).itemsize for name in DTYPE_RANGE}
Shape = Tuple[int, int]   # (rows, columns): image rows and columns; speech time steps and 1
RING_HEIGHTS = 16         # rings are sized over latent heights 1..16 and the largest (windows settle within a few)


def tensor_ids(prog) -> List[str]:
    return [prog.inputs[0]] + [op.output for op in prog.ops]


def geometry(prog, op) -> dict:
    """A conv's kernel, stride, padding, output padding in 2-D form; 1-D convs run along rows (time), width 1."""
    w = prog.arrays[op.params["weight"]]
    a = op.attrs
    if op.kind.endswith("1d"):
        return {"kernel": [int(w.shape[2]), 1], "stride": [a["stride"][0], 1],
                "pad": [a["padding"][0], 0, a["padding"][1], 0], "out_pad": [a.get("output_padding", [0])[0], 0]}
    return {"kernel": [int(w.shape[2]), int(w.shape[3])], "stride": list(a["stride"]), "pad": list(a["padding"]),
            "out_pad": list(a.get("output_padding", [0, 0]))}


def shapes(prog, latent: Shape, dims: int) -> Dict[str, Shape]:
    """Every tensor's (rows, columns) for a latent of that size (stripes.heights_of, the one size rule)."""
    rows = heights_of(prog, latent[0])
    cols = heights_of(prog, latent[1], axis=1) if dims == 2 else {name: 1 for name in rows}
    return {name: (rows[name], cols[name]) for name in rows}


def _round_up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _row_bytes(prog, name: str, cols: int) -> int:
    return prog.tensors[name]["channels"] * cols * DTYPE_BYTES[prog.fmt(name)[0]]


def _row_columns(prog, op, width: int) -> int:
    """A conv's int32 row buffer: the output width, for a transposed conv in whole stride phases."""
    s = geometry(prog, op)["stride"][1]
    return -(-width // s) * s if op.kind.startswith("conv_transpose") else width


def ring_caps(prog, max_rows: int) -> Dict[str, int]:
    """Each tensor's largest window of rows over latent heights 1..RING_HEIGHTS and max_rows."""
    caps: Dict[str, int] = {}
    for h in sorted({*range(1, min(RING_HEIGHTS, max_rows) + 1), max_rows}):
        try:
            found = ring_rows(prog, h)
        except ProgramError:   # a latent too small for the program: no stream of that height decodes
            continue
        for name, rows in found.items():
            caps[name] = max(caps.get(name, 0), rows)
    return caps


def layout_bytes(prog, latent_bytes: int, side: int, caps: Dict[str, int], cols: Dict[str, int]) -> int:
    """bpg_plan's arena: latent + side + rings + row buffer, each region 8-byte aligned."""
    rings = sum(_round_up(caps.get(name, 0) * _row_bytes(prog, name, cols[name])) for name in tensor_ids(prog)[1:])
    row = _round_up(4 * max([_row_columns(prog, op, cols[op.output]) for op in prog.ops
                             if op.kind.startswith("conv")] + [1]))
    return _round_up(latent_bytes) + _round_up(side) + rings + row


def arena_bytes(prog, dims: int, max_positions: int, max_latent_cols: int = 1,
                caps: Optional[Dict[str, int]] = None) -> int:
    """The static arena for streams of at most max_positions latent positions (and, images, max_latent_cols
    latent columns; speech: max_positions latent steps). caps: ring_caps(prog, max_positions) when the
    caller has them already."""
    caps = caps if caps is not None else ring_caps(prog, max_positions)
    latent_bytes = prog.tensors[prog.inputs[0]]["channels"] * max_positions
    out = prog.outputs[0]
    if dims == 2:
        cols = heights_of(prog, max_latent_cols, axis=1)
        return layout_bytes(prog, latent_bytes, cols[out] * prog.tensors[out]["channels"], caps, cols)
    return layout_bytes(prog, latent_bytes, speech_side_bytes(), caps, {name: 1 for name in tensor_ids(prog)})


def speech_side_bytes() -> int:
    """bpgan_decoder.c's speech side: the back end's state, one mel frame, one chunk of PCM16."""
    return _round_up(speech_stream_bytes(GRIFFIN_LIM_ITERS)) + _round_up(N_MELS) + 2 * SPEECH_MAX_CHUNK
