"""Lossless speech: the idf-audio flow against FLAC on held-out clips; ratio, bits/sample, speed per engine.

  python scripts/lossless_compare.py RUN --lj ../shared/data/ljspeech --libri ../shared/data/librispeech/test-other \
      [--out RUN/lossless]
Held out: LJ001-0029..0032 (the recipe's holdout) and the first clip of each of LibriSpeech test-other's 10
unseen speakers. For every file: the flow's stream (through the exported program, reference encoder), its
exact round trip on the reference and TVM engines, and FLAC at -8 (= --best) and -5 (its default) on the same
samples. Ratio = 16-bit PCM bytes / compressed bytes (the .bpg's whole file, header included; FLAC's file).
Speed: samples per second of one process on this machine, encode (reference) and decode per engine. Writes
lossless.json and lossless.md.
"""
import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bpgan.firmware_ref.lossless_stream import decode_lossless, encode_lossless, reference_engine, tvm_engine
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.audio.pcm import read_pcm, write_pcm

HOLDOUT_LJ = ["LJ001-0029.wav", "LJ001-0030.wav", "LJ001-0031.wav", "LJ001-0032.wav"]


def flac_bytes(samples: np.ndarray, rate: int, level: str) -> int:
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "x.wav"
        write_pcm(wav, samples, rate)
        subprocess.run(["flac", level, "-s", "-f", "-o", str(Path(d) / "x.flac"), str(wav)], check=True)
        return (Path(d) / "x.flac").stat().st_size


def measure(prog, engines: dict, path: Path) -> dict:
    x, rate = read_pcm(path)
    t0 = time.perf_counter()
    data = encode_lossless(prog, x, rate, engines["ref"])
    t1 = time.perf_counter()
    row = {"file": path.name, "rate": rate, "samples": int(x.size), "bpg_bytes": len(data),
           "encode_sps": x.size / (t1 - t0)}
    for engine in ("ref", "tvm"):
        t0 = time.perf_counter()
        back = decode_lossless(prog, data, engines[engine])[1]
        row[f"decode_{engine}_sps"] = x.size / (time.perf_counter() - t0)
        row[f"exact_{engine}"] = bool(np.array_equal(back, x))
    for level in ("-8", "-5"):
        row[f"flac{level}_bytes"] = flac_bytes(x, rate, level)
    return row


def summary(rows) -> dict:
    raw = sum(2 * r["samples"] for r in rows)
    n = sum(r["samples"] for r in rows)
    out = {"files": len(rows), "samples": n, "idf_ratio": raw / sum(r["bpg_bytes"] for r in rows),
           "idf_bits_per_sample": 8 * sum(r["bpg_bytes"] for r in rows) / n,
           "exact_everywhere": all(r["exact_ref"] and r["exact_tvm"] for r in rows)}
    for level in ("-8", "-5"):
        b = sum(r[f"flac{level}_bytes"] for r in rows)
        out[f"flac{level}_ratio"], out[f"flac{level}_bits_per_sample"] = raw / b, 8 * b / n
    out["idf_vs_flac-8"] = out["idf_ratio"] / out["flac-8_ratio"]
    for k in ("encode_sps", "decode_ref_sps", "decode_tvm_sps"):
        out[k] = n / sum(r["samples"] / r[k] for r in rows)
    return out


def cpu() -> str:
    """The CPU model and the SIMD flags that matter to the kernels."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in info if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"
    simd = [f for f in ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni") if f in flags]
    return f"{model} ({', '.join(simd) or 'no AVX2'})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--lj", required=True)
    p.add_argument("--libri", required=True)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    prog = load_program(Path(args.run) / "export")
    sets = {"LJ Speech held out (22.05 kHz)": [Path(args.lj) / n for n in HOLDOUT_LJ],
            "LibriSpeech test-other, 10 unseen speakers (16 kHz)":
                [sorted(d.glob("*.flac"))[0] for d in sorted(Path(args.libri).iterdir()) if d.is_dir()]}
    result = {"cpu": cpu(), "program": prog.content_hash, "sets": {}}
    engines = {"ref": reference_engine(prog), "tvm": tvm_engine(prog)}   # loaded once: speed excludes loading
    for name, files in sets.items():
        rows = [measure(prog, engines, f) for f in files]
        result["sets"][name] = {"rows": rows, "summary": summary(rows)}
        print(name, json.dumps(result["sets"][name]["summary"]), flush=True)
    out = Path(args.out or Path(args.run) / "lossless")
    out.mkdir(parents=True, exist_ok=True)
    (out / "lossless.json").write_text(json.dumps(result, indent=1))
    lines = ["| set | files | idf-audio ratio | bits/sample | FLAC -8 (= --best) | FLAC -5 | idf / FLAC -8 | "
             "exact (ref, TVM) | encode samples/s | decode ref samples/s | decode TVM samples/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in ((k, v["summary"]) for k, v in result["sets"].items()):
        lines.append(f"| {name} | {s['files']} | {s['idf_ratio']:.3f} | {s['idf_bits_per_sample']:.2f} | "
                     f"{s['flac-8_ratio']:.3f} | {s['flac-5_ratio']:.3f} | {s['idf_vs_flac-8']:.3f} | "
                     f"{'yes' if s['exact_everywhere'] else 'NO'} | {s['encode_sps']:,.0f} | "
                     f"{s['decode_ref_sps']:,.0f} | {s['decode_tvm_sps']:,.0f} |")
    lines.append(f"\nCPU: {result['cpu']}; one process, one core busy with other work as measured.")
    (out / "lossless.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
