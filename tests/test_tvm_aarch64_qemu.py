"""The aarch64 TVM library, run under qemu-aarch64, equals the reference decoder bit for bit (export/tvm_qemu).

Skipped, with the reason, where qemu-aarch64, the aarch64 cross gcc or the aarch64 TVM runtime (PyPI wheels,
downloaded once into the cache) is missing. The runtime and the loader are cached across runs; the programs
are compiled once per module.
"""
import numpy as np
import pytest

from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.decoder import run_program
from test_export_tvm import pixel_shuffle_program, program_1d, program_2d, rand_w, random_input

tvm_lower = pytest.importorskip("bpgan.export.tvm.lower")
from bpgan.export.tvm import qemu as tvm_qemu  # after the skip: tvm_qemu is only useful with TVM


def two_io_program():
    """Two inputs and two outputs: the loader passes several tensors and unpacks main's tuple."""
    rng = np.random.default_rng(3)
    b = ProgramBuilder({"plan": "two inputs, two outputs"})
    cat = b.concat("cat", [b.input("x", "int8", 4, 2), b.input("y", "int8", 4, 3)])
    c = b.conv("conv2d", "c", cat, rand_w(rng, (4, 5, 3, 3)), rng.integers(-99, 99, 4), 8, "int8", 5, padding=1)
    return b.build([c, b.clip("cl", cat, 0, 127, "uint8")])


@pytest.fixture(scope="module")
def qemu_ready():
    """The tools, the runtime (downloaded at most once per cache) and the loader, or a skip saying what is missing."""
    try:
        tvm_qemu.check_tools()
        tvm_qemu.loader_path()
    except tvm_qemu.Unavailable as e:
        pytest.skip(f"aarch64 under qemu unavailable: {e}")


@pytest.fixture(scope="module")
def libs(qemu_ready, tmp_path_factory):
    """Each plan compiled once for aarch64: name -> (program, decoder-aarch64.tar)."""
    root = tmp_path_factory.mktemp("aarch64")
    plans = {"2d": program_2d(), "1d": program_1d(), "ps": pixel_shuffle_program(), "io": two_io_program()}
    return {name: (prog, tvm_lower.compile_program(prog, "aarch64", root / name)) for name, prog in plans.items()}


SHAPES = {"2d": [(1, 3, 5, 7), (1, 3, 1, 1), (1, 3, 8, 3)], "1d": [(1, 2, 9), (1, 2, 1), (1, 2, 16)],
          "ps": [(1, 2, 4, 6), (1, 2, 7, 5)]}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_aarch64_library_equals_the_reference_under_qemu(libs, name):
    """Random inputs of several sizes (the spatial size is symbolic): one qemu process, one main call each."""
    prog, lib = libs[name]
    xs = [random_input(prog, shape, seed) for seed, shape in enumerate(SHAPES[name])]
    outs, main_s, _ = tvm_qemu.run(lib, [[x] for x in xs])
    assert len(outs) == len(xs) and len(main_s) == len(xs)
    for x, (got,) in zip(xs, outs):
        want = run_program(prog, x)[prog.outputs[0]]
        assert got.dtype == want.dtype and np.array_equal(got, want), (name, x.shape)


def test_several_inputs_and_outputs(libs):
    prog, lib = libs["io"]
    rng = np.random.default_rng(7)
    x, y = rng.integers(-128, 128, (1, 2, 5, 6)).astype(np.int8), rng.integers(-128, 128, (1, 3, 5, 6)).astype(np.int8)
    (outs,), _, _ = tvm_qemu.run(lib, [[x, y]])
    want = run_program(prog, {"x": x, "y": y})
    assert [o.dtype for o in outs] == [want[n].dtype for n in prog.outputs]
    assert all(np.array_equal(o, want[n]) for o, n in zip(outs, prog.outputs))


