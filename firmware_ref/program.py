"""The integer program: the one format that every engine (reference, TVM, C99) reads.

On disk a program is two files side by side:
  program.json  the graph: format, input/output names, every tensor's integer format, the op list, content hash;
  program.npz   the constants: int8 weights, int32 biases, the int8 symbol table, and (for bitstreams)
                the entropy coder's prior: uint32 frequencies (C, L) or (C, contexts, L) summing to
                2**meta["prior_precision_bits"] per row, with meta["model_hash"] (hex) that streams carry.
A tensor's format is (dtype, frac_bits, channels): value = integer * 2**-frac_bits, dtype one of
formats.DTYPE_RANGE (int8, uint8; from format 2 also int16, int32). A program has one or more inputs
and outputs. The content hash is sha256 over the canonical JSON (hash field left out) and every
array's name, dtype, shape and bytes; it identifies the program and is checked on every load.

Ops and their attributes are defined once, in the registry (ops/); load_program checks every op
against its schema and runs the overflow proof, so whatever loads can be run by every engine.
Format 1 programs load as they are (their hash covers their own format string); save writes format 2.
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .formats import DTYPE_RANGE, FORMAT, MAX_FRAC_BITS, READABLE_FORMATS, V1_DTYPES, ProgramError  # noqa: F401
from .ops import CONV_KINDS, OP_KINDS, validate_op  # noqa: F401  (re-exported)

JSON_NAME, NPZ_NAME = "program.json", "program.npz"
PRIOR_KEY = "prior"
MAX_CHANNELS = 1 << 16


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
    tensors: Dict[str, dict]          # name -> {"dtype": ..., "frac_bits": int, "channels": int}
    ops: List[Op]
    arrays: Dict[str, np.ndarray]
    symbol_table: Optional[str] = None  # key of the int8 table: symbol j -> generator input integer
    meta: dict = field(default_factory=dict)
    format: str = FORMAT              # the version it was written in (the hash covers it)
    source: Optional[Path] = None     # the folder it was loaded from (engines find their libraries there)

    def graph_json(self) -> dict:
        return {"format": self.format, "inputs": self.inputs, "outputs": self.outputs, "tensors": self.tensors,
                "ops": [op.to_json() for op in self.ops], "symbol_table": self.symbol_table, "meta": self.meta}

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256(json.dumps(self.graph_json(), sort_keys=True, separators=(",", ":")).encode())
        for key in sorted(self.arrays):
            a = np.ascontiguousarray(self.arrays[key])
            h.update(f"{key}|{a.dtype.str}|{a.shape}".encode())
            h.update(a.tobytes())
        return "sha256:" + h.hexdigest()

    @property
    def spatial_dims(self) -> int:
        """1 for programs of 1-D convs (speech, NCW), else 2 (images, NCHW)."""
        return 1 if any(op.kind.endswith("1d") for op in self.ops) else 2

    @property
    def modality(self) -> str:
        """What its bitstreams hold: "lossless" (PCM, meta lossless), "audio" (1-D) or "image" (2-D)."""
        if isinstance(self.meta, dict) and "lossless" in self.meta:
            return "lossless"
        return "audio" if self.spatial_dims == 1 else "image"

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

    def prior_precision_bits(self) -> int:
        self.prior()
        return int(self.meta["prior_precision_bits"])

    def model_hash(self) -> bytes:
        if "model_hash" not in self.meta:
            raise ProgramError("this program has no model hash; export a run that has prior.npy")
        return bytes.fromhex(self.meta["model_hash"])

    def save(self, out_dir) -> Path:
        """Write program.json + program.npz in the current format (a format 1 program is migrated)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.format = FORMAT
        validate(self)
        doc = self.graph_json()
        doc["content_hash"] = self.content_hash
        np.savez(out_dir / NPZ_NAME, **self.arrays)
        (out_dir / JSON_NAME).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        return out_dir / JSON_NAME


def load_program(path) -> Program:
    """Read program.json (+ program.npz beside it) from a file or its folder; verify format, hash, schema, bounds."""
    path = Path(path)
    json_path = path / JSON_NAME if path.is_dir() else path
    if not json_path.is_file():
        raise ProgramError(f"no integer program at {path} (expected {JSON_NAME})")
    try:
        doc = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProgramError(f"{json_path} is not JSON ({getattr(e, 'msg', e)})") from None
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        got = doc.get("format") if isinstance(doc, dict) else None
        raise ProgramError(f"{json_path} has format {got!r}, this reader knows {', '.join(READABLE_FORMATS)}")
    npz = json_path.parent / NPZ_NAME
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ProgramError(f"{npz}: cannot read the program's arrays ({str(e).splitlines()[0]})") from None
    try:
        prog = Program(inputs=doc["inputs"], outputs=doc["outputs"], tensors=doc["tensors"],
                       ops=[Op(**o) for o in doc["ops"]], arrays=arrays, symbol_table=doc.get("symbol_table"),
                       meta=doc.get("meta", {}), format=doc["format"], source=json_path.parent)
        hashed = prog.content_hash
    except (KeyError, TypeError, AttributeError) as e:
        raise ProgramError(f"{json_path}: malformed program ({type(e).__name__}: {e})") from None
    if hashed != doc.get("content_hash"):
        raise ProgramError(f"{json_path}: content hash mismatch (files edited or from two different exports)")
    validate(prog)
    return prog


