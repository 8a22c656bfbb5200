"""Integer-only speech back end: the int8 mel (64, T) -> 16-bit PCM at 8 kHz, bit-exact on every machine.

It mirrors toolkit/audio/mel.py `mel_to_wav` (same STFT geometry: n_fft 256, hop 64, periodic Hann,
centred, zero padded; same dB mapping; NNLS mel inversion; fast Griffin-Lim with librosa's momentum
0.99) with every step on integers. Constants (dB table, mel basis and inverse, window, twiddles) are
computed in float64 once, rounded half up to integers and pinned by a test hash; the data path then
only adds, multiplies, shifts and (in the NNLS updates) divides, and every shift is the contract's
rounding_shift. Not a copy of the float numbers: the NNLS here converges on every frame (librosa's one
L-BFGS-B over the whole clip is dominated by the loud frames), and the start phase is an integer hash.
Units: a time sample is PCM16 x 2**GUARD_BITS (int32), a spectrum bin is in the same units (an
unnormalised DFT), Qn means value x 2**n.
"""
import math
from functools import lru_cache

import numpy as np

from .bitstream import AUDIO_HOP as HOP
from .rounding import rounding_shift

N_FFT, N_BINS, N_MELS, SAMPLE_RATE = 256, 129, 64, 8000
FFT_STAGES = 8                      # log2(N_FFT)
DB_FLOOR, DB_CEIL, CODE_FRAC_BITS = -80.0, 20.0, 7
GRIFFIN_LIM_ITERS = 32              # the float back end's default
GUARD_BITS = 4                      # extra fraction bits below the PCM16 LSB while iterating
SAMPLE_MAX = (1 << (15 + GUARD_BITS)) - 1       # the internal signal is clipped to PCM16's range
MAG_MAX = N_FFT << (15 + GUARD_BITS - 1)        # 2**26: no PCM16-bounded frame has a larger bin (sum of Hann = 128)
TWIDDLE_BITS = WINDOW_BITS = 14     # cos, sin, Hann in Q14 (int16: 1.0 = 16384 fits)
INVERSE_BITS = 12                   # mel inverse in Q12 (largest entry 5.64 -> 23104, int16)
MEL_BITS = 20                       # mel basis in Q20 for the NNLS refinement
NNLS_ITERS = 16                     # multiplicative NNLS updates after the inverse (0: the inverse alone)
POWER_BITS, X_MAX = 28, 1 << 38     # NNLS block floating point: band power < 2**28, bin power <= 2**38
MOMENTUM_Q15 = 16302                # librosa's fast Griffin-Lim: momentum / (1 + momentum) = 0.99 / 1.99
CORDIC_STEPS = 16                   # phase error <= atan(2**-15) ~ 3e-5 rad
CORDIC_INV_GAIN_Q15 = 19898         # round(2**15 * prod 1 / sqrt(1 + 2**-2i), i < 16) = 0.607253 x 2**15
NORM_TOP = 1 << 28                  # CORDIC inputs are shifted up to max(|re|, |im|) in [2**27, 2**28)


def _round_half_up(x) -> np.ndarray:
    """Float constants -> int64, floor(x + 0.5): the contract's rounding, applied once to tables."""
    return np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64)


@lru_cache(maxsize=None)
def twiddles_q14():
    """-> (cos, sin) of 2 pi n / 256, n < 256, Q14 int64."""
    n = np.arange(N_FFT)
    return (_round_half_up([math.cos(2 * math.pi * k / N_FFT) * (1 << TWIDDLE_BITS) for k in n]),
            _round_half_up([math.sin(2 * math.pi * k / N_FFT) * (1 << TWIDDLE_BITS) for k in n]))


@lru_cache(maxsize=None)
def hann_q14() -> np.ndarray:
    """The periodic Hann window (scipy's, librosa's) sin^2(pi n / 256) in Q14."""
    return _round_half_up([math.sin(math.pi * k / N_FFT) ** 2 * (1 << WINDOW_BITS) for k in range(N_FFT)])


