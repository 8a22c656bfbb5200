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
