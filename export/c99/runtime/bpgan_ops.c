/* bpgan_ops.c: one C function per op kind of firmware_ref.ops.REGISTRY (TFLite-Micro reference-kernel
 * style: plain loops, the integer semantics as the first comment line, the overflow argument beside
 * the accumulator). Each kernel computes output rows [y0, y1) from the rows of its inputs they reach,
 * which the stream schedule (bpgan_stream.c) holds in the inputs' rings (bpg_row). A 1-D tensor (C, T)
 * is a 2-D one with time as rows and width 1, so the 1-D convs run the 2-D loops with kernel (k, 1),
 * stride (s, 1) and padding (l, 0, r, 0): what firmware_ref's conv1d_acc computes. Shapes were checked
 * by the plan. */
#include <string.h>

#include "bpgan_internal.h"

uint32_t bpg_dtype_bytes(int dtype)
{
    return dtype == BPG_INT16 ? 2u : (dtype == BPG_INT32 ? 4u : 1u);
}

int32_t bpg_load(const void *data, int dtype, uint64_t i)
{
    switch (dtype) {
    case BPG_INT8: return ((const int8_t *)data)[i];
    case BPG_UINT8: return ((const uint8_t *)data)[i];
    case BPG_INT16: return ((const int16_t *)data)[i];
    default: return ((const int32_t *)data)[i];
    }
}

/* v already lies in the dtype's range (every op clips to its output dtype first). */
void bpg_store(void *data, int dtype, uint64_t i, int32_t v)
{
    switch (dtype) {
    case BPG_INT8: ((int8_t *)data)[i] = (int8_t)v; break;
    case BPG_UINT8: ((uint8_t *)data)[i] = (uint8_t)v; break;
    case BPG_INT16: ((int16_t *)data)[i] = (int16_t)v; break;
    default: ((int32_t *)data)[i] = v; break;
    }
}

/* Accumulators start at the bias and add one tap product at a time. Every product w * x lies between
 * min(w * xlo, w * xhi) <= 0 and max(w * xlo, w * xhi) >= 0 (0 is in every input range), so every
 * partial sum lies in [lo[o], hi[o]] of the overflow proof (firmware_ref/bounds.py), inside int32:
 * int32 accumulators are exact. One product of an int8 weight and an int32 input can exceed int32
 * on its own, so int32 inputs multiply in int64 (the one place the semantics need it). */
#define BPG_MAC(T, XIDX)                                                                          \
    do {                                                                                          \
        const T *p = (const T *)x + start;                                                        \
        for (k = 0; k < n; k++) row[k] += w * p[XIDX];                                            \
    } while (0)

/* row[k] += w * x[start + k * step], k < n: one tap along an output row (step: the conv's stride).
 * restrict: the row buffer and the tensors are distinct arena regions. */
static void mac_gather(int32_t *restrict row, uint32_t n, int32_t w, const void *restrict x, uint64_t start,
                       uint32_t step, int dtype)
{
    uint32_t k;
    if (dtype == BPG_INT32) {
        const int32_t *p = (const int32_t *)x + start;
        for (k = 0; k < n; k++) row[k] = (int32_t)((int64_t)row[k] + (int64_t)w * p[(uint64_t)k * step]);
    } else if (step == 1) {   /* the common stride-1 case, written so compilers vectorize it */
        if (dtype == BPG_INT8) BPG_MAC(int8_t, k);
        else if (dtype == BPG_UINT8) BPG_MAC(uint8_t, k);
        else BPG_MAC(int16_t, k);
    } else {
        if (dtype == BPG_INT8) BPG_MAC(int8_t, (uint64_t)k * step);
        else if (dtype == BPG_UINT8) BPG_MAC(uint8_t, (uint64_t)k * step);
        else BPG_MAC(int16_t, (uint64_t)k * step);
    }
}

/* y = clip(rounding_shift(acc, shift[o]), lo, hi) for one output row; the accumulator of column k is
 * row[(k % phases) * pitch + k / phases] (a transposed conv's row is kept in stride phases, see below). */
static void requantize_row(const bpg_op *op, const int32_t *row, uint32_t n, uint32_t phases, uint32_t pitch,
                           const bpg_shift *t, void *y, int dtype)
{
    uint32_t k;
    for (k = 0; k < n; k++) {
        const int32_t acc = phases == 1 ? row[k] : row[(k % phases) * pitch + k / phases];
        bpg_store(y, dtype, k, bpg_clamp(bpg_rounding_shift(acc, t), op->clip[0], op->clip[1]));
    }
}

