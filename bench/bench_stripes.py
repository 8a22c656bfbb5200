"""Stripe decoding on the reference decoder: peak activation memory, recompute and time per band height.

python bench/bench_stripes.py [EXPORT_OR_RUN] [--latent 32x48] [--rows 16,32,64,128,144,512]
Default: zoo/bpgan-image-light at 768x512 (latent 32x48). Independent bands (run_in_stripes): output
rows per band, the peak bytes of live activations (the program's int8/uint8 tensors, as a device would
hold them), conv MACs with halos over MACs without, time. Row cache (run_streaming, --stream-rows):
peak bytes held, time. Every output is checked byte-identical to full frame.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from bpgan.firmware_ref.decoder import run_program, symbols_to_latent  # noqa: E402
from bpgan.firmware_ref.program import load_program  # noqa: E402
from bpgan.firmware_ref.stripes import band_cost, choose_band, run_in_stripes, run_streaming  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=str(REPO / "zoo" / "bpgan-image-light"))
    p.add_argument("--latent", default="32x48", help="latent size, HxW (or N for 1-D programs)")
    p.add_argument("--rows", default="16,32,64,128,144,512")
    p.add_argument("--stream-rows", default="1,4,8,16")
    args = p.parse_args(argv)
    folder = Path(args.model)
    prog = load_program(folder / "export" if (folder / "export" / "program.json").is_file() else folder)
    hw = tuple(int(v) for v in args.latent.split("x"))
    lat = symbols_to_latent(prog, np.random.default_rng(0).integers(0, len(prog.symbols()),
                                                                    (1, prog.prior().shape[0]) + hw))
    t0 = time.perf_counter()
    want = run_program(prog, lat)[prog.outputs[0]]
    full_s = time.perf_counter() - t0
    print(f"machine: {describe()}")
    print(f"model: {folder}, latent {hw} -> output {want.shape[2:]}; full frame {1e3 * full_s:.0f} ms")
    print(f"{'band rows':>9s} {'peak KB':>9s} {'full KB':>9s} {'recompute':>10s} {'ms':>8s}  identical")
    for rows in [int(r) for r in args.rows.split(",")]:
        cost = band_cost(prog, hw, rows)
        t0 = time.perf_counter()
        same = np.array_equal(run_in_stripes(prog, lat, rows), want)
        print(f"{rows:9d} {cost['peak_bytes'] / 1024:9.0f} {cost['full_frame_peak_bytes'] / 1024:9.0f} "
              f"{100 * cost['recompute']:9.1f}% {1e3 * (time.perf_counter() - t0):8.0f}  {same}")
    print(f"row cache (run_streaming, no recompute): {'band rows':>9s} {'peak KB':>9s} {'ms':>8s}  identical")
    for rows in [int(r) for r in args.stream_rows.split(",")]:
        stats = {}
        t0 = time.perf_counter()
        same = np.array_equal(run_streaming(prog, lat, rows, stats), want)
        print(f"{'':39s} {rows:9d} {stats['peak_bytes'] / 1024:9.0f} {1e3 * (time.perf_counter() - t0):8.0f}  {same}")
    chosen = choose_band(prog, hw)
    print(f"chosen (least memory with recompute <= 25%): {chosen['band_rows']} rows, "
          f"{chosen['peak_bytes'] / 1024:.0f} KB, +{100 * chosen['recompute']:.1f}% MACs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
