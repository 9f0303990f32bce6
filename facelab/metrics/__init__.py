"""Metrics: disentanglement scores (and, later, FID, attribute classifier, background share)."""
