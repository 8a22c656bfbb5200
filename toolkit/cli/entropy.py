"""bpgan-entropy RUN RECIPE.yaml [--quiet]: train the recipe's learned entropy model for a finished image run.

bpgan-quantize runs the same stage after the codec's stages when the recipe has an `entropy_model` section;
this command adds one to a run trained without it (a shipped model's folder, say). The codec stays frozen, so
the decoded pixels do not change, only the bits: RUN's final stage gets entropy_model.pt (and
entropy_metrics.json) beside its prior.npy, and bpgan-export puts the entropy program into the export.
"""
import argparse
import sys
from pathlib import Path


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-entropy", description=__doc__.splitlines()[0])
    p.add_argument("run", help="a finished run folder (quantized final stage with prior.npy)")
    p.add_argument("recipe", help="recipe with an entropy_model section (its data.train and data.val are used)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    import torch

    from ..recipes import RecipeError, load_recipe
    from ..training.checkpoint import final_model_path, load_model
    from ..training.entropy_stage import load_entropy_metrics, saving, train_entropy_model

    try:
        recipe = load_recipe(args.recipe)
        if recipe.entropy_model is None:
            raise RecipeError(f"{args.recipe}: no entropy_model section")
        model_file = final_model_path(Path(args.run))
        model, blob = load_model(model_file)
        if blob["quant"] is None or getattr(model, "modality", None) != "image" or \
                not (model_file.parent / "prior.npy").is_file():
            raise ValueError(f"{model_file}: a learned entropy model needs a quantized image model with prior.npy")
        if blob["config"] != recipe.model_cfg().model_dump():
            raise ValueError(f"{model_file} is not a model of {args.recipe}'s configuration")
        torch.manual_seed(recipe.seed)
        path = train_entropy_model(model, recipe, model_file.parent, show_progress=not args.quiet)
    except (RecipeError, ValueError, OSError) as e:
        print(f"bpgan-entropy: error: {e}", file=sys.stderr)
        return 2
    metrics = load_entropy_metrics(path)
    bits = metrics["val_bits_per_symbol"]
    print(f"bpgan-entropy: {path}: {bits['qat']:.3f} bits per symbol on the validation crops, the per-channel prior "
          f"{bits['per_channel_prior']:.3f} ({100 * saving(metrics):.1f}% fewer)")
    return 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
