"""Latent probes: per-level linear classifiers, attribute directions, PCA bases, and their files."""
