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