/* The first k >= 0 with k * s + off >= 0, and the last with k * s + off <= limit (-1 when none). */
static int64_t first_at_or_after_zero(int64_t off, int64_t s)
{
    return off >= 0 ? 0 : (-off + s - 1) / s;
}
static int64_t last_at_or_before(int64_t limit, int64_t off, int64_t s)
{
    return limit - off < 0 ? -1 : (limit - off) / s;
}

/* acc[o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] * xpad[c, y*sh+i, x*sw+j]; y = clip(rounding_shift(acc, shift[o])) */
static void conv_forward(const bpg_op *op, const bpg_view *x, const bpg_view *y, int32_t *row, uint32_t y0,
                         uint32_t y1)
{
    const int64_t kh = op->kernel[0], kw = op->kernel[1], sh = op->stride[0], sw = op->stride[1];
    uint32_t o, oy, c, ox;
    int64_t i, j;
    for (oy = y0; oy < y1; oy++) {
        for (o = 0; o < y->c; o++) {
            for (ox = 0; ox < y->w; ox++) row[ox] = op->bias[o];
            for (c = 0; c < x->c; c++) {
                for (i = 0; i < kh; i++) {
                    const int64_t iy = (int64_t)oy * sh + i - op->pad[0];
                    const void *in;
                    if (iy < 0 || iy >= (int64_t)x->h) continue;   /* a zero of the padding */
                    in = bpg_row(x, c, (uint64_t)iy);
                    for (j = 0; j < kw; j++) {
                        const int32_t w = op->weight[(((uint64_t)o * x->c + c) * kh + i) * kw + j];
                        const int64_t off = j - op->pad[1];
                        const int64_t lo = first_at_or_after_zero(off, sw);
                        int64_t hi = last_at_or_before((int64_t)x->w - 1, off, sw);
                        if (hi > (int64_t)y->w - 1) hi = (int64_t)y->w - 1;
                        if (w == 0 || lo > hi) continue;           /* pruned weights add nothing */
                        mac_gather(row + lo, (uint32_t)(hi - lo + 1), w, in, (uint64_t)(lo * sw + off), (uint32_t)sw,
                                   x->dtype);
                    }
                }
            }
            requantize_row(op, row, y->w, 1, y->w, &op->shift[o], bpg_row(y, o, oy), y->dtype);
        }
    }
}

/* acc[o, y*sh+i-pt, x*sw+j-pl] += sum_c x[c,y,x] * w[c,o,i,j], plus b[o]; y = clip(rounding_shift(acc, shift[o]))
 * Gathered per output row (no full-size int32 plane): output row oy takes input rows iy with
 * iy * sh + i == oy + pt; output_padding only adds rows and columns that get the bias alone.
 * The row buffer holds sw phases of `pitch` columns: output column ox = k * sw + p is row[p * pitch + k],
 * so tap j (ox = ix * sw + j - pl) adds a contiguous run of the input row to a contiguous run of one
 * phase, a loop compilers vectorize (a strided scatter would not be). */
static void conv_transpose_forward(const bpg_op *op, const bpg_view *x, const bpg_view *y, int32_t *row,
                                   uint32_t y0, uint32_t y1)
{
    const int64_t kh = op->kernel[0], kw = op->kernel[1], sh = op->stride[0], sw = op->stride[1];
    const uint32_t pitch = (uint32_t)((y->w + sw - 1) / sw);
    uint32_t o, oy, c, ox;
    int64_t i, j;
    for (oy = y0; oy < y1; oy++) {
        for (o = 0; o < y->c; o++) {
            for (ox = 0; ox < pitch * (uint32_t)sw; ox++) row[ox] = op->bias[o];
            for (c = 0; c < x->c; c++) {
                for (i = 0; i < kh; i++) {
                    const int64_t t = (int64_t)oy + op->pad[0] - i;
                    const void *in;
                    if (t < 0 || t % sh != 0 || t / sh >= (int64_t)x->h) continue;
                    in = bpg_row(x, c, (uint64_t)(t / sh));
                    for (j = 0; j < kw; j++) {
                        const int32_t w = op->weight[(((uint64_t)c * y->c + o) * kh + i) * kw + j];
                        const int64_t off = j - op->pad[1];
                        const int64_t phase = ((off % sw) + sw) % sw, base = (off - phase) / sw;
                        const int64_t lo = first_at_or_after_zero(off, sw);
                        int64_t hi = last_at_or_before((int64_t)y->w - 1, off, sw);
                        if (hi > (int64_t)x->w - 1) hi = (int64_t)x->w - 1;
                        if (w == 0 || lo > hi) continue;
                        mac_gather(row + phase * pitch + lo + base, (uint32_t)(hi - lo + 1), w, in, (uint64_t)lo, 1,
                                   x->dtype);
                    }
                }
            }
            requantize_row(op, row, y->w, (uint32_t)sw, pitch, &op->shift[o], bpg_row(y, o, oy), y->dtype);
        }
    }
}

