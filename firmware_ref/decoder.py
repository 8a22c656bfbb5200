"""Run an integer Program in NumPy: the golden decoder that every other engine must equal bit for bit."""
from typing import Dict, Union

import numpy as np

from .kernels import in_range
from .ops import REGISTRY
from .program import Op, Program, ProgramError


def run_op(prog: Program, op: Op, env: Dict[str, np.ndarray]) -> np.ndarray:
    return REGISTRY[op.kind].kernel(prog, op, [env[name] for name in op.inputs])


def check_input(prog: Program, name: str, x) -> np.ndarray:
    """An input array -> the program's dtype; ProgramError (one line) for floats, values out of range, wrong channels."""
    x = np.asarray(x)
    dtype = prog.fmt(name)[0]
    if not np.issubdtype(x.dtype, np.integer):
        raise ProgramError(f"input {name!r} must hold integers ({dtype}), got {x.dtype}")
    if not in_range(x, dtype):
        raise ProgramError(f"input {name!r} has values in [{x.min()}, {x.max()}], outside {dtype}")
    if x.ndim < 3 or x.shape[1] != prog.tensors[name]["channels"]:
        raise ProgramError(f"input {name!r} has shape {x.shape}, program expects (N, "
                           f"{prog.tensors[name]['channels']}, ...)")
    return x.astype(dtype)


def run_program(prog: Program, inputs: Union[np.ndarray, Dict[str, np.ndarray]], keep_all: bool = False):
    """-> {output name: array} (or every tensor with keep_all). Inputs must hold integers in their dtype's range."""
    if not isinstance(inputs, dict):
        if len(prog.inputs) != 1:
            raise ProgramError(f"this program takes {len(prog.inputs)} inputs {prog.inputs}; pass a dict")
        inputs = {prog.inputs[0]: inputs}
    missing = [name for name in prog.inputs if name not in inputs]
    if missing:
        raise ProgramError(f"missing program input(s) {missing}")
    env = {name: check_input(prog, name, inputs[name]) for name in prog.inputs}
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
