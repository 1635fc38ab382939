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
    from pfgmbench.nets.songunet import SongUNet

    if net_cfg["arch"] == "mlp":
        return MLP(dim=in_channels, out_dim=out_channels, hidden=net_cfg["hidden"], depth=net_cfg["depth"],
                   label_dim=label_dim)
    try:
        return SongUNet(img_resolution=shape[-1], in_channels=in_channels, out_channels=out_channels,
                        label_dim=label_dim, **{k: net_cfg[k] for k in SONGUNET_KEYS})
    except (ValueError, AssertionError, TypeError) as e:
        raise UserError(f"invalid network settings for {shape}: {e or type(e).__name__}; "
                        "channel counts must suit GroupNorm (multiples of 32 above 128)") from None


__all__ = ["EDMPrecond", "build_backbone"]
