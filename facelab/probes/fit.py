"""Fit every latent probe of a bundle and store them in bundle/probes/ (seed 000's study, for any model).

For every attribute (those with both classes among the encoded samples):
- linear SVM tables per level and on levels 1..k together ("svm/per_level", "svm/cumulative" — the
  two tables of seed 000; cumulative only for the hierarchical VAE, where levels stack), and an MLP
  table (seed 000 found the MLP no better than the SVM; the table lets anyone check). By default
  one MLP per attribute on all levels together ("mlp/all", seed 000's comparison point): sklearn's
  MLP costs ~1000x an SVM column, so per-level/cumulative MLP tables are opt-in;
- the same SVM tables restricted to an age group ("age/svm/..."). Seed 000 kept FFHQ faces over 15.
  synthfaces has no ages in years: its age factor is young / middle-aged / old, and "young" covers
  seed 000's under-15 buckets' role (the group whose gender is hardest to read), so the restriction
  keeps middle-aged and old faces. FFHQ uses age >= 15; a dataset with an "Age_over_15" attribute
  uses it; GAN samples of a synthfaces model use the classifier's "Young" = 0 (synthfaces' Young is
  exactly age == young). CelebA has no ages, only an annotator's "Young": no restricted tables.
- directions per level: centroid difference (seed 003), SVM normal (InterFaceGAN) and conditional
  directions "A|B" (A's normal with B's projected off: edit A without moving B), for all pairs;
- a PCA basis per level (GANSpace layout: mean, components, std, var_ratio; seed 002);
- with an image attribute classifier, encoding models also get SVMs on classifier-labelled prior
  samples ("generated/svm/..."), which conditional sampling prefers (see _generated_tables).
For the HVAE every level gets its own directions and PCA; for StyleGAN both z and w.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facelab.probes.classifiers import ProbeTable, fit_level_probes
from facelab.probes.directions import centroid_directions, conditional_direction, fit_pca
from facelab.probes.encode import Encoded, encode_dataset, generate_latents
from facelab.probes.io import Probes

DEFAULT_N = 20_000
MIN_CLASS = 5  # an attribute needs this many samples of each class to be probed
ACTIVE_VARIANCE = 0.01  # Burda et al. (2016): a latent unit is active if Var_x(E_q[z|x]) > 0.01
MLP_MODES = ("all", "none", "per_level", "cumulative", "both")
SOURCES = ("auto", "dataset", "generated")


# ---------------------------------------------------------------- inputs


def bundle_dataset(bundle: Any, name: str | None = None, root: str | None = None, split: str = "train",
                   n: int | None = None, background: str | None = None) -> Any:
    """The dataset a bundle was trained on (from facelab.json), or another by name, at the model's size."""
    from facelab.data.build import build_dataset

    data = (bundle.meta.get("run_config") or {}).get("data") or {}
    name = name or bundle.meta.get("dataset") or data.get("name") or "synthfaces"
    root = root if root is not None else (data.get("root") if name == data.get("name") else None)
    kw: dict[str, Any] = {}
    if name == "synthfaces":
        # items are pure functions of (seed, index): length only bounds how many exist
        kw.update(seed=int(data.get("seed", 0)), length=max(int(n or DEFAULT_N), 1))
    return build_dataset(name, root=root, size=int(bundle.model.image_size), split=split,
                         background=background or bundle.meta.get("background") or "original", **kw)


def load_classifier(classifier: Any, device: Any = "cpu") -> Any:
    """An image attribute classifier: an object with predict/attribute_names, or a folder to load."""
    if classifier is None or hasattr(classifier, "predict"):
        return classifier
    from facelab.models.classifier import load_attribute_classifier

    return load_attribute_classifier(classifier, device=device)


