"""The integer speech back end (firmware_ref/speech.py): integers only, deterministic, in its bounds, pinned.

The FFT accuracy test compares with numpy.fft in float: it checks an approximation against its stated
error bound. The decoder's output itself is only ever compared exactly (the pinned hashes).
"""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from bpgan.firmware_ref import speech
from bpgan.firmware_ref.speech import (MAG_MAX, N_BINS, N_FFT, N_MELS, POWER_BITS, X_MAX, fft_error_bound,
                                       fft_fixed, hann_q14, magnitude_table, mel_basis_q20, mel_inverse_q12,
                                       mel_to_pcm16, twiddles_q14)
from conftest import REPO

GOLDEN = REPO / "zoo" / "bpgan-audio-light" / "export"
# sha256 of the integer tables and of the PCM the golden stream (the first 2 s of the bundled clip
# lj001-0013-8k.wav through zoo/bpgan-audio-light) decodes to at the default 32 iterations.
TABLES_SHA256 = "bd9d8e3931da9483279b432d2cb3633e006e081c8faca3a26e1201ace750dd5f"
GOLDEN_PCM_SHA256 = "587a49f06e5be500ecbf17fafa88d3e350f8dcf7c3686b45c2195ab64c2a51e3"


def sha256(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, np.int64).tobytes())
    return h.hexdigest()


def random_codes(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (N_MELS, frames)).astype(np.int8)


def test_tables_are_small_integers_and_pinned():
    cos, sin = twiddles_q14()
    tables = (cos, sin, hann_q14(), magnitude_table(), mel_inverse_q12(), mel_basis_q20())
    assert all(t.dtype == np.int64 for t in tables)
    assert max(np.abs(cos).max(), np.abs(sin).max(), hann_q14().max()) == 1 << 14  # int16: 16384 fits
    for matrix, shape in ((mel_inverse_q12(), (129, 64)), (mel_basis_q20(), (64, 129))):
        assert 0 <= matrix.min() and matrix.max() <= 32767 and matrix.shape == shape
    # the NNLS bounds: M^T p < 2**23 for band powers < 2**28, so x * M^T p < 2**61 for x <= X_MAX
    assert mel_basis_q20().sum(0).max() << POWER_BITS >> 20 < 2 ** 23 and X_MAX * 2 ** 23 <= 2 ** 61
    assert mel_basis_q20().sum(1).max() * X_MAX < 2 ** 54
    assert magnitude_table().shape == (256,) and 0 < magnitude_table().min() and magnitude_table().max() < 2 ** 23
    assert sha256(*tables) == TABLES_SHA256


def test_the_mel_basis_is_librosas():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=8000, n_fft=256, n_mels=64)
    assert np.abs(speech._slaney_mel_basis() - ref).max() < 1e-6 * ref.max()


@pytest.mark.parametrize("inverse", [False, True])
def test_the_fixed_point_fft_is_within_its_error_bound(inverse):
    rng = np.random.default_rng(1)
    top = 2 ** 25 if inverse else 2 ** 19     # the back end's largest inputs in each direction
    re, im = (rng.integers(-top, top + 1, (64, N_FFT)) for _ in range(2))
    if not inverse:
        im[:] = 0                             # the STFT transforms real frames
    out_re, out_im = fft_fixed(re, im, inverse)
    assert out_re.dtype == out_im.dtype == np.int64
    exact = (np.fft.ifft if inverse else np.fft.fft)(re + 1j * im, axis=-1)
    err = np.abs(out_re + 1j * out_im - exact).max()
    bound = fft_error_bound(np.abs(re + 1j * im).max(), inverse)
    print(f"{'inverse' if inverse else 'forward'} FFT: max error {err:.1f}, bound {bound:.1f}")
    assert err <= bound


def test_cordic_puts_the_magnitude_at_the_vectors_angle():
    rng = np.random.default_rng(2)
    re, im = rng.integers(-2 ** 27, 2 ** 27, 4000), rng.integers(-2 ** 27, 2 ** 27, 4000)
    re[:3], im[:3] = [0, 1, -1], [0, 0, -2]                      # zero, tiny vectors
    mag = rng.integers(0, MAG_MAX + 1, 4000)
    u, v = speech.unit_phase_times(re, im, mag)
    assert u.dtype == v.dtype == np.int64 and u[0] == v[0] == 0
    exact = mag * np.exp(1j * np.arctan2(im, re))
    assert np.abs(u[1:] + 1j * v[1:] - exact[1:]).max() <= MAG_MAX * 2.0 ** -14 + 16


@pytest.fixture
def probed(monkeypatch):
    """Wraps every stage: records dtypes and the largest |value| going into and out of each."""
    seen = {}

    def wrap(name):
        inner = getattr(speech, name)

        def probe(*args, **kwargs):
            out = inner(*args, **kwargs)
            for i, a in enumerate(list(args) + list(out if isinstance(out, tuple) else (out,))):
                if isinstance(a, np.ndarray):
                    assert a.dtype.kind in "iub", (name, i, a.dtype)   # integers (and masks) only
                    if a.dtype.kind == "i" and a.size:
                        seen[name] = max(seen.get(name, 0), int(np.abs(a).max()))
            return out
        monkeypatch.setattr(speech, name, probe)

    for name in ("mel_codes_to_magnitude", "refine_nnls", "integer_sqrt", "start_phase", "istft_fixed",
                 "stft_fixed", "fft_fixed", "unit_phase_times", "overlap_add", "rounding_shift"):
        wrap(name)
    return seen


