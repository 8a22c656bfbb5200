"""Reference kernels equal their one-line integer definitions; the format and the overflow proof hold."""
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bpgan.firmware_ref import kernels as K
from bpgan.firmware_ref.bounds import AccumulatorOverflow, prove_no_overflow
from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.program import ProgramError, load_program


def naive_conv2d(x, w, b, s, p):
    """acc[n,o,y,x] = b[o] + sum w[o,c,i,j] * xpad[n,c,y*s+i,x*s+j], by loops over Python ints."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
    out = np.zeros((n, o, ho, wo), np.int64)
    for oo in range(o):
        for y in range(ho):
            for xx in range(wo):
                out[:, oo, y, xx] = b[oo] + (xp[:, :, y * s:y * s + kh, xx * s:xx * s + kw] * w[oo]).sum((1, 2, 3))
    return out


def naive_conv_transpose2d(x, w, b, s, p):
    """acc[n,o,y*s+i-p,x*s+j-p] += x[n,c,y,x] * w[c,o,i,j], by scattering every input pixel."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    full = np.zeros((n, o, (h - 1) * s + kh, (wd - 1) * s + kw), np.int64)
    for y in range(h):
        for xx in range(wd):
            full[:, :, y * s:y * s + kh, xx * s:xx * s + kw] += np.einsum("nc,coij->noij", x[:, :, y, xx].astype(np.int64), w.astype(np.int64))
    return full[:, :, p:full.shape[2] - p, p:full.shape[3] - p] + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (5, 1, 2), (1, 1, 0)])
def test_conv2d_equals_its_definition(dtype, k, s, p):
    rng = np.random.default_rng(k * 10 + s + p)
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    x = rng.integers(lo, hi, (2, 5, 7, 6)).astype(dtype)
    w = rng.integers(-127, 128, (4, 5, k, k)).astype(np.int8)
    b = rng.integers(-2 ** 20, 2 ** 20, 4).astype(np.int32)
    assert np.array_equal(K.conv2d_acc(x, w, b, (s, s), (p, p, p, p)), naive_conv2d(x, w, b, s, p))


@pytest.mark.parametrize("k,s,p", [(4, 2, 1), (3, 1, 1), (3, 2, 0)])
def test_conv_transpose2d_equals_its_definition(k, s, p):
    rng = np.random.default_rng(k + s + p)
    x = rng.integers(0, 256, (1, 5, 4, 3)).astype(np.uint8)
    w = rng.integers(-127, 128, (5, 3, k, k)).astype(np.int8)
    b = rng.integers(-1000, 1000, 3).astype(np.int32)
    got = K.conv_transpose2d_acc(x, w, b, (s, s), (p, p, p, p), (0, 0))
    assert np.array_equal(got, naive_conv_transpose2d(x, w, b, s, p))


def test_conv1d_and_transpose1d_are_the_2d_ops_on_one_row():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 3, 11)).astype(np.int8)
    w = rng.integers(-127, 128, (4, 3, 5)).astype(np.int8)
    b = np.arange(4, dtype=np.int32)
    got = K.conv1d_acc(x, w, b, (2,), (2, 2))
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (2, 2)))
    want = np.stack([b[o] + np.array([(xp[0, :, t * 2:t * 2 + 5] * w[o]).sum() for t in range(got.shape[2])])
                     for o in range(4)])[None]
    assert np.array_equal(got, want)
    wt = rng.integers(-127, 128, (3, 2, 4)).astype(np.int8)
    got_t = K.conv_transpose1d_acc(x, wt, np.zeros(2, np.int32), (2,), (1, 1), (0,))
    want_t = naive_conv_transpose2d(x[:, :, None, :], wt[:, :, None, :], np.zeros(2, np.int64), 2, 0)
    assert np.array_equal(got_t, want_t[:, :, 0, 1:-1])


