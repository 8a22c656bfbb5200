/* bpgan_decode IN.bpg OUT: the decoder's command line. OUT is a binary PPM (P6; P5 for a one-channel
 * model) for image streams, a 16-bit mono PCM WAV (8 kHz) for speech streams, written as decoded.
 * A refused stream or an I/O failure is one line on stderr and exit status 1 (2: usage). Built with
 * BPG_IN_PATH and BPG_OUT_PATH defined (bare metal, no command line) it decodes those two files. */
#include <stdio.h>

#include "bpgan_decoder.h"

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "bpgan_decode: error: %s%s\n", what, detail);
    return 1;
}

static size_t read_stream(FILE *f, int *too_big)
{
    const size_t cap = bpg_max_stream_bytes() + 1;
    size_t n = 0, got;
    while (n < cap && (got = fread(bpg_stream_buffer + n, 1, cap - n, f)) > 0) n += got;
    *too_big = n == cap;
    return n;
}

/* Buffered writes of one byte at a time (no heap, no per-byte stdio call). */
static unsigned char out_buf[4096];
static size_t out_len;
static int out_ok = 1, header_written;

static void put(FILE *f, unsigned char b)
{
    out_buf[out_len++] = b;
    if (out_len == sizeof out_buf) {
        out_ok &= fwrite(out_buf, 1, out_len, f) == out_len;
        out_len = 0;
    }
}

static void put_le(FILE *f, uint32_t v, int bytes)
{
    int i;
    for (i = 0; i < bytes; i++) put(f, (unsigned char)(v >> (8 * i)));
}

static void put_text(FILE *f, const char *s)
{
    while (*s) put(f, (unsigned char)*s++);
}

/* The sink: the file's header before the first piece (PPM, or the 44-byte PCM WAV soundfile writes). */
static int write_piece(void *ctx, const bpg_info *info, const uint8_t *bytes, size_t n)
{
    FILE *f = (FILE *)ctx;
    size_t i;
    if (!header_written) {
        header_written = 1;
        if (info->modality == BPG_MODALITY_IMAGE) {
            char head[48];
            sprintf(head, "P%d\n%lu %lu\n255\n", info->channels == 1 ? 5 : 6, (unsigned long)info->cols,
                    (unsigned long)info->rows);
            put_text(f, head);
        } else {
            const uint32_t data = 2u * info->cols;
            put_text(f, "RIFF");
            put_le(f, 36u + data, 4);
            put_text(f, "WAVEfmt ");
            put_le(f, 16u, 4);                     /* fmt chunk: PCM, mono, 16-bit */
            put_le(f, 1u, 2);
            put_le(f, 1u, 2);
            put_le(f, info->sample_rate, 4);
            put_le(f, 2u * info->sample_rate, 4);  /* bytes per second */
            put_le(f, 2u, 2);                      /* bytes per frame */
            put_le(f, 16u, 2);
            put_text(f, "data");
            put_le(f, data, 4);
        }
    }
    for (i = 0; i < n; i++) put(f, bytes[i]);
    return !out_ok;
}

static int decode_file(const char *in_path, const char *out_path)
{
    char err[BPG_ERR_LEN];
    int too_big, failed;
    size_t n;
    FILE *f = fopen(in_path, "rb");
    if (!f) return fail("cannot read ", in_path);
    n = read_stream(f, &too_big);
    failed = ferror(f);
    fclose(f);
    if (failed) return fail("cannot read ", in_path);
    if (too_big) {
        char limit[96];
        sprintf(limit, "%lu bytes (the largest stream this build accepts)", (unsigned long)bpg_max_stream_bytes());
        return fail("stream is larger than ", limit);
    }
    f = fopen(out_path, "wb");
    if (!f) return fail("cannot write ", out_path);
    failed = bpg_decode(bpg_stream_buffer, n, write_piece, f, err);
    if (!failed) out_ok &= fwrite(out_buf, 1, out_len, f) == out_len;
    if (fclose(f) != 0) out_ok = 0;
    if (failed || !out_ok) {   /* a refused stream or a failed write leaves no file behind */
        remove(out_path);
        return out_ok ? fail(err, "") : fail("cannot write ", out_path);
    }
    return 0;
}

#if defined(BPG_IN_PATH) && defined(BPG_OUT_PATH)
int main(void)
{
    return decode_file(BPG_IN_PATH, BPG_OUT_PATH);
}
#else
int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bpgan_decode IN.bpg OUT (.ppm for images, .wav for speech)\n");
        return 2;
    }
    return decode_file(argv[1], argv[2]);
}
#endif
