"""Model cards (README.md of a bundle) from the run config and the training results.

Plain text built from facelab.json metadata, so the card and the metadata never disagree.
"""

from __future__ import annotations

from typing import Any

import yaml

_KIND_NAMES = {
    "vae": "variational autoencoder (VAE / β-VAE)",
    "cvae": "conditional VAE",
    "hvae": "hierarchical VAE (VD-VAE/NVAE-style, top-down latent groups)",
    "dcgan": "DCGAN",
    "stylegan": "StyleGAN (progressive growing, EMA generator)",
}


def _front_matter(meta: dict[str, Any]) -> str:
    """Hub YAML header: library, tags, dataset."""
    tags = ["facelab", "face-generation", str(meta.get("kind", "model")),
            f"background-{meta.get('background', 'original')}"]
    header = {"library_name": "facelab", "license": "mit", "tags": tags,
              "pipeline_tag": "unconditional-image-generation"}
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n"


def _table(rows: list[tuple[str, Any]]) -> str:
    """A two-column markdown table."""
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value) or "—"
    return "—" if value is None else str(value).replace("|", "\\|")


def _lrs(lrs: dict[str, float] | None) -> str:
    """Peak learning rate per optimizer: "generator 0.002, discriminator 0.002"."""
    return ", ".join(f"{name} {lr:.4g}" for name, lr in (lrs or {}).items())


def data_file_rows(files: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The 'data files' and 'skipped files' rows from facelab.json's data_files (none without it)."""
    if not files:
        return []
    skipped = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in (files.get("skipped") or {}).items())
    size, low = files.get("image_size"), files.get("min_side")
    upsampled = f"; {files.get('upsampled', 0)} upsampled (short side {low}–{size - 1} px)" if size and low else ""
    return [("data files", f"{files.get('scanned')} scanned, {files.get('used')} used{upsampled}"),
            ("skipped files", skipped or "none")]