@settings(max_examples=300, deadline=None)
@given(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(-3, 20))
def test_rounding_shift_is_round_half_up_of_acc_times_two_to_minus_k(acc, k):
    exact = Fraction(acc, 2 ** k) if k >= 0 else Fraction(acc * 2 ** -k)
    want = int(np.floor(exact + Fraction(1, 2)))  # half up, ties towards +inf
    assert K.rounding_shift(np.array([acc], np.int64), k)[0] == want


def test_pixel_shuffle_and_upsample_follow_their_index_maps():
    x = np.arange(2 * 8 * 2 * 3, dtype=np.int64).reshape(2, 8, 2, 3).astype(np.int8)
    y = K.pixel_shuffle(x, 2)
    for c, h, w, i, j in [(0, 0, 0, 1, 0), (1, 1, 2, 1, 1), (1, 0, 1, 0, 1)]:
        assert y[1, c, h * 2 + i, w * 2 + j] == x[1, c * 4 + i * 2 + j, h, w]
    u = K.upsample_nearest(x, 3)
    assert u.shape == (2, 8, 6, 9) and u[0, 5, 4, 7] == x[0, 5, 1, 2]


def test_float_blas_is_exact_beyond_float32_range():
    """Partial sums above 2**24 switch the reference to float64 and stay exact."""
    rng = np.random.default_rng(7)
    x = np.full((1, 64, 5, 5), 255, np.uint8)
    x[0, :, 2, 2] = rng.integers(0, 256, 64)
    w = np.full((2, 64, 3, 3), 127, np.int8)
    w[1] = rng.integers(-127, 128, (64, 3, 3))
    b = np.array([3, -5], np.int32)
    assert K.exact_float_dtype(127 * 255 * 64 * 9) is np.float64
    assert np.array_equal(K.conv2d_acc(x, w, b, (1, 1), (1, 1, 1, 1)), naive_conv2d(x, w, b, 1, 1))


def overflow_program(cin=2048, k=6, bias=0):
    b = ProgramBuilder()
    x = b.input("x", "uint8", 6, cin)
    b.conv("conv2d", "big.conv", x, np.full((1, cin, k, k), 127, np.int8), np.array([bias]), 8, "uint8", 6)
    return b.build(["big.conv"])


def test_overflow_proof_refuses_and_names_the_layer():
    with pytest.raises(AccumulatorOverflow, match="'big.conv'"):
        prove_no_overflow(overflow_program())
    assert prove_no_overflow(overflow_program(cin=8))["big.conv"] == 127 * 255 * 8 * 36 + 2 ** 7


def test_overflow_proof_counts_the_rounding_constant_and_bias():
    """hi + 2**(k-1) must stay below 2**31: the bias alone can push a layer over."""
    with pytest.raises(AccumulatorOverflow):
        prove_no_overflow(overflow_program(cin=1, k=1, bias=2 ** 31 - 1 - 127 * 255 - 2 ** 7 + 1))
    prove_no_overflow(overflow_program(cin=1, k=1, bias=2 ** 31 - 1 - 127 * 255 - 2 ** 7))


def test_program_round_trips_and_detects_tampering(tmp_path):
    prog = overflow_program(cin=3, k=3)
    prog.save(tmp_path)
    again = load_program(tmp_path)
    assert again.content_hash == prog.content_hash and again.ops[0].attrs == prog.ops[0].attrs
    text = (tmp_path / "program.json").read_text().replace('"frac_bits": 6', '"frac_bits": 5', 1)
    (tmp_path / "program.json").write_text(text)
    with pytest.raises(ProgramError, match="hash mismatch"):
        load_program(tmp_path)


