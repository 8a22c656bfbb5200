"""Time the generator at 768x512 on one latent: PyTorch float, ORT float, ORT QCDQ, TVM integer, reference.

python bench/bench_decoder.py [RUN_DIR_OR_MODEL] [--repeat N]
Without a run, a default-config bpgan-image generator with random weights is timed (weights do not
change the work). Prints the median ms of each engine and its ratio to PyTorch float.
"""
import argparse
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


def median_ms(fn, repeat):
    fn()  # warm up (first-call allocations, lazy init)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def models(run):
    if run:
        from bpgan.export.pipeline import load_run_model
        qat, blob = load_run_model(run)
        name, cfg = blob["model"], dict(blob["config"])
    else:
        torch.manual_seed(0)
        name, cfg = "bpgan-image", model_config("bpgan-image", {}).model_dump()
        qat = build_model(name, model_config(name, cfg), QuantSpec()).eval()
    flt = build_model(name, model_config(name, dict(cfg, batchnorm=False)), None).eval()
    return qat, flt, model_config(name, cfg)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="?", default=None)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=768)
    args = p.parse_args(argv)
    torch.set_num_threads(THREADS)
    qat, flt, cfg = models(args.run)
    tmp = Path(tempfile.mkdtemp(prefix="bench-decoder-"))
    c, h, w = cfg.latent_channels, args.height // cfg.downsample, args.width // cfg.downsample

    qcdq = export_qcdq(qat.generator, c, tmp / "model.qcdq.onnx")
    prog = onnx_to_program(qcdq, qat.quantizer.integer_centers().numpy())
    t = time.perf_counter()
    lib = compile_program(prog, "llvm", tmp)
    compile_s = time.perf_counter() - t
    float_onnx = tmp / "float.onnx"
    with torch.no_grad():
        torch.onnx.export(flt.generator, torch.zeros(1, c, h, w), str(float_onnx), input_names=[INPUT_NAME],
                          opset_version=17, dynamo=False)

    latent = symbols_to_latent(prog, np.random.default_rng(0).integers(0, cfg.num_centers, (1, c, h, w)))
    xf = latent.astype(np.float32) * 2.0 ** -cfg.latent_frac_bits
    xt = torch.from_numpy(xf)
    ort_f, ort_q, tvm_dec = ort_session(float_onnx, THREADS), ort_session(qcdq, THREADS), TvmDecoder(lib)
    y_ref = run_program(prog, latent)[prog.outputs[0]]
    assert np.array_equal(tvm_dec(latent), y_ref), "TVM and reference disagree"

    with torch.no_grad():
        rows = [("PyTorch float", lambda: flt.generator(xt)),
                ("ONNX Runtime float", lambda: ort_f.run(None, {INPUT_NAME: xf})),
                ("ONNX Runtime QCDQ", lambda: ort_q.run(None, {INPUT_NAME: xf})),
                ("TVM integer (default pipeline)", lambda: tvm_dec(latent)),
                ("reference decoder (NumPy)", lambda: run_program(prog, latent))]
        results = [(name, median_ms(fn, args.repeat)) for name, fn in rows]
    base = results[0][1]
    print(f"generator {args.width}x{args.height}, latent {tuple(latent.shape)}, widths {cfg.generator_widths}, "
          f"{cfg.res_blocks} res blocks, {cfg.upsample}; {THREADS} threads, median of {args.repeat}")
    print(f"TVM compile time {compile_s:.1f} s; TVM output == reference output: True")
    print(f"{'engine':32s} {'ms':>10s} {'x PyTorch float':>16s}")
    for name, ms in results:
        print(f"{name:32s} {ms:10.1f} {ms / base:16.2f}")


if __name__ == "__main__":
    main()
