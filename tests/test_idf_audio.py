"""The lossless flow (idf-audio): its op, its coder, its stream, its model, its recipe, its CLI, exactly."""
import math
import struct
import zlib

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from hypothesis import given, settings, strategies as st

from bpgan.firmware_ref.bitstream import BitstreamError, unpack
from bpgan.firmware_ref.lossless import LosslessSpec, build_tables, level_sizes, wasted_bits
from bpgan.firmware_ref.lossless_stream import decode_lossless, encode_lossless, reference_engine
from bpgan.firmware_ref.ops.log2 import log2_abs
from bpgan.firmware_ref.program import ProgramError, load_program
from bpgan.firmware_ref.rans import RansDecoder, RansEncoder, row_tables
from bpgan.toolkit.models.idf_audio import IdfAudio, IdfAudioConfig
from bpgan.toolkit.models.idf_program import idf_program

TINY_IDF = {
    "name": "tiny-idf", "seed": 0,
    "model": {"name": "idf-audio", "levels": 3, "taps": 4, "hidden": 4, "predictors": 2, "block": 64},
    "data": {"crop": 2048, "val_crop": 4096, "val_count": 2},
    "loss": {"mse": 0.0, "rate": 1.0},
    "train": {"batch_size": 2, "lr": 0.003, "save_every": 4, "log_every": 4},
    "stages": {"float": {"steps": 8}, "qat": {"steps": 4, "lr": 0.001}, "finetune": {"steps": 2, "lr": 0.0005}},
}


def random_flow(levels=3, seed=0, predictors=3):
    """A QAT flow with random scale networks (so scale indices vary), 3 predictors per level, and its program."""
    torch.manual_seed(seed)
    model = IdfAudio(IdfAudioConfig(levels=levels, taps=6, hidden=4, predictors=predictors, block=64), quant=True)
    with torch.no_grad():
        for net in model.generator:
            net.mu.add_(torch.randn_like(net.mu) * 0.05)
            net.hidden.weight.normal_(0, 0.4)
            net.hidden.bias.normal_(0, 1.0)
            net.scale.weight.normal_(0, 0.4)
    return model.eval(), idf_program(model.eval())


@pytest.fixture(scope="module")
def flow():
    return random_flow()


