"""Several bpgan-compare runs on one rate-distortion plot: the integer decoder of each, the anchors of the first.

python scripts/rd_plot.py OUT.png "C=8=runs/image-light/compare/compare.json" "C=12=..." [--title T]
Each argument is LABEL=compare.json (the label may itself hold '='; the path is after the last one).
"""
import argparse
import json
from pathlib import Path

from bpgan.toolkit.evaluation.plots import rd_plot


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("runs", nargs="+", help="LABEL=path/to/compare.json")
    p.add_argument("--title", default="Kodak, 24 images: integer decoder vs classical codecs")
    args = p.parse_args(argv)
    points, anchors, rate = {}, {}, "bpp"
    for item in args.runs:
        label, path = item.rsplit("=", 1)
        summary = json.loads(Path(path).read_text())
        rate = summary["rate_unit"]
        points[label] = summary["variants"]["reference"]
        anchors = anchors or summary["anchors"]
    metrics = (("psnr", "PSNR (dB)"), ("msssim", "MS-SSIM")) if rate == "bpp" else \
        (("pesq_nb", "PESQ-NB"), ("stoi", "STOI"))
    rd_plot(Path(args.out), points, anchors, args.title, rate=rate, metrics=metrics)
    print(f"rd_plot: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
