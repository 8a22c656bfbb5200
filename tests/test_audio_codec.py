"""The audio generator through the export chain and the codec: reference == TVM bit for bit,
decode(encode(x)) == the integer generator on the encoder's symbols, any clip length, clear errors."""
import numpy as np
import pytest
import torch

from bpgan.firmware_ref.decoder import decode_latent, symbols_to_latent
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.audio.codec import bits_per_second, decode_audio, decode_mel, encode_audio, prior_from_clips, \
    samples_per_step
from bpgan.toolkit.audio.mel import HOP, num_frames
from bpgan.toolkit.audio.wav import SAMPLE_RATE, to_mono_8k
from bpgan.toolkit.codec.bitstream import BitstreamError, Header, write_bitstream
from bpgan.toolkit.codec.codec import latent_indices, torch_engine
from bpgan.toolkit.codec.fingerprint import model_hash
from bpgan.toolkit.training.checkpoint import save_model

from conftest import SHARED_DATA, fake_quant_lsb, float64_copy, max_partial_sum
from tiny_audio import speech_like, tiny_audio_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with the tiny QAT audio model, its prior (embedded clip) and its llvm export."""
    from bpgan.export.tvm.lower import TvmDecoder
    from bpgan.toolkit.cli import export as export_cli
    run = tmp_path_factory.mktemp("audio_run")
    model, quant = tiny_audio_model()
    save_model(run / "qat" / "model.pt", model, "bpgan-audio", quant, "qat")
    prior = prior_from_clips(model, "embedded", crops=6, crop_frames=64)
    np.save(run / "qat" / "prior.npy", prior)
    assert export_cli.main([str(run), "--target", "llvm"]) == 0
    prog = load_program(run / "export")
    tvm = TvmDecoder(run / "export" / "decoder-llvm.so")
    engines = {"ref": lambda s: decode_latent(prog, s), "tvm": lambda s: tvm(symbols_to_latent(prog, s))}
    return run, model, prior, prog, engines


def test_program_is_one_dimensional(run):
    _, _, _, prog, _ = run
    kinds = {op.kind for op in prog.ops}
    assert {"conv1d", "conv_transpose1d", "add"} <= kinds and not any(k.endswith("2d") for k in kinds)


def test_tvm_equals_reference_on_vectors_and_random_latents(run):
    run_dir, model, _, prog, engines = run
    with np.load(run_dir / "export" / "test_vectors.npz") as v:
        assert np.array_equal(engines["tvm"](v["symbols"]), v["output"])
    for seed, steps in [(0, 1), (1, 5), (2, 13)]:
        symbols = np.random.default_rng(seed).integers(0, model.cfg.num_centers, (1, model.cfg.latent_channels, steps))
        ref = engines["ref"](symbols)
        assert ref.shape == (1, 64, 8 * steps) and np.array_equal(engines["tvm"](symbols), ref)


def test_reference_equals_fake_quant_exactly(run):
    """The integer reference == Brevitas fake-quant on the whole audio generator, 0 LSB (as the image one:
    every partial sum is an integer below max_partial_sum < 2**24, so float64 and float32 both sum exactly);
    the codec's float32 torch engine gives the same int8 codes."""
    _, model, _, prog, engines = run
    assert max_partial_sum(prog) < 2 ** 24, "partial sums no longer exact in float32: compare the float64 copy only"
    symbols = np.random.default_rng(4).integers(0, model.cfg.num_centers, (1, model.cfg.latent_channels, 20))
    ref = engines["ref"](symbols)
    for m in (float64_copy(model), model):
        fq = fake_quant_lsb(m, symbols, prog.fmt(prog.outputs[0])[1])
        print(f"reference vs {m.quantizer.centers.dtype} fake-quant: {100 * (ref == fq).mean():.3f}% exact, "
              f"max |diff| {np.abs(ref - fq).max()} LSB")
        assert fq.shape == ref.shape and np.array_equal(ref, fq)
    codes = torch_engine(model)(symbols)
    assert codes.dtype == ref.dtype == np.int8 and np.array_equal(codes, ref)


