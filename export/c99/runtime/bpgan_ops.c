/* bpgan_ops.c: one C function per op kind of firmware_ref.ops.REGISTRY (TFLite-Micro reference-kernel
 * style: plain loops, the integer semantics as the first comment line, the overflow argument beside
 * the accumulator). Tensors are NCHW / NCW with N = 1; a 1-D tensor is a 2-D one of height 1, so
 * the 1-D convs run the 2-D loops with kernel (1, k), stride (1, s) and padding (0, l, 0, r), which
 * is what firmware_ref's conv1d_acc does with numpy. Shapes were checked by the plan. */
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
 * restrict: a row buffer and a tensor are distinct arena slots (the plan never overlaps live slots). */
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
                           const bpg_shift *t, bpg_view *y, uint64_t at)
{
    uint32_t k;
    for (k = 0; k < n; k++) {
        const int32_t acc = phases == 1 ? row[k] : row[(k % phases) * pitch + k / phases];
        bpg_store(y->data, y->dtype, at + k, bpg_clamp(bpg_rounding_shift(acc, t), op->clip[0], op->clip[1]));
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
static void conv_forward(const bpg_op *op, const bpg_view *x, bpg_view *y, int32_t *row)
{
    const int64_t kh = op->kernel[0], kw = op->kernel[1], sh = op->stride[0], sw = op->stride[1];
    uint32_t o, oy, c, ox;
    int64_t i, j;
    for (o = 0; o < y->c; o++) {
        for (oy = 0; oy < y->h; oy++) {
            for (ox = 0; ox < y->w; ox++) row[ox] = op->bias[o];
            for (c = 0; c < x->c; c++) {
                for (i = 0; i < kh; i++) {
                    const int64_t iy = (int64_t)oy * sh + i - op->pad[0];
                    if (iy < 0 || iy >= (int64_t)x->h) continue;   /* a zero of the padding */
                    for (j = 0; j < kw; j++) {
                        const int32_t w = op->weight[(((uint64_t)o * x->c + c) * kh + i) * kw + j];
                        const int64_t off = j - op->pad[1];
                        const int64_t lo = first_at_or_after_zero(off, sw);
                        int64_t hi = last_at_or_before((int64_t)x->w - 1, off, sw);
                        if (hi > (int64_t)y->w - 1) hi = (int64_t)y->w - 1;
                        if (w == 0 || lo > hi) continue;           /* pruned weights add nothing */
                        mac_gather(row + lo, (uint32_t)(hi - lo + 1), w, x->data,
                                   ((uint64_t)c * x->h + (uint64_t)iy) * x->w + (uint64_t)(lo * sw + off),
                                   (uint32_t)sw, x->dtype);
                    }
                }
            }
            requantize_row(op, row, y->w, 1, y->w, &op->shift[o], y, ((uint64_t)o * y->h + oy) * y->w);
        }
    }
}

/* acc[o, y*sh+i-pt, x*sw+j-pl] += sum_c x[c,y,x] * w[c,o,i,j], plus b[o]; y = clip(rounding_shift(acc, shift[o]))
 * Gathered per output row (no full-size int32 plane): output row oy takes input rows iy with
 * iy * sh + i == oy + pt; output_padding only adds rows and columns that get the bias alone.
 * The row buffer holds sw phases of `pitch` columns: output column ox = k * sw + p is row[p * pitch + k],
 * so tap j (ox = ix * sw + j - pl) adds a contiguous run of the input row to a contiguous run of one
 * phase, a loop compilers vectorize (a strided scatter would not be). */
static void conv_transpose_forward(const bpg_op *op, const bpg_view *x, bpg_view *y, int32_t *row)
{
    const int64_t kh = op->kernel[0], kw = op->kernel[1], sh = op->stride[0], sw = op->stride[1];
    const uint32_t pitch = (uint32_t)((y->w + sw - 1) / sw);
    uint32_t o, oy, c, ox;
    int64_t i, j;
    for (o = 0; o < y->c; o++) {
        for (oy = 0; oy < y->h; oy++) {
            for (ox = 0; ox < pitch * (uint32_t)sw; ox++) row[ox] = op->bias[o];
            for (c = 0; c < x->c; c++) {
                for (i = 0; i < kh; i++) {
                    const int64_t t = (int64_t)oy + op->pad[0] - i;
                    if (t < 0 || t % sh != 0 || t / sh >= (int64_t)x->h) continue;
                    for (j = 0; j < kw; j++) {
                        const int32_t w = op->weight[(((uint64_t)c * y->c + o) * kh + i) * kw + j];
                        const int64_t off = j - op->pad[1];
                        const int64_t phase = ((off % sw) + sw) % sw, base = (off - phase) / sw;
                        const int64_t lo = first_at_or_after_zero(off, sw);
                        int64_t hi = last_at_or_before((int64_t)y->w - 1, off, sw);
                        if (hi > (int64_t)x->w - 1) hi = (int64_t)x->w - 1;
                        if (w == 0 || lo > hi) continue;
                        mac_gather(row + phase * pitch + lo + base, (uint32_t)(hi - lo + 1), w, x->data,
                                   ((uint64_t)c * x->h + (uint64_t)(t / sh)) * x->w + (uint64_t)lo, 1, x->dtype);
                    }
                }
            }
            requantize_row(op, row, y->w, (uint32_t)sw, pitch, &op->shift[o], y, ((uint64_t)o * y->h + oy) * y->w);
        }
    }
}

/* y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (conv2d) */
static void bpg_conv2d(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    conv_forward(op, xs, y, row);
}
/* y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (conv1d: the 2-D loops at height 1) */
static void bpg_conv1d(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    conv_forward(op, xs, y, row);
}
/* y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (conv_transpose2d) */
static void bpg_conv_transpose2d(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    conv_transpose_forward(op, xs, y, row);
}
/* y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (conv_transpose1d: height 1) */
static void bpg_conv_transpose1d(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    conv_transpose_forward(op, xs, y, row);
}

/* y = clip(rounding_shift((a << la) + (b << lb), shift), lo, hi). The aligned inputs and their sum fit
 * int32 (add_bound); a size-1 spatial axis broadcasts as numpy does in the reference. */
static void bpg_add(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    const bpg_view *a = &xs[0], *b = &xs[1];
    const bpg_shift la = {op->align[0], 0, 0}, lb = {op->align[1], 0, 0};
    uint32_t c, r, q;
    uint64_t n = 0;
    (void)row;
    for (c = 0; c < y->c; c++)
        for (r = 0; r < y->h; r++)
            for (q = 0; q < y->w; q++, n++) {
                const uint64_t ia = ((uint64_t)c * a->h + (a->h == 1 ? 0 : r)) * a->w + (a->w == 1 ? 0 : q);
                const uint64_t ib = ((uint64_t)c * b->h + (b->h == 1 ? 0 : r)) * b->w + (b->w == 1 ? 0 : q);
                const int64_t s = bpg_rounding_shift(bpg_load(a->data, a->dtype, ia), &la)
                                + bpg_rounding_shift(bpg_load(b->data, b->dtype, ib), &lb);
                bpg_store(y->data, y->dtype, n, bpg_clamp(bpg_rounding_shift(s, op->shift), op->clip[0], op->clip[1]));
            }
}

/* y = min(max(x, lo), hi)   (same scale, the output dtype may be narrower) */
static void bpg_clip(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    const uint64_t n = (uint64_t)y->c * y->h * y->w;
    uint64_t i;
    (void)row;
    for (i = 0; i < n; i++)
        bpg_store(y->data, y->dtype, i, bpg_clamp(bpg_load(xs->data, xs->dtype, i), op->clip[0], op->clip[1]));
}

/* y[c, h*r+i, w*r+j] = x[c*r*r+i*r+j, h, w]   (ONNX DepthToSpace CRD, torch PixelShuffle) */
static void bpg_pixel_shuffle(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    const uint32_t r = (uint32_t)op->factor, e = bpg_dtype_bytes(y->dtype);
    uint32_t c, yy, xx;
    uint8_t *dst = (uint8_t *)y->data;
    (void)row;
    for (c = 0; c < y->c; c++)
        for (yy = 0; yy < y->h; yy++)
            for (xx = 0; xx < y->w; xx++, dst += e) {
                const uint64_t src = (((uint64_t)c * r * r + (yy % r) * r + xx % r) * xs->h + yy / r) * xs->w + xx / r;
                memcpy(dst, (const uint8_t *)xs->data + src * e, e);
            }
}

/* y[c, h, w] = x[c, h//r, w//r]   (every spatial axis; a 1-D tensor keeps height 1) */
static void bpg_upsample_nearest(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    const uint32_t r = (uint32_t)op->factor, e = bpg_dtype_bytes(y->dtype), rh = y->h == xs->h ? 1u : r;
    uint32_t c, yy, xx;
    uint8_t *dst = (uint8_t *)y->data;
    (void)row;
    for (c = 0; c < y->c; c++)
        for (yy = 0; yy < y->h; yy++)
            for (xx = 0; xx < y->w; xx++, dst += e)
                memcpy(dst, (const uint8_t *)xs->data + (((uint64_t)c * xs->h + yy / rh) * xs->w + xx / r) * e, e);
}

/* y = x0 ++ x1 ++ ... along channels (inputs share one integer format and one spatial size) */
static void bpg_concat(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row)
{
    uint8_t *dst = (uint8_t *)y->data;
    uint16_t k;
    (void)row;
    for (k = 0; k < op->n_inputs; k++) {
        const uint64_t bytes = (uint64_t)xs[k].c * xs[k].h * xs[k].w * bpg_dtype_bytes(xs[k].dtype);
        memcpy(dst, xs[k].data, (size_t)bytes);
        dst += bytes;
    }
}

const bpg_kernel bpg_kernels[BPG_NUM_KINDS] = {
    bpg_conv2d, bpg_conv_transpose2d, bpg_conv1d, bpg_conv_transpose1d, bpg_add, bpg_clip,
    bpg_pixel_shuffle, bpg_upsample_nearest, bpg_concat,
};
