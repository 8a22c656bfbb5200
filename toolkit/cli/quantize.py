"""bpgan-quantize RECIPE.yaml [--out DIR] [--until STAGE] [--device auto|cpu|cuda] [--max-minutes M]: recipe -> pruned 8-bit fixed-point model + report.

Also runs data-parallel: torchrun --nproc-per-node N -m bpgan.toolkit.cli.quantize RECIPE.yaml
--max-minutes slices a long run: when the time is up the current stage saves its state and the command
exits with status 3; the same command again resumes it, to the same weights as an unsliced run.
Training on a GPU keeps the integer contract: what is exported is checked on the CPU (bpgan-export).
"""
import argparse
import sys
import time
from pathlib import Path

import torch

from ..datasets import signal_crops
from ..recipes import RecipeError, load_recipe
from ..training.checkpoint import STAGE_ORDER, load_model
from ..training.distributed import Dist
from ..training.entropy_stage import load_entropy_metrics, train_entropy_model
from ..training.loop import Session, TimeSliced
from ..training.report import model_summary, write_report
from ..training.stages import StageRunner, generator_weights


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-quantize", description=__doc__.splitlines()[0])
    p.add_argument("recipe", help="YAML recipe file")
    p.add_argument("--out", default=None, help="run folder (default runs/<recipe name>)")
    p.add_argument("--until", choices=STAGE_ORDER, default=None, help="stop after this stage")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to train (auto: a GPU when torch sees one)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop cleanly after this many minutes (exit status 3); rerun to resume")
    return p.parse_args(argv)


SLICED = 3   # exit status of a run stopped by --max-minutes (resume by running it again)


def write_prior(model, train_data, recipe, folder: Path) -> Path:
    """The entropy coder's prior, from training crops only (never the images to be coded)."""
    from ..codec.codec import prior_from_batches
    from ..codec.prior import save_prior

    gen = torch.Generator().manual_seed(recipe.seed)
    n, batch = recipe.train.prior_crops, recipe.train.batch_size
    crops = (train_data.random_batch(min(batch, n - i), gen) for i in range(0, n, batch))
    path = folder / "prior.npy"
    save_prior(path, prior_from_batches(model, crops))
    return path


def main(argv=None) -> int:
    args = parse(argv)
    try:
        recipe = load_recipe(args.recipe)
    except RecipeError as e:
        print(f"bpgan-quantize: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out or Path("runs") / recipe.name)
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes is not None else None
    try:
        dist = Dist(args.device)
    except ValueError as e:
        print(f"bpgan-quantize: error: {e}", file=sys.stderr)
        return 2
    torch.manual_seed(recipe.seed)
    if dist.enabled and dist.main:
        print(f"bpgan-quantize: data parallel over {dist.world} processes ({dist.device.type})")
    try:
        data, modality = recipe.data, recipe.model_cfg().modality
        train_data = signal_crops(modality, data.train, data.crop, exclude=data.holdout)
        val_data = signal_crops(modality, data.train, data.val_crop, only=data.holdout) if data.holdout \
            else signal_crops(modality, data.val, data.val_crop)
        session = Session(recipe, out, train_data, val_data, dist, show_progress=not args.quiet, deadline=deadline)
        runner = StageRunner(session)
        results = runner.run(until=args.until)
        if dist.main:
            last = list(results)[-1]
            model, blob = load_model(runner.path(last))
            if blob["quant"] is not None and modality != "lossless":   # a lossless program carries its tables
                prior_path = write_prior(model, train_data, recipe, runner.path(last).parent)
                print(f"bpgan-quantize: entropy-coder prior from {recipe.train.prior_crops} training crops: {prior_path}")
                if recipe.entropy_model is not None:
                    entropy_path = train_entropy_model(model, recipe, prior_path.parent, show_progress=not args.quiet)
                    bits = load_entropy_metrics(entropy_path)["val_bits_per_symbol"]
                    print(f"bpgan-quantize: learned entropy model {entropy_path}: {bits['qat']:.3f} bits per symbol "
                          f"on the validation crops, the per-channel prior {bits['per_channel_prior']:.3f}")
            pruned = "admm_prune" in results
            targets = recipe.sparsity_targets(list(generator_weights(model))) if pruned else {}
            write_report(out, recipe, results, model_summary(model, blob), targets)
            print(f"bpgan-quantize: {len(results)} stage(s) done; model {runner.path(last)}")
            print(f"bpgan-quantize: report {out / 'report.md'} and {out / 'report.json'}")
    except TimeSliced as e:
        if dist.main:
            print(f"bpgan-quantize: time slice of {args.max_minutes:g} min used: {e}; run the same command "
                  f"again to resume")
        return SLICED
    except (RecipeError, ValueError) as e:
        print(f"bpgan-quantize: error: {e}", file=sys.stderr)
        return 2
    finally:
        dist.close()
    return 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