def test_reference_decoder_imports_no_torch_onnx_or_tvm():
    code = ("import sys, bpgan.firmware_ref, bpgan.firmware_ref.image; "
            "bad = [m for m in ('torch', 'onnx', 'tvm', 'brevitas', 'onnxruntime') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# reflect_pad and instance_norm: the generative-compression decoders' ops (Agustsson et al.)

def reflect_program(padding, dtype="int8", channels=2):
    b = ProgramBuilder()
    x = b.input("x", dtype, 4, channels)
    if len(padding) == 2:   # a 1-D program: Program.spatial_dims comes from its convs
        x = b.conv("conv1d", "id", x, np.eye(channels).reshape(channels, channels, 1), np.zeros(channels), 0,
                   dtype, 4)
    return b.build([b.reflect_pad("r", x, padding)])


@pytest.mark.parametrize("padding", [[1, 1, 1, 1], [0, 3, 2, 0], [4, 1, 0, 5], [0, 0, 0, 0], [2, 1]])
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_reflect_pad_equals_torch_reflect_padding(padding, dtype):
    torch = pytest.importorskip("torch")
    from bpgan.firmware_ref.decoder import run_program
    prog = reflect_program(padding, dtype)
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    rng = np.random.default_rng(sum(padding))
    for spatial in ([(6, 7), (5, 6), (9, 13)] if len(padding) == 4 else [(6,), (3,), (17,)]):
        x = rng.integers(lo, hi, (2, 2) + spatial).astype(dtype)
        torch_pad = list(padding) if len(padding) == 2 else [padding[1], padding[3], padding[0], padding[2]]
        want = torch.nn.functional.pad(torch.from_numpy(x.astype(np.int64)), torch_pad, mode="reflect").numpy()
        got = run_program(prog, x)["r"]
        assert got.dtype == np.dtype(dtype) and np.array_equal(got, want), (padding, spatial)


def test_reflect_pad_refuses_a_size_not_above_its_pad_in_one_line():
    from bpgan.firmware_ref.decoder import run_program
    prog = reflect_program([1, 3, 1, 0])
    assert run_program(prog, np.zeros((1, 2, 2, 4), np.int8))["r"].shape == (1, 2, 4, 7)
    for shape in ((1, 2, 1, 4), (1, 2, 2, 3)):   # 1 row for a pad of 1; 3 columns for a pad of 3
        with pytest.raises(ProgramError, match=r"reflect_pad: size \d along spatial axis \d must exceed its pads") as e:
            run_program(prog, np.zeros(shape, np.int8))
        assert "\n" not in str(e.value)


def norm_oracle(x, gamma, beta, z_frac, eps_shift, shift, clip):
    """The instance_norm semantics in Python ints, one (sample, channel) at a time: math.isqrt, Fractions."""
    from fractions import Fraction
    import math
    n_, c_ = x.shape[:2]
    y = np.zeros(x.shape, np.int64)
    for b in range(n_):
        for c in range(c_):
            vals = [int(v) for v in x[b, c].ravel()]
            n = len(vals)
            s_, q = sum(vals), sum(v * v for v in vals)
            d = n * q - s_ * s_ + (n * n) // 2 ** eps_shift
            s = max(1, math.isqrt(d))
            out = []
            for v in vals:
                z = math.floor(Fraction((n * v - s_) * 2 ** z_frac, s) + Fraction(1, 2))   # half up
                z = min(max(z, -2 ** 15), 2 ** 15 - 1)
                acc = int(gamma[c]) * z + int(beta[c])
                k = shift[c]
                r = math.floor(Fraction(acc, 2 ** k) + Fraction(1, 2)) if k > 0 else acc * 2 ** -k
                out.append(min(max(r, clip[0]), clip[1]))
            y[b, c] = np.array(out).reshape(x.shape[2:])
    return y


def norm_program(dtype, channels, z_frac=8, eps_shift=None, out_dtype="int8", relu=False, gamma_frac=6,
                 out_frac=5, dims=2, seed=0):
    rng = np.random.default_rng(seed)
    b = ProgramBuilder()
    x = b.input("x", dtype, 4, channels)
    if dims == 1:
        x = b.conv("conv1d", "id", x, np.eye(channels).reshape(channels, channels, 1), np.zeros(channels), 0, dtype, 4)
    g = rng.integers(-127, 128, channels)
    beta = rng.integers(-40000, 40000, channels)
    return b.build([b.instance_norm("n", x, g, gamma_frac, beta, out_dtype, out_frac, z_frac=z_frac,
                                    eps_shift=eps_shift, relu=relu)])


def run_norm_both(prog, x):
    from bpgan.firmware_ref.decoder import run_program
    op = prog.ops[-1]
    a = op.attrs
    want = norm_oracle(x, prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]], a["z_frac"],
                       a["eps_shift"], a["shift"], a["clip"])
    got = run_program(prog, x)["n"]
    assert got.dtype == np.dtype(prog.fmt("n")[0])
    return got, want


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("z_frac, eps_shift, out_dtype, relu, gamma_frac", [
    (8, None, "int8", False, 6), (12, 3, "int16", False, [5, 7, 6, 9]), (4, 40, "uint8", True, 4),
    (10, 0, "int32", False, [-2, 0, 3, 8]), (6, 12, "int8", True, 12)])
