"""What every dot-product tensor intrinsic computes, written once; tvm.vnni and tvm.avx2 give the how.

A description is the intrinsic's semantics in plain TIR (the pattern tensorize matches); only the
group (input channels per int32 lane: 4 for VNNI, 2 for AVX2) and the operand dtypes differ by ISA.
  OC16   C[16] += A[g] . B[16, g]    16 output channels of one pixel (A broadcast: activations)
  PIX16  C[16] += A[16, g] . B[g]    16 pixels of one output channel (B broadcast: weights)
"""
from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T


def oc16_desc(group: int, a_dtype: str, b_dtype: str):
    @T.prim_func(s_tir=True)
    def desc(A: T.Buffer((group,), a_dtype, offset_factor=1), B: T.Buffer((16, group), b_dtype, offset_factor=1),
             C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:group], B[0:16, 0:group])
            T.writes(C[0:16])
            for i, k in T.grid(16, group):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")
    return desc


def pix16_desc(group: int, a_dtype: str, b_dtype: str):
    @T.prim_func(s_tir=True)
    def desc(A: T.Buffer((16, group), a_dtype, offset_factor=1), B: T.Buffer((group,), b_dtype, offset_factor=1),
             C: T.Buffer((16,), "int32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:16, 0:group], B[0:group])
            T.writes(C[0:16])
            for i, k in T.grid(16, group):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.cast(A[vi, vk], "int32") * T.cast(B[vk], "int32")
    return desc


def register(*intrinsics) -> None:
    """(name, desc, impl) triples, each registered once per process."""
    for name, desc, impl in intrinsics:
        if TensorIntrin.get(name, allow_missing=True) is None:
            TensorIntrin.register(name, desc, impl)
