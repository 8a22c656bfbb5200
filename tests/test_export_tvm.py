"""Reference decoder == TVM llvm module, element for element, for every op kind (no tolerance)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.decoder import run_program
from bpgan.firmware_ref.ops import REGISTRY
from bpgan.firmware_ref.program import CONV_KINDS, OP_KINDS

tvm_lower = pytest.importorskip("bpgan.export.tvm.lower")


def rand_w(rng, shape, peak=127):
    return rng.integers(-peak, peak + 1, shape).astype(np.int8)


def program_2d():
    """Every 2-D op kind: per-channel shifts, a left shift (k < 0), uint8 and int8 tensors."""
    rng = np.random.default_rng(0)
    b = ProgramBuilder({"plan": "all 2-D op kinds"})
    x = b.input("x", "int8", 4, 3)
    a = b.conv("conv2d", "a", x, rand_w(rng, (8, 3, 3, 3)), rng.integers(-4000, 4000, 8), [7, 8] * 4, "uint8", 6,
               padding=1, relu=True)
    t = b.conv("conv_transpose2d", "t", a, rand_w(rng, (8, 4, 4, 4)), rng.integers(-900, 900, 4), 9, "int8", 6,
               stride=2, padding=1)
    cl = b.clip("cl", t, 0, 127, "uint8")
    up = b.upsample_nearest("up", b.conv("conv2d", "d", a, rand_w(rng, (4, 8, 1, 1)), np.zeros(4), 9, "uint8", 6,
                                         stride=1), 2)
    left = b.conv("conv2d", "left", x, rand_w(rng, (4, 3, 1, 1), 3), rng.integers(-9, 9, 4), 0, "int8", 6)  # k=-2
    cat = b.reflect_pad("rp", b.concat("cat", [cl, up]), [1, 1, 1, 0])   # asymmetric; >= 2 rows, columns here
    s2 = b.add("sum", b.conv("conv2d", "e", cat, rand_w(rng, (4, 8, 3, 2)), rng.integers(-99, 99, 4), 8, "int8", 5),
               cl, "uint8", 6, relu=True)
    out = b.add("out", s2, b.upsample_nearest("left_up", left, 2), "int8", 7)
    return b.build([out])


def program_1d():
    rng = np.random.default_rng(1)
    b = ProgramBuilder({"plan": "1-D op kinds"})
    x = b.input("x", "int8", 5, 2)
    h = b.conv("conv1d", "h", x, rand_w(rng, (6, 2, 5)), rng.integers(-500, 500, 6), 8, "uint8", 6, stride=1, padding=2)
    u = b.conv("conv_transpose1d", "u", h, rand_w(rng, (6, 3, 4)), rng.integers(-500, 500, 3), 9, "int8", 5,
               stride=2, padding=1)
    d = b.conv("conv1d", "d", h, rand_w(rng, (3, 6, 3)), np.zeros(3), 8, "int8", 5, stride=1, padding=1)
    v = b.conv("conv1d", "v", b.reflect_pad("rp", u, [0, 1]), rand_w(rng, (3, 3, 2)), rng.integers(-99, 99, 3), 7,
               "int8", 5)   # u has >= 2 samples
    out = b.add("out", v, b.upsample_nearest("d_up", d, 2), "int8", 7)
    return b.build([out])


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Compile each plan once: (program, decoder) pairs."""
    root = tmp_path_factory.mktemp("tvm")
    out = {}
    plans = [("2d", program_2d()), ("1d", program_1d()), ("ps", pixel_shuffle_program()), ("unpool", unpool_chain()),
             ("norm", norm_chain()), ("norm1d", norm_chain_1d()), ("log2", log2_chain_1d())]
    for name, prog in plans:
        prog.save(root / name)
        out[name] = (prog, tvm_lower.TvmDecoder(tvm_lower.compile_program(prog, "llvm", root / name)), root / name)
    return out


