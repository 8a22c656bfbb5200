"""The bitstream: round trips, one clear error class for every broken file, never a crash or a hang."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpgan.toolkit.codec.bitstream import (
    MAGIC,
    BitstreamError,
    Header,
    pack,
    read_bitstream,
    unpack,
    write_bitstream,
)
from bpgan.toolkit.codec.prior import quantize_frequencies

HASH = bytes(range(16))
TABLE = quantize_frequencies(np.array([[1, 40, 300, 40, 1, 1, 9, 2], [5, 5, 5, 5, 5, 5, 5, 5],
                                       [0, 0, 900, 100, 0, 0, 0, 0]]))


def _image(h=37, w=50, stride=16, channels=3, seed=0):
    lat = (-(-h // stride), -(-w // stride))
    header = Header("image", HASH, stride, (h, w), (lat[0] * stride - h, lat[1] * stride - w), (channels,) + lat)
    p = TABLE / TABLE.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    symbols = np.stack([rng.choice(8, size=lat, p=row) for row in p])
    return header, symbols, write_bitstream(header, symbols, TABLE)


VALID = _image()[2]


def test_read_of_write_gives_back_header_and_symbols():
    header, symbols, data = _image()
    got_header, got = read_bitstream(data, TABLE, HASH)
    assert got_header == header and np.array_equal(got, symbols)
    assert len(data) == header.header_bytes() + len(unpack(data)[1])


def test_audio_header_round_trips():
    header = Header("audio", HASH, 32, (1000,), (24,), (2, 32))
    assert unpack(pack(header, b"\x01\x02\x03\x04"))[0] == header


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"PNG!" + d[4:], "wrong magic"),
    (lambda d: d[:4] + b"\x03" + d[5:], "version 3"),
    (lambda d: d[:20], "truncated"),
    (lambda d: d[:-3], "truncated"),
    (lambda d: d + b"\x00", "trailing garbage"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 0x10]), "payload \\(CRC"),
    (lambda d: d[:30] + bytes([d[30] ^ 1]) + d[31:], "header \\(CRC"),
    (lambda d: b"", "truncated"),
])
def test_each_broken_file_gets_its_one_line_error(mutate, message):
    with pytest.raises(BitstreamError, match=message) as err:
        read_bitstream(mutate(VALID), TABLE, HASH)
    assert "\n" not in str(err.value)


def test_a_stream_for_another_model_is_refused_naming_both_hashes():
    other = bytes(16)
    with pytest.raises(BitstreamError, match=f"model {HASH.hex()}, not this model {other.hex()}"):
        read_bitstream(VALID, TABLE, other)


def test_inconsistent_geometry_is_refused_on_both_sides():
    bad = Header("image", HASH, 16, (37, 50), (11, 14), (3, 4, 4))  # 37 + 11 != 4 * 16
    assert "latent size" in bad.check()
    with pytest.raises(ValueError, match="cannot pack"):
        pack(bad, b"")
    with pytest.raises(ValueError, match="do not match"):
        write_bitstream(_image()[0], np.zeros((3, 1, 1), int), TABLE)


def test_header_size_fields_cannot_request_an_unbounded_decode():
    header = Header("image", HASH, 32, (65535 * 32,) * 2, (0, 0), (256, 65535, 65535))
    assert "exceeds" in header.check()


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.integers(0, len(VALID)), tail=st.binary(max_size=8))
def test_mutated_or_truncated_streams_decode_exactly_or_raise_bitstream_error(edits, cut, tail):
    data = bytearray(VALID)
    for pos, val in edits:
        data[pos] = val
    data = bytes(data[:cut]) + tail
    try:
        header, symbols = read_bitstream(data, TABLE, HASH)
    except BitstreamError as e:
        assert "\n" not in str(e)
        return
    # Survived every check: then it must be the original stream, never silent garbage.
    assert data == VALID
    assert np.array_equal(symbols, read_bitstream(VALID, TABLE, HASH)[1])


@settings(max_examples=300, deadline=2000)
@given(data=st.one_of(st.binary(max_size=128), st.binary(max_size=96).map(lambda b: MAGIC + b"\x01" + b)))
def test_random_bytes_never_crash(data):
    with pytest.raises(BitstreamError):
        read_bitstream(data, TABLE, HASH)


@pytest.mark.parametrize("version, sizes, digests", [
    (2, (84, 68), ("14eb57dbb1c12e6c", "5232e8a52e5467d8")),
    (1, (80, 68), ("cf3e23d13037d54a", "2ceeb15272d33d7e")),  # the bytes version 1 wrote: still written, still read
])
def test_pinned_bitstream_bytes(version, sizes, digests):
    """Format, ANS coder and prior quantization together: any change to the bytes is a format change.

    If this fails on purpose, bump bitstream.VERSION and re-pin; never skip it. Both versions decode
    through firmware_ref's decoder (version 1: unsealed payload, version 2: sealed).
    """
    import hashlib

    from bpgan.firmware_ref.bitstream_decode import StreamModel, read_symbols
    from bpgan.toolkit.codec.context import estimate_context_prior
    header = Header("image", HASH, 16, (20, 40), (12, 8), (3, 2, 3), version)
    symbols = (np.arange(18) * 5 % 8).reshape(3, 2, 3)
    flat = write_bitstream(header, symbols, TABLE)
    context_table = estimate_context_prior([(np.arange(3 * 3 * 4 * 5) * 7 % 8).reshape(3, 3, 4, 5)], 3, 8)
    ctx = write_bitstream(header, symbols, context_table)
    assert (len(flat), len(ctx)) == sizes
    assert (hashlib.sha256(flat).hexdigest()[:16], hashlib.sha256(ctx).hexdigest()[:16]) == digests
    for data, table in ((flat, TABLE), (ctx, context_table)):
        got_header, got = read_symbols(StreamModel(table, HASH), data)
        assert got_header == header and np.array_equal(got, symbols)