def encode_bundle(bundle: Any, n: int = DEFAULT_N, dataset: Any = None, classifier: Any = None,
                  split: str = "train", root: str | None = None, batch_size: int = 128, seed: int = 0,
                  cache_dir: str | Path | None = None, use_cache: bool = True, source: str = "auto") -> Encoded:
    """Latents per level: posterior means of a dataset ("dataset"), or classifier-labelled prior samples ("generated").

    source "auto" = posterior means for encoding models (seed 000), prior samples for GANs.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    model = bundle.model
    if getattr(model, "is_encoder", False) and source != "generated":
        if dataset is None or isinstance(dataset, str):
            dataset = bundle_dataset(bundle, dataset, root, split, n)
        return encode_dataset(model, dataset, n, batch_size, cache_dir, use_cache)
    if source == "dataset":
        raise ValueError(f"{type(model).__name__} has no encoder: probe it on generated samples (source 'generated')")
    return generate_latents(model, n, load_classifier(classifier, model.device), batch_size, seed,
                            cache_dir, use_cache)


# ---------------------------------------------------------------- restriction and attribute choice


def age_restriction(enc: Encoded, dataset_name: str | None = None) -> tuple[np.ndarray | None, str]:
    """The seed-000 "faces over 15" mask for these samples, and how it was made (None if no ages)."""
    names = enc.attribute_names
    if enc.factors is not None and enc.factor_names and "age" in enc.factor_names:
        age = enc.factors[:, enc.factor_names.index("age")]
        return age >= 1, "synthfaces age factor middle-aged or old (not 'young'): stands for FFHQ faces over 15"
    if enc.ages is not None and np.isfinite(enc.ages).any():
        return np.nan_to_num(enc.ages, nan=-1.0) >= 15, "age >= 15 years (seed 000's restriction)"
    if "Age_over_15" in names:
        return enc.labels[:, names.index("Age_over_15")] > 0.5, "attribute Age_over_15"
    if enc.source == "generated" and dataset_name == "synthfaces" and "Young" in names:
        return (enc.labels[:, names.index("Young")] < 0.5,
                "classifier says not Young (synthfaces' Young is exactly the age factor 'young')")
    return None, "no age information (e.g. CelebA has only the annotators' 'Young'): no restricted tables"


def probed_attributes(labels: np.ndarray, names: Sequence[str], mask: np.ndarray | None = None,
                      min_class: int = MIN_CLASS) -> list[int]:
    """Indices of attributes with at least min_class samples of each class (within mask)."""
    y = labels if mask is None else labels[mask]
    pos = (y > 0.5).sum(0)
    return [a for a in range(len(names)) if min(pos[a], len(y) - pos[a]) >= min_class]


# ---------------------------------------------------------------- fitting


def hold_inactive(enc: Encoded, threshold: float = ACTIVE_VARIANCE) -> tuple[Encoded, list[int]]:
    """enc with inactive units (posterior-mean variance <= threshold) set to their mean; active counts per level.

    Only for posterior means: an inactive unit carries no information about the image, yet the
    probes standardise every feature, so its float noise (std ~1e-7) would be blown up into a
    feature with a huge raw weight, and prior samples, which vary freely along that unit, would
    then be judged by noise. Held at a constant, the unit gets weight exactly 0.
    """
    if enc.source != "dataset":
        return enc, [int(x.shape[1]) for x in enc.levels]
    levels, counts = [], []
    for x in enc.levels:
        active = x.var(0, dtype=np.float64) > threshold
        levels.append(np.where(active, x, x.mean(0, dtype=np.float64).astype(x.dtype)))
        counts.append(int(active.sum()))
    held = Encoded(**{**enc.__dict__, "levels": levels})
    return held, counts


def _tables(enc: Encoded, attrs: list[int], modes: list[str], mask: np.ndarray | None, seed: int,
            prefix: str = "") -> dict[str, ProbeTable]:
    """SVM tables over the chosen attributes, keyed like 'svm/per_level' (prefix prepended)."""
    names = [enc.attribute_names[a] for a in attrs]
    labels = (enc.labels[:, attrs] > 0.5).astype(np.int64)
    return {f"{prefix}svm/{mode}": fit_level_probes(enc.levels, labels, names, mode=mode, seed=seed, mask=mask,
                                                    level_names=enc.level_names) for mode in modes}


def _mlp_tables(enc: Encoded, attrs: list[int], mlp: str, hierarchical: bool, seed: int) -> dict[str, ProbeTable]:
    """MLP tables: "all" = one column on every level together (seed 000's check), or per level / cumulative."""
    names = [enc.attribute_names[a] for a in attrs]
    labels = (enc.labels[:, attrs] > 0.5).astype(np.int64)
    if mlp == "none":
        return {}
    if mlp == "all":
        whole = enc.level_names[0] if len(enc.levels) == 1 else f"{enc.level_names[0]}..{enc.level_names[-1]}"
        flat = np.concatenate([x.reshape(len(x), -1) for x in enc.levels], 1)
        table = fit_level_probes([flat], labels, names, mode="cumulative", kind="mlp", seed=seed, level_names=[whole])
        table.columns = [whole]
        return {"mlp/all": table}
    modes = {"per_level": ["per_level"], "cumulative": ["cumulative"], "both": ["per_level", "cumulative"]}[mlp]
    if not hierarchical:
        modes = ["per_level"]
    return {f"mlp/{mode}": fit_level_probes(enc.levels, labels, names, mode=mode, kind="mlp", seed=seed,
                                            level_names=enc.level_names) for mode in modes}


def _directions(probes: Probes, enc: Encoded, per_level: ProbeTable, attrs: list[int]) -> None:
    """Centroid, SVM-normal and conditional (pairwise) directions for every level."""
    names = [enc.attribute_names[a] for a in attrs]
    labels = enc.labels[:, attrs] > 0.5
    for k, level in enumerate(enc.level_names):
        probes.add_directions(f"centroid/{level}", centroid_directions(enc.levels[k], labels, names))
        normals = {a: per_level.probe(a, level).normal() for a in names}
        probes.add_directions(f"svm_normal/{level}", normals,
                              info={"accuracy": {a: per_level.probe(a, level).accuracy for a in names}})
        pairs = {}
        for a in names:
            for b in names:
                if a != b:
                    try:
                        pairs[f"{a}|{b}"] = conditional_direction(normals[a], [normals[b]])
                    except ValueError:  # parallel normals: nothing of a is left once b is held
                        continue
        probes.add_directions(f"conditional/{level}", pairs,
                              info={"meaning": "A|B = SVM normal of A with the normal of B projected off"})


def _pca(probes: Probes, enc: Encoded, max_components: int | None, seed: int) -> None:
    for k, level in enumerate(enc.level_names):
        z = enc.levels[k]
        cap = min(z.shape[1], len(z) - 1) if max_components is None else min(z.shape[1], len(z) - 1, max_components)
        probes.add_pca(f"pca/{level}", fit_pca(z, n_components=max(1, cap), seed=seed))


def fit_probes(enc: Encoded, hierarchical: bool, age_mask: Any = "auto", mlp: str = "all",
               pca_components: int | None = 256, seed: int = 0, dataset_name: str | None = None
               ) -> tuple[Probes, dict[str, ProbeTable], dict[str, Any]]:
    """All probes of encoded latents: (Probes container, tables by key, JSON summary)."""
    if mlp not in MLP_MODES:
        raise ValueError(f"mlp must be one of {MLP_MODES}, got {mlp!r}")
    modes = ["per_level", "cumulative"] if hierarchical else ["per_level"]
    enc_raw, (enc, active) = enc, hold_inactive(enc)
    attrs = probed_attributes(enc.labels, enc.attribute_names)
    if not attrs:
        raise ValueError(f"no attribute has {MIN_CLASS}+ samples of each class among {enc.n}: encode more samples")
    t0 = time.perf_counter()
    tables = {**_tables(enc, attrs, modes, None, seed), **_mlp_tables(enc, attrs, mlp, hierarchical, seed)}
    if isinstance(age_mask, str) and age_mask == "auto":
        mask, how = age_restriction(enc, dataset_name)
    else:
        mask, how = (None, "disabled") if age_mask is None else (np.asarray(age_mask, bool), "given mask")
    kept = probed_attributes(enc.labels, enc.attribute_names, mask) if mask is not None else []
    if mask is not None and kept:
        tables.update(_tables(enc, kept, modes, mask, seed, prefix="age/"))
    probes = Probes()
    for key, table in tables.items():
        probes.add_table(key, table)
    _directions(probes, enc, tables["svm/per_level"], attrs)
    _pca(probes, enc_raw, pca_components, seed)
    summary = {
        "level_names": enc.level_names, "source": enc.source, "n": enc.n,
        "active_units": dict(zip(enc.level_names, active)),
        "attributes": [enc.attribute_names[a] for a in attrs],
        "skipped_attributes": [a for i, a in enumerate(enc.attribute_names) if i not in attrs],
        "restriction": {"rule": how, "n": int(mask.sum()) if mask is not None else 0,
                        "attributes": [enc.attribute_names[a] for a in kept]},
        "encoding": {k: v for k, v in enc.info.items() if k in ("key", "dataset", "n", "mode", "seed")},
        "tables": {key: table.to_dict() for key, table in tables.items()},
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
    probes.meta.update({k: summary[k] for k in ("level_names", "source", "n", "attributes", "restriction",
                                                 "active_units")})
    return probes, tables, summary


def _generated_tables(probes: Probes, summary: dict[str, Any], gen: Encoded, hierarchical: bool,
                      seed: int) -> dict[str, ProbeTable]:
    """SVMs on classifier-labelled prior samples ("generated/svm/..."), added to probes and summary.

    Posterior means only cover the aggregate posterior; prior samples can land in its holes and
    decode to faces the dataset probes misjudge. These probes estimate p(attribute | decode(z))
    where conditional sampling draws z, and conditional_sample prefers them when present.
    """
    attrs = probed_attributes(gen.labels, gen.attribute_names)
    if not attrs:
        return {}
    modes = ["per_level", "cumulative"] if hierarchical else ["per_level"]
    tables = _tables(gen, attrs, modes, None, seed, prefix="generated/")
    for key, table in tables.items():
        probes.add_table(key, table)
        summary["tables"][key] = table.to_dict()
    summary["generated"] = {"n": gen.n, "attributes": [gen.attribute_names[a] for a in attrs]}
    probes.meta["generated"] = summary["generated"]
    return tables


def fit_bundle_probes(bundle: Any, n: int = DEFAULT_N, dataset: Any = None, classifier: Any = None,
                      age_mask: Any = "auto", mlp: str = "all", split: str = "train",
                      root: str | None = None, pca_components: int | None = 256, seed: int = 0,
                      batch_size: int = 128, cache_dir: str | Path | None = None, use_cache: bool = True,
                      save: bool = True, source: str = "auto") -> dict[str, Any]:
    """Encode, fit every probe, save bundle/probes/ and record the tables in facelab.json."""
    from facelab.hub import update_meta

    model = bundle.model
    classifier = load_classifier(classifier, model.device)
    enc = encode_bundle(bundle, n, dataset, classifier, split, root, batch_size, seed, cache_dir, use_cache,
                        source)
    data_name = dataset if isinstance(dataset, str) else bundle.meta.get("dataset")
    probes, tables, summary = fit_probes(enc, model.kind == "hvae", age_mask, mlp, pca_components,
                                         seed, data_name)
    if source == "auto" and enc.source == "dataset" and classifier is not None:
        gen = generate_latents(model, n, classifier, batch_size, seed, cache_dir, use_cache)
        tables.update(_generated_tables(probes, summary, gen, model.kind == "hvae", seed))
    probes.meta.update({"model_kind": model.kind, "dataset": data_name})
    folder = Path(bundle.path) / "probes"
    if save:
        probes.save(folder)
        bundle.meta = update_meta(bundle.path, probes=summary)
    bundle.extras["probes"] = probes
    return {"probes": probes, "tables": tables, "summary": summary, "encoded": enc,
            "folder": folder, "markdown": tables_markdown(tables, summary)}


def tables_markdown(tables: dict[str, ProbeTable], summary: dict[str, Any] | None = None) -> str:
    """Seed 000's tables in markdown: SVM per level / cumulative, MLP, then the age-restricted ones."""
    parts = []
    for key, table in tables.items():
        title = key.replace("age/", "restricted (" + (summary or {}).get("restriction", {}).get("rule", "age")
                            + "): ") if key.startswith("age/") else key
        parts.append(f"### {title}  (train {table.n_train}, held out {table.n_test})\n\n"
                     + table.to_markdown("accuracy") + "\n\n" + table.to_markdown("balanced_accuracy"))
    return "\n\n".join(parts)
