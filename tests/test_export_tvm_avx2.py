"""The AVX2 exact path and ISA selection: an AVX2 library (built for x86-64-v3, so AVX2 code only) == the
reference on every plan; the ISA follows the target's features; a library refuses a CPU it cannot run on."""
import json

import numpy as np
import pytest

from bpgan.firmware_ref.decoder import run_program
from bpgan.firmware_ref.program import ProgramError

tvm_lower = pytest.importorskip("bpgan.export.tvm.lower")
import tvm  # noqa: E402

from bpgan.export.tvm import isa as tvm_isa  # noqa: E402
from test_export_tvm import pixel_shuffle_program, program_1d, program_2d, random_input  # noqa: E402

HAS_AVX2 = "avx2" in (tvm_isa.cpu_flags() or set())
needs_avx2 = pytest.mark.skipif(not HAS_AVX2, reason="this CPU cannot execute AVX2 code")


@pytest.fixture(scope="module")
def avx2_libs(tmp_path_factory):
    """Each plan compiled once with isa='avx2': {name: (program, library path)}."""
    root = tmp_path_factory.mktemp("avx2")
    out = {}
    for name, prog in [("2d", program_2d()), ("1d", program_1d()), ("ps", pixel_shuffle_program())]:
        out[name] = (prog, tvm_lower.compile_program(prog, "llvm", root / name, isa="avx2"))
    return out


def test_avx2_library_needs_only_avx2_and_says_so(avx2_libs):
    for _, lib in avx2_libs.values():
        info = json.loads(tvm_isa.sidecar_path(lib).read_text())
        assert info == {"isa": "avx2", "mcpu": "x86-64-v3", "requires_cpu_flags": ["avx2", "fma"]}


@needs_avx2
@pytest.mark.parametrize("plan,shape", [("2d", (1, 3, 5, 7)), ("2d", (1, 3, 1, 1)), ("2d", (1, 3, 8, 3)),
                                        ("1d", (1, 2, 9)), ("1d", (1, 2, 1)), ("ps", (1, 2, 6, 4))])
def test_avx2_library_equals_reference_on_random_and_extreme_inputs(avx2_libs, plan, shape):
    prog, lib = avx2_libs[plan]
    dec = tvm_lower.TvmDecoder(lib)
    dtype = prog.fmt(prog.inputs[0])[0]
    fills = (0, 255) if dtype == "uint8" else (-128, 127)
    inputs = [random_input(prog, shape, seed) for seed in range(3)] + [np.full(shape, f, dtype) for f in fills]
    for x in inputs:
        want = run_program(prog, x)[prog.outputs[0]]
        got = dec(x)
        assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize("mcpu,isa", [("x86-64-v3", "avx2"), ("znver3", "avx2"), ("haswell", "avx2"),
                                      ("cascadelake", "vnni"), ("sapphirerapids", "vnni"), ("x86-64", "generic")])
def test_isa_follows_the_targets_cpu_features(mcpu, isa):
    target = tvm.target.Target({"kind": "llvm", "mcpu": mcpu})
    assert tvm_isa.pick_isa(target).name == isa


def test_isa_follows_mattr_too():
    assert tvm_isa.pick_isa(tvm.target.Target({"kind": "llvm", "mattr": ["+avx2"]})).name == "avx2"
    no_vnni = tvm.target.Target({"kind": "llvm", "mcpu": "sapphirerapids", "mattr": ["-avx512vnni"]})
    assert tvm_isa.pick_isa(no_vnni).name == "avx2"


def test_other_targets_get_the_generic_kernels_and_an_explicit_isa_is_checked():
    assert tvm_isa.pick_isa(tvm_lower.target_of("aarch64")).name == "generic"
    assert tvm_isa.pick_isa(tvm_lower.target_of("c")).name == "generic"
    with pytest.raises(ProgramError, match="isa 'vnni' needs avx512vnni"):
        tvm_isa.pick_isa(tvm.target.Target({"kind": "llvm", "mcpu": "znver3"}), "vnni")
    with pytest.raises(ProgramError, match="unknown isa 'sse9'"):
        tvm_lower.compile_program(program_2d(), "llvm", "/nonexistent", isa="sse9")


def test_an_explicit_isa_picks_a_cpu_that_has_it():
    assert str(tvm_lower.target_of("llvm", isa="avx2").attrs["mcpu"]) == "x86-64-v3"
    assert tvm_isa.has_features(tvm_lower.target_of("llvm", isa="vnni"), ("avx512vnni",))
    assert str(tvm_lower.target_of("llvm", isa="generic", mcpu="znver3").attrs["mcpu"]) == "znver3"


def test_decoder_refuses_a_cpu_without_the_librarys_features(avx2_libs, monkeypatch):
    """A VNNI library on an AVX2-only CPU: one clear line instead of an illegal-instruction crash."""
    _, lib = avx2_libs["ps"]
    monkeypatch.setattr(tvm_isa, "cpu_flags", lambda: {"sse2", "avx"})
    with pytest.raises(tvm_isa.UnsupportedCpu) as err:
        tvm_lower.TvmDecoder(lib)
    msg = str(err.value)
    assert "\n" not in msg and "isa 'avx2'" in msg and "lacks avx2, fma" in msg
