"""Metrics: FID / IS with the TF Inception detector, offline digits metrics, toy metrics."""
