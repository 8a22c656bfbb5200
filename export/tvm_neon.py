"""aarch64 exact int8 dot products as TVM tensor intrinsics: USDOT (Armv8.6 i8mm), uint8 x int8 -> int32.

usdot adds, per int32 lane of a 128-bit register, four uint8 x int8 products to the accumulator with
no intermediate saturation: the same arithmetic as VNNI's vpdpbusd, so the kernels keep the VNNI
layout exactly (group 4, uint8 activations, int8 weights; no offset trick). A 16-lane accumulator is
four q registers, so one step is four usdot instructions. SDOT/UDOT (dotprod) multiply two operands of
one signedness and would need the uint8 activations offset by 128 and a weight-sum correction: not
built. Verified under qemu-aarch64 (its default cpu, max, has i8mm); speed cannot be measured there.
  OC16   C[16] += A[4] . B[16, 4]    16 output channels of one pixel (A broadcast: activations)
  PIX16  C[16] += A[16, 4] . B[4]    16 pixels of one output channel (B broadcast: weights)
"""
from tvm.script import tirx as T

from .tvm_intrin import oc16_desc, pix16_desc, register

USDOT = "llvm.aarch64.neon.usdot"
OC16_INTRIN, PIX16_INTRIN = "bpgan_neon_oc16x4", "bpgan_neon_pix16x4"


@T.prim_func(s_tir=True)
def _oc16_impl(A: T.Buffer((4,), "uint8", offset_factor=1), B: T.Buffer((16, 4), "int8", offset_factor=1),
               C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:4], B[0:16, 0:4])
        T.writes(C[0:16])
        a = T.reinterpret(T.broadcast(T.reinterpret(A.vload([0], "uint8x4"), dtype="int32"), 4), dtype="uint8x16")
        for q in T.unroll(4):   # output channels 4q .. 4q + 3: one q register each
            C[T.ramp(q * 4, 1, 4)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(USDOT), C.vload([q * 4], "int32x4"), a, B.vload([q * 4, 0], "int8x16"),
                dtype="int32x4")


@T.prim_func(s_tir=True)
def _pix16_impl(A: T.Buffer((16, 4), "uint8", offset_factor=1), B: T.Buffer((4,), "int8", offset_factor=1),
                C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:16, 0:4], B[0:4])
        T.writes(C[0:16])
        b = T.reinterpret(T.broadcast(T.reinterpret(B.vload([0], "int8x4"), dtype="int32"), 4), dtype="int8x16")
        for q in T.unroll(4):   # pixels 4q .. 4q + 3
            C[T.ramp(q * 4, 1, 4)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(USDOT), C.vload([q * 4], "int32x4"), A.vload([q * 4, 0], "uint8x16"), b,
                dtype="int32x4")


register((OC16_INTRIN, oc16_desc(4, "uint8", "int8"), _oc16_impl),
         (PIX16_INTRIN, pix16_desc(4, "uint8", "int8"), _pix16_impl))
