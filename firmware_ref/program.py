"""The integer program: the one format that the TVM lowering and the reference decoder both read.

On disk a program is two files side by side:
  program.json  the graph: format, input/output names, every tensor's integer format, the op list, content hash;
  program.npz   the constants: int8 weights, int32 biases, the int8 symbol table, and (for bitstreams)
                the entropy coder's prior: uint32 frequencies (C, L) or (C, contexts, L) summing to
                2**meta["prior_precision_bits"] per row, with meta["model_hash"] (hex) that streams carry.
A tensor's format is (dtype, frac_bits): value = integer * 2**-frac_bits, dtype uint8 or int8.
The content hash is sha256 over the canonical JSON (hash field left out) and every array's
name, dtype, shape and bytes; it identifies the model and is checked on every load.

Ops (NCHW for 2-D, NCW for 1-D; integer semantics in firmware_ref/kernels.py):
  conv2d, conv_transpose2d, conv1d, conv_transpose1d  params weight/bias, attrs stride, padding, shift[O], clip
  add             attrs align [la, lb] (left shifts to the common scale), shift, clip
  clip            attrs clip
  pixel_shuffle   attrs factor   (ONNX DepthToSpace CRD = torch PixelShuffle)
  upsample_nearest attrs factor
  concat          attrs axis (inputs share one format)
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

FORMAT = "bpgan-intprog/1"
JSON_NAME, NPZ_NAME = "program.json", "program.npz"
DTYPE_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}
PRIOR_KEY = "prior"
CONV_KINDS = ("conv2d", "conv_transpose2d", "conv1d", "conv_transpose1d")
OP_KINDS = CONV_KINDS + ("add", "clip", "pixel_shuffle", "upsample_nearest", "concat")


class ProgramError(ValueError):
    """A program file that is malformed, tampered with, or outside the integer contract."""


@dataclass
class Op:
    kind: str
    name: str             # the layer name it came from, used in every error message
    inputs: List[str]
    output: str
    attrs: dict = field(default_factory=dict)
    params: Dict[str, str] = field(default_factory=dict)   # role -> key in Program.arrays

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "inputs": list(self.inputs), "output": self.output,
                "attrs": self.attrs, "params": self.params}


@dataclass
class Program:
    inputs: List[str]
    outputs: List[str]
    tensors: Dict[str, dict]          # name -> {"dtype": "uint8"|"int8", "frac_bits": int, "channels": int}
    ops: List[Op]
    arrays: Dict[str, np.ndarray]
    symbol_table: Optional[str] = None  # key of the int8 table: symbol j -> generator input integer
    meta: dict = field(default_factory=dict)

    def graph_json(self) -> dict:
        return {"format": FORMAT, "inputs": self.inputs, "outputs": self.outputs, "tensors": self.tensors,
                "ops": [op.to_json() for op in self.ops], "symbol_table": self.symbol_table, "meta": self.meta}

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256(json.dumps(self.graph_json(), sort_keys=True, separators=(",", ":")).encode())
        for key in sorted(self.arrays):
            a = np.ascontiguousarray(self.arrays[key])
            h.update(f"{key}|{a.dtype.str}|{a.shape}".encode())
            h.update(a.tobytes())
        return "sha256:" + h.hexdigest()

    def fmt(self, tensor: str):
        t = self.tensors[tensor]
        return t["dtype"], t["frac_bits"]

    def symbols(self) -> np.ndarray:
        if self.symbol_table is None:
            raise ProgramError("this program has no symbol table; pass the int8 latent instead")
        return self.arrays[self.symbol_table]

    def prior(self) -> np.ndarray:
        """The integer frequency table the bitstreams of this model are coded with."""
        if PRIOR_KEY not in self.arrays:
            raise ProgramError("this program has no prior table; export a run that has prior.npy to decode bitstreams")
        return self.arrays[PRIOR_KEY]

    def model_hash(self) -> bytes:
        if "model_hash" not in self.meta:
            raise ProgramError("this program has no model hash; export a run that has prior.npy")
        return bytes.fromhex(self.meta["model_hash"])

    def save(self, out_dir) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        validate(self)
        doc = self.graph_json()
        doc["content_hash"] = self.content_hash
        np.savez(out_dir / NPZ_NAME, **self.arrays)
        (out_dir / JSON_NAME).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        return out_dir / JSON_NAME


def load_program(path) -> Program:
    """Read program.json (+ program.npz beside it) from a file or its folder; verify format and hash."""
    path = Path(path)
    json_path = path / JSON_NAME if path.is_dir() else path
    if not json_path.is_file():
        raise ProgramError(f"no integer program at {path} (expected {JSON_NAME})")
    try:
        doc = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise ProgramError(f"{json_path} is not JSON ({e.msg} at line {e.lineno})") from None
    if doc.get("format") != FORMAT:
        raise ProgramError(f"{json_path} has format {doc.get('format')!r}, this reader knows {FORMAT!r}")
    with np.load(json_path.parent / NPZ_NAME, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    prog = Program(inputs=doc["inputs"], outputs=doc["outputs"], tensors=doc["tensors"],
                   ops=[Op(**o) for o in doc["ops"]], arrays=arrays, symbol_table=doc.get("symbol_table"),
                   meta=doc.get("meta", {}))
    if prog.content_hash != doc.get("content_hash"):
        raise ProgramError(f"{json_path}: content hash mismatch (files edited or from two different exports)")
    validate(prog)
    return prog


def validate(prog: Program) -> None:
    """Every op reads defined tensors, weights/biases have contract dtypes and ranges; else ProgramError."""
    known = set(prog.inputs)
    for name in known:
        _check_fmt(prog, name)
    for op in prog.ops:
        where = f"op {op.name!r} ({op.kind})"
        if op.kind not in OP_KINDS:
            raise ProgramError(f"{where}: unknown op kind; this reader knows {', '.join(OP_KINDS)}")
        missing = [t for t in op.inputs if t not in known]
        if missing:
            raise ProgramError(f"{where}: reads undefined tensor(s) {missing}")
        _check_fmt(prog, op.output)
        known.add(op.output)
        if op.kind in CONV_KINDS:
            w, b = prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]]
            if w.dtype != np.int8 or w.min(initial=0) < -127:
                raise ProgramError(f"{where}: weights must be int8 in [-127, 127]")
            if b.dtype != np.int32:
                raise ProgramError(f"{where}: bias must be int32")
        if op.kind == "concat" and len({prog.fmt(t) for t in op.inputs}) != 1:
            raise ProgramError(f"{where}: concat inputs must share one integer format")
    for name in prog.outputs:
        if name not in known:
            raise ProgramError(f"output {name!r} is never computed")
    if prog.symbol_table is not None and prog.arrays[prog.symbol_table].dtype != np.int8:
        raise ProgramError("symbol table must be int8")
    if PRIOR_KEY in prog.arrays:
        prior = prog.arrays[PRIOR_KEY]
        total = 1 << int(prog.meta.get("prior_precision_bits", -1))
        if prior.dtype != np.uint32 or prior.min(initial=1) < 1 or np.any(prior.sum(-1, dtype=np.int64) != total):
            raise ProgramError("prior must be uint32 frequencies >= 1 summing to 2**prior_precision_bits per row")


def _check_fmt(prog: Program, name: str) -> None:
    t = prog.tensors.get(name)
    if t is None or t.get("dtype") not in DTYPE_RANGE or not isinstance(t.get("frac_bits"), int):
        raise ProgramError(f"tensor {name!r}: needs dtype uint8|int8 and integer frac_bits, got {t}")
