"""Bit-exact reference decoder in plain NumPy (no torch, no tvm, no onnx): the golden model.

program.py defines the integer program format (read by export/ too); kernels.py holds one function
per op; decoder.py runs a program; bounds.py is the int32 overflow proof; bitstream.py is the .bpg layout,
ans.py its ANS decoder, bitstream_decode.py a .bpg -> output integers end to end.
"""
from .bitstream import BitstreamError
from .bitstream_decode import decode_bitstream
from .bounds import AccumulatorOverflow, prove_no_overflow
from .builder import ProgramBuilder
from .decoder import decode_latent, run_program, symbols_to_latent
from .program import FORMAT, Op, Program, ProgramError, load_program

__all__ = ["BitstreamError", "decode_bitstream", "AccumulatorOverflow", "prove_no_overflow", "ProgramBuilder",
           "decode_latent", "run_program", "symbols_to_latent", "FORMAT", "Op", "Program", "ProgramError",
           "load_program"]
