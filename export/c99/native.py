"""Build the generated decoder with a C compiler, run it on a stream, and the reference's bytes to compare with.

The reference side is firmware_ref.decode_bitstream (ref engine) and firmware_ref.image.to_hwc_image, written
as the files the C program writes: a binary PPM (P6, or P5 for one channel) or the .wav of bpgan-decode.
"""
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from bpgan.firmware_ref.bitstream import AUDIO_HOP, BitstreamError, Header
from bpgan.firmware_ref.bitstream_decode import decode_bitstream
from bpgan.firmware_ref.image import to_hwc_image
from bpgan.firmware_ref.program import Program, ProgramError


def compiler() -> Optional[str]:
    """$CC, else cc or gcc on PATH, else None."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def build(c_dir, cc: Optional[str] = None, cflags: Optional[str] = None, ldflags: str = "",
          binary: str = "bpgan_decode") -> Path:
    """make in c_dir with this CC / LDFLAGS (CFLAGS: the Makefile's unless given); -> the binary.
    RuntimeError with the compiler's first error line."""
    cc = cc or compiler()
    if cc is None:
        raise RuntimeError("no C compiler (set CC)")
    flags = [f"CFLAGS={cflags}"] if cflags is not None else []
    r = subprocess.run(["make", "-s", "-C", str(c_dir), f"CC={cc}", *flags, f"LDFLAGS={ldflags}", f"BIN={binary}"],
                       capture_output=True, text=True)
    if r.returncode:
        first = next((ln for ln in (r.stderr + r.stdout).splitlines() if "error" in ln), r.stderr.strip()[-300:])
        raise RuntimeError(f"building the C99 decoder with {cc} failed: {first}")
    return Path(c_dir) / binary


@dataclass
class Run:
    returncode: int
    stderr: str
    output: Optional[bytes]   # the file it wrote (None when it wrote none)


def run(binary, data: bytes, workdir, runner: Sequence[str] = (), suffix: str = ".ppm", timeout: float = 60) -> Run:
    """Write data to workdir, decode it with binary (under runner, e.g. qemu-aarch64), read what it wrote."""
    workdir = Path(workdir)
    src, dst = workdir / "in.bpg", workdir / f"out{suffix}"
    src.write_bytes(data)
    dst.unlink(missing_ok=True)
    r = subprocess.run([*runner, str(binary), str(src), str(dst)], capture_output=True, timeout=timeout)
    return Run(r.returncode, r.stderr.decode(errors="replace"), dst.read_bytes() if dst.exists() else None)


def expected(prog: Program, data: bytes, max_pixels: int, max_width: Optional[int] = None,
             max_frames: Optional[int] = None) -> Optional[bytes]:
    """The bytes bpgan_decode must write for this stream, or None when the reference refuses it (or the
    stream is past the C build's width / frame limits): the PPM of the pixels, or the .wav bpgan-decode writes."""
    try:
        header, y = decode_bitstream(prog, data, "ref", max_pixels=max_pixels)
    except (BitstreamError, ProgramError):
        return None
    if header.modality == "image":
        if max_width is not None and header.latent_shape[2] * header.stride > max_width:
            return None
        px = to_hwc_image(y, prog.fmt(prog.outputs[0])[1])
        return f"P{5 if px.shape[2] == 1 else 6}\n{px.shape[1]} {px.shape[0]}\n255\n".encode() + px.tobytes()
    if max_frames is not None and header.latent_shape[1] * header.stride // AUDIO_HOP > max_frames:
        return None
    from bpgan.toolkit.audio.commands import write_decoded

    with tempfile.TemporaryDirectory() as tmp:   # the very file `bpgan-decode ... -o out.wav` writes
        path = Path(tmp) / "out.wav"
        write_decoded(path, np.ascontiguousarray(y[0]).astype(np.int8), header.original_size[0])
        return path.read_bytes()


def vector_stream(prog: Program, symbols: np.ndarray) -> bytes:
    """A stream of the export's test-vector symbols (1, C, ...) at zero padding, entropy coded with the prior."""
    from bpgan.toolkit.codec.bitstream import write_bitstream

    down = prog.meta["config"]["downsample"]
    lat = symbols.shape[2:]
    audio = len(lat) == 1
    stride = down * 64 if audio else down
    header = Header("audio" if audio else "image", prog.model_hash(), stride, tuple(n * stride for n in lat),
                    (0,) * len(lat), symbols.shape[1:])
    return write_bitstream(header, symbols[0], prog.prior())


def verify(prog: Program, report, symbols: np.ndarray) -> bool:
    """Build report.out_dir natively and decode the test-vector stream: True when it equals the reference byte
    for byte, False when there is no C compiler; RuntimeError when it differs."""
    if compiler() is None:
        return False
    c_dir = report.out_dir
    binary = build(c_dir)
    data = vector_stream(prog, symbols)
    got = run(binary, data, c_dir, suffix=".out")
    want = expected(prog, data, report.max_pixels, report.max_width, report.max_frames)
    (Path(c_dir) / "in.bpg").unlink(missing_ok=True)
    (Path(c_dir) / "out.out").unlink(missing_ok=True)
    if got.returncode or got.output != want:
        raise RuntimeError(f"the C99 decoder differs from the reference on the test-vector stream "
                           f"({got.stderr.strip() or 'different bytes'})")
    return True
