"""The standalone C99 decoder (bpgan-export --target c99) equals firmware_ref.decode_bitstream byte for byte:
natively, on forged streams (same verdict, one stderr line, never a signal), under qemu-user on aarch64 / armhf
and bare metal on a Cortex-M4 (qemu-system-arm). Streams are coded with the program's own prior (random symbols,
or bpgan-encode); the cross tests skip, saying why, where their toolchains are not installed (.ci/run installs them)."""
import dataclasses
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bpgan.export.c99 import C_KERNELS, emit_c99, native, plan
from bpgan.export.c99.emit import REFUSED, RUNTIME
from bpgan.firmware_ref.bitstream import AUDIO_HOP, Header, pack, unpack
from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.ops import REGISTRY
from bpgan.firmware_ref.program import PRIOR_KEY, ProgramError, load_program, validate
from bpgan.firmware_ref.stripes import heights_of, ring_rows
from bpgan.toolkit.cli.encode import main as encode_main
from bpgan.toolkit.cli.export import main as export_main
from bpgan.toolkit.codec.bitstream import write_bitstream
from bpgan.toolkit.codec.forgery import KINDS, forge, forged_1024
from bpgan.toolkit.codec.prior import quantize_frequencies
from bpgan.toolkit.datasets import embedded_image_path

MAX_PIXELS = 128 * 128          # the image decoder's limit here: small arena, fast qemu runs
MAX_WIDTH = 1024                # its width limit (rings grow with the width): 16x1024 is the widest
IMAGE_SIZES = [(16, 16), (17, 33), (40, 56), (1, 1), (100, 7), (16, 1024)]   # (H, W); 16x1024 is at the limit
CROSS = {"aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64"), "armhf": ("arm-linux-gnueabihf-gcc", "qemu-arm")}

needs_cc = pytest.mark.skipif(native.compiler() is None, reason="no C compiler (cc / gcc / $CC)")


