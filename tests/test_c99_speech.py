"""The C99 speech back end (export/c99/runtime/bpgan_speech.c, bpgan_speech_frame.c) equals firmware_ref.speech.mel_to_pcm16 bit for bit.

The back end streams (a wavefront over the Griffin-Lim rounds, state independent of the clip's length): a small
driver (written here) reads a raw int8 mel and writes raw int16 LE PCM, either through the whole-clip wrapper
bpg_speech_to_pcm16 or by feeding frames one at a time and collecting the chunks; it runs the back end on a work
buffer of exactly bpg_speech_stream_bytes(iters) followed by a guard that must stay untouched. It is built with
the generated tables (export/c99/speech_tables.py) natively, and for aarch64 (-mgeneral-regs-only, run under
qemu-aarch64) and Cortex-M4 (compile only, with its stack usage) where those toolchains are installed.
"""
import re
import shutil
import subprocess

import numpy as np
import pytest

from bpgan.export.c99.speech_tables import speech_stream_bytes, speech_tables_c
from bpgan.firmware_ref.speech import mel_to_pcm16
from conftest import REPO

RUNTIME = REPO / "export" / "c99" / "runtime"
SOURCES = [RUNTIME / "bpgan_speech.c", RUNTIME / "bpgan_speech_frame.c"]
GOLDEN = REPO / "zoo" / "bpgan-audio-light" / "export" / "golden.npz"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", f"-I{RUNTIME}"]

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bpgan_speech.h"

#define GUARD 4096u
static uint64_t arena[(1u << 20) / 8];   /* work (bpg_speech_stream_bytes(iters)) then GUARD bytes of 0xA5 */
static int8_t mel[64 * 512];
static int16_t pcm[1u << 16];
static unsigned long got, first_feed = (unsigned long)-1, largest;

/* the chunk callback: append n samples (at most BPG_SPEECH_MAX_CHUNK) */
static int take(const int16_t *chunk, uint32_t n, unsigned long feed)
{
    if (n > BPG_SPEECH_MAX_CHUNK || got + n > sizeof pcm / 2)
        return 1;
    if (n && first_feed == (unsigned long)-1)
        first_feed = feed;
    largest = n > largest ? n : largest;
    memcpy(pcm + got, chunk, 2u * n);
    got += n;
    return 0;
}

/* driver bytes ITERS             -> prints bpg_speech_stream_bytes(ITERS)
   driver MEL FRAMES PITCH NUM ITERS NNLS OUT MODE -> OUT: NUM int16 LE samples of the (64, PITCH) int8 MEL;
     MODE whole: bpg_speech_to_pcm16; stream: begin, feed frame by frame, finish until 0, and it prints
     "first FEED largest N" (the first feed that handed out samples; the largest chunk). */
