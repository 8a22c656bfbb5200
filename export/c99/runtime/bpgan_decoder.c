/* bpgan_decoder.c: the decode path of firmware_ref/bitstream_decode.py in C: unpack the .bpg (every
 * check of firmware_ref/bitstream.py, in its order, both CRC32s), the size limits, the memory plan,
 * the ANS decoder under the work rules, the symbol table, every op, the crop. A refused stream is one
 * line in err and a non-zero return; nothing is read or written outside the stream and the arena. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bpgan_internal.h"
#include "bpgan_speech.h"

/* firmware_ref/bitstream.py: the fixed part (magic .. C), per dim 8 bytes, the tail (length, 2 CRCs). */
#define BPG_FIXED 28u
#define BPG_DIM 8u
#define BPG_TAIL 12u
#define BPG_HASH_BYTES 16u

int bpg_error(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, BPG_ERR_LEN, fmt, ap);
    va_end(ap);
    return 1;
}

/* zlib's CRC-32 (reflected polynomial 0xEDB88320), four bits at a time from a 16-entry table. */
static uint32_t crc32(const uint8_t *p, size_t n)
{
    static const uint32_t table[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
        0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu, 0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
    };
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ table[crc & 15u];
        crc = (crc >> 4) ^ table[crc & 15u];
    }
    return crc ^ 0xFFFFFFFFu;
}

#define BPG_SAMPLE_RATE 8000u   /* firmware_ref/speech.py SAMPLE_RATE */

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

typedef struct {
    int version, modality;
    uint32_t ndim, stride, channels, payload_len;
    uint32_t orig[2], pad[2], lat[2];
    int colour;              /* flag bit 0: colour offsets follow the dim records */
    int32_t offset[3];       /* the colour offsets (R, G, B output LSBs), else 0 */
    const uint8_t *payload;
} bpg_header;

static void hex(char *out, const uint8_t *h)
{
    static const char digits[] = "0123456789abcdef";
    uint32_t i;
    for (i = 0; i < BPG_HASH_BYTES; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15u];
    }
    out[2 * BPG_HASH_BYTES] = 0;
}

