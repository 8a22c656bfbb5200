/* bpgan_speech.c: firmware_ref/speech.py mel_to_pcm16 in C99, bit for bit (see bpgan_speech.h).
 * Units as there: a time sample is PCM16 x 2**4 (int32), a bin is an unnormalised DFT in the same
 * units, Qn means value x 2**n. Every shift is the contract's rounding rule (bpg_rounding_shift);
 * every division is of non-negative integers (C's truncation is then NumPy's floor division). */
#include "bpgan_internal.h"
#include "bpgan_speech.h"

#define N_FFT 256
#define N_BINS 129
#define N_MELS 64
#define HOP 64
#define GUARD_BITS 4
#define SAMPLE_MAX ((1 << (15 + GUARD_BITS)) - 1)
#define MAG_MAX ((int64_t)1 << 26)
#define TWIDDLE_BITS 14
#define WINDOW_BITS 14
#define INVERSE_BITS 12
#define MEL_BITS 20
#define POWER_BITS 28
#define X_MAX ((int64_t)1 << 38)
#define MOMENTUM_Q15 16302
#define CORDIC_STEPS 16
#define CORDIC_INV_GAIN_Q15 19898
#define NORM_TOP ((int32_t)1 << 28)

/* The work layout (bpg_speech_work_bytes; speech_tables.py speech_work_bytes is the same formula). */
#define PREV_BYTES_PER_FRAME (4u * 2u * N_BINS)
#define SIG_BYTES_PER_FRAME (4u * HOP)
#define MAG_BYTES_PER_FRAME (4u * N_BINS)
#define SIG_TAIL_BYTES (4u * 3u * HOP)
#define SCRATCH_BYTES (4u * (2u * N_FFT + 4u * HOP))   /* FFT re, im; the overlap-add ring */

uint64_t bpg_speech_work_bytes(uint32_t frames)
{
    uint64_t bytes = (uint64_t)frames * (PREV_BYTES_PER_FRAME + SIG_BYTES_PER_FRAME + MAG_BYTES_PER_FRAME)
                     + SIG_TAIL_BYTES + SCRATCH_BYTES;
    return (bytes + 7u) / 8u * 8u;
}

/* shift_terms(k) for one scalar k; rs() applies the one rule. */
static inline bpg_shift speech_terms(int k)
{
    bpg_shift t;
    t.left = k < 0 ? -k : 0;
    t.right = k > 0 ? k : 0;
    t.rnd = k > 0 ? (int64_t)1 << (k - 1) : 0;
    return t;
}

static inline int64_t rs(int64_t a, int k)
{
    bpg_shift t = speech_terms(k);
    return bpg_rounding_shift(a, &t);
}

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

typedef struct {
    uint32_t frames;
    int32_t *prev;     /* (frames, 2, 129): the previous round's rebuilt re, im (|.| <= 2**27) */
    int32_t *sig;      /* 64 (frames + 3): the padded signal, |.| <= 2**19 */
    int32_t *fre, *fim; /* 256 each: one frame's spectrum / samples */
    int32_t *ring;     /* 4 x 64: overlap-add of the blocks still being summed (<= 4 x 2**26 = 2**28) */
    int32_t *mag;      /* (frames, 129): the target magnitude, [0, 2**26] */
    uint8_t *scratch;  /* fre, fim, ring while iterating; the NNLS vectors before */
} speech_work;

/* ---- magnitude: table, Q12 inverse, NNLS ---------------------------------------------------- */

static int64_t dot32(const bpg_speech_sparse *m, uint32_t row, const int32_t *v)
{
    int64_t acc = 0;
    uint32_t i, col = m->first[row];
    for (i = m->offset[row]; i < m->offset[row + 1]; i++, col++)
        acc += (int64_t)m->values[i] * v[col];
    return acc;
}

static int64_t dot64(const bpg_speech_sparse *m, uint32_t row, const int64_t *v)
{
    int64_t acc = 0;
    uint32_t i, col = m->first[row];
    for (i = m->offset[row]; i < m->offset[row + 1]; i++, col++)
        acc += (int64_t)m->values[i] * v[col];
    return acc;
}

