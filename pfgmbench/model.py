"""A config's network: the model family's preconditioning head around the configured backbone."""
from pfgmbench.nets import build_backbone
from pfgmbench.physics import build_family


def build_network(cfg, shape, num_classes=0):
    """The preconditioned network a resolved config describes, for examples of `shape`."""
    family = build_family(cfg, shape)
    label_dim = num_classes if cfg["data"].get("cond") else 0
    cin, cout = family.net_channels(shape[0])
    return family.head(build_backbone(cfg["net"], shape, cin, cout, label_dim), label_dim)
