"""Time the generator on one latent: PyTorch float, ORT float, ORT QCDQ, PyTorch quantized (onednn,
x86), TVM integer (hand-scheduled and untuned), reference. Image: 768x512; audio: a 10 s utterance.

python bench/bench_decoder.py [RUN_DIR_OR_MODEL] [--model bpgan-audio] [--repeat N] [--skip-untuned]
Without a run, a default-config generator of --model (bpgan-image) with random weights is timed (weights
do not change the work). Prints the median ms of each engine, its ratio to PyTorch float and to the
scheduled TVM library, the fraction of the measured VNNI peak (bench_kernels.py) it reaches, and the
max LSB difference of each integer engine's output from the reference decoder's.
"""
import argparse
import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.simplefilter("ignore")
from bpgan.export.onnx_export import INPUT_NAME, export_qcdq, ort_session  # noqa: E402
from bpgan.export.onnx_to_program import onnx_to_program  # noqa: E402
from bpgan.export.tvm_lower import TvmDecoder, compile_program  # noqa: E402
from bpgan.firmware_ref.decoder import run_program, symbols_to_latent  # noqa: E402
from bpgan.toolkit.models import build_model, model_config  # noqa: E402
from bpgan.toolkit.quant import QuantSpec  # noqa: E402

THREADS = 2


def generator_macs(prog, env) -> int:
    """Multiply-adds of every conv in the program at the benched size (taps x in x out x input/output pixels)."""
    total = 0
    for op in prog.ops:
        if op.kind.startswith("conv"):
            w = prog.arrays[op.params["weight"]]
            pixels = env[op.inputs[0]] if "transpose" in op.kind else env[op.output]
            total += w.size * int(np.prod(pixels.shape[2:]))
    return total


def median_ms(fn, repeat):
    fn()  # warm up (first-call allocations, lazy init)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def models(run, name="bpgan-image"):
    if run:
        from bpgan.export.pipeline import load_run_model
        qat, blob = load_run_model(run)
        name, cfg = blob["model"], dict(blob["config"])
    else:
        torch.manual_seed(0)
        cfg = model_config(name, {}).model_dump()
        qat = build_model(name, model_config(name, cfg), QuantSpec()).eval()
    flt = build_model(name, model_config(name, dict(cfg, batchnorm=False)), None).eval()
    return qat, flt, model_config(name, cfg)


def torch_quantized_rows(prog, latent, y_ref):
    """(name, callable, max LSB vs reference) per PyTorch quantized engine that runs this program."""
    from torch_quantized import TorchQuantized
    rows = []
    for engine in ("onednn", "x86"):
        try:
            tq = TorchQuantized(prog, engine)
            lsb = int(np.abs(tq(latent).astype(np.int64) - y_ref).max())
        except (NotImplementedError, RuntimeError) as e:
            print(f"PyTorch quantized ({engine}) skipped: {str(e).splitlines()[0][:160]}")
            continue
        rows.append((f"PyTorch quantized ({engine})", tq, lsb))
    return rows