def validate(prog: Program) -> None:
    """Tensors, every op against the registry, outputs, symbol table, prior, the overflow proof; else ProgramError."""
    from .bounds import prove_no_overflow

    if not _str_list(prog.inputs) or not _str_list(prog.outputs) or not isinstance(prog.tensors, dict):
        raise ProgramError("program needs lists of input and output names and a tensor table")
    known = set()
    for name in prog.inputs:
        _check_tensor(prog, name)
        known.add(name)
    for op in prog.ops:
        where = f"op {getattr(op, 'name', '?')!r} ({getattr(op, 'kind', '?')})"
        if not _str_list(op.inputs) or not isinstance(op.output, str):
            raise ProgramError(f"{where}: inputs must be a list of tensor names and output one name")
        missing = [t for t in op.inputs if t not in known]
        if missing:
            raise ProgramError(f"{where}: reads undefined tensor(s) {missing}")
        if op.output in known:
            raise ProgramError(f"{where}: writes tensor {op.output!r} a second time")
        _check_tensor(prog, op.output)
        known.add(op.output)
        validate_op(prog, op)
    for name in prog.outputs:
        if name not in known:
            raise ProgramError(f"output {name!r} is never computed")
    if prog.symbol_table is not None:
        table = prog.arrays.get(prog.symbol_table)
        if table is None or table.dtype != np.int8 or table.ndim != 1:
            raise ProgramError("symbol table must be a 1-D int8 array of the program")
    if PRIOR_KEY in prog.arrays:
        _check_prior(prog)
    prove_no_overflow(prog)


def _str_list(v) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(e, str) for e in v)


def _check_tensor(prog: Program, name: str) -> None:
    t = prog.tensors.get(name)
    dtypes = V1_DTYPES if prog.format == READABLE_FORMATS[0] else tuple(DTYPE_RANGE)
    if not isinstance(t, dict) or t.get("dtype") not in dtypes:
        raise ProgramError(f"tensor {name!r}: dtype must be one of {', '.join(dtypes)} in {prog.format}, got "
                           f"{t.get('dtype') if isinstance(t, dict) else t!r}")
    fb, ch = t.get("frac_bits"), t.get("channels")
    if not isinstance(fb, int) or isinstance(fb, bool) or abs(fb) > MAX_FRAC_BITS:
        raise ProgramError(f"tensor {name!r}: frac_bits must be an integer in [-{MAX_FRAC_BITS}, {MAX_FRAC_BITS}]")
    if not isinstance(ch, int) or isinstance(ch, bool) or not 1 <= ch <= MAX_CHANNELS:
        raise ProgramError(f"tensor {name!r}: channels must be an integer in [1, {MAX_CHANNELS}], got {ch!r}")


def _check_prior(prog: Program) -> None:
    prior = prog.arrays[PRIOR_KEY]
    bits = prog.meta.get("prior_precision_bits") if isinstance(prog.meta, dict) else None
    if not isinstance(bits, int) or not 8 <= bits <= 24:
        raise ProgramError(f"meta.prior_precision_bits must be an integer in [8, 24], got {bits!r}")
    if prior.dtype != np.uint32 or prior.ndim not in (2, 3) or prior.shape[-1] < 2 or prior.min(initial=1) < 1 \
            or np.any(prior.sum(-1, dtype=np.int64) != 1 << bits):
        raise ProgramError("prior must be uint32 frequencies >= 1 summing to 2**prior_precision_bits per row")
    if prog.symbol_table is not None and prior.shape[-1] != len(prog.arrays[prog.symbol_table]):
        raise ProgramError(f"prior codes {prior.shape[-1]} symbols, the symbol table has "
                           f"{len(prog.arrays[prog.symbol_table])}")
    if prior.ndim == 3 and prior.shape[1] != prior.shape[-1] * (prior.shape[-1] + 1):
        raise ProgramError("a context prior needs (L + 1) * L contexts per channel")
    if "model_hash" in prog.meta:
        mh = prog.meta["model_hash"]
        if not isinstance(mh, str) or len(mh) != 32 or any(c not in "0123456789abcdef" for c in mh):
            raise ProgramError("meta.model_hash must be 32 lowercase hex digits")