def test_instance_norm_equals_its_definition(dtype, z_frac, eps_shift, out_dtype, relu, gamma_frac):
    """Random, constant (D == 0 when eps_shift is large), saturating (|z| > 2^15 at Z = 12) and 1x1 channels."""
    prog = norm_program(dtype, 4, z_frac, eps_shift, out_dtype, relu, gamma_frac, out_frac=5)
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    rng = np.random.default_rng(z_frac)
    for spatial in ((5, 7), (1, 1), (1, 9), (12, 11)):
        x = rng.integers(lo, hi, (2, 4) + spatial)
        x[0, 1] = hi - 1                        # a constant channel: S*S == n*Q
        x[1, 2] = lo                            # a constant channel at the dtype's end
        x[1, 3] = lo
        x[1, 3].flat[-1] = hi - 1               # one outlier: z = sqrt(n - 1) * 2^Z, clipped at Z = 12
        got, want = run_norm_both(prog, x.astype(dtype))
        assert np.array_equal(got, want), spatial


def test_instance_norm_1d_and_every_bias_when_the_variance_is_zero():
    prog = norm_program("int8", 3, eps_shift=40, out_dtype="int32", out_frac=14, dims=1)   # shift 0: y = gamma*z + beta
    x = np.array([[[5] * 9, [-128] * 9, [3, -1, 4, -1, 5, -9, 2, -6, 5]]], np.int8)
    got, want = run_norm_both(prog, x)
    assert np.array_equal(got, want)
    beta = prog.arrays["n.bias"].astype(np.int64)
    assert np.array_equal(got[0, :2], np.broadcast_to(beta[:2, None], (2, 9)))   # D == 0: s = 1, z = 0


def test_isqrt_is_the_exact_floor_root_near_every_square_up_to_2_63():
    import math
    from bpgan.firmware_ref.ops.norm import isqrt
    k = np.array([1, 2, 3, 2 ** 26 + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 3037000498, 3037000499], np.int64)
    rng = np.random.default_rng(0)
    k = np.concatenate([k, rng.integers(1, 3037000499, 2000)])
    near = [int(v) * int(v) + e for v in k for e in (-1, 0, 1, 2 * int(v))]   # k*k + 2k: the last d below (k+1)^2
    d = np.array([v for v in near if v < 2 ** 63] + [0, 2 ** 63 - 1], np.int64)
    d = np.concatenate([d, rng.integers(0, 2 ** 63 - 1, 2000, dtype=np.int64)])
    assert np.array_equal(isqrt(d), np.array([math.isqrt(int(v)) for v in d], np.int64))