/* bitstream.unpack + Header.check: bytes -> header and payload, or the first thing wrong. */
static int unpack(const bpg_model *m, const uint8_t *d, size_t len, bpg_header *h, char *err)
{
    uint32_t code, flags, head_len, i, payload_crc;
    uint64_t symbols;
    size_t available;
    if (len < 4 || memcmp(d, "BPGC", 4) != 0)
        return bpg_error(err, len >= 4 ? "not a bpgan bitstream (wrong magic)" : "truncated bitstream");
    if (len < BPG_FIXED) return bpg_error(err, "truncated bitstream (header incomplete)");
    h->version = d[4];
    code = d[5];
    h->ndim = d[6];
    flags = d[7];
    h->stride = le16(d + 24);
    h->channels = le16(d + 26);
    if (h->version != 1 && h->version != 2)
        return bpg_error(err, "unsupported bitstream version %d (this decoder reads versions 1, 2)", h->version);
    if (h->ndim != 1 && h->ndim != 2)
        return bpg_error(err, "corrupt header (bad dimension count %lu)", (unsigned long)h->ndim);
    head_len = BPG_FIXED + BPG_DIM * h->ndim + ((flags & 1u) && code == BPG_MODALITY_IMAGE ? 4u : 0u) + BPG_TAIL;
    if (len < head_len) return bpg_error(err, "truncated bitstream (header incomplete)");
    h->payload_len = le32(d + head_len - 12);
    payload_crc = le32(d + head_len - 8);
    if (crc32(d, head_len - 4) != le32(d + head_len - 4)) return bpg_error(err, "corrupt header (CRC mismatch)");
    if ((flags & ~1u) || ((flags & 1u) && code != BPG_MODALITY_IMAGE))
        return bpg_error(err, "corrupt header (unknown flags 0x%02x)", (unsigned)flags);
    h->colour = (flags & 1u) != 0;
    for (i = 0; i < 3; i++)   /* bitstream.py: int8 R, G, B after the dim records, then a 0 byte */
        h->offset[i] = (flags & 1u) ? (int32_t)(int8_t)d[BPG_FIXED + BPG_DIM * h->ndim + i] : 0;
    if ((flags & 1u) && (d[BPG_FIXED + BPG_DIM * h->ndim + 3] != 0 || h->offset[0] < -127 || h->offset[1] < -127 ||
                         h->offset[2] < -127))
        return bpg_error(err, "corrupt header (colour offsets are three values in [-127, 127], images only)");
    if (code != BPG_MODALITY_IMAGE && code != BPG_MODALITY_AUDIO)
        return bpg_error(err, "unknown modality code %lu", (unsigned long)code);
    h->modality = (int)code;
    for (i = 0; i < h->ndim; i++) {
        const uint8_t *p = d + BPG_FIXED + BPG_DIM * i;
        h->orig[i] = le32(p);
        h->pad[i] = le16(p + 4);
        h->lat[i] = le16(p + 6);
    }
    if (h->ndim != (code == BPG_MODALITY_IMAGE ? 2u : 1u))
        return bpg_error(err, "corrupt header (%s needs %d spatial dims)",
                         code == BPG_MODALITY_IMAGE ? "image" : "audio", code == BPG_MODALITY_IMAGE ? 2 : 1);
    if (h->stride < 1 || h->channels < 1)
        return bpg_error(err, "corrupt header (stride or channel count out of range)");
    symbols = h->channels;
    for (i = 0; i < h->ndim; i++) {
        if (h->orig[i] < 1 || h->pad[i] >= h->stride ||
            (uint64_t)h->orig[i] + h->pad[i] != (uint64_t)h->lat[i] * h->stride)
            return bpg_error(err, "corrupt header (size %lu + padding %lu is not latent size %lu x stride %lu)",
                             (unsigned long)h->orig[i], (unsigned long)h->pad[i], (unsigned long)h->lat[i],
                             (unsigned long)h->stride);
        symbols *= h->lat[i];
    }
    if (symbols > m->max_symbols)
        return bpg_error(err, "corrupt header (latent exceeds %lu symbols)", (unsigned long)m->max_symbols);
    if (memcmp(d + 8, m->model_hash, BPG_HASH_BYTES) != 0) {
        char got[2 * BPG_HASH_BYTES + 1], want[2 * BPG_HASH_BYTES + 1];
        hex(got, d + 8);
        hex(want, m->model_hash);
        return bpg_error(err, "bitstream was made for model %s, not this model %s", got, want);
    }
    available = len - head_len;
    if (available < h->payload_len)
        return bpg_error(err, "truncated bitstream (payload %lu of %lu bytes)", (unsigned long)available,
                         (unsigned long)h->payload_len);
    if (available > h->payload_len)
        return bpg_error(err, "%lu bytes of trailing garbage after the payload",
                         (unsigned long)(available - h->payload_len));
    h->payload = d + head_len;
    if (crc32(h->payload, h->payload_len) != payload_crc) return bpg_error(err, "corrupt payload (CRC mismatch)");
    return 0;
}

/* bitstream.output_size: the generator's output size for this header, within this build's limits. */
static int output_size(const bpg_model *m, const bpg_header *h, bpg_shape *size, char *err)
{
    if (h->modality == BPG_MODALITY_IMAGE) {
        if (m->downsample && h->stride != m->downsample)
            return bpg_error(err, "bitstream stride %lu differs from the model's %lu", (unsigned long)h->stride,
                             (unsigned long)m->downsample);
        size->h = h->lat[0] * h->stride;
        size->w = h->lat[1] * h->stride;
        if ((uint64_t)size->h * size->w > m->max_pixels)
            return bpg_error(err, "image of %lux%lu pixels exceeds the decoder limit of %lu pixels",
                             (unsigned long)size->w, (unsigned long)size->h, (unsigned long)m->max_pixels);
        if (size->w > m->max_width)
            return bpg_error(err, "image width %lu exceeds this decoder's limit of %lu (its rings grow with the width)",
                             (unsigned long)size->w, (unsigned long)m->max_width);
        return 0;
    }
    if (m->downsample && (uint64_t)h->stride != (uint64_t)m->downsample * m->audio_hop)
        return bpg_error(err, "bitstream stride %lu samples differs from the model's %lu", (unsigned long)h->stride,
                         (unsigned long)(m->downsample * m->audio_hop));
    if (h->stride % m->audio_hop)
        return bpg_error(err, "bitstream stride %lu is not a whole number of %lu-sample frames",
                         (unsigned long)h->stride, (unsigned long)m->audio_hop);
    size->h = h->lat[0] * (h->stride / m->audio_hop);   /* mel frames: time is the row axis */
    size->w = 1;
    if (size->h > m->max_frames)
        return bpg_error(err, "%lu mel frames exceed the decoder limit %lu", (unsigned long)size->h,
                         (unsigned long)m->max_frames);
    return 0;
}

