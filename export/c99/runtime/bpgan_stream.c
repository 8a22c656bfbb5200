/* bpgan_stream.c: streaming decoding, the port of firmware_ref/stripes.py RowCache (its docstring is the
 * specification). Output rows are pulled in order; each tensor computes only the rows past those it
 * holds, after making sure its inputs hold the rows those reach (the receptive-field halo, from each
 * op's geometry: ROW_MAPS `needed`), then drops the rows none of its consumers can ask for again.
 * Nothing is computed twice and every value equals full-frame decoding's. Run with compute = 0 it only
 * moves the windows: the plan's dry run, whose largest window per tensor sizes its ring.
 * The recursion is at most one frame per op deep (a tensor's producer comes before it). */
#include "bpgan_internal.h"

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* stripes.ROW_MAPS[kind][0]: the rows [lo, hi) of input j that output rows [a, b) of op read, with
 * 0 <= lo <= hi <= the input's height (an empty window is (lo, lo)). */
static void needed(const bpg_model *m, const bpg_op *op, uint16_t j, int64_t a, int64_t b, int64_t *lo, int64_t *hi)
{
    const int64_t h = m->shapes[op->inputs[j]].h, s = op->stride[0], pt = op->pad[0], k = op->kernel[0];
    switch (op->kind) {
    case BPG_CONV2D: case BPG_CONV1D:   /* output row y reads input rows y*s - pt .. y*s - pt + k - 1 */
        *lo = clamp64(a * s - pt, 0, h);
        *hi = clamp64((b - 1) * s - pt + k, *lo, h);
        break;
    case BPG_CONV_TRANSPOSE2D: case BPG_CONV_TRANSPOSE1D:   /* output row Y = y*s + i - pt */
        *lo = clamp64(-floor_div(-(a + pt - k + 1), s), 0, h);
        *hi = clamp64(floor_div(b - 1 + pt, s) + 1, *lo, h);
        break;
    case BPG_PIXEL_SHUFFLE: case BPG_UPSAMPLE_NEAREST: case BPG_ARGMAX_UNPOOL:   /* every input alike */
        *lo = a / op->factor;
        *hi = (b + op->factor - 1) / op->factor;
        break;
    case BPG_REFLECT_PAD: {   /* stripes._reflect_needed: the reflected rows, widened to move only forward */
        const int64_t bottom = op->pad[2];
        *lo = a - pt < h - 1 - bottom ? a - pt : h - 1 - bottom;
        if (*lo < 0) *lo = 0;
        *hi = b - pt > pt + 1 ? b - pt : pt + 1;
        *hi = b <= a ? *lo : clamp64(*hi, *lo, h);
        break;
    }
    default:   /* elementwise, concat: the band itself; a height-1 input that add broadcasts: its row */
        *lo = h == 1 ? 0 : a;
        *hi = h == 1 ? 1 : b;
    }
}

bpg_view bpg_view_of(const bpg_model *m, uint32_t t)
{
    bpg_view v;
    v.data = m->arena + m->rings[t].offset;
    v.dtype = m->tensors[t].dtype;
    v.c = m->tensors[t].channels;
    v.h = m->shapes[t].h;
    v.w = m->shapes[t].w;
    v.cap = m->rings[t].cap ? m->rings[t].cap : 1;
    v.row_pitch = t == m->input ? v.w : (uint64_t)v.c * v.w;
    v.chan_pitch = t == m->input ? (uint64_t)v.h * v.w : v.w;
    return v;
}

void bpg_stream_reset(const bpg_model *m)
{
    uint32_t t;
    for (t = 0; t < m->n_tensors; t++) {
        m->rings[t].lo = m->rings[t].hi = m->rings[t].max_rows = 0;
        m->rings[t].started = 0;
    }
    for (t = 0; t < m->n_edges; t++) m->asked[t] = -1;   /* RowCache.asked: nothing asked yet */
    m->rings[m->input].hi = m->rings[m->input].max_rows = m->shapes[m->input].h;
    m->rings[m->input].started = 1;
}

/* RowCache._trim: raise each input's lo to the lowest row its consumers asked for last, once all asked. */
static void trim(const bpg_model *m, const bpg_op *op)
{
    uint16_t j;
    for (j = 0; j < op->n_inputs; j++) {
        const uint16_t t = op->inputs[j];
        int64_t floor = -1;
        uint32_t e;
        if (t == m->output) continue;
        for (e = m->consumer_start[t]; e < m->consumer_start[t + 1u]; e++) {
            const int64_t asked = m->asked[m->consumer_edge[e]];
            if (asked < 0) break;
            if (floor < 0 || asked < floor) floor = asked;
        }
        if (e == m->consumer_start[t + 1u] && floor > (int64_t)m->rings[t].lo) m->rings[t].lo = (uint32_t)floor;
    }
}

static void rows(const bpg_model *m, uint16_t t, int64_t lo, int64_t hi, uint32_t edge, int compute, int32_t *row);

/* RowCache._extend: compute rows [ring.hi, hi) of tensor t. */
static void extend(const bpg_model *m, uint16_t t, int64_t hi, int compute, int32_t *row)
{
    const bpg_op *op = &m->ops[m->producer[t]];
    bpg_ring *ring = &m->rings[t];
    const int64_t a = ring->started ? ring->hi : 0;
    uint16_t j;
    for (j = 0; j < op->n_inputs; j++) {
        int64_t lo_j, hi_j;
        needed(m, op, j, a, hi, &lo_j, &hi_j);
        rows(m, op->inputs[j], lo_j, hi_j, op->edge + j, compute, row);
    }
    if (compute && hi > a) {   /* kernels never nest (they run after the recursion): one static set of views */
        static bpg_view xs[BPG_MAX_INPUTS], y;
        for (j = 0; j < op->n_inputs; j++) xs[j] = bpg_view_of(m, op->inputs[j]);
        y = bpg_view_of(m, t);
        bpg_kernels[op->kind](op, xs, &y, row, (uint32_t)a, (uint32_t)hi);
    }
    if (!ring->started) ring->lo = 0;
    ring->started = 1;
    ring->hi = (uint32_t)hi;
    if (ring->hi - ring->lo > ring->max_rows) ring->max_rows = ring->hi - ring->lo;
    trim(m, op);
}

/* RowCache.rows: record what `edge` asks for, then extend t if it does not hold rows up to hi. */
static void rows(const bpg_model *m, uint16_t t, int64_t lo, int64_t hi, uint32_t edge, int compute, int32_t *row)
{
    m->asked[edge] = lo;
    if (!m->rings[t].started || (int64_t)m->rings[t].hi < hi) extend(m, t, hi, compute, row);
}

void bpg_stream_pull(const bpg_model *m, uint32_t hi, int compute, int32_t *row)
{
    bpg_ring *out = &m->rings[m->output];
    if (!out->started || out->hi < hi) extend(m, m->output, hi, compute, row);
}

/* The caller took the output's rows below `below` (run_streaming's drop_below). */
void bpg_stream_drop_output(const bpg_model *m, uint32_t below)
{
    if (below > m->rings[m->output].lo) m->rings[m->output].lo = below;
}