def _stream(prog, size, rng, version=2, prior=None):
    """A genuine stream of random symbols for an image (H, W) or a clip of `size` samples."""
    prior = prog.prior() if prior is None else prior
    down = prog.meta["config"]["downsample"]
    stride = down * AUDIO_HOP if len(size) == 1 else down
    lat = tuple(-(-n // stride) for n in size)
    header = Header("audio" if len(size) == 1 else "image", prog.model_hash(), stride, tuple(size),
                    tuple(n * stride - s for n, s in zip(lat, size)), (prior.shape[0],) + lat, version)
    return write_bitstream(header, rng.integers(0, prior.shape[-1], header.latent_shape), prior)


def _same(prog, binary, data, workdir, runner=(), suffix=".ppm", max_pixels=MAX_PIXELS, max_width=MAX_WIDTH):
    """Decode with the C program and the reference; assert the same verdict and bytes. -> accepted?"""
    got = native.run(binary, data, workdir, runner, suffix)
    want = native.expected(prog, data, max_pixels, max_width)
    assert got.returncode >= 0, f"killed by signal {-got.returncode}"
    if want is None:
        assert got.returncode == 1 and got.output is None and got.stderr.count("\n") == 1, got.stderr
        assert got.stderr.startswith("bpgan_decode: error: ")
        return False
    assert got.returncode == 0 and got.stderr == "", got.stderr
    assert got.output == want
    return True


@pytest.fixture(scope="module")
def image(exported_tiny_run, tmp_path_factory):
    """(program, C folder, native binary): the tiny image model through `bpgan-export --target c99`."""
    if native.compiler() is None:
        pytest.skip("no C compiler (cc / gcc / $CC)")
    out = tmp_path_factory.mktemp("c99_image")
    assert export_main([str(exported_tiny_run), "--target", "c99", "--out", str(out),
                        "--max-pixels", str(MAX_PIXELS), "--max-width", str(MAX_WIDTH)]) == 0
    prog = load_program(out)
    assert (out / "c99" / "bpgan_decode").is_file(), "the export builds and verifies natively when cc exists"
    return prog, out / "c99", out / "c99" / "bpgan_decode"


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """(program, C folder, native binary): the tiny audio model (tests/tiny_audio.py) exported for c99."""
    if native.compiler() is None:
        pytest.skip("no C compiler (cc / gcc / $CC)")
    from tiny_audio import tiny_audio_model

    from bpgan.export.pipeline import export_run
    from bpgan.toolkit.audio.codec import prior_from_clips
    from bpgan.toolkit.training.checkpoint import save_model

    run = tmp_path_factory.mktemp("c99_audio")
    model, quant = tiny_audio_model()
    save_model(run / "qat" / "model.pt", model, "bpgan-audio", quant, "qat")
    np.save(run / "qat" / "prior.npy", prior_from_clips(model, "embedded", crops=6, crop_frames=64))
    report = export_run(run, "c99", run / "export", c99_limits={"max_frames": 400})
    prog = load_program(run / "export")
    return prog, report.library, native.build(report.library)


def _every_kind_program(dims: int):
    """A ProgramBuilder program using every registry kind and int8 / uint8 / int16 / int32 tensors (the shipped
    and tiny models use convs and adds only): latent (C, ...) -> 8x (image) or 4x (speech) the latent size."""
    rng = np.random.default_rng(dims)
    k = (3, 3) if dims == 2 else (3,)

    def w(*shape, lim=40):
        return rng.integers(-lim, lim + 1, shape) * (rng.random(shape) < 0.7)

    def bias(n, lim=200):
        return rng.integers(-lim, lim + 1, n)

    b = ProgramBuilder(meta={"config": {"downsample": 8 if dims == 2 else 4}, "prior_precision_bits": 24,
                             "model_hash": "c99" + "0" * 28 + str(dims)})
    b.input("latent", "int8", 0, 4)
    b.set_symbol_table([-3, -1, 0, 2, 5])
    conv, convt = ("conv2d", "conv_transpose2d") if dims == 2 else ("conv1d", "conv_transpose1d")
    x = b.conv(conv, "c0", "latent", w(16, 4, *k), bias(16), 4, "uint8", 1, padding=1, relu=True)
    x = b.pixel_shuffle("shuffle", x, 2) if dims == 2 else b.conv(conv, "c0b", x, w(4, 16, *k), bias(4), 5, "uint8", 1,
                                                                    padding=1, relu=True)
    if dims == 2:   # switches from int16 logits in [-2, 1] (ties on most blocks), then a stride-2 conv back down
        lg = b.clip("lg", b.conv(conv, "lgc", x, w(16, 4, *k), bias(16), 9, "int16", 0, padding=1), -2, 1)
        x = b.conv(conv, "down", b.argmax_unpool("unpool", x, lg, 2), w(4, 4, *k), bias(4), 5, "uint8", 1, stride=2,
                   padding=1, relu=True)
    x = b.upsample_nearest("up", x, 2)
    kt = (3, 3) if dims == 2 else (4,)
    x = b.conv(convt, "ct", x, w(4, 6, *kt), bias(6), 5, "int16", 3, stride=2, padding=1,
               output_padding=1 if dims == 2 else 0)
    x = b.clip("clip16", x, -700, 900)   # cuts the transposed conv's range (-2698..2250 on 20 random 5x5 latents)
    x = b.conv(conv, "c32", x, w(6, 6, *(1,) * dims), bias(6, 5000), 7, "int32", 4)
    eye = np.eye(6, dtype=np.int64).reshape(6, 6, *(1,) * dims)
    x = b.conv(conv, "from32", x, eye, np.zeros(6), 0, "int8", 4)   # an int32 input: int64 products in C
    y = b.clip("clip8", x, -60, 90)
    cat = b.concat("cat", [x, y])
    # reflect padding (unequal pads), then a valid conv back to the size: rows reflect at both edges of every band
    padded = b.reflect_pad("reflect", cat, [2, 1, 0, 1] if dims == 2 else [2, 0])
    z = b.conv(conv, "z", padded, w(12, 12, *k), bias(12), 6, "int8", 6, padding=0)
    s = b.add("sum", cat, z, "int8", 5)
    out = b.conv(conv, "tail", s, w(3 if dims == 2 else 64, 12, *k), bias(3 if dims == 2 else 64), 7, "int8", 7,
                 padding=1)   # speech: 64 mel bands at 2^-7, what the integer back end reads
    prog = b.build([out])
    prog.arrays[PRIOR_KEY] = quantize_frequencies(rng.integers(0, 100, (4, 5)))
    validate(prog)
    return prog


@needs_cc
@pytest.mark.parametrize("dims", [2, 1])
def test_every_kind_and_dtype_decodes_as_the_reference(dims, tmp_path):
    prog = _every_kind_program(dims)
    image_only = {"pixel_shuffle", "argmax_unpool", *(k for k in REGISTRY if "2d" in k)}
    other = image_only if dims == 1 else {k for k in REGISTRY if "1d" in k}
    assert {op.kind for op in prog.ops} >= set(REGISTRY) - other - set(C99_REFUSES)
    emit_c99(prog, tmp_path / "c99", max_pixels=64 * 64, max_frames=512)
    binary = native.build(tmp_path / "c99")
    rng = np.random.default_rng(dims)
    sizes = [(8, 8), (9, 23), (64, 64), (3, 1)] if dims == 2 else [(256,), (1,), (3000,), (512 * 64,)]
    for size in sizes:
        assert _same(prog, binary, _stream(prog, size, rng), tmp_path, suffix=".ppm" if dims == 2 else ".wav",
                     max_pixels=64 * 64), size


def test_programs_the_c_decoder_cannot_run_are_refused_in_one_line(tmp_path):
    prog = _every_kind_program(2)
    del prog.arrays[PRIOR_KEY]
    with pytest.raises(ProgramError, match="no prior table"):
        emit_c99(prog, tmp_path)
    prog = _every_kind_program(2)
    prog.meta["config"]["downsample"] = 16
    with pytest.raises(ProgramError, match=r"c99 target: a \(3, 2\) latent decodes to \(24, 16\), not \(48, 32\)"):
        emit_c99(prog, tmp_path)


# The registry kinds the C99 decoder refuses, and why (emit.REFUSED holds the one-line reasons).
C99_REFUSES = {
    "instance_norm": "whole-frame statistics: the decoder streams images by output row",
    "log2_abs": "the lossless flow's op; its decoder is not a C99 target yet",
}


def test_every_registry_kind_has_a_c_kernel():
    assert set(C_KERNELS) == set(REGISTRY) - set(C99_REFUSES)
    assert set(REFUSED) == set(C99_REFUSES)
    ops_c, header = (RUNTIME / "bpgan_ops.c").read_text(), (RUNTIME / "bpgan_internal.h").read_text()
    table = re.search(r"bpg_kernels\[BPG_NUM_KINDS\] = \{(.*?)\};", ops_c, re.S).group(1).split(",")
    enum = re.search(r"enum \{ BPG_CONV2D = 0, (.*?), BPG_NUM_KINDS \}", header, re.S).group(1)
    enum = ["BPG_CONV2D"] + [e.strip() for e in enum.split(",")]
    for kind, (name, function) in C_KERNELS.items():
        assert f"static void {function}(" in ops_c, kind
        assert table[enum.index(name)].strip() == function, f"{kind}: the kernel table and the enum disagree"


def _latent_program(last, **meta):
    b = ProgramBuilder(meta={"config": {"downsample": 1}, **meta})
    b.input("latent", "int8", 0, 4)
    b.set_symbol_table([-3, -1, 0, 2, 5])
    x = b.conv("conv2d", "c", "latent", np.ones((4, 4, 3, 3)), np.zeros(4), 6, "int8", 5, padding=1)
    return b.build([last(b, x)])


def test_a_program_with_instance_norm_is_refused_in_one_line(tmp_path):
    norm = _latent_program(lambda b, x: b.instance_norm("norm", x, [9] * 4, 6, [0] * 4, "uint8", 6, relu=True))
    with pytest.raises(ProgramError, match=r"c99 target: op 'norm' \(instance_norm\) has no C99 kernel: it normalizes "
                                           r"by whole-frame statistics, which a decoder streaming images by output "
                                           r"row cannot compute$") as err:
        emit_c99(norm, tmp_path)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())   # refused before anything is written


@needs_cc
def test_a_reflect_pad_not_below_its_size_is_refused_in_one_line(tmp_path):
    """reflect_pad (2, 1, 2, 1) at the latent's size: latents of 3 rows and 2 columns and more decode as the
    reference, a smaller one is refused by both (one line from the C decoder's shape plan)."""
    prog = _latent_program(lambda b, x: b.conv("conv2d", "tail", b.reflect_pad("pad", x, [2, 1, 2, 1]),
                                               np.ones((3, 4, 5, 3)), np.zeros(3), 6, "int8", 7),
                           model_hash="c99" + "0" * 27 + "ef", prior_precision_bits=24)
    prog.arrays[PRIOR_KEY] = quantize_frequencies(np.random.default_rng(3).integers(0, 100, (4, 5)))
    validate(prog)
    emit_c99(prog, tmp_path / "c99", max_pixels=64 * 64, max_width=64)
    binary = native.build(tmp_path / "c99")
    rng = np.random.default_rng(4)
    for size, ok in (((3, 2), True), ((9, 5), True), ((2, 7), False), ((7, 1), False)):
        assert _same(prog, binary, _stream(prog, size, rng), tmp_path, max_pixels=64 * 64, max_width=64) == ok, size
    got = native.run(binary, _stream(prog, (2, 7), rng), tmp_path, (), ".ppm")
    assert "reflect_pad of a 2x7 input needs each size above its pads (2, 1, 2, 1)" in got.stderr, got.stderr


def test_decode_path_has_no_floating_point_and_no_heap(tmp_path):
    """No float/double in the sources; the decoder compiles with the FP registers forbidden; no malloc linked."""
    sources = sorted(RUNTIME.glob("*.[ch]"))
    for src in sources:
        assert not re.search(r"\b(float|double|malloc|calloc|realloc|free)\b", src.read_text()), src.name
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("no gcc for -mgeneral-regs-only")
    for name in ("bpgan_decoder.c", "bpgan_ans.c", "bpgan_plan.c", "bpgan_ops.c"):
        r = subprocess.run([cc, "-std=c99", "-O3", "-Wall", "-Wextra", "-Werror", "-pedantic", "-mgeneral-regs-only",
                            "-c", str(RUNTIME / name), "-o", str(tmp_path / (name + ".o"))],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        undefined = subprocess.run(["nm", "-u", str(tmp_path / (name + ".o"))], capture_output=True, text=True).stdout
        assert not re.search(r"\b(malloc|calloc|realloc)\b", undefined), name


@needs_cc
@pytest.mark.parametrize("version", [1, 2])
def test_image_streams_of_any_size_decode_as_the_reference(image, tmp_path, version):
    prog, _, binary = image
    rng = np.random.default_rng(version)
    for size in IMAGE_SIZES:
        assert _same(prog, binary, _stream(prog, size, rng, version), tmp_path), size


@needs_cc
def test_colour_offsets_decode_as_the_reference(image, tmp_path):
    """Header flag bit 0: the offsets are added to the output, clipped to int8, as firmware_ref does."""
    prog, _, binary = image
    rng = np.random.default_rng(5)
    for offsets in [(3, -7, 0), (127, -127, 60)]:
        header, payload = unpack(_stream(prog, (17, 33), rng))
        data = pack(dataclasses.replace(header, colour_offsets=offsets), payload)
        assert data[7] == 1 and _same(prog, binary, data, tmp_path), offsets
    bad = bytearray(data)
    bad[Header.header_bytes(header) - 12 + 3] = 1     # the reserved byte after the offsets (CRC now wrong too)
    assert not _same(prog, binary, bytes(bad), tmp_path)


def test_the_arena_holds_every_latent_size_within_the_limit(image):
    """bpg_plan's layout (plan.layout_bytes: latent, a pixel row, a ring per tensor, the row buffer) for every
    (h, w) under the limits fits the static arena; the rings grow with the width, not the height."""
    prog, _, _ = image
    down, out = prog.meta["config"]["downsample"], prog.outputs[0]
    positions, latent_c = MAX_PIXELS // down ** 2, prog.tensors[prog.inputs[0]]["channels"]
    arena = plan.arena_bytes(prog, 2, positions, MAX_WIDTH // down)
    assert f"static uint64_t arena[{arena // 8}];" in (image[1] / "model_data.c").read_text()

    def need(h, w):
        cols = heights_of(prog, w, axis=1)
        return plan.layout_bytes(prog, latent_c * h * w, 3 * cols[out], ring_rows(prog, h), cols)

    sizes = [(h, w) for h in range(1, positions + 1) for w in range(1, min(positions // h, MAX_WIDTH // down) + 1)]
    needs = {s: need(*s) for s in sizes}
    assert max(needs.values()) <= arena < 1.2 * max(needs.values())
    rings = {h: need(h, 2) - latent_c * h * 2 for h in (8, 16, 32)}
    assert len(set(rings.values())) == 1, rings          # taller: the same rings (only the latent grows)
    assert need(4, 4) - 16 * latent_c > 1.8 * (need(4, 2) - 8 * latent_c)   # twice as wide: about twice the rings


@needs_cc
def test_random_image_sizes_decode_as_the_reference(image, tmp_path):
    prog, _, binary = image
    rng = np.random.default_rng(12)
    down = prog.meta["config"]["downsample"]
    positions = MAX_PIXELS // down ** 2
    for _ in range(20):   # a random latent within the limit, then any original size that pads to it
        lat_h = int(rng.integers(1, positions + 1))
        lat_w = int(rng.integers(1, positions // lat_h + 1))
        size = tuple(int(rng.integers((n - 1) * down + 1, n * down + 1)) for n in (lat_h, lat_w))
        assert _same(prog, binary, _stream(prog, size, rng), tmp_path), size


@needs_cc
def test_an_encoded_photo_decodes_as_the_reference(image, exported_tiny_run, tmp_path):
    prog, _, binary = image
    photo = np.asarray(Image.open(embedded_image_path()).convert("RGB"))
    Image.fromarray(photo[100:150, 60:133]).save(tmp_path / "img.png")
    assert encode_main([str(exported_tiny_run), str(tmp_path / "img.png"), "-o", str(tmp_path / "img.bpg"),
                        "--iters", "0"]) == 0
    assert _same(prog, binary, (tmp_path / "img.bpg").read_bytes(), tmp_path)


@needs_cc
def test_a_context_prior_decodes_as_the_reference(image, tmp_path):
    """The (C, L(L+1), L) context tables: the same program with a random context prior, emitted again."""
    prog, _, _ = image
    c, lat = prog.prior().shape
    rng = np.random.default_rng(7)
    ctx = quantize_frequencies(rng.integers(0, 50, (c * lat * (lat + 1), lat))).reshape(c, lat * (lat + 1), lat)
    prog.arrays[PRIOR_KEY] = ctx
    try:
        emit_c99(prog, tmp_path / "c99", max_pixels=MAX_PIXELS)
        binary = native.build(tmp_path / "c99")
        for size in [(16, 16), (33, 47), (48, 80)]:
            assert _same(prog, binary, _stream(prog, size, rng), tmp_path), size
    finally:
        prog.arrays[PRIOR_KEY] = np.load(prog.source / "program.npz")[PRIOR_KEY]


@needs_cc
def test_audio_streams_decode_as_the_reference(audio, tmp_path):
    prog, _, binary = audio
    rng = np.random.default_rng(3)
    for samples in [1, 511, 512, 3001, 12345]:
        assert _same(prog, binary, _stream(prog, (samples,), rng), tmp_path, suffix=".wav"), samples
    frames = 400 * AUDIO_HOP   # the export's --max-frames: at the limit it decodes, one frame more it refuses
    assert _same(prog, binary, _stream(prog, (frames,), rng), tmp_path, suffix=".wav")
    got = native.run(binary, _stream(prog, (frames + 1,), rng), tmp_path, suffix=".wav")
    assert got.returncode == 1 and "exceed the decoder limit 400" in got.stderr


@needs_cc
@pytest.mark.parametrize("modality", ["image", "audio"])
def test_forged_streams_get_the_references_verdict(request, modality, tmp_path):
    """forgery.KINDS x 40 per kind (the audio model 12 per kind): same verdict, same bytes, one line, no signal."""
    prog, _, binary = request.getfixturevalue(modality)
    rng = np.random.default_rng(11)
    size, per_kind = ((40, 56), 40) if modality == "image" else ((3001,), 12)
    valid = _stream(prog, size, rng)
    accepted = {kind: 0 for kind in KINDS}
    for kind in KINDS:
        for _ in range(per_kind):
            data = forge(kind, valid, rng, prog.prior())
            accepted[kind] += _same(prog, binary, data, tmp_path, suffix=".ppm" if modality == "image" else ".wav")
    print(f"{modality}: accepted per kind {accepted}")
    assert accepted["reencoded"] == per_kind and accepted["empty_payload"] == 0, accepted


@needs_cc
def test_forged_streams_are_clean_under_address_and_undefined_behaviour_sanitizers(image, tmp_path):
    """No out-of-bounds access, no signed overflow, no bad shift on any path a forged stream takes."""
    prog, c_dir, _ = image
    try:
        binary = native.build(c_dir, cflags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all",
                              ldflags="-fsanitize=address,undefined", binary="bpgan_decode-sanitized")
    except RuntimeError as e:
        pytest.skip(f"no sanitizer runtime: {e}")
    rng = np.random.default_rng(13)
    valid = _stream(prog, (40, 56), rng)
    streams = [_stream(prog, size, rng, version) for size in IMAGE_SIZES for version in (1, 2)]
    for data in streams + [forge(kind, valid, rng, prog.prior()) for kind in KINDS for _ in range(10)]:
        _same(prog, binary, data, tmp_path)


@needs_cc
@pytest.mark.parametrize("version", [1, 2])
def test_the_56_byte_1024x1024_stream_is_refused_in_one_line(image, tmp_path, version):
    prog, _, binary = image
    data = forged_1024(prog.model_hash(), prog.meta["config"]["downsample"], prog.prior().shape[0], version)
    t0 = time.perf_counter()
    got = native.run(binary, data, tmp_path)
    assert time.perf_counter() - t0 < 1.0
    assert got.returncode == 1 and got.output is None and got.stderr.count("\n") == 1
    assert "exceeds the decoder limit of 16384 pixels" in got.stderr
    big = tmp_path / "big_limit"   # a build whose limit admits 1024x1024: then the payload rule refuses it
    emit_c99(prog, big, max_pixels=1024 * 1024, max_width=1024)
    got = native.run(native.build(big), data, tmp_path)
    assert got.returncode == 1 and re.search("cannot carry|empty payload", got.stderr), got.stderr


@needs_cc
def test_bad_files_and_usage_are_one_line_errors(image, tmp_path):
    prog, _, binary = image
    too_big = native.run(binary, b"BPGC" + bytes(native_limit(binary)), tmp_path)
    assert too_big.returncode == 1 and "larger than" in too_big.stderr and too_big.stderr.count("\n") == 1
    for data in (b"", b"BPG", b"JFIF" * 20):
        got = native.run(binary, data, tmp_path)
        assert got.returncode == 1 and got.stderr.count("\n") == 1
    r = subprocess.run([str(binary), str(tmp_path / "missing.bpg"), str(tmp_path / "x.ppm")], capture_output=True)
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1
    assert subprocess.run([str(binary)], capture_output=True).returncode == 2


def native_limit(binary) -> int:
    """The stream size limit baked into this build (model_data.c), as bpgan_decode reports it."""
    text = (Path(binary).parent / "model_data.c").read_text()
    return int(re.search(r"\.max_stream_bytes = (\d+)", text).group(1))


@pytest.mark.parametrize("arch", sorted(CROSS))
def test_qemu_user_decodes_byte_identical(image, audio, arch, tmp_path):
    gcc, qemu = CROSS[arch]
    missing = [tool for tool in (gcc, qemu) if shutil.which(tool) is None]
    if missing:
        print(f"skipping {arch}: {', '.join(missing)} not installed (apt-get install qemu-user gcc-{gcc[:-4]})")
        pytest.skip(f"{', '.join(missing)} not installed")
    rng = np.random.default_rng(5)
    for (prog, c_dir, _), sizes, suffix in ((image, IMAGE_SIZES[:4], ".ppm"), (audio, [(777,), (4096,)], ".wav")):
        binary = native.build(c_dir, cc=gcc, ldflags="-static", binary=f"bpgan_decode-{arch}")
        for size in sizes:
            assert _same(prog, binary, _stream(prog, size, rng), tmp_path, (qemu,), suffix), size
        valid = _stream(prog, sizes[-1], rng)
        for kind in KINDS:   # a few forgeries per kind: the refusals are the same on this ISA too
            for _ in range(3):
                _same(prog, binary, forge(kind, valid, rng, prog.prior()), tmp_path, (qemu,), suffix)


def test_cortex_m4_bare_metal_under_qemu_system_arm_is_byte_identical(image, tmp_path):
    """`make qemu-cortex-m IN= OUT=`: own vector table and linker script, files through semihosting."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if not missing and not list(Path("/usr/lib/arm-none-eabi").glob("**/librdimon.a")):
        missing = ["libnewlib-arm-none-eabi"]
    if missing:
        print(f"skipping Cortex-M: {', '.join(missing)} not installed")
        pytest.skip(f"{', '.join(missing)} not installed")
    prog, c_dir, _ = image
    rng = np.random.default_rng(9)
    streams = [_stream(prog, (24, 40), rng), _stream(prog, (17, 33), rng, version=1),
               forged_1024(prog.model_hash(), prog.meta["config"]["downsample"], prog.prior().shape[0])]
    for i, data in enumerate(streams):
        (c_dir / f"cm{i}.bpg").write_bytes(data)
        (c_dir / f"cm{i}.ppm").unlink(missing_ok=True)
        r = subprocess.run(["make", "-s", "-C", str(c_dir), "qemu-cortex-m", f"IN=cm{i}.bpg", f"OUT=cm{i}.ppm"],
                           capture_output=True, text=True, timeout=120)
        want = native.expected(prog, data, MAX_PIXELS)
        out = c_dir / f"cm{i}.ppm"
        if want is None:
            assert r.returncode != 0 and "bpgan_decode: error: " in r.stdout + r.stderr and not out.exists()
        else:
            assert r.returncode == 0, r.stdout + r.stderr
            assert out.read_bytes() == want


@pytest.mark.parametrize("name", ["bpgan-image-light", "bpgan-audio-light", "sae-spn-light", "gc-light",
                                  "compressgan-light"])
def test_the_shipped_golden_streams_decode_byte_identical_on_every_target(name, tmp_path):
    """zoo/NAME/export/golden.bpg through the C decoder of the shipped program: native, qemu-user, Cortex-M4."""
    from bpgan.export.c99 import emit_c99
    from bpgan.firmware_ref.program import load_program
    from conftest import REPO
    prog = load_program(REPO / "zoo" / name / "export")
    data = (REPO / "zoo" / name / "export" / "golden.bpg").read_bytes()
    audio = name.endswith("audio-light")
    suffix = ".wav" if audio else ".ppm"
    report = emit_c99(prog, tmp_path / "c99", **({"max_frames": 256} if audio else {"max_pixels": 96 * 128}))
    want = native.expected(prog, data, report.max_pixels)
    assert want is not None
    got = native.run(native.build(report.out_dir), data, tmp_path, suffix=suffix)
    assert got.returncode == 0 and got.output == want
    ran = ["x86-64"]
    if audio:   # the TVM engine's mel through the same back end: the same .wav as the reference and the C
        from bpgan.export.tvm.lower import compile_program
        from bpgan.firmware_ref.bitstream_decode import decode_bitstream
        from bpgan.toolkit.audio.commands import write_decoded
        shutil.copytree(prog.source, tmp_path / "prog")
        compile_program(prog, "llvm", tmp_path / "prog")
        header, mel = decode_bitstream(load_program(tmp_path / "prog"), data, "tvm")
        write_decoded(tmp_path / "tvm.wav", mel[0].astype(np.int8), header.original_size[0])
        assert (tmp_path / "tvm.wav").read_bytes() == want
        ran.append("x86-64 TVM")
    for arch, (gcc, qemu) in sorted(CROSS.items()):
        if shutil.which(gcc) and shutil.which(qemu):
            binary = native.build(report.out_dir, cc=gcc, ldflags="-static", binary=f"bpgan_decode-{arch}")
            got = native.run(binary, data, tmp_path, (qemu,), suffix)
            assert got.returncode == 0 and got.output == want, arch
            ran.append(arch)
    if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm") and \
            list(Path("/usr/lib/arm-none-eabi").glob("**/librdimon.a")):
        (report.out_dir / "g.bpg").write_bytes(data)
        r = subprocess.run(["make", "-s", "-C", str(report.out_dir), "qemu-cortex-m", "IN=g.bpg", f"OUT=g{suffix}"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert (report.out_dir / f"g{suffix}").read_bytes() == want
        ran.append("cortex-m4")
    print(f"{name} golden stream byte-identical on: {', '.join(ran)}")


@pytest.mark.parametrize("name", ["bpgan-image-light", "bpgan-audio-light"])
def test_cortex_m4_decodes_within_512_kb_of_ram(name, tmp_path):
    """Linked into 512 KB of SRAM (static + heap + stack, painted and measured on the board), byte-identical to
    the reference: zoo/bpgan-image-light on a 768x512 stream; zoo/bpgan-audio-light, built for 20 s, on its
    golden stream (the streamed back end: memory independent of the duration)."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing or not list(Path("/usr/lib/arm-none-eabi").glob("**/librdimon.a")):
        pytest.skip(f"{', '.join(missing) or 'librdimon (libnewlib-arm-none-eabi)'} not installed")
    from conftest import REPO
    prog = load_program(REPO / "zoo" / name / "export")
    report = emit_c99(prog, tmp_path / "c99")
    audio = name.endswith("audio-light")
    data = (REPO / "zoo" / name / "export" / "golden.bpg").read_bytes() if audio else \
        _stream(prog, (512, 768), np.random.default_rng(5))
    out = "k.wav" if audio else "k.ppm"
    (report.out_dir / "k.bpg").write_bytes(data)
    r = subprocess.run(["make", "-s", "-C", str(report.out_dir), "qemu-cortex-m", "IN=k.bpg", f"OUT={out}",
                        "CM_RAM=524288", "RAM_REPORT=ram.txt"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (report.out_dir / out).read_bytes() == native.expected(prog, data, report.max_pixels)
    used = dict(zip(*[iter((report.out_dir / "ram.txt").read_text().split()[:8])] * 2))
    assert int(used["status"]) == 0 and int(used["total"]) <= 512 * 1024, used
    print(f"Cortex-M4 {name}: {used['total']} bytes of RAM touched ({used['static']} static, "
          f"{used['heap+stack']} heap + stack); arena {report.arena_bytes} for {report.limit}")


def test_the_speech_arena_does_not_grow_with_the_duration(audio):
    """Rings along time and the streamed back end: 20 s and 200 s differ only by the latent's bytes."""
    prog = audio[0]
    down, latent_c = prog.meta["config"]["downsample"], prog.tensors[prog.inputs[0]]["channels"]
    short, long = (plan.arena_bytes(prog, 1, frames // down) for frames in (2500, 25000))
    latent = [-(-latent_c * (frames // down) // 8) * 8 for frames in (2500, 25000)]   # 8-byte aligned
    assert long - short == latent[1] - latent[0] and short < 256 * 1024
