"""Integer program format 2: the op registry's schemas, new dtypes, several inputs and outputs, v1 still read."""
import json
import shutil

import numpy as np
import pytest

from bpgan.firmware_ref.bounds import AccumulatorOverflow, prove_no_overflow
from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.decoder import run_program
from bpgan.firmware_ref.formats import FORMAT, READABLE_FORMATS
from bpgan.firmware_ref.ops import REGISTRY
from bpgan.firmware_ref.program import JSON_NAME, Op, Program, ProgramError, load_program
from bpgan.toolkit.cli.decode import main as decode_main
from conftest import REPO

ZOO_PROGRAM = REPO / "zoo" / "bpgan-image-light" / "export"


def small_program():
    rng = np.random.default_rng(0)
    b = ProgramBuilder()
    x = b.input("x", "int8", 4, 2)
    a = b.conv("conv2d", "a", x, rng.integers(-9, 9, (4, 2, 3, 3)), rng.integers(-50, 50, 4), 8, "uint8", 6,
               padding=1, relu=True)
    t = b.conv("conv_transpose2d", "t", a, rng.integers(-9, 9, (4, 2, 4, 4)), np.zeros(2), 8, "int8", 6,
               stride=2, padding=1)
    return b.build([b.add("out", t, b.upsample_nearest("up", x, 2), "int8", 7)])


def norm_program():
    """A generator block: conv -> instance_norm (relu) -> reflect_pad -> conv."""
    rng = np.random.default_rng(5)
    b = ProgramBuilder()
    x = b.input("x", "int8", 4, 2)
    c = b.conv("conv2d", "c", x, rng.integers(-9, 9, (4, 2, 3, 3)), rng.integers(-50, 50, 4), 8, "int8", 5, padding=1)
    n = b.instance_norm("n", c, rng.integers(-127, 128, 4), 6, rng.integers(-999, 999, 4), "uint8", 6, relu=True)
    return b.build([b.conv("conv2d", "o", b.reflect_pad("r", n, 1), rng.integers(-9, 9, (2, 4, 3, 3)), np.zeros(2),
                           8, "int8", 7)])


def log2_program():
    """int16 samples -> log2_abs at 2^-2 -> a conv of the logs (the lossless flow's scale path)."""
    b = ProgramBuilder()
    x = b.input("x", "int16", 0, 1)
    lg = b.log2_abs("lg", x, 2)
    return b.build([b.conv("conv1d", "o", lg, np.ones((1, 1, 3)), np.zeros(1), 0, "uint8", 2, padding=1, relu=True)])


def forge(tmp_path, mutate, prog=None):
    """Save a program, let mutate(doc) edit its JSON, re-hash it as an exporter would: -> the folder."""
    folder = tmp_path / "prog"
    (prog or small_program()).save(folder)
    doc = json.loads((folder / JSON_NAME).read_text())
    mutate(doc)
    with np.load(folder / "program.npz") as z:
        arrays = {k: z[k] for k in z.files}
    forged = Program(doc["inputs"], doc["outputs"], doc["tensors"], [Op(**o) for o in doc["ops"]], arrays,
                     doc.get("symbol_table"), doc.get("meta", {}), doc["format"])
    doc["content_hash"] = forged.content_hash
    (folder / JSON_NAME).write_text(json.dumps(doc))
    return folder


def op_named(doc, name):
    return next(o for o in doc["ops"] if o["name"] == name)


