import torch

from pfgmbench.config import resolve
from pfgmbench.model import build_network
from pfgmbench.nets import EDMPrecond


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_cifar10_parameter_counts_with_9_augment_labels():
    """DDPM++ 55.73 M and NCSN++ 56.40 M (EDM / PFGM++ CIFAR-10 configurations), +-0.5%."""
    for preset, target in [("cifar10-ddpmpp", 55.73e6), ("cifar10-ncsnpp", 56.40e6)]:
        cfg = resolve(preset)
        assert cfg["net"]["augment_dim"] == 9
        n = n_params(build_network(cfg, (3, 32, 32)))
        assert abs(n / target - 1) < 0.005, (preset, n)


def test_songunet_forward_with_labels_and_augment():
    cfg = resolve("digits-tiny", sets=["net.augment_dim=9"], cond=True)
    net = build_network(cfg, (1, 8, 8), num_classes=10)
    y = net(torch.randn(3, 1, 8, 8), torch.tensor([0.1, 1.0, 10.0]),
            torch.eye(10)[:3], torch.zeros(3, 9))
    assert y.shape == (3, 1, 8, 8) and torch.isfinite(y).all()


def test_preconditioning_limits():
    """c_skip -> 1 as sigma -> 0 (the denoiser returns its input); c_out -> sigma_data for large sigma."""
    class Const(torch.nn.Module):
        def forward(self, x, c_noise, class_labels=None, augment_labels=None):
            return torch.ones_like(x)

    pre = EDMPrecond(Const(), sigma_data=0.5)
    x = torch.randn(2, 4)
    out = pre(x, torch.tensor([1e-6, 1e-6]))
    assert torch.allclose(out, x, atol=1e-5)
    big = pre(torch.zeros(1, 4), torch.tensor([1e6]))
    assert torch.allclose(big, torch.full((1, 4), 0.5), rtol=1e-4)


def test_a_patch_network_is_the_inner_network_on_unshuffled_patches():
    """net.patch = 4 (the regime proxy): the backbone is the 8x8 SongUNet applied to the 32x32 image's
    4x4 patches as 16 channels, and its output shuffled back: checked against that direct computation."""
    from pfgmbench.nets.patchify import Patchify

    cfg = resolve("digits32-table")
    net = build_network(cfg, (1, 32, 32))
    backbone = net.model
    assert isinstance(backbone, Patchify) and backbone.inner.enc["8x8_conv"].in_channels == 16
    x, c = torch.randn(2, 1, 32, 32), torch.tensor([0.3, -1.0])
    inner = backbone.inner(x.reshape(2, 1, 8, 4, 8, 4).permute(0, 1, 3, 5, 2, 4).reshape(2, 16, 8, 8), c)
    direct = inner.reshape(2, 1, 4, 4, 8, 8).permute(0, 1, 4, 2, 5, 3).reshape(2, 1, 32, 32)
    torch.testing.assert_close(backbone(x, c), direct)


def test_a_patch_size_that_does_not_divide_the_image_is_a_clear_error():
    import pytest

    from pfgmbench.errors import UserError

    cfg = resolve("digits32-table", sets=["net.patch=3"])
    with pytest.raises(UserError, match="net.patch must be a positive divisor"):
        build_network(cfg, (1, 32, 32))
