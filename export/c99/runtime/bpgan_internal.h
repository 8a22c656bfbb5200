/* bpgan_internal.h: the model tables (model_data.c, generated), the op kernels, the memory plan and
 * the contract's one rounding rule, shared by the decoder's translation units. */
#ifndef BPGAN_INTERNAL_H
#define BPGAN_INTERNAL_H

#include "bpgan_decoder.h"

/* Tensor dtypes (firmware_ref/formats.py DTYPE_RANGE). */
enum { BPG_INT8 = 0, BPG_UINT8 = 1, BPG_INT16 = 2, BPG_INT32 = 3 };
/* Op kinds: one per firmware_ref.ops.REGISTRY entry (the exporter's C_KERNELS maps names to these). */
enum { BPG_CONV2D = 0, BPG_CONV_TRANSPOSE2D, BPG_CONV1D, BPG_CONV_TRANSPOSE1D, BPG_ADD, BPG_CLIP,
       BPG_PIXEL_SHUFFLE, BPG_UPSAMPLE_NEAREST, BPG_CONCAT, BPG_ARGMAX_UNPOOL, BPG_REFLECT_PAD, BPG_NUM_KINDS };

#define BPG_MAX_INPUTS 64u   /* registry: concat takes at most 64 inputs */
#define BPG_ALIGN 8u     /* every arena region starts on 8 bytes (int32 tensors, the int32 row buffer) */

static inline uint64_t bpg_round_up(uint64_t n) { return (n + BPG_ALIGN - 1) / BPG_ALIGN * BPG_ALIGN; }

/* C99 leaves >> of a negative value and the conversion of an out-of-range unsigned value to a
 * signed type implementation-defined; the rounding rule needs the arithmetic shift, so a compiler
 * that does otherwise fails here (a negative array size) instead of decoding wrong numbers. */
typedef char bpg_requires_arithmetic_shift[((-1 >> 1) == -1 && ((int64_t)-1 >> 1) == -1) ? 1 : -1];

/* The terms of firmware_ref/rounding.py shift_terms(k), emitted by the exporter per channel. */
typedef struct { int32_t left; int32_t right; int64_t rnd; } bpg_shift;

/* firmware_ref/rounding.py, the contract's one rounding rule, stated once in C:
 *   ((a << left) + rnd) >> right   (k > 0: round half up with an arithmetic shift; k <= 0: exact).
 * int64 so that one function serves the convs and adds (whose values fit int32 by the overflow
 * proof, firmware_ref/bounds.py) and the pixel conversion, whose (y + 2**f) * 255 needs 40 bits.
 * << is written as a multiplication: a left shift of a negative value is undefined in C99. */
static inline int64_t bpg_rounding_shift(int64_t a, const bpg_shift *t)
{
    return (a * ((int64_t)1 << t->left) + t->rnd) >> t->right;
}

static inline int32_t bpg_clamp(int64_t v, int32_t lo, int32_t hi)
{
    return (int32_t)(v < lo ? lo : (v > hi ? hi : v));
}

typedef struct { uint8_t dtype; uint32_t channels; } bpg_tensor_info;

typedef struct {
    uint8_t kind;
    uint16_t n_inputs;
    const uint16_t *inputs;       /* tensor ids */
    uint16_t output;
    uint16_t edge;                /* asked[edge + j] is input j's lowest row asked for last (bpgan_stream.c) */
    const int8_t *weight;         /* convs: OI.. (conv) or IO.. (transposed), int8 in [-127, 127] */
    const int32_t *bias;
    const bpg_shift *shift;       /* convs: one per output channel; add: one */
    int32_t kernel[2];            /* kh, kw (1-D convs: k, 1: time is the row axis) */
    int32_t stride[2];            /* sh, sw (1-D: s, 1) */
    int32_t pad[4];               /* top, left, bottom, right (1-D: l, 0, r, 0); convs, reflect_pad */
    int32_t out_pad[2];           /* transposed convs */
    int32_t clip[2];
    int32_t align[2];             /* add */
    int32_t factor;               /* pixel_shuffle, upsample_nearest, argmax_unpool */
} bpg_op;

typedef struct { uint32_t h, w; } bpg_shape;   /* rows (image rows, speech time steps), columns (1 for speech) */

/* A tensor's rows while streaming (firmware_ref/stripes.py RowCache): rows [lo, hi) are held, row r
 * in ring slot r % cap; `started` once computed from (RowCache's "held"). The latent is held whole. */
typedef struct { uint64_t offset; uint32_t cap, lo, hi, max_rows; uint8_t started; } bpg_ring;

