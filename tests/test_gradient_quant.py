"""8-bit gradient quantization: gradients land on a power-of-two int8 grid, per module, and still train."""
import math

import torch
from torch import nn

from bpgan.toolkit.quant import GradQuant8
from bpgan.toolkit.quant.gradient import _QuantizeGrad  # noqa: F401  (the autograd function under test)


def grad_through(module, g):
    x = torch.zeros_like(g, requires_grad=True)
    module(x).backward(g)
    return x.grad


def test_gradients_land_on_power_of_two_int8_grid():
    torch.manual_seed(0)
    q = GradQuant8()
    g = torch.randn(4, 8, 5, 5) * 3e-3
    out = grad_through(q, g)
    scale = float(q.scale)
    assert math.log2(scale) == round(math.log2(scale))
    ints = out / scale
    assert torch.equal(ints, torch.round(ints))
    assert ints.abs().max() <= 127
    # round half up of g / scale, the contract's rule
    assert torch.equal(ints, torch.floor(g / scale + 0.5).clamp(-127, 127))


def test_each_module_keeps_its_own_statistics():
    a, b = GradQuant8(), GradQuant8()
    grad_through(a, torch.full((10,), 1e-2))
    grad_through(b, torch.full((10,), 1e-5))
    assert a.running_max > 100 * b.running_max
    assert a.scale > b.scale


def test_running_max_is_an_average_over_steps():
    q = GradQuant8(momentum=0.5)
    grad_through(q, torch.full((3,), 1.0))
    grad_through(q, torch.full((3,), 3.0))
    assert float(q.running_max) == 2.0


def test_stochastic_rounding_is_unbiased():
    torch.manual_seed(0)
    q = GradQuant8(stochastic=True)
    g = torch.full((20000,), 0.3)
    g[0] = 127.0  # fixes the scale at 1.0
    out = grad_through(q, g)
    assert float(q.scale) == 1.0
    assert set(out[1:].unique().tolist()) == {0.0, 1.0}
    assert abs(float(out[1:].mean()) - 0.3) < 0.02


def test_forward_is_identity_and_no_grad_passes_through():
    q = GradQuant8()
    x = torch.randn(5)
    assert torch.equal(q(x), x)


def test_small_model_still_trains_with_8bit_gradients():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), GradQuant8(), nn.ReLU(), nn.Linear(16, 1), GradQuant8())
    x = torch.randn(256, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(300):
        loss = ((net(x) - y) ** 2).mean()
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.05 * first
