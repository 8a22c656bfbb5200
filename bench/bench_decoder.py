"""Time the generator on one latent: PyTorch float, ORT float, ORT QCDQ, PyTorch quantized (onednn,
x86), TVM integer (hand-scheduled and untuned), reference. Image: 768x512; audio: a 10 s utterance.

python bench/bench_decoder.py [RUN_DIR_OR_MODEL] [--model bpgan-audio] [--repeat N] [--skip-untuned]
                               [--isa auto|vnni|avx2|generic[@MCPU] ...] [--json OUT]
Without a run, a default-config generator of --model (bpgan-image) with random weights is timed (weights
do not change the work). Prints the median and min ms of each engine; from the min: ONNX Runtime
float's time over it, its time over the first scheduled TVM library's, GMAC/s and the fraction of
its ISA's measured peak (bench_kernels.py) each TVM library reaches; and the max LSB difference of
each integer engine's output from the reference's.
--isa builds one scheduled library per entry (default: auto, the best this CPU has); avx2 builds for
x86-64-v3, so on any CPU it is AVX2 code; generic@x86-64-v3 is the vectorized fallback as AVX2 code.
An ISA this CPU cannot execute is skipped. --json writes every row plus the machine (CPU model,
flags, date) and the command.
"""
import argparse
import datetime
import json
import math
import os
import sys
import tempfile
import time
import warnings

from pathlib import Path

import numpy as np
import torch

warnings.simplefilter("ignore")
from bpgan.export.onnx_export import INPUT_NAME, custom_ops, export_qcdq, ort_session  # noqa: E402
from bpgan.export.onnx_to_program import onnx_to_program  # noqa: E402
from bpgan.export.tvm.lower import TvmDecoder, compile_program  # noqa: E402
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


def time_ms(fn, repeat):
    """(median, min) ms of repeat calls after one warm-up, engines one after another. The min is the
    figure to compare on a shared machine: a busy neighbour turns every thread-pool barrier of a
    2-thread engine into a wait for a scheduler tick (PyTorch quantized: 14 ms idle, 156-160 ms
    while another process runs), which inflates medians far more than mins."""
    fn()  # warm up (first-call allocations, lazy init)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times)), 1000 * float(np.min(times))


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


def tvm_builds(prog, tmp, specs):
    """[(row name, isa, mcpu, TvmDecoder)] for each --isa entry 'isa[@mcpu]' this CPU can run."""
    from bpgan.export.tvm.isa import UnsupportedCpu, sidecar_path
    out = []
    for spec in specs:
        isa, _, mcpu = spec.partition("@")
        isa = None if isa == "auto" else isa
        lib = compile_program(prog, "llvm", tmp / spec.replace("@", "_"), isa=isa, mcpu=mcpu or None)
        info = json.loads(sidecar_path(lib).read_text())
        try:
            dec = TvmDecoder(lib)
        except UnsupportedCpu as e:
            print(f"TVM {spec} skipped: {e}")
            continue
        out.append((f"TVM integer ({info['isa']}, {info['mcpu']})", info["isa"], info["mcpu"], dec))
    return out


