"""bpgan-export --tune N (export/tvm/tune.py): measured register tiles, stored beside the library, reused, exact."""
import json

import numpy as np
import pytest

from bpgan.firmware_ref.decoder import run_program
from bpgan.firmware_ref.program import ProgramError

tvm_lower = pytest.importorskip("bpgan.export.tvm.lower")
from bpgan.export.tvm import tune  # noqa: E402
from bpgan.export.tvm.isa import pick_isa  # noqa: E402
from test_export_tvm import program_1d, program_2d, random_input  # noqa: E402

SIZES = {"2d": ((8, 8), [(1, 3, 5, 7), (1, 3, 8, 3)]), "1d": ((24,), [(1, 2, 9), (1, 2, 31)])}
PROGRAMS = {"2d": program_2d, "1d": program_1d}


def _compile(prog, folder, **kw):
    summary = {}
    lib = tvm_lower.compile_program(prog, "llvm", folder, tune_summary=summary, **kw)
    return tvm_lower.TvmDecoder(lib), tune.tune_path(lib), summary


def _exact(prog, dec, shapes):
    for seed, shape in enumerate(shapes):
        x = random_input(prog, shape, seed)
        assert np.array_equal(dec(x), run_program(prog, x)[prog.outputs[0]]), shape


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_tuned_library_is_exact_and_its_database_is_reused(tmp_path, name):
    prog, (size, shapes) = PROGRAMS[name](), SIZES[name]
    dec, db_path, summary = _compile(prog, tmp_path, tune=3, tune_size=size)
    kernels = len(tune.conv_plans(prog, pick_isa(tvm_lower.target_of("llvm"))))
    assert kernels >= 2 and summary["kernels"] == summary["measured"] == kernels and summary["reused"] == 0
    entries = json.loads(db_path.read_text())["entries"]
    assert len(entries) == kernels and all(1 <= e["tried"] <= 3 and e["ms"] <= e["default_ms"]
                                           for e in entries.values())
    _exact(prog, dec, shapes)
    before = db_path.read_bytes()
    dec, _, summary = _compile(prog, tmp_path)              # no --tune: the database still serves
    assert summary["reused"] == kernels and summary["measured"] == 0 and db_path.read_bytes() == before
    _exact(prog, dec, shapes)
    _, _, summary = _compile(prog, tmp_path, tune=3, tune_size=size)
    assert summary["reused"] == kernels and db_path.read_bytes() == before    # measured enough already
    _, _, summary = _compile(prog, tmp_path, tune=3, tune_size=(9, 9) if name == "2d" else (25,))
    assert summary["measured"] == kernels   # another size: measured again


def test_every_tile_in_the_budget_is_exact_and_changes_the_kernel(tmp_path):
    """The database's tiles reach the lowering: the largest other tile of each kernel builds different code, and
    it decodes exactly."""
    prog = program_2d()
    isa = pick_isa(tvm_lower.target_of("llvm"))
    plans = tune.conv_plans(prog, isa)
    other = {name: tune.candidates(plan, 2)[-1] for name, plan, _ in plans}
    assert all(t != tune.tiles_for(plan) for (name, plan, _), t in zip(plans, other.values()))
    plain = tvm_lower.to_relax(prog, 2, isa).script()
    assert tvm_lower.to_relax(prog, 2, isa, other).script() != plain
    tgt = tvm_lower.target_of("llvm")
    db = {"format": tune.FORMAT, "entries": {
        tune._key(name, plan, isa, tgt): {"tob": other[name].tob, "tile_x": other[name].tile_x, "ms": 1.0,
                                          "default_ms": 1.0, "tried": 2, "size": [8, 8]} for name, plan, _ in plans}}
    (tmp_path / "decoder-llvm.tune.json").write_text(json.dumps(db))
    dec, _, summary = _compile(prog, tmp_path, tune_size=(8, 8))
    assert summary["reused"] == len(plans)
    _exact(prog, dec, SIZES["2d"][1])


def test_a_forged_or_foreign_database_is_one_line(tmp_path):
    prog = program_2d()
    db_path = tmp_path / "decoder-llvm.tune.json"
    db_path.write_text("not json")
    with pytest.raises(ProgramError, match="is not a tuning database"):
        _compile(prog, tmp_path)
    _compile(prog, tmp_path / "ok", tune=1, tune_size=(8, 8))
    db = json.loads((tmp_path / "ok" / "decoder-llvm.tune.json").read_text())
    for e in db["entries"].values():
        e["tob"], e["tile_x"] = 1, 99
    db_path.write_text(json.dumps(db))
    with pytest.raises(ProgramError, match="do not fit its kernel's register budget"):
        _compile(prog, tmp_path, tune_size=(8, 8))


def test_tune_needs_this_machine_and_a_size_of_the_programs_dims(tmp_path):
    prog = program_2d()
    with pytest.raises(ProgramError, match="needs --target llvm"):
        tvm_lower.compile_program(prog, "aarch64", tmp_path, tune=2)
    with pytest.raises(ProgramError, match="needs 2 size"):
        tvm_lower.compile_program(prog, "llvm", tmp_path, tune=2, tune_size=(8,))
    with pytest.raises(ProgramError, match="expected ROWSxCOLUMNS"):
        tune.parse_size("8xa")
    assert tune.parse_size("32x48") == (32, 48) and tune.parse_size(None) is None
