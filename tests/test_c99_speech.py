"""The C99 speech back end (export/c99/runtime/bpgan_speech.c) equals firmware_ref.speech.mel_to_pcm16 bit for bit.

A small driver (written here) reads a raw int8 mel and writes raw int16 LE PCM; it is built with the
generated tables (export/c99/speech_tables.py) natively, and for aarch64 (-mgeneral-regs-only, run under
qemu-aarch64) and Cortex-M4 (compile only) where those toolchains are installed.
"""
import re
import shutil
import subprocess

import numpy as np
import pytest

from bpgan.export.c99.speech_tables import speech_tables_c, speech_work_bytes
from bpgan.firmware_ref.speech import mel_to_pcm16
from conftest import REPO

RUNTIME = REPO / "export" / "c99" / "runtime"
SOURCES = [RUNTIME / "bpgan_speech.c"]
GOLDEN = REPO / "zoo" / "bpgan-audio-light" / "export" / "golden.npz"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", f"-I{RUNTIME}"]

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "bpgan_speech.h"

static uint64_t work[1u << 17];          /* 1 MiB: 250 frames need 454840 bytes */
static int8_t mel[64 * 512];
static int16_t pcm[1u << 16];

/* driver work FRAMES            -> prints bpg_speech_work_bytes(FRAMES)
   driver MEL FRAMES PITCH NUM ITERS NNLS OUT -> OUT: NUM int16 LE samples of the (64, PITCH) int8 MEL */
int main(int argc, char **argv)
{
    unsigned long frames, pitch, num, iters, nnls, i;
    FILE *f;
    if (argc == 3) {
        printf("%llu\n", (unsigned long long)bpg_speech_work_bytes((uint32_t)strtoul(argv[2], 0, 10)));
        return 0;
    }
    if (argc != 8)
        return 2;
    frames = strtoul(argv[2], 0, 10); pitch = strtoul(argv[3], 0, 10); num = strtoul(argv[4], 0, 10);
    iters = strtoul(argv[5], 0, 10); nnls = strtoul(argv[6], 0, 10);
    if (pitch < frames || 64 * pitch > sizeof mel || num > sizeof pcm / 2
        || bpg_speech_work_bytes((uint32_t)frames) > sizeof work)
        return 2;
    f = fopen(argv[1], "rb");
    if (!f || fread(mel, 1, 64 * pitch, f) != 64 * pitch)
        return 3;
    fclose(f);
    bpg_speech_to_pcm16(mel, (uint32_t)pitch, (uint32_t)frames, (uint32_t)num, (uint32_t)iters,
                        (uint32_t)nnls, pcm, work);
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


def _c_pcm(binary, mel, num_samples, iters, nnls_iters, workdir, pitch=None, runner=()):
    """Run the driver on mel (64, T) stored with row pitch `pitch` (>= T) -> int16 PCM."""
    frames = mel.shape[1]
    pitch = frames if pitch is None else pitch
    stored = np.zeros((64, pitch), np.int8)
    stored[:, :frames] = mel
    stored[:, frames:] = 127                       # what lies past the frames must not be read
    (workdir / "mel.bin").write_bytes(stored.tobytes())
    r = subprocess.run([*runner, str(binary), str(workdir / "mel.bin"), str(frames), str(pitch), str(num_samples),
                        str(iters), str(nnls_iters), str(workdir / "pcm.bin")], capture_output=True, text=True)
    assert r.returncode == 0, (r.returncode, r.stderr)
    return np.frombuffer((workdir / "pcm.bin").read_bytes(), "<i2")


def _same(got, want):
    assert got.shape == want.shape, (got.shape, want.shape)
    if not np.array_equal(got.astype("<i2").tobytes(), want.astype("<i2").tobytes()):
        bad = np.nonzero(got != want)[0]
        raise AssertionError(f"{len(bad)} samples differ, first at {bad[0]}: C {got[bad[0]]} vs Python {want[bad[0]]}")


@pytest.mark.parametrize("frames", [1, 2, 7, 64])
def test_random_mels(binary, frames, tmp_path):
    rng = np.random.default_rng(1000 + frames)
    mel = rng.integers(-128, 128, (64, frames)).astype(np.int8)
    kept = frames * 64 - 1
    for iters in (1, 4):
        for nnls_iters in (0, 16):
            for num_samples in (max(kept - 37, 1), kept, kept + 100):
                pitch = frames + 3 if num_samples == kept else frames
                got = _c_pcm(binary, mel, num_samples, iters, nnls_iters, tmp_path, pitch)
                _same(got, mel_to_pcm16(mel, num_samples, iters, nnls_iters))


def test_quiet_and_iters_zero(binary, tmp_path):
    """A quiet mel (no NNLS block shift) and the floor one (every code -128); iters 0 runs one round like Python."""
    rng = np.random.default_rng(7)
    for mel in (rng.integers(-128, -60, (64, 9)).astype(np.int8), np.full((64, 3), -128, np.int8)):
        got = _c_pcm(binary, mel, 9 * 64, 0, 16, tmp_path)
        _same(got, mel_to_pcm16(mel, 9 * 64, 0, 16))


@pytest.fixture(scope="module")
def golden():
    mel = np.load(GOLDEN)["output"][0]
    assert mel.shape == (64, 250) and mel.dtype == np.int8
    return mel, mel_to_pcm16(mel, 250 * 64)        # the defaults: 32 Griffin-Lim rounds, 16 NNLS updates


def test_golden_mel(binary, golden, tmp_path):
    mel, want = golden
    _same(_c_pcm(binary, mel, 250 * 64, 32, 16, tmp_path), want)


def test_work_bytes(binary):
    for frames in (1, 2, 7, 64, 250, 1000):
        r = subprocess.run([str(binary), "work", str(frames)], capture_output=True, text=True, check=True)
        assert int(r.stdout) == speech_work_bytes(frames)
    assert speech_work_bytes(250) == 250 * 1804 + 3840


def test_no_float_no_heap(tmp_path):
    texts = [p.read_text() for p in (*SOURCES, RUNTIME / "bpgan_speech.h")] + [speech_tables_c()]
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
    _same(_c_pcm(tmp_path / "speech_aarch64", mel, 250 * 64, 32, 16, tmp_path, runner=(qemu,)), want)


def test_compiles_for_cortex_m4(tmp_path):
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    speech, _ = _write_sources(tmp_path)
    for src in speech:
        _compile([cc, *CFLAGS, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-c", src,
                  "-o", tmp_path / (src.stem + ".o")])