def test_log2_abs_equals_mitchell_on_every_int16():
    x = np.arange(-2 ** 15, 2 ** 15, dtype=np.int64)
    got = log2_abs(x, 2, [0, 255], "uint8").astype(np.int64)
    u = np.abs(x) + 1
    n = np.array([int(v).bit_length() - 1 for v in u])
    want = np.array([4 * k + (4 * int(v)) // (1 << k) - 4 for v, k in zip(u, n)])
    assert np.array_equal(got, want)
    assert got[2 ** 15] == 0 and got.max() == 4 * 15 + (4 * (2 ** 15 + 1)) // 2 ** 15 - 4   # x = 0; x = -32768
    # within Mitchell's bound of the true log2 (at 2^-2, truncated): 0 <= 4 log2(u) - y < 4 * 0.0861 + 1
    err = 4 * np.log2(u) - got
    assert err.min() > -1e-9 and err.max() < 4 * 0.0861 + 1


def test_rans_round_trip_and_refusals():
    freq = build_tables(64, 8, 16)
    cdfs, costs = row_tables(freq, 16)
    rng = np.random.default_rng(1)
    enc, ops = RansEncoder(16), []
    for _ in range(3000):
        if rng.random() < 0.3:
            bits = int(rng.integers(1, 20))
            v = int(rng.integers(0, 1 << bits))
            enc.raw(v, bits)
            ops.append(("raw", bits, v))
        else:
            r = int(rng.integers(0, 64))
            s = int(rng.choice(17, p=freq[r] / freq[r].sum()))
            enc.symbol(cdfs[r], s)
            ops.append(("sym", r, s))
    payload = enc.payload()
    dec = RansDecoder(payload, 16)
    assert [dec.raw(a) if t == "raw" else dec.symbol(cdfs[a], costs[a]) for t, a, _ in ops] == [v for *_, v in ops]
    dec.finish()
    with pytest.raises(ValueError, match="8 bytes"):
        RansDecoder(payload[:4], 16)
    with pytest.raises(ValueError, match="whole number"):
        RansDecoder(payload[:-1], 16)
    dec = RansDecoder(payload, 16)
    with pytest.raises(ValueError, match="beyond the coded samples"):
        dec.finish()


def test_every_table_row_sums_to_the_precision_and_costs_something():
    freq = build_tables()
    assert freq.shape == (64, 129) and np.all(freq.sum(1) == 1 << 16) and freq.min() >= 1
    assert row_tables(freq, 16)[1] and min(min(r) for r in row_tables(freq, 16)[1]) >= 1


def test_qat_model_equals_its_program(flow):
    model, prog = flow
    run = reference_engine(prog)
    rng = np.random.default_rng(2)
    for level, net in enumerate(model.generator):
        for n in (1, 2, 7, 300):
            a = rng.integers(-2 ** 15, 2 ** 15, n).astype(np.int16)
            mu, s = run(level, a)
            with torch.no_grad():
                qmu, qs = net(torch.from_numpy(a.astype(np.float64))[None, None])
            assert np.array_equal(qmu[0].numpy(), mu) and np.array_equal(qs[0, 0].numpy(), s)
            assert len(set(s.tolist())) > 1 or n < 7


signals = st.one_of(
    st.integers(0, 5000).map(lambda n: np.zeros(n, np.int16)),
    st.tuples(st.integers(1, 5000), st.integers(1, 200)).map(
        lambda t: np.where((np.arange(t[0]) // t[1]) % 2, 32767, -32768).astype(np.int16)),
    st.tuples(st.integers(1, 5000), st.integers(0, 2 ** 31)).map(
        lambda t: np.random.default_rng(t[1]).integers(-2 ** 15, 2 ** 15, t[0]).astype(np.int16)),
    st.tuples(st.integers(1, 5000), st.integers(0, 2 ** 31)).map(   # a loud sine, clipped
        lambda t: np.clip(np.round(60000 * np.sin(np.arange(t[0]) * 0.01 * (1 + t[1] % 7))), -32768, 32767)
        .astype(np.int16)),
)


@settings(max_examples=40, deadline=None)
@given(x=signals, channels=st.integers(1, 2), shift=st.integers(0, 9))
def test_every_signal_comes_back_exactly(flow, x, channels, shift):
    _, prog = flow
    x = (x.astype(np.int64) >> shift << shift).astype(np.int16)   # wasted low bits, as 8-bit PCM has
    samples = np.stack([x, x[::-1]][:channels])
    data = encode_lossless(prog, samples, 22050)
    header, back = decode_lossless(prog, data)
    assert header.sample_rate == 22050 and header.latent_shape == (channels, len(x))
    assert back.dtype == np.int16 and np.array_equal(back, samples)


def test_wasted_low_bits_cost_nothing(flow):
    """8-bit PCM read as int16 (multiples of 256) costs exactly what the 8-bit values cost."""
    _, prog = flow
    x = np.random.default_rng(3).integers(-128, 128, (1, 8000))
    assert wasted_bits(x[0] * 256) == 8 and wasted_bits(np.zeros(5)) == 0 and wasted_bits(np.array([-32768])) == 15
    small = encode_lossless(prog, x.astype(np.int16), 8000)
    assert len(encode_lossless(prog, (x * 256).astype(np.int16), 8000)) == len(small)


def _forge(data: bytes, samples=None, payload=None) -> bytes:
    """Rewrite a lossless stream's sample count or payload with valid CRCs (what a forger would do)."""
    head_len = 4 + 4 + 16 + 4 + 8 + 4 + 12
    head, body = bytearray(data[:head_len]), data[head_len:] if payload is None else payload
    if samples is not None:
        struct.pack_into("<I", head, 28, samples)
    struct.pack_into("<II", head, head_len - 12, len(body), zlib.crc32(body))
    struct.pack_into("<I", head, head_len - 4, zlib.crc32(bytes(head[:head_len - 4])))
    return bytes(head) + body


def test_corrupt_and_forged_streams_are_one_line_errors(flow):
    _, prog = flow
    x = np.random.default_rng(4).integers(-3000, 3000, (1, 4000)).astype(np.int16)
    data = encode_lossless(prog, x, 16000)
    assert unpack(data)[0].modality == "lossless"
    cases = {
        "truncated": data[:-8],
        "flipped payload byte": data[:60] + bytes([data[60] ^ 0x40]) + data[61:],
        "forged: 2**27 samples from a small payload": _forge(data, samples=1 << 27),
        "forged: payload rewritten": _forge(data, payload=bytes(reversed(data[52:]))),
        "forged: more samples than coded": _forge(data, samples=4100),
    }
    for name, bad in cases.items():
        with pytest.raises(BitstreamError) as err:
            decode_lossless(prog, bad)
        assert "\n" not in str(err.value), name
    other = random_flow(seed=1, predictors=1)[1]
    with pytest.raises(BitstreamError, match="made for model"):
        decode_lossless(other, data)


def test_a_lossless_stream_is_refused_by_a_lossy_model_and_back(flow, exported_tiny_run):
    from bpgan.firmware_ref.bitstream_decode import decode_bitstream
    _, prog = flow
    image_prog = load_program(exported_tiny_run / "export")
    data = encode_lossless(prog, np.zeros((1, 10), np.int16), 8000)
    with pytest.raises(BitstreamError, match="made for model"):
        decode_bitstream(image_prog, data)
    with pytest.raises(ProgramError, match="not a lossless program"):
        LosslessSpec.of(image_prog)


def test_level_sizes_cover_every_length():
    for n in range(0, 70):
        sizes = level_sizes(n, 4)
        assert sizes[0] == n and all(sizes[i + 1] == math.ceil(sizes[i] / 2) for i in range(4))


def test_pcm_inputs(tmp_path):
    from bpgan.toolkit.audio.pcm import read_pcm
    from bpgan.toolkit.audio.wav import AudioError
    rng = np.random.default_rng(5)
    stereo = rng.integers(-2 ** 15, 2 ** 15, (300, 2)).astype(np.int16)
    sf.write(tmp_path / "s.wav", stereo, 44100, subtype="PCM_16")
    x, rate = read_pcm(tmp_path / "s.wav")
    assert rate == 44100 and np.array_equal(x, stereo.T)
    sf.write(tmp_path / "u8.wav", (stereo[:, 0] >> 8).astype(np.float64) / 128, 8000, subtype="PCM_U8")
    x, _ = read_pcm(tmp_path / "u8.wav")
    assert x.shape == (1, 300) and wasted_bits(x[0]) >= 8
    sf.write(tmp_path / "f.wav", rng.random(100) - 0.5, 8000, subtype="FLOAT")
    sf.write(tmp_path / "p24.flac", rng.random(100) - 0.5, 8000, subtype="PCM_24")
    for name in ("f.wav", "p24.flac"):
        with pytest.raises(AudioError, match="the lossless codec takes 8- or 16-bit PCM"):
            read_pcm(tmp_path / name)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really")
    with pytest.raises(AudioError, match="not a readable audio file"):
        read_pcm(tmp_path / "junk.wav")


def test_recipe_rules():
    from bpgan.toolkit.recipes import RecipeError, load_recipe
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        for loss, message in (({"mse": 1.0, "rate": 1.0}, "trains on its rate alone"),
                              ({"mse": 0.0, "rate": 0.0}, "trains on its rate alone")):
            p = Path(d) / "r.yaml"
            p.write_text(yaml.safe_dump({**TINY_IDF, "loss": loss}))
            with pytest.raises(RecipeError, match=message):
                load_recipe(p)


def test_tiny_recipe_trains_exports_and_round_trips_on_both_engines(tmp_path, capsys):
    from bpgan.export.pipeline import export_run
    from bpgan.toolkit.cli import decode as decode_cli
    from bpgan.toolkit.cli import encode as encode_cli
    from bpgan.toolkit.cli.quantize import main as quantize_main
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_IDF))
    run = tmp_path / "run"
    assert quantize_main([str(tmp_path / "tiny.yaml"), "--out", str(run), "--quiet"]) == 0
    report = export_run(run, "llvm")
    assert report.verified_on_host and report.qat_vs_reference == 0
    x = np.random.default_rng(6).integers(-9000, 9000, (333, 2)).astype(np.int16)
    sf.write(tmp_path / "in.wav", x, 11025, subtype="PCM_16")
    assert encode_cli.main([str(run), str(tmp_path / "in.wav"), "-o", str(tmp_path / "a.bpg")]) == 0
    assert "exact round trip" in capsys.readouterr().out
    for engine, suffix in (("ref", "wav"), ("tvm", "flac")):
        out = tmp_path / f"{engine}.{suffix}"
        assert decode_cli.main([str(run), str(tmp_path / "a.bpg"), "-o", str(out), "--engine", engine]) == 0
        back, rate = sf.read(out, dtype="int16")
        assert rate == 11025 and np.array_equal(back, x) and sf.info(str(out)).subtype == "PCM_16"
    assert decode_cli.main([str(run), str(tmp_path / "a.bpg"), "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    import bpgan   # the Python API: int16 samples in, the same samples out
    model = bpgan.load_model(run)
    data = bpgan.encode(model, x.T.copy(), sample_rate=11025)
    assert data == (tmp_path / "a.bpg").read_bytes() and np.array_equal(bpgan.decode(data, model), x.T)
    with pytest.raises(ValueError, match="int16"):
        bpgan.encode(model, x.T.astype(np.float32), sample_rate=11025)
