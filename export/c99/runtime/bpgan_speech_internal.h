/* bpgan_speech_internal.h: what the speech back end's two translation units share: firmware_ref/speech.py's
 * constants, the scalar rounding helper (the contract's one rule, bpg_rounding_shift) and the per-frame
 * operations of bpgan_speech_frame.c that the pipeline of bpgan_speech.c runs. */
#ifndef BPGAN_SPEECH_INTERNAL_H
#define BPGAN_SPEECH_INTERNAL_H

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
#define SIG_BLOCKS 6u
#define OUT_BLOCKS 3u

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

void bpg_speech_frame_magnitude(const int8_t *codes, uint32_t pitch, uint32_t nnls_iters, int32_t *mag,
                                uint8_t *scratch);
void bpg_speech_start_phase(const int32_t *mag, uint32_t t, int32_t *fre, int32_t *fim);
void bpg_speech_analyse_frame(const int32_t *ring, uint32_t t, int32_t *fre, int32_t *fim);
void bpg_speech_phase_update(int32_t *fre, int32_t *fim, const int32_t *mag, int32_t *prev, int momentum, int keep);
void bpg_speech_synthesise_frame(int32_t *fre, int32_t *fim, int32_t *synth);
void bpg_speech_flush_frame(int32_t *ring, uint32_t depth, uint32_t u, const int32_t *synth);
void bpg_speech_finish_block(int32_t *acc, const int32_t *q0, uint32_t b, uint32_t frames);

#endif
