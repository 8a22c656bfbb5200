"""Decoding bounded by the stream: forged streams are refused fast, valid streams never, on both engines."""
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bpgan.firmware_ref import ans
from bpgan.firmware_ref.bitstream import BitstreamError, Header, unpack
from bpgan.firmware_ref.bitstream_decode import decode_bitstream
from bpgan.firmware_ref.program import ProgramError, load_program
from bpgan.toolkit.cli.decode import main as decode_main
from bpgan.toolkit.cli.encode import main as encode_main
from bpgan.toolkit.codec.bitstream import write_bitstream
from bpgan.toolkit.codec.entropy import encode_symbols
from bpgan.toolkit.codec.forgery import KINDS, forge, forged_1024
from bpgan.toolkit.codec.prior import quantize_frequencies
from bpgan.toolkit.datasets import embedded_image_path


@pytest.fixture(scope="module")
def stream(exported_tiny_run, tmp_path_factory):
    """(program, a valid 40x56 image stream, the folder)."""
    d = tmp_path_factory.mktemp("forged")
    photo = np.asarray(Image.open(embedded_image_path()).convert("RGB"))
    Image.fromarray(photo[100:140, 60:116]).save(d / "img.png")
    assert encode_main([str(exported_tiny_run), str(d / "img.png"), "-o", str(d / "img.bpg"), "--iters", "0"]) == 0
    return load_program(exported_tiny_run / "export"), (d / "img.bpg").read_bytes(), d


@pytest.mark.parametrize("engine", ["ref", "tvm"])
@pytest.mark.parametrize("version", [1, 2])
def test_the_forged_56_byte_stream_is_refused_in_under_100_ms(stream, engine, version):
    prog, _, _ = stream
    data = forged_1024(prog.model_hash(), prog.meta["config"]["downsample"], prog.prior().shape[0], version)
    assert len(data) == 56
    t0 = time.perf_counter()
    with pytest.raises(BitstreamError, match="cannot carry|empty payload"):
        decode_bitstream(prog, data, engine)
    assert time.perf_counter() - t0 < 0.1


def test_bpgan_decode_refuses_it_in_one_line(stream, tmp_path, capsys, exported_tiny_run):
    prog, _, _ = stream
    (tmp_path / "f.bpg").write_bytes(forged_1024(prog.model_hash(), prog.meta["config"]["downsample"],
                                                 prog.prior().shape[0]))
    for engine in ("ref", "tvm"):
        assert decode_main([str(exported_tiny_run), str(tmp_path / "f.bpg"), "-o", str(tmp_path / "x.png"),
                            "--engine", engine]) == 2
        err = capsys.readouterr().err
        assert "cannot carry" in err and err.count("\n") == 1 and not (tmp_path / "x.png").exists()


def test_max_pixels_is_a_decoder_option(stream, tmp_path, capsys, exported_tiny_run):
    prog, data, d = stream
    header = unpack(data)[0]
    pixels = header.latent_shape[1] * header.latent_shape[2] * header.stride ** 2
    assert decode_bitstream(prog, data, max_pixels=pixels)[1].shape[2:] == header.original_size
    with pytest.raises(BitstreamError, match="exceeds the decoder limit"):
        decode_bitstream(prog, data, max_pixels=pixels - 1)
    args = [str(exported_tiny_run), str(d / "img.bpg"), "-o", str(tmp_path / "x.png"), "--max-pixels"]
    assert decode_main(args + [str(pixels - 1)]) == 2 and "--max-pixels" in capsys.readouterr().err
    assert decode_main(args + [str(pixels)]) == 0


def _decode_forged(prog, data, engine):
    """-> 'ok' or the refusal; anything else (another exception, a wrong shape) fails the test."""
    try:
        header, y = decode_bitstream(prog, data, engine, max_pixels=1 << 16)
    except (BitstreamError, ProgramError) as e:
        assert "\n" not in str(e)
        return "refused"
    assert y.shape[2:] == header.original_size
    return "ok"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2 ** 32 - 1))
def test_forged_streams_are_decoded_or_refused_on_the_reference(stream, kind, seed):
    prog, data, _ = stream
    t0 = time.perf_counter()
    _decode_forged(prog, forge(kind, data, np.random.default_rng(seed), prog.prior()), "ref")
    assert time.perf_counter() - t0 < 2.0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2 ** 32 - 1))