def pixel_shuffle_program():
    rng = np.random.default_rng(2)
    b = ProgramBuilder()
    x = b.input("x", "uint8", 6, 2)
    c = b.conv("conv2d", "c", x, rand_w(rng, (12, 2, 3, 3)), rng.integers(-99, 99, 12), 8, "uint8", 6,
               stride=[1, 2], padding=[1, 0, 1, 2])  # asymmetric stride and padding
    return b.build([b.pixel_shuffle("ps", c, 2)])


def unpool_chain(k=2):
    """A generator's SAE-SPN step: uint8 features, int8 logits from a conv of them, argmax_unpool, a conv.

    16 features and 16*k*k logits take the blocked kernels, so the unpool reads both back from NCHW16c; the
    logits conv's small weights and large shift keep its outputs in a few levels, so ties are common."""
    rng = np.random.default_rng(4)
    b = ProgramBuilder({"plan": "argmax_unpool chain"})
    x = b.input("x", "int8", 4, 3)
    f = b.conv("conv2d", "feat", x, rand_w(rng, (16, 3, 3, 3)), rng.integers(-999, 999, 16), 8, "uint8", 6,
               padding=1, relu=True)
    lg = b.conv("conv2d", "spn", f, rand_w(rng, (16 * k * k, 16, 3, 3), 2), rng.integers(-99, 99, 16 * k * k), 11,
                "int8", 5, padding=1)
    u = b.argmax_unpool("unpool", f, lg, k)
    return b.build([b.conv("conv2d", "tail", u, rand_w(rng, (3, 16, 3, 3)), rng.integers(-99, 99, 3), 9, "int8", 7,
                           padding=1)])


def norm_chain():
    """A generator's residual-block head (Agustsson et al.): conv -> instance_norm (relu) -> reflect_pad -> conv, then
    a second instance_norm of the int8 conv output at z 2^-12 with per-channel gamma scales. 16 channels: the convs
    take the blocked kernels, so the norms read NCHW back from NCHW16c."""
    rng = np.random.default_rng(5)
    b = ProgramBuilder({"plan": "instance_norm chain"})
    x = b.input("x", "int8", 4, 3)
    c1 = b.conv("conv2d", "c1", x, rand_w(rng, (16, 3, 3, 3)), rng.integers(-999, 999, 16), 8, "int8", 5, padding=1)
    n1 = b.instance_norm("n1", c1, rand_w(rng, 16), 6, rng.integers(-9999, 9999, 16), "uint8", 6, relu=True)
    c2 = b.conv("conv2d", "c2", b.reflect_pad("rp", n1, 1), rand_w(rng, (16, 16, 3, 3)), rng.integers(-999, 999, 16),
                9, "int8", 5)
    n2 = b.instance_norm("n2", c2, rand_w(rng, 16), rng.integers(5, 8, 16), rng.integers(-2 ** 17, 2 ** 17, 16),
                         "int8", 5, z_frac=12, eps_shift=2)
    return b.build([n2])


def norm_chain_1d():
    """1-D: instance_norm of a uint8 tensor (a ReLU's), reflect_pad [2, 1], conv1d."""
    rng = np.random.default_rng(6)
    b = ProgramBuilder({"plan": "instance_norm 1-D"})
    x = b.input("x", "int8", 4, 2)
    h = b.conv("conv1d", "h", x, rand_w(rng, (4, 2, 3)), rng.integers(-999, 999, 4), 8, "uint8", 6, padding=1,
               relu=True)
    n = b.instance_norm("n", h, rand_w(rng, 4), [5, 6, 7, 8], rng.integers(-999, 999, 4), "int8", 5, z_frac=10)
    return b.build([b.conv("conv1d", "tail", b.reflect_pad("rp", n, [2, 1]), rand_w(rng, (3, 4, 4)),
                           rng.integers(-99, 99, 3), 8, "int8", 7)])


