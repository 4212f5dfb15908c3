"""ENet: shapes, odd sizes, parameter count, gradients."""

import pytest
import torch

from wlearn.models.enet import ENet


def test_parameter_count_matches_paper():
    n = sum(p.numel() for p in ENet(19).parameters())
    assert 0.33e6 < n < 0.39e6  # the paper: 0.36 M for Cityscapes


@pytest.mark.parametrize("size", [(64, 128), (61, 97), (33, 40)])
def test_output_shape_any_size(size):
    m = ENet(5, width=0.25).eval()
    with torch.no_grad():
        y = m(torch.randn(2, 3, *size))
    assert y.shape == (2, 5) + size and torch.isfinite(y).all()


def test_width_shrinks_and_architecture_present():
    small, big = ENet(19, 0.25), ENet(19, 1.0)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in big.parameters()) / 5
    mods = list(big.modules())
    assert sum(isinstance(m, torch.nn.MaxUnpool2d) for m in mods) == 2
    assert any(isinstance(m, torch.nn.PReLU) for m in big.stage2.modules())
    assert not any(isinstance(m, torch.nn.PReLU) for m in big.stage4.modules())
    dil = {m.dilation[0] for m in big.stage2.modules() if isinstance(m, torch.nn.Conv2d)}
    assert dil == {1, 2, 4, 8, 16}
    kernels = {m.kernel_size for m in big.stage3.modules() if isinstance(m, torch.nn.Conv2d)}
    assert (5, 1) in kernels and (1, 5) in kernels
    assert any(isinstance(m, torch.nn.Dropout2d) for m in mods)


def test_gradients_flow_to_every_parameter():
    torch.manual_seed(0)
    m = ENet(4, width=0.25)
    y = m(torch.randn(2, 3, 32, 48))
    torch.nn.functional.cross_entropy(y, torch.randint(0, 4, (2, 32, 48))).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_classes"):
        ENet(1)
    with pytest.raises(ValueError, match="width"):
        ENet(19, width=0)
    with pytest.raises(ValueError, match="x"):
        ENet(3, 0.25)(torch.randn(3, 32, 32))
