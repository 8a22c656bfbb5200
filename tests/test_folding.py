"""BatchNorm folds into the preceding conv exactly (float64 check)."""
import torch

from bpgan.toolkit.quant import ConvAct, LayerFactory, fold_batchnorm, signed


def test_folded_conv_equals_conv_then_batchnorm():
    torch.manual_seed(0)
    for transpose in (False, True):
        f = LayerFactory(None, batchnorm=True)
        k, s, p = (4, 2, 1) if transpose else (3, 1, 1)
        layer = ConvAct(f, 5, 6, k, s, out_fmt=signed(5), transpose=transpose, padding=p).double()
        with torch.no_grad():
            layer.bn.running_mean.uniform_(-1, 1)
            layer.bn.running_var.uniform_(0.5, 2)
            layer.bn.weight.uniform_(0.5, 1.5)
            layer.bn.bias.uniform_(-1, 1)
        layer.eval()
        folded = ConvAct(LayerFactory(None), 5, 6, k, s, out_fmt=signed(5), transpose=transpose, padding=p)
        folded = folded.double()
        folded.load_state_dict(fold_batchnorm(layer))
        x = torch.randn(2, 5, 7, 7, dtype=torch.float64)
        torch.testing.assert_close(folded(x), layer(x), rtol=0, atol=1e-12)
        assert not any(k.startswith("bn.") and "running" in k for k in folded.state_dict())
