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