@lru_cache(maxsize=None)
def magnitude_table() -> np.ndarray:
    """code + 128 -> mel magnitude 10**(dB / 20) in sample units (PCM16 x 2**GUARD_BITS): mel.py's dB mapping."""
    codes = np.arange(-128, 128)
    db = (codes * 2.0 ** -CODE_FRAC_BITS + 1) / 2 * (DB_CEIL - DB_FLOOR) + DB_FLOOR
    return _round_half_up([10.0 ** (d / 20) * (1 << (15 + GUARD_BITS)) for d in db])


def _slaney_mel_basis() -> np.ndarray:
    """librosa.filters.mel(sr=8000, n_fft=256, n_mels=64) (Slaney scale and area norm) in float64."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    to_mel = lambda f: f / f_sp if f < min_log_hz else min_log_hz / f_sp + math.log(f / min_log_hz) / logstep
    to_hz = lambda m: f_sp * m if m < min_log_hz / f_sp else min_log_hz * math.exp(logstep * (m - min_log_hz / f_sp))
    top = to_mel(SAMPLE_RATE / 2)
    edges = np.array([to_hz(top * i / (N_MELS + 1)) for i in range(N_MELS + 2)])
    freqs = np.arange(N_BINS) * (SAMPLE_RATE / N_FFT)
    rising = (freqs[None] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - freqs[None]) / np.diff(edges)[1:, None]
    return np.maximum(0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]


@lru_cache(maxsize=None)
def mel_basis_q20() -> np.ndarray:
    """(64, 129) the Slaney mel basis in Q20 (largest weight 0.0277 -> 28994, int16)."""
    return _round_half_up(_slaney_mel_basis() * (1 << MEL_BITS))


@lru_cache(maxsize=None)
def mel_inverse_q12() -> np.ndarray:
    """(129, 64) non-negative mel inverse in Q12: bin k = sum_b M[b,k] / colsum_k x m_b / sqrt(rowsum_b).

    m_b is a band's magnitude sqrt(sum_k M[b,k] |X_k|^2); m_b / sqrt(rowsum_b) is then the band's RMS bin
    magnitude, spread over the band's bins with the triangle weights: a flat spectrum comes back exactly,
    levels stay those of the float back end; one fixed matrix, the start that refine_nnls improves on.
    Bins 0 and 128, which no band covers, stay 0 (as NNLS leaves them)."""
    basis = _slaney_mel_basis()
    cols = basis.sum(0)
    inverse = (basis / np.where(cols > 0, cols, 1)).T / np.sqrt(basis.sum(1))[None]
    return _round_half_up(inverse * (1 << INVERSE_BITS))


def mel_codes_to_magnitude(codes: np.ndarray, nnls_iters: int = NNLS_ITERS) -> np.ndarray:
    """int8 (64, T) -> int64 (129, T) STFT magnitude target in [0, MAG_MAX]: table, Q12 inverse, NNLS refinement."""
    assert codes.dtype == np.int8 and codes.shape[0] == N_MELS, (codes.dtype, codes.shape)
    mel = magnitude_table()[codes.astype(np.int64) + 128]           # <= 10 x 2**19 < 2**23
    acc = mel_inverse_q12() @ mel                                   # integer MACs, row sums <= 2**15: < 2**38
    magnitude = np.minimum(rounding_shift(acc, INVERSE_BITS), MAG_MAX)
    return np.minimum(refine_nnls(mel, magnitude, nnls_iters), MAG_MAX) if nnls_iters > 0 else magnitude


def refine_nnls(mel: np.ndarray, magnitude: np.ndarray, iters: int) -> np.ndarray:
    """Multiplicative NNLS updates on power, x <- x (M^T p) / (M^T M x), from the inverse's estimate.

    What librosa's mel_to_stft solves (min |M x - p|, x >= 0), by Lee-Seung updates that stay >= 0
    without a step size. Per frame an even block exponent e keeps the loudest band power < 2**28 (84 dB
    of range below it); x is capped at 2**38 so x * (M^T p) < 2**61; the divide rounds half up."""
    power = mel * mel                                               # < 2**46
    top = power.max(axis=0)
    shift = np.zeros_like(top)
    for s in range(0, 20, 2):                                       # smallest even e with top >> e < 2**28
        shift = np.where(top >= 1 << (POWER_BITS + s), s + 2, shift)
    p = rounding_shift(power, shift)
    x = np.minimum(rounding_shift(magnitude * magnitude, shift), X_MAX)
    basis = mel_basis_q20()
    target = rounding_shift(basis.T @ p, MEL_BITS)                  # M^T p < 2**23 (column sums of M < 0.028)
    for _ in range(iters):
        fitted = rounding_shift(basis.T @ rounding_shift(basis @ x, MEL_BITS), MEL_BITS)
        x = np.where(fitted > 0, (x * target + fitted // 2) // np.maximum(fitted, 1), 0)
        x = np.minimum(x, X_MAX)
    return rounding_shift(integer_sqrt(x << 2, 40), 1) << (shift // 2)  # round(sqrt(x)), in sample units


def integer_sqrt(v: np.ndarray, top_bit: int) -> np.ndarray:
    """floor(sqrt(v)) for 0 <= v < 2**(top_bit + 2), top_bit even: digit by digit, shifts and compares only."""
    root, rest, bit = np.zeros_like(v), v.copy(), 1 << top_bit
    while bit:
        take = rest >= root + bit
        rest = np.where(take, rest - root - bit, rest)
        root = np.where(take, (root >> 1) + bit, root >> 1)
        bit >>= 2
    return root


def fft_fixed(re: np.ndarray, im: np.ndarray, inverse: bool = False):
    """Radix-2 DIT FFT over the last axis (256), int64 in, int64 out; forward: sum x e^{-i..}, no scaling
    (|out| <= 256 max|in|); inverse: e^{+i..} and a rounding >> 1 per stage, i.e. / 256 (|out| <= max|in|).
    Each twiddle product is one Q14 rounding shift of (re*c - im*s) (a 64-bit MAC pair)."""
    assert re.dtype == im.dtype == np.int64
    cos, sin = twiddles_q14()
    order = _bit_reversal()
    re, im = re[..., order], im[..., order]
    lead = re.shape[:-1]
    for stage in range(1, FFT_STAGES + 1):
        half = 1 << (stage - 1)
        k = np.arange(half) * (N_FFT >> stage)
        wr, wi = cos[k], (sin[k] if inverse else -sin[k])
        r = re.reshape(lead + (N_FFT >> stage, 2, half))
        i = im.reshape(lead + (N_FFT >> stage, 2, half))
        br, bi = r[..., 1, :], i[..., 1, :]
        tr = rounding_shift(br * wr - bi * wi, TWIDDLE_BITS)
        ti = rounding_shift(br * wi + bi * wr, TWIDDLE_BITS)
        r = np.stack([r[..., 0, :] + tr, r[..., 0, :] - tr], axis=-2)
        i = np.stack([i[..., 0, :] + ti, i[..., 0, :] - ti], axis=-2)
        if inverse:
            r, i = rounding_shift(r, 1), rounding_shift(i, 1)
        re, im = r.reshape(lead + (N_FFT,)), i.reshape(lead + (N_FFT,))
    return re, im


def fft_error_bound(max_modulus_in: float, inverse: bool = False) -> float:
    """Worst-case |fft_fixed - exact| per output for inputs of modulus <= max_modulus_in.

    Per stage a Q14 twiddle is off by <= sqrt(2) 2**-15 in modulus and each rounding by <= sqrt(2) / 2.
    Forward: errors double with the data each stage (e_s <= 2 e_{s-1} + sqrt2 2**-15 2**(s-1) B + 0.71).
    Inverse: the >> 1 halves them (e_s <= e_{s-1} + sqrt2 2**-16 B + 1.07, B the input bound)."""
    twiddle, stages = math.sqrt(2) * 2.0 ** -15, FFT_STAGES
    if inverse:
        return stages * (twiddle / 2 * max_modulus_in + 1.07)
    return stages * 2 ** (stages - 1) * twiddle * max_modulus_in + 0.71 * (2 ** stages - 1)


@lru_cache(maxsize=None)
def _bit_reversal() -> np.ndarray:
    return np.array([int(format(n, f"0{FFT_STAGES}b")[::-1], 2) for n in range(N_FFT)])


def _inverse_envelope(frames: int) -> np.ndarray:
    """Q16 reciprocal of the window-square overlap (Q28, exact integers) over the kept samples, 0 elsewhere."""
    env = overlap_add(np.broadcast_to(hann_q14() ** 2, (frames, N_FFT)))
    kept = np.zeros_like(env)
    lo, hi = N_FFT // 2, N_FFT // 2 + frames * HOP - 1
    kept[lo:hi] = ((1 << 44) + env[lo:hi] // 2) // env[lo:hi]    # integer divide once per call, >= 1 frame covers
    return kept


def overlap_add(frames: np.ndarray) -> np.ndarray:
    """(T, 256) -> ((T - 1) * 64 + 256,) int64: frame t added at t * 64 (each sample sums <= 4 frames)."""
    count = frames.shape[0]
    blocks = np.zeros((count + N_FFT // HOP - 1, HOP), np.int64)
    for j in range(N_FFT // HOP):                                    # the 4 hop-sized quarters of every frame
        blocks[j:j + count] += frames[:, j * HOP:(j + 1) * HOP]
    return blocks.reshape(-1)


def istft_fixed(re: np.ndarray, im: np.ndarray, inv_env: np.ndarray) -> np.ndarray:
    """(129, T) spectrum -> int64 padded signal: IFFT, Q14 window, overlap-add (<= 4 x |in|), x Q16 1/envelope,
    clip to +-SAMPLE_MAX; samples outside the kept [128, 128 + 64 T - 1) are 0 (the STFT's zero padding)."""
    full_re = np.concatenate([re, re[-2:0:-1]], axis=0).T            # Hermitian: X[256 - k] = conj X[k]
    full_im = np.concatenate([im, -im[-2:0:-1]], axis=0).T
    full_im[:, 0] = full_im[:, N_BINS - 1] = 0                       # irfft ignores DC / Nyquist imaginary parts
    frames, _ = fft_fixed(full_re, full_im, inverse=True)
    frames = rounding_shift(frames * hann_q14(), WINDOW_BITS)
    return np.clip(rounding_shift(overlap_add(frames) * inv_env, 16), -SAMPLE_MAX - 1, SAMPLE_MAX)


def stft_fixed(signal: np.ndarray, frames: int):
    """int64 padded signal (|x| <= 2**19) -> (129, T) spectrum: Q14 window then FFT, |bin| <= 2**27."""
    idx = np.arange(frames)[:, None] * HOP + np.arange(N_FFT)[None]
    windowed = rounding_shift(signal[idx] * hann_q14(), WINDOW_BITS)
    re, im = fft_fixed(windowed, np.zeros_like(windowed))
    return re[:, :N_BINS].T, im[:, :N_BINS].T


def unit_phase_times(re: np.ndarray, im: np.ndarray, magnitude: np.ndarray):
    """magnitude x (re, im) / |(re, im)| by CORDIC (shifts and adds only); 0 where re = im = 0 (as librosa).

    Vectoring records the rotation signs that bring the (normalised) vector onto the +x axis; rotating
    (magnitude x 1/K, 0) back by the same signs gives magnitude at the vector's angle. Bounds: inputs
    |.| < 2**28, normalised to max(|re|, |im|) in [2**27, 2**28), gain < 1.65 -> |.| < 2**30; output
    |.| <= magnitude + 16 (16 roundings)."""
    flip = re < 0                                                    # fold into |angle| <= 90 deg
    x, y = np.where(flip, -re, re), np.where(flip, -im, im)
    for shift in (16, 8, 4, 2, 1):                                   # count-leading-zeros normalisation
        small = np.maximum(np.abs(x), np.abs(y)) < (NORM_TOP >> shift)
        x, y = np.where(small, x << shift, x), np.where(small, y << shift, y)
    signs = []
    for i in range(CORDIC_STEPS):
        down = y >= 0
        dx, dy = rounding_shift(y, i), rounding_shift(x, i)
        x, y = np.where(down, x + dx, x - dx), np.where(down, y - dy, y + dy)
        signs.append(down)
    u, v = rounding_shift(magnitude * CORDIC_INV_GAIN_Q15, 15), np.zeros_like(magnitude)
    for i, down in enumerate(signs):                                 # undo each rotation: turn the other way
        du, dv = rounding_shift(v, i), rounding_shift(u, i)
        u, v = np.where(down, u - du, u + du), np.where(down, v + dv, v - dv)
    zero = (re == 0) & (im == 0)
    return np.where(zero, 0, np.where(flip, -u, u)), np.where(zero, 0, np.where(flip, -v, v))


def start_phase(magnitude: np.ndarray):
    """Deterministic pseudo-random start: bin k of frame t takes angle 2 pi h / 256, h from an integer hash."""
    count = np.arange(magnitude.size, dtype=np.uint64).reshape(magnitude.shape[::-1]).T + np.uint64(1)
    h = (count * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)      # Fibonacci hashing, then xorshift-multiply
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
    h = ((h ^ (h >> np.uint64(12))) >> np.uint64(24)).astype(np.int64)
    cos, sin = twiddles_q14()
    return rounding_shift(magnitude * cos[h], TWIDDLE_BITS), rounding_shift(magnitude * sin[h], TWIDDLE_BITS)


def mel_to_pcm16(codes: np.ndarray, num_samples: int, iters: int = GRIFFIN_LIM_ITERS,
                 nnls_iters: int = NNLS_ITERS) -> np.ndarray:
    """int8 mel codes (64, T) -> int16 (num_samples,) PCM at 8 kHz, integers only. Stages and bounds:

    table:    code -> mel magnitude, int, <= 10 x 2**19 (+20 dB)
    inverse:  Q12 int16 non-negative matrix, int64 MAC (< 2**38), rounding_shift 12, clip to MAG_MAX = 2**26
    nnls:     `nnls_iters` updates on power in per-frame block floating point (band power < 2**28, bin
              power <= 2**38, Q20 basis MACs < 2**54, x * M^T p < 2**61, divide rounds half up),
              rounded integer sqrt, clip to MAG_MAX
    start:    magnitude x (cos, sin)[hash] Q14, rounding_shift 14, |.| <= 2**26
    istft:    IFFT (>> 1 per stage, |.| <= 2**26), x Hann Q14, overlap-add of 4 (<= 2**28),
              x 1/envelope Q16 (int64 < 2**45), rounding_shift 16, clip to PCM16 x 2**4 = +-2**19
    stft:     x Hann Q14 (<= 2**19), FFT without scaling (x2 per stage: |bin| <= 2**27)
    momentum: rebuilt - rounding_shift(0.4975 Q15 x previous, 15), |.| <= 1.5 x 2**27 < 2**28
    phase:    CORDIC magnitude x z / |z| (16 steps, normalised inputs, |.| < 2**30 inside), |.| <= 2**26 + 16
    output:   after `iters` rounds (at least 1, as the float back end), rounding_shift 4, clip to int16
    The Griffin-Lim loop keeps every value in int32 except products before a rounding shift (int64, as a
    32x32->64 MAC); the NNLS stage needs int64 (64-bit MACs and a 64-bit divide)."""
    codes = np.asarray(codes)
    frames = codes.shape[1]
    magnitude = mel_codes_to_magnitude(codes, nnls_iters)
    inv_env = _inverse_envelope(frames)
    re, im = start_phase(magnitude)
    previous = None
    for _ in range(max(int(iters), 1)):
        rebuilt = stft_fixed(istft_fixed(re, im, inv_env), frames)
        target = rebuilt if previous is None else \
            tuple(r - rounding_shift(MOMENTUM_Q15 * p, 15) for r, p in zip(rebuilt, previous))
        re, im = unit_phase_times(*target, magnitude)
        previous = rebuilt
    signal = istft_fixed(re, im, inv_env)[N_FFT // 2:N_FFT // 2 + frames * HOP - 1]
    pcm = np.clip(rounding_shift(signal, GUARD_BITS), -32768, 32767).astype(np.int16)
    return np.pad(pcm, (0, max(0, num_samples - len(pcm))))[:num_samples]
