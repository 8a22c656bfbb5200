/* bpgan_speech.h: the integer speech back end, int8 mel (64, T) -> int16 PCM at 8 kHz, a C99 port of
 * firmware_ref/speech.py mel_to_pcm16 that equals it bit for bit (table, Q12 mel inverse, NNLS
 * refinement, hashed start phase, fast Griffin-Lim with a fixed-point radix-2 FFT and CORDIC, ISTFT).
 * Integers only, no heap, no recursion, stack about 300 bytes (Cortex-M4, -O2).
 *
 * Streamed: the Griffin-Lim rounds run as a wavefront (bpgan_speech.c), so the state does not grow
 * with the clip. Feed mel frames one at a time; each call hands out the PCM samples that became final.
 *
 * State (one work buffer, 8-byte aligned): BPG_SPEECH_STREAM_BYTES(iters) = 6180 iters + 2324 bytes,
 * rounded up to 8 (export/c99/speech_tables.py speech_stream_bytes; iters 0 counts as 1):
 *   per round   a signal ring of 6 blocks of 64 int32 (1536), 3 frames of target magnitude 129 x int32
 *               (1548), 3 frames of the rebuilt spectrum 2 x 129 x int32 for the momentum (3096);
 *   fixed       32 of counters, scratch 3072 (FFT re/im, one windowed frame; the NNLS vectors), the
 *               output's 3 partial blocks (768), one more magnitude frame (516), less 2 spectrum
 *               frames (the first round keeps none for a previous one, the last none for a next).
 *   iters 32: 200,088 bytes; iters 4: 27,048; iters 1: 8,504.
 * Latency: feeding mel frame f makes the output block of frame f - 3 iters - 2 final, i.e. the
 *   samples of frame t's hop (PCM 64 t .. 64 t + 63) come out of the feed of frame t + 3 iters + 2:
 *   3 iters + 2 frames, 64 (3 iters + 2) samples of look-ahead (iters 32: 98 frames, 6272 samples,
 *   0.784 s at 125 frames/s); the last 3 iters + 2 frames' worth come out of bpg_speech_finish.
 * Cost: per mel frame one magnitude (the inverse and nnls_iters NNLS updates), iters + 1 inverse and
 *   iters forward 256-point FFTs, iters x 129 CORDICs: the whole-clip loop's work (no recomputation).
 * The tables (bpgan_speech_tables.c) are generated from firmware_ref.speech by speech_tables.py. */
#ifndef BPGAN_SPEECH_H
#define BPGAN_SPEECH_H

#include <stdint.h>

#define BPG_SPEECH_MAX_CHUNK 64u   /* samples one feed / finish call writes at most */
#define BPG_SPEECH_STATE_BYTES 32u /* the counters at the start of the work */
/* work bytes for `iters` Griffin-Lim rounds (a constant expression for a constant argument) */
#define BPG_SPEECH_STREAM_BYTES(iters) \
    ((6180u * ((iters) > 0 ? (iters) : 1u) + 2324u + 7u) / 8u * 8u)

/* = BPG_SPEECH_STREAM_BYTES(iters): state + work, independent of the duration */
uint64_t bpg_speech_stream_bytes(uint32_t iters);

/* Begin a clip of `frames` mel frames and `num_samples` output samples (frames x 64 - 1 are computed;
   fewer: cropped, more: zero padded) with `iters` Griffin-Lim rounds (0 is treated as 1 like Python's
   max(iters, 1)) and `nnls_iters` NNLS updates. work: bpg_speech_stream_bytes(iters) bytes, 8-byte
   aligned; it holds the whole state (no pointers into it are kept elsewhere). Needs
   frames + 3 iters + 2 < 2**32 and iters <= 65536. */
void bpg_speech_begin(void *work, uint32_t frames, uint32_t num_samples, uint32_t iters, uint32_t nnls_iters);
/* Feed mel frame t, the next one (t = 0, 1, ..., frames - 1): 64 int8 codes, band b at mel[b * pitch]
   (read during the call only). Writes the PCM samples that became final, in order, to pcm (room for
   BPG_SPEECH_MAX_CHUNK), returns how many (0 during the first 3 iters + 2 frames). A feed after the
   last frame does nothing and returns 0. */
uint32_t bpg_speech_feed(void *work, const int8_t *mel, uint32_t pitch, int16_t *pcm);
/* After the last frame: the remaining samples, padded with zeros to num_samples; call repeatedly
   (pcm: room for BPG_SPEECH_MAX_CHUNK) until it returns 0. Returns 0 before the last frame is fed. */
uint32_t bpg_speech_finish(void *work, int16_t *pcm);

/* The whole clip at once, a wrapper over the above: mel (64, frames) int8 row-major with row pitch
   `mel_pitch` (>= frames); pcm: num_samples int16; work: bpg_speech_stream_bytes(iters) bytes, 8-byte
   aligned (the stream state: nothing grows with frames). */
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
