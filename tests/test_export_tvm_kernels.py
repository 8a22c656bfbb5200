"""Each scheduled TVM kernel == the reference kernel, element for element (no tolerance), for every ISA
this CPU runs: VNNI, AVX2 (built for x86-64-v3, so AVX2 code only) and the generic fallback."""
import numpy as np
import pytest

from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.decoder import run_program

tvm = pytest.importorskip("tvm")
from tvm import te, tirx  # noqa: E402

from bpgan.export.tvm import kernels as K  # noqa: E402
from bpgan.export.tvm.lower import TARGETS, TvmDecoder, compile_program, target_of  # noqa: E402
from bpgan.export.tvm.isa import ISAS, cpu_flags  # noqa: E402
from bpgan.export.tvm.schedule import conv_prim_func  # noqa: E402

FLAGS = cpu_flags() or set()
# each ISA the host can execute, with the target it is built for (avx2: x86-64-v3, no AVX-512 at all)
RUNNABLE = {"vnni": "avx512_vnni" in FLAGS, "avx2": "avx2" in FLAGS, "generic": True}   # aarch64 ISAs: test_tvm_aarch64_qemu
MODES = [isa for isa in ISAS if RUNNABLE.get(isa)]
TARGET = {isa: target_of("llvm", isa=isa) for isa in MODES}

# name -> (kind, cin, cout, kernel, stride, padding, input dtype, output dtype, relu, weight frac bits)
CASES = {
    "conv3x3_u8": ("conv2d", 24, 40, 3, 1, 1, "uint8", "uint8", True, 8),
    "conv3x3_int8_input": ("conv2d", 8, 20, 3, 1, 1, "int8", "uint8", True, 8),    # offset trick
    "conv_stride2_asym": ("conv2d", 5, 17, 3, 2, [0, 1, 2, 1], "int8", "int8", False, 8),
    "convT4x4_s2_phases": ("conv_transpose2d", 20, 24, 4, 2, 1, "uint8", "uint8", True, 9),
    "convT_int8_input": ("conv_transpose2d", 6, 16, 4, 2, 1, "int8", "int8", False, 9),
    "conv_left_shift": ("conv2d", 16, 16, 1, 1, 0, "uint8", "int8", False, 0),       # k < 0
    "pixel_conv_rgb": ("conv2d", 20, 3, 3, 1, 1, "uint8", "int8", False, 8),
    "pixel_conv_int8_input": ("conv2d", 7, 5, 3, 1, 1, "int8", "uint8", True, 8),
}
SHAPES = [(5, 7), (1, 1), (8, 3), (3, 37)]


def one_conv_program(kind, cin, cout, k, stride, pad, in_dtype, out_dtype, relu, w_frac, seed=0):
    rng = np.random.default_rng(seed)
    peak = 3 if w_frac == 0 else 127
    b = ProgramBuilder({"plan": f"one {kind}"})
    x = b.input("x", in_dtype, 4 if in_dtype == "int8" else 6, cin)
    shape = (cin, cout, k, k) if "transpose" in kind else (cout, cin, k, k)
    w = rng.integers(-peak, peak + 1, shape).astype(np.int8)
    y = b.conv(kind, "c", x, w, rng.integers(-4000, 4000, cout), w_frac, out_dtype, 6, stride=stride, padding=pad,
               relu=relu)
    return b.build([y])