BROKEN = {
    "conv without shift": (lambda d: op_named(d, "a")["attrs"].pop("shift"), r"op 'a' \(conv2d\): missing attribute 'shift'"),
    "shift of wrong length": (lambda d: op_named(d, "a")["attrs"].update(shift=[8, 8]),
                              r"op 'a' \(conv2d\): attribute 'shift' must be a list of 4 integers"),
    "ill-typed stride": (lambda d: op_named(d, "t")["attrs"].update(stride=["2", "2"]), r"attribute 'stride' needs integers"),
    "bool padding": (lambda d: op_named(d, "a")["attrs"].update(padding=[True, 1, 1, 1]), r"attribute 'padding'"),
    "unknown kind": (lambda d: op_named(d, "up").update(kind="upsample_bicubic"), r"op 'up' \(upsample_bicubic\): unknown op kind"),
    "unknown attribute": (lambda d: op_named(d, "up")["attrs"].update(mode="nearest"), r"unknown attribute\(s\) \['mode'\]"),
    "clip outside the dtype": (lambda d: op_named(d, "a")["attrs"].update(clip=[0, 300]), r"'clip' \[0, 300\] does not fit"),
    "misaligned add": (lambda d: op_named(d, "out")["attrs"].update(align=[0, 0]), r"op 'out' \(add\): attribute 'align' must be"),
    "missing weight": (lambda d: op_named(d, "a")["params"].update(weight="nope"), r"param 'weight' names no array"),
    "three inputs to add": (lambda d: op_named(d, "out")["inputs"].append("x"), r"takes 2 inputs, got 3"),
    "dtype out of the format": (lambda d: d["tensors"]["a"].update(dtype="float16"), r"tensor 'a': dtype must be one of"),
    "int16 in a format 1 file": (lambda d: (d.update(format=READABLE_FORMATS[0]), d["tensors"]["x"].update(dtype="int16")),
                                 r"tensor 'x': dtype must be one of uint8, int8 in bpgan-intprog/1"),
    "channels disagree": (lambda d: d["tensors"]["a"].update(channels=5), r"output tensor declares 5 channels"),
    "unknown format": (lambda d: d.update(format="bpgan-intprog/9"), r"has format 'bpgan-intprog/9'"),
    "tensor written twice": (lambda d: op_named(d, "up").update(output="a"), r"writes tensor 'a' a second time"),
    # instance_norm and reflect_pad (norm_program)
    "bad z_frac": (lambda d: op_named(d, "n")["attrs"].update(z_frac=13),
                   r"op 'n' \(instance_norm\): attribute 'z_frac' must be an integer in \[4, 12\]", norm_program),
    "z_frac not an integer": (lambda d: op_named(d, "n")["attrs"].update(z_frac=8.0), r"attribute 'z_frac'",
                              norm_program),
    "eps_shift out of range": (lambda d: op_named(d, "n")["attrs"].update(eps_shift=41),
                               r"attribute 'eps_shift' must be an integer in \[0, 40\]", norm_program),
    "norm shift of wrong length": (lambda d: op_named(d, "n")["attrs"].update(shift=[8, 8]),
                                   r"op 'n' \(instance_norm\): attribute 'shift' must be a list of 4 integers",
                                   norm_program),
    "norm without beta": (lambda d: op_named(d, "n")["params"].pop("bias"), r"op 'n' \(instance_norm\): param 'bias'",
                          norm_program),
    "norm clip outside the dtype": (lambda d: op_named(d, "n")["attrs"].update(clip=[-1, 255]),
                                    r"'clip' \[-1, 255\] does not fit the output dtype uint8", norm_program),
    "int16 input to instance_norm": (lambda d: d["tensors"]["c"].update(dtype="int16"),
                                     r"op 'n' \(instance_norm\): input must be int8 or uint8 .*got int16",
                                     norm_program),
    "padding out of range": (lambda d: op_named(d, "r")["attrs"].update(padding=[1, 65, 1, 1]),
                             r"op 'r' \(reflect_pad\): attribute 'padding' needs integers in \[0, 64\]", norm_program),
    "padding of a 1-D tensor in a 2-D program": (lambda d: op_named(d, "r")["attrs"].update(padding=[1, 1]),
                                                 r"attribute 'padding' must be a list of 4 integers", norm_program),
    "reflect_pad changes the format": (lambda d: d["tensors"]["r"].update(frac_bits=5),
                                       r"op 'r' \(reflect_pad\): output format", norm_program),
    "log2 frac out of range": (lambda d: op_named(d, "lg")["attrs"].update(frac=5),
                               r"op 'lg' \(log2_abs\): attribute 'frac' must be an integer in \[0, 4\]", log2_program),
    "log2 output at another scale": (lambda d: d["tensors"]["lg"].update(frac_bits=3),
                                     r"op 'lg' \(log2_abs\): the output is at 2\^-frac", log2_program),
    "log2 of an int32 tensor": (lambda d: d["tensors"]["x"].update(dtype="int32"),
                                r"op 'lg' \(log2_abs\): input dtype int32 is not one of", log2_program),
    "log2 of a fraction": (lambda d: d["tensors"]["x"].update(frac_bits=3),
                           r"op 'lg' \(log2_abs\): the input must be integers", log2_program),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_program_is_one_program_error_line(tmp_path, case):
    mutate, message, *make = BROKEN[case]
    folder = forge(tmp_path, mutate, make[0]() if make else None)
    with pytest.raises(ProgramError, match=message) as err:
        load_program(folder)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("case", ["conv without shift", "unknown kind", "int16 in a format 1 file"])
def test_bpgan_decode_refuses_a_broken_program_in_one_line(tmp_path, capsys, case):
    folder = forge(tmp_path, BROKEN[case][0])
    np.savez(tmp_path / "lat.npz", latent=np.zeros((1, 2, 3, 3), np.int8))
    assert decode_main([str(folder), str(tmp_path / "lat.npz"), "-o", str(tmp_path / "y.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bpgan-decode: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_every_kind_has_semantics_kernel_and_bound_where_it_does_arithmetic():
    arithmetic = {"conv2d", "conv_transpose2d", "conv1d", "conv_transpose1d", "add", "instance_norm", "log2_abs"}
    for kind, spec in REGISTRY.items():
        assert spec.kind == kind and spec.semantics.strip() and "\n" not in spec.semantics.strip()
        assert callable(spec.kernel) and (spec.bound is not None) == (kind in arithmetic), kind


def wide_program():
    """Format 2 only: an int16 second input, int16 / int32 tensors, two outputs."""
    rng = np.random.default_rng(3)
    b = ProgramBuilder()
    x = b.input("x", "int8", 4, 2)
    side = b.input("side", "int16", 8, 2)
    a = b.conv("conv2d", "a", x, rng.integers(-127, 128, (2, 2, 3, 3)), rng.integers(-99, 99, 2), 8, "uint8", 6,
               padding=1, relu=True)
    s = b.conv("conv2d", "s", side, rng.integers(-127, 128, (2, 2, 3, 3)), rng.integers(-99, 99, 2), 7, "int16", 8,
               padding=1)
    wide = b.add("wide", a, s, "int32", 8)
    narrow = b.clip("narrow", wide, -2 ** 15, 2 ** 15 - 1, "int16")
    return b.build([narrow, a])


def test_int16_and_int32_tensors_and_two_inputs_and_outputs_run_on_the_reference():
    prog = wide_program()
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (1, 2, 5, 6)).astype(np.int8)
    side = rng.integers(-2 ** 15, 2 ** 15, (1, 2, 5, 6)).astype(np.int16)
    out = run_program(prog, {"x": x, "side": side}, keep_all=True)
    assert out["narrow"].dtype == np.int16 and out["wide"].dtype == np.int32 and out["a"].dtype == np.uint8
    # wide = a * 2**2 + s at 2^-8, exactly (shift 0): the add of the aligned integers
    assert np.array_equal(out["wide"], out["a"].astype(np.int64) * 4 + out["s"])
    assert np.array_equal(out["narrow"], np.clip(out["wide"], -2 ** 15, 2 ** 15 - 1))
    assert set(run_program(prog, {"x": x, "side": side})) == {"narrow", "a"}


def test_an_int16_input_out_of_range_is_refused_in_one_line(tmp_path, capsys):
    prog = wide_program()
    prog.save(tmp_path / "wide")
    np.savez(tmp_path / "in.npz", x=np.zeros((1, 2, 3, 3), np.int8), side=np.full((1, 2, 3, 3), 40000, np.int32))
    assert decode_main([str(tmp_path / "wide"), str(tmp_path / "in.npz"), "-o", str(tmp_path / "y.npz")]) == 2
    err = capsys.readouterr().err
    assert "input 'side' has values in [40000, 40000], outside int16" in err and err.count("\n") == 1
    np.savez(tmp_path / "ok.npz", x=np.zeros((1, 2, 3, 3), np.int8), side=np.full((1, 2, 3, 3), -7, np.int16))
    assert decode_main([str(tmp_path / "wide"), str(tmp_path / "ok.npz"), "-o", str(tmp_path / "y.npz")]) == 0


def test_the_overflow_proof_covers_the_wide_dtypes():
    rng = np.random.default_rng(1)
    b = ProgramBuilder()
    x = b.input("x", "int16", 0, 64)
    b.conv("conv2d", "big", x, np.full((1, 64, 3, 3), 127), np.zeros(1), 0, "int32", 0)
    with pytest.raises(AccumulatorOverflow, match="layer 'big'"):
        b.build(["big"])  # 64 * 9 * 127 * 32768 > 2**31
    b = ProgramBuilder()
    x, y = b.input("x", "int32", 0, 1), b.input("y", "int32", 4, 1)
    with pytest.raises(AccumulatorOverflow, match="layer 'sum'"):
        b.build([b.add("sum", x, y, "int32", 0)])  # x << 4 leaves int32
    assert prove_no_overflow(wide_program())["wide"] < 2 ** 31
    del rng


def test_format_1_programs_still_load_and_save_migrates_them(tmp_path):
    prog = load_program(ZOO_PROGRAM)
    assert prog.format == READABLE_FORMATS[0] != FORMAT
    with np.load(ZOO_PROGRAM / "test_vectors.npz") as z:
        latent, want = z["latent"], run_program(prog, z["latent"])[prog.outputs[0]]
    shutil.copytree(ZOO_PROGRAM, tmp_path / "v1")
    prog.save(tmp_path / "v2")
    migrated = load_program(tmp_path / "v2")
    assert migrated.format == FORMAT and migrated.meta["model_hash"] == prog.meta["model_hash"]
    assert np.array_equal(run_program(migrated, latent)[migrated.outputs[0]], want)
    assert load_program(tmp_path / "v1").format == READABLE_FORMATS[0]  # the shipped files are left as they are