def isa_peaks(isas):
    """{isa: measured peak GMAC/s} for the ISAs with a dot-product microbenchmark that this CPU runs."""
    import bench_kernels
    peaks = {}
    for isa in set(isas) & set(bench_kernels.CPU_FLAG):
        try:
            peaks[isa] = bench_kernels.peak_gmacs(isa, THREADS)
        except RuntimeError:
            pass
    return peaks


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
    p.add_argument("--isa", nargs="+", default=["auto"],
                   help="scheduled TVM builds: auto|vnni|avx2|generic, optionally @MCPU (e.g. generic@x86-64-v3)")
    p.add_argument("--json", default=None, help="also write every row, the machine and the command here")
    args = p.parse_args(argv)
    torch.set_num_threads(THREADS)
    qat, flt, cfg = models(args.run, args.model)
    tmp = Path(tempfile.mkdtemp(prefix="bench-decoder-"))
    shape, what = latent_shape(cfg, args)
    c = shape[0]

    qcdq = export_qcdq(qat.generator, c, tmp / "model.qcdq.onnx", sample_hw=(4, 6)[2 - len(shape[1:]):])
    prog = onnx_to_program(qcdq, qat.quantizer.integer_centers().numpy())
    t = time.perf_counter()
    builds = tvm_builds(prog, tmp, args.isa)
    compile_s = (time.perf_counter() - t) / max(1, len(args.isa))
    plain = None if args.skip_untuned else TvmDecoder(compile_program(prog, "llvm", tmp / "untuned", "none"))
    float_onnx = tmp / "float.onnx"
    with torch.no_grad():
        torch.onnx.export(flt.generator, torch.zeros(1, *shape), str(float_onnx), input_names=[INPUT_NAME],
                          opset_version=17, dynamo=False)

    latent = symbols_to_latent(prog, np.random.default_rng(0).integers(0, cfg.num_centers, (1, *shape)))
    xf = latent.astype(np.float32) * 2.0 ** -cfg.latent_frac_bits
    xt = torch.from_numpy(xf)
    custom = custom_ops(qcdq)   # e.g. bpgan.ArgmaxUnpool (sae-spn): ONNX Runtime has no kernel for it
    if custom:
        print(f"ONNX Runtime rows skipped: the graph has {', '.join(custom)}")
    ort_f, ort_q = (None, None) if custom else (ort_session(float_onnx, THREADS), ort_session(qcdq, THREADS))
    env = run_program(prog, latent, keep_all=True)
    y_ref = env[prog.outputs[0]]
    for name, _, _, dec in builds:
        assert np.array_equal(dec(latent), y_ref), f"{name} and reference disagree"
    assert plain is None or np.array_equal(plain(latent), y_ref), "untuned TVM and reference disagree"
    tq_rows = torch_quantized_rows(prog, latent, y_ref)
    torch.set_num_threads(THREADS)

    with torch.no_grad():
        rows = [("PyTorch float", lambda: flt.generator(xt), None),
                *([("ONNX Runtime float", lambda: ort_f.run(None, {INPUT_NAME: xf}), None),
                   ("ONNX Runtime QCDQ", lambda: ort_q.run(None, {INPUT_NAME: xf}), None)] if ort_f else []),
                *[(name, (lambda f=f: f(latent)), lsb) for name, f, lsb in tq_rows],
                *[(name, (lambda d=dec: d(latent)), 0) for name, _, _, dec in builds],
                *([("TVM integer (untuned)", lambda: plain(latent), 0)] if plain else []),
                ("reference decoder (NumPy)", lambda: run_program(prog, latent), 0)]
        results = [(name, *time_ms(fn, args.repeat), lsb) for name, fn, lsb in rows]
    macs = generator_macs(prog, env)
    isa_of, mcpu_of = {name: isa for name, isa, _, _ in builds}, {name: mcpu for name, _, mcpu, _ in builds}
    peaks = isa_peaks(isa_of.values())
    layers = ", ".join(f"{k}={getattr(cfg, k)}" for k in ("generator_widths", "res_blocks", "upsample")
                       if hasattr(cfg, k))
    from machine import describe
    machine = describe()
    print(f"machine: {machine}")
    print(f"{what}, latent {tuple(latent.shape)}, {layers}; {THREADS} threads, {args.repeat} runs each")
    print(f"TVM compile time {compile_s:.1f} s per library; TVM outputs == reference output: True")
    print(f"{macs / 1e9:.3f} GMAC; " + ("; ".join(f"{i.upper()} peak {g:.0f} GMAC/s -> roofline "
                                                  f"{macs / g / 1e6:.2f} ms" for i, g in sorted(peaks.items()))
                                        or "no dot-product peak measured"))
    print(f"{'engine':36s} {'median ms':>10s} {'min ms':>8s} {'ORT float / it':>14s} {'it / first TVM':>14s} "
          f"{'GMAC/s':>7s} {'max LSB vs ref':>14s} {'% ISA peak':>10s}   (ratios, GMAC/s and % from min ms)")
    ort_best = next((best for name, _, best, _ in results if name == "ONNX Runtime float"), float("nan"))
    tvm_best = next((best for name, _, best, _ in results if name.startswith("TVM integer (")), float("nan"))
    rows = []
    for name, ms, best, lsb in results:
        peak = peaks.get(isa_of.get(name))
        gmacs = macs / best / 1e6
        frac = gmacs / peak if peak else None
        print(f"{name:36s} {ms:10.2f} {best:8.2f} {ort_best / best:14.2f} {best / tvm_best:14.2f} {gmacs:7.1f} "
              f"{'-' if lsb is None else lsb:>14} {'-' if frac is None else f'{100 * frac:.0f}%':>10}")
        rows.append({"engine": name, "median_ms": round(ms, 3), "min_ms": round(best, 3),
                     "gmac_per_s_at_min": round(gmacs, 2), "max_lsb": lsb, "isa": isa_of.get(name),
                     "mcpu": mcpu_of.get(name), "fraction_of_isa_peak": None if frac is None else round(frac, 3)})
    if args.json:
        model, flags, *_ = (machine.split(" | ") + ["", ""])
        Path(args.json).write_text(json.dumps({
            "command": "python bench/bench_decoder.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine, "cpu_model": model, "cpu_flags": flags.split(), "threads": THREADS,
            "env": {k: os.environ[k] for k in ("TVM_BIND_THREADS", "ONEDNN_MAX_CPU_ISA") if k in os.environ},
            "workload": what, "latent": list(latent.shape), "gmac": macs / 1e9, "repeat": args.repeat,
            "peaks_gmac_per_s": {k: round(v, 1) for k, v in peaks.items()}, "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
