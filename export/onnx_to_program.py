"""Step 2: QCDQ ONNX -> integer Program (firmware_ref/program.py).

Patterns read (all that Brevitas QCDQ writes for our layers):
  x -Q-> DQ            an integer tensor; a second Q/DQ pair at the same scale is an identity
  Clip(int8 const) -DQ->, int32 const -DQ->    weights (per tensor or per output channel), biases
  Conv|ConvTranspose(DQ x, DQ w, DQ b) [-Relu] -Q-> DQ    conv op (2-D or 1-D)
  Add(DQ a, DQ b) [-Relu] -Q-> DQ                         add op with alignment shifts
  DequantizeLinear int tensor [-Relu] -Q-> DQ  (same scale)  clip op
  DepthToSpace(CRD) / Resize(nearest, integer scale) / Concat on DQ tensors    pixel_shuffle / upsample / concat
  bpgan.ArgmaxUnpool(DQ values, DQ logits)    argmax_unpool (a node of domain bpgan: toolkit/models/sae_spn.py)
  bpgan.InstanceNorm(DQ x, int8 gamma, int32 beta)    instance_norm, its output already requantized (attributes
                                                      z_frac, eps_shift, gamma_frac, out_frac, out_dtype, relu:
                                                      toolkit/quant/instance_norm.py)
  Pad(mode=reflect, constant pads) on a DQ tensor    reflect_pad (zero padding stays in the conv's pads)
  ConstantOfShape / Concat / Reshape / Slice / Transpose / Cast / (Un)Squeeze / Gather of constants    folded
      (onnx.reference): torch's ReflectionPad2d computes its pads so
Every scale must be a power of two and every zero point 0: anything else is refused by name.
"""
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.program import DTYPE_RANGE, Program, ProgramError

