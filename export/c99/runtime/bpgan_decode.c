/* bpgan_decode IN.bpg OUT: the decoder's command line. OUT is a binary PPM (P6; P5 for a one-channel
 * model) for image streams, and the cropped int8 mel, (bands, frames) row-major, for audio streams.
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
static int out_ok = 1;

static void put(FILE *f, unsigned char b)
{
    out_buf[out_len++] = b;
    if (out_len == sizeof out_buf) {
        out_ok &= fwrite(out_buf, 1, out_len, f) == out_len;
        out_len = 0;
    }
}

static int write_output(const bpg_output *o, FILE *f)
{
    uint32_t c, r, q;
    if (o->modality == BPG_MODALITY_IMAGE) {
        fprintf(f, "P%d\n%lu %lu\n255\n", o->channels == 1 ? 5 : 6, (unsigned long)o->cols, (unsigned long)o->rows);
        for (r = 0; r < o->rows; r++)
            for (q = 0; q < o->cols; q++)
                for (c = 0; c < o->channels; c++) put(f, bpg_pixel(bpg_output_at(o, c, r, q)));
    } else {
        for (c = 0; c < o->channels; c++)
            for (q = 0; q < o->cols; q++) put(f, (unsigned char)(int8_t)bpg_output_at(o, c, 0, q));
    }
    out_ok &= fwrite(out_buf, 1, out_len, f) == out_len;
    return out_ok;
}

static int decode_file(const char *in_path, const char *out_path)
{
    char err[BPG_ERR_LEN];
    bpg_output out;
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
    if (bpg_decode(bpg_stream_buffer, n, &out, err)) return fail(err, "");
    f = fopen(out_path, "wb");
    if (!f) return fail("cannot write ", out_path);
    failed = !write_output(&out, f);
    failed |= fclose(f) != 0;
    if (failed) {
        remove(out_path);
        return fail("cannot write ", out_path);
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
        fprintf(stderr, "usage: bpgan_decode IN.bpg OUT (.ppm for images, .raw int8 mel for speech)\n");
        return 2;
    }
    return decode_file(argv[1], argv[2]);
}
#endif
