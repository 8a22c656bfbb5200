/* bpgan_ans.c: the ANS decoder of firmware_ref/ans.py (its docstring is the specification), with the
 * same bounded-work rules for sealed (version 2) streams. State: 64 bits; words: 32 bits, read from the
 * end of the little-endian word array. The state never exceeds 2**64 - 1: refills happen only below
 * 2**32, and a symbol step maps state to (state >> P) * f + (q - cdf) <= state since f <= 2**P.
 * Code costs are int64 sums: up to 2**28 symbols of up to 24 * 256 units exceed int32. */
#include "bpgan_internal.h"

#define BPG_WORD 32
#define BPG_SEAL ((uint64_t)1 << BPG_WORD)
#define BPG_COST_BITS 8

static uint32_t word_at(const uint8_t *p, uint32_t i)
{
    p += 4u * (uint64_t)i;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ans.payload_budget: the most code length (1/256 bit) a sealed payload of n words can carry. */
static int64_t payload_budget(uint32_t n)
{
    return n < 1 ? 0 : (((int64_t)BPG_WORD * n - BPG_WORD) << BPG_COST_BITS);
}

/* The s with cdf[s] <= q < cdf[s + 1] (cdf strictly increasing, cdf[0] = 0 <= q < cdf[L] = 2**P). */
static uint32_t find_symbol(const uint32_t *cdf, uint32_t num, uint32_t q)
{
    uint32_t lo = 0, hi = num;   /* cdf[lo] <= q < cdf[hi] */
    while (hi - lo > 1) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] <= q) lo = mid; else hi = mid;
    }
    return lo;
}

int bpg_ans_decode(const bpg_model *m, const uint8_t *payload, uint32_t payload_len, int sealed,
                   uint32_t c, uint64_t per_channel, uint32_t width, uint8_t *out, char *err)
{
    const uint32_t L = m->num_symbols, words = payload_len / 4;
    const uint64_t mask = ((uint64_t)1 << m->precision) - 1;
    uint32_t left = words, ch;
    uint64_t state = 0, n;
    int64_t budget = 0, spent = 0;
    if (payload_len % 4)
        return bpg_error(err, "entropy decoding failed: payload length %lu is not a whole number of 32-bit words",
                         (unsigned long)payload_len);
    if (sealed) {
        int64_t cheapest = 0;
        if (words < 2)
            return bpg_error(err, "entropy decoding failed: payload of %lu bytes cannot carry a sealed ANS state "
                             "(8 bytes)", (unsigned long)payload_len);
        budget = payload_budget(words);
        for (ch = 0; ch < c; ch++) cheapest += (int64_t)m->min_cost[ch];
        if (cheapest * (int64_t)per_channel > budget)   /* ans.minimum_cost: < 2**13 * 2**16 * 2**28 */
            return bpg_error(err, "entropy decoding failed: payload of %lu bytes cannot carry %lu symbols under "
                             "this prior", (unsigned long)payload_len, (unsigned long)(per_channel * c));
    } else if (words == 0) {
        return bpg_error(err, "entropy decoding failed: empty payload for a non-empty latent");
    }
    if (left) {
        state = word_at(payload, --left);
        if (state == 0) return bpg_error(err, "entropy decoding failed: ANS stream ends in a zero word");
        while (left && state < BPG_SEAL) state = state << BPG_WORD | word_at(payload, --left);
    }
    for (ch = 0; ch < c; ch++) {
        uint8_t *row_c = out + (uint64_t)ch * per_channel;
        for (n = 0; n < per_channel; n++) {
            uint64_t r = ch;
            const uint32_t *cdf;
            uint32_t s;
            uint64_t q;
            if (m->contexts) {   /* context.py: up = the symbol above (L in row 0), prev = channel c - 1's */
                const uint32_t up = n >= width ? row_c[n - width] : L;
                const uint32_t prev = ch > 0 ? out[(uint64_t)(ch - 1) * per_channel + n] : 0;
                r = (uint64_t)ch * m->contexts + (uint64_t)up * L + prev;
            }
            cdf = m->cdf + r * (L + 1);
            q = state & mask;
            s = find_symbol(cdf, L, (uint32_t)q);
            state = (state >> m->precision) * m->freq[r * L + s] + (q - cdf[s]);
            if (state < BPG_SEAL && left) state = state << BPG_WORD | word_at(payload, --left);
            row_c[n] = (uint8_t)s;
            if (sealed) {
                spent += m->cost[r * L + s];
                if (spent > budget || (state < BPG_SEAL && !left))
                    return bpg_error(err, "entropy decoding failed: payload exhausted before the header's latent "
                                     "was decoded");
            }
        }
    }
    if (left || state != (sealed ? BPG_SEAL : 0))
        return bpg_error(err, "entropy decoding failed: payload holds data beyond the coded symbols");
    return 0;
}
