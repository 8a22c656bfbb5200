"""The TVM path: integer program -> Relax -> one library per target (llvm, aarch64, c).

lower     the program's ops lowered to Relax/TIR (LOWERINGS == the op registry), compile_program, TvmDecoder
isa       the kernel families (vnni, avx2, i8mm, dotprod, generic), target features, the CPU-flag sidecar
intrin    what every dot-product tensor intrinsic computes, written once
vnni, avx2, neon   how each ISA family computes it (its instructions)
kernels, schedule, blocked   the shared structure: packing and phase plans, tiling, the blocked lowering
qemu      running the aarch64 library under qemu-aarch64 (qemu_loader/loader.c)
"""