@pytest.mark.parametrize("fill", [-128, 127, None])
def test_extreme_inputs_stay_within_the_stated_bounds(probed, fill):
    codes = random_codes(40, 3) if fill is None else np.full((N_MELS, 40), fill, np.int8)
    pcm = mel_to_pcm16(codes, 40 * 64, iters=4)
    assert pcm.dtype == np.int16 and pcm.shape == (2560,)
    assert probed["mel_codes_to_magnitude"] <= MAG_MAX
    assert probed["istft_fixed"] <= MAG_MAX + 64            # spectra in (start or CORDIC), samples out (<= 2**19)
    assert probed["stft_fixed"] < 2 ** 27 + 2 ** 12         # |bin| <= 256 x 2**19 plus rounding
    assert probed["unit_phase_times"] < 2 ** 28
    assert probed["overlap_add"] < 2 ** 30
    assert probed["refine_nnls"] < 2 ** 29 and probed["integer_sqrt"] <= X_MAX << 2
    assert probed["rounding_shift"] < 2 ** 54               # the largest MAC before a shift: NNLS's M x
    print(fill, {k: f"2**{np.log2(max(v, 1)):.1f}" for k, v in probed.items()})


def test_nnls_refinement_fits_the_mel_better_than_the_inverse_alone():
    y = np.load(GOLDEN / "golden.npz")["output"][0]
    mel = magnitude_table()[y.astype(np.int64) + 128].astype(np.float64)
    basis = speech._slaney_mel_basis()
    residual = {n: np.abs(basis @ speech.mel_codes_to_magnitude(y, n).astype(np.float64) ** 2 - mel ** 2).sum()
                for n in (0, 4, 16)}
    print({n: f"{r / (mel ** 2).sum():.3f}" for n, r in residual.items()})
    assert residual[16] < residual[4] < 0.5 * residual[0]


def test_the_floor_is_a_few_lsb_as_in_float():
    # -80 dB in every band is not digital silence: ~1e-4 per bin, about 1 LSB of PCM16 (the float back end too)
    assert np.abs(mel_to_pcm16(np.full((N_MELS, 20), -128, np.int8), 1280, iters=2)).max() <= 16


def test_float_or_wrongly_shaped_codes_are_refused():
    with pytest.raises(AssertionError):
        mel_to_pcm16(np.zeros((N_MELS, 10), np.float32), 640)
    with pytest.raises(AssertionError):
        mel_to_pcm16(np.zeros((N_BINS, 10), np.int8), 640)


def test_lengths_follow_the_float_back_end():
    codes = random_codes(10)
    for n in (577, 639, 640):                               # T = 10 frames cover 577..640 samples
        assert mel_to_pcm16(codes, n, iters=1).shape == (n,)
    assert mel_to_pcm16(codes, 640, iters=1)[-1] == 0       # as mel_to_wav: 64 T - 1 samples, then a 0


CHILD = """
import hashlib, numpy as np
from bpgan.firmware_ref.speech import mel_to_pcm16
codes = np.random.default_rng(7).integers(-128, 128, (64, 30)).astype(np.int8)
print(hashlib.sha256(mel_to_pcm16(codes, 1900, 3).tobytes()).hexdigest())
"""


def test_the_same_bytes_twice_and_in_fresh_processes_with_any_thread_count():
    codes = np.random.default_rng(7).integers(-128, 128, (64, 30)).astype(np.int8)
    here = mel_to_pcm16(codes, 1900, 3)
    assert np.array_equal(here, mel_to_pcm16(codes.copy(), 1900, 3))
    digest = hashlib.sha256(here.tobytes()).hexdigest()
    for threads in ("1", "2", "7"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == digest, threads


def test_the_golden_stream_decodes_to_pinned_pcm():
    import bpgan

    header, y = bpgan.decode_integers((GOLDEN / "golden.bpg").read_bytes())
    assert np.array_equal(y, np.load(GOLDEN / "golden.npz")["output"])      # the bit-exact mel, as pinned elsewhere
    pcm = mel_to_pcm16(y[0], header.original_size[0])
    assert pcm.dtype == np.int16 and pcm.shape == (16000,) and np.abs(pcm).max() > 3000
    assert hashlib.sha256(pcm.tobytes()).hexdigest() == GOLDEN_PCM_SHA256


def test_the_api_and_bpgan_decode_use_it_and_keep_the_float_back_end_selectable(tmp_path):
    import soundfile as sf

    import bpgan
    from bpgan.toolkit.audio.mel import int8_to_unit, mel_to_wav
    from bpgan.toolkit.audio.wav import to_pcm16
    from bpgan.toolkit.cli.decode import main as decode_main

    data = (GOLDEN / "golden.bpg").read_bytes()
    header, y = bpgan.decode_integers(data)
    pcm = mel_to_pcm16(y[0], header.original_size[0])
    samples = bpgan.decode(data)
    assert samples.dtype == np.float32 and np.array_equal(samples * 32768, pcm)          # exact
    float_samples = bpgan.decode(data, float_backend=True)
    assert np.array_equal(float_samples, mel_to_wav(int8_to_unit(y[0]), header.original_size[0]))
    assert decode_main([str(GOLDEN / "golden.bpg"), "-o", str(tmp_path / "i.wav")]) == 0
    assert decode_main([str(GOLDEN / "golden.bpg"), "-o", str(tmp_path / "f.wav"), "--float-backend"]) == 0
    assert np.array_equal(sf.read(str(tmp_path / "i.wav"), dtype="int16")[0], pcm)
    assert np.array_equal(sf.read(str(tmp_path / "f.wav"), dtype="int16")[0], to_pcm16(float_samples))