def training_rows(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    """The 'training details' rows: data, steps, batch, optimiser, precision, processes, time."""
    run = meta.get("run_config") or {}
    train, data = run.get("train", {}), run.get("data", {})
    info = meta.get("training") or {}
    # synthfaces draws its factors from a prior; bundles older than the option used the correlated one
    prior = [("factor prior", data.get("factor_prior", "correlated"))] if meta.get("dataset") == "synthfaces" else []
    # fine-tuned runs: "steps" counts this run's steps only, on top of the starting bundle's
    start = [("initialised from", train["init_from"])] if train.get("init_from") else []
    return [
        ("dataset", f"{meta.get('dataset')} ({data.get('split', 'train')} split)"), *prior,
        ("background", meta.get("background")),
        ("image size", f"{meta.get('image_size')} px"), *data_file_rows(meta.get("data_files")),
        *start, ("steps", info.get("steps", train.get("max_steps"))),
        ("images seen", info.get("images_seen")),
        ("global batch size", train.get("batch_size")),
        ("learning rate", _lrs(info.get("learning_rates")) or train.get("learning_rate") or "model default"),
        ("LR schedule", f"{train.get('lr_scheduler')} (warm-up {train.get('lr_warmup_steps', 0)} steps)"),
        ("gradient clip", train.get("gradient_clip")),
        ("weight average (EMA decay)", train.get("ema_decay")),
        ("mixed precision", train.get("mixed_precision")),
        ("processes", info.get("num_processes")),
        ("device", info.get("device")),
        ("training time", f"{info['seconds']:.0f} s" if "seconds" in info else None),
        ("seed", train.get("seed")),
    ]


def training_stage(meta: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    """A bundle's run as one stage of a training history: what reproduces it (run config, summary)."""
    stage = {"name": meta.get("name"), "training": meta.get("training"), "run_config": meta.get("run_config"),
             "metrics": meta.get("metrics") or {}}  # what the stage measured (FID...), kept when it is trained on
    return {"source": source, **stage} if source is not None else stage


def _stage_row(stage: dict[str, Any], keys: list[str], params: dict[str, Any]) -> str:
    """One history row: where it started, steps, learning rate and schedule, then the listed model params."""
    run, info = stage.get("run_config") or {}, stage.get("training") or {}
    train = run.get("train", {})
    start = (train.get("init_from") and "fine-tune") or "from scratch"
    fid = (stage.get("metrics") or {}).get("fid_1000")
    cells = [stage.get("name"), start, info.get("steps", train.get("max_steps")),
             _lrs(info.get("learning_rates")) or train.get("learning_rate"), train.get("lr_scheduler"),
             train.get("ema_decay"), info.get("images_seen"), None if fid is None else round(float(fid), 1),
             *[params.get(k) for k in keys]]
    return "| " + " | ".join(_fmt(c) for c in cells) + " |"


def history_table(meta: dict[str, Any]) -> str:
    """Markdown table of every training stage of a fine-tuned bundle, oldest first, this run last.

    Each stage's FID is the one measured on its own bundle (shared protocol), when it was; model params
    that differ between stages (β, loss weights) get a column each: they are the recipe.
    """
    stages = [*(meta.get("lineage") or []), training_stage(meta)]
    params = [((s.get("run_config") or {}).get("model") or {}).get("params", {}) for s in stages]
    keys = sorted({k for p in params for k in p if any(q.get(k) != p.get(k) for q in params)})
    head = ["stage", "start", "steps", "learning rate", "LR schedule", "EMA", "images", "FID (1000)", *keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + [_stage_row(s, keys, p) for s, p in zip(stages, params)])


def _prior_section(prior: dict[str, Any], sampling: dict[str, Any]) -> list[str]:
    """Card paragraphs on a prior fitted after training (CVAE p(z | a), HVAE top-level mixture) and default temperatures."""
    parts: list[str] = []
    fitted = f"fitted to the posteriors of {prior.get('n')} training faces after training (`{prior.get('command')}`; " \
             "facelab.models.latent_prior)"
    if prior.get("kind") == "gaussian_mixture":
        parts += ["## Fitted top-level prior\n", f"`sample` draws level 0 from a {prior.get('components')}-component "
                  f"Gaussian mixture {fitted}, and every finer level from the learned top-down priors given it.\n"]
    elif prior:
        parts += ["## Conditional prior\n", f"`sample` draws z from p(z | attributes) = N(W a + b, L Lᵀ), {fitted}, "
                  "not from N(0, I).\n"]
    temps = sampling.get("level_temperatures")
    if temps:
        parts += [f"The app starts its per-level temperatures at {', '.join(f'{t:g}' for t in temps)}"
                  f"{': ' + sampling['why'] if sampling.get('why') else ''}.\n"]
    return parts


def model_card(meta: dict[str, Any]) -> str:
    """README.md text for a bundle: what it is, how it was trained, final losses, how to load it."""
    kind = str(meta.get("kind", "model"))
    title = (f"facelab {kind}: {meta.get('dataset')} {meta.get('image_size')} px, "
             f"{meta.get('background', 'original')} background")
    run = meta.get("run_config") or {}
    what = _KIND_NAMES.get(kind, kind)
    if (run.get("model") or {}).get("params", {}).get("pair_averaging", "none") != "none":
        changes = (run.get("data") or {}).get("pair_changes")
        what += (" trained as an Ada-GVAE (Locatello et al. 2020): on pairs of faces sharing all but "
                 f"{changes or 'a random number of'} factor(s), posteriors averaged over the dimensions judged shared;")
    parts = [_front_matter(meta), f"# {title}\n",
             f"A {what} trained with `training/train.py` of facelab.\n",
             "![samples](samples.png)\n", "## Training details\n", _table(training_rows(meta)) + "\n"]
    if meta.get("lineage"):
        parts += ["## Training history\n", "Every stage to these weights, oldest first; the last row is the run "
                  "above. Model parameters that changed between stages have a column each; the full config of "
                  "every stage is in `facelab.json` (`lineage`).\n", history_table(meta) + "\n"]
    losses = meta.get("final_losses") or {}
    if losses:
        parts += ["## Final losses\n", "Mean over the last logging interval, averaged across processes.\n",
                  _table(sorted(losses.items())) + "\n"]
    parts += _prior_section(meta.get("latent_prior") or {}, meta.get("sampling") or {})
    metrics = meta.get("metrics") or {}
    if metrics:
        parts += ["## Metrics\n", _table(sorted(metrics.items())) + "\n"]
    names = meta.get("attribute_names") or []
    if names:
        parts += ["## Attributes\n", ", ".join(f"`{n}`" for n in names) + "\n"]
    params = (run.get("model") or {}).get("params", {})
    if params:
        parts += ["## Model configuration\n", "```yaml\n" + yaml.safe_dump(params, sort_keys=True) + "```\n"]
    parts += ["## Usage\n", "```python\nfrom facelab.hub import load_bundle\n\n"
              "bundle = load_bundle(\"path/or/user/repo\")\n"
              f"images = bundle.model.sample(16{', attributes=...' if kind == 'cvae' else ''})"
              "  # [16, 3, H, W] in [-1, 1]\n```\n",
              "The full run configuration is in `facelab.json` (`run_config`).\n"]
    return "\n".join(parts)
