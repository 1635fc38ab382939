"""Networks: backbones (SongUNet DDPM++ / NCSN++ for images, an MLP for point clouds) and the
preconditioning heads the model families put around them (nets/precond.py)."""
from pfgmbench.errors import UserError
from pfgmbench.nets.precond import EDMPrecond

SONGUNET_KEYS = ("model_channels", "channel_mult", "channel_mult_emb", "num_blocks", "attn_resolutions",
                 "dropout", "embedding_type", "channel_mult_noise", "encoder_type", "decoder_type",
                 "resample_filter", "augment_dim", "label_dropout")


def build_backbone(net_cfg, shape, in_channels, out_channels, label_dim=0):
    """The backbone a config's `net` section describes, for examples of `shape`."""
    from pfgmbench.nets.mlp import MLP
    from pfgmbench.nets.patchify import Patchify
    from pfgmbench.nets.songunet import SongUNet

    if net_cfg["arch"] == "mlp":
        return MLP(dim=in_channels, out_dim=out_channels, hidden=net_cfg["hidden"], depth=net_cfg["depth"],
                   label_dim=label_dim)
    # net.patch (p) is declared only by presets that use it, so that every other run keeps its folder key
    p = int(net_cfg.get("patch", 1))
    if p < 1 or shape[-1] % p or shape[-2] % p:
        raise UserError(f"net.patch must be a positive divisor of the image size {tuple(shape[-2:])}, got {p}")
    try:
        unet = SongUNet(img_resolution=shape[-1] // p, in_channels=in_channels * p * p,
                        out_channels=out_channels * p * p, label_dim=label_dim,
                        **{k: net_cfg[k] for k in SONGUNET_KEYS})
    except (ValueError, AssertionError, TypeError) as e:
        raise UserError(f"invalid network settings for {shape}: {e or type(e).__name__}; "
                        "channel counts must suit GroupNorm (multiples of 32 above 128)") from None
    return Patchify(unet, p) if p > 1 else unet


__all__ = ["EDMPrecond", "build_backbone"]