/* PCM16 samples to little-endian bytes in place (sample i keeps bytes 2i, 2i + 1), then to the sink. */
static int hand_on(bpg_sink sink, void *ctx, const bpg_info *info, int16_t *pcm, uint32_t n, char *err)
{
    uint8_t *bytes = (uint8_t *)pcm;
    uint32_t i;
    for (i = 0; i < n; i++) {
        const uint16_t v = (uint16_t)pcm[i];
        bytes[2u * i] = (uint8_t)(v & 0xFFu);
        bytes[2u * i + 1u] = (uint8_t)(v >> 8);
    }
    return n && sink(ctx, info, bytes, 2u * (size_t)n) ? bpg_error(err, "output refused by the caller") : 0;
}

/* Mel frame by mel frame: pull generator row r (its 64 bands), feed it to the streamed integer back end,
 * hand on the samples that became final; then the rest. Memory does not grow with the duration. */
static int decode_audio(const bpg_model *m, const bpg_header *h, const bpg_layout *at, bpg_sink sink, void *ctx,
                        bpg_info *info, char *err)
{
    const uint32_t frames = (h->orig[0] + m->audio_hop - 1) / m->audio_hop, bands = m->tensors[m->output].channels;
    uint8_t *speech = m->arena + at->side_at;
    int8_t *mel = (int8_t *)(void *)(speech + bpg_round_up(bpg_speech_stream_bytes(m->gl_iters)));
    int16_t *pcm = (int16_t *)(void *)((uint8_t *)mel + bpg_round_up(bands));
    const bpg_view y = bpg_view_of(m, m->output);
    uint32_t r, c, n;
    bpg_speech_begin(speech, frames, h->orig[0], m->gl_iters, m->nnls_iters);
    for (r = 0; r < frames; r++) {
        bpg_stream_pull(m, r + 1, 1, (int32_t *)(void *)(m->arena + at->row_at));
        for (c = 0; c < bands; c++) mel[c] = (int8_t)bpg_load(bpg_row(&y, c, r), y.dtype, 0);
        bpg_stream_drop_output(m, r + 1);
        if (hand_on(sink, ctx, info, pcm, bpg_speech_feed(speech, mel, 1, pcm), err)) return 1;
    }
    while ((n = bpg_speech_finish(speech, pcm)) > 0)
        if (hand_on(sink, ctx, info, pcm, n, err)) return 1;
    return 0;
}

/* Row by row: pull output row r, convert the cropped row to pixels (image.to_pixels), hand it on. */
static int decode_image(const bpg_model *m, const bpg_header *h, const bpg_layout *at, bpg_sink sink, void *ctx,
                        bpg_info *info, char *err)
{
    uint8_t *px = m->arena + at->side_at;
    const bpg_view y = bpg_view_of(m, m->output);
    uint32_t r, q, c;
    if (h->colour && y.c != 3)
        return bpg_error(err, "colour offsets need a (1, 3, H, W) image output, the model gives %lu channels",
                         (unsigned long)y.c);
    for (r = 0; r < h->orig[0]; r++) {
        bpg_stream_pull(m, r + 1, 1, (int32_t *)(void *)(m->arena + at->row_at));
        for (c = 0; c < y.c; c++) {   /* bitstream.offset_output: + the colour offset, clipped to int8 */
            const void *row = bpg_row(&y, c, r);
            const int32_t off = h->offset[c < 3 ? c : 0];
            for (q = 0; q < h->orig[1]; q++)
                px[(uint64_t)q * y.c + c] = bpg_pixel((int32_t)bpg_clamp(bpg_load(row, y.dtype, q) + off, -128, 127));
        }
        bpg_stream_drop_output(m, r + 1);
        if (sink(ctx, info, px, (size_t)h->orig[1] * y.c)) return bpg_error(err, "output refused by the caller");
    }
    return 0;
}

