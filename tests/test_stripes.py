"""Stripe decoding equals full-frame decoding byte for byte, for every op kind, size and band edge."""
import numpy as np
import pytest

from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.decoder import run_program, symbols_to_latent
from bpgan.firmware_ref.ops import REGISTRY
from bpgan.firmware_ref.program import ProgramError, load_program
from bpgan.firmware_ref.stripes import ROW_MAPS, band_cost, choose_band, heights_of, run_in_stripes, run_streaming
from bpgan.toolkit.cli.decode import main as decode_main
from conftest import REPO
from test_export_tvm import pixel_shuffle_program, program_1d, program_2d, rand_w, random_input

ZOO = REPO / "zoo"


def unpool_program():
    """argmax_unpool by 3 then 2 (int8 logits clipped to [0, 2]: many ties), convs with a halo across blocks."""
    rng = np.random.default_rng(3)
    b = ProgramBuilder({"plan": "argmax_unpool"})
    x = b.input("x", "int8", 5, 2)
    v = b.conv("conv2d", "v", x, rand_w(rng, (2, 2, 3, 3)), rng.integers(-99, 99, 2), 7, "uint8", 5, padding=1,
               relu=True)
    lg = b.clip("lg", b.conv("conv2d", "l", x, rand_w(rng, (18, 2, 3, 3)), rng.integers(-99, 99, 18), 8, "int8", 0,
                             padding=[2, 1, 0, 1]), 0, 2)
    u3 = b.argmax_unpool("u3", v, lg, 3)
    lg2 = b.conv("conv2d", "l2", b.upsample_nearest("vu", v, 3), rand_w(rng, (8, 2, 3, 3)), np.zeros(8), 9, "int16",
                 3, padding=1)
    u2 = b.argmax_unpool("u2", u3, lg2, 2)
    return b.build([b.conv("conv2d", "out", u2, rand_w(rng, (2, 2, 3, 3)), np.zeros(2), 8, "int8", 5, padding=1)])


def test_every_op_kind_has_a_row_map():
    assert set(ROW_MAPS) == set(REGISTRY)


@pytest.mark.parametrize("make, shapes", [
    (program_2d, [(1, 3, 1, 1), (1, 3, 1, 7), (1, 3, 5, 7), (1, 3, 9, 4)]),      # every 2-D kind, left shifts
    (pixel_shuffle_program, [(1, 2, 1, 3), (1, 2, 6, 4), (1, 2, 7, 5)]),        # asymmetric stride / padding
    (program_1d, [(1, 2, 1), (1, 2, 9), (1, 2, 17)]),                            # 1-D: bands along time
    (unpool_program, [(1, 2, 1, 3), (1, 2, 4, 5), (1, 2, 7, 2)]),               # two inputs, 6x the rows
])
@pytest.mark.parametrize("band_rows", [1, 2, 3, 5, 1000])
@pytest.mark.parametrize("run", [run_in_stripes, run_streaming])
def test_bands_equal_the_full_frame_on_every_op_kind(make, shapes, band_rows, run):
    prog = make()
    for i, shape in enumerate(shapes):
        x = random_input(prog, shape, i)
        want = run_program(prog, x)[prog.outputs[0]]
        got = run(prog, x, band_rows)
        assert got.dtype == want.dtype and np.array_equal(got, want), shape


@pytest.mark.parametrize("name, latents", [
    ("bpgan-image-light", [(1, 1), (1, 5), (2, 3), (7, 2)]),  # one latent row; 16..112-pixel-high images
    ("bpgan-audio-light", [(1,), (3,), (25,)]),
])
def test_the_shipped_models_decode_identically_in_bands(name, latents):
    prog = load_program(ZOO / name / "export")
    rng = np.random.default_rng(0)
    for hw in latents:
        lat = symbols_to_latent(prog, rng.integers(0, len(prog.symbols()), (1, prog.prior().shape[0]) + hw))
        want = run_program(prog, lat)[prog.outputs[0]]
        for rows in (1, 7, 16, 48, 10 ** 6):
            assert np.array_equal(run_in_stripes(prog, lat, rows), want), (hw, rows)
            assert np.array_equal(run_streaming(prog, lat, rows), want), (hw, rows)


def test_the_band_plan_bounds_memory_by_the_width():
    prog = load_program(ZOO / "bpgan-image-light" / "export")
    full = band_cost(prog, (32, 48), 512)
    assert full["recompute"] == 0 and full["peak_bytes"] == full["full_frame_peak_bytes"]
    # 768x512 full frame: 16 channels at 768x512 (uint8) and 24 at 384x256 live together
    assert full["full_frame_peak_bytes"] == 16 * 512 * 768 + 24 * 256 * 384
    chosen = choose_band(prog, (32, 48))
    assert chosen["recompute"] <= 0.25 and chosen["peak_bytes"] < full["peak_bytes"] / 3
    wider = band_cost(prog, (32, 96), chosen["band_rows"])   # twice the width: twice the memory, not 4x
    assert wider["peak_bytes"] == 2 * chosen["peak_bytes"]
    costs = [band_cost(prog, (32, 48), rows)["recompute"] for rows in (16, 32, 64, 128)]
    assert costs == sorted(costs, reverse=True)
    assert heights_of(prog, 32)[prog.outputs[0]] == 512


def test_bpgan_decode_band_rows_writes_the_same_png(tmp_path):
    golden = ZOO / "bpgan-image-light" / "export" / "golden.bpg"
    assert decode_main([str(golden), "-o", str(tmp_path / "full.png")]) == 0
    assert decode_main([str(golden), "-o", str(tmp_path / "bands.png"), "--band-rows", "16"]) == 0
    assert (tmp_path / "full.png").read_bytes() == (tmp_path / "bands.png").read_bytes()


def test_streaming_holds_a_few_rows_per_tensor():
    """A row cache instead of halo recompute: memory of a band plus the halo rows, nothing computed twice."""
    prog = load_program(ZOO / "bpgan-image-light" / "export")
    lat = symbols_to_latent(prog, np.random.default_rng(1).integers(0, 8, (1, 8, 8, 48)))  # 128x768
    stats = {}
    want = run_program(prog, lat)[prog.outputs[0]]
    assert np.array_equal(run_streaming(prog, lat, 4, stats), want)
    assert stats["peak_bytes"] < 512 * 1024 < band_cost(prog, (8, 48), 128)["full_frame_peak_bytes"]


def test_instance_norm_is_refused_in_bands_in_one_line():
    """Whole-frame statistics: no band can compute them, so banded and streaming decoding refuse the program (naming
    the last such op: the band plan runs backwards from the output)."""
    from test_export_tvm import norm_chain
    prog = norm_chain()
    x = random_input(prog, (1, 3, 6, 5), 0)
    for run in (run_in_stripes, run_streaming):
        with pytest.raises(ProgramError, match=r"op 'n2' \(instance_norm\) normalizes by whole-frame statistics: "
                                               r"it cannot be decoded in row bands") as err:
            run(prog, x, 2)
        assert "\n" not in str(err.value)
