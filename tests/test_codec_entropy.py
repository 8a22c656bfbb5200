"""Entropy coding: exact round trips, rate close to the cross-entropy, and constriction held to our table."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import constriction
from bpgan.firmware_ref.ans import decode_raw
from bpgan.toolkit.codec.entropy import EntropyError, channel_models, decode_symbols, encode_symbols
from bpgan.toolkit.codec.prior import cross_entropy_bits, quantize_frequencies


def _table(rng, channels, centers):
    return quantize_frequencies((rng.dirichlet(np.full(centers, 0.5), size=channels) * 1e6).astype(np.int64))


def _sample(rng, table, spatial):
    p = table / table.sum(axis=1, keepdims=True)
    return np.stack([rng.choice(table.shape[1], size=spatial, p=row) for row in p])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), channels=st.integers(1, 5), centers=st.integers(2, 16),
       h=st.integers(0, 9), w=st.integers(1, 9))
def test_decode_of_encode_is_identity(seed, channels, centers, h, w):
    rng = np.random.default_rng(seed)
    table = _table(rng, channels, centers)
    symbols = rng.integers(0, centers, size=(channels, h, w))
    payload = encode_symbols(symbols, table)
    assert np.array_equal(decode_symbols(payload, table, symbols.shape), symbols)


def test_coded_length_is_close_to_the_cross_entropy():
    rng = np.random.default_rng(1)
    table = _table(rng, 8, 8)
    symbols = _sample(rng, table, (32, 48))
    bits = 8 * len(encode_symbols(symbols, table))
    ideal = cross_entropy_bits(symbols, table)
    assert ideal <= bits <= ideal * 1.001 + 96  # ANS: a 64-bit final state and whole 32-bit words


def test_constriction_model_is_the_integer_table():
    """Probe every CDF boundary through the ANS decoder: quantile q decodes to symbol i iff cdf[i] <= q < cdf[i+1].

    With a two-word stream [q, 1] the decoder state is 2**32 + q and its quantile is q (24-bit precision).
    """
    rng = np.random.default_rng(2)
    table = _table(rng, 4, 12)
    table[0] = quantize_frequencies(np.array([[0, 0, 10**9, 0, 1, 0, 0, 0, 0, 0, 0, 7]]))[0]  # extremes
    for row, model in zip(table, channel_models(table)):
        cdf = np.concatenate([[0], np.cumsum(row.astype(np.int64))])
        for i in range(len(row)):
            for q in {cdf[i], cdf[i + 1] - 1}:
                coder = constriction.stream.stack.AnsCoder(np.array([q, 1], dtype=np.uint32))
                assert coder.decode(model, 1)[0] == i


def test_encoding_refuses_symbols_outside_the_alphabet_or_wrong_channels():
    table = quantize_frequencies(np.ones((2, 4), int))
    with pytest.raises(EntropyError, match="outside"):
        encode_symbols(np.full((2, 3), 4), table)
    with pytest.raises(EntropyError, match="channels"):
        encode_symbols(np.zeros((3, 3), int), table)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64), n=st.integers(0, 50))
def test_decoding_garbage_never_crashes(data, n):
    table = quantize_frequencies(np.array([[1, 50, 3, 9], [7, 7, 7, 7]]))
    try:
        out = decode_symbols(data, table, (2, n))
    except EntropyError:
        return
    assert out.shape == (2, n) and out.min(initial=0) >= 0 and out.max(initial=0) < 4


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), garbage=st.booleans())
def test_plain_python_reference_decoder_equals_constriction(seed, n, garbage):
    """firmware_ref/ans.py is the spec a device decoder ports: same symbols and end state, even on garbage."""
    rng = np.random.default_rng(seed)
    table = _table(rng, 3, 6)
    if garbage:
        words = rng.integers(1, 2**32, size=int(rng.integers(0, 6)), dtype=np.uint64).astype(np.uint32)
    else:
        words = np.frombuffer(encode_symbols(_sample(rng, table, (n,)), table, sealed=bool(seed % 2)), dtype="<u4")
    coder = constriction.stream.stack.AnsCoder(words.astype(np.uint32))
    expected = np.stack([coder.decode(m, n) for m in channel_models(table)])
    got, state, left = decode_raw(words.astype("<u4").tobytes(), table, (3, n))
    rest = coder.get_compressed()  # constriction's remaining stack: the words left, then the state
    assert np.array_equal(got, expected) and (left == 0 and state == 0) == coder.is_empty()
    assert state == sum(int(w) << (32 * i) for i, w in enumerate(rest[left:]))
