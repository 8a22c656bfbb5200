/* bpgan_internal.h: the model tables (model_data.c, generated), the op kernels, the memory plan and
 * the contract's one rounding rule, shared by the decoder's translation units. */
#ifndef BPGAN_INTERNAL_H
#define BPGAN_INTERNAL_H

#include "bpgan_decoder.h"

/* Tensor dtypes (firmware_ref/formats.py DTYPE_RANGE). */
enum { BPG_INT8 = 0, BPG_UINT8 = 1, BPG_INT16 = 2, BPG_INT32 = 3 };
/* Op kinds: one per firmware_ref.ops.REGISTRY entry (the exporter's C_KERNELS maps names to these). */
enum { BPG_CONV2D = 0, BPG_CONV_TRANSPOSE2D, BPG_CONV1D, BPG_CONV_TRANSPOSE1D, BPG_ADD, BPG_CLIP,
       BPG_PIXEL_SHUFFLE, BPG_UPSAMPLE_NEAREST, BPG_CONCAT, BPG_NUM_KINDS };

#define BPG_ALIGN 8u     /* every arena slot starts on 8 bytes (int32 tensors, int32 row buffers) */

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
    const int8_t *weight;         /* convs: OI.. (conv) or IO.. (transposed), int8 in [-127, 127] */
    const int32_t *bias;
    const bpg_shift *shift;       /* convs: one per output channel; add: one */
    int32_t kernel[2];            /* kh, kw (1-D convs: 1, k) */
    int32_t stride[2];            /* sh, sw (1-D: 1, s) */
    int32_t pad[4];               /* top, left, bottom, right (1-D: 0, l, 0, r) */
    int32_t out_pad[2];           /* transposed convs */
    int32_t clip[2];
    int32_t align[2];             /* add */
    int32_t factor;               /* pixel_shuffle, upsample_nearest */
} bpg_op;

/* One planned arena slot: slot t < n_tensors is tensor t, slot n_tensors + i is op i's int32 row
 * buffer (convs only; 0 bytes otherwise). Lifetimes are fixed by the program (the exporter emits
 * them: tensor t lives from the step that writes it to the last step that reads it, the latent is
 * written at step 0, op i runs at step i + 1, the output lives to the end); sizes and offsets
 * depend on the stream. */
typedef struct { uint64_t offset, bytes; } bpg_slot;
typedef struct { uint32_t h, w; } bpg_shape;   /* spatial size; 1-D tensors have h = 1 */

typedef struct {
    uint32_t n_tensors, n_ops;
    const bpg_tensor_info *tensors;
    const bpg_op *ops;
    uint16_t input, output;          /* tensor ids: the latent (int8) and the decoded output */
    int spatial_dims;                /* 2: image streams; 1: audio streams */
    uint32_t downsample;             /* latent step in output steps (pixels, mel frames); 0: unchecked */
    uint64_t max_pixels, max_frames; /* the decoder limits this build was planned for */
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
    uint32_t n_slots;                /* n_tensors + n_ops */
    uint16_t *order;                 /* work: the placement order (largest slot first, ties by id) */
    const int32_t *slot_first, *slot_last;   /* lifetimes in steps */
    bpg_slot *slots;                 /* written by the plan */
    bpg_shape *shapes;               /* n_tensors */
    uint8_t *arena;
    uint64_t arena_bytes;
    size_t max_stream_bytes;
} bpg_model;

extern const bpg_model bpg_model_data;

/* A tensor in the arena. */
typedef struct { void *data; int dtype; uint32_t c, h, w; } bpg_view;

/* bpgan_ops.c: one function per op kind; y's shape and the row buffer come from the plan. */
typedef void (*bpg_kernel)(const bpg_op *op, const bpg_view *xs, bpg_view *y, int32_t *row);
extern const bpg_kernel bpg_kernels[BPG_NUM_KINDS];

/* bpgan_plan.c: shapes for a latent of size (h, w), then first-fit arena offsets; 0 or an error. */
int bpg_plan(const bpg_model *m, bpg_shape latent, char *err);
/* bpgan_ans.c: payload words -> symbol indices (uint8) in out (C, h, w) under the work rules. */
int bpg_ans_decode(const bpg_model *m, const uint8_t *payload, uint32_t payload_len, int sealed,
                   uint32_t c, uint64_t per_channel, uint32_t width, uint8_t *out, char *err);

int32_t bpg_load(const void *data, int dtype, uint64_t i);
void bpg_store(void *data, int dtype, uint64_t i, int32_t v);
uint32_t bpg_dtype_bytes(int dtype);
int bpg_error(char *err, const char *fmt, ...);

#endif
