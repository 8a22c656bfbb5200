/* bpgan_plan.c: the memory plan of one stream. Shapes follow from the latent size (the same rules as
 * the reference kernels, which refuse the same impossible sizes); then the slots, largest first (ties:
 * lower id first), each go at the lowest offset where they overlap no slot of an intersecting lifetime
 * placed before (first fit by liveness, the order of TFLite Micro's greedy planner: on the shipped
 * models it reaches the peak of live bytes). bpgan/export/c99/plan.py runs the same algorithm over
 * the latent sizes the export's limits allow to size the arena, so a stream within them fits. */
#include "bpgan_internal.h"

static uint64_t round_up(uint64_t n) { return (n + BPG_ALIGN - 1) / BPG_ALIGN * BPG_ALIGN; }

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
    case BPG_UPSAMPLE_NEAREST:
        h = m->spatial_dims == 2 ? (int64_t)x->h * op->factor : 1;
        w = (int64_t)x->w * op->factor;
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
    if ((uint64_t)h * (uint64_t)w > m->arena_bytes)   /* also keeps h, w far inside uint32 */
        return bpg_error(err, "a %ldx%ld layer exceeds this decoder's arena of %lu bytes", (long)h, (long)w,
                         (unsigned long)m->arena_bytes);
    y->h = (uint32_t)h;
    y->w = (uint32_t)w;
    return 0;
}

static int overlaps(const bpg_model *m, uint32_t a, uint32_t b)
{
    return m->slot_first[a] <= m->slot_last[b] && m->slot_first[b] <= m->slot_last[a];
}

int bpg_plan(const bpg_model *m, bpg_shape latent, char *err)
{
    uint32_t i, k, j;
    uint64_t need = 0;
    m->shapes[m->input] = latent;
    for (i = 0; i < m->n_ops; i++) {
        const bpg_op *op = &m->ops[i];
        if (op_shape(m, op, &m->shapes[op->output], err)) return 1;
    }
    for (i = 0; i < m->n_tensors; i++) {
        const bpg_shape *s = &m->shapes[i];
        const uint64_t elements = (uint64_t)m->tensors[i].channels * s->h * s->w;
        m->slots[i].bytes = round_up(elements * bpg_dtype_bytes(m->tensors[i].dtype));
    }
    for (i = 0; i < m->n_ops; i++) {   /* int32 row buffers: a transposed conv's in whole stride phases */
        const bpg_op *op = &m->ops[i];
        const uint64_t w = m->shapes[op->output].w, s = (uint64_t)op->stride[1];
        const int transposed = op->kind == BPG_CONV_TRANSPOSE2D || op->kind == BPG_CONV_TRANSPOSE1D;
        const uint64_t columns = transposed ? (w + s - 1) / s * s : w;
        m->slots[m->n_tensors + i].bytes = op->kind <= BPG_CONV_TRANSPOSE1D ? round_up(4u * columns) : 0;
    }
    for (k = 0; k < m->n_slots; k++) {   /* insertion sort: stable, so equal sizes stay in id order */
        const uint16_t s = (uint16_t)k;
        for (j = k; j > 0 && m->slots[m->order[j - 1]].bytes < m->slots[s].bytes; j--) m->order[j] = m->order[j - 1];
        m->order[j] = s;
    }
    for (k = 0; k < m->n_slots; k++) {
        const uint32_t s = m->order[k];
        uint64_t at = 0;
        int moved = 1;
        if (m->slots[s].bytes > m->arena_bytes) break;
        while (moved) {   /* bump past every conflict: ends at the lowest offset that has none */
            moved = 0;
            for (j = 0; j < k; j++) {
                const uint32_t p = m->order[j];
                if (m->slots[p].bytes == 0 || !overlaps(m, s, p)) continue;
                if (m->slots[p].offset < at + m->slots[s].bytes && at < m->slots[p].offset + m->slots[p].bytes) {
                    at = m->slots[p].offset + m->slots[p].bytes;
                    moved = 1;
                }
            }
        }
        m->slots[s].offset = at;
        if (m->slots[s].bytes && at + m->slots[s].bytes > need) need = at + m->slots[s].bytes;
    }
    if (k < m->n_slots || need > m->arena_bytes)
        return bpg_error(err, "this stream needs more than the %lu bytes of arena of this build (export it with "
                         "larger limits)", (unsigned long)m->arena_bytes);
    return 0;
}
