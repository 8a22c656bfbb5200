"""AVX512-VNNI dot products as TVM tensor intrinsics (uint8 x int8 -> int32, exact).

vpdpbusd adds, per int32 lane, four uint8 x int8 products to the accumulator with no intermediate
saturation, so it is bit-exact to the int32 reference (the AVX512-BW pmaddubsw route saturates in
int16 and is not). TVM's built-in `dot_16x4_vnni` passes int32x16 operands, which the bundled
LLVM rejects (it wants <64 x i8>); these versions reinterpret the operands as u8x64 / i8x64.

Two shapes, both one instruction:
  OC16   C[16] += A[4] . B[16, 4]    16 output channels of one pixel (A broadcast: activations)
  PIX16  C[16] += A[16, 4] . B[4]    16 pixels of one output channel (B broadcast: weights)
The activation operand is always the unsigned one (vpdpbusd's first source). Which targets get these
kernels is decided in tvm.isa (by the target's avx512vnni feature).
"""
from tvm.script import tirx as T

from .intrin import oc16_desc, pix16_desc, register

VNNI = "llvm.x86.avx512.vpdpbusd.512"
OC16_INTRIN, PIX16_INTRIN = "bpgan_vnni_oc16x4", "bpgan_vnni_pix16x4"


@T.prim_func(s_tir=True)
def _oc16_impl(A: T.Buffer((4,), "uint8", offset_factor=1), B: T.Buffer((16, 4), "int8", offset_factor=1),
               C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:4], B[0:16, 0:4])
        T.writes(C[0:16])
        a_i32 = T.reinterpret(A.vload([0], "uint8x4"), dtype="int32")
        C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id(VNNI), C.vload([0], "int32x16"),
            T.reinterpret(T.broadcast(a_i32, 16), dtype="uint8x64"), B.vload([0, 0], "int8x64"),
            dtype="int32x16")


@T.prim_func(s_tir=True)
def _pix16_impl(A: T.Buffer((16, 4), "uint8", offset_factor=1), B: T.Buffer((4,), "int8", offset_factor=1),
                C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:16, 0:4], B[0:4])
        T.writes(C[0:16])
        b_i32 = T.reinterpret(B.vload([0], "int8x4"), dtype="int32")
        C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id(VNNI), C.vload([0], "int32x16"), A.vload([0, 0], "uint8x64"),
            T.reinterpret(T.broadcast(b_i32, 16), dtype="int8x64"), dtype="int32x16")


register((OC16_INTRIN, oc16_desc(4, "uint8", "int8"), _oc16_impl),
         (PIX16_INTRIN, pix16_desc(4, "uint8", "int8"), _pix16_impl))