def test_verify_says_verified_and_refuses_a_difference(libs):
    prog, lib = libs["ps"]
    x = random_input(prog, (1, 2, 3, 4), 11)
    want = run_program(prog, x)[prog.outputs[0]]
    assert tvm_qemu.verify(lib, [x], [want]).startswith("verified bit-exact under qemu-aarch64")
    wrong = want.copy()
    wrong.flat[5] ^= 1
    with pytest.raises(RuntimeError, match="differs from the reference"):
        tvm_qemu.verify(lib, [x], [wrong])


def test_without_qemu_the_export_keeps_the_old_message_with_the_reason(monkeypatch, tmp_path):
    """No toolchain check passes for a missing binary; nothing is run or downloaded (runs everywhere)."""
    monkeypatch.setattr(tvm_qemu, "QEMU", "qemu-aarch64-not-installed")
    line = tvm_qemu.verify(tmp_path / "decoder-aarch64.tar", [np.zeros((1, 1, 1, 1), np.int8)], [])
    assert line == f"{tvm_qemu.NOT_VERIFIED} (no qemu-aarch64-not-installed on PATH (apt-get install qemu-user))"


def test_a_failed_download_is_one_line(monkeypatch, tmp_path):
    """pip with no index and an empty find-links folder fails at once, offline too."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BPGAN_TVM_AARCH64_RUNTIME", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(tvm_qemu.Unavailable) as e:
        tvm_qemu.runtime_dir()
    assert str(e.value).startswith("cannot download the aarch64 TVM runtime") and "\n" not in str(e.value)
    assert not list((tmp_path / "cache").rglob("*.so"))  # nothing half-made is left to look cached


@pytest.fixture(scope="module")
def libs_neon(qemu_ready, tmp_path_factory):
    """The same plans on the dot-product kernels (qemu-aarch64's default cpu, max, has i8mm and dotprod):
    (isa, name) -> (program, library)."""
    root = tmp_path_factory.mktemp("aarch64_neon")
    plans = {"2d": program_2d(), "1d": program_1d(), "ps": pixel_shuffle_program()}
    return {(isa, name): (prog, tvm_lower.compile_program(prog, "aarch64", root / isa / name, isa=isa))
            for isa in ("i8mm", "dotprod") for name, prog in plans.items()}


@pytest.mark.parametrize("isa,instruction", [("i8mm", "usdot"), ("dotprod", "sdot")])
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_aarch64_dot_product_kernels_equal_the_reference_under_qemu(libs_neon, isa, instruction, name, tmp_path):
    import json
    import re
    import shutil
    import subprocess
    import tarfile
    prog, lib = libs_neon[(isa, name)]
    assert json.loads(lib.with_name("decoder-aarch64.isa.json").read_text())["requires_cpu_flags"] == \
        sorted(["asimd", {"i8mm": "i8mm", "dotprod": "asimddp"}[isa]])
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    if objdump:   # the kernels really run on the instruction (binutils-aarch64-linux-gnu comes with the cross gcc)
        with tarfile.open(lib) as tar:
            tar.extractall(tmp_path, filter="data")
        asm = "".join(subprocess.run([objdump, "-d", str(o)], capture_output=True, text=True).stdout
                      for o in tmp_path.glob("*.o"))
        assert re.search(rf"\s{instruction}\s", asm)
    xs = [random_input(prog, shape, seed) for seed, shape in enumerate(SHAPES[name])]
    outs, _, _ = tvm_qemu.run(lib, [[x] for x in xs])
    for x, (got,) in zip(xs, outs):
        assert np.array_equal(got, run_program(prog, x)[prog.outputs[0]]), (isa, name, x.shape)


def test_an_isa_the_target_cannot_have_is_refused_in_one_line(tmp_path):
    from bpgan.firmware_ref.program import ProgramError
    with pytest.raises(ProgramError, match="isa 'i8mm' needs neon, i8mm"):
        tvm_lower.compile_program(program_2d(), "llvm", tmp_path, isa="i8mm")
