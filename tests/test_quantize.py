"""Post-training quantisation (REFERENCE 2): the grid, the error bound, the name rules."""
import pytest
import torch

from pfgmbench.config import resolve
from pfgmbench.model import build_network
from pfgmbench.quantize import (
    fake_quantize,
    output_layer_names,
    quantize_model,
    selected,
)


@pytest.mark.parametrize("bits", [5, 6, 7, 8, 9])
def test_quantised_tensor_lies_on_the_grid(bits):
    g = torch.Generator().manual_seed(bits)
    w = torch.randn(64, 33, generator=g) * 0.3 + 0.05
    q = fake_quantize(w, bits)
    levels = 2 ** bits - 1
    scale = (w.max() - w.min()) / levels
    zp = int(torch.clamp(-w.min() / scale, 0, levels))
    assert q.unique().numel() <= 2 ** bits
    k = q / scale + zp
    assert torch.allclose(k, k.round(), atol=1e-3)
    assert k.min() >= -1e-3 and k.max() <= levels + 1e-3
    # Round-to-nearest: within scale/2 wherever zp + w/scale is inside the grid. The reference's
    # truncating int() zero point shifts the grid by < 1 step, so the clamped ends are within 1 step.
    inside = ((zp + w / scale) >= 0) & ((zp + w / scale) <= levels)
    assert (q - w)[inside].abs().max() <= scale / 2 + 1e-6
    assert (q - w).abs().max() <= scale + 1e-6


@pytest.mark.parametrize("bits", [4, 9])
def test_an_all_positive_tensor_keeps_its_values_to_half_a_step(bits):
    """A norm's scale (all > 0, quantised under rule 'all'): the range widened to [0, max] keeps every
    value within half a step max / (2^b - 1); the unwidened formula would clamp all w > max - min."""
    w = torch.linspace(0.5, 1.5, 100)
    q = fake_quantize(w, bits)
    step = 1.5 / (2 ** bits - 1)
    assert q.unique().numel() <= 2 ** bits and q.min() >= 0
    assert (q - w).abs().max() <= step / 2 + 1e-6
    assert torch.equal(fake_quantize(-w, bits), -q)       # all-negative: the mirror image


def test_constant_tensor_is_unchanged():
    w = torch.full((5,), 0.7)
    assert torch.equal(fake_quantize(w, 5), w)


def test_paper_name_rules_on_cifar_ncsnpp():
    net = build_network(resolve("cifar10-ncsnpp"), (3, 32, 32))
    names = [n for n, _ in net.named_parameters()]
    kept = [n for n in names if not selected(n, "paper", 32, output_layer_names(net))]
    quant = [n for n in names if selected(n, "paper", 32, output_layer_names(net))]
    assert all("weight" in n for n in quant)
    assert not any(t in n for n in quant for t in ("norm", "affine", "map", "32"))   # the authors' rule, verbatim
    assert any("32x32" in n and "weight" in n for n in kept)          # the 32x32 layers stay float32
    assert any("16x16" in n and "conv" in n for n in quant) and any("8x8" in n for n in quant)
    assert all(not n.endswith("bias") for n in quant)


def test_paper_rule_on_cifar_ncsnpp_quantises_73_tensors_and_36707072_parameters():
    """REFERENCE 9: the authors' rule on their NCSN++ keeps every 32x32 layer, including the output
    norm and convolution, in float32: 73 weight tensors and 36,707,072 parameters are quantised."""
    net = build_network(resolve("cifar10-ncsnpp"), (3, 32, 32))
    out_w = net.model.dec["32x32_aux_conv"].weight.clone()
    tensors, count, total = quantize_model(net, 6, "paper", top_res=32)
    assert (tensors, count, total) == (73, 36_707_072, sum(p.numel() for p in net.parameters()))
    assert torch.equal(net.model.dec["32x32_aux_conv"].weight, out_w)


def test_output_layers_stay_float32_without_a_resolution_tag():
    """The MLP's output layer has no resolution in its name: the paper rule still keeps it."""
    net = build_network(resolve("toy-moons"), (2,))
    torch.nn.init.normal_(net.model.out[1].weight)
    before = net.model.out[1].weight.clone()
    tensors, _, _ = quantize_model(net, 4, "paper", top_res=None)
    assert tensors > 0 and torch.equal(net.model.out[1].weight, before)
    quantize_model(net, 4, "all")
    assert not torch.equal(net.model.out[1].weight, before)


def test_quantize_model_counts_and_leaves_biases():
    net = build_network(resolve("digits-tiny"), (1, 8, 8))
    before = {n: p.clone() for n, p in net.named_parameters()}
    tensors, count, total = quantize_model(net, 5, "paper", top_res=8)
    assert 0 < count < total and tensors > 0
    for n, p in net.named_parameters():
        if n.endswith("bias") or not selected(n, "paper", 8):
            assert torch.equal(p, before[n]), n
        else:
            assert p.unique().numel() <= 32


def test_a_patch_network_keeps_its_inner_output_layers_and_top_level_in_float32():
    """The regime proxy's network runs at 8x8 inside a 32x32 model: the paper rule's resolution tag is the
    network's (8), and the inner output layers are found through the wrapper."""
    from pfgmbench.quantize import top_resolution

    cfg = resolve("digits32-table")
    net = build_network(cfg, (1, 32, 32))
    assert top_resolution({"data_shape": [1, 32, 32], "config": cfg}) == 8
    outputs = output_layer_names(net)
    assert "model.inner.dec.8x8_aux_conv" in outputs
    kept = {n for n, _ in net.named_parameters() if "weight" in n and not selected(n, "output", None, outputs)}
    assert "model.inner.dec.8x8_aux_conv.weight" in kept
    assert "model.inner.enc.8x8_conv.weight" not in kept