int main(int argc, char **argv)
{
    unsigned long frames, pitch, num, iters, nnls, i;
    uint64_t bytes;
    uint8_t *guard;
    int16_t chunk[BPG_SPEECH_MAX_CHUNK];
    FILE *f;
    if (argc == 3) {
        printf("%llu\n", (unsigned long long)bpg_speech_stream_bytes((uint32_t)strtoul(argv[2], 0, 10)));
        return 0;
    }
    if (argc != 9)
        return 2;
    frames = strtoul(argv[2], 0, 10); pitch = strtoul(argv[3], 0, 10); num = strtoul(argv[4], 0, 10);
    iters = strtoul(argv[5], 0, 10); nnls = strtoul(argv[6], 0, 10);
    bytes = bpg_speech_stream_bytes((uint32_t)iters);
    if (pitch < frames || 64 * pitch > sizeof mel || num > sizeof pcm / 2 || bytes + GUARD > sizeof arena)
        return 2;
    f = fopen(argv[1], "rb");
    if (!f || fread(mel, 1, 64 * pitch, f) != 64 * pitch)
        return 3;
    fclose(f);
    memset(arena, 0xA5, sizeof arena);
    guard = (uint8_t *)arena + bytes;
    if (!strcmp(argv[8], "whole")) {
        bpg_speech_to_pcm16(mel, (uint32_t)pitch, (uint32_t)frames, (uint32_t)num, (uint32_t)iters,
                            (uint32_t)nnls, pcm, arena);
        got = num;
    } else {
        uint32_t n;
        bpg_speech_begin(arena, (uint32_t)frames, (uint32_t)num, (uint32_t)iters, (uint32_t)nnls);
        for (i = 0; i < frames; i++)
            if (take(chunk, bpg_speech_feed(arena, mel + i, (uint32_t)pitch, chunk), i))
                return 4;
        if (bpg_speech_feed(arena, mel, (uint32_t)pitch, chunk))   /* past the last frame: nothing */
            return 4;
        while ((n = bpg_speech_finish(arena, chunk)) != 0)
            if (take(chunk, n, frames))
                return 4;
        if (got != num || bpg_speech_finish(arena, chunk))
            return 4;
        printf("first %lu largest %lu\n", first_feed, largest);
    }
    for (i = 0; i < GUARD; i++)
        if (guard[i] != 0xA5)
            return 5;                    /* wrote past bpg_speech_stream_bytes(iters) */
    f = fopen(argv[7], "wb");
    if (!f)
        return 3;
    for (i = 0; i < num; i++) {
        fputc(pcm[i] & 0xff, f);
        fputc((pcm[i] >> 8) & 0xff, f);
    }
    return fclose(f) ? 3 : 0;
}
"""


def _write_sources(d):
    (d / "bpgan_speech_tables.c").write_text(speech_tables_c())
    (d / "driver.c").write_text(DRIVER)
    return [*SOURCES, d / "bpgan_speech_tables.c"], d / "driver.c"


def _compile(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc on PATH")
    d = tmp_path_factory.mktemp("c99_speech")
    speech, driver = _write_sources(d)
    _compile([gcc, *CFLAGS, *speech, driver, "-o", d / "speech"])
    return d / "speech"


def _run(binary, mel, num_samples, iters, nnls_iters, workdir, pitch=None, mode="whole", runner=()):
    """Run the driver on mel (64, T) stored with row pitch `pitch` (>= T) -> (int16 PCM, its stdout)."""
    frames = mel.shape[1]
    pitch = frames if pitch is None else pitch
    stored = np.zeros((64, pitch), np.int8)
    stored[:, :frames] = mel
    stored[:, frames:] = 127                       # what lies past the frames must not be read
    (workdir / "mel.bin").write_bytes(stored.tobytes())
    r = subprocess.run([*runner, str(binary), str(workdir / "mel.bin"), str(frames), str(pitch), str(num_samples),
                        str(iters), str(nnls_iters), str(workdir / "pcm.bin"), mode], capture_output=True, text=True)
    assert r.returncode == 0, (r.returncode, r.stderr)
    return np.frombuffer((workdir / "pcm.bin").read_bytes(), "<i2"), r.stdout


def _c_pcm(*args, **kwargs):
    return _run(*args, **kwargs)[0]


def _same(got, want):
    assert got.shape == want.shape, (got.shape, want.shape)
    if not np.array_equal(got.astype("<i2").tobytes(), want.astype("<i2").tobytes()):
        bad = np.nonzero(got != want)[0]
        raise AssertionError(f"{len(bad)} samples differ, first at {bad[0]}: C {got[bad[0]]} vs Python {want[bad[0]]}")


def _random_mel(frames, seed):
    return np.random.default_rng(seed).integers(-128, 128, (64, frames)).astype(np.int8)


@pytest.mark.parametrize("frames", [1, 2, 3, 7, 64])
def test_random_mels(binary, frames, tmp_path):
    """Fewer frames than one round's halo (1, 2, 3) and more; crop, exact length, zero pad; both entry points."""
    mel = _random_mel(frames, 1000 + frames)
    kept = frames * 64 - 1
    for iters in (1, 4):
        for nnls_iters in (0, 16):
            for num_samples in (max(kept - 37, 1), kept, kept + 100):
                pitch = frames + 3 if num_samples == kept else frames
                want = mel_to_pcm16(mel, num_samples, iters, nnls_iters)
                _same(_c_pcm(binary, mel, num_samples, iters, nnls_iters, tmp_path, pitch), want)
                _same(_c_pcm(binary, mel, num_samples, iters, nnls_iters, tmp_path, pitch, "stream"), want)


