"""Metrics: FID / IS with the TF Inception detector, offline digits metrics, toy metrics."""

HIGHER_IS_BETTER = ("is", "is-digits")     # every other metric is a distance: lower is better
