"""Export of a lossless flow (idf-audio): QAT model -> integer program -> test vectors -> TVM library.

No ONNX step: the program is built from the model's integer weights (toolkit/models/idf_program.py),
and the QAT model's own integer mu and scale are checked equal to the reference program's on the test
signal (0 differences, or the export fails). Writes into out_dir:
  program.json, program.npz   the levels' integer program with the coder tables and model hash
  test_vectors.npz            a test signal (two channels), its stream, every level's mu and scale
  decoder-llvm.so             the TVM library (plain pipeline: the levels are small 1-D convs), checked
                              equal to the reference on every level and by decoding the test stream
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bpgan.firmware_ref.bounds import prove_no_overflow
from bpgan.firmware_ref.lossless import split_levels
from bpgan.firmware_ref.lossless_stream import decode_lossless, encode_lossless, reference_engine, tvm_engine

VECTORS_NAME = "test_vectors.npz"
VECTOR_SEED, VECTOR_SAMPLES, VECTOR_RATE = 0, 3001, 16000


@dataclass
class LosslessExportReport:
    out_dir: Path
    program_hash: str = ""
    worst_accumulators: dict = field(default_factory=dict)
    qat_vs_reference: int = 0        # differing mu / scale integers (must be 0)
    library: Path = None
    verified_on_host: bool = False
    stream_bytes: int = 0

    def lines(self):
        yield f"integer program {self.out_dir / 'program.json'} ({self.program_hash[:23]}...)"
        yield f"QAT model vs reference program: {self.qat_vs_reference} differing integers (mu, scale) on the test signal"
        worst = max(self.worst_accumulators.items(), key=lambda kv: kv[1])
        yield (f"int32 overflow proof: {len(self.worst_accumulators)} layers safe, widest {worst[0]} "
               f"|acc| <= {worst[1]} (2^{np.log2(worst[1]):.1f})")
        yield f"test vectors {self.out_dir / VECTORS_NAME} (a {self.stream_bytes}-byte lossless stream)"
        if self.library is not None:
            state = "verified bit-exact against the reference on every level and the test stream" \
                if self.verified_on_host else "cross-compiled; not verified here"
            yield f"library {self.library} (plain default pipeline): {state}"


def test_signal() -> np.ndarray:
    """(2, VECTOR_SAMPLES) int16: a chirp with noise, and a clipped square wave with silence."""
    rng = np.random.default_rng(VECTOR_SEED)
    t = np.arange(VECTOR_SAMPLES)
    chirp = 9000 * np.sin(2 * np.pi * (50 + 3 * t / VECTOR_SAMPLES * 1000) * t / VECTOR_RATE) + rng.normal(0, 40, t.size)
    square = np.where((t // 37) % 2, 32767, -32768) * (t > VECTOR_SAMPLES // 3)
    return np.stack([np.clip(np.round(chirp), -32768, 32767), square]).astype(np.int16)


def export_lossless(model, blob, out_dir: Path, target: str = "llvm") -> LosslessExportReport:
    from bpgan.toolkit.models.idf_program import idf_program

    if blob["quant"] is None:
        raise ValueError(f"stage {blob['stage']!r} is a float model; export needs a quantized stage (qat or later)")
    if target not in ("llvm", "none"):
        raise ValueError(f"target {target!r}: a lossless program exports for llvm (TVM on this CPU) only for now")
    report = LosslessExportReport(out_dir=Path(out_dir))
    prog = idf_program(model.eval(), {"model": blob["model"], "stage": blob["stage"], "config": blob["config"]})
    report.worst_accumulators = prove_no_overflow(prog)
    prog.save(out_dir)
    report.program_hash = prog.content_hash

    x = test_signal()
    ref = reference_engine(prog)
    levels, arrays = prog.meta["lossless"]["levels"], {}
    for c, signal in enumerate(x):
        xs = split_levels(signal, levels)
        for level, net in enumerate(model.generator):
            a = xs[level + 1].astype(np.int16)
            mu, s = ref(level, a)
            with torch.no_grad():
                qmu, qs = net(torch.from_numpy(a.astype(np.float64))[None, None])
            report.qat_vs_reference += int(np.sum(qmu.numpy()[0] != mu) + np.sum(qs.numpy()[0, 0] != s))
            arrays[f"ch{c}/mu{level}"], arrays[f"ch{c}/scale{level}"] = mu, s
    if report.qat_vs_reference:
        raise RuntimeError(f"the QAT model and the integer program differ in {report.qat_vs_reference} integers")
    stream = encode_lossless(prog, x, VECTOR_RATE, ref)
    report.stream_bytes = len(stream)
    if not np.array_equal(decode_lossless(prog, stream, ref)[1], x):
        raise RuntimeError("the reference does not decode the test stream to the test signal")
    provenance = {"generator": "bpgan.export.lossless_export", "seed": VECTOR_SEED, "program_hash": prog.content_hash,
                  "numpy": np.__version__, "torch": torch.__version__}
    np.savez(Path(out_dir) / VECTORS_NAME, samples=x, sample_rate=np.int64(VECTOR_RATE),
             stream=np.frombuffer(stream, dtype=np.uint8), provenance=np.array(json.dumps(provenance, sort_keys=True)),
             **arrays)
    if target == "none":
        return report
    from .tvm.lower import compile_program
    from bpgan.firmware_ref.program import load_program

    report.library = compile_program(prog, "llvm", out_dir, schedule="none")
    loaded = load_program(out_dir)
    tvm = tvm_engine(loaded)
    for c, signal in enumerate(x):
        xs = split_levels(signal, levels)
        for level in range(levels):
            mu, s = tvm(level, xs[level + 1].astype(np.int16))
            if not (np.array_equal(mu, arrays[f"ch{c}/mu{level}"]) and np.array_equal(s, arrays[f"ch{c}/scale{level}"])):
                raise RuntimeError(f"TVM level {level} differs from the reference on the test signal")
    if not np.array_equal(decode_lossless(loaded, stream, tvm)[1], x):
        raise RuntimeError("TVM does not decode the test stream to the test signal")
    report.verified_on_host = True
    return report
