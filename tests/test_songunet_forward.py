"""SongUNet layer by layer against direct computations (REFERENCE 9): a forward that is wrong but has
the right parameter count (e.g. NCSN++'s fused down-sampling done as 'filter, then convolve') fails.

FIR resampling is checked against explicit numpy sums; convolutions, norms and attention against
torch.nn.functional calls written out here, with the weights taken from the layer under test.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import randomise

from pfgmbench.nets.songunet import (
    Conv,
    FourierEmbedding,
    PositionalEmbedding,
    SongUNet,
    UNetBlock,
)


def fir_1d(filt, up):
    g = np.asarray(filt, np.float64)
    return g / g.sum() * (2 if up else 1)     # the 2-D filter f f^T / (sum f)^2 (x4 for up) is separable


def down_1d(x, taps, pad):
    """out[o] = sum_t x[2 o - pad + t] taps[t] along the last axis (zeros outside)."""
    n, K = x.shape[-1], len(taps)
    out = np.zeros(x.shape[:-1] + ((n + 2 * pad - K) // 2 + 1,))
    for o in range(out.shape[-1]):
        for t in range(K):
            i = 2 * o - pad + t
            if 0 <= i < n:
                out[..., o] += x[..., i] * taps[t]
    return out


def up_1d(x, taps, pad):
    """Transposed stride-2 filter: out[o] = sum_i x[i] taps[o + pad - 2 i] along the last axis."""
    n, K = x.shape[-1], len(taps)
    out = np.zeros(x.shape[:-1] + (2 * (n - 1) - 2 * pad + K,))
    for o in range(out.shape[-1]):
        for i in range(n):
            t = o + pad - 2 * i
            if 0 <= t < K:
                out[..., o] += x[..., i] * taps[t]
    return out


def resample_np(x, filt, up, pad):
    """Separable 2-D FIR resampling of (B, C, H, W), rows then columns."""
    f = up_1d if up else down_1d
    taps = fir_1d(filt, up)
    y = f(np.asarray(x, np.float64), taps, pad)
    return np.swapaxes(f(np.swapaxes(y, -1, -2), taps, pad), -1, -2)


def close(a, b, tol=1e-5):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    assert a.shape == b.shape, (a.shape, b.shape)
    assert (a - b).abs().max().item() < tol * max(1.0, b.abs().max().item()), (a - b).abs().max().item()




X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_plain_convolution():
    c = randomise(Conv(3, 5, 3))
    close(c(X), F.conv2d(X, c.weight, c.bias, padding=1))


@pytest.mark.parametrize("filt", [(1, 1), (1, 3, 3, 1)])
def test_down_sampling_filters_then_convolves(filt):
    c = randomise(Conv(3, 4, 3, down=True, filt=filt))
    pad = (len(filt) - 1) // 2
    low = torch.from_numpy(resample_np(X.numpy(), filt, up=False, pad=pad)).float()
    close(c(X), F.conv2d(low, c.weight, c.bias, padding=1))
    if filt == (1, 1):   # the box filter is 2x2 average pooling
        close(low, F.avg_pool2d(X, 2))


@pytest.mark.parametrize("filt", [(1, 1), (1, 3, 3, 1)])
def test_up_sampling_filters_then_convolves(filt):
    c = randomise(Conv(3, 4, 1, up=True, filt=filt))
    pad = (len(filt) - 1) // 2
    high = torch.from_numpy(resample_np(X.numpy(), filt, up=True, pad=pad)).float()
    close(c(X), F.conv2d(high, c.weight, c.bias))
    if filt == (1, 1):   # the box filter up-samples to nearest neighbours
        close(high, F.interpolate(X, scale_factor=2, mode="nearest"))


def test_fused_down_sampling_convolves_at_full_resolution_then_filters():
    """NCSN++'s residual encoder: 3x3 conv at the input resolution (padding 1 + filter padding 1),
    then the [1,3,3,1] FIR with stride 2 and no padding; 'filter, then convolve' differs."""
    filt = (1, 3, 3, 1)
    c = randomise(Conv(3, 4, 3, down=True, filt=filt, fused=True))
    full = F.conv2d(X, c.weight, padding=2).detach().numpy()
    want = torch.from_numpy(resample_np(full, filt, up=False, pad=0)).float() + c.bias.reshape(1, -1, 1, 1)
    close(c(X), want)
    unfused = randomise(Conv(3, 4, 3, down=True, filt=filt, fused=False))
    assert (unfused(X) - c(X)).abs().max() > 1e-2


def _block_direct(b, x, emb):
    """A UNet block written out: GN-SiLU-conv, + affine(emb), GN-SiLU-conv, skip, x sqrt(1/2), attention."""
    h = b.conv0(F.silu(F.group_norm(x, b.norm0.num_groups, b.norm0.weight, b.norm0.bias, eps=1e-6)))
    h = h + F.linear(emb, b.affine.weight, b.affine.bias)[:, :, None, None]
    h = F.silu(F.group_norm(h, b.norm1.num_groups, b.norm1.weight, b.norm1.bias, eps=1e-6))
    h = b.conv1(h)
    h = (h + (b.skip(x) if b.skip is not None else x)) / math.sqrt(2)
    if b.attention:
        B, C, H, W = h.shape
        qkv = F.conv2d(F.group_norm(h, b.norm2.num_groups, b.norm2.weight, b.norm2.bias, eps=1e-6),
                       b.qkv.weight, b.qkv.bias)
        q, k, v = (qkv[:, j::3].flatten(2).transpose(1, 2) for j in range(3))   # (B, HW, C), one head
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, C, H, W)
        h = (F.conv2d(a, b.proj.weight, b.proj.bias) + h) / math.sqrt(2)
    return h


@pytest.mark.parametrize("kw", [dict(cin=8, cout=8), dict(cin=8, cout=16), dict(cin=8, cout=8, attention=True),
                                dict(cin=8, cout=16, down=True, filt=(1, 3, 3, 1)),
                                dict(cin=16, cout=8, up=True, filt=(1, 1))])
def test_unet_block(kw):
    cin, cout = kw.pop("cin"), kw.pop("cout")
    b = randomise(UNetBlock(cin, cout, emb_channels=12, dropout=0.0, **kw)).eval()
    g = torch.Generator().manual_seed(2)
    x, emb = torch.randn(2, cin, 8, 8, generator=g), torch.randn(2, 12, generator=g)
    close(b(x, emb), _block_direct(b, x, emb))
    if kw.get("down") or kw.get("up"):   # the skip path resamples and projects with a 1x1 conv
        assert b.skip.weight.shape[-1] == 1


def test_noise_embeddings():
    c = torch.tensor([-1.3, 0.0, 0.7])
    pos = PositionalEmbedding(8)
    freqs = (1 / 10000) ** (torch.arange(4) / 3)          # endpoint: the last frequency is 1/10000
    close(pos(c), torch.cat([torch.cos(c[:, None] * freqs), torch.sin(c[:, None] * freqs)], 1))
    four = FourierEmbedding(8, scale=16)
    ang = 2 * math.pi * c[:, None] * four.freqs            # angles of ~100 rad: float32 rounding ~1e-5
    close(four(c), torch.cat([ang.cos(), ang.sin()], 1), tol=1e-4)
    torch.manual_seed(0)
    assert FourierEmbedding(512, scale=16).freqs.std().item() == pytest.approx(16, rel=0.15)   # N(0, 16^2)


def _unet_direct(net, x, c_noise, labels, aug):
    """The whole SongUNet forward written out from the description (EDM's SongUNet)."""
    emb = net.map_noise(c_noise)
    half = emb.shape[1] // 2
    emb = torch.cat([emb[:, half:], emb[:, :half]], 1)               # (sin, cos) order
    emb = emb + F.linear(labels * math.sqrt(labels.shape[1]), net.map_label.weight, net.map_label.bias)
    emb = emb + F.linear(aug, net.map_augment.weight)
    emb = F.silu(F.linear(F.silu(F.linear(emb, net.map_layer0.weight, net.map_layer0.bias)),
                          net.map_layer1.weight, net.map_layer1.bias))
    enc, skips, aux, h = net.enc, [], x, None
    h = F.conv2d(x, enc["8x8_conv"].weight, enc["8x8_conv"].bias, padding=1)
    skips.append(h)
    h = _block_direct(enc["8x8_block0"], h, emb)
    skips.append(h)
    h = _block_direct(enc["4x4_down"], h, emb)
    # residual encoder: the image path, fused-down-sampled, joins the feature path
    ar = enc["4x4_aux_residual"]
    fused = resample_np(F.conv2d(aux, ar.weight, padding=2).numpy(), (1, 3, 3, 1), up=False, pad=0)
    h = aux = (h + torch.from_numpy(fused).float() + ar.bias.reshape(1, -1, 1, 1)) / math.sqrt(2)
    skips.append(h)
    h = _block_direct(enc["4x4_block0"], h, emb)
    skips.append(h)
    dec = net.dec
    h = _block_direct(dec["4x4_in1"], _block_direct(dec["4x4_in0"], h, emb), emb)
    for name in ("4x4_block0", "4x4_block1"):
        h = _block_direct(dec[name], torch.cat([h, skips.pop()], 1), emb)
    h = _block_direct(dec["8x8_up"], h, emb)
    for name in ("8x8_block0", "8x8_block1"):
        h = _block_direct(dec[name], torch.cat([h, skips.pop()], 1), emb)
    assert not skips
    # decoder head at the top resolution: GN, SiLU, 3x3 conv
    hn = F.group_norm(h, dec["8x8_aux_norm"].num_groups, dec["8x8_aux_norm"].weight, dec["8x8_aux_norm"].bias,
                      eps=1e-6)
    return F.conv2d(F.silu(hn), dec["8x8_aux_conv"].weight, dec["8x8_aux_conv"].bias, padding=1)


def test_ncsnpp_style_network_with_residual_encoder_and_head():
    net = SongUNet(img_resolution=8, in_channels=3, out_channels=3, label_dim=4, augment_dim=9, model_channels=16,
                   channel_mult=(1, 2), num_blocks=1, attn_resolutions=(4,), dropout=0.0,
                   embedding_type="fourier", channel_mult_noise=2, encoder_type="residual",
                   resample_filter=(1, 3, 3, 1))
    randomise(net, seed=3).eval()
    g = torch.Generator().manual_seed(4)
    c_noise = torch.randn(2, generator=g)
    labels, aug = torch.randn(2, 4, generator=g), torch.randn(2, 9, generator=g)
    with torch.no_grad():
        close(net(X, c_noise, labels, aug), _unet_direct(net, X, c_noise, labels, aug), tol=1e-4)
    assert net.output_layers == ("dec.8x8_aux_norm", "dec.8x8_aux_conv")
