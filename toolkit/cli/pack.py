"""bpgan-pack SOURCE OUT.npz --crop S [--count N] [--seed K] [--max-mib 64]: image folder -> one packed crop file.

The file a recipe's data.train can name instead of the folder, small enough to travel to an
accelerator machine (toolkit/datasets/packed.py).
"""
import argparse
import sys
from pathlib import Path


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-pack", description=__doc__.splitlines()[0])
    p.add_argument("source", help="folder of images (or 'embedded')")
    p.add_argument("out", help="output .npz")
    p.add_argument("--crop", type=int, default=256, help="crop side in pixels (at least the recipe's crop)")
    p.add_argument("--count", type=int, default=None, help="number of crops (default: as many as fit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-mib", type=float, default=64.0, help="size limit of the file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    from ..datasets.packed import crops_that_fit, pack_crops
    limit = int(args.max_mib * 2 ** 20)
    count = args.count if args.count is not None else crops_that_fit(max(args.crop, 1), limit)
    if not args.out.endswith(".npz") or args.crop < 1 or count < 1:
        print("bpgan-pack: error: OUT must end in .npz, and --crop and --count be at least 1", file=sys.stderr)
        return 2
    try:
        meta = pack_crops(args.source, args.out, args.crop, count, args.seed, limit)
    except (ValueError, OSError) as e:
        print(f"bpgan-pack: error: {e}", file=sys.stderr)
        return 2
    size = Path(args.out).stat().st_size
    print(f"bpgan-pack: {meta['count']} crops of {args.crop}x{args.crop} from {len(meta['images'])} images "
          f"-> {args.out} ({size / 2 ** 20:.1f} MiB)")
    return 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
