"""The learned entropy model against the per-channel prior on the same symbols: file sizes and decode time.

  python scripts/entropy_compare.py RUN --data ../shared/data/kodak [--out RUN/entropy]
For every image: bpgan-encode writes two streams of the encoder's latent (no search), one coded by the run's
learned entropy model and one with --per-channel-prior; the sizes are the files'. Both decode to the same
pixels (the learned one through bpgan-decode on the reference and TVM engines, the per-channel one through the
same program's generator): checked, not assumed. Entropy decode time: the payload to symbols, the entropy
model's T program runs on each engine and the rANS decoder in Python (one process, this machine, warmed up). Writes entropy.json and entropy.md.
"""
import argparse
import contextlib
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bpgan.firmware_ref.bitstream import unpack
from bpgan.firmware_ref.bitstream_decode import StreamModel, decode_bitstream, decode_with, engine_for, read_symbols
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.cli import encode as encode_cli
from bpgan.toolkit.codec.image_io import int8_to_pixels
from bpgan.toolkit.codec.learned import ENTROPY_NAME
from bpgan.toolkit.datasets.images import image_paths
from bpgan.toolkit.models.entropy_net import load_entropy_net
from bpgan.toolkit.training.checkpoint import final_model_path


def cpu_model() -> str:
    """The CPU's model name and its SIMD flags that the kernels care about."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith(("flags", "Features"))), [])
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp", "i8mm") if f in flags]
    return f"{name or 'unknown'} ({' '.join(simd) or 'no listed SIMD flags'})"


def measure(run: Path, prog, path: Path, out: Path) -> dict:
    learned, plain = out / f"{path.stem}.bpg", out / f"{path.stem}-per-channel.bpg"
    with contextlib.redirect_stdout(io.StringIO()):
        assert encode_cli.main([str(run), str(path), "-o", str(learned)]) == 0
        assert encode_cli.main([str(run), str(path), "-o", str(plain), "--per-channel-prior"]) == 0
    row = {"image": path.name, "learned_bytes": learned.stat().st_size, "per_channel_bytes": plain.stat().st_size}
    data = learned.read_bytes()
    pixels = {}
    for engine in ("ref", "tvm"):
        model = StreamModel.of(prog, engine)
        read_symbols(model, data)   # warm: the first TVM step imports tvm and loads the library
        t0 = time.perf_counter()
        header, symbols = read_symbols(model, data)
        row[f"entropy_decode_{engine}_s"] = time.perf_counter() - t0
        pixels[engine] = int8_to_pixels(decode_bitstream(prog, data, engine)[1])
    plain_data = plain.read_bytes()   # its own model hash: the program's generator with the table alone
    table = StreamModel(prog.prior(), unpack(plain_data)[0].model_hash, prog.prior_precision_bits(),
                        prog.meta["config"]["downsample"], 3, "image")
    plain_pixels = int8_to_pixels(decode_with(table, plain_data, engine_for(prog, "ref"))[1])
    row["same_pixels"] = bool(np.array_equal(pixels["ref"], pixels["tvm"]) and
                              np.array_equal(pixels["ref"], plain_pixels))
    row["pixels"] = int(np.prod(header.original_size))
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--data", required=True)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    run = Path(args.run)
    out = Path(args.out or run / "entropy")
    out.mkdir(parents=True, exist_ok=True)
    prog = load_program(run / "export")
    if "entropy_model" not in prog.meta:
        print(f"entropy_compare: {run / 'export'} has no learned entropy model", file=sys.stderr)
        return 2
    rows = []
    for path in image_paths(args.data):
        rows.append(measure(run, prog, path, out))
        r = rows[-1]
        print(f"{r['image']}: {r['learned_bytes']} vs {r['per_channel_bytes']} bytes "
              f"({100 * (1 - r['learned_bytes'] / r['per_channel_bytes']):.1f}% fewer), same pixels {r['same_pixels']}")
    em = prog.meta["entropy_model"]
    stride = prog.meta["config"]["downsample"]
    net = load_entropy_net(final_model_path(run).with_name(ENTROPY_NAME))
    macs = net.macs_per_symbol()
    px = sum(r["pixels"] for r in rows)
    summary = {"images": len(rows), "learned_bpp": 8 * sum(r["learned_bytes"] for r in rows) / px,
               "per_channel_bpp": 8 * sum(r["per_channel_bytes"] for r in rows) / px,
               "same_pixels_everywhere": all(r["same_pixels"] for r in rows),
               "decode_kmac_per_pixel": em["channels"] * em["phases"] * macs / stride ** 2 / 1000,
               "entropy_decode_ref_s": float(np.mean([r["entropy_decode_ref_s"] for r in rows])),
               "entropy_decode_tvm_s": float(np.mean([r["entropy_decode_tvm_s"] for r in rows])),
               "cpu": cpu_model(), "date": time.strftime("%Y-%m-%d")}
    summary["saving"] = 1 - summary["learned_bpp"] / summary["per_channel_bpp"]
    (out / "entropy.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    s = summary
    md = ["| prior | bpp (files) | decode kMAC/pixel | entropy decode, ref / TVM (s per image) |", "|---|---|---|---|",
          f"| per-channel table | {s['per_channel_bpp']:.4f} | 0 | - |",
          f"| learned ({em['phases']} phases x {em['channels']} channels, width {em['width']}, {em['kernel']}x"
          f"{em['kernel']}, {em['spatial']} spatial) | {s['learned_bpp']:.4f} | {s['decode_kmac_per_pixel']:.2f} | "
          f"{s['entropy_decode_ref_s']:.2f} / {s['entropy_decode_tvm_s']:.2f} |",
          "", f"{s['images']} images; {100 * s['saving']:.1f}% fewer bits; identical pixels on every engine and "
          f"prior: {s['same_pixels_everywhere']}; {s['cpu']}, {s['date']}."]
    (out / "entropy.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
