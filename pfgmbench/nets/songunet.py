"""SongUNet: the DDPM++ and NCSN++ U-Nets of Song et al. (2021) as configured by EDM.

DDPM++: positional noise embedding, standard encoder, box resampling [1, 1].
NCSN++: Fourier noise embedding (scale 16, 2x channels), residual encoder, FIR [1, 3, 3, 1].
Written from the architecture description; weights are initialised Xavier-uniform, with
the last convolution of each residual branch near zero (gain 1e-5) so blocks start as identity.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

SKIP_SCALE = math.sqrt(0.5)


def _xavier(module, gain=1.0):
    nn.init.xavier_uniform_(module.weight, gain=gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def _groups(channels):
    return min(32, channels // 4)


def fir_filter(filt):
    """The normalised 2-D FIR filter f f^T / (sum f)^2 of a 1-D resampling filter."""
    f = torch.tensor(filt, dtype=torch.float32)
    return torch.outer(f, f) / f.sum() ** 2


class Conv(nn.Conv2d):
    """A k x k convolution with optional 2x FIR resampling, stored like EDM's Conv2d (weight, bias).

    Unfused (UNet blocks and their skips): up- or down-sample first, then convolve.
    Fused down-sampling (NCSN++'s residual encoder): convolve at the input resolution with
    padding k//2 + filter padding, then apply the FIR filter with stride 2.
    """

    def __init__(self, cin, cout, kernel, up=False, down=False, filt=(1, 1), gain=1.0, fused=False):
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        _xavier(self, gain)
        self.up, self.down, self.fused = up, down, fused
        if up or down:
            self.register_buffer("resample_filter", fir_filter(filt)[None, None], persistent=False)

    def _resample(self, x, channels, padding):
        f = self.resample_filter.to(x.dtype).expand(channels, 1, -1, -1)
        if self.up:
            return F.conv_transpose2d(x, f * 4, stride=2, padding=padding, groups=channels)
        return F.conv2d(x, f, stride=2, padding=padding, groups=channels)

    def forward(self, x):
        w, b = self.weight.to(x.dtype), self.bias.to(x.dtype)
        if not (self.up or self.down):
            return F.conv2d(x, w, b, padding=self.padding)
        f_pad = (self.resample_filter.shape[-1] - 1) // 2
        if self.fused and self.down:
            x = F.conv2d(x, w, padding=self.padding[0] + f_pad)
            return self._resample(x, self.out_channels, 0) + b.reshape(1, -1, 1, 1)
        x = self._resample(x, self.in_channels, f_pad)
        return F.conv2d(x, w, b, padding=self.padding)


class UNetBlock(nn.Module):
    """GroupNorm-SiLU-conv residual block with a noise-embedding bias, optional 1-head self-attention."""

    def __init__(self, cin, cout, emb_channels, up=False, down=False, attention=False,
                 dropout=0.0, filt=(1, 1)):
        super().__init__()
        self.in_channels, self.out_channels = cin, cout
        self.norm0 = nn.GroupNorm(_groups(cin), cin, eps=1e-6)
        self.conv0 = Conv(cin, cout, 3, up=up, down=down, filt=filt)
        self.affine = _xavier(nn.Linear(emb_channels, cout))
        self.norm1 = nn.GroupNorm(_groups(cout), cout, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = Conv(cout, cout, 3, gain=1e-5)
        self.skip = Conv(cin, cout, 1, up=up, down=down, filt=filt) if (cin != cout or up or down) else None
        self.attention = attention
        if attention:
            self.norm2 = nn.GroupNorm(_groups(cout), cout, eps=1e-6)
            self.qkv = Conv(cout, cout * 3, 1, gain=math.sqrt(0.2))
            self.proj = Conv(cout, cout, 1, gain=1e-5)

    def forward(self, x, emb):
        orig = x
        x = self.conv0(F.silu(self.norm0(x)))
        x = F.silu(self.norm1(x + self.affine(emb)[:, :, None, None]))
        x = self.conv1(self.dropout(x))
        x = (x + (self.skip(orig) if self.skip is not None else orig)) * SKIP_SCALE
        if self.attention:
            B, C, H, W = x.shape
            q, k, v = self.qkv(self.norm2(x)).reshape(B, C, 3, H * W).unbind(2)
            w = torch.softmax(torch.einsum("bcq,bck->bqk", q, k) / math.sqrt(C), dim=2)
            a = torch.einsum("bqk,bck->bcq", w, v).reshape(B, C, H, W)
            x = (self.proj(a) + x) * SKIP_SCALE
        return x


class PositionalEmbedding(nn.Module):
    def __init__(self, channels, max_positions=10000):
        super().__init__()
        self.channels, self.max_positions = channels, max_positions

    def forward(self, x):
        half = self.channels // 2
        freqs = (1 / self.max_positions) ** (torch.arange(half, device=x.device, dtype=torch.float32) / (half - 1))
        ang = torch.outer(x, freqs)
        return torch.cat([ang.cos(), ang.sin()], dim=1)


class FourierEmbedding(nn.Module):
    def __init__(self, channels, scale=16):
        super().__init__()
        self.register_buffer("freqs", torch.randn(channels // 2) * scale)

    def forward(self, x):
        ang = torch.outer(x, 2 * math.pi * self.freqs)
        return torch.cat([ang.cos(), ang.sin()], dim=1)


class SongUNet(nn.Module):
    def __init__(self, img_resolution, in_channels, out_channels, label_dim=0, augment_dim=0,
                 model_channels=128, channel_mult=(1, 2, 2, 2), channel_mult_emb=4, num_blocks=4,
                 attn_resolutions=(16,), dropout=0.1, label_dropout=0.0, embedding_type="positional",
                 channel_mult_noise=1, encoder_type="standard", decoder_type="standard",
                 resample_filter=(1, 1)):
        super().__init__()
        assert encoder_type in ("standard", "residual") and decoder_type == "standard"
        emb_ch = model_channels * channel_mult_emb
        noise_ch = model_channels * channel_mult_noise
        self.label_dropout = label_dropout
        filt = tuple(resample_filter)
        blk = dict(emb_channels=emb_ch, dropout=dropout, filt=filt)

        self.map_noise = (PositionalEmbedding(noise_ch) if embedding_type == "positional"
                          else FourierEmbedding(noise_ch))
        self.map_label = _xavier(nn.Linear(label_dim, noise_ch)) if label_dim else None
        self.map_augment = _xavier(nn.Linear(augment_dim, noise_ch, bias=False)) if augment_dim else None
        self.map_layer0 = _xavier(nn.Linear(noise_ch, emb_ch))
        self.map_layer1 = _xavier(nn.Linear(emb_ch, emb_ch))

        # Encoder: names say what each entry does; forward() dispatches on the suffix.
        self.enc = nn.ModuleDict()
        cout, caux = in_channels, in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                self.enc[f"{res}x{res}_conv"] = Conv(cout, model_channels, 3)
                cout = model_channels
            else:
                self.enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, down=True, **blk)
                if encoder_type == "residual":
                    self.enc[f"{res}x{res}_aux_residual"] = Conv(caux, cout, 3, down=True, filt=filt, fused=True)
                    caux = cout
            for i in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_block{i}"] = UNetBlock(cin, cout, attention=res in attn_resolutions, **blk)
        skips = [m.out_channels if isinstance(m, UNetBlock) else model_channels
                 for name, m in self.enc.items() if "aux" not in name]

        self.dec = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = UNetBlock(cout, cout, attention=True, **blk)
                self.dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, **blk)
            else:
                self.dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, up=True, **blk)
            for i in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                attn = i == num_blocks and res in attn_resolutions
                self.dec[f"{res}x{res}_block{i}"] = UNetBlock(cin, cout, attention=attn, **blk)
        # The output head, named as in EDM (it sits at the top resolution, so the authors'
        # quantisation rule, which skips names containing "32" on CIFAR-10, keeps it in float32).
        self.dec[f"{img_resolution}x{img_resolution}_aux_norm"] = nn.GroupNorm(_groups(cout), cout, eps=1e-6)
        self.dec[f"{img_resolution}x{img_resolution}_aux_conv"] = Conv(cout, out_channels, 3, gain=1e-5)
        self.output_layers = (f"dec.{img_resolution}x{img_resolution}_aux_norm",
                              f"dec.{img_resolution}x{img_resolution}_aux_conv")

    def forward(self, x, c_noise, class_labels=None, augment_labels=None):
        emb = self.map_noise(c_noise)
        emb = emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(emb.shape)   # (sin, cos) order
        if self.map_label is not None:
            labels = class_labels
            if self.training and self.label_dropout:
                keep = torch.rand(labels.shape[0], 1, device=labels.device) >= self.label_dropout
                labels = labels * keep
            emb = emb + self.map_label(labels * math.sqrt(self.map_label.in_features))
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))

        skips, aux = [], x
        for name, block in self.enc.items():
            if name.endswith("aux_residual"):
                x = skips[-1] = aux = (x + block(aux)) / math.sqrt(2)
            else:
                x = block(x, emb) if isinstance(block, UNetBlock) else block(x)
                skips.append(x)
        for name, block in self.dec.items():
            if name.endswith("aux_norm"):
                x = block(x)
            elif name.endswith("aux_conv"):
                x = block(F.silu(x))
            else:
                if x.shape[1] != block.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = block(x, emb)
        return x
