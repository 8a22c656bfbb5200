/* bpgan_plan.c: the memory plan of one stream. Shapes follow from the latent size (firmware_ref/stripes.py
 * heights_of, the one output-size rule per op kind, which refuses the same impossible sizes); then each
 * tensor's ring of rows and the arena offsets. */
#include "bpgan_internal.h"

#define BPG_MAX_SIDE ((int64_t)1 << 24)

/* The output size of one op from its inputs' sizes; 0 or a one-line refusal. */
static int op_shape(const bpg_model *m, const bpg_op *op, bpg_shape *y, char *err)
{
    const bpg_shape *x = &m->shapes[op->inputs[0]];
    int64_t h, w;
    uint16_t k;
    switch (op->kind) {
    case BPG_CONV2D: case BPG_CONV1D:
        h = (int64_t)x->h + op->pad[0] + op->pad[2] - op->kernel[0];
        w = (int64_t)x->w + op->pad[1] + op->pad[3] - op->kernel[1];
        if (h < 0 || w < 0)
            return bpg_error(err, "conv input %lux%lu is smaller than its %ldx%ld kernel with padding",
                             (unsigned long)x->h, (unsigned long)x->w, (long)op->kernel[0], (long)op->kernel[1]);
        h = h / op->stride[0] + 1;
        w = w / op->stride[1] + 1;
        break;
    case BPG_CONV_TRANSPOSE2D: case BPG_CONV_TRANSPOSE1D:
        h = ((int64_t)x->h - 1) * op->stride[0] + op->kernel[0] + op->out_pad[0] - op->pad[0] - op->pad[2];
        w = ((int64_t)x->w - 1) * op->stride[1] + op->kernel[1] + op->out_pad[1] - op->pad[1] - op->pad[3];
        if (h < 1 || w < 1)
            return bpg_error(err, "transposed conv output %ldx%ld is empty for input %lux%lu", (long)h, (long)w,
                             (unsigned long)x->h, (unsigned long)x->w);
        break;
    case BPG_ADD: {   /* numpy broadcasting of the spatial axes, as the reference's add */
        const bpg_shape *b = &m->shapes[op->inputs[1]];
        if ((x->h != b->h && x->h != 1 && b->h != 1) || (x->w != b->w && x->w != 1 && b->w != 1))
            return bpg_error(err, "add inputs of sizes %lux%lu and %lux%lu do not broadcast",
                             (unsigned long)x->h, (unsigned long)x->w, (unsigned long)b->h, (unsigned long)b->w);
        h = x->h == 1 ? b->h : x->h;
        w = x->w == 1 ? b->w : x->w;
        break;
    }
    case BPG_PIXEL_SHUFFLE:
        h = (int64_t)x->h * op->factor;
        w = (int64_t)x->w * op->factor;
        break;
    case BPG_UPSAMPLE_NEAREST:   /* 1-D: time is the row axis, the width stays 1 */
        h = (int64_t)x->h * op->factor;
        w = m->spatial_dims == 2 ? (int64_t)x->w * op->factor : 1;
        break;
    case BPG_ARGMAX_UNPOOL: {   /* one logit per value position; the emitter admits it in image programs only */
        const bpg_shape *l = &m->shapes[op->inputs[1]];
        if (l->h != x->h || l->w != x->w)
            return bpg_error(err, "argmax_unpool inputs differ in size");
        h = (int64_t)x->h * op->factor;
        w = (int64_t)x->w * op->factor;
        break;
    }
    case BPG_REFLECT_PAD:   /* stripes.heights_of: each size must exceed its pads (one reflection) */
        if (op->pad[0] >= (int64_t)x->h || op->pad[2] >= (int64_t)x->h || op->pad[1] >= (int64_t)x->w
            || op->pad[3] >= (int64_t)x->w)
            return bpg_error(err, "reflect_pad of a %lux%lu input needs each size above its pads (%ld, %ld, %ld, %ld)",
                             (unsigned long)x->h, (unsigned long)x->w, (long)op->pad[0], (long)op->pad[1],
                             (long)op->pad[2], (long)op->pad[3]);
        h = (int64_t)x->h + op->pad[0] + op->pad[2];
        w = (int64_t)x->w + op->pad[1] + op->pad[3];
        break;
    case BPG_CONCAT:
        for (k = 1; k < op->n_inputs; k++)
            if (m->shapes[op->inputs[k]].h != x->h || m->shapes[op->inputs[k]].w != x->w)
                return bpg_error(err, "concat inputs differ in size");
        h = x->h;
        w = x->w;
        break;
    default:   /* clip */
        h = x->h;
        w = x->w;
    }
    if (h > BPG_MAX_SIDE || w > BPG_MAX_SIDE)   /* keeps every row and column index far inside uint32 */
        return bpg_error(err, "a %ldx%ld layer exceeds this decoder's limit of %ld rows or columns", (long)h, (long)w,
                         (long)BPG_MAX_SIDE);
    y->h = (uint32_t)h;
    y->w = (uint32_t)w;
    return 0;
}

/* The arena of one stream: [latent | side | rings, row buffer]. Rings: a dry run of the stream schedule gives each tensor's largest
 * window (RowCache.max_rows); bpgan/export/c99/plan.py sizes the static arena with the same layout over
 * the sizes the export's limits allow, so a stream within them fits (one that does not is refused). */
int bpg_plan(const bpg_model *m, bpg_shape latent, uint32_t rows, uint64_t side, bpg_layout *at, char *err)
{
    uint64_t need, columns = 1;
    uint32_t i, y;
    m->shapes[m->input] = latent;
    for (i = 0; i < m->n_ops; i++) {
        const bpg_op *op = &m->ops[i];
        if (op_shape(m, op, &m->shapes[op->output], err)) return 1;
        if (op->kind <= BPG_CONV_TRANSPOSE1D) {   /* int32 row buffer: a transposed conv's in whole stride phases */
            const uint64_t w = m->shapes[op->output].w, s = (uint64_t)op->stride[1];
            const uint64_t n = op->kind == BPG_CONV_TRANSPOSE2D || op->kind == BPG_CONV_TRANSPOSE1D ? (w + s - 1) / s * s : w;
            if (n > columns) columns = n;
        }
    }
    if (rows > m->shapes[m->output].h) rows = m->shapes[m->output].h;
    bpg_stream_reset(m);
    for (y = 0; y < rows; y++) {   /* the dry run: windows only, one output row at a time */
        bpg_stream_pull(m, y + 1, 0, NULL);
        bpg_stream_drop_output(m, y + 1);
    }
    need = bpg_round_up((uint64_t)m->tensors[m->input].channels * latent.h * latent.w);
    m->rings[m->input].offset = 0;
    m->rings[m->input].cap = latent.h;
    at->side_at = need;
    need += bpg_round_up(side);
    for (i = 0; i < m->n_tensors; i++) {
        const uint64_t row_bytes = (uint64_t)m->tensors[i].channels * m->shapes[i].w * bpg_dtype_bytes(m->tensors[i].dtype);
        if (i == m->input) continue;
        m->rings[i].cap = m->rings[i].max_rows;
        m->rings[i].offset = need;
        need += bpg_round_up(row_bytes * m->rings[i].cap);
        if (need > m->arena_bytes) break;
    }
    at->row_at = need;
    need += bpg_round_up(4u * columns);
    if (need > m->arena_bytes)
        return bpg_error(err, "this stream needs more than the %lu bytes of arena of this build (export it with "
                         "larger limits)", (unsigned long)m->arena_bytes);
    return 0;
}
