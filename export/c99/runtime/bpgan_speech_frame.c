/* bpgan_speech_frame.c: the per-frame operations of the integer speech back end (firmware_ref/speech.py):
 * a mel frame's magnitude (table, Q12 inverse, NNLS), the fixed-point FFT and CORDIC, and one frame of
 * a Griffin-Lim stage (start phase, analysis, phase update, synthesis, overlap-add into the rings).
 * bpgan_speech.c runs them as a wavefront; the units and bounds are those of its header comment. */
#include "bpgan_speech_internal.h"

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

/* speech.mel_codes_to_magnitude for one frame (band b at codes[b * pitch]): mel <= 10 x 2**19, inverse
 * MACs < 2**38, clip 2**26; scratch: 2572 bytes, 8-aligned. */
void bpg_speech_frame_magnitude(const int8_t *codes, uint32_t pitch, uint32_t nnls_iters, int32_t *mag,
                            uint8_t *scratch)
{
    int32_t *mel = (int32_t *)(void *)(scratch + 8u * (N_BINS + N_MELS) + 4u * (N_BINS + N_MELS));
    uint32_t b, k;
    for (b = 0; b < N_MELS; b++)
        mel[b] = bpg_speech_magnitude[codes[(uint64_t)b * pitch] + 128];
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

/* ---- one frame of a stage ------------------------------------------------------------------- */

/* speech.start_phase for frame t: bin k takes angle 2 pi h / 256, h a uint32 hash of t * 129 + k + 1
 * (Python's uint64 count masked to 32 bits: the same product mod 2**32); mag x (cos, sin) Q14,
 * |.| <= 2**26. */
void bpg_speech_start_phase(const int32_t *mag, uint32_t t, int32_t *fre, int32_t *fim)
{
    uint32_t k;
    for (k = 0; k < N_BINS; k++) {
        uint32_t h = (uint32_t)(t * (uint32_t)N_BINS + k + 1u) * 0x9E3779B1u;
        h ^= h >> 15;
        h *= 0x2C1B3C6Du;
        h = (h ^ (h >> 12)) >> 24;
        fre[k] = (int32_t)rs((int64_t)mag[k] * bpg_speech_cos_q14[h], TWIDDLE_BITS);
        fim[k] = (int32_t)rs((int64_t)mag[k] * bpg_speech_sin_q14[h], TWIDDLE_BITS);
    }
}

/* frame t of a signal ring (blocks t .. t+3, complete, |.| <= 2**19) x Hann Q14 -> forward FFT
 * (|bin| <= 2**27) in fre/fim */
void bpg_speech_analyse_frame(const int32_t *ring, uint32_t t, int32_t *fre, int32_t *fim)
{
    uint32_t q, r;
    for (q = 0; q < 4u; q++) {
        const int32_t *x = ring + ((t + q) % SIG_BLOCKS) * HOP;
        const int16_t *w = bpg_speech_hann_q14 + q * HOP;
        for (r = 0; r < HOP; r++) {
            fre[q * HOP + r] = (int32_t)rs((int64_t)x[r] * w[r], WINDOW_BITS);
            fim[q * HOP + r] = 0;
        }
    }
    fft256(fre, fim, 0);
}

/* round j-1 on frame t, rebuilt spectrum R in fre/fim: target R - rs(0.4975 Q15 x previous R, 15)
 * (|.| < 1.5 x 2**27; round 0: R) turned to the magnitude's phase by CORDIC into fre/fim; R kept
 * in the frame's momentum slot for the next round (the previous round's R, read, is then dead). */
void bpg_speech_phase_update(int32_t *fre, int32_t *fim, const int32_t *mag, int32_t *prev, int momentum, int keep)
{
    int32_t *prev_im = prev + N_BINS;
    uint32_t k;
    for (k = 0; k < N_BINS; k++) {
        int32_t re = fre[k], im = fim[k], target_re = re, target_im = im;
        if (momentum) {
            target_re = (int32_t)(re - rs((int64_t)MOMENTUM_Q15 * prev[k], 15));
            target_im = (int32_t)(im - rs((int64_t)MOMENTUM_Q15 * prev_im[k], 15));
        }
        if (keep) {
            prev[k] = re;
            prev_im[k] = im;
        }
        unit_phase_times(target_re, target_im, mag[k], &fre[k], &fim[k]);
    }
}

/* fre/fim bins 0..128 -> IFFT (Hermitian, DC / Nyquist imaginary parts dropped; |.| <= 2**26) x Hann
 * Q14 -> synth (|.| <= 2**26) */
void bpg_speech_synthesise_frame(int32_t *fre, int32_t *fim, int32_t *synth)
{
    uint32_t n;
    for (n = N_BINS; n < N_FFT; n++) {
        fre[n] = fre[N_FFT - n];
        fim[n] = -fim[N_FFT - n];
    }
    fim[0] = fim[N_BINS - 1] = 0;
    fft256(fre, fim, 1);
    for (n = 0; n < N_FFT; n++)
        synth[n] = (int32_t)rs((int64_t)fre[n] * bpg_speech_hann_q14[n], WINDOW_BITS);
}

/* frame u's quarters 1 .. 3 (synth) into a ring of `depth` blocks: added to blocks u+1, u+2 (the
 * overlap-add sums 4 frames: <= 2**28), block u+3 (whose slot held block u+3-depth, dead) set. */
void bpg_speech_flush_frame(int32_t *ring, uint32_t depth, uint32_t u, const int32_t *synth)
{
    int32_t *b1 = ring + ((u + 1u) % depth) * HOP, *b2 = ring + ((u + 2u) % depth) * HOP;
    int32_t *b3 = ring + ((u + 3u) % depth) * HOP;
    uint32_t r;
    for (r = 0; r < HOP; r++) {
        b1[r] += synth[HOP + r];
        b2[r] += synth[2u * HOP + r];
        b3[r] = synth[3u * HOP + r];
    }
}

/* Block b of a padded signal is summed (acc plus, if q0, the quarter 0 of frame b): x Q16 1/envelope
 * (int64 < 2**46), rounding_shift 16, clip to +-2**19 over the kept samples [128, 128 + 64 T - 1),
 * 0 elsewhere (blocks 0, 1 and T+2 entirely); in place. The envelope of a kept block depends on which
 * of its 4 frames exist: b - hi .. b - lo. */
void bpg_speech_finish_block(int32_t *acc, const int32_t *q0, uint32_t b, uint32_t frames)
{
    uint32_t r;
    if (b < 2u || b > frames + 1u) {
        for (r = 0; r < HOP; r++)
            acc[r] = 0;
    } else {
        const uint32_t lo = b + 1u > frames ? b + 1u - frames : 0, hi = b < 3u ? b : 3u;
        const int32_t *env = bpg_speech_inv_env_q16[lo][hi - 2u];
        const uint32_t kept = b == frames + 1u ? HOP - 1u : HOP;   /* the clip's last sample is never kept */
        for (r = 0; r < kept; r++) {
            int32_t v = acc[r] + (q0 ? q0[r] : 0);
            acc[r] = bpg_clamp(rs((int64_t)v * env[r], 16), -SAMPLE_MAX - 1, SAMPLE_MAX);
        }
        for (; r < HOP; r++)
            acc[r] = 0;
    }
}