_QDTYPE = {np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8"}
# Shape arithmetic that torch writes on constants (e.g. ReflectionPad2d's pads): evaluated here, never in the program.
_FOLDABLE = {"ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast", "Unsqueeze", "Squeeze", "Gather"}


def frac_bits_of(scale, where: str) -> np.ndarray:
    """scale = 2**-f exactly -> f (int array); anything else is outside the contract."""
    s = np.asarray(scale, dtype=np.float64)
    mant, exp = np.frexp(s)
    if np.any(mant != 0.5):
        raise ProgramError(f"{where}: scale {s.ravel()[:4]} is not a power of two")
    return (1 - exp).astype(np.int64)


def layer_name(node: onnx.NodeProto) -> str:
    """'/up/up.0/conv/ConvTranspose' -> 'up.0.conv' (drop the op, keep the module path)."""
    parts = [p for p in node.name.split("/") if p]
    parts = parts[:-1] or parts or [node.op_type]
    # torch repeats Sequential prefixes ('/up/up.0/up.0.0/conv'): keep only the longest of each chain
    parts = [p for p, nxt in zip(parts, parts[1:] + [""]) if not nxt.startswith(p + ".")]
    return ".".join(parts)


class _Importer:
    def __init__(self, model: onnx.ModelProto, meta: dict):
        self.consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.graph_inputs = [i.name for i in model.graph.input if i.name not in self.consts]
        self.b = ProgramBuilder(meta)
        self.ints = {}       # ONNX float tensor (a DQ output) -> program tensor
        self.quantized = {}  # ONNX Q output -> (source ONNX tensor, dtype, frac)
        self.pending = {}    # ONNX tensor -> un-requantized op: dict(kind=..., relu=bool, ...)
        self.weights = {}    # ONNX tensor -> (int array, frac per channel or scalar)
        self.biases = {}

    def const(self, name, where):
        if name not in self.consts:
            raise ProgramError(f"{where}: expected a constant for {name!r}")
        return self.consts[name]

    def qparams(self, node, where):
        scale = self.const(node.input[1], where)
        zp = self.const(node.input[2], where) if len(node.input) > 2 and node.input[2] else np.uint8(0)
        if np.any(zp != 0):
            raise ProgramError(f"{where}: zero point {zp} is not 0 (the contract is symmetric)")
        return scale, zp

    def run(self, model: onnx.ModelProto, outputs) -> Program:
        for node in model.graph.node:
            if not self.fold(node):
                getattr(self, "on_" + node.op_type, self.unsupported)(node)
        missing = [o for o in outputs if o not in self.ints]
        if missing:
            raise ProgramError(f"graph output(s) {missing} are not integer tensors (a DequantizeLinear output)")
        return self.b.build([self.ints[o] for o in outputs])

    def fold(self, node) -> bool:
        """A shape op on constants only: its outputs become constants (onnx.reference), no program op."""
        if node.domain not in ("", "ai.onnx") or node.op_type not in _FOLDABLE or \
                not all(i in self.consts for i in node.input if i):
            return False
        from onnx.reference import ReferenceEvaluator
        outs = ReferenceEvaluator(node).run(None, {i: self.consts[i] for i in node.input if i})
        self.consts.update(zip(node.output, (np.asarray(o) for o in outs)))
        return True

    def unsupported(self, node):
        raise ProgramError(f"layer {layer_name(node)!r}: ONNX op {node.op_type} has no integer-program form")

    def on_Constant(self, node):
        self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def on_Clip(self, node):
        where = layer_name(node)
        if node.input[0] in self.consts:  # weight clip to [-127, 127]: fold
            lo, hi = (self.const(n, where) for n in node.input[1:3])
            self.consts[node.output[0]] = np.clip(self.consts[node.input[0]], lo, hi)
        else:
            self.unsupported(node)

    def on_QuantizeLinear(self, node):
        where = layer_name(node)
        scale, zp = self.qparams(node, where)
        dtype, frac = _QDTYPE.get(zp.dtype), int(frac_bits_of(scale, where))
        if dtype is None or scale.ndim:
            raise ProgramError(f"{where}: activations must be per-tensor uint8/int8, got {zp.dtype}")
        x = node.input[0]
        if x in self.graph_inputs:
            channels = self.input_channels
            self.ints_q(node.output[0], self.b.input(x, dtype, frac, channels))
        elif x in self.ints or x in self.pending:
            self.quantized[node.output[0]] = (x, dtype, frac, where)
        else:
            raise ProgramError(f"{where}: QuantizeLinear of {x!r}, which is not an integer tensor or conv/add")

    def ints_q(self, q_out, tensor):
        self.quantized[q_out] = (tensor, None, None, None)

    def on_DequantizeLinear(self, node):
        where, x = layer_name(node), node.input[0]
        scale, _ = self.qparams(node, where)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if x in self.consts:  # weight or bias
            q = self.consts[x]
            if q.dtype == np.int8:
                self.weights[node.output[0]] = (q, frac_bits_of(scale, where), axis if scale.ndim else None)
            elif q.dtype == np.int32:
                self.biases[node.output[0]] = (q, frac_bits_of(scale, where))
            else:
                raise ProgramError(f"{where}: constant {x!r} of dtype {q.dtype} is neither int8 weight nor int32 bias")
            return
        if x not in self.quantized:
            self.unsupported(node)
        src, dtype, frac, qwhere = self.quantized[x]
        if dtype is None:  # graph input
            self.ints[node.output[0]] = src
        else:
            self.ints[node.output[0]] = self.requantize(src, dtype, frac, qwhere)

    def requantize(self, src, dtype, frac, where):
        if src in self.pending:
            p = self.pending.pop(src)
            return p["emit"](dtype, frac, p["relu"])
        t = self.ints[src]  # Q/DQ on an integer tensor: identity at the same format, clip otherwise
        have = self.b.tensors[t]
        if have["frac_bits"] != frac:
            raise ProgramError(f"{where}: rescaling 2^-{have['frac_bits']} -> 2^-{frac} is not supported")
        if have["dtype"] == dtype:
            return t
        (lo_a, hi_a), (lo_b, hi_b) = DTYPE_RANGE[have["dtype"]], DTYPE_RANGE[dtype]
        return self.b.clip(f"{where}.clip", t, max(lo_a, lo_b), min(hi_a, hi_b), dtype)

    def on_Relu(self, node):
        x = node.input[0]
        if x in self.pending:
            self.pending[node.output[0]] = dict(self.pending.pop(x), relu=True)
        elif x in self.ints:
            t, where = self.ints[x], layer_name(node)
            self.pending[node.output[0]] = {"relu": True, "emit": lambda dtype, frac, relu: self.b.clip(
                where, t, 0, DTYPE_RANGE[dtype][1], dtype)}
        else:
            self.unsupported(node)

    def _conv(self, node, transpose: bool):
        where = layer_name(node)
        x, w, b = (list(node.input) + [""])[:3]
        if x not in self.ints or w not in self.weights or b not in self.biases:
            raise ProgramError(f"layer {where!r}: conv needs quantized input, int8 weight and int32 bias")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1])):
            raise ProgramError(f"layer {where!r}: grouped or dilated convs are not in the integer program")
        wq, w_frac, axis = self.weights[w]
        bq, b_frac = self.biases[b]
        out_axis = 1 if transpose else 0
        if axis is not None and axis != out_axis:
            raise ProgramError(f"layer {where!r}: weight scale must be per output channel (axis {out_axis})")
        x_t = self.ints[x]
        x_frac = self.b.tensors[x_t]["frac_bits"]
        if not np.all(b_frac == x_frac + w_frac):
            raise ProgramError(f"layer {where!r}: bias scale is not input scale x weight scale")
        dims = wq.ndim - 2
        kind = ("conv_transpose" if transpose else "conv") + f"{dims}d"
        pads = attrs.get("pads", [0] * 2 * dims)
        if transpose and attrs.get("output_shape"):
            raise ProgramError(f"layer {where!r}: ConvTranspose output_shape is not supported; use pads")

        def emit(dtype, frac, relu):
            return self.b.conv(kind, where, x_t, wq, bq, w_frac, dtype, frac, attrs.get("strides", 1), pads,
                               attrs.get("output_padding", 0), relu)
        self.pending[node.output[0]] = {"relu": False, "emit": emit}

    def on_Conv(self, node):
        self._conv(node, transpose=False)

    def on_ConvTranspose(self, node):
        self._conv(node, transpose=True)

    def on_Add(self, node):
        where = layer_name(node)
        a, c = node.input
        if a not in self.ints or c not in self.ints:
            raise ProgramError(f"layer {where!r}: Add needs two quantized tensors")

        def emit(dtype, frac, relu):
            return self.b.add(where, self.ints[a], self.ints[c], dtype, frac, relu)
        self.pending[node.output[0]] = {"relu": False, "emit": emit}

    def _int_input(self, node):
        if node.input[0] not in self.ints:
            raise ProgramError(f"layer {layer_name(node)!r}: {node.op_type} of a non-integer tensor")
        return self.ints[node.input[0]]

    def on_DepthToSpace(self, node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("mode", b"DCR") != b"CRD":
            raise ProgramError(f"layer {layer_name(node)!r}: DepthToSpace must be CRD mode (torch PixelShuffle)")
        self.ints[node.output[0]] = self.b.pixel_shuffle(layer_name(node), self._int_input(node), attrs["blocksize"])

    def on_ArgmaxUnpool(self, node):
        where = layer_name(node)
        if node.domain != "bpgan" or any(i not in self.ints for i in node.input[:2]):
            raise ProgramError(f"layer {where!r}: ArgmaxUnpool must be the bpgan-domain op on two quantized tensors")
        factor = next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "factor")
        self.ints[node.output[0]] = self.b.argmax_unpool(where, self.ints[node.input[0]], self.ints[node.input[1]],
                                                         int(factor))

    def on_InstanceNorm(self, node):
        where = layer_name(node)
        if node.domain != "bpgan" or len(node.input) != 3 or node.input[0] not in self.ints:
            raise ProgramError(f"layer {where!r}: InstanceNorm must be the bpgan-domain op on a quantized tensor "
                               f"(toolkit/quant/instance_norm.py), not ONNX's float InstanceNormalization")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        gamma, beta = self.const(node.input[1], where), self.const(node.input[2], where)
        if gamma.dtype != np.int8 or beta.dtype != np.int32:
            raise ProgramError(f"layer {where!r}: InstanceNorm needs int8 gamma and int32 beta, got "
                               f"{gamma.dtype} and {beta.dtype}")
        dtype = attrs["out_dtype"].decode()
        self.ints[node.output[0]] = self.b.instance_norm(
            where, self.ints[node.input[0]], gamma, np.asarray(attrs["gamma_frac"], dtype=np.int64), beta, dtype,
            int(attrs["out_frac"]), z_frac=int(attrs["z_frac"]), eps_shift=int(attrs["eps_shift"]),
            relu=bool(attrs["relu"]))

    def on_Pad(self, node):
        where = layer_name(node)
        mode = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "mode"), b"constant")
        if mode != b"reflect":
            raise ProgramError(f"layer {where!r}: only Pad(mode=reflect) has an integer form (got mode "
                               f"{mode.decode()}; zero padding belongs in the conv's pads)")
        if node.input[0] not in self.ints:
            raise ProgramError(f"layer {where!r}: reflect Pad of a tensor that is not quantized (quantize it first)")
        if len(node.input) > 3 and node.input[3]:
            raise ProgramError(f"layer {where!r}: Pad with an axes input is not supported (pad every axis)")
        pads = [int(p) for p in self.const(node.input[1], where)]
        rank = len(pads) // 2
        if rank < 3 or any(pads[:2]) or any(pads[rank:rank + 2]) or min(pads) < 0:
            raise ProgramError(f"layer {where!r}: reflect Pad must pad the spatial axes only, by >= 0, got {pads}")
        self.ints[node.output[0]] = self.b.reflect_pad(where, self.ints[node.input[0]], pads[2:rank] + pads[rank + 2:])

    def on_Resize(self, node):
        where = layer_name(node)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        scales = self.const(node.input[2], where) if len(node.input) > 2 and node.input[2] else None
        if attrs.get("mode", b"nearest") != b"nearest" or scales is None or len(set(scales[2:])) != 1 \
                or scales[2] != int(scales[2]):
            raise ProgramError(f"layer {where!r}: only nearest Resize by one integer factor is supported")
        self.ints[node.output[0]] = self.b.upsample_nearest(where, self._int_input(node), int(scales[2]))

    def on_Concat(self, node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("axis") != 1 or any(i not in self.ints for i in node.input):
            raise ProgramError(f"layer {layer_name(node)!r}: only channel concat of quantized tensors")
        self.ints[node.output[0]] = self.b.concat(layer_name(node), [self.ints[i] for i in node.input])


def onnx_to_program(path, symbol_table=None, meta=None) -> Program:
    """Read a QCDQ ONNX file into an integer Program (symbol_table: int8 value of each latent symbol)."""
    model = onnx.load(str(Path(path)))
    imp = _Importer(model, dict(meta or {}, source=Path(path).name))
    if len(imp.graph_inputs) != 1:
        raise ProgramError(f"{path}: expected one graph input, found {imp.graph_inputs}")
    dims = next(i for i in model.graph.input if i.name == imp.graph_inputs[0]).type.tensor_type.shape.dim
    imp.input_channels = int(dims[1].dim_value)
    if symbol_table is not None:
        imp.b.set_symbol_table(symbol_table)
    return imp.run(model, [o.name for o in model.graph.output])