def test_forged_streams_give_the_same_verdict_and_output_on_tvm(stream, kind, seed):
    prog, data, _ = stream
    forged = forge(kind, data, np.random.default_rng(seed), prog.prior())
    verdict = _decode_forged(prog, forged, "ref")
    assert _decode_forged(prog, forged, "tvm") == verdict
    if verdict == "ok":
        assert np.array_equal(decode_bitstream(prog, forged, "ref")[1], decode_bitstream(prog, forged, "tvm")[1])


def _skewed_table(rng, channels, centers):
    """Priors from near-deterministic to flat, with frequency-1 symbols (24-bit code lengths) in every row."""
    counts = (rng.dirichlet(np.full(centers, float(rng.choice([0.05, 0.5, 5.0]))), size=channels) * 1e7).astype(np.int64)
    return quantize_frequencies(counts)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), channels=st.integers(1, 4), centers=st.integers(2, 12),
       n=st.integers(0, 300), pick=st.sampled_from(["sampled", "rarest", "commonest", "zeros"]))
def test_valid_sealed_streams_always_pass_the_work_rules(seed, channels, centers, n, pick):
    """The budget rule is sound: whatever the prior and the symbols, a real encoder's stream decodes."""
    rng = np.random.default_rng(seed)
    table = _skewed_table(rng, channels, centers)
    if pick == "sampled":
        p = table / table.sum(axis=1, keepdims=True)
        symbols = np.stack([rng.choice(centers, size=n, p=row) for row in p])
    else:
        best = {"rarest": table.argmin(1), "commonest": table.argmax(1), "zeros": np.zeros(channels, int)}[pick]
        symbols = np.repeat(best[:, None], n, axis=1)
    payload = encode_symbols(symbols, table)
    assert np.array_equal(ans.decode_symbols(payload, table, symbols.shape), symbols)
    # and the rule has teeth: the same payload cannot carry a latent far beyond its code length
    costs = ans.code_costs(table).min(axis=1).sum()
    if costs > 0:
        more = ans.payload_budget(len(payload) // 4) // costs + 1
        with pytest.raises(ValueError, match="cannot carry"):
            ans.decode_symbols(payload, table, (channels, int(more)))


def test_version_1_streams_still_decode_and_their_empty_payloads_are_refused(stream):
    prog, data, _ = stream
    header = unpack(data)[0]
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, prog.prior().shape[1], header.latent_shape)
    v1 = Header(header.modality, header.model_hash, header.stride, header.original_size, header.padding,
                header.latent_shape, version=1)
    v2 = Header(*[getattr(v1, f) for f in ("modality", "model_hash", "stride", "original_size", "padding",
                                           "latent_shape")])
    y1 = decode_bitstream(prog, write_bitstream(v1, symbols, prog.prior()))[1]
    y2 = decode_bitstream(prog, write_bitstream(v2, symbols, prog.prior()))[1]
    assert np.array_equal(y1, y2)
    zeros = np.zeros(header.latent_shape, np.int64)  # version 1 codes all-zero symbols in an empty payload
    assert unpack(write_bitstream(v1, zeros, prog.prior()))[1] == b""
    with pytest.raises(BitstreamError, match="empty payload"):
        decode_bitstream(prog, write_bitstream(v1, zeros, prog.prior()))
    assert np.array_equal(decode_bitstream(prog, write_bitstream(v2, zeros, prog.prior()))[1],
                          decode_bitstream(prog, write_bitstream(v2, zeros, prog.prior()), "tvm")[1])


@pytest.mark.parametrize("name", ["bpgan-image-light", "bpgan-audio-light"])
def test_a_stream_of_the_other_modality_is_refused_in_one_line(name):
    """A consistent header of the other modality with this model's hash once reached numpy's unpacking."""
    from conftest import REPO
    prog = load_program(REPO / "zoo" / name / "export")
    data = (REPO / "zoo" / name / "export" / "golden.bpg").read_bytes()
    other = forge("other_modality", data, np.random.default_rng(0))
    assert unpack(other)[0].modality != unpack(data)[0].modality
    with pytest.raises(BitstreamError, match="this model decodes"):
        decode_bitstream(prog, other)