def latent_shape(cfg, args):
    if getattr(cfg, "modality", "image") == "audio":
        from bpgan.toolkit.audio.mel import HOP
        from bpgan.toolkit.audio.wav import SAMPLE_RATE
        frames = math.ceil(args.seconds * SAMPLE_RATE / HOP)
        return (cfg.latent_channels, math.ceil(frames / cfg.downsample)), \
            f"audio generator, {args.seconds:g} s at {SAMPLE_RATE} Hz = {frames} mel frames"
    return (cfg.latent_channels, args.height // cfg.downsample, args.width // cfg.downsample), \
        f"image generator {args.width}x{args.height}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="?", default=None)
    p.add_argument("--model", default="bpgan-image", help="registry name when no run is given (bpgan-audio)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--seconds", type=float, default=10.0, help="utterance length for an audio generator")
    p.add_argument("--skip-untuned", action="store_true", help="leave out the slow untuned TVM library")
    args = p.parse_args(argv)
    torch.set_num_threads(THREADS)
    qat, flt, cfg = models(args.run, args.model)
    tmp = Path(tempfile.mkdtemp(prefix="bench-decoder-"))
    shape, what = latent_shape(cfg, args)
    c = shape[0]

    qcdq = export_qcdq(qat.generator, c, tmp / "model.qcdq.onnx", sample_hw=(4, 6)[2 - len(shape[1:]):])
    prog = onnx_to_program(qcdq, qat.quantizer.integer_centers().numpy())
    t = time.perf_counter()
    lib = compile_program(prog, "llvm", tmp / "scheduled")
    compile_s = time.perf_counter() - t
    plain = None if args.skip_untuned else TvmDecoder(compile_program(prog, "llvm", tmp / "untuned", "none"))
    float_onnx = tmp / "float.onnx"
    with torch.no_grad():
        torch.onnx.export(flt.generator, torch.zeros(1, *shape), str(float_onnx), input_names=[INPUT_NAME],
                          opset_version=17, dynamo=False)

    latent = symbols_to_latent(prog, np.random.default_rng(0).integers(0, cfg.num_centers, (1, *shape)))
    xf = latent.astype(np.float32) * 2.0 ** -cfg.latent_frac_bits
    xt = torch.from_numpy(xf)
    ort_f, ort_q, tvm_dec = ort_session(float_onnx, THREADS), ort_session(qcdq, THREADS), TvmDecoder(lib)
    env = run_program(prog, latent, keep_all=True)
    y_ref = env[prog.outputs[0]]
    assert np.array_equal(tvm_dec(latent), y_ref), "TVM and reference disagree"
    assert plain is None or np.array_equal(plain(latent), y_ref), "untuned TVM and reference disagree"
    tq_rows = torch_quantized_rows(prog, latent, y_ref)
    torch.set_num_threads(THREADS)

    with torch.no_grad():
        rows = [("PyTorch float", lambda: flt.generator(xt), None),
                ("ONNX Runtime float", lambda: ort_f.run(None, {INPUT_NAME: xf}), None),
                ("ONNX Runtime QCDQ", lambda: ort_q.run(None, {INPUT_NAME: xf}), None),
                *[(name, (lambda f=f: f(latent)), lsb) for name, f, lsb in tq_rows],
                ("TVM integer (scheduled)", lambda: tvm_dec(latent), 0),
                *([("TVM integer (untuned)", lambda: plain(latent), 0)] if plain else []),
                ("reference decoder (NumPy)", lambda: run_program(prog, latent), 0)]
        results = [(name, median_ms(fn, args.repeat), lsb) for name, fn, lsb in rows]
    base = results[0][1]
    tvm_ms = next(ms for name, ms, _ in results if name == "TVM integer (scheduled)")
    macs = generator_macs(prog, env)
    try:
        from bench_kernels import vnni_peak_gmacs
        peak = vnni_peak_gmacs(THREADS)
    except RuntimeError:
        peak = None
    layers = ", ".join(f"{k}={getattr(cfg, k)}" for k in ("generator_widths", "res_blocks", "upsample")
                       if hasattr(cfg, k))
    from machine import describe
    print(f"machine: {describe()}")
    print(f"{what}, latent {tuple(latent.shape)}, {layers}; {THREADS} threads, median of {args.repeat}")
    print(f"TVM compile time {compile_s:.1f} s; TVM outputs == reference output: True")
    print(f"{macs / 1e9:.3f} GMAC; VNNI peak " + (f"{peak:.0f} GMAC/s -> roofline {macs / peak / 1e6:.2f} ms"
                                                   if peak else "n/a (no AVX512-VNNI)"))
    print(f"{'engine':32s} {'ms':>10s} {'x PyTorch float':>16s} {'x TVM scheduled':>16s} {'GMAC/s':>8s} "
          f"{'max LSB vs ref':>15s}")
    for name, ms, lsb in results:
        print(f"{name:32s} {ms:10.2f} {ms / base:16.3f} {ms / tvm_ms:16.1f} {macs / ms / 1e6:8.1f} "
              f"{'-' if lsb is None else lsb:>15}")
    if peak:
        print(f"TVM scheduled reaches {100 * macs / tvm_ms / 1e6 / peak:.0f}% of the measured VNNI peak")


if __name__ == "__main__":
    main()