def log2_chain_1d():
    """1-D: int16 samples -> conv1d to int16 (saturating) -> log2_abs (q = 2) -> conv1d with relu: the lossless
    flow's scale path (toolkit/models/idf_program.py)."""
    rng = np.random.default_rng(8)
    b = ProgramBuilder({"plan": "log2_abs 1-D"})
    x = b.input("x", "int16", 0, 2)
    d = b.conv("conv1d", "d", x, rng.integers(-3, 4, (3, 2, 3)), np.zeros(3), 0, "int16", 0, padding=[1, 1])
    lg = b.log2_abs("lg", d, 2)
    return b.build([b.conv("conv1d", "h", lg, rand_w(rng, (4, 3, 5)), rng.integers(-999, 999, 4), 7, "uint8", 4,
                           padding=2, relu=True)])


def random_input(prog, shape, seed):
    if prog.fmt(prog.inputs[0])[0] == "int16":
        return np.random.default_rng(seed).integers(-2 ** 15, 2 ** 15, shape).astype(np.int16)
    lo, hi = (0, 256) if prog.fmt(prog.inputs[0])[0] == "uint8" else (-128, 128)
    return np.random.default_rng(seed).integers(lo, hi, shape).astype(prog.fmt(prog.inputs[0])[0])


def test_plans_cover_every_op_kind_and_every_kind_has_a_lowering(compiled):
    """A kind added to the registry fails here until the TVM engine lowers it and a plan tests it."""
    kinds = {op.kind for prog, _, _ in compiled.values() for op in prog.ops}
    assert kinds == set(OP_KINDS) == set(REGISTRY) == set(tvm_lower.LOWERINGS)
    assert set(CONV_KINDS) <= kinds


def test_wide_dtypes_and_several_inputs_and_outputs_equal_the_reference(tmp_path):
    """Format 2 on TVM: an int16 second input (plain lowering), int32 / int16 tensors, two outputs."""
    from test_program_v2 import wide_program
    prog = wide_program()
    prog.save(tmp_path)
    dec = tvm_lower.TvmDecoder(tvm_lower.compile_program(prog, "llvm", tmp_path))
    rng = np.random.default_rng(7)
    for shape in ((5, 6), (1, 1), (8, 3)):
        inputs = {"x": rng.integers(-128, 128, (1, 2) + shape).astype(np.int8),
                  "side": rng.integers(-2 ** 15, 2 ** 15, (1, 2) + shape).astype(np.int16)}
        want = run_program(prog, inputs)
        got = dec(inputs)
        assert [g.dtype for g in got] == [want[n].dtype for n in prog.outputs]
        assert all(np.array_equal(g, want[n]) for g, n in zip(got, prog.outputs))


@pytest.mark.parametrize("plan,shape", [("2d", (1, 3, 5, 7)), ("2d", (1, 3, 1, 1)), ("2d", (1, 3, 8, 3)),
                                        ("1d", (1, 2, 9)), ("1d", (1, 2, 1)), ("ps", (1, 2, 6, 4)),
                                        ("unpool", (1, 3, 5, 7)), ("unpool", (1, 3, 1, 1)),
                                        ("norm", (1, 3, 5, 7)), ("norm", (1, 3, 2, 2)), ("norm", (1, 3, 13, 11)),
                                        ("norm", (1, 3, 16, 9)), ("norm1d", (1, 2, 3)), ("norm1d", (1, 2, 17)),
                                        ("norm1d", (1, 2, 64)), ("log2", (1, 2, 1)), ("log2", (1, 2, 257))])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tvm_equals_reference_on_random_inputs(compiled, plan, shape, seed):
    prog, dec, _ = compiled[plan]
    x = random_input(prog, shape, seed)
    want = run_program(prog, x)[prog.outputs[0]]
    got = dec(x)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_extreme_inputs_saturate_identically(compiled):
    """Constant inputs at the ends of the range drive every clip to its bounds in both engines."""
    for prog, dec, _ in compiled.values():
        dtype = prog.fmt(prog.inputs[0])[0]
        spatial = (4,) * len(prog.ops[0].attrs["stride"])
        for fill in ((0, 255) if dtype == "uint8" else (-128, 127, 0)):
            x = np.full((1, prog.tensors[prog.inputs[0]]["channels"]) + spatial, fill, dtype)
            assert np.array_equal(dec(x), run_program(prog, x)[prog.outputs[0]])