def test_instance_norm_refuses_more_positions_than_int64_statistics_allow():
    from bpgan.firmware_ref.decoder import run_program
    prog = norm_program("int8", 1)
    with pytest.raises(ProgramError, match=r"instance_norm: 8388609 spatial positions exceed .*\(2\^23\)") as e:
        run_program(prog, np.zeros((1, 1, 1, 2 ** 23 + 1), np.int8))
    assert "\n" not in str(e.value)


def test_instance_norm_with_a_large_z_tracks_torch_instance_norm():
    """A sanity check against float (so a tolerance): z at 2^-12 and an int16 output at 2^-10, with torch given the
    same eps (2^-eps_shift in integer units squared) and the quantized gamma and beta as its affine parameters.
    Errors: z rounds by <= 2^-13, and isqrt(D) <= sqrt(D) < isqrt(D) + 1 changes z by < |z| / s; times |gamma| < 2,
    plus the output's rounding 2^-11 (eps itself matches: n*n >> eps_shift is exact for these n)."""
    torch = pytest.importorskip("torch")
    from bpgan.firmware_ref.decoder import run_program
    rng = np.random.default_rng(11)
    c, in_frac, gf, z_frac, out_frac, eps_shift = 6, 4, 6, 12, 10, 6
    g = rng.integers(-127, 128, c)
    beta = rng.integers(-2 ** 19, 2 ** 19, c)          # at 2^-(z_frac + gf): |beta| < 2
    b = ProgramBuilder()
    x = b.input("x", "int8", in_frac, c)
    prog = b.build([b.instance_norm("n", x, g, gf, beta, "int16", out_frac, z_frac=z_frac, eps_shift=eps_shift)])
    xi = rng.integers(-128, 128, (2, c, 16, 16)).astype(np.int8)
    xi[1, 0] //= 16                                     # a low-variance channel
    y = run_program(prog, xi)["n"].astype(np.float64) / 2 ** out_frac
    eps = 2.0 ** -eps_shift * 2.0 ** (-2 * in_frac)
    ref = torch.nn.functional.instance_norm(torch.from_numpy(xi.astype(np.float64) / 2 ** in_frac),
                                            weight=torch.from_numpy(g / 2.0 ** gf),
                                            bias=torch.from_numpy(beta / 2.0 ** (z_frac + gf)), eps=eps).numpy()
    xf, n = xi.astype(np.float64), 16 * 16
    assert (n * n) % 2 ** eps_shift == 0
    s_min = np.sqrt(n * n * xf.var(axis=(2, 3)) + ((n * n) >> eps_shift)).min() - 1
    z_max = np.abs((xf - xf.mean(axis=(2, 3), keepdims=True)) / xf.std(axis=(2, 3), keepdims=True)).max()
    tol = 2 * (2.0 ** -13 + z_max / s_min) + 2.0 ** -11
    assert 0 < np.abs(y - ref).max() <= tol < 0.01, (np.abs(y - ref).max(), tol)


def test_overflow_proof_bounds_instance_norm_by_gamma_times_the_largest_z_plus_beta():
    """|z| <= 2^15: the worst gamma*z + beta plus the rounding constant 2^(shift-1) must fit int32."""
    def prog(beta, gamma=127):
        b = ProgramBuilder()
        x = b.input("x", "uint8", 6, 1)   # shift = z_frac + gamma_frac - out_frac = 8 + 6 - 6
        return b.build([b.instance_norm("n", x, [gamma], 6, [beta], "int8", 6)])

    edge = 2 ** 31 - 1 - 127 * (2 ** 15 - 1) - 2 ** 7
    assert prove_no_overflow(prog(edge))["n"] == 2 ** 31 - 1
    assert prove_no_overflow(prog(-5, gamma=-127))["n"] == 127 * 2 ** 15 - 5 + 2 ** 7   # z = -2^15
    with pytest.raises(AccumulatorOverflow, match=r"layer 'n': int32 arithmetic can overflow"):
        prog(edge + 1)
