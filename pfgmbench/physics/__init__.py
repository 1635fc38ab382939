"""Model families, and the one registry that maps a config's `physics.family` to its class.

Adding a family: one module here with a Family subclass (physics/base.py says what it provides),
one line in FAMILIES, and its tests. Nothing else branches on a family's name.
"""
from pfgmbench.errors import UserError
from pfgmbench.physics.base import Family, TrainingExample
from pfgmbench.physics.pfgmpp import EDM, PFGMPP

FAMILIES = {
    "pfgmpp": PFGMPP,
    "edm": EDM,
}


def family_class(name):
    if name not in FAMILIES:
        raise UserError(f"unknown model family '{name}'; choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def build_family(cfg, data_shape):
    """The family object a resolved config describes, for examples of `data_shape`."""
    return family_class(cfg["physics"].get("family", "pfgmpp"))(cfg, data_shape)


__all__ = ["FAMILIES", "Family", "TrainingExample", "build_family", "family_class"]
