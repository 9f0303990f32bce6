"""Metrics: attribute classifier, disentanglement scores, intervention effects, FID/KID, reconstruction, background share."""
