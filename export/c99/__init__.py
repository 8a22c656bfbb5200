"""The standalone C99 decoder target: bpgan-export MODEL --target c99 --out DIR writes DIR/c99/.

Design: the project generates plain C from the integer program, in the style of TFLite Micro's
reference kernels: one C function per op kind (runtime/bpgan_ops.c), its integer semantics and
overflow argument in a comment, the rounding rule in one inline function, and the model as `const`
tables (model_data.c, emitted here). The TVM `c` target is not used because what it emits runs only
behind the TVM FFI calling convention and the Relax VM bytecode, neither of which exists on a
microcontroller; the program format is simple enough that a port of firmware_ref is smaller, has
no runtime dependency, and can be checked line by line against the NumPy specification.

  emit.py     program -> DIR/c99 (runtime copied verbatim, model_data.c, Makefile); C_KERNELS
  plan.py     shapes and the first-fit-by-liveness arena plan (the same algorithm the C runs per stream)
  native.py   build with a C compiler, run a stream, the reference's expected output bytes
  runtime/    the C sources and the Makefile, copied verbatim
"""
from .emit import C_KERNELS, C99Report, emit_c99

__all__ = ["C_KERNELS", "C99Report", "emit_c99"]
