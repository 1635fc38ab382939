"""GenPhys (Liu et al. 2023): which linear PDEs give generative models (dispersion.py: the
s-generative test C2 from the dispersion relation, the talk's tables) and what their solutions do
(simulate.py: spectral solutions from a two-bump start). The Yukawa model family lives in
physics/yukawa.py; its proxy study in tables (pfgmbench reproduce genphys)."""
