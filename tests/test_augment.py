"""EDM's augmentation (REFERENCE 9): each transform alone has its analytic effect, the labels
decode back to the drawn parameters, the draws follow the stated laws, p = 0 is the identity."""
import math

import pytest
import torch

from pfgmbench.augment import AugmentParams, apply, augment, draw_params


def blob(H=32, W=32, at=(0.0, 0.0), width=1.5):
    """A smooth bright dot at `at` = (x, y) pixels from the image centre (x right, y down)."""
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    cx, cy = (W - 1) / 2 + at[0], (H - 1) / 2 + at[1]
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * width ** 2))[None, None]


def centroid(img, near=None, radius=6.0):
    """(x, y) of the intensity centroid relative to the image centre, within `radius` pixels of
    `near` (reflect padding can bring mirrored copies of the dot into the corners, as in EDM)."""
    img = img[0, 0].clamp_min(0)
    H, W = img.shape
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    if near is not None:
        img = img * ((xs - (W - 1) / 2 - near[0]) ** 2 + (ys - (H - 1) / 2 - near[1]) ** 2 <= radius ** 2)
    m = img.sum()
    return ((img * xs).sum() / m - (W - 1) / 2).item(), ((img * ys).sum() / m - (H - 1) / 2).item()


def only(**kw):
    p = AugmentParams.identity(1)
    for k, v in kw.items():
        setattr(p, k, torch.tensor([float(v)]))
    return p


def test_flips_are_flips():
    x = torch.randn(2, 3, 8, 8)
    p = AugmentParams.identity(2)
    p.xflip, p.yflip = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    out = apply(x, p, geometric=False)
    assert torch.equal(out[0], x[0].flip(2)) and torch.equal(out[1], x[1].flip(1))
    # through the 2x wavelet resampling with no geometric change: the same up to rounding
    assert torch.allclose(apply(x, p), out, atol=1e-4)


@pytest.mark.parametrize("wx,wy", [(0.5, -0.3), (-1.2, 0.7), (2.0, 0.0)])
def test_translation_moves_a_dot_by_an_eighth_of_the_image_per_unit(wx, wy):
    x = blob(at=(-1.0, 2.0))
    out = apply(x, only(translate_x=wx, translate_y=wy))
    cx, cy = centroid(out)
    assert cx == pytest.approx(-1.0 + 0.125 * 32 * wx, abs=0.1)
    assert cy == pytest.approx(2.0 + 0.125 * 32 * wy, abs=0.1)


@pytest.mark.parametrize("theta", [0.3, -1.2, math.pi / 2, 2.8])
def test_rotation_turns_a_dot_about_the_centre_and_keeps_the_norm(theta):
    p = (6.0, -3.0)
    x = blob(at=p)
    out = apply(x, only(rotation=theta))
    # the output reads the input at R(theta) q, so a dot at p lands at R(-theta) p. Tolerance 0.2 px:
    # sym6 is not symmetric (centre of mass 5.10, not 5.5), and its phase offsets from the up- and
    # down-sampling cancel exactly only when the map commutes with the diagonal shift (as in EDM).
    want = (math.cos(theta) * p[0] + math.sin(theta) * p[1], -math.sin(theta) * p[0] + math.cos(theta) * p[1])
    assert centroid(out, near=want) == pytest.approx(want, abs=0.2)
    assert out.norm().item() == pytest.approx(x.norm().item(), rel=0.02)


@pytest.mark.parametrize("w", [-1.5, 0.8, 2.0])
def test_isotropic_scale_moves_a_dot_by_2_to_the_point_2_w(w):
    x = blob(at=(4.0, -3.0), width=1.0)
    s = 2 ** (0.2 * w)
    assert centroid(apply(x, only(scale_w=w))) == pytest.approx((4.0 * s, -3.0 * s), abs=0.1)


def test_anisotropic_scale_stretches_one_axis_and_shrinks_the_other():
    x = blob(at=(5.0, 4.0), width=1.0)
    a = 2 ** (0.2 * 1.5)
    assert centroid(apply(x, only(aniso_w=1.5))) == pytest.approx((5.0 * a, 4.0 / a), abs=0.1)
    # about an axis at 90 degrees the roles of x and y swap
    assert centroid(apply(x, only(aniso_w=1.5, aniso_axis=math.pi / 2))) == pytest.approx((5.0 / a, 4.0 * a),
                                                                                          abs=0.1)


def test_labels_decode_back_to_the_drawn_parameters():
    p = draw_params(4000, 1.0, torch.Generator().manual_seed(0))
    lab = p.labels()
    assert lab.shape == (4000, 9)
    assert torch.equal(lab[:, 0], p.xflip) and torch.equal(lab[:, 1], p.yflip)
    assert torch.allclose(lab[:, 2], p.scale_w)
    assert torch.allclose(torch.atan2(lab[:, 4], lab[:, 3] + 1), p.rotation, atol=1e-5)
    assert torch.allclose(lab[:, 5:7].norm(dim=1), p.aniso_w.abs(), atol=1e-5)
    angle = torch.atan2(lab[:, 6], lab[:, 5])
    axis_mod_pi = torch.remainder(angle - p.aniso_axis + 1e-4, math.pi) - 1e-4
    moved = p.aniso_w.abs() > 1e-3
    assert axis_mod_pi[moved].abs().max() < 1e-3
    assert torch.equal(lab[:, 7], p.translate_x) and torch.equal(lab[:, 8], p.translate_y)


def test_draws_follow_edm_laws():
    n = 40000
    _, lab = augment(torch.zeros(n, 1, 2, 2), 0.12, torch.Generator().manual_seed(1))
    on = lab != 0
    assert lab[:, 0].mean().item() == pytest.approx(0.5, abs=0.015)          # x-flip: always drawn, fair coin
    assert lab[:, 1].mean().item() == pytest.approx(0.12 * 0.5, abs=0.006)   # y-flip: p, then a fair coin
    for col in (2, 4):                                                       # scale, rotation: probability p
        assert on[:, col].float().mean().item() == pytest.approx(0.12, abs=0.008)
    assert torch.equal(on[:, 7], on[:, 8])                                   # one coin for both shifts
    assert on[:, 7].float().mean().item() == pytest.approx(0.12, abs=0.008)
    _, lab = augment(torch.zeros(n, 1, 2, 2), 1.0, torch.Generator().manual_seed(2))
    for col in (2, 7, 8):                                                    # N(0, 1) parameters
        assert lab[:, col].mean().item() == pytest.approx(0.0, abs=0.03)
        assert lab[:, col].std().item() == pytest.approx(1.0, abs=0.03)
    rot = torch.atan2(lab[:, 4], lab[:, 3] + 1)                              # uniform on (-pi, pi)
    assert rot.abs().mean().item() == pytest.approx(math.pi / 2, abs=0.03)
    axis_on = (lab[:, 6] != 0).float().mean().item()                         # rotated aniso axis: 50%
    assert axis_on == pytest.approx(0.5, abs=0.015)


def test_p_zero_is_the_identity():
    x = torch.randn(5, 3, 16, 16)
    out, lab = augment(x, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and torch.equal(lab, torch.zeros(5, 9))


def test_untransformed_images_survive_the_resampling_pipeline():
    """With p > 0 every image is resampled (as in EDM); the sym6 pair reconstructs perfectly."""
    x = torch.randn(3, 3, 16, 16)
    assert torch.allclose(apply(x, AugmentParams.identity(3)), x, atol=1e-4)
