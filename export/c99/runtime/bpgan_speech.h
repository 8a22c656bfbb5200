/* bpgan_speech.h: the integer speech back end, int8 mel (64, T) -> int16 PCM at 8 kHz, a C99 port of
 * firmware_ref/speech.py mel_to_pcm16 that equals it bit for bit (table, Q12 mel inverse, NNLS
 * refinement, hashed start phase, fast Griffin-Lim with a fixed-point radix-2 FFT and CORDIC, ISTFT).
 * Integers only, no heap, no recursion; the caller passes one work buffer.
 *
 * Work: 1804 bytes per frame + 3840, rounded up to 8 (export/c99/speech_tables.py speech_work_bytes):
 *   per frame  magnitude 129 x int32 (516), previous re/im 2 x 129 x int32 (1032), signal 64 x int32 (256);
 *   fixed      the signal's 3 trailing blocks (768), scratch 3072 (FFT re/im and a 4-block overlap-add
 *              ring while iterating; the NNLS vectors before).
 * The current spectrum is never stored: each Griffin-Lim round analyses the previous signal frame by
 * frame and synthesises the new one through the ring, in place. Stack: about 300 bytes (Cortex-M4, -O2).
 * The tables (bpgan_speech_tables.c) are generated from firmware_ref.speech by speech_tables.py. */
#ifndef BPGAN_SPEECH_H
#define BPGAN_SPEECH_H

#include <stdint.h>

/* work bytes the back end needs for `frames` mel frames (int64-aligned) */
uint64_t bpg_speech_work_bytes(uint32_t frames);
/* mel: (64, frames) int8 row-major with row pitch `mel_pitch` (>= frames); pcm: num_samples int16.
   iters >= 1 Griffin-Lim rounds (0 is treated as 1 like Python's max(iters, 1)); work: bpg_speech_work_bytes(frames) bytes, 8-byte aligned. */
void bpg_speech_to_pcm16(const int8_t *mel, uint32_t mel_pitch, uint32_t frames, uint32_t num_samples,
                         uint32_t iters, uint32_t nnls_iters, int16_t *pcm, void *work);

/* A non-negative matrix by rows: row r holds values[offset[r] .. offset[r + 1]) at columns first[r] ... */
typedef struct { const uint8_t *first; const uint16_t *offset; const int16_t *values; } bpg_speech_sparse;

extern const int16_t bpg_speech_cos_q14[256];       /* cos, sin 2 pi n / 256 in Q14 (speech.twiddles_q14) */
extern const int16_t bpg_speech_sin_q14[256];
extern const int16_t bpg_speech_hann_q14[256];      /* periodic Hann in Q14 */
extern const uint8_t bpg_speech_bit_reversal[256];
extern const int32_t bpg_speech_magnitude[256];     /* code + 128 -> mel magnitude, sample units */
extern const int32_t bpg_speech_inv_env_q16[3][2][64];  /* [lo][hi - 2]: Q16 1/overlap of quarters lo..hi */
extern const bpg_speech_sparse bpg_speech_mel_inverse_q12;  /* (129, 64) */
extern const bpg_speech_sparse bpg_speech_mel_basis_q20;    /* (64, 129) */
extern const bpg_speech_sparse bpg_speech_mel_basis_t_q20;  /* (129, 64), its transpose */

#endif
