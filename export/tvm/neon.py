"""aarch64 exact int8 dot products as TVM tensor intrinsics: USDOT (i8mm) and SDOT (dotprod) -> int32.

Both add, per int32 lane of a 128-bit register, four 8-bit products to the accumulator with no
intermediate saturation, so they are exact; a 16-lane accumulator is four q registers, so one step is
four instructions. The kernels keep the VNNI layout (group 4, int8 weights):
  i8mm     usdot: uint8 activations x int8 weights, the VNNI arithmetic exactly (Armv8.6-A i8mm:
           Cortex-A510/A710/X2 and later, Neoverse V1/N2, Graviton3, Apple M2)
  dotprod  sdot: int8 x int8, so a uint8 (relu4) input enters the kernel as x - 128 (pad value -128)
           and the bias absorbs 128 * sum(w) (tvm.kernels.plan_phase_conv; Armv8.2-A dotprod:
           Cortex-A55/A76/A78, Neoverse N1, Raspberry Pi 5, Graviton2)
Verified under qemu-aarch64 (its default cpu, max, has both); speed cannot be measured there.
  OC16   C[16] += A[4] . B[16, 4]    16 output channels of one pixel (A broadcast: activations)
  PIX16  C[16] += A[16, 4] . B[4]    16 pixels of one output channel (B broadcast: weights)
"""
from tvm.script import tirx as T

from .intrin import oc16_desc, pix16_desc, register

DOTS = {"i8mm": ("llvm.aarch64.neon.usdot", "uint8"), "dotprod": ("llvm.aarch64.neon.sdot", "int8")}
INTRINSICS = {name: (f"bpgan_neon_{name}_oc16x4", f"bpgan_neon_{name}_pix16x4") for name in DOTS}


def _impls(dot: str, a_dtype: str):
    @T.prim_func(s_tir=True)
    def oc16(A: T.Buffer((4,), a_dtype, offset_factor=1), B: T.Buffer((16, 4), "int8", offset_factor=1),
             C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:4], B[0:16, 0:4])
            T.writes(C[0:16])
            a = T.reinterpret(T.broadcast(T.reinterpret(A.vload([0], a_dtype + "x4"), dtype="int32"), 4),
                              dtype=a_dtype + "x16")
            for q in T.unroll(4):   # output channels 4q .. 4q + 3: one q register each
                C[T.ramp(q * 4, 1, 4)] = T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id(dot), C.vload([q * 4], "int32x4"), a, B.vload([q * 4, 0], "int8x16"),
                    dtype="int32x4")

    @T.prim_func(s_tir=True)
    def pix16(A: T.Buffer((16, 4), a_dtype, offset_factor=1), B: T.Buffer((4,), "int8", offset_factor=1),
              C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:16, 0:4], B[0:4])
            T.writes(C[0:16])
            b = T.reinterpret(T.broadcast(T.reinterpret(B.vload([0], "int8x4"), dtype="int32"), 4), dtype="int8x16")
            for q in T.unroll(4):   # pixels 4q .. 4q + 3
                C[T.ramp(q * 4, 1, 4)] = T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id(dot), C.vload([q * 4], "int32x4"), A.vload([q * 4, 0], a_dtype + "x16"),
                    b, dtype="int32x4")
    return oc16, pix16


for _name, (_dot, _a) in DOTS.items():
    _oc, _pix = _impls(_dot, _a)
    register((INTRINSICS[_name][0], oc16_desc(4, _a, "int8"), _oc), (INTRINSICS[_name][1], pix16_desc(4, _a, "int8"), _pix))
