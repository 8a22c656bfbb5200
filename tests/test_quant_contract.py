"""The Brevitas fake-quant layers equal the integer contract bit for bit."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from bpgan.toolkit.quant import RELU4, ConvAct, LayerFactory, QuantSpec, round_half_up, signed
from bpgan.toolkit.quant.quantizers import RELU4_MAX


def rounding_shift(acc: np.ndarray, k: int) -> np.ndarray:
    """(acc + 2^(k-1)) >> k, the integer side of the contract (int64, arithmetic shift)."""
    return (acc + (1 << (k - 1))) >> k if k > 0 else acc << -k


def integer_conv(x_int, w_int, b_int, stride, padding, transpose):
    """Exact int64 conv via float64 torch (all |sums| here are far below 2^53)."""
    x = torch.from_numpy(x_int.astype(np.float64))
    w = torch.from_numpy(w_int.astype(np.float64))
    if transpose:
        acc = torch.nn.functional.conv_transpose2d(x, w, stride=stride, padding=padding)
    else:
        acc = torch.nn.functional.conv2d(x, w, stride=stride, padding=padding)
    acc = acc.numpy().astype(np.int64) + b_int.reshape(1, -1, 1, 1)
    return acc


def layer_integers(layer: ConvAct, in_exp: int):
    qw = layer.conv.quant_weight()
    w_int = qw.int().numpy().astype(np.int64)
    w_exp = -torch.log2(qw.scale).round().to(torch.int64).reshape(-1).numpy()
    w_scale = qw.scale.reshape(-1).detach()
    b_int = round_half_up(layer.conv.bias.detach() / (2.0 ** -in_exp * w_scale)).numpy().astype(np.int64)
    return w_int, w_exp, b_int


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("out_fmt", [RELU4, signed(5), signed(7)])
def test_fake_quant_conv_equals_integer_requantize(transpose, per_channel, out_fmt):
    torch.manual_seed(hash((transpose, per_channel, str(out_fmt))) % 1000)
    f = LayerFactory(QuantSpec(per_channel_weights=per_channel))
    k, stride, pad = (4, 2, 1) if transpose else (3, 1, 1)
    layer = ConvAct(f, 6, 5, k, stride, in_fmt=RELU4, out_fmt=out_fmt, transpose=transpose, padding=pad).eval()
    with torch.no_grad():
        layer.conv.weight.mul_(3.0)
        layer.conv.bias.uniform_(-1, 1)
    x_int = np.random.default_rng(1).integers(0, 256, size=(2, 6, 7, 9))
    x = torch.from_numpy(x_int * 2.0 ** -6).float()
    with torch.no_grad():
        y = layer(x).numpy()

    w_int, w_exp, b_int = layer_integers(layer, 6)
    assert np.abs(w_int).max() <= 127 and np.all(w_exp == w_exp.round())
    acc = integer_conv(x_int, w_int, b_int, stride, pad, transpose)
    out_exp = 6 if out_fmt == RELU4 else out_fmt[1]
    shift = (6 + w_exp - out_exp).reshape(1, -1, 1, 1)
    lo, hi = (0, 255) if out_fmt == RELU4 else (-128, 127)
    y_int = np.clip(np.vectorize(rounding_shift)(acc, np.broadcast_to(shift, acc.shape)), lo, hi)
    np.testing.assert_array_equal(y * 2.0 ** out_exp, y_int)


def test_relu4_is_uint8_at_two_to_minus_six():
    layer = LayerFactory(QuantSpec()).act(RELU4)
    x = torch.linspace(-2, 6, 1001)
    y = layer(x)
    assert y.min() == 0 and y.max() == RELU4_MAX == 255 / 64
    np.testing.assert_array_equal((y * 64).numpy(), np.round(y.numpy() * 64))


@settings(max_examples=200, deadline=None)
@given(st.integers(-2**20, 2**20), st.integers(1, 12))
def test_round_half_up_equals_rounding_shift(acc, k):
    """floor(acc * 2^-k + 0.5) == (acc + 2^(k-1)) >> k, ties included (float64 is exact here)."""
    got = round_half_up(torch.tensor(acc * 2.0 ** -k, dtype=torch.float64)).item()
    assert got == rounding_shift(np.int64(acc), k)


def test_ties_round_up_not_to_even():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5])
    assert round_half_up(x).tolist() == [1.0, 2.0, 3.0, 0.0, -1.0]
