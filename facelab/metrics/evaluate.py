"""Every metric that applies to a bundle, in one call: what `training/evaluate.py BUNDLE` runs.

- all models: FID/KID against held-out real images of the bundle's dataset (real Inception-v3
  features, facelab.metrics.fid), or — with no Inception weights — a note saying so; with an
  attribute classifier also FD-attr/KD-attr, the classifier's accuracy on the real images, the gap
  between attribute prevalences of generated and real images, and (conditional models) how often
  generated images show the attributes they were conditioned on;
- encoding models: reconstruction MSE/PSNR and bits/dim on the held-out images;
- encoding models on synthfaces: β-VAE, FactorVAE, MIG and DCI on rendered factors, and the
  background share of latent variance (all levels together, and per level for hierarchies).

Real images come from the "test" split (for synthfaces: faces from a disjoint seed), so no metric
is computed on training images. Generated images are drawn batch by batch beside the real ones
(conditional models get the real batch's attributes), each batch passing through every feature
extractor once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from facelab.metrics.fid import (INCEPTION_NAME, InceptionUnavailable, feature_distances, load_inception)

METRICS_FILE = "metrics.json"


@dataclass
class EvalSettings:
    """What to compute and at what scale (defaults: disentanglement_lib's settings for the scores)."""

    n: int = 2000  # real and generated images for FID/KID, reconstruction, background share
    batch_size: int = 100
    seed: int = 0
    split: str = "test"
    root: str | None = None  # dataset folder, when not the one in the bundle's run config
    fid: bool = True
    kid_subset_size: int = 1000
    classifier: str | None = None  # attribute classifier folder
    disentanglement: bool = True
    disent_batch: int = 64
    disent_train: int = 10_000
    disent_eval: int = 5_000
    dci_method: str = "gbt"  # "gbt" (disentanglement_lib's) | "trees" (faster, not the reference's numbers) | "lasso"
    device: str = "cpu"


# ---------------------------------------------------------------- data


def _real_loader(dataset: Any, settings: EvalSettings) -> DataLoader:
    n = min(int(settings.n), len(dataset))
    return DataLoader(Subset(dataset, range(n)), batch_size=settings.batch_size, shuffle=False)


def _generate(model: Any, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """As many samples as the real batch has images (with its attributes for conditional models)."""
    kwargs = {}
    if getattr(model, "is_conditional", False):
        kwargs["attributes"] = batch["attributes"].to(model.device)
    with torch.no_grad():
        return model.sample(len(batch["image"]), generator=generator, **kwargs).float().cpu()


def _extractors(settings: EvalSettings, classifier: Any, notes: dict[str, str]) -> dict[str, Callable]:
    """Feature extractors to run on every real and generated batch."""
    out: dict[str, Callable] = {}
    if settings.fid:
        try:
            out["inception"] = load_inception(settings.device)
        except InceptionUnavailable as err:
            notes["fid"] = str(err)
    else:
        notes["fid"] = "skipped (--no-fid)"
    if classifier is not None:
        out["attr_features"] = classifier.features
        out["attr_probs"] = classifier.predict
    elif "fid" in notes:
        notes["fd_attr"] = "no attribute classifier given (--classifier): no FD-attr either"
    return out


def _feature_pass(model: Any, loader: DataLoader, extractors: dict[str, Callable],
                  seed: int) -> dict[str, torch.Tensor]:
    """One pass: real batch -> features; a generated batch of the same size -> features."""
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {"labels": []}
    for batch in loader:
        fake = _generate(model, batch, generator)
        parts["labels"].append(batch["attributes"].float())
        for side, images in (("real", batch["image"]), ("fake", fake)):
            for name, fn in extractors.items():
                parts.setdefault(f"{side}_{name}", []).append(fn(images).float().cpu())
    return {k: torch.cat(v) for k, v in parts.items() if v}


# ---------------------------------------------------------------- metric groups


def _attribute_metrics(feats: dict[str, torch.Tensor], classifier: Any, dataset_names: list[str],
                       conditional: bool) -> tuple[dict[str, float], dict[str, Any]]:
    """Classifier accuracy on real images, prevalence gap real vs generated, conditional accuracy."""
    from facelab.metrics.attributes import accuracy_report

    shared = [n for n in classifier.attribute_names if n in dataset_names]
    if not shared:
        return {}, {"note": f"the classifier's attributes {classifier.attribute_names} are not the dataset's"}
    ci = [classifier.attribute_names.index(n) for n in shared]
    di = [dataset_names.index(n) for n in shared]
    real_p, fake_p = feats["real_attr_probs"].numpy(), feats["fake_attr_probs"].numpy()
    labels = feats["labels"].numpy()
    report = accuracy_report(labels[:, di], real_p[:, ci], shared)
    gap = np.abs((fake_p[:, ci] > 0.5).mean(0) - (real_p[:, ci] > 0.5).mean(0))
    flat = {"classifier_accuracy": report["mean_accuracy"],
            "classifier_balanced_accuracy": report["mean_balanced_accuracy"],
            "attribute_prevalence_gap": float(gap.mean())}
    details: dict[str, Any] = {"classifier_on_real": report,
                               "prevalence_gap": dict(zip(shared, gap.tolist()))}
    if conditional:  # the generated batch was conditioned on the real batch's labels
        cond = ((fake_p[:, ci] > 0.5) == (labels[:, di] > 0.5)).mean(0)
        flat["conditional_attribute_accuracy"] = float(cond.mean())
        details["conditional_attribute_accuracy"] = dict(zip(shared, cond.tolist()))
    return flat, details


def _finite(values: dict[str, float]) -> dict[str, float]:
    """Drop NaN entries: a KID std that cannot be measured (too few images) is left out, not written."""
    return {k: v for k, v in values.items() if np.isfinite(v)}


def generative_metrics(model: Any, dataset: Any, settings: EvalSettings, classifier: Any = None,
                       ) -> tuple[dict[str, float], dict[str, Any], dict[str, str]]:
    """FID/KID (Inception), FD-attr/KD-attr and attribute metrics of generated vs real images."""
    notes: dict[str, str] = {}
    extractors = _extractors(settings, classifier, notes)
    if not extractors:
        return {}, {}, notes
    feats = _feature_pass(model, _real_loader(dataset, settings), extractors, settings.seed)
    flat: dict[str, float] = {}
    details: dict[str, Any] = {"n_real": len(feats["labels"]), "n_fake": len(feats["labels"])}
    if "real_inception" in feats:
        d = feature_distances(feats["real_inception"], feats["fake_inception"],
                              kid_subset_size=settings.kid_subset_size)
        flat.update(_finite({"fid": d["frechet"], "kid_mean": d["kid_mean"], "kid_std": d["kid_std"]}))
        details["fid_features"] = INCEPTION_NAME
    if classifier is not None:
        if "fid" in notes:
            notes["fd_attr"] = ("reported instead of FID: a Fréchet distance in the attribute classifier's "
                                "features, not comparable with any FID")
        d = feature_distances(feats["real_attr_features"], feats["fake_attr_features"],
                              kid_subset_size=settings.kid_subset_size)
        flat.update(_finite({"fd_attr": d["frechet"], "kd_attr_mean": d["kid_mean"], "kd_attr_std": d["kid_std"]}))
        names = list(getattr(dataset, "attribute_names", None) or [])
        a_flat, a_details = _attribute_metrics(feats, classifier, names, getattr(model, "is_conditional", False))
        flat.update(a_flat)
        details["attributes"] = a_details
    return flat, details, notes


def encoder_metrics(model: Any, dataset: Any, settings: EvalSettings) -> dict[str, Any]:
    """Reconstruction MSE/PSNR and bits/dim on the held-out images."""
    from facelab.metrics.reconstruction import bits_per_dim, reconstruction_scores

    loader = _real_loader(dataset, settings)
    return {**reconstruction_scores(model, loader), **bits_per_dim(model, loader, seed=settings.seed)}


def background_metrics(model: Any, dataset: Any, settings: EvalSettings) -> tuple[dict[str, float], dict[str, Any]]:
    """Background share of latent variance, all levels together and (hierarchies) per level."""
    from facelab.metrics.background import background_share
    from facelab.probes.encode import encode_dataset

    enc = encode_dataset(model, dataset, n=settings.n, batch_size=settings.batch_size, use_cache=False)
    names, bg = list(dataset.factor_names), list(dataset.background_factor_names)
    cells = int(np.prod([dataset.factor_sizes[names.index(b)] for b in bg]))
    # every combination needs enough faces for its mean; with few, fit additive effects only
    design = "joint" if enc.n >= 10 * cells else "additive"
    groups = {"all": np.concatenate(enc.levels, axis=1)}
    if len(enc.levels) > 1:
        groups.update({f"level_{k}": z for k, z in enumerate(enc.levels)})
    flat, details = {}, {}
    for key, z in groups.items():
        res = background_share(z, enc.factors, names, bg, design=design, seed=settings.seed)
        suffix = "" if key == "all" else f"_{key}"
        flat[f"background_share{suffix}"] = res["share"]
        details[key] = res
    flat.update({f"background_share_{f}": s for f, s in details["all"]["per_factor"].items()})
    return flat, details


def _json_ready(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def settings_dict(settings: EvalSettings) -> dict[str, Any]:
    """The settings as a plain dict (for metrics.json)."""
    return asdict(settings)


def _synthfaces_batches(model: Any, size: int, background: str, batch_size: int, seed: int) -> Callable:
    """batches(factors, seeds=None) -> (images [b,3,H,W] on the model's device, model kwargs) per batch."""
    from facelab.data.background import composite
    from facelab.data.synthfaces import attributes_from_factors, render
    from facelab.imaging import from_uint8

    rng = np.random.default_rng(seed)

    def batches(factors: np.ndarray, seeds: np.ndarray | None = None) -> Iterator[tuple[torch.Tensor, dict]]:
        if seeds is None:  # fresh nuisance per call, unless the caller pins it
            seeds = rng.integers(0, 2**62, len(factors), dtype=np.int64).astype(np.uint64)
        for i in range(0, len(factors), batch_size):
            f = factors[i:i + batch_size]
            images, masks = render(f, size, seeds[i:i + batch_size])
            if background != "original":
                images = np.stack([composite(im, m, background) for im, m in zip(images, masks)])
            kw = {}
            if getattr(model, "is_conditional", False):
                kw["attributes"] = torch.from_numpy(attributes_from_factors(f)).to(model.device)
            yield from_uint8(images).to(model.device), kw
    return batches


def synthfaces_encoder(model: Any, size: int, background: str = "original", batch_size: int = 256,
                       seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """encode(factors [n,F], seeds=None) -> codes [n,D]: render faces (fresh nuisance seeds unless given), encode."""
    batches = _synthfaces_batches(model, size, background, batch_size, seed)

    def encode(factors: np.ndarray, seeds: np.ndarray | None = None) -> np.ndarray:
        codes = []
        for x, kw in batches(factors, seeds):
            with torch.no_grad():
                zs = model.encode(x, **kw)
            codes.append(torch.cat([z.float().reshape(len(z), -1) for z in zs], 1).cpu().numpy())
        return np.concatenate(codes)

    return encode


def synthfaces_reconstructor(model: Any, size: int, background: str = "original",
                             batch_size: int = 256) -> Callable[[np.ndarray, np.ndarray], tuple]:
    """reconstruct(factors [n,F], seeds [n]) -> (images, reconstructions) float32 [n,3,H,W] in [-1,1]."""
    batches = _synthfaces_batches(model, size, background, batch_size, seed=0)

    def reconstruct(factors: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images, recons = [], []
        for x, kw in batches(factors, seeds):
            with torch.no_grad():
                recons.append(model.reconstruct(x, **kw).float().cpu().numpy())
            images.append(x.float().cpu().numpy())
        return np.concatenate(images), np.concatenate(recons)

    return reconstruct


def synthfaces_sample_fn(model: Any, meta: dict[str, Any], seed: int = 0) -> Callable:
    """A disentanglement SampleFn: uniform synthfaces factors, rendered as the bundle was trained, then encoded."""
    from facelab.data.synthfaces import FACTOR_SIZES
    from facelab.metrics.disentanglement import factor_sampler

    encode = synthfaces_encoder(model, int(model.image_size), meta.get("background") or "original", seed=seed)
    return factor_sampler(FACTOR_SIZES, encode)


def disentanglement_metrics(model: Any, meta: dict[str, Any], settings: EvalSettings) -> dict[str, float]:
    """β-VAE, FactorVAE, MIG, DCI on faces rendered from independent uniform synthfaces factors."""
    from facelab.metrics.disentanglement import disentanglement_scores

    was_training = model.training
    model.eval()
    try:
        sample_fn = synthfaces_sample_fn(model, meta, settings.seed)
        return disentanglement_scores(sample_fn, batch_size=settings.disent_batch, n_train=settings.disent_train,
                                      n_eval=settings.disent_eval, dci_method=settings.dci_method, seed=settings.seed)
    finally:
        model.train(was_training)


# ---------------------------------------------------------------- the whole evaluation


def evaluate_bundle(bundle: Any, settings: EvalSettings | None = None) -> dict[str, Any]:
    """All applicable metrics of a bundle (a Bundle or a folder / Hub id): {"metrics", "details", "notes", ...}."""
    from facelab.hub import load_bundle
    from facelab.models.classifier import load_attribute_classifier
    from facelab.probes.fit import bundle_dataset

    settings = settings or EvalSettings()
    if isinstance(bundle, (str, Path)):
        bundle = load_bundle(str(bundle), device=settings.device, with_probes=False)
    model, meta = bundle.model.eval(), bundle.meta
    dataset = bundle_dataset(bundle, root=settings.root, split=settings.split, n=settings.n)
    classifier = (load_attribute_classifier(settings.classifier, device=settings.device)
                  if settings.classifier else None)
    metrics, details, notes = generative_metrics(model, dataset, settings, classifier)
    synth = getattr(dataset, "factor_names", None) is not None and hasattr(dataset, "background_factor_names")
    if getattr(model, "is_encoder", False):
        rec = encoder_metrics(model, dataset, settings)
        details["reconstruction"] = rec
        metrics.update({k: rec[k] for k in ("recon_mse", "psnr", "bits_per_dim")})
        if synth:
            flat, details["background"] = background_metrics(model, dataset, settings)
            metrics.update(flat)
            if settings.disentanglement:
                scores = disentanglement_metrics(model, meta, settings)
                details["disentanglement"] = scores
                metrics.update({k: v for k, v in scores.items() if not k.startswith("mig_factor_")})
            else:
                notes["disentanglement"] = "skipped (--no-disentanglement)"
        else:
            notes["disentanglement"] = "needs ground-truth factors (synthfaces); not computed"
    else:
        notes["encoder"] = f"{model.kind} has no encoder: no reconstruction, disentanglement or background share"
    return _json_ready({"bundle": str(bundle.path), "kind": model.kind, "dataset": meta.get("dataset"),
                        "background": meta.get("background"), "image_size": meta.get("image_size"),
                        "metrics": metrics, "details": details, "notes": notes,
                        "settings": settings_dict(settings)})


def write_metrics(folder: str | Path, result: dict[str, Any]) -> Path:
    """Write folder/metrics.json, merge the scalar metrics into facelab.json, refresh the model card."""
    from facelab.cards import model_card
    from facelab.hub import META_FILE, update_meta

    folder = Path(folder)
    path = folder / METRICS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
    tmp.replace(path)
    old = json.loads((folder / META_FILE).read_text()).get("metrics") or {}
    meta = update_meta(folder, metrics={**old, **result["metrics"]})
    if (folder / "README.md").is_file():  # the card is built from facelab.json: keep them in step
        (folder / "README.md").write_text(model_card(meta))
    return path


def markdown_table(result: dict[str, Any], digits: int = 4) -> str:
    """The scalar metrics as a two-column markdown table, then the notes."""
    lines = ["| metric | value |", "|---|---|"]
    for key, value in sorted(result["metrics"].items()):
        lines.append(f"| {key} | {value:.{digits}g} |" if isinstance(value, float) else f"| {key} | {value} |")
    notes = sorted(result.get("notes", {}).items())
    if notes:
        lines += ["", *[f"- {key}: {note}" for key, note in notes]]
    return "\n".join(lines)
