"""Attribute directions and PCA bases in a flat latent space [N, d].

- centroid difference (seed 003): mean(z | attribute) − mean(z | no attribute), not normalised, so
  adding it once moves a face from one class centroid to the other;
- SVM normal (InterFaceGAN): the unit normal of a linear SVM boundary, in raw latent coordinates;
- conditional directions (InterFaceGAN's conditional manipulation): the primary normal with its
  components along the condition normals removed, n1 − (n1·n2) n2, generalised to several
  conditions by projecting off their span — "edit Smiling without moving Male";
- PCA bases stored GANSpace's way: mean, components (unit rows), std along each component and
  explained-variance ratio (seed 002 samples and steers latents with these eigenvectors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sklearn.decomposition import PCA

from facelab.probes.classifiers import fit_level_probes, to_numpy


def _flat_z(z: Any) -> np.ndarray:
    z = to_numpy(z)
    return z.reshape(len(z), -1).astype(np.float64, copy=False)


def _labels(labels: Any, names: Sequence[str]) -> np.ndarray:
    y = to_numpy(labels)
    y = y[:, None] if y.ndim == 1 else y
    if y.shape[1] != len(names):
        raise ValueError(f"labels have {y.shape[1]} columns but {len(names)} attribute names were given")
    return y.astype(bool)


def centroid_directions(z: Any, labels: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Seed 003's attribute vectors: mean(z | attr = 1) − mean(z | attr = 0), one [d] vector per attribute."""
    z, y = _flat_z(z), _labels(labels, names)
    out = {}
    for a, name in enumerate(names):
        pos, neg = y[:, a], ~y[:, a]
        if not pos.any() or not neg.any():
            raise ValueError(f"attribute {name!r} needs samples with and without it for a centroid difference")
        out[name] = z[pos].mean(0) - z[neg].mean(0)
    return out


def svm_normals(z: Any, labels: Any, names: Sequence[str], C: float = 1.0, seed: int = 0,
                test_size: float = 0.2) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """InterFaceGAN's directions: unit SVM boundary normals per attribute, and their held-out accuracies."""
    table = fit_level_probes([_flat_z(z)], labels, names, mode="per_level", C=C, seed=seed, test_size=test_size)
    probes = {name: table.probe(name, 0) for name in names}
    return ({name: p.normal() for name, p in probes.items()},
            {name: p.accuracy for name, p in probes.items()})


def conditional_direction(primary: Any, conditions: Sequence[Any]) -> np.ndarray:
    """Unit direction: primary with its component in the span of the condition directions removed."""
    n1 = to_numpy(primary).astype(np.float64).ravel()
    if not conditions:
        return n1 / np.linalg.norm(n1)
    basis, _ = np.linalg.qr(np.stack([to_numpy(c).astype(np.float64).ravel() for c in conditions], 1))
    # n1 − B Bᵀ n1; with one unit condition n2 this is InterFaceGAN's n1 − (n1·n2) n2.
    out = n1 - basis @ (basis.T @ n1)
    norm = float(np.linalg.norm(out))
    if norm < 1e-8 * max(float(np.linalg.norm(n1)), 1e-30):
        raise ValueError("the primary direction lies in the span of the conditions: nothing is left to edit")
    return out / norm


def edit(z: Any, direction: Any, strength: Any) -> np.ndarray:
    """z [N, ...] + strength · direction; strength is a scalar or one value per row of z."""
    z = to_numpy(z).astype(np.float64)
    d = to_numpy(direction).astype(np.float64).reshape(z.shape[1:])
    s = np.asarray(strength, dtype=np.float64)
    if s.ndim:
        s = s.reshape((-1,) + (1,) * (z.ndim - 1))
    return z + s * d


@dataclass
class PCABasis:
    """A PCA basis in GANSpace's layout: mean [d], components [k, d] (unit rows), std [k], var_ratio [k]."""

    mean: np.ndarray
    components: np.ndarray
    std: np.ndarray
    var_ratio: np.ndarray

    def project(self, z: Any) -> np.ndarray:
        """PCA coordinates [N, k] of latents z [N, d]."""
        return (_flat_z(z) - self.mean) @ self.components.T

    def reconstruct(self, coeffs: Any) -> np.ndarray:
        """Latents [N, d] from PCA coordinates [N, k] (the rest of the space at the mean)."""
        return self.mean + to_numpy(coeffs).astype(np.float64) @ self.components

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """Seed 002's sampling: coordinates ~ N(0, (temperature·std)²) along each component, mapped back."""
        rng = np.random.default_rng(seed)
        return self.reconstruct(rng.standard_normal((n, len(self.std))) * self.std * temperature)


def fit_pca(z: Any, n_components: int | None = None, seed: int = 0) -> PCABasis:
    """PCA of latents z [N, d] with sklearn; var_ratio is each component's share of the total variance."""
    z = _flat_z(z)
    pca = PCA(n_components=n_components, random_state=seed).fit(z)
    return PCABasis(mean=pca.mean_.copy(), components=pca.components_.copy(),
                    std=np.sqrt(pca.explained_variance_), var_ratio=pca.explained_variance_ratio_.copy())
