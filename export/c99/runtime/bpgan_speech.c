/* bpgan_speech.c: firmware_ref/speech.py mel_to_pcm16 in C99, bit for bit, streamed (see bpgan_speech.h):
 * the state and the pipeline; the per-frame operations are in bpgan_speech_frame.c.
 * Units as there: a time sample is PCM16 x 2**4 (int32), a bin is an unnormalised DFT in the same
 * units, Qn means value x 2**n. Every shift is the contract's rounding rule (bpg_rounding_shift);
 * every division is of non-negative integers (C's truncation is then NumPy's floor division).
 *
 * The wavefront. Signal x_0 is the ISTFT of the start spectrum, x_{j+1} that of round j's spectrum
 * (j < iters); the padded signals have blocks 0 .. T+2 of 64 samples, frame t covers blocks t .. t+3.
 * Stage 0 makes start frame t (magnitude, hashed phase) and stage j >= 1 makes round j-1's frame t
 * (STFT of x_{j-1} blocks t .. t+3, momentum, CORDIC), both then synthesise it into x_j; block b of
 * x_j is complete once its frames b-3 .. b are in. Step s (one per mel frame fed, then 3 iters + 2
 * more in finish) runs stage j on frame u = s - 3j for j = 0 .. iters in that order: stage j finds
 * x_{j-1} blocks u .. u+3 complete (stage j-1 completed block u+3 earlier in the same step), and
 * output block b (= x_iters block b) is final at step b + 3 iters. Every value is the same integer
 * the whole-clip loop computes (the sums have the same terms; only the order of the frames changes),
 * so the PCM equals mel_to_pcm16's bit for bit, edges included (the envelope and kept range depend on
 * T, given to bpg_speech_begin).
 *
 * What is live, and so the rings (by frame or block index modulo the depth):
 *   x_j, j < iters  6 blocks: u-3 .. u complete (stage j+1 reads them), u+1, u+2 partial; frame u's
 *                   quarters 1 .. 3 wait in `synth` until stage j+1 has read block u-3 (then u+3 takes
 *                   its slot), so one synth buffer serves every stage;
 *   output          3 partial blocks (a complete one goes straight to the PCM);
 *   magnitude       frames s-3 iters .. s: 3 iters + 1;
 *   momentum        round j-1's rebuilt spectrum of frame t, from round 0 (step t+3) to the last round
 *                   (step t+3 iters), each round overwriting it in place: frames s-3 iters .. s-3,
 *                   3 iters - 2 (at least 1). */
#include "bpgan_speech_internal.h"

/* The state, at the start of the work buffer; then (int32) scratch fre, fim, synth (3 x 256), the
 * output ring (3 x 64), the magnitude ring, the momentum ring, the signal rings: the layout of
 * BPG_SPEECH_STREAM_BYTES (speech_tables.py speech_stream_bytes is the same formula). */
typedef struct {
    uint32_t frames, num_samples, iters, nnls_iters;
    uint32_t fed;       /* mel frames fed */
    uint32_t step;      /* the next step */
    uint32_t steps;     /* T + 2 + 3 iters (0 when T = 0): the last output block T+1 is final at step T+1+3 iters */
    uint32_t emitted;   /* PCM samples handed out */
} stream_state;

typedef char bpg_speech_state_is_32_bytes[sizeof(stream_state) == BPG_SPEECH_STATE_BYTES ? 1 : -1];

typedef struct {
    stream_state *st;
    int32_t *fre, *fim;  /* 256 each: one frame's spectrum / samples (scratch) */
    int32_t *synth;      /* 256: a frame's windowed IFFT (|.| <= 2**26), quarters 1 .. 3 waiting */
    int32_t *out;        /* OUT_BLOCKS x 64: the output's partial blocks (<= 4 x 2**26 = 2**28) */
    int32_t *mag;        /* (3 iters + 1, 129): target magnitudes, [0, 2**26] */
    int32_t *mom;        /* (3 iters - 2, 2, 129): a rebuilt re, im (|.| <= 2**27) */
    int32_t *sig;        /* (iters, SIG_BLOCKS, 64): x_0 .. x_{iters-1}, complete |.| <= 2**19, partial <= 2**28 */
    uint32_t mag_depth, mom_depth;
} stream_view;

uint64_t bpg_speech_stream_bytes(uint32_t iters)
{
    return BPG_SPEECH_STREAM_BYTES((uint64_t)iters);
}

static stream_view view_of(void *work)
{
    stream_view v;
    uint32_t iters;
    v.st = (stream_state *)work;
    iters = v.st->iters;
    v.fre = (int32_t *)(void *)((uint8_t *)work + BPG_SPEECH_STATE_BYTES);
    v.fim = v.fre + N_FFT;
    v.synth = v.fim + N_FFT;
    v.out = v.synth + N_FFT;
    v.mag_depth = 3u * iters + 1u;
    v.mom_depth = 3u * iters - 2u;
    v.mag = v.out + OUT_BLOCKS * HOP;
    v.mom = v.mag + v.mag_depth * N_BINS;
    v.sig = v.mom + v.mom_depth * 2u * N_BINS;
    return v;
}

/* ---- the pipeline ------------------------------------------------------------------------------ */

/* Step s = st->step (see the top of the file); mel: frame s where s < T. -> the PCM samples of output
 * block s - 3 iters that lie in [0, num_samples), written to pcm (at most 64). */
