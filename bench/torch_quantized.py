"""The integer program on PyTorch's quantized CPU kernels (torch.ao, onednn / x86 engine).

Same int8 weights and int32 biases as the program; activations are quint8 (an int8 tensor enters
with zero point 128), each conv's weight scale per output channel is chosen so that
acc * s_x * s_w / s_y = acc * 2**-shift. PyTorch requantizes in float with round-half-even
instead of our round-half-up shift, so outputs may differ from the reference by an LSB or so:
the bench reports the measured difference. Raises NotImplementedError for what it cannot map
(asymmetric transposed-conv padding, left shifts).
"""
import warnings

import numpy as np
import torch

from bpgan.firmware_ref.program import DTYPE_RANGE

ZERO_POINT = {"uint8": 0, "int8": 128}


def _quint8(values: np.ndarray, dtype: str, frac: int) -> torch.Tensor:
    u = (values.astype(np.int16) + ZERO_POINT[dtype]).astype(np.uint8)
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(u), 2.0 ** -frac, ZERO_POINT[dtype])


class TorchQuantized:
    """callable(integer input) -> integer output, through torch.ops.quantized."""

    def __init__(self, prog, engine: str = "onednn"):
        if engine not in torch.backends.quantized.supported_engines:
            raise NotImplementedError(f"quantized engine {engine!r} not in this PyTorch build")
        torch.backends.quantized.engine = engine
        self.prog, self.engine = prog, engine
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # quantized tensor creation is deprecated in 2.13 but still runs
            self.steps = [self._step(op) for op in prog.ops]

    def _step(self, op):
        p, a = self.prog, op.attrs
        dtype, frac = p.fmt(op.output)
        scale, zp = 2.0 ** -frac, ZERO_POINT[dtype]
        lo, hi = a.get("clip", DTYPE_RANGE[dtype])
        clamp = (lo, hi) != DTYPE_RANGE[dtype]
        qlo, qhi = lo + zp, hi + zp

        def finish(y):
            if clamp:  # e.g. relu on an int8 output: clip inside the quantized range
                y = torch._make_per_tensor_quantized_tensor(y.int_repr().clamp(qlo, qhi), scale, zp)
            return y
        if op.kind.startswith("conv"):
            return self._conv(op, scale, zp, finish)
        if op.kind == "add":
            return lambda env: finish(torch.ops.quantized.add(env[op.inputs[0]], env[op.inputs[1]], scale, zp))
        if op.kind == "clip":  # on the integers: the dtype (so the zero point) may change
            def clip(env):
                x = env[op.inputs[0]]
                r = (x.int_repr().to(torch.int16) - x.q_zero_point()).clamp(lo, hi) + zp
                return torch._make_per_tensor_quantized_tensor(r.to(torch.uint8), scale, zp)
            return clip
        if op.kind == "pixel_shuffle":
            return lambda env: torch.pixel_shuffle(env[op.inputs[0]], a["factor"])
        if op.kind == "upsample_nearest":
            def up(env):  # on the integers: quantized nearest upsampling has no 1-D kernel
                x = env[op.inputs[0]]
                r = x.int_repr()
                for axis in range(2, r.dim()):
                    r = r.repeat_interleave(a["factor"], dim=axis)
                return torch._make_per_tensor_quantized_tensor(r, x.q_scale(), x.q_zero_point())
            return up
        if op.kind == "concat":
            return lambda env: torch.ops.quantized.cat([env[i] for i in op.inputs], a["axis"], scale, zp)
        raise NotImplementedError(f"{op.name}: {op.kind}")

    def _conv(self, op, scale, zp, finish):
        p, a = self.prog, op.attrs
        w = p.arrays[op.params["weight"]]
        bias = p.arrays[op.params["bias"]].astype(np.float64)
        shift = np.asarray(a["shift"], np.int64)
        in_frac = p.fmt(op.inputs[0])[1]
        transpose, dims = "transpose" in op.kind, w.ndim - 2
        s_x = 2.0 ** -in_frac
        s_w = 2.0 ** -shift.astype(np.float64) * scale / s_x              # acc * s_x * s_w / s_y = acc >> shift
        wf = torch.from_numpy(w.astype(np.float32))
        if np.all(s_w == s_w[0]):
            wq = torch.quantize_per_tensor(wf * float(s_w[0]), float(s_w[0]), 0, torch.qint8)
        elif transpose:
            raise NotImplementedError(f"{op.name}: per-channel shifts on a transposed conv (PyTorch has no kernel)")
        else:
            sc = torch.from_numpy(s_w.astype(np.float32)).reshape(-1, *[1] * (dims + 1))
            wq = torch.quantize_per_channel(wf * sc, torch.from_numpy(s_w), torch.zeros(len(s_w), dtype=torch.long), 0,
                                            torch.qint8)
        b = torch.from_numpy((bias * s_x * s_w).astype(np.float32))
        pad = a["padding"]
        before, after = pad[:dims], pad[dims:]
        ops = torch.ops.quantized
        if transpose:
            if before != after:
                raise NotImplementedError(f"{op.name}: asymmetric transposed-conv padding")
            prepack = ops.conv_transpose1d_prepack if dims == 1 else ops.conv_transpose2d_prepack
            packed = prepack(wq, b, a["stride"], before, a["output_padding"], [1] * dims, 1)
            run = ops.conv_transpose1d if dims == 1 else ops.conv_transpose2d
            pre = None
        else:
            sym = [min(x, y) for x, y in zip(before, after)]
            extra = [x - s for x, s in zip(before, sym)], [y - s for y, s in zip(after, sym)]
            prepack = ops.conv1d_prepack if dims == 1 else ops.conv2d_prepack
            packed = prepack(wq, b, a["stride"], sym, [1] * dims, 1)
            run = ops.conv1d if dims == 1 else ops.conv2d
            pre = None if not any(extra[0] + extra[1]) else [v for d in reversed(range(dims))
                                                             for v in (extra[0][d], extra[1][d])]

        def conv(env):
            x = env[op.inputs[0]]
            if pre:  # asymmetric part of the padding: pad with the zero point
                r = torch.nn.functional.pad(x.int_repr(), pre, value=x.q_zero_point())
                x = torch._make_per_tensor_quantized_tensor(r, x.q_scale(), x.q_zero_point())
            return finish(run(x, packed, scale, zp))
        return conv

    def __call__(self, x: np.ndarray) -> np.ndarray:
        name = self.prog.inputs[0]
        env = {name: _quint8(x, *self.prog.fmt(name))}
        with torch.no_grad():
            for op, step in zip(self.prog.ops, self.steps):
                env[op.output] = step(env)
        out = self.prog.outputs[0]
        return (env[out].int_repr().numpy().astype(np.int16) - ZERO_POINT[self.prog.fmt(out)[0]]).astype(
            self.prog.fmt(out)[0])
