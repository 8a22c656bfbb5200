"""Bit-exact reference decoder in plain NumPy (no torch, no tvm, no onnx): the golden model.

formats.py    tensor dtypes and program format versions (a leaf)
rounding.py   the contract's one rounding rule
program.py    the integer program format (read by export/ too); ops/ the op registry, one kernel per op
decoder.py    runs a program; bounds.py the int32 overflow proof
bitstream.py  the .bpg layout; ans.py its ANS decoder and work rules
bitstream_decode.py  the one decode path: .bpg -> output integers, through any engine
"""
from .bitstream import BitstreamError
from .bitstream_decode import ENGINES, StreamModel, decode_bitstream, decode_with, engine_for
from .bounds import AccumulatorOverflow, prove_no_overflow
from .builder import ProgramBuilder
from .decoder import decode_latent, run_program, symbols_to_latent
from .formats import FORMAT
from .ops import REGISTRY
from .program import Op, Program, ProgramError, load_program

__all__ = ["BitstreamError", "ENGINES", "StreamModel", "decode_bitstream", "decode_with", "engine_for",
           "AccumulatorOverflow", "prove_no_overflow", "ProgramBuilder", "decode_latent", "run_program",
           "symbols_to_latent", "FORMAT", "REGISTRY", "Op", "Program", "ProgramError", "load_program"]