@pytest.mark.parametrize("iters", [1, 4, 32])
def test_longer_than_the_halo(binary, iters, tmp_path):
    """300 frames: more than 3 iters + 2 at 32 rounds, so every ring wraps; streamed and whole equal the reference,
    the first samples come out of the feed of frame 3 iters + 2 (the latency bpgan_speech.h states)."""
    mel = _random_mel(300, 77 + iters)
    kept = 300 * 64 - 1
    cases = [(16, kept)] if iters == 32 else [(16, kept), (0, kept - 1000), (16, kept + 64)]
    for nnls_iters, num_samples in cases:
        want = mel_to_pcm16(mel, num_samples, iters, nnls_iters)
        _same(_c_pcm(binary, mel, num_samples, iters, nnls_iters, tmp_path, 301), want)
        got, out = _run(binary, mel, num_samples, iters, nnls_iters, tmp_path, 301, "stream")
        _same(got, want)
        assert out.split() == ["first", str(3 * iters + 2), "largest", "64"], out


def test_quiet_and_iters_zero(binary, tmp_path):
    """A quiet mel (no NNLS block shift) and the floor one (every code -128); iters 0 runs one round like Python."""
    rng = np.random.default_rng(7)
    for mel in (rng.integers(-128, -60, (64, 9)).astype(np.int8), np.full((64, 3), -128, np.int8)):
        want = mel_to_pcm16(mel, 9 * 64, 0, 16)
        _same(_c_pcm(binary, mel, 9 * 64, 0, 16, tmp_path), want)
        _same(_c_pcm(binary, mel, 9 * 64, 0, 16, tmp_path, mode="stream"), want)


@pytest.fixture(scope="module")
def golden():
    mel = np.load(GOLDEN)["output"][0]
    assert mel.shape == (64, 250) and mel.dtype == np.int8
    return mel, mel_to_pcm16(mel, 250 * 64)        # the defaults: 32 Griffin-Lim rounds, 16 NNLS updates


def test_golden_mel(binary, golden, tmp_path):
    mel, want = golden
    _same(_c_pcm(binary, mel, 250 * 64, 32, 16, tmp_path), want)
    got, out = _run(binary, mel, 250 * 64, 32, 16, tmp_path, mode="stream")
    _same(got, want)
    assert out.split()[:2] == ["first", "98"]


def test_stream_bytes(binary):
    """The state is a function of iters alone (the driver's guard past it stays untouched on 300 frames at 32
    rounds, test_longer_than_the_halo); the C and Python formulas agree."""
    for iters in (0, 1, 2, 4, 32, 100):
        r = subprocess.run([str(binary), "bytes", str(iters)], capture_output=True, text=True, check=True)
        assert int(r.stdout) == speech_stream_bytes(iters)
    assert speech_stream_bytes(32) == 200088 < 512 * 1024
    assert speech_stream_bytes(0) == speech_stream_bytes(1) == (6180 + 2324 + 7) // 8 * 8


def test_no_float_no_heap(tmp_path):
    texts = [p.read_text() for p in (*SOURCES, RUNTIME / "bpgan_speech.h", RUNTIME / "bpgan_speech_internal.h")] + [speech_tables_c()]
    for text in texts:
        assert not re.findall(r"\b(float|double|malloc)\b", text)


def test_golden_aarch64_qemu(golden, tmp_path):
    cc, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if cc is None or qemu is None:
        pytest.skip("aarch64-linux-gnu-gcc or qemu-aarch64 not installed")
    speech, driver = _write_sources(tmp_path)
    objects = []
    for src in speech:                              # the back end itself: no FP / SIMD registers at all
        obj = tmp_path / (src.stem + ".o")
        _compile([cc, *CFLAGS, "-mgeneral-regs-only", "-c", src, "-o", obj])
        objects.append(obj)
    _compile([cc, *CFLAGS, "-static", driver, *objects, "-o", tmp_path / "speech_aarch64"])
    mel, want = golden
    _same(_c_pcm(tmp_path / "speech_aarch64", mel, 250 * 64, 32, 16, tmp_path, mode="stream", runner=(qemu,)), want)


def test_compiles_for_cortex_m4(tmp_path):
    """Cortex-M4 objects; the stack: every function's frame summed (no recursion: a bound on any call chain)."""
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    speech, _ = _write_sources(tmp_path)
    for src in speech:
        _compile([cc, *CFLAGS, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-fstack-usage", "-c", src,
                  "-o", tmp_path / (src.stem + ".o")])
    frames = [line.split("\t") for su in sorted(tmp_path.glob("*.su")) for line in su.read_text().splitlines()]
    assert any("bpgan_speech_frame" in f[0] for f in frames) and any("bpg_speech_feed" in f[0] for f in frames)
    assert all(kind.strip() == "static" for _, _, kind in frames), frames
    assert sum(int(size) for _, size, _ in frames) < 1024, frames
