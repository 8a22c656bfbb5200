import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="session")
def exported_tiny_run(tmp_path_factory):
    """A tiny run through every stage (with its prior.npy), exported for llvm: shared by CLI tests."""
    from bpgan.export.pipeline import export_run
    from bpgan.toolkit.cli.quantize import main as quantize_main
    from tiny_recipe import write_tiny

    d = tmp_path_factory.mktemp("exported")
    run = d / "run"
    assert quantize_main([str(write_tiny(d / "tiny.yaml")), "--out", str(run), "--quiet"]) == 0
    export_run(run, "llvm")
    return run


def max_partial_sum(prog) -> int:
    """Largest |b[o]| + sum |w[o]| * max|x| over every conv output channel o of an integer program.

    It bounds every partial sum of every accumulator, bias included, in any summation order. Torch's
    fake-quant carries each partial sum as that integer times a power of two, so it computes the exact
    accumulator when the bound is below 2**53 (float64) or 2**24 (float32), whatever order the conv sums in.
    """
    import numpy as np

    from bpgan.firmware_ref.bounds import conv_bounds
    sums = [conv_bounds(prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]], prog.fmt(op.inputs[0])[0],
                        op.kind.startswith("conv_transpose"))[2] + np.abs(prog.arrays[op.params["bias"]].astype(np.int64))
            for op in prog.ops if op.kind.startswith("conv")]
    assert sums, "no conv in the program"
    return int(max(s.max() for s in sums))


def float64_copy(model):
    """A float64 deep copy of a QAT model, checked to hold the same int8 weights at the same scales.

    (Brevitas derives a weight scale from max|w| / 127 and a ceil(log2); in float64 that could in principle
    pick another power of two than in float32, which would be a different integer network.)
    """
    import copy

    from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer
    m64 = copy.deepcopy(model).double().eval()
    layers64 = dict(m64.generator.named_modules())
    pairs = [(n, a, layers64[n]) for n, a in model.generator.named_modules()
             if isinstance(a, QuantWeightBiasInputOutputLayer)]
    assert pairs, "no Brevitas layer in the generator"
    for name, a, b in pairs:
        qa, qb = a.quant_weight(), b.quant_weight()
        assert qb.value.dtype == torch.float64, name
        assert torch.equal(qa.int(), qb.int()) and torch.equal(qa.scale.double(), qb.scale), name
    return m64


def fake_quant_lsb(model, symbols, frac_bits: int):
    """Brevitas fake-quant generator output on latent symbols, in output LSBs (times 2**frac_bits), float64.

    No rounding here: the scaling by a power of two is exact, so an output off the LSB grid stays visible.
    """
    import numpy as np
    with torch.no_grad():
        y = model.generator(model.quantizer.dequantize(torch.from_numpy(np.asarray(symbols, dtype=np.int64))))
    return y.numpy().astype(np.float64) * 2.0 ** frac_bits
