"""Context prior: contexts from already-decoded neighbours only, exact coding, a real rate saving."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import constriction
from bpgan.firmware_ref.ans import decode_symbols as decode_checked
from bpgan.toolkit.codec.context import (
    context_ids,
    estimate_context_prior,
    num_contexts,
    row_contexts,
)
from bpgan.toolkit.codec.entropy import decode_symbols, encode_symbols
from bpgan.toolkit.codec.prior import PRECISION_BITS, cross_entropy_bits, estimate_prior, quantize_frequencies


def _correlated(rng, n, c, h, w, L=8, keep=0.8):
    """Latents whose symbols mostly repeat the one above or in the previous channel."""
    s = rng.integers(0, L, (n, c, h, w))
    for ch in range(c):
        for i in range(h):
            src = s[:, ch, i - 1] if i else (s[:, ch - 1, i] if ch else s[:, ch, i])
            mask = rng.random((n, w)) < keep
            s[:, ch, i] = np.where(mask, src, s[:, ch, i])
    return s


def test_context_ids_follow_the_definition():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, (3, 4, 6))
    ctx = context_ids(s, 5)
    for c in range(3):
        for i in range(4):
            assert np.array_equal(ctx[c, i], row_contexts(s, c, i, 5))
            for j in range(6):
                up = s[c, i - 1, j] if i else 5
                prev = s[c - 1, i, j] if c else 0
                assert ctx[c, i, j] == up * 5 + prev
    assert ctx.max() < num_contexts(5)


def test_context_table_rows_are_valid_frequency_tables():
    rng = np.random.default_rng(1)
    table = estimate_context_prior([_correlated(rng, 4, 3, 5, 7)], 3, 8)
    assert table.shape == (3, num_contexts(8), 8) and table.dtype == np.uint32
    assert (table >= 1).all() and (table.astype(np.int64).sum(-1) == 1 << PRECISION_BITS).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c=st.integers(1, 4), h=st.integers(0, 6), w=st.integers(0, 7),
       L=st.integers(2, 9))
def test_context_coding_round_trips_and_matches_the_reference_decoder(seed, c, h, w, L):
    rng = np.random.default_rng(seed)
    table = estimate_context_prior([_correlated(rng, 2, c, 4, 5, L)], c, L)
    symbols = _correlated(rng, 1, c, h, w, L)[0]
    payload = encode_symbols(symbols, table)
    assert np.array_equal(decode_symbols(payload, table, symbols.shape), symbols)
    assert np.array_equal(decode_checked(payload, table, symbols.shape), symbols)  # every work rule passes


def test_constriction_row_family_is_the_integer_table():
    """The per-symbol (lazy) Categorical built from f - 1 has exactly the integer CDF, as the concrete one does."""
    rng = np.random.default_rng(2)
    family = constriction.stream.model.Categorical(perfect=False)
    for scale in (10, 10**4, 10**9):
        row = quantize_frequencies((rng.dirichlet(np.full(9, 0.3), size=1) * scale).astype(np.int64))[0]
        cdf = np.concatenate([[0], np.cumsum(row.astype(np.int64))])
        for i in range(9):
            for q in {cdf[i], cdf[i + 1] - 1}:
                coder = constriction.stream.stack.AnsCoder(np.array([q, 1], dtype=np.uint32))
                assert coder.decode(family, (row.astype(np.float64) - 1.0)[None])[0] == i


def test_context_prior_saves_rate_on_correlated_latents():
    rng = np.random.default_rng(3)
    train = [_correlated(rng, 8, 4, 16, 16)]
    flat, ctx = estimate_prior(train, 4, 8), estimate_context_prior(train, 4, 8)
    symbols = _correlated(rng, 1, 4, 16, 24)[0]
    flat_bits, ctx_bits = 8 * len(encode_symbols(symbols, flat)), 8 * len(encode_symbols(symbols, ctx))
    assert ctx_bits < 0.8 * flat_bits
    assert abs(ctx_bits - cross_entropy_bits(symbols, ctx)) <= 96