def to_blocked(x):
    n, c, h, w = x.shape
    xb = np.zeros((n, -(-c // 16) * 16, h, w), x.dtype)
    xb[:, :c] = x
    return np.ascontiguousarray(xb.reshape(n, -1, 16, h, w).transpose(0, 1, 3, 4, 2))


class Kernel:
    """One scheduled conv compiled on its own: NCHW int in, NCHW int out."""

    def __init__(self, prog, isa):
        op = prog.ops[0]
        self.prog, cout = prog, prog.tensors[op.output]["channels"]
        if op.kind == "conv2d" and cout <= 8:
            self.plan = K.plan_pixel_conv(op, prog, ISAS[isa])
            self.consts = [self.plan.wq, self.plan.bias, self.plan.req.table(cout)]
        else:
            self.plan = K.plan_phase_conv(op, prog, ISAS[isa])
            self.consts = [self.plan.wp, self.plan.bias, self.plan.req.table(self.plan.bias.shape[-1])]
        cin, dtype = prog.tensors["x"]["channels"], prog.fmt("x")[0]
        x = te.placeholder((1, -(-cin // 16), tirx.Var("h", "int64"), tirx.Var("w", "int64"), 16), dtype, "x")
        cs = [te.placeholder(c.shape, str(c.dtype), f"c{i}") for i, c in enumerate(self.consts)]
        self.lib = tvm.compile(tvm.IRModule({"main": conv_prim_func(self.plan, x, cs)}), target=TARGET[isa])

    def __call__(self, x, out_shape):
        dev, (_, cout, ho, wo) = tvm.cpu(), out_shape
        if isinstance(self.plan, K.PhaseConv):
            (ph, pw), ob = self.plan.phases, self.plan.wp.shape[2]
            out = tvm.runtime.tensor(np.zeros((1, ob, ho // ph, ph, wo // pw, pw, 16), self.plan.req.dtype), dev)
        else:
            out = tvm.runtime.tensor(np.zeros(out_shape, self.plan.req.dtype), dev)
        args = [to_blocked(x), *self.consts]
        self.lib["main"](*[tvm.runtime.tensor(a, dev) for a in args], out)
        y = out.numpy()
        if isinstance(self.plan, K.PhaseConv):
            y = y.reshape(1, ob, ho, wo, 16).transpose(0, 1, 4, 2, 3).reshape(1, ob * 16, ho, wo)[:, :cout]
        return y


@pytest.fixture(scope="module")
def kernels():
    """Compile every (case, isa) once per session (~0.2 s each)."""
    return {(name, isa): Kernel(one_conv_program(*case), isa) for name, case in CASES.items() for isa in MODES}


@pytest.mark.parametrize("isa", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_scheduled_kernel_equals_reference(kernels, name, isa):
    kern = kernels[(name, isa)]
    prog = kern.prog
    dtype = prog.fmt("x")[0]
    lo, hi = (-128, 128) if dtype == "int8" else (0, 256)
    for seed, (h, w) in enumerate(SHAPES):
        x = np.random.default_rng(seed).integers(lo, hi, (1, prog.tensors["x"]["channels"], h, w)).astype(dtype)
        want = run_program(prog, x)[prog.outputs[0]]
        got = kern(x, want.shape)
        assert got.dtype == want.dtype and np.array_equal(got, want), f"{name} differs at {h}x{w}"


@pytest.mark.parametrize("name", ["conv3x3_int8_input", "pixel_conv_int8_input"])
def test_offset_trick_exact_at_range_ends(kernels, name):
    """x + 128 with -128 * sum(w) in the bias is exact for constant -128 and 127 inputs too."""
    for isa in MODES:
        kern = kernels[(name, isa)]
        for fill in (-128, 127, 0):
            x = np.full((1, kern.prog.tensors["x"]["channels"], 4, 5), fill, np.int8)
            want = run_program(kern.prog, x)[kern.prog.outputs[0]]
            assert np.array_equal(kern(x, want.shape), want)


def test_phase_plan_splits_convT_into_four_2x2_convs():
    prog = one_conv_program(*CASES["convT4x4_s2_phases"])
    for isa in ISAS.values():  # the phase structure is the same for every ISA; only the packed group differs
        plan = K.plan_phase_conv(prog.ops[0], prog, isa)
        assert plan.phases == (2, 2) and plan.taps == (2, 2) and plan.offsets == ((0, 1), (0, 1))
        assert plan.wp.shape[-1] == isa.group and plan.wp.dtype == isa.w_dtype


def test_scheduled_and_untuned_libraries_agree_on_a_chain(tmp_path):
    """conv(int8) -> convT -> add-free chain -> RGB pixel conv: 'auto' and 'none' libraries equal the reference."""
    rng = np.random.default_rng(7)
    b = ProgramBuilder({"plan": "generator-like chain"})
    x = b.input("x", "int8", 4, 8)
    h = b.conv("conv2d", "head", x, rng.integers(-127, 128, (32, 8, 3, 3)), rng.integers(-999, 999, 32), 8,
               "uint8", 6, padding=1, relu=True)
    r = b.conv("conv2d", "res", h, rng.integers(-127, 128, (32, 32, 3, 3)), rng.integers(-999, 999, 32), 11,
               "int8", 5, padding=1)
    s = b.add("sum", h, r, "uint8", 6, relu=True)
    u = b.conv("conv_transpose2d", "up", s, rng.integers(-127, 128, (32, 24, 4, 4)), rng.integers(-999, 999, 24),
               10, "uint8", 6, stride=2, padding=1, relu=True)
    out = b.conv("conv2d", "tail", u, rng.integers(-127, 128, (3, 24, 3, 3)), rng.integers(-99, 99, 3), 9, "int8",
                 7, padding=1)
    prog = b.build([out])
    decs = {s: TvmDecoder(compile_program(prog, "llvm", tmp_path / s, schedule=s)) for s in ("auto", "none")}
    for seed, (hh, ww) in enumerate([(3, 5), (1, 1), (6, 2)]):
        lat = np.random.default_rng(seed).integers(-128, 128, (1, 8, hh, ww)).astype(np.int8)
        want = run_program(prog, lat)[out]
        assert all(np.array_equal(d(lat), want) for d in decs.values())
    assert TARGETS["llvm"][2]


def program_1d_chain():
    """The audio generator's op kinds in 1-D, plus a pixel conv, a strided conv, upsample and an unphased convT."""
    rng = np.random.default_rng(3)
    b = ProgramBuilder({"plan": "1-D chain"})
    x = b.input("x", "int8", 4, 8)
    h = b.conv("conv1d", "head", x, rng.integers(-127, 128, (20, 8, 3)), rng.integers(-999, 999, 20), 8,
               "uint8", 6, padding=1, relu=True)
    r = b.conv("conv1d", "res", h, rng.integers(-127, 128, (20, 20, 3)), rng.integers(-999, 999, 20), 10,
               "int8", 5, padding=1)
    s = b.add("sum", h, r, "uint8", 6, relu=True)
    u = b.conv("conv_transpose1d", "up", s, rng.integers(-127, 128, (20, 24, 4)), rng.integers(-999, 999, 24),
               10, "uint8", 6, stride=2, padding=1, relu=True)
    d = b.conv("conv1d", "down", u, rng.integers(-127, 128, (17, 24, 5)), rng.integers(-999, 999, 17), 9,
               "uint8", 6, stride=2, padding=[1, 2], relu=True)
    p = b.conv("conv1d", "few", d, rng.integers(-127, 128, (5, 17, 3)), rng.integers(-99, 99, 5), 8, "uint8", 6,
               padding=1, relu=True)
    n = b.upsample_nearest("near", p, 2)
    t = b.conv("conv_transpose1d", "odd", n, rng.integers(-127, 128, (5, 6, 3)), rng.integers(-99, 99, 6), 8,
               "uint8", 6, stride=2, padding=1, output_padding=1, relu=True)   # k % s != 0: plain lowering
    out = b.conv("conv1d", "tail", t, rng.integers(-127, 128, (18, 6, 3)), rng.integers(-99, 99, 18), 9, "int8",
                 7, padding=1)
    return b.build([out])


SCHEDULED_1D = ("head", "res", "up", "down", "few", "tail")


@pytest.mark.parametrize("isa", MODES)
def test_1d_convs_take_the_scheduled_kernels_bit_exact(isa):
    """conv1d / conv_transpose1d run as height-1 blocked kernels (NCW -> NC1W16c), == reference at any length."""
    from bpgan.export.tvm.lower import to_relax
    prog = program_1d_chain()
    mod = to_relax(prog, 1, isa)
    funcs = {gv.name_hint.rsplit("_", 1)[0] for gv in mod.get_global_vars()}
    assert set(SCHEDULED_1D) <= funcs and "odd" not in funcs
    dev = tvm.cpu()
    vm = tvm.relax.VirtualMachine(tvm.compile(mod, target=TARGET[isa]), dev)
    for seed, t in enumerate([9, 1, 2, 40, 157]):
        lat = np.random.default_rng(seed).integers(-128, 128, (1, 8, t)).astype(np.int8)
        want = run_program(prog, lat)[prog.outputs[0]]
        got = vm["main"](tvm.runtime.tensor(lat, dev)).numpy()
        assert got.dtype == want.dtype and np.array_equal(got, want), f"differs at length {t}"
