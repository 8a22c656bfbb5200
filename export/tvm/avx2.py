"""AVX2 exact integer dot products as TVM tensor intrinsics (int16 x int16 pairs -> int32, no saturation).

vpmaddwd (llvm.x86.avx2.pmadd.wd) multiplies 16 int16 pairs and adds adjacent products into 8 int32
lanes. Our operands are uint8 / int8 values widened to int16, so each product is at most 255 * 128
and a pair sum at most 2 * 255 * 128 = 65280 in magnitude: exact in int32, and the int32 add that
follows is the accumulator the overflow proof (firmware_ref.bounds) already bounds. vpmaddubsw, the
usual AVX2 int8 route, adds u8 x s8 pairs in int16 with saturation (255 * 127 * 2 > 32767): not exact,
so it is not used. AVX2 has no fused accumulate, so one step is vpmaddwd + vpaddd.

The kernels keep the 16-lane channel blocking of the VNNI path (one 16-lane accumulator is two ymm
halves), so the layout between kernels, the packing and the phase structure are shared; only the
group (2 input channels per int32 lane instead of 4) and the operand dtype (int16) differ.
Two shapes, both two (vpmaddwd, vpaddd) pairs:
  OC16   C[16] += A[2] . B[16, 2]    16 output channels of one pixel (A broadcast: activations)
  PIX16  C[16] += A[16, 2] . B[2]    16 pixels of one output channel (B broadcast: weights)
"""
from tvm.script import tirx as T

from .intrin import oc16_desc, pix16_desc, register

PMADDWD = "llvm.x86.avx2.pmadd.wd"
OC16_INTRIN, PIX16_INTRIN = "bpgan_avx2_oc16x2", "bpgan_avx2_pix16x2"


@T.prim_func(s_tir=True)
def _oc16_impl(A: T.Buffer((2,), "int16", offset_factor=1), B: T.Buffer((16, 2), "int16", offset_factor=1),
               C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:2], B[0:16, 0:2])
        T.writes(C[0:16])
        # the activation pair as one int32, broadcast to 8 lanes = 16 int16 (a0 a1 a0 a1 ...)
        a = T.reinterpret(T.broadcast(T.reinterpret(A.vload([0], "int16x2"), dtype="int32"), 8), dtype="int16x16")
        C[T.ramp(T.int32(0), 1, 8)] = C.vload([0], "int32x8") + T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id(PMADDWD), a, B.vload([0, 0], "int16x16"), dtype="int32x8")
        C[T.ramp(T.int32(8), 1, 8)] = C.vload([8], "int32x8") + T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id(PMADDWD), a, B.vload([8, 0], "int16x16"), dtype="int32x8")


@T.prim_func(s_tir=True)
def _pix16_impl(A: T.Buffer((16, 2), "int16", offset_factor=1), B: T.Buffer((2,), "int16", offset_factor=1),
                C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:16, 0:2], B[0:2])
        T.writes(C[0:16])
        b = T.reinterpret(T.broadcast(T.reinterpret(B.vload([0], "int16x2"), dtype="int32"), 8), dtype="int16x16")
        C[T.ramp(T.int32(0), 1, 8)] = C.vload([0], "int32x8") + T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id(PMADDWD), A.vload([0, 0], "int16x16"), b, dtype="int32x8")
        C[T.ramp(T.int32(8), 1, 8)] = C.vload([8], "int32x8") + T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id(PMADDWD), A.vload([8, 0], "int16x16"), b, dtype="int32x8")


register((OC16_INTRIN, oc16_desc(2, "int16", "int16"), _oc16_impl),
         (PIX16_INTRIN, pix16_desc(2, "int16", "int16"), _pix16_impl))
