"""Run an integer Program in NumPy: the golden decoder that every other engine must equal bit for bit."""
from typing import Dict, Union

import numpy as np

from . import kernels as K
from .program import Op, Program, ProgramError

_CONV_ACC = {"conv2d": K.conv2d_acc, "conv1d": K.conv1d_acc,
             "conv_transpose2d": K.conv_transpose2d_acc, "conv_transpose1d": K.conv_transpose1d_acc}


def run_op(prog: Program, op: Op, env: Dict[str, np.ndarray]) -> np.ndarray:
    xs = [env[name] for name in op.inputs]
    dtype, a = prog.fmt(op.output)[0], op.attrs
    if op.kind in _CONV_ACC:
        w, b = prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]]
        extra = (a["output_padding"],) if "transpose" in op.kind else ()
        acc = _CONV_ACC[op.kind](xs[0], w, b, a["stride"], a["padding"], *extra)
        return K.requantize(acc, a["shift"], a["clip"], dtype)
    if op.kind == "add":
        return K.add(xs[0], xs[1], a["align"], a["shift"], a["clip"], dtype)
    if op.kind == "clip":
        return K.clip(xs[0], a["clip"], dtype)
    if op.kind == "pixel_shuffle":
        return K.pixel_shuffle(xs[0], a["factor"])
    if op.kind == "upsample_nearest":
        return K.upsample_nearest(xs[0], a["factor"])
    if op.kind == "concat":
        return K.concat(xs, a["axis"])
    raise ProgramError(f"op {op.name!r}: kind {op.kind!r} has no reference kernel")


def run_program(prog: Program, inputs: Union[np.ndarray, Dict[str, np.ndarray]], keep_all: bool = False):
    """-> {output name: array} (or every tensor with keep_all). Inputs must already hold their dtype's integers."""
    if not isinstance(inputs, dict):
        inputs = {prog.inputs[0]: inputs}
    env = {}
    for name in prog.inputs:
        x = np.asarray(inputs[name])
        dtype = prog.fmt(name)[0]
        if x.dtype != np.dtype(dtype) and not K.in_range(x, dtype):
            raise ProgramError(f"input {name!r} has values outside {dtype}")
        if x.shape[1] != prog.tensors[name]["channels"]:
            raise ProgramError(f"input {name!r} has {x.shape[1]} channels, program expects "
                               f"{prog.tensors[name]['channels']}")
        env[name] = x.astype(dtype)
    for op in prog.ops:
        env[op.output] = run_op(prog, op, env)
    return env if keep_all else {name: env[name] for name in prog.outputs}


def symbols_to_latent(prog: Program, symbols: np.ndarray) -> np.ndarray:
    """latent[...] = table[symbols[...]]: the generator's int8 input for each symbol index."""
    table = prog.symbols()
    symbols = np.asarray(symbols)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= len(table)):
        raise ProgramError(f"symbol indices must lie in [0, {len(table) - 1}]")
    return table[symbols.astype(np.int64)]


def decode_latent(prog: Program, symbols_or_latent: np.ndarray) -> np.ndarray:
    """Generator output integers for one latent. int8 arrays are the latent itself; any other
    integer dtype holds symbol indices, mapped through the program's symbol table first."""
    x = np.asarray(symbols_or_latent)
    if not np.issubdtype(x.dtype, np.integer):
        raise ProgramError(f"latent must be integers (int8 latent or symbol indices), got {x.dtype}")
    if x.dtype != np.int8:
        x = symbols_to_latent(prog, x)
    return run_program(prog, x)[prog.outputs[0]]
