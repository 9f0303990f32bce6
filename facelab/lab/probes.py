"""Find a bundle's stored probes for one latent level: PCA basis, attribute directions, probe tables.

training/probe.py (facelab.probes.fit) stores them in the bundle's probes/ under namespaced keys:
"pca/<level>", "centroid/<level>", "svm_normal/<level>", "conditional/<level>" (names "A|B"),
"svm/per_level"; the lookups here match a key by its level-name part, so a bundle probed in both z and w (StyleGAN) gives each space its own basis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facelab.hub import Bundle
from facelab.lab.bundles import LabError

# Traversal prefers unit SVM normals (one unit = one latent-space unit across the boundary);
# arithmetic prefers centroid differences (strength 1 moves a face from one class mean to the other).
TRAVERSAL_METHODS = ("svm_normal", "centroid")
ARITHMETIC_METHODS = ("centroid", "svm_normal")


def probes_of(bundle: Bundle) -> Any | None:
    """The bundle's loaded probes, or None."""
    return bundle.extras.get("probes")


def _missing(bundle: Bundle, what: str) -> LabError:
    return LabError(f"{bundle.name} has no {what}: fit probes with `python training/probe.py {bundle.path}`")


def _for_level(keys: list[str], level: str, single_level: bool) -> list[str]:
    """Keys naming level as one of their '/' parts; with one latent level, every key qualifies."""
    hits = [k for k in keys if level in k.split("/")]
    return hits or (list(keys) if single_level else [])


def pca_basis(bundle: Bundle, level: str, single_level: bool, dim: int) -> Any:
    """The PCA basis fitted on latent level `level` (dimension dim), or a LabError saying how to make one."""
    probes = probes_of(bundle)
    keys = sorted((probes.meta.get("pca") or {}) if probes is not None else {})
    for key in _for_level(keys, level, single_level):
        basis = probes.pca(key)
        if basis.components.shape[1] == dim:
            return basis
    raise _missing(bundle, f"PCA basis for latent level {level!r}")


def _method_of(key: str, methods: tuple[str, ...]) -> int:
    parts = key.split("/")
    return next((i for i, m in enumerate(methods) if m in parts), len(methods))


def directions(bundle: Bundle, level: str, single_level: bool, dim: int,
               methods: tuple[str, ...] = TRAVERSAL_METHODS) -> tuple[dict[str, np.ndarray], str]:
    """Attribute directions on latent level `level` ({name: [dim]}) and the key they came from."""
    probes = probes_of(bundle)
    keys = list((probes.meta.get("directions") or {}) if probes is not None else {})
    usable = [k for k in _for_level(keys, level, single_level) if _method_of(k, methods) < len(methods)]
    for key in sorted(usable, key=lambda k: (_method_of(k, methods), k)):
        vecs = {n: np.asarray(v, np.float64).ravel() for n, v in probes.directions(key).items()}
        if vecs and all(v.size == dim for v in vecs.values()):
            return vecs, key
    raise _missing(bundle, f"attribute directions for latent level {level!r}")


def table_keys(bundle: Bundle) -> list[str]:
    """Keys of the stored probe tables (e.g. 'svm/per_level', 'svm/cumulative', 'mlp/per_level')."""
    probes = probes_of(bundle)
    return sorted((probes.meta.get("tables") or {})) if probes is not None else []


def pca_keys(bundle: Bundle) -> list[str]:
    """Keys of the stored PCA bases."""
    probes = probes_of(bundle)
    return sorted((probes.meta.get("pca") or {})) if probes is not None else []