typedef struct {
    uint32_t n_tensors, n_ops, n_edges;
    const bpg_tensor_info *tensors;
    const bpg_op *ops;
    uint16_t input, output;          /* tensor ids: the latent (int8) and the decoded output */
    const int16_t *producer;         /* per tensor: the op that writes it (-1: the latent) */
    const uint16_t *consumer_start;  /* per tensor t: its consumer edges are consumer_edge[start[t] .. start[t+1]) */
    const uint16_t *consumer_edge;   /* edge ids (op.edge + j): the ops reading t, as RowCache.consumers */
    int spatial_dims;                /* 2: image streams; 1: audio streams */
    uint32_t downsample;             /* latent step in output steps (pixels, mel frames); 0: unchecked */
    uint64_t max_pixels, max_frames; /* the decoder limits this build was planned for */
    uint32_t max_width;              /* images: the widest image (rings grow with the width) */
    uint32_t audio_hop;              /* bitstream.AUDIO_HOP */
    uint32_t max_symbols;            /* bitstream.MAX_SYMBOLS */
    const uint8_t *model_hash;       /* 16 bytes */
    uint32_t latent_channels, num_symbols, contexts;   /* contexts 0: a (C, L) prior, else K of (C, K, L) */
    uint32_t precision;              /* prior precision bits P */
    const int8_t *symbol_table;      /* symbol index -> generator input integer */
    const uint32_t *freq;            /* (rows, L) */
    const uint32_t *cdf;             /* (rows, L + 1), cdf[0] = 0, cdf[L] = 2**P */
    const uint16_t *cost;            /* (rows, L): ans.code_costs, 1/256 bit */
    const uint32_t *min_cost;        /* (C,): the cheapest code cost of each channel */
    int out_frac_bits;
    int64_t pixel_one;               /* image.to_pixels: 2**f for the output's frac_bits f */
    bpg_shift pixel_shift;           /* shift_terms(f + 1) */
    uint32_t gl_iters, nnls_iters;   /* speech back end: Griffin-Lim rounds, NNLS updates */
    bpg_ring *rings;                 /* n_tensors, written by the plan and the stream */
    int64_t *asked;                  /* n_edges */
    bpg_shape *shapes;               /* n_tensors */
    uint8_t *arena;
    uint64_t arena_bytes;
    size_t max_stream_bytes;
} bpg_model;

extern const bpg_model bpg_model_data;

/* A tensor in the arena: element (c, r, x) at ((r % cap) * row_pitch + c * chan_pitch + x) elements from
 * data. Rings are (row, channel, column): row_pitch = c * w, chan_pitch = w; the latent is the ANS
 * decoder's (channel, row, column): cap = h, row_pitch = w, chan_pitch = h * w. */
typedef struct { uint8_t *data; int dtype; uint32_t c, h, w, cap; uint64_t row_pitch, chan_pitch; } bpg_view;

/* Row r of channel c (r held: the stream schedule guarantees it). */
static inline void *bpg_row(const bpg_view *v, uint32_t c, uint64_t r)
{
    static const uint8_t bytes[4] = {1, 1, 2, 4};
    return v->data + ((r % v->cap) * v->row_pitch + (uint64_t)c * v->chan_pitch) * bytes[v->dtype];
}

/* bpgan_ops.c: one function per op kind; computes output rows [y0, y1) of y from the rows of xs
 * they reach (the row buffer: the conv's int32 accumulators of one output row). */
typedef void (*bpg_kernel)(const bpg_op *op, const bpg_view *xs, const bpg_view *y, int32_t *row,
                           uint32_t y0, uint32_t y1);
extern const bpg_kernel bpg_kernels[BPG_NUM_KINDS];

/* bpgan_plan.c: shapes for a latent of size (h, w), the rings (a dry run of the stream schedule for `rows`
 * output rows), the arena: [latent | side | rings, row buffer]; 0 or an error. */
typedef struct { uint64_t side_at, row_at; } bpg_layout;
int bpg_plan(const bpg_model *m, bpg_shape latent, uint32_t rows, uint64_t side, bpg_layout *at, char *err);
/* bpgan_stream.c: forget every window (the latent held whole); make output rows [.., hi) available. */
void bpg_stream_reset(const bpg_model *m);
void bpg_stream_pull(const bpg_model *m, uint32_t hi, int compute, int32_t *row);
void bpg_stream_drop_output(const bpg_model *m, uint32_t below);
bpg_view bpg_view_of(const bpg_model *m, uint32_t t);
/* bpgan_ans.c: payload words -> symbol indices (uint8) in out (C, h, w) under the work rules. */
int bpg_ans_decode(const bpg_model *m, const uint8_t *payload, uint32_t payload_len, int sealed,
                   uint32_t c, uint64_t per_channel, uint32_t width, uint8_t *out, char *err);

int32_t bpg_load(const void *data, int dtype, uint64_t i);
void bpg_store(void *data, int dtype, uint64_t i, int32_t v);
uint32_t bpg_dtype_bytes(int dtype);
int bpg_error(char *err, const char *fmt, ...);

#endif