/* floor(sqrt(v)) for 0 <= v < 2**42: digit by digit (speech.integer_sqrt, top_bit 40) */
static int64_t integer_sqrt40(int64_t v)
{
    int64_t root = 0, rest = v, bit = (int64_t)1 << 40;
    while (bit) {
        if (rest >= root + bit) {
            rest -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return root;
}

/* speech.refine_nnls for one frame: power in block floating point (band power p <= 2**28, bin power
 * x <= 2**38, Q20 MACs < 2**54, x * M^T p < 2**61 in int64, the divide rounds half up). */
static void refine_nnls(const int32_t *mel, int32_t *mag, uint32_t iters, uint8_t *scratch)
{
    int64_t *x = (int64_t *)(void *)scratch;                    /* 129, <= 2**38 */
    int64_t *bx = x + N_BINS;                                   /* 64, M x >> 20 < 2**34 */
    int32_t *target = (int32_t *)(void *)(bx + N_MELS);         /* 129, M^T p >> 20 < 2**23 */
    int32_t *p = target + N_BINS;                               /* 64, <= 2**28 */
    int64_t top = 0;
    int shift = 0, s;
    uint32_t b, k, it;
    for (b = 0; b < N_MELS; b++) {                              /* mel**2 < 2**46 */
        int64_t power = (int64_t)mel[b] * mel[b];
        top = power > top ? power : top;
    }
    for (s = 0; s < 20; s += 2)                                 /* smallest even e with top >> e < 2**28 */
        if (top >= (int64_t)1 << (POWER_BITS + s))
            shift = s + 2;
    for (b = 0; b < N_MELS; b++)
        p[b] = (int32_t)rs((int64_t)mel[b] * mel[b], shift);
    for (k = 0; k < N_BINS; k++)
        x[k] = min64(rs((int64_t)mag[k] * mag[k], shift), X_MAX);
    for (k = 0; k < N_BINS; k++)
        target[k] = (int32_t)rs(dot32(&bpg_speech_mel_basis_t_q20, k, p), MEL_BITS);
    for (it = 0; it < iters; it++) {
        for (b = 0; b < N_MELS; b++)
            bx[b] = rs(dot64(&bpg_speech_mel_basis_q20, b, x), MEL_BITS);
        for (k = 0; k < N_BINS; k++) {                          /* x <- x (M^T p) / (M^T M x), >= 0 */
            int64_t fitted = rs(dot64(&bpg_speech_mel_basis_t_q20, k, bx), MEL_BITS);
            x[k] = fitted > 0 ? min64((x[k] * target[k] + fitted / 2) / fitted, X_MAX) : 0;
        }
    }
    for (k = 0; k < N_BINS; k++)                                /* round(sqrt(x)) << e/2, sample units */
        mag[k] = (int32_t)min64(rs(rs(integer_sqrt40(rs(x[k], -2)), 1), -(shift / 2)), MAG_MAX);
}

/* speech.mel_codes_to_magnitude for frame t: mel <= 10 x 2**19, inverse MACs < 2**38, clip 2**26. */
static void frame_magnitude(const int8_t *codes, uint32_t pitch, uint32_t t, uint32_t nnls_iters,
                            int32_t *mag, uint8_t *scratch)
{
    int32_t *mel = (int32_t *)(void *)(scratch + 8u * (N_BINS + N_MELS) + 4u * (N_BINS + N_MELS));
    uint32_t b, k;
    for (b = 0; b < N_MELS; b++)
        mel[b] = bpg_speech_magnitude[codes[(uint64_t)b * pitch + t] + 128];
    for (k = 0; k < N_BINS; k++)
        mag[k] = (int32_t)min64(rs(dot32(&bpg_speech_mel_inverse_q12, k, mel), INVERSE_BITS), MAG_MAX);
    if (nnls_iters > 0)
        refine_nnls(mel, mag, nnls_iters, scratch);
}

/* ---- FFT, CORDIC ------------------------------------------------------------------------------ */

/* speech.fft_fixed on 256 points in place: radix-2 DIT, one Q14 rounding shift per twiddle product
 * (int64 MAC pair); forward unscaled (|out| <= 256 max|in|: <= 2**27 here), inverse e^{+i..} with a
 * rounding >> 1 per stage (|out| <= max|in| <= 2**26 + rounding). */
static void fft256(int32_t *re, int32_t *im, int inverse)
{
    uint32_t n, stage, g, j;
    for (n = 0; n < N_FFT; n++) {
        uint32_t r = bpg_speech_bit_reversal[n];
        if (r > n) {
            int32_t a = re[n], c = im[n];
            re[n] = re[r]; im[n] = im[r];
            re[r] = a; im[r] = c;
        }
    }
    for (stage = 1; stage <= 8; stage++) {
        uint32_t half = 1u << (stage - 1), step = N_FFT >> stage;
        for (j = 0; j < half; j++) {
            int32_t wr = bpg_speech_cos_q14[j * step];
            int32_t wi = inverse ? bpg_speech_sin_q14[j * step] : -bpg_speech_sin_q14[j * step];
            for (g = 0; g < N_FFT; g += 2u * half) {
                uint32_t a = g + j, b = a + half;
                int32_t br = re[b], bi = im[b], ar = re[a], ai = im[a];
                int32_t tr = (int32_t)rs((int64_t)br * wr - (int64_t)bi * wi, TWIDDLE_BITS);
                int32_t ti = (int32_t)rs((int64_t)br * wi + (int64_t)bi * wr, TWIDDLE_BITS);
                if (inverse) {
                    re[a] = (int32_t)rs((int64_t)ar + tr, 1); re[b] = (int32_t)rs((int64_t)ar - tr, 1);
                    im[a] = (int32_t)rs((int64_t)ai + ti, 1); im[b] = (int32_t)rs((int64_t)ai - ti, 1);
                } else {
                    re[a] = ar + tr; re[b] = ar - tr;
                    im[a] = ai + ti; im[b] = ai - ti;
                }
            }
        }
    }
}

/* speech.unit_phase_times for one bin: mag x (re, im) / |(re, im)|, 0 where re = im = 0. Inputs
 * |.| < 2**28, normalised to max(|x|, |y|) in [2**27, 2**28), gain < 1.65: |.| < 2**30 inside;
 * output |.| <= mag + 16. */
static void unit_phase_times(int32_t re, int32_t im, int32_t mag, int32_t *out_re, int32_t *out_im)
{
    int flip = re < 0;
    int32_t x = flip ? -re : re, y = flip ? -im : im, u, v;
    uint32_t signs = 0;
    int shift, i;
    if (re == 0 && im == 0) {
        *out_re = *out_im = 0;
        return;
    }
    for (shift = 16; shift >= 1; shift /= 2) {                  /* count-leading-zeros normalisation */
        int32_t ax = x < 0 ? -x : x, ay = y < 0 ? -y : y;
        if ((ax > ay ? ax : ay) < (NORM_TOP >> shift)) {
            x = (int32_t)rs(x, -shift);
            y = (int32_t)rs(y, -shift);
        }
    }
    for (i = 0; i < CORDIC_STEPS; i++) {                        /* vectoring: record the signs */
        int32_t dx = (int32_t)rs(y, i), dy = (int32_t)rs(x, i);
        if (y >= 0) {
            x += dx; y -= dy;
            signs |= 1u << i;
        } else {
            x -= dx; y += dy;
        }
    }
    u = (int32_t)rs((int64_t)mag * CORDIC_INV_GAIN_Q15, 15);
    v = 0;
    for (i = 0; i < CORDIC_STEPS; i++) {                        /* rotate back the other way */
        int32_t du = (int32_t)rs(v, i), dv = (int32_t)rs(u, i);
        if ((signs >> i) & 1u) {
            u -= du; v += dv;
        } else {
            u += du; v -= dv;
        }
    }
    *out_re = flip ? -u : u;
    *out_im = flip ? -v : v;
}

/* ---- ISTFT / STFT by frames ------------------------------------------------------------------- */

/* fre/fim bins 0..128 of frame t -> IFFT (Hermitian, DC / Nyquist imaginary parts dropped) x Hann Q14
 * (|.| <= 2**26), added to the ring blocks t .. t+3. */
static void synthesise_frame(speech_work *w, uint32_t t)
{
    uint32_t n;
    for (n = N_BINS; n < N_FFT; n++) {
        w->fre[n] = w->fre[N_FFT - n];
        w->fim[n] = -w->fim[N_FFT - n];
    }
    w->fim[0] = w->fim[N_BINS - 1] = 0;
    fft256(w->fre, w->fim, 1);
    for (n = 0; n < N_FFT; n++)
        w->ring[((t + n / HOP) & 3u) * HOP + n % HOP] +=
            (int32_t)rs((int64_t)w->fre[n] * bpg_speech_hann_q14[n], WINDOW_BITS);
}

/* Block b of the padded signal is summed: x Q16 1/envelope (int64 < 2**46), rounding_shift 16, clip to
 * +-2**19 over the kept samples [128, 128 + 64 T - 1), 0 elsewhere; its ring slot is cleared. */
static void finish_block(speech_work *w, uint32_t b)
{
    int32_t *acc = w->ring + (b & 3u) * HOP;
    uint32_t lo = b + 1 > w->frames ? b + 1 - w->frames : 0, hi = b < 3 ? b : 3, r;
    uint64_t kept_end = (uint64_t)HOP * w->frames + N_FFT / 2 - 1;
    for (r = 0; r < HOP; r++) {
        uint64_t n = (uint64_t)b * HOP + r;
        if (n >= N_FFT / 2 && n < kept_end)
            w->sig[n] = bpg_clamp(rs((int64_t)acc[r] * bpg_speech_inv_env_q16[lo][hi - 2][r], 16),
                                  -SAMPLE_MAX - 1, SAMPLE_MAX);
        else
            w->sig[n] = 0;
        acc[r] = 0;
    }
}

/* frame t of the signal x Hann Q14 (<= 2**19) -> forward FFT (|bin| <= 2**27) in fre/fim */
static void analyse_frame(speech_work *w, uint32_t t)
{
    const int32_t *x = w->sig + (uint64_t)t * HOP;
    uint32_t n;
    for (n = 0; n < N_FFT; n++) {
        w->fre[n] = (int32_t)rs((int64_t)x[n] * bpg_speech_hann_q14[n], WINDOW_BITS);
        w->fim[n] = 0;
    }
    fft256(w->fre, w->fim, 0);
}

/* speech.start_phase for frame t: bin k takes angle 2 pi h / 256, h a uint32 hash of t * 129 + k + 1;
 * mag x (cos, sin) Q14, |.| <= 2**26. */
static void start_phase(speech_work *w, uint32_t t)
{
    const int32_t *mag = w->mag + (uint64_t)t * N_BINS;
    uint32_t k;
    for (k = 0; k < N_BINS; k++) {
        uint32_t h = (uint32_t)(t * (uint32_t)N_BINS + k + 1u) * 0x9E3779B1u;
        h ^= h >> 15;
        h *= 0x2C1B3C6Du;
        h = (h ^ (h >> 12)) >> 24;
        w->fre[k] = (int32_t)rs((int64_t)mag[k] * bpg_speech_cos_q14[h], TWIDDLE_BITS);
        w->fim[k] = (int32_t)rs((int64_t)mag[k] * bpg_speech_sin_q14[h], TWIDDLE_BITS);
    }
}

static void clear_ring(speech_work *w)
{
    uint32_t i;
    for (i = 0; i < 4u * HOP; i++)
        w->ring[i] = 0;
}

/* One Griffin-Lim round, fused: frame t of the old signal is analysed (it needs blocks t..t+3), its
 * momentum target (rebuilt - 0.4975 Q15 x previous, |.| < 1.5 x 2**27) turned to the magnitude's
 * phase, synthesised into the ring, and block t of the new signal (complete once frame t is in, no
 * longer read by frames > t) written over the old. round 0 has no previous. */
static void griffin_lim_round(speech_work *w, int first)
{
    uint32_t t, k;
    clear_ring(w);
    for (t = 0; t < w->frames; t++) {
        int32_t *prev_re = w->prev + (uint64_t)t * 2u * N_BINS, *prev_im = prev_re + N_BINS;
        const int32_t *mag = w->mag + (uint64_t)t * N_BINS;
        analyse_frame(w, t);
        for (k = 0; k < N_BINS; k++) {
            int32_t re = w->fre[k], im = w->fim[k], target_re = re, target_im = im;
            if (!first) {
                target_re = (int32_t)(re - rs((int64_t)MOMENTUM_Q15 * prev_re[k], 15));
                target_im = (int32_t)(im - rs((int64_t)MOMENTUM_Q15 * prev_im[k], 15));
            }
            prev_re[k] = re;
            prev_im[k] = im;
            unit_phase_times(target_re, target_im, mag[k], &w->fre[k], &w->fim[k]);
        }
        synthesise_frame(w, t);
        finish_block(w, t);
    }
    for (t = w->frames; t < w->frames + 3u; t++)
        finish_block(w, t);
}

void bpg_speech_to_pcm16(const int8_t *mel, uint32_t mel_pitch, uint32_t frames, uint32_t num_samples,
                         uint32_t iters, uint32_t nnls_iters, int16_t *pcm, void *work)
{
    uint8_t *base = (uint8_t *)work;
    speech_work w;
    uint32_t t, i, round;
    uint64_t length = frames ? (uint64_t)frames * HOP - 1 : 0;  /* the kept samples */
    w.frames = frames;
    w.prev = (int32_t *)(void *)base;
    base += (uint64_t)frames * PREV_BYTES_PER_FRAME;
    w.sig = (int32_t *)(void *)base;
    base += (uint64_t)frames * SIG_BYTES_PER_FRAME + SIG_TAIL_BYTES;
    w.scratch = base;
    w.fre = (int32_t *)(void *)base;
    w.fim = w.fre + N_FFT;
    w.ring = w.fim + N_FFT;
    base += SCRATCH_BYTES;
    w.mag = (int32_t *)(void *)base;

    for (t = 0; t < frames; t++)
        frame_magnitude(mel, mel_pitch, t, nnls_iters, w.mag + (uint64_t)t * N_BINS, w.scratch);
    clear_ring(&w);                                             /* the start spectrum's signal */
    for (t = 0; t < frames; t++) {
        start_phase(&w, t);
        synthesise_frame(&w, t);
        finish_block(&w, t);
    }
    for (t = frames; t < frames + 3u; t++)
        finish_block(&w, t);
    if (iters == 0)
        iters = 1;
    for (round = 0; round < iters; round++)
        griffin_lim_round(&w, round == 0);
    for (i = 0; i < num_samples; i++)                           /* rounding_shift 4, clip to int16 */
        pcm[i] = (int16_t)(i < length ? bpg_clamp(rs(w.sig[N_FFT / 2 + i], GUARD_BITS), -32768, 32767) : 0);
}
