"""ADMM pruning and codebook quantization reach their constraint sets."""
import numpy as np
import torch
from torch import nn

from bpgan.toolkit.compression import ADMMCodebook, ADMMPruner, kmeans_1d, topk_mask
from bpgan.toolkit.quant import LayerFactory, QuantSpec
from bpgan.toolkit.quant.extract import integer_weights


def test_topk_mask_hits_the_target_count():
    w = torch.randn(37, 11)
    for s in (0.0, 0.25, 0.5, 0.9):
        m = topk_mask(w, s)
        assert int(m.sum()) == round(w.numel() * (1 - s))
        assert w[m].abs().min() >= w[~m].abs().max() if 0 < s else True


def _regression_problem():
    torch.manual_seed(0)
    f = LayerFactory(QuantSpec())
    layers = {"a": f.conv(4, 8, 3), "b": f.conv(8, 4, 3)}
    net = nn.Sequential(layers["a"], nn.ReLU(), layers["b"])
    x = torch.rand(16, 4, 8, 8)
    target = net(x).detach() + 0.01 * torch.randn(16, 4, 8, 8)
    return net, layers, x, target


def _train_with_admm(net, x, target, admm, steps, update_every=10):
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(steps):
        loss = ((net(x) - target) ** 2).mean() + admm.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % update_every == 0:
            admm.update()


def test_admm_pruning_reaches_targets_within_one_point():
    net, layers, x, target = _regression_problem()
    targets = {"a": 0.6, "b": 0.3}
    admm = ADMMPruner({n: l.weight for n, l in layers.items()}, targets, rho=0.05)
    _train_with_admm(net, x, target, admm, 200)
    first_residual = admm.residual()
    masks = admm.hard_prune()
    for n, l in layers.items():
        achieved = float((integer_weights(l) == 0).mean())
        assert abs(achieved - targets[n]) <= 0.01, (n, achieved)
        assert int((~masks[n]).sum()) == l.weight.numel() - round(l.weight.numel() * (1 - targets[n]))
    assert first_residual < 0.5  # ADMM pulled the weights towards the sparse set before hard pruning


def test_admm_codebook_leaves_at_most_2_to_the_b_values_per_layer():
    net, layers, x, target = _regression_problem()
    params = {n: l.weight for n, l in layers.items()}
    admm = ADMMCodebook(params, layers, bits=3, rho=0.05)
    _train_with_admm(net, x, target, admm, 60)
    books = admm.hard_assign()
    for n, l in layers.items():
        ints = integer_weights(l).astype(np.int64)
        values = set(np.unique(ints).tolist()) - {0}
        assert len(books[n]) <= 8 and len(values) <= 8
        # the layer's power of two is the codebook's: the stored int8 weights are codebook values
        assert float(admm.scales[n]) == float(l.quant_weight().scale)
        assert values <= set(books[n].tolist())


def test_codebook_assignment_keeps_the_weight_scale_when_the_range_would_shrink():
    # max |w| is 64.3 units of 2^-8: the outer center would round to 64, the power-of-two scale
    # would then halve and every weight would leave its codebook (seen in a 6-step smoke run)
    f = LayerFactory(QuantSpec())
    layer = f.conv(4, 4, 3)
    torch.manual_seed(1)
    with torch.no_grad():
        w = torch.randn_like(layer.weight) * 8 / 256
        w.view(-1)[0] = 64.3 / 256
        layer.weight.copy_(w)
    before = float(layer.quant_weight().scale)
    admm = ADMMCodebook({"a": layer.weight}, {"a": layer}, bits=3, rho=0.05)
    books = admm.hard_assign()
    ints = set(np.unique(integer_weights(layer)).tolist()) - {0}
    assert float(layer.quant_weight().scale) == before == 2.0 ** -8
    assert ints <= set(books["a"].tolist()) and max(np.abs(books["a"].numpy())) > 64


def test_kmeans_codebook_spans_the_range_of_the_values():
    vals = np.concatenate([np.full(500, 10.0), np.full(500, -10.0), [90.4, -70.6]])
    book = kmeans_1d(vals, 4)
    assert book.min() == -71 and book.max() == 90


def test_kmeans_codebook_is_distinct_int8_without_zero():
    vals = np.concatenate([np.full(50, -40.2), np.full(50, 3.1), np.full(50, 99.7)])
    book = kmeans_1d(vals, 4)
    assert set(book.tolist()) == {-40, 3, 100}
