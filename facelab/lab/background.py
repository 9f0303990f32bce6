"""The Background tab (seed 002): a face's original / grey / blur variants, and models trained on each compared.

Masks come from ground truth for synthetic examples and from rembg for uploaded photos. The
comparison puts each model's reconstruction of its own variant side by side, with PCA explained-
variance curves, the background share of latent variance, FID and probe accuracies from the bundles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from facelab.data import background
from facelab.hub import Bundle
from facelab.imaging import from_pil, to_pil
from facelab.lab.bundles import LabError
from facelab.lab.latents import decode, encode
from facelab.lab.plots import bars, pca_curves
from facelab.lab.probes import pca_keys, probes_of, table_keys
from facelab.lab.results import metrics, pick

if TYPE_CHECKING:  # matplotlib loads only when a figure is drawn: ~1 s off the app's cold start
    from matplotlib.figure import Figure


WORK_SIZE = 256  # side of the face crop the mask and variants are computed at
COMPARE_WORDS = ("background", "fid", "kid", "fd_attr", "mse", "psnr", "bpd", "precision", "beta_vae", "mig")


@dataclass
class Variants:
    """A face, its mask and its three background variants, and how the mask was made."""

    images: dict[str, Image.Image]  # original, grey, blur, mask
    how: str
    mask: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((1, 1)))


def example_variants(synth_face: dict[str, Any]) -> Variants:
    """Variants of a synthetic face rendered with its ground-truth mask."""
    images = {k: synth_face[k] for k in (*background.VARIANTS, "mask")}
    return Variants(images, "ground-truth mask (synthetic face)", background.as_mask(synth_face["mask"]))


def photo_variants(face: Image.Image, crop_how: str, rembg_model: str = "u2net") -> Variants:
    """Variants of a face-cropped photo, masked by rembg; a LabError explains a missing rembg model."""
    try:
        session = background.get_session(rembg_model)
        mask = background.rembg_mask(face, session)
    except (ImportError, FileNotFoundError, RuntimeError, ValueError) as err:
        raise LabError(f"cannot mask the photo's background: {err}") from err
    images = background.variants(face, mask)
    return Variants(images, f"{crop_how}; mask: rembg {rembg_model}", mask)


def default_comparison(bundles: Sequence[Bundle]) -> list[str]:
    """The first group of same-kind, same-dataset bundles trained on different backgrounds (else the first 4)."""
    groups: dict[tuple[str, str], list[Bundle]] = {}
    for b in bundles:
        groups.setdefault((b.model.kind, str(b.meta.get("dataset"))), []).append(b)
    for group in groups.values():
        if len({b.meta.get("background") for b in group}) > 1:
            return [b.name for b in group]
    return [b.name for b in bundles[:4]]


def reconstruction(bundle: Bundle, var: Variants) -> tuple[tuple[Image.Image, Image.Image] | None, str]:
    """(the variant the bundle was trained on, at its size; its reconstruction), or None for GANs; a caption."""
    which = str(bundle.meta.get("background") or "original")
    if which not in var.images:
        which = "original"
    if not bundle.model.is_encoder:
        return None, f"{bundle.name}: a {bundle.model.kind} has no encoder, no reconstruction"
    x = from_pil(var.images[which], bundle.model.image_size)[None]
    return (to_pil(x)[0], to_pil(decode(bundle, encode(bundle, x)))[0]), f"{bundle.name} ({which})"


def main_pca_ratio(bundle: Bundle) -> list[float] | None:
    """Explained-variance ratios of the bundle's main PCA basis: all levels, else w, else the largest."""
    probes, keys = probes_of(bundle), pca_keys(bundle)
    if probes is None or not keys:
        return None
    entries = probes.meta["pca"]
    preferred = [k for k in keys if {"all", "w"} & set(k.split("/"))]
    key = preferred[0] if preferred else max(keys, key=lambda k: entries[k]["n_components"])
    return list(entries[key]["var_ratio"])


def mean_probe_accuracy(bundle: Bundle) -> float | None:
    """Mean held-out accuracy of the per-level SVM probes (best level per attribute)."""
    probes = probes_of(bundle)
    if probes is None or "svm/per_level" not in table_keys(bundle):
        return None
    return float(np.mean(np.asarray(probes.meta["tables"]["svm/per_level"]["accuracy"]).max(axis=1)))


def comparison_table(bundles: Sequence[Bundle]) -> list[list[str]]:
    """Rows [metric, value per bundle] of the background-relevant metrics, plus mean probe accuracy."""
    per = [pick(metrics(b), COMPARE_WORDS) for b in bundles]
    acc = [mean_probe_accuracy(b) for b in bundles]
    rows = [["background of the training data", *[str(b.meta.get("background", "?")) for b in bundles]]]
    if any(a is not None for a in acc):
        rows.append(["probe accuracy (mean of best level)", *["—" if a is None else f"{a:.3f}" for a in acc]])
    for key in sorted(set().union(*per)):
        rows.append([key, *[f"{p[key]:.4g}" if key in p else "—" for p in per]])
    return rows


def comparison_plots(bundles: Sequence[Bundle]) -> tuple[Figure | None, Figure | None]:
    """PCA explained-variance curves per bundle, and background share of variance (None when unmeasured)."""
    ratios = {f"{b.name} ({b.meta.get('background', '?')})": main_pca_ratio(b) for b in bundles}
    ratios = {k: v for k, v in ratios.items() if v is not None}
    curves = pca_curves(ratios, "PCA of the latents (steeper = more compact)") if ratios else None
    shares = {}
    for b in bundles:
        share = metrics(b).get("background_share")  # all levels together (training/evaluate.py)
        if share is not None:
            shares[f"{b.name} ({b.meta.get('background', '?')})"] = share
    share_fig = bars(shares, "background share of latent variance", "share (lower = less on background)") \
        if shares else None
    return curves, share_fig