static uint32_t run_step(const stream_view *v, const int8_t *mel, uint32_t pitch, int16_t *pcm)
{
    stream_state *st = v->st;
    const uint32_t s = st->step, frames = st->frames, iters = st->iters;
    uint32_t j, produced = 0;
    int pending = 0;                       /* synth holds frame s - 3(j-1)'s quarters 1 .. 3 for x_{j-1} */
    for (j = 0; j <= iters; j++) {
        int32_t *x_in = j ? v->sig + (j - 1u) * SIG_BLOCKS * HOP : 0;
        const int here = s >= 3u * j;
        const uint32_t u = here ? s - 3u * j : 0;
        int synthesised = 0;
        if (j > 0 && here && u < frames)   /* round j-1 reads x_{j-1} blocks u .. u+3 */
            bpg_speech_analyse_frame(x_in, u, v->fre, v->fim);
        if (pending)                       /* block u-3 has been read: frame u+3's quarters go in */
            bpg_speech_flush_frame(x_in, SIG_BLOCKS, s - 3u * (j - 1u), v->synth);
        pending = 0;
        if (!here)
            break;
        if (u > frames + 2u)               /* past the clip's blocks: deeper stages may still have work */
            continue;
        if (u < frames) {
            int32_t *mag = v->mag + (u % v->mag_depth) * N_BINS;
            if (j == 0) {
                bpg_speech_frame_magnitude(mel, pitch, st->nnls_iters, mag, (uint8_t *)(void *)v->fre);
                bpg_speech_start_phase(mag, u, v->fre, v->fim);
            } else {
                bpg_speech_phase_update(v->fre, v->fim, mag, v->mom + (u % v->mom_depth) * 2u * N_BINS, j > 1, j < iters);
            }
            bpg_speech_synthesise_frame(v->fre, v->fim, v->synth);
            synthesised = 1;
        }
        if (j < iters) {                   /* x_j block u is complete */
            bpg_speech_finish_block(v->sig + j * SIG_BLOCKS * HOP + (u % SIG_BLOCKS) * HOP, synthesised ? v->synth : 0, u,
                         frames);
            pending = synthesised;
        } else {                           /* the output: block u is final; rounding_shift 4, clip to int16 */
            int32_t *acc = v->out + (u % OUT_BLOCKS) * HOP;
            bpg_speech_finish_block(acc, synthesised ? v->synth : 0, u, frames);
            if (u >= 2u && u <= frames + 1u) {
                const uint32_t first = (u - 2u) * HOP, kept = u == frames + 1u ? HOP - 1u : HOP;
                uint32_t r;
                for (r = 0; r < kept && first + r < st->num_samples; r++)
                    pcm[produced++] = (int16_t)bpg_clamp(rs(acc[r], GUARD_BITS), -32768, 32767);
            }
            if (synthesised)
                bpg_speech_flush_frame(v->out, OUT_BLOCKS, u, v->synth);
        }
    }
    st->emitted += produced;
    return produced;
}

void bpg_speech_begin(void *work, uint32_t frames, uint32_t num_samples, uint32_t iters, uint32_t nnls_iters)
{
    stream_state *st = (stream_state *)work;
    stream_view v;
    uint32_t i, count;
    if (iters == 0)
        iters = 1;                         /* Python's max(iters, 1) */
    st->frames = frames;
    st->num_samples = num_samples;
    st->iters = iters;
    st->nnls_iters = nnls_iters;
    st->fed = st->step = st->emitted = 0;
    st->steps = frames ? frames + 2u + 3u * iters : 0;
    v = view_of(work);
    /* blocks 0 .. 2 of each ring start from 0 (every later block is set by frame b-3's quarter 3) */
    for (i = 0; i < OUT_BLOCKS * HOP; i++)
        v.out[i] = 0;
    count = iters * SIG_BLOCKS * HOP;
    for (i = 0; i < count; i++)
        v.sig[i] = 0;
}

uint32_t bpg_speech_feed(void *work, const int8_t *mel, uint32_t pitch, int16_t *pcm)
{
    stream_view v = view_of(work);
    uint32_t produced = 0;
    if (v.st->fed >= v.st->frames)
        return 0;
    v.st->fed++;
    if (v.st->emitted < v.st->num_samples)     /* else nothing that follows is handed out: skip the work */
        produced = run_step(&v, mel, pitch, pcm);
    v.st->step++;
    return produced;
}

uint32_t bpg_speech_finish(void *work, int16_t *pcm)
{
    stream_view v = view_of(work);
    stream_state *st = v.st;
    uint32_t n, i;
    if (st->fed < st->frames)
        return 0;
    while (st->emitted < st->num_samples && st->step < st->steps) {
        n = run_step(&v, 0, 0, pcm);
        st->step++;
        if (n)
            return n;
    }
    n = st->num_samples - st->emitted;         /* past the kept samples: zeros */
    n = n < BPG_SPEECH_MAX_CHUNK ? n : BPG_SPEECH_MAX_CHUNK;
    for (i = 0; i < n; i++)
        pcm[i] = 0;
    st->emitted += n;
    return n;
}

void bpg_speech_to_pcm16(const int8_t *mel, uint32_t mel_pitch, uint32_t frames, uint32_t num_samples,
                         uint32_t iters, uint32_t nnls_iters, int16_t *pcm, void *work)
{
    uint32_t t, done = 0, n;
    bpg_speech_begin(work, frames, num_samples, iters, nnls_iters);
    for (t = 0; t < frames; t++)
        done += bpg_speech_feed(work, mel + t, mel_pitch, pcm + done);
    do {
        n = bpg_speech_finish(work, pcm + done);
        done += n;
    } while (n);
}