/* y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (conv2d) */
static void bpg_conv2d(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0, uint32_t y1)
{
    conv_forward(op, xs, y, row, y0, y1);
}
/* y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (conv1d: the 2-D loops, time as rows, width 1) */
static void bpg_conv1d(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0, uint32_t y1)
{
    conv_forward(op, xs, y, row, y0, y1);
}
/* y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (conv_transpose2d) */
static void bpg_conv_transpose2d(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0,
                                 uint32_t y1)
{
    conv_transpose_forward(op, xs, y, row, y0, y1);
}
/* y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (conv_transpose1d: time as rows, width 1) */
static void bpg_conv_transpose1d(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0,
                                 uint32_t y1)
{
    conv_transpose_forward(op, xs, y, row, y0, y1);
}

/* y = clip(rounding_shift((a << la) + (b << lb), shift), lo, hi). The aligned inputs and their sum fit
 * int32 (add_bound); a size-1 spatial axis broadcasts as numpy does in the reference. */
static void bpg_add(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0, uint32_t y1)
{
    const bpg_view *a = &xs[0], *b = &xs[1];
    const bpg_shift la = {op->align[0], 0, 0}, lb = {op->align[1], 0, 0};
    uint32_t c, r, q;
    (void)row;
    for (r = y0; r < y1; r++)
        for (c = 0; c < y->c; c++) {
            const void *pa = bpg_row(a, c, a->h == 1 ? 0 : r), *pb = bpg_row(b, c, b->h == 1 ? 0 : r);
            void *py = bpg_row(y, c, r);
            for (q = 0; q < y->w; q++) {
                const int64_t s = bpg_rounding_shift(bpg_load(pa, a->dtype, a->w == 1 ? 0 : q), &la)
                                + bpg_rounding_shift(bpg_load(pb, b->dtype, b->w == 1 ? 0 : q), &lb);
                bpg_store(py, y->dtype, q, bpg_clamp(bpg_rounding_shift(s, op->shift), op->clip[0], op->clip[1]));
            }
        }
}

/* y = min(max(x, lo), hi)   (same scale, the output dtype may be narrower) */
static void bpg_clip(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0, uint32_t y1)
{
    uint32_t c, r, q;
    (void)row;
    for (r = y0; r < y1; r++)
        for (c = 0; c < y->c; c++) {
            const void *px = bpg_row(xs, c, r);
            void *py = bpg_row(y, c, r);
            for (q = 0; q < y->w; q++)
                bpg_store(py, y->dtype, q, bpg_clamp(bpg_load(px, xs->dtype, q), op->clip[0], op->clip[1]));
        }
}

/* y[c, h*r+i, w*r+j] = x[c*r*r+i*r+j, h, w]   (ONNX DepthToSpace CRD, torch PixelShuffle) */
static void bpg_pixel_shuffle(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0,
                              uint32_t y1)
{
    const uint32_t r = (uint32_t)op->factor, e = bpg_dtype_bytes(y->dtype);
    uint32_t c, yy, xx;
    (void)row;
    for (yy = y0; yy < y1; yy++)
        for (c = 0; c < y->c; c++) {
            uint8_t *dst = (uint8_t *)bpg_row(y, c, yy);
            for (xx = 0; xx < y->w; xx++, dst += e)
                memcpy(dst, (const uint8_t *)bpg_row(xs, c * r * r + (yy % r) * r + xx % r, yy / r) + (xx / r) * e, e);
        }
}

/* y[c, h, w] = x[c, h//r, w//r]   (every spatial axis; a 1-D tensor, time as rows, keeps width 1) */
static void bpg_upsample_nearest(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row,
                                 uint32_t y0, uint32_t y1)
{
    const uint32_t r = (uint32_t)op->factor, e = bpg_dtype_bytes(y->dtype), rw = y->w == xs->w ? 1u : r;
    uint32_t c, yy, xx;
    (void)row;
    for (yy = y0; yy < y1; yy++)
        for (c = 0; c < y->c; c++) {
            const uint8_t *src = (const uint8_t *)bpg_row(xs, c, yy / r);
            uint8_t *dst = (uint8_t *)bpg_row(y, c, yy);
            for (xx = 0; xx < y->w; xx++, dst += e) memcpy(dst, src + (xx / rw) * e, e);
        }
}

