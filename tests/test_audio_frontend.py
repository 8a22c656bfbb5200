"""Speech front and back end: file conversion, the log-mel contract, Griffin-Lim, metrics, clear errors."""
import numpy as np
import pytest
import soundfile as sf

from bpgan.toolkit.audio.mel import DB_CEIL, DB_FLOOR, HOP, N_MELS, db_to_unit, mel_to_wav, pad_frames, unit_to_db, \
    wav_to_mel
from bpgan.toolkit.audio.wav import MIN_SAMPLES, SAMPLE_RATE, AudioError, read_audio, to_pcm16, write_wav
from bpgan.toolkit.datasets import EMBEDDED_CLIP, MelCrops
from bpgan.toolkit.evaluation.audio_metrics import mel_lsd, pesq_nb, stoi, waveform_scores

from conftest import SHARED_DATA
from tiny_audio import speech_like


@pytest.mark.parametrize("n", [MIN_SAMPLES, 1000, 4096, 4097])
def test_mel_has_64_bands_and_one_frame_per_started_hop(n):
    mel = wav_to_mel(speech_like(n / SAMPLE_RATE))
    assert mel.shape == (N_MELS, -(-n // HOP)) and mel.dtype == np.float32
    assert mel.min() >= -1 and mel.max() <= 1


def test_db_mapping_is_linear_between_floor_and_ceiling():
    db = np.array([DB_FLOOR - 10, DB_FLOOR, (DB_FLOOR + DB_CEIL) / 2, DB_CEIL, DB_CEIL + 5])
    assert np.allclose(db_to_unit(db), [-1, -1, 0, 1, 1])
    assert np.allclose(unit_to_db(db_to_unit(db[1:4])), db[1:4])


def test_pad_frames_repeats_the_last_frame_to_the_stride():
    mel = np.arange(2 * 11, dtype=np.float32).reshape(2, 11)
    padded = pad_frames(mel, 8)
    assert padded.shape == (2, 16) and np.array_equal(padded[:, :11], mel)
    assert np.all(padded[:, 11:] == mel[:, -1:])


def test_stereo_44k_is_downmixed_and_resampled_with_notes(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 220 * t)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 44100, subtype="PCM_16")
    audio = read_audio(tmp_path / "s.wav")
    assert audio.source_rate == 44100 and audio.source_channels == 2
    assert any("downmixed" in n for n in audio.notes) and any("44100 Hz to 8000 Hz" in n for n in audio.notes)
    assert abs(len(audio.samples) - 8000) <= 1


def test_an_8k_mono_file_is_read_without_notes(tmp_path):
    write_wav(tmp_path / "m.wav", speech_like(0.1))
    audio = read_audio(tmp_path / "m.wav")
    assert audio.notes == () and len(audio.samples) == 800


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"RIFF\x00\x00 not a wave file at all", "not a readable audio file"),
])
def test_unreadable_files_give_one_line_errors(tmp_path, content, message):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(AudioError, match=message) as e:
        read_audio(tmp_path / "bad.wav")
    assert "\n" not in str(e.value)


def test_zero_sample_and_too_short_files_are_refused(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.int16), 8000, subtype="PCM_16")
    with pytest.raises(AudioError, match="empty"):
        read_audio(tmp_path / "zero.wav")
    write_wav(tmp_path / "short.wav", np.zeros(MIN_SAMPLES - 1))
    with pytest.raises(AudioError, match="too short"):
        read_audio(tmp_path / "short.wav")
    with pytest.raises(AudioError, match="no audio file"):
        read_audio(tmp_path / "missing.wav")


def test_pcm16_rounds_half_up_and_clips():
    x = np.array([0.5 / 32768, -0.5 / 32768, 1.5 / 32768, 2.0, -2.0, 32767 / 32768])
    assert to_pcm16(x).tolist() == [1, 0, 2, 32767, -32768, 32767]


def test_wav_written_is_16_bit_8k_and_reads_back_exactly(tmp_path):
    y = speech_like(0.2)
    write_wav(tmp_path / "o.wav", y)
    info = sf.info(str(tmp_path / "o.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    back, _ = sf.read(str(tmp_path / "o.wav"), dtype="int16")
    assert np.array_equal(back, to_pcm16(y))


def test_griffin_lim_inverts_the_mel_closely_and_deterministically():
    y = speech_like(0.5)
    mel = wav_to_mel(y)
    a, b = mel_to_wav(mel, len(y), iters=16), mel_to_wav(mel, len(y), iters=16)
    assert len(a) == len(y) and np.array_equal(a, b)
    lsd = mel_lsd(mel, wav_to_mel(a))
    print(f"mel LSD after Griffin-Lim (16 iterations): {lsd:.2f} dB")
    assert lsd < 6.0


def test_metrics_rank_identity_above_noise():
    rng = np.random.default_rng(0)
    y = speech_like(1.0)
    noisy = y + 0.05 * rng.normal(size=y.size).astype(np.float32)
    assert pesq_nb(y, y) > 4.0 and stoi(y, y) > 0.99 and mel_lsd(wav_to_mel(y), wav_to_mel(y)) == 0
    clean, dirty = waveform_scores(y, y), waveform_scores(y, noisy)
    assert dirty["pesq_nb"] < clean["pesq_nb"] and dirty["mel_lsd_db"] > 1.0


def test_mel_crops_from_the_embedded_clip_and_held_out_names():
    data = MelCrops("embedded", 64)
    assert data.paths == [EMBEDDED_CLIP]
    import torch
    batch = data.random_batch(3, torch.Generator().manual_seed(0))
    assert batch.shape == (3, N_MELS, 64) and torch.equal(data.fixed_crops(2), data.fixed_crops(2))


@pytest.mark.skipif(not (SHARED_DATA / "ljspeech").is_dir(), reason="LJ Speech not present")
def test_held_out_clips_are_kept_out_of_training():
    folder = str(SHARED_DATA / "ljspeech")
    from bpgan.toolkit.datasets import audio_paths
    held = ["LJ001-0029.wav", "LJ001-0030.wav"]
    train = audio_paths(folder, exclude=held)
    assert not {p.name for p in train} & set(held) and [p.name for p in audio_paths(folder, only=held)] == held
    with pytest.raises(ValueError, match="no clip named"):
        audio_paths(folder, only=["nope.wav"])


def test_compare_reads_speaker_subfolders_after_the_folders_own_clips(tmp_path):
    """bpgan-compare --data on LibriSpeech's layout (one folder per speaker): every clip, folder by folder;
    --per-folder N keeps each folder's first N."""
    from bpgan.toolkit.evaluation.compare_audio import audio_paths as compare_paths
    for name in ("b/2.flac", "b/1.flac", "a/3.wav", "0.wav", "a/notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [str(p.relative_to(tmp_path)) for p in compare_paths(tmp_path)] == ["0.wav", "a/3.wav", "b/1.flac",
                                                                                 "b/2.flac"]
    from bpgan.toolkit.evaluation.compare_audio import first_per_folder
    assert [p.name for p in first_per_folder(compare_paths(tmp_path), 1)] == ["0.wav", "3.wav", "1.flac"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        compare_paths(tmp_path / "empty")