int bpg_decode(const uint8_t *stream, size_t len, bpg_sink sink, void *ctx, char err[BPG_ERR_LEN])
{
    const bpg_model *m = &bpg_model_data;
    bpg_header h;
    bpg_shape size = {0, 0}, latent;
    bpg_layout at;
    bpg_info info;
    uint8_t *symbols;
    uint64_t i, count, side;
    const int image = m->spatial_dims == 2;
    memset(&h, 0, sizeof h);
    if (unpack(m, stream, len, &h, err)) return 1;
    if (h.channels != m->latent_channels)
        return bpg_error(err, "bitstream has %lu latent channels, the model %lu", (unsigned long)h.channels,
                         (unsigned long)m->latent_channels);
    if (m->contexts && h.modality != BPG_MODALITY_IMAGE)
        return bpg_error(err, "a context prior codes (C, h, w) image latents, not audio");
    if (output_size(m, &h, &size, err)) return 1;   /* size limits before any decoding work */
    if ((int)h.ndim != m->spatial_dims)
        return bpg_error(err, "this decoder's program decodes %s streams", image ? "image" : "audio");
    latent.h = h.lat[0];   /* 1-D: time is the row axis */
    latent.w = image ? h.lat[1] : 1;
    side = image ? (uint64_t)h.orig[1] * m->tensors[m->output].channels   /* one row of pixels */
                 /* the streamed back end's state, one mel frame, one chunk of PCM (plan.speech_side_bytes) */
                 : bpg_round_up(bpg_speech_stream_bytes(m->gl_iters)) + bpg_round_up(m->tensors[m->output].channels)
                   + 2u * BPG_SPEECH_MAX_CHUNK;
    if (bpg_plan(m, latent, image ? h.orig[0] : size.h, side, &at, err)) return 1;
    if (m->shapes[m->output].h != size.h || m->shapes[m->output].w != size.w)
        return bpg_error(err, "decoder produces %lux%lu, the header implies %lux%lu", (unsigned long)m->shapes[m->output].h,
                         (unsigned long)m->shapes[m->output].w, (unsigned long)size.h, (unsigned long)size.w);
    symbols = m->arena + m->rings[m->input].offset;
    count = (uint64_t)h.channels * latent.h * latent.w;
    if (bpg_ans_decode(m, h.payload, h.payload_len, h.version >= 2, h.channels, (uint64_t)latent.h * latent.w,
                       latent.w, symbols, err))
        return 1;
    for (i = 0; i < count; i++)   /* decoder.symbols_to_latent, in place: symbol j -> table[j] (int8) */
        ((int8_t *)symbols)[i] = m->symbol_table[symbols[i]];
    info.modality = h.modality;
    info.channels = image ? m->tensors[m->output].channels : 1;
    info.rows = image ? h.orig[0] : 1;
    info.cols = image ? h.orig[1] : h.orig[0];
    info.sample_rate = image ? 0 : BPG_SAMPLE_RATE;
    bpg_stream_reset(m);
    return image ? decode_image(m, &h, &at, sink, ctx, &info, err) : decode_audio(m, &h, &at, sink, ctx, &info, err);
}

uint8_t bpg_pixel(int32_t y)
{
    const bpg_model *m = &bpg_model_data;
    return (uint8_t)bpg_clamp(bpg_rounding_shift(((int64_t)y + m->pixel_one) * 255, &m->pixel_shift), 0, 255);
}

size_t bpg_max_stream_bytes(void) { return bpg_model_data.max_stream_bytes; }
size_t bpg_arena_bytes(void) { return (size_t)bpg_model_data.arena_bytes; }
