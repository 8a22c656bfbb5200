"""Build an integer Program op by op; the ONNX importer and the tests both use it.

The builder is where formats become integers: a conv's shift is in_frac + w_frac - out_frac
(per output channel) and its clip is the output dtype's range, cut at 0 after a ReLU.
"""
import math
from typing import List, Optional, Sequence, Union

import numpy as np

from .program import DTYPE_RANGE, Op, Program, ProgramError, validate

IntOrSeq = Union[int, Sequence[int]]


def _per_dim(v: IntOrSeq, dims: int) -> List[int]:
    return [int(v)] * dims if np.isscalar(v) else [int(e) for e in v]


class ProgramBuilder:
    def __init__(self, meta: Optional[dict] = None):
        self.inputs, self.tensors, self.ops, self.arrays = [], {}, [], {}
        self.symbol_table = None
        self.meta = dict(meta or {})

    def _tensor(self, name: str, dtype: str, frac_bits: int, channels: int) -> str:
        if name in self.tensors:
            raise ProgramError(f"tensor {name!r} defined twice")
        if dtype not in DTYPE_RANGE:
            raise ProgramError(f"tensor {name!r}: dtype {dtype!r} is not one of {', '.join(DTYPE_RANGE)}")
        self.tensors[name] = {"dtype": dtype, "frac_bits": int(frac_bits), "channels": int(channels)}
        return name

    def _clip(self, dtype: str, relu: bool) -> List[int]:
        lo, hi = DTYPE_RANGE[dtype]
        return [max(lo, 0) if relu else lo, hi]

    def input(self, name: str, dtype: str, frac_bits: int, channels: int) -> str:
        self.inputs.append(self._tensor(name, dtype, frac_bits, channels))
        return name

    def set_symbol_table(self, table) -> None:
        table = np.asarray(table)
        if table.min() < -128 or table.max() > 127:
            raise ProgramError("symbol table values must fit int8")
        self.arrays["symbol_table"] = table.astype(np.int8)
        self.symbol_table = "symbol_table"

    def conv(self, kind: str, name: str, x: str, weight, bias, w_frac, out_dtype: str, out_frac: int,
             stride: IntOrSeq = 1, padding: IntOrSeq = 0, output_padding: IntOrSeq = 0, relu: bool = False,
             out: Optional[str] = None) -> str:
        """Add conv2d / conv_transpose2d / conv1d / conv_transpose1d; weight OI.. (conv) or IO.. (transpose)."""
        weight, bias = np.asarray(weight), np.asarray(bias)
        dims = weight.ndim - 2
        transpose = kind.startswith("conv_transpose")
        cout = weight.shape[1] if transpose else weight.shape[0]
        if np.abs(weight).max(initial=0) > 127 or np.abs(bias).max(initial=0) >= 2 ** 31:
            raise ProgramError(f"{name}: weights must fit [-127, 127] and bias int32")
        in_frac = self.tensors[x]["frac_bits"]
        shift = in_frac + np.broadcast_to(np.asarray(w_frac, dtype=np.int64), (cout,)) - out_frac
        pad = _per_dim(padding, dims)
        attrs = {"stride": _per_dim(stride, dims), "padding": pad if len(pad) == 2 * dims else pad * 2,
                 "shift": [int(s) for s in shift], "clip": self._clip(out_dtype, relu)}
        if transpose:
            attrs["output_padding"] = _per_dim(output_padding, dims)
        self.arrays[f"{name}.weight"] = weight.astype(np.int8)
        self.arrays[f"{name}.bias"] = bias.astype(np.int32)
        out = self._tensor(out or name, out_dtype, out_frac, cout)
        self.ops.append(Op(kind, name, [x], out, attrs, {"weight": f"{name}.weight", "bias": f"{name}.bias"}))
        return out

    def add(self, name: str, a: str, b: str, out_dtype: str, out_frac: int, relu: bool = False) -> str:
        """a + b aligned to the finer scale, then rounded to out_frac."""
        fa, fb = self.tensors[a]["frac_bits"], self.tensors[b]["frac_bits"]
        f = max(fa, fb)
        attrs = {"align": [f - fa, f - fb], "shift": f - out_frac, "clip": self._clip(out_dtype, relu)}
        out = self._tensor(name, out_dtype, out_frac, self.tensors[a]["channels"])
        self.ops.append(Op("add", name, [a, b], out, attrs))
        return out

    def clip(self, name: str, x: str, lo: int, hi: int, out_dtype: Optional[str] = None) -> str:
        t = self.tensors[x]
        out_dtype = out_dtype or t["dtype"]
        dlo, dhi = DTYPE_RANGE[out_dtype]
        if not dlo <= lo <= hi <= dhi:
            raise ProgramError(f"{name}: clip [{lo}, {hi}] does not fit {out_dtype}")
        out = self._tensor(name, out_dtype, t["frac_bits"], t["channels"])
        self.ops.append(Op("clip", name, [x], out, {"clip": [int(lo), int(hi)]}))
        return out

    def _reshape_op(self, kind: str, name: str, x: str, factor: int, channels: int) -> str:
        t = self.tensors[x]
        out = self._tensor(name, t["dtype"], t["frac_bits"], channels)
        self.ops.append(Op(kind, name, [x], out, {"factor": int(factor)}))
        return out

    def pixel_shuffle(self, name: str, x: str, factor: int) -> str:
        c = self.tensors[x]["channels"]
        if c % (factor * factor):
            raise ProgramError(f"{name}: {c} channels do not split into {factor}x{factor} blocks")
        return self._reshape_op("pixel_shuffle", name, x, factor, c // (factor * factor))

    def upsample_nearest(self, name: str, x: str, factor: int) -> str:
        return self._reshape_op("upsample_nearest", name, x, factor, self.tensors[x]["channels"])

    def argmax_unpool(self, name: str, x: str, logits: str, factor: int) -> str:
        """Place each value of x at the argmax of its factor*factor logits (ties: lowest index), zeros elsewhere."""
        c = self.tensors[x]["channels"]
        if self.tensors[logits]["channels"] != c * factor * factor:
            raise ProgramError(f"{name}: {self.tensors[logits]['channels']} logit channels for {c} values "
                               f"and a {factor}x{factor} block")
        t = self.tensors[x]
        out = self._tensor(name, t["dtype"], t["frac_bits"], c)
        self.ops.append(Op("argmax_unpool", name, [x, logits], out, {"factor": int(factor)}))
        return out

    def reflect_pad(self, name: str, x: str, padding: IntOrSeq) -> str:
        """torch ReflectionPad2d / 1d: padding [top, left, bottom, right] (2-D), [left, right] (1-D), or one int
        for every side of a 2-D tensor; the output keeps x's format."""
        pad = [int(padding)] * 4 if np.isscalar(padding) else [int(p) for p in padding]
        t = self.tensors[x]
        out = self._tensor(name, t["dtype"], t["frac_bits"], t["channels"])
        self.ops.append(Op("reflect_pad", name, [x], out, {"padding": pad}))
        return out

    def instance_norm(self, name: str, x: str, gamma, gamma_frac, beta, out_dtype: str, out_frac: int,
                      z_frac: int = 8, eps_shift: Optional[int] = None, eps: float = 1e-5, relu: bool = False,
                      out: Optional[str] = None) -> str:
        """Add instance_norm: z = (x - mean) / sqrt(var + eps) at 2^-z_frac, y = gamma * z + beta at 2^-out_frac.

        gamma: int8 per channel at 2^-gamma_frac (scalar or per channel); beta: int32 at 2^-(z_frac + gamma_frac).
        shift[c] = z_frac + gamma_frac[c] - out_frac, like a conv's. eps_shift None: the power of two nearest
        torch's eps in x's integer units squared, eps * 2^(2 * in_frac) ~ 2^-eps_shift, clamped to [0, 40]."""
        gamma, beta = np.asarray(gamma), np.asarray(beta)
        c = self.tensors[x]["channels"]
        if np.abs(gamma).max(initial=0) > 127 or np.abs(beta).max(initial=0) >= 2 ** 31:
            raise ProgramError(f"{name}: gamma must fit [-127, 127] and beta int32")
        if eps_shift is None:
            in_frac = self.tensors[x]["frac_bits"]
            eps_shift = min(max(round(-math.log2(eps) - 2 * in_frac), 0), 40)
        shift = z_frac + np.broadcast_to(np.asarray(gamma_frac, dtype=np.int64), (c,)) - out_frac
        attrs = {"z_frac": int(z_frac), "eps_shift": int(eps_shift), "shift": [int(s) for s in shift],
                 "clip": self._clip(out_dtype, relu)}
        self.arrays[f"{name}.weight"] = np.broadcast_to(gamma, (c,)).astype(np.int8)
        self.arrays[f"{name}.bias"] = np.broadcast_to(beta, (c,)).astype(np.int32)
        out = self._tensor(out or name, out_dtype, out_frac, c)
        self.ops.append(Op("instance_norm", name, [x], out, attrs,
                           {"weight": f"{name}.weight", "bias": f"{name}.bias"}))
        return out

    def log2_abs(self, name: str, x: str, frac: int, out_dtype: str = "uint8") -> str:
        """y = Mitchell log2(|x| + 1) at 2^-frac (ops/log2.py), clipped to out_dtype."""
        lo, hi = DTYPE_RANGE[out_dtype]
        out = self._tensor(name, out_dtype, frac, self.tensors[x]["channels"])
        self.ops.append(Op("log2_abs", name, [x], out, {"frac": int(frac), "clip": [max(lo, 0), hi]}))
        return out

    def concat(self, name: str, xs: Sequence[str]) -> str:
        t = self.tensors[xs[0]]
        out = self._tensor(name, t["dtype"], t["frac_bits"], sum(self.tensors[x]["channels"] for x in xs))
        self.ops.append(Op("concat", name, list(xs), out, {"axis": 1}))
        return out

    def build(self, outputs: Sequence[str]) -> Program:
        prog = Program(inputs=list(self.inputs), outputs=list(outputs), tensors=dict(self.tensors),
                       ops=list(self.ops), arrays=dict(self.arrays), symbol_table=self.symbol_table,
                       meta=self.meta)
        validate(prog)
        return prog
