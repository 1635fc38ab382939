"""Model families, and the one registry that maps a config's `physics.family` to its class.

Adding a family: one module here with a Family subclass (physics/base.py says what it provides),
one line in FAMILIES, and its tests. Nothing else branches on a family's name.
"""
from pfgmbench.errors import UserError
from pfgmbench.physics.base import Family, TrainingExample
from pfgmbench.physics.pfgm import PFGM
from pfgmbench.physics.pfgmpp import EDM, PFGMPP
from pfgmbench.physics.sde import VE, VP
from pfgmbench.physics.yukawa import Yukawa

FAMILIES = {
    "pfgmpp": PFGMPP,
    "edm": EDM,
    "pfgm": PFGM,
    "vp": VP,
    "ve": VE,
    "yukawa": Yukawa,
}


def family_class(name):
    if name not in FAMILIES:
        raise UserError(f"unknown model family '{name}'; choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_for_authors_precond(class_name):
    """The family whose networks the authors' preconditioner `class_name` holds (EDM's layout), or None."""
    return next((f for f in FAMILIES.values() if f.authors_precond == class_name), None)


def build_family(cfg, data_shape):
    """The family object a resolved config describes, for examples of `data_shape`."""
    return family_class(cfg["physics"].get("family", "pfgmpp"))(cfg, data_shape)


__all__ = ["FAMILIES", "Family", "TrainingExample", "build_family", "family_class", "family_for_authors_precond"]