/* y = x0 ++ x1 ++ ... along channels (inputs share one integer format and one spatial size) */
static void bpg_concat(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0, uint32_t y1)
{
    uint32_t r, c, at;
    uint16_t k;
    (void)row;
    for (r = y0; r < y1; r++)
        for (k = 0, at = 0; k < op->n_inputs; k++)
            for (c = 0; c < xs[k].c; c++, at++)
                memcpy(bpg_row(y, at, r), bpg_row(&xs[k], c, r), (size_t)xs[k].w * bpg_dtype_bytes(xs[k].dtype));
}

/* y[c, h*k+i, w*k+j] = x[c, h, w] if i*k+j == argmax_first(l[c*k*k .. c*k*k+k*k-1, h, w]) else 0
 * (argmax_first: a strict > scan, ties to the lowest index, as the reference). Each output row recomputes
 * the argmax of its input row: a k*k compare per value, cheaper than a buffer of switches. */
static void bpg_argmax_unpool(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0,
                              uint32_t y1)
{
    const bpg_view *x = &xs[0], *l = &xs[1];
    const uint32_t k = (uint32_t)op->factor, kk = k * k, e = bpg_dtype_bytes(y->dtype);
    const void *pl[16];   /* the k*k logit rows of one channel; registry: k <= 4 */
    uint32_t c, yy, xx, j;
    (void)row;
    for (yy = y0; yy < y1; yy++)
        for (c = 0; c < y->c; c++) {
            const uint8_t *src = (const uint8_t *)bpg_row(x, c, yy / k);
            uint8_t *dst = (uint8_t *)bpg_row(y, c, yy);
            memset(dst, 0, (size_t)y->w * e);   /* zero is all-zero bytes in every dtype */
            for (j = 0; j < kk; j++) pl[j] = bpg_row(l, c * kk + j, yy / k);
            for (xx = 0; xx < x->w; xx++) {
                int32_t best = bpg_load(pl[0], l->dtype, xx);
                uint32_t idx = 0;
                for (j = 1; j < kk; j++) {
                    const int32_t v = bpg_load(pl[j], l->dtype, xx);
                    if (v > best) {
                        best = v;
                        idx = j;
                    }
                }
                if (idx / k == yy % k) memcpy(dst + ((uint64_t)xx * k + idx % k) * e, src + (uint64_t)xx * e, e);
            }
        }
}

/* r_N(i) = N-1 - |N-1 - |i||: one reflection without edge repeat (|i| < N: each pad is below its size). */
static uint32_t reflect_index(int64_t i, uint32_t n)
{
    i = i < 0 ? -i : i;
    i = (int64_t)n - 1 - i;
    return (uint32_t)((int64_t)n - 1 - (i < 0 ? -i : i));
}

/* y[c, h, w] = x[c, r_H(h - top), r_W(w - left)], r_N(i) = N-1-|N-1-|i||   (torch ReflectionPad2d / 1d: a 1-D
 * tensor, time as rows, pads (l, 0, r, 0) keeps width 1). Per output row its reflected input row, then per
 * column the reflected column: a copy of whole elements, the output keeps the input's format. */
static void bpg_reflect_pad(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row, uint32_t y0,
                            uint32_t y1)
{
    const uint32_t e = bpg_dtype_bytes(y->dtype);
    uint32_t c, yy, xx;
    (void)row;
    for (yy = y0; yy < y1; yy++) {
        const uint32_t src_row = reflect_index((int64_t)yy - op->pad[0], xs->h);
        for (c = 0; c < y->c; c++) {
            const uint8_t *src = (const uint8_t *)bpg_row(xs, c, src_row);
            uint8_t *dst = (uint8_t *)bpg_row(y, c, yy);
            for (xx = 0; xx < y->w; xx++, dst += e)
                memcpy(dst, src + (uint64_t)reflect_index((int64_t)xx - op->pad[1], xs->w) * e, e);
        }
    }
}

const bpg_kernel bpg_kernels[BPG_NUM_KINDS] = {
    bpg_conv2d, bpg_conv_transpose2d, bpg_conv1d, bpg_conv_transpose1d, bpg_add, bpg_clip,
    bpg_pixel_shuffle, bpg_upsample_nearest, bpg_concat, bpg_argmax_unpool, bpg_reflect_pad,
};
