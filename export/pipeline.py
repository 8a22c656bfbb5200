"""The whole export of one run: model.pt -> ONNX QCDQ -> integer program -> test vectors -> TVM library.

Writes into out_dir:
  model.qcdq.onnx             the standard artifact (onnx.checker passes, ONNX Runtime runs it)
  program.json, program.npz   the integer program (firmware_ref/program.py)
  test_vectors.npz            latent, symbols, every layer's integer output, final output, provenance
  decoder-<target>.so|.tar    the TVM library (llvm is verified here against the test vectors, aarch64 under
                              qemu-aarch64 where it and the cross gcc exist: tvm.qemu)
  c99/                        with --target c99: the standalone C decoder (export/c99), verified here
                              against the reference on the test-vector stream when a C compiler exists
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bpgan.toolkit.training.checkpoint import final_model_path
from bpgan.toolkit.codec.learned import ENTROPY_NAME

from bpgan.firmware_ref.bounds import prove_no_overflow
from bpgan.firmware_ref.decoder import run_program, symbols_to_latent
from bpgan.firmware_ref.entropy_model import ENTROPY_DIR, LearnedPrior
from bpgan.firmware_ref.program import PRIOR_KEY, Program

from .onnx_export import custom_ops, export_qcdq, ort_vs_fake_quant
from .onnx_to_program import onnx_to_program

ONNX_NAME, VECTORS_NAME = "model.qcdq.onnx", "test_vectors.npz"
VECTOR_SEED, VECTOR_HW = 0, (4, 6)
ENTROPY_VECTOR_HW = (6, 7)


@dataclass
class ExportReport:
    out_dir: Path
    program_hash: str = ""
    ort_max_abs_diff: float = None   # None: not run, the graph has custom_ops (ONNX Runtime does not know them)
    custom_ops: list = field(default_factory=list)
    ref_vs_fake_quant: dict = field(default_factory=dict)   # {"within_1_lsb": frac, "exact": frac, "max_lsb": n}
    worst_accumulators: dict = field(default_factory=dict)
    library: Path = None
    prior_path: Path = None
    verified_on_host: bool = False
    schedule: str = "auto"
    c99: object = None   # c99.C99Report for --target c99
    qemu: str = ""       # aarch64: tvm.qemu.verify's state line (verified under qemu-aarch64, or why not)
    isa: str = ""        # the kernel family the library was built with (tvm.isa sidecar)
    entropy: Path = None  # the learned entropy model's program folder or TVM library, when the run has one
    tuning: dict = None   # llvm: tvm.tune's summary (kernels, reused / measured entries, size)

    def lines(self):
        yield f"integer program {self.out_dir / 'program.json'} ({self.program_hash[:23]}...)"
        yield (f"onnx {self.out_dir / ONNX_NAME}: ORT vs Brevitas fake-quant max |diff| = {self.ort_max_abs_diff:.6g}"
               if self.ort_max_abs_diff is not None else
               f"onnx {self.out_dir / ONNX_NAME}: not run on ONNX Runtime (custom op "
               f"{', '.join(self.custom_ops)}); the reference checks it against fake-quant")
        r = self.ref_vs_fake_quant
        yield (f"reference vs Brevitas fake-quant: {100 * r['exact']:.3f}% exact, {100 * r['within_1_lsb']:.3f}% "
               f"within 1 LSB, max {r['max_lsb']} LSB")
        worst = max(self.worst_accumulators.items(), key=lambda kv: kv[1])
        yield (f"int32 overflow proof: {len(self.worst_accumulators)} layers safe, widest {worst[0]} "
               f"|acc| <= {worst[1]} (2^{np.log2(worst[1]):.1f})")
        yield (f"prior {self.prior_path} stored in the program: bitstreams decode from the program alone" if self.prior_path
               else "no prior.npy in the run: the program decodes latents, not bitstreams "
                    "(bpgan-quantize writes one; or bpgan-encode --prior-from DATA)")
        if self.entropy is not None:
            yield (f"learned entropy model {self.out_dir / ENTROPY_DIR}: bitstreams are coded with it"
                   + (" (TVM library verified bit-exact on its test context)" if self.entropy.suffix == ".so" else ""))
        yield f"test vectors {self.out_dir / VECTORS_NAME}"
        state = "verified bit-exact against the test vectors" if self.verified_on_host else \
            (self.qemu or "cross-compiled; cannot run on this machine, not verified here")
        if self.c99 is not None:
            state = "built natively, bit-exact with the reference on the test-vector stream" if self.verified_on_host \
                else "no C compiler here, not verified"
            yield (f"C99 decoder {self.library} (arena {self.c99.arena_bytes} bytes for {self.c99.limit}, streams "
                   f"up to {self.c99.max_stream_bytes} bytes): {state}")
            return
        kernels = f"hand-scheduled blocked {self.isa} kernels".replace("  ", " ") if self.schedule == "auto" \
            else "plain default pipeline"
        yield f"library {self.library} ({kernels}): {state}"
        t = self.tuning
        if t and (t["reused"] or t["measured"]):
            now = (f"{t['measured']} measured now at latent size {'x'.join(map(str, t['size']))}, {t['trials']} "
                   f"trials, {t['seconds']:.0f} s" if t["measured"] else "none measured now")
            yield (f"tiles of {t['reused'] + t['measured']} of {t['kernels']} kernels from the tuning database ({now}; "
                   f"{t['reused']} reused; {t['saved_ms']:.3f} ms faster than the hand schedule's tiles, as measured)")


def load_run_model(run_dir_or_model):
    """A run directory (its last stage) or a model.pt file -> (model, blob)."""
    from bpgan.toolkit.training.checkpoint import load_model

    p = Path(run_dir_or_model)
    return load_model(p if p.is_file() else final_model_path(p))


def _vectors(prog: Program, latent_channels: int, spatial_hw):
    rng = np.random.default_rng(VECTOR_SEED)
    symbols = rng.integers(0, len(prog.symbols()), size=(1, latent_channels, *spatial_hw))
    latent = symbols_to_latent(prog, symbols)
    env = run_program(prog, latent, keep_all=True)
    return symbols, latent, env


def attach_prior(prog: Program, model, src: Path):
    """Put the run's prior table and the bitstream model hash into the program; None if the run has none.
    With entropy_model.pt beside prior.npy the streams are coded by the learned entropy model: -> (path, (its
    entropy program, test context, logits)), which export_run saves in entropy/; the program's meta names it by
    content hash. -> (path, None) without one."""
    from bpgan.toolkit.codec.fingerprint import model_hash
    from bpgan.toolkit.codec.prior import PRECISION_BITS, load_prior

    model_dir = src.parent if src.is_file() else final_model_path(src).parent
    for path in (model_dir / "prior.npy", model_dir.parent / "prior.npy"):
        if path.is_file():
            prior = load_prior(path)
            prog.arrays[PRIOR_KEY] = prior.astype(np.uint32)
            key, entropy = prior, learned_entropy_program(path.with_name(ENTROPY_NAME))
            if entropy is not None:
                eprog = entropy[0]
                key = LearnedPrior(eprog, prior)
                prog.meta["entropy_model"] = {"content_hash": eprog.content_hash, **eprog.meta["entropy_model"]}
            prog.meta.update({"prior_precision_bits": PRECISION_BITS, "model_hash": model_hash(model, key).hex()})
            return path, entropy
    return None, None


def learned_entropy_program(path: Path):
    """entropy_model.pt -> (its entropy program, a random test context, the program's logits on it), checked: the
    QAT net's logits equal the program's there; None when there is no such file."""
    from bpgan.toolkit.models.entropy_net import entropy_program, load_entropy_net

    if not path.is_file():
        return None
    net = load_entropy_net(path)
    eprog = entropy_program(net)
    rng = np.random.default_rng(VECTOR_SEED)
    ctx = rng.integers(0, net.cfg.centers + 1, size=(1, net.cfg.channels, *ENTROPY_VECTOR_HW)).astype(np.int8)
    ref = run_program(eprog, ctx)[eprog.outputs[0]]
    if not np.array_equal(ref, net.integer_logits(torch.from_numpy(ctx.astype(np.int64)))):
        raise RuntimeError(f"{path}: the entropy program's logits differ from the QAT net's")
    return eprog, ctx, ref


def save_entropy_program(entropy, out_dir: Path, target: str, schedule: str, isa) -> Path:
    """entropy/program.json + .npz + test_vectors.npz, and for llvm its TVM library, verified on the test context."""
    from .tvm.lower import TvmDecoder, compile_program

    folder = out_dir / ENTROPY_DIR
    eprog, ctx, logits = entropy
    eprog.save(folder)
    np.savez(folder / VECTORS_NAME, context=ctx, logits=logits)
    if target != "llvm":
        return folder
    lib = compile_program(eprog, target, folder, schedule, isa)
    if not np.array_equal(TvmDecoder(lib)(ctx), logits):
        raise RuntimeError("TVM entropy program output differs from the reference on its test context")
    return lib


def compare_lsb(ref_int: np.ndarray, fake_quant: np.ndarray, frac_bits: int) -> dict:
    d = np.abs(ref_int.astype(np.float64) - fake_quant.astype(np.float64) * 2.0 ** frac_bits)
    return {"exact": float((d == 0).mean()), "within_1_lsb": float((d <= 1).mean()), "max_lsb": float(d.max())}


def export_run(run_dir_or_model, target: str = "llvm", out_dir=None, schedule: str = "auto",
               c99_limits: dict = None, isa: str = None, tune: int = 0, tune_size=None, log=None) -> ExportReport:
    """c99_limits (target c99): max_pixels / max_width / max_frames, the largest output the C decoder's arena is
    planned for.
    isa: vnni | avx2 | i8mm | generic kernels; None picks the best the target's CPU has (tvm.isa).
    tune / tune_size: tvm.tune's measured tile search (llvm; log prints each kernel measured)."""
    model, blob = load_run_model(run_dir_or_model)
    src = Path(run_dir_or_model)
    if getattr(model, "modality", None) == "lossless":
        from .lossless_export import export_lossless
        out = Path(out_dir) if out_dir else (src.parent if src.is_file() else src) / "export"
        return export_lossless(model, blob, out, target)
    if getattr(model.cfg, "switches", None) == "sent":
        raise ValueError("an SWWAE decoder unpools with the encoder's sent switches: it is not a one-input "
                         "program (the comparison measures it in PyTorch)")
    if blob["quant"] is None:
        raise ValueError(f"stage {blob['stage']!r} is a float model; export needs a quantized stage (qat or later)")
    out_dir = Path(out_dir) if out_dir else (src.parent if src.is_file() else src) / "export"
    report = ExportReport(out_dir=out_dir)
    gen, cfg = model.generator.eval(), model.cfg
    spatial = VECTOR_HW if getattr(model, "modality", "image") == "image" else VECTOR_HW[1:]

    onnx_path = export_qcdq(gen, cfg.latent_channels, out_dir / ONNX_NAME, sample_hw=spatial)
    table = model.quantizer.integer_centers().numpy()
    meta = {"model": blob["model"], "stage": blob["stage"], "config": blob["config"]}
    prog = onnx_to_program(onnx_path, symbol_table=table, meta=meta)
    report.prior_path, entropy = attach_prior(prog, model, src)
    report.worst_accumulators = prove_no_overflow(prog)
    prog.save(out_dir)
    if entropy is not None:
        if target == "c99":
            raise ValueError("the C99 decoder codes with the per-channel prior; this run has a learned entropy "
                             "model (entropy_model.pt), which the C99 target does not implement yet")
        report.entropy = save_entropy_program(entropy, out_dir, target, schedule, isa)
    report.program_hash = prog.content_hash

    symbols, latent, env = _vectors(prog, cfg.latent_channels, spatial)
    latent_float = latent.astype(np.float32) * 2.0 ** -prog.fmt(prog.inputs[0])[1]
    report.custom_ops = custom_ops(onnx_path)
    if not report.custom_ops:
        report.ort_max_abs_diff = ort_vs_fake_quant(onnx_path, gen, latent_float)
    with torch.no_grad():
        fq = gen(torch.from_numpy(latent_float)).numpy()
    out_name = prog.outputs[0]
    report.ref_vs_fake_quant = compare_lsb(env[out_name], fq, prog.fmt(out_name)[1])
    provenance = {"generator": "bpgan.export.pipeline", "seed": VECTOR_SEED, "program_hash": prog.content_hash,
                  "numpy": np.__version__, "torch": torch.__version__}
    np.savez(out_dir / VECTORS_NAME, symbols=symbols, latent=latent, output=env[out_name],
             provenance=np.array(json.dumps(provenance, sort_keys=True)),
             **{f"layer/{op.output}": env[op.output] for op in prog.ops})

    if target == "c99":
        from .c99 import emit_c99, native

        report.c99 = emit_c99(prog, out_dir / "c99", **(c99_limits or {}))
        report.library = report.c99.out_dir
        report.verified_on_host = native.verify(prog, report.c99, symbols)
        return report
    from .tvm.lower import TARGETS, TvmDecoder, compile_program

    report.tuning = {}
    report.library = compile_program(prog, target, out_dir, schedule, isa, tune=tune, tune_size=tune_size, log=log,
                                     tune_summary=report.tuning)
    from .tvm.isa import sidecar_path
    if sidecar_path(report.library).is_file():
        report.isa = json.loads(sidecar_path(report.library).read_text()).get("isa") or ""
    report.schedule = schedule
    if TARGETS[target][2]:
        got = TvmDecoder(report.library)(latent)
        if not np.array_equal(got, env[out_name]):
            raise RuntimeError(f"TVM {target} output differs from the reference on the test vectors")
        report.verified_on_host = True
    elif target == "aarch64":
        from .tvm.qemu import verify

        report.qemu = verify(report.library, [latent], [env[out_name]])
    return report
