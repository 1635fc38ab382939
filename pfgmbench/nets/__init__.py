"""Networks: SongUNet (DDPM++ / NCSN++) for images, an MLP for toys, EDM preconditioning."""
from pfgmbench.errors import UserError
from pfgmbench.nets.precond import EDMPrecond


def build_network(cfg, shape, num_classes=0):
    """The preconditioned denoiser a config describes, for examples of `shape`."""
    from pfgmbench.nets.mlp import MLP
    from pfgmbench.nets.songunet import SongUNet

    net_cfg = cfg["net"]
    label_dim = num_classes if cfg["data"].get("cond") else 0
    if net_cfg["arch"] == "mlp":
        model = MLP(dim=shape[0], hidden=net_cfg["hidden"], depth=net_cfg["depth"], label_dim=label_dim)
    else:
        keys = ("model_channels", "channel_mult", "channel_mult_emb", "num_blocks", "attn_resolutions",
                "dropout", "embedding_type", "channel_mult_noise", "encoder_type", "decoder_type",
                "resample_filter", "augment_dim", "label_dropout")
        try:
            model = SongUNet(img_resolution=shape[-1], in_channels=shape[0], out_channels=shape[0],
                             label_dim=label_dim, **{k: net_cfg[k] for k in keys})
        except (ValueError, AssertionError, TypeError) as e:
            raise UserError(f"invalid network settings for {shape}: {e or type(e).__name__}; "
                            "channel counts must suit GroupNorm (multiples of 32 above 128)") from None
    return EDMPrecond(model, sigma_data=cfg["physics"]["sigma_data"], label_dim=label_dim)


__all__ = ["EDMPrecond", "build_network"]