def test_same_output_across_runs_and_thread_counts(compiled, tmp_path):
    """Two runs in this process (2 threads) and a fresh process with 1 TVM / BLAS thread agree."""
    prog, dec, folder = compiled["2d"]
    x = random_input(prog, (1, 3, 9, 11), 5)
    first, second = dec(x), dec(x)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np; from bpgan.export.tvm.lower import TvmDecoder; "
        "from bpgan.firmware_ref import load_program, run_program; d = sys.argv[1]; "
        "x = np.load(d + '/x.npy'); p = load_program(sys.argv[2]); "
        "np.save(d + '/tvm.npy', TvmDecoder(sys.argv[2] + '/decoder-llvm.so')(x)); "
        "np.save(d + '/ref.npy', run_program(p, x)[p.outputs[0]])")
    env = dict(os.environ, TVM_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", code, str(tmp_path), str(folder)], check=True, env=env)
    assert np.array_equal(first, second)
    assert np.array_equal(first, np.load(tmp_path / "tvm.npy"))
    assert np.array_equal(first, np.load(tmp_path / "ref.npy"))


@pytest.mark.parametrize("k", [2, 3])
def test_argmax_unpool_ties_go_to_the_lowest_index_on_both_pipelines(tmp_path, k):
    """Sent switches (logits a program input in [-2, 2]: ties everywhere), uint8 values: exact on 'auto' and 'none'."""
    b = ProgramBuilder({"plan": "argmax_unpool"})
    x, lg = b.input("x", "uint8", 6, 3), b.input("lg", "int8", 0, 3 * k * k)
    prog = b.build([b.argmax_unpool("u", x, lg, k)])
    decs = [tvm_lower.TvmDecoder(tvm_lower.compile_program(prog, "llvm", tmp_path / s, schedule=s))
            for s in tvm_lower.SCHEDULES]
    rng = np.random.default_rng(k)
    for h, w in ((1, 1), (3, 5), (4, 2)):
        inputs = {"x": rng.integers(0, 256, (1, 3, h, w)).astype(np.uint8),
                  "lg": rng.integers(-2, 3, (1, 3 * k * k, h, w)).astype(np.int8)}
        want = run_program(prog, inputs)["u"]
        assert all(np.array_equal(d(inputs), want) and d(inputs).dtype == np.uint8 for d in decs)


def test_unpool_chain_has_ties_and_both_pipelines_equal_the_reference(compiled, tmp_path):
    """The chain's logits do tie (else the tie rule goes untested), and the untuned library agrees too."""
    prog, dec, _ = compiled["unpool"]
    plain = tvm_lower.TvmDecoder(tvm_lower.compile_program(prog, "llvm", tmp_path, schedule="none"))
    x = random_input(prog, (1, 3, 6, 5), 9)
    env = run_program(prog, x, keep_all=True)
    lg = env["spn"].reshape(1, 16, 4, 6, 5).astype(np.int64)
    assert ((lg == lg.max(axis=2, keepdims=True)).sum(axis=2) > 1).mean() > 0.25
    assert np.array_equal(dec(x), env["tail"]) and np.array_equal(plain(x), env["tail"])


def test_instance_norm_statistics_at_the_edges_equal_the_reference(tmp_path):
    """int8 and uint8 inputs straight into instance_norm: constant channels (D = 0 with eps_shift 40, and D = eps
    only), 1x1, a 1024 x 1024 frame whose D passes 2^53 (the float64 root's input is rounded there: the integer
    fix-up makes it exact), on the default and the untuned pipeline."""
    b = ProgramBuilder({"plan": "instance_norm edges"})
    x, u = b.input("x", "int8", 4, 2), b.input("u", "uint8", 6, 2)
    nx = b.instance_norm("nx", x, [127, -127], 6, [2 ** 20, -3], "int16", 8, z_frac=12, eps_shift=40)
    nu = b.instance_norm("nu", u, [-90, 45], [4, 7], [77, -2 ** 18], "int8", 3, z_frac=4, eps_shift=0)
    prog = b.build([nx, nu])
    decs = [tvm_lower.TvmDecoder(tvm_lower.compile_program(prog, "llvm", tmp_path / s, schedule=s))
            for s in tvm_lower.SCHEDULES]
    rng = np.random.default_rng(8)
    for h, w in ((1, 1), (3, 5), (1024, 1024)):
        if h < 1024:
            inputs = {"x": rng.integers(-128, 128, (1, 2, h, w)).astype(np.int8),
                      "u": rng.integers(0, 256, (1, 2, h, w)).astype(np.uint8)}
        else:   # the dtypes' ends: n^2 * var ~ 2^40 * 2^14, D above 2^53
            inputs = {"x": rng.choice(np.array([-128, 127], np.int8), (1, 2, h, w)),
                      "u": rng.choice(np.array([0, 255], np.uint8), (1, 2, h, w))}
            for name, c in (("x", 0), ("u", 1)):
                xi = inputs[name][0, c].astype(np.int64)
                assert h * w * (xi * xi).sum() - xi.sum() ** 2 > 2 ** 53
        inputs["x"][0, 1], inputs["u"][0, 0] = -128, 255   # constant channels
        want = run_program(prog, inputs)
        for dec in decs:
            got = dec(inputs)
            assert all(g.dtype == want[k].dtype and np.array_equal(g, want[k]) for g, k in zip(got, prog.outputs))


def test_the_lowered_isqrt_is_the_exact_floor_root_near_squares_up_to_2_63():
    """The float64 root is off by one just below squares past 2^53 (k*k - 1 rounds up to k*k): the fix-up steps."""
    import math
    from tvm import relax
    k = [1, 2, 3, 2 ** 26 + 1, 94906267, 2 ** 31 - 1, 2 ** 31, 3037000498, 3037000499]
    k += [int(v) for v in np.random.default_rng(0).integers(2 ** 26, 3037000499, 300)]
    d = [v * v + e for v in k for e in (-1, 0, 1, 2 * v)] + [0, 2 ** 63 - 1]
    d = np.array([v for v in d if v < 2 ** 63], np.int64)
    bb = relax.BlockBuilder()
    arg = relax.Var("d", relax.TensorType([len(d)], "int64"))
    with bb.function("main", [arg]):
        with bb.dataflow():
            out = bb.emit_output(tvm_lower._Lowering(None, bb).isqrt(arg))
        bb.emit_func_output(out)
    vm = relax.VirtualMachine(tvm_lower.tvm.compile(bb.get(), target="llvm"), tvm_lower.tvm.cpu())
    got = vm["main"](tvm_lower.tvm.runtime.tensor(d, tvm_lower.tvm.cpu())).numpy()
    floor_root = np.floor(np.sqrt(d.astype(np.float64))).astype(np.int64)
    want = np.array([math.isqrt(int(v)) for v in d], np.int64)
    assert (floor_root != want).any() and np.array_equal(got, want)


def test_lowering_refuses_a_program_that_can_overflow():
    from bpgan.firmware_ref.bounds import AccumulatorOverflow
    b = ProgramBuilder()
    x = b.input("x", "uint8", 6, 8192)
    b.conv("conv2d", "huge.conv", x, np.full((1, 8192, 3, 3), 1, np.int8), np.zeros(1), 8, "uint8", 6)
    prog = b.build(["huge.conv"])
    prog.arrays["huge.conv.weight"][:] = 127  # edited after validation: the lowering proves again
    with pytest.raises(AccumulatorOverflow, match="huge.conv"):
        tvm_lower.to_relax(prog)


def test_cross_targets_write_artifacts(compiled, tmp_path):
    prog, _, _ = compiled["ps"]
    for target in ("aarch64", "c"):
        path = tvm_lower.compile_program(prog, target, tmp_path)
        assert path.is_file() and path.stat().st_size > 0
    import tarfile
    with tarfile.open(tmp_path / "decoder-c.tar") as tar:
        assert any(n.endswith(".c") for n in tar.getnames())
