"""The op registry: each op kind is defined once, as an OpSpec, in the module of its reference kernel.

An OpSpec holds the attribute schema (names, types, ranges, lengths), the inputs and params it
takes, its output-format rule (`check`), its reference kernel (`kernel`, integer semantics in one
line) and its overflow bound (`bound`, None when the op does no arithmetic). load_program runs
validate_op on every op, so a malformed program is one ProgramError line naming the op and the
field, before any engine sees it; engines (TVM lowering, C99 emitter) look kinds up here.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np

from ..formats import DTYPE_RANGE, ProgramError

Length = Union[None, int, Callable]   # None: a scalar int; int: a fixed-length list; f(prog, op) -> int


@dataclass(frozen=True)
class Attr:
    name: str
    lo: int
    hi: int
    length: Length = None


@dataclass(frozen=True)
class OpSpec:
    kind: str
    semantics: str                      # the integer semantics in one line (docs, C comments)
    inputs: Tuple[int, int]             # (min, max) number of input tensors
    attrs: Tuple[Attr, ...]
    kernel: Callable                    # kernel(prog, op, xs) -> output integers in the output dtype
    check: Optional[Callable] = None    # check(prog, op, where) -> None, raises ProgramError
    bound: Optional[Callable] = None    # bound(prog, op) -> worst |intermediate|, raises AccumulatorOverflow
    params: Tuple[str, ...] = ()        # roles of the constant arrays it reads (weight, bias)


REGISTRY: Dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    if spec.kind in REGISTRY:
        raise ValueError(f"op kind {spec.kind!r} registered twice")
    REGISTRY[spec.kind] = spec
    return spec


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_attr(prog, op, attr: Attr, where: str) -> None:
    if attr.name not in op.attrs:
        raise ProgramError(f"{where}: missing attribute {attr.name!r}")
    v = op.attrs[attr.name]
    if attr.length is None:
        if not _is_int(v) or not attr.lo <= v <= attr.hi:
            raise ProgramError(f"{where}: attribute {attr.name!r} must be an integer in [{attr.lo}, {attr.hi}], got {v!r}")
        return
    n = attr.length if isinstance(attr.length, int) else attr.length(prog, op)
    if not isinstance(v, list) or len(v) != n:
        raise ProgramError(f"{where}: attribute {attr.name!r} must be a list of {n} integers, got {v!r}")
    if not all(_is_int(e) and attr.lo <= e <= attr.hi for e in v):
        raise ProgramError(f"{where}: attribute {attr.name!r} needs integers in [{attr.lo}, {attr.hi}], got {v!r}")


def validate_op(prog, op) -> None:
    """One op against its spec: kind, arity, params, attribute schema, then its format rule."""
    where = f"op {op.name!r} ({op.kind})"
    spec = REGISTRY.get(op.kind)
    if spec is None:
        raise ProgramError(f"{where}: unknown op kind; this reader knows {', '.join(sorted(REGISTRY))}")
    lo, hi = spec.inputs
    if not lo <= len(op.inputs) <= hi:
        raise ProgramError(f"{where}: takes {lo if lo == hi else f'{lo} to {hi}'} inputs, got {len(op.inputs)}")
    if not isinstance(op.attrs, dict) or not isinstance(op.params, dict):
        raise ProgramError(f"{where}: attrs and params must be objects")
    for role in spec.params:
        key = op.params.get(role)
        if key not in prog.arrays:
            raise ProgramError(f"{where}: param {role!r} names no array of the program ({key!r})")
    extra = set(op.params) - set(spec.params)
    if extra:
        raise ProgramError(f"{where}: unknown param(s) {sorted(extra)}")
    for attr in spec.attrs:
        _check_attr(prog, op, attr, where)
    extra = set(op.attrs) - {a.name for a in spec.attrs}
    if extra:
        raise ProgramError(f"{where}: unknown attribute(s) {sorted(extra)}")
    if spec.check is not None:
        spec.check(prog, op, where)


# Helpers the op modules share.

def out_range(prog, op) -> Tuple[int, int]:
    return DTYPE_RANGE[prog.fmt(op.output)[0]]


def check_clip(prog, op, where: str) -> None:
    """clip = [lo, hi] with lo <= hi inside the output dtype's range."""
    lo, hi = op.attrs["clip"]
    dlo, dhi = out_range(prog, op)
    if not dlo <= lo <= hi <= dhi:
        raise ProgramError(f"{where}: attribute 'clip' {op.attrs['clip']} does not fit the output dtype "
                           f"{prog.fmt(op.output)[0]} [{dlo}, {dhi}]")


def check_same_format(prog, op, where: str, channels: int) -> None:
    """Layout ops keep the input's (dtype, frac_bits); the output has `channels` channels."""
    if prog.fmt(op.output) != prog.fmt(op.inputs[0]):
        raise ProgramError(f"{where}: output format {prog.fmt(op.output)} differs from the input's "
                           f"{prog.fmt(op.inputs[0])}")
    check_channels(prog, op, where, channels)


def check_channels(prog, op, where: str, channels: int) -> None:
    have = prog.tensors[op.output].get("channels")
    if have != channels:
        raise ProgramError(f"{where}: output tensor declares {have} channels, the op makes {channels}")


def channels(prog, name: str) -> int:
    return int(prog.tensors[name]["channels"])


def as_dtype(y: np.ndarray, prog, op) -> np.ndarray:
    return y.astype(prog.fmt(op.output)[0])
