"""Non-leaky geometric augmentation as EDM trains with it (EDM appendix, REFERENCE 9).

The network sees the augmentation as 9 labels, so it learns the clean distribution when the
labels are zero at sampling time. Transforms and draws, in this order:
  x-flip        probability min(1e8 p, 1) = 1, then a fair coin: a 50% flip
  y-flip        probability p, then a fair coin
  scale         s = 2^(0.2 w), w ~ N(0, 1), probability p
  rotation      angle uniform in (-pi, pi), probability p
  anisotropic   s = 2^(0.2 w), w ~ N(0, 1), about an axis at angle r ~ U(-pi, pi) taken
                with probability 0.5 (else r = 0); probability p
  translation   shift = 0.125 * (W, H) * (w_x, w_y), w ~ N(0, I_2), one coin for both axes
Labels: xflip, yflip, w_scale, cos(rot) - 1, sin(rot), w_aniso cos r, w_aniso sin r, w_x, w_y.
The geometric part is one affine map per image, executed on a 2x grid: reflect-pad, upsample
with the sym6 wavelet low-pass filter, bilinear sampling, sym6 down-sampling and crop.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pfgmbench.physics import random as draw

AUGMENT_DIM = 9
XFLIP_WEIGHT = 1e8       # EDM enables x-flips with this probability multiplier: always drawn
SCALE_STD = 0.2          # log2 std of isotropic scaling
ANISO_STD = 0.2          # log2 std of anisotropic scaling
ANISO_AXIS_PROB = 0.5    # probability that anisotropic scaling uses a rotated axis
TRANSLATE_STD = 0.125    # std of the translation, relative to the image size

# Low-pass decomposition filter of the Symlet-6 wavelet (12 taps): an orthonormal filter, so
# zero-insertion upsampling followed by the matching down-sampling reconstructs exactly.
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)


@dataclass
class AugmentParams:
    """Per-image parameters (tensors of shape (B,)); zero everywhere means no augmentation."""
    xflip: torch.Tensor
    yflip: torch.Tensor
    scale_w: torch.Tensor
    rotation: torch.Tensor
    aniso_w: torch.Tensor
    aniso_axis: torch.Tensor
    translate_x: torch.Tensor
    translate_y: torch.Tensor

    @classmethod
    def identity(cls, batch, device="cpu"):
        z = torch.zeros(batch, device=device)
        return cls(*([z] * 8))

    def labels(self):
        """The 9 augmentation labels the network is conditioned on, (B, 9) float32."""
        cols = [self.xflip, self.yflip, self.scale_w, self.rotation.cos() - 1, self.rotation.sin(),
                self.aniso_w * self.aniso_axis.cos(), self.aniso_w * self.aniso_axis.sin(),
                self.translate_x, self.translate_y]
        return torch.stack([c.to(torch.float32) for c in cols], dim=1)


def draw_params(batch, p, generator=None, device="cpu"):
    """Draw AugmentParams for `batch` images with probability multiplier p (0 <= p <= 1)."""
    def rand(*shape):
        return draw.rand(shape, generator, device)

    def randn(*shape):
        return draw.randn(shape, generator, device)

    def gated(value, prob, coin_shape=None):
        coin = rand(*(coin_shape or (batch,))) < prob
        return torch.where(coin, value, torch.zeros_like(value))

    def flip(prob):
        w = draw.randint(2, (batch,), generator, device).to(torch.float32)
        return gated(w, prob)

    xflip = flip(min(XFLIP_WEIGHT * p, 1.0))
    yflip = flip(p)
    scale_w = gated(randn(batch), p)
    rotation = gated((rand(batch) * 2 - 1) * math.pi, p)
    aniso_w, axis = randn(batch), (rand(batch) * 2 - 1) * math.pi
    aniso_w = gated(aniso_w, p)
    axis = gated(axis, ANISO_AXIS_PROB)
    shift = gated(randn(2, batch), p, coin_shape=(1, batch))
    return AugmentParams(xflip, yflip, scale_w, rotation, aniso_w, axis, shift[0], shift[1])


def _mat(a, b, c, d, e, f, device=None):
    """3x3 affine matrices [[a, b, c], [d, e, f], [0, 0, 1]]: batched (B, 3, 3) when an entry
    is a (B,) tensor, else a single (3, 3) matrix that broadcasts against a batch."""
    ref = next((t for t in (a, b, c, d, e, f) if torch.is_tensor(t)), None)
    shape = ref.shape if ref is not None else ()
    device = ref.device if ref is not None else device
    out = torch.zeros(*shape, 3, 3, device=device)
    for (i, j), v in zip([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], (a, b, c, d, e, f)):
        out[..., i, j] = v
    out[..., 2, 2] = 1
    return out


def _scale(sx, sy, device=None):
    return _mat(sx, 0, 0, 0, sy, 0, device)


def _rotate(theta):
    """Rotation by theta: [[cos, -sin], [sin, cos]]."""
    return _mat(theta.cos(), -theta.sin(), 0, theta.sin(), theta.cos(), 0)


def _translate(tx, ty, device=None):
    return _mat(1, 0, tx, 0, 1, ty, device)


def inverse_map(params, H, W):
    """G^-1 (B, 3, 3): where each output pixel reads the input, in pixel units about the image
    centre. Each transform contributes its inverse, composed right to left in draw order."""
    s = torch.exp2(SCALE_STD * params.scale_w)
    a = torch.exp2(ANISO_STD * params.aniso_w)
    r = params.aniso_axis
    return (_scale(1 / s, 1 / s) @ _rotate(params.rotation)
            @ _rotate(-r) @ _scale(1 / a, a) @ _rotate(r)
            @ _translate(-TRANSLATE_STD * W * params.translate_x, -TRANSLATE_STD * H * params.translate_y))


def _fir(x, taps, axis, stride=1, padding=0):
    """Depthwise 1-D filter along the last (axis=3) or second-to-last (axis=2) dimension."""
    C = x.shape[1]
    k = torch.tensor(taps, dtype=x.dtype, device=x.device)
    k = k.reshape(1, 1, 1, -1) if axis == 3 else k.reshape(1, 1, -1, 1)
    pad = (0, padding) if axis == 3 else (padding, 0)
    st = (1, stride) if axis == 3 else (stride, 1)
    return F.conv2d(x, k.expand(C, 1, *k.shape[2:]), stride=st, padding=pad, groups=C)


def _zero_insert(x, axis):
    """[a, b, c] -> [a, 0, b, 0, c] along `axis` (2x upsampling before the interpolation filter)."""
    n = x.shape[axis]
    shape = list(x.shape)
    shape[axis] = 2 * n - 1
    out = x.new_zeros(shape)
    index = [slice(None)] * 4
    index[axis] = slice(0, None, 2)
    out[tuple(index)] = x
    return out


def warp(images, g_inv):
    """Resample images (B, C, H, W) through per-image inverse maps (B, 3, 3) on a 2x grid."""
    B, C, H, W = images.shape
    taps = len(SYM6)
    border = taps // 4                       # output border kept for the down-sampling filter
    cx, cy = (W - 1) / 2, (H - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]],
                           dtype=torch.float32, device=images.device).T
    reach = (g_inv @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)          # (xy, B * 4)
    need = torch.cat([-reach, reach]).amax(dim=1)                            # left, top, right, bottom
    need = need + torch.tensor([2 * border - cx, 2 * border - cy] * 2, device=images.device)
    limit = torch.tensor([W - 1, H - 1] * 2, dtype=torch.float32, device=images.device)
    left, top, right, bottom = (int(v) for v in need.clamp(min=0).minimum(limit).ceil())
    x = F.pad(images, [left, right, top, bottom], mode="reflect")
    dev = images.device
    g = _translate((left - right) / 2, (top - bottom) / 2, dev) @ g_inv

    # 2x upsampling: zero insertion, then the time-reversed wavelet filter along each axis.
    up_pad = (taps + 1) // 2
    x = _fir(_zero_insert(x, 3), SYM6[::-1], axis=3, padding=up_pad)
    x = _fir(_zero_insert(x, 2), SYM6[::-1], axis=2, padding=up_pad)
    g = _scale(2, 2, dev) @ g @ _scale(0.5, 0.5, dev)                # pixel units of the 2x grid
    g = _translate(-0.5, -0.5, dev) @ g @ _translate(0.5, 0.5, dev)  # pixel centres: u = 2 x + 0.5

    # Bilinear sampling of the 2x output grid (with its border), in grid_sample's [-1, 1] units.
    out_h, out_w = 2 * (H + 2 * border), 2 * (W + 2 * border)
    theta = (_scale(2 / x.shape[3], 2 / x.shape[2], dev) @ g @ _scale(out_w / 2, out_h / 2, dev))[:, :2, :]
    grid = F.affine_grid(theta, [B, C, out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # 2x down-sampling with the wavelet filter, then crop the border.
    down_pad = (taps - 1) // 2
    x = _fir(x, SYM6, axis=3, stride=2, padding=down_pad)[:, :, :, border:-border]
    x = _fir(x, SYM6, axis=2, stride=2, padding=down_pad)[:, :, border:-border, :]
    return x


def apply(images, params, geometric=True):
    """Images transformed by `params`: the flips exactly, the rest as one resampled affine map."""
    view = (-1, 1, 1, 1)
    x = torch.where(params.xflip.reshape(view) == 1, images.flip(3), images)
    x = torch.where(params.yflip.reshape(view) == 1, x.flip(2), x)
    if geometric:
        x = warp(x, inverse_map(params, *images.shape[2:]))
    return x


def augment(images, p, generator=None):
    """(augmented images, labels (B, 9)) with augmentation probability p. As in EDM, once any
    geometric transform is enabled (p > 0) every image goes through the resampling pipeline;
    p = 0 returns the images unchanged with zero labels."""
    B = images.shape[0]
    if p == 0:
        return images, AugmentParams.identity(B, images.device).labels()
    params = draw_params(B, p, generator, images.device)
    return apply(images, params), params.labels()