@pytest.mark.parametrize("num_samples", [256, 3001, 4096, 12345])
def test_decode_of_encode_is_the_integer_generator_on_the_encoders_symbols(run, num_samples):
    _, model, prior, prog, engines = run
    audio = to_mono_8k(speech_like(num_samples / SAMPLE_RATE, seed=num_samples), SAMPLE_RATE)
    mhash = model_hash(model, prior)
    enc, prep = encode_audio(model, prior, audio, None, mhash)
    step = samples_per_step(model)
    assert enc.header.original_size == (num_samples,) and (num_samples + enc.header.padding[0]) % step == 0
    expected = decode_latent(prog, latent_indices(model, prep.x)[0].numpy()[None])[0, :, :num_frames(num_samples)]
    header, codes, samples = decode_audio(enc.data, prior, mhash, engines["ref"], step, iters=4)
    assert np.array_equal(codes, expected) and codes.shape == (64, -(-num_samples // HOP))
    assert samples.shape == (num_samples,) and samples.dtype == np.float32
    _, tvm_codes = decode_mel(enc.data, prior, mhash, engines["tvm"], step)
    assert np.array_equal(tvm_codes, codes)
    assert bits_per_second(len(enc.data), num_samples) == 8.0 * len(enc.data) * SAMPLE_RATE / num_samples


def test_encoding_is_deterministic_across_runs(run):
    _, model, prior, _, _ = run
    audio = to_mono_8k(speech_like(0.4), SAMPLE_RATE)
    assert encode_audio(model, prior, audio)[0].data == encode_audio(model, prior, audio)[0].data


def test_an_image_bitstream_or_a_foreign_model_is_refused(run):
    _, model, prior, _, engines = run
    mhash = model_hash(model, prior)
    symbols = np.zeros((model.cfg.latent_channels, 2, 3), np.int64)
    image = write_bitstream(Header("image", mhash, 16, (32, 48), (0, 0), symbols.shape), symbols, prior)
    with pytest.raises(BitstreamError, match="holds image; this model decodes audio streams"):
        decode_mel(image, prior, mhash, engines["ref"])
    enc, _ = encode_audio(model, prior, to_mono_8k(speech_like(0.3), SAMPLE_RATE), None, mhash)
    with pytest.raises(BitstreamError, match="made for model"):
        decode_mel(enc.data, prior, bytes(16), engines["ref"])


def test_an_image_model_refuses_audio(run):
    from bpgan.toolkit.models import build_model, model_config
    image_model = build_model("bpgan-image", model_config("bpgan-image", {}))
    with pytest.raises(ValueError, match="codes images"):
        encode_audio(image_model, run[2], to_mono_8k(speech_like(0.3), SAMPLE_RATE))


@pytest.mark.skipif(not (SHARED_DATA / "ljspeech").is_dir(), reason="LJ Speech not present")
def test_a_real_clip_round_trips_with_identical_codes_from_both_engines(run):
    from bpgan.toolkit.audio.wav import read_audio
    _, model, prior, _, engines = run
    audio = read_audio(SHARED_DATA / "ljspeech" / "LJ001-0008.wav")
    mhash = model_hash(model, prior)
    enc, _ = encode_audio(model, prior, audio, None, mhash)
    _, ref = decode_mel(enc.data, prior, mhash, engines["ref"])
    _, tvm = decode_mel(enc.data, prior, mhash, engines["tvm"])
    assert np.array_equal(ref, tvm) and ref.shape[1] == num_frames(len(audio.samples))


def test_batchnorm_1d_folds_into_the_conv():
    from bpgan.toolkit.models import build_model, model_config
    from bpgan.toolkit.quant import fold_batchnorm
    torch.manual_seed(0)
    cfg = model_config("bpgan-audio", {"encoder_widths": [8, 8, 8], "generator_widths": [8, 8, 8, 8],
                                       "latent_channels": 2, "res_blocks": 1})
    model = build_model("bpgan-audio", cfg)
    model.train()
    for _ in range(3):
        model(torch.randn(4, 64, 16))
    model.eval()
    folded = build_model("bpgan-audio", cfg.model_copy(update={"batchnorm": False})).eval()
    folded.generator.load_state_dict(fold_batchnorm(model.generator))
    z = torch.randn(2, 2, 5)
    assert torch.allclose(model.generator(z), folded.generator(z), atol=1e-5)


@pytest.mark.parametrize("version, digest", [(2, "d880d5e73aeeaf38"), (1, "5e43bf060df156d8")])
def test_pinned_audio_bitstream_bytes(version, digest):
    """The audio header (modality 2, one dimension in samples) with the shared coder: a change is a format change.

    If this fails on purpose, bump bitstream.VERSION and re-pin; never skip it.
    """
    import hashlib

    from bpgan.toolkit.codec.prior import quantize_frequencies
    table = quantize_frequencies(np.arange(1, 4 * 16 + 1).reshape(4, 16) % 7)
    header = Header("audio", bytes(range(16)), 512, (12345,), (12800 - 12345,), (4, 25), version)
    symbols = (np.arange(100) * 7 % 16).reshape(4, 25)
    assert hashlib.sha256(write_bitstream(header, symbols, table)).hexdigest()[:16] == digest


def _clips():
    clips = [("synthetic", None)]
    if (SHARED_DATA / "ljspeech").is_dir():
        clips.append(("real", SHARED_DATA / "ljspeech" / "LJ001-0008.wav"))
    return clips


@pytest.mark.parametrize("name, source", _clips())
def test_wav_round_trip_through_the_clis_gives_identical_wavs_from_both_engines(run, tmp_path, capsys, name, source):
    import soundfile as sf

    from bpgan.toolkit.audio.wav import read_audio, write_wav
    from bpgan.toolkit.cli.decode import main as decode_main
    from bpgan.toolkit.cli.encode import main as encode_main
    run_dir = run[0]
    clip = tmp_path / "in.wav"
    write_wav(clip, speech_like(0.7) if source is None else read_audio(source).samples[:6000])
    assert encode_main([str(run_dir), str(clip), "-o", str(tmp_path / "s.bpg"), "--iters", "2"]) == 0
    out = capsys.readouterr().out
    size = (tmp_path / "s.bpg").stat().st_size
    n = sf.info(str(clip)).frames
    assert f"{size} bytes, {8 * size * 8000 / n:.1f} bit/s" in out and "PESQ-NB" in out and "latent search" in out
    for engine in ("ref", "tvm"):
        assert decode_main([str(run_dir), str(tmp_path / "s.bpg"), "-o", str(tmp_path / f"{engine}.wav"),
                            "--engine", engine, "--gl-iters", "4"]) == 0
    assert (tmp_path / "ref.wav").read_bytes() == (tmp_path / "tvm.wav").read_bytes()
    from bpgan.export.c99 import emit_c99, native
    if native.compiler() is not None:   # the standalone C decoder writes the same .wav (default 32 iterations)
        from bpgan.firmware_ref.program import load_program
        report = emit_c99(load_program(run_dir / "export"), tmp_path / "c99", max_frames=400)
        assert decode_main([str(run_dir), str(tmp_path / "s.bpg"), "-o", str(tmp_path / "tvm32.wav"),
                            "--engine", "tvm"]) == 0
        got = native.run(native.build(report.out_dir), (tmp_path / "s.bpg").read_bytes(), tmp_path, suffix=".wav")
        assert got.returncode == 0 and got.output == (tmp_path / "tvm32.wav").read_bytes()
    info = sf.info(str(tmp_path / "ref.wav"))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (8000, 1, "PCM_16", n)
    assert decode_main([str(run_dir), str(tmp_path / "s.bpg"), "-o", str(tmp_path / "mel.npz")]) == 0
    with np.load(tmp_path / "mel.npz") as z:
        assert z["mel"].dtype == np.int8 and z["mel"].shape == (64, num_frames(n)) and int(z["num_samples"]) == n


def test_encode_cli_converts_stereo_44k_with_a_notice(run, tmp_path, capsys):
    import soundfile as sf

    from bpgan.toolkit.cli.encode import main as encode_main
    t = np.arange(44100) / 44100  # one second: STOI needs enough non-silent frames
    stereo = np.stack([0.2 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 500 * t)], axis=1)
    sf.write(tmp_path / "st.wav", stereo, 44100, subtype="PCM_16")
    assert encode_main([str(run[0]), str(tmp_path / "st.wav"), "-o", str(tmp_path / "st.bpg"), "--iters", "0"]) == 0
    out = capsys.readouterr().out
    assert "note: 2 channels downmixed to mono" in out and "note: resampled from 44100 Hz to 8000 Hz" in out


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"garbage" * 10, "not a readable audio file")])
def test_encode_cli_refuses_bad_audio_in_one_line(run, tmp_path, capsys, content, message):
    from bpgan.toolkit.cli.encode import main as encode_main
    (tmp_path / "bad.wav").write_bytes(content)
    assert encode_main([str(run[0]), str(tmp_path / "bad.wav"), "-o", str(tmp_path / "b.bpg")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("bpgan-encode: error:") and message in err
    assert not (tmp_path / "b.bpg").exists()


def test_firmware_ref_decodes_the_stream_to_the_same_mel(run):
    from bpgan.firmware_ref.bitstream_decode import decode_bitstream
    _, model, prior, prog, engines = run
    audio = to_mono_8k(speech_like(3001 / SAMPLE_RATE, seed=7), SAMPLE_RATE)
    enc, _ = encode_audio(model, prior, audio, None, prog.model_hash())
    header, y = decode_bitstream(prog, enc.data)
    _, codes = decode_mel(enc.data, prior, prog.model_hash(), engines["ref"], samples_per_step(model))
    assert y.shape == (1, 64, num_frames(3001)) and np.array_equal(y[0], codes)
