#!/usr/bin/env python
"""Quick study measurements for RESULTS.md, run once here and saved as JSON under results/data/.

    python training/results_measure.py all            # every measurement below (≈ 2-3 min on one core)
    python training/results_measure.py splits coverage --out results/data

Each measurement writes results/data/<name>.json holding its numbers, the command that produced
them and what was measured; `python training/results.py` only re-renders those files (it never
measures), so RESULTS.md stays byte-identical until someone re-runs this script. All of them are
small: no training, no Inception features (the attribute classifier's features stand in where a
feature space is needed), seeds fixed.

- splits: seed 001's balanced split — prevalence per split, prevalence-balanced vs random (no rendering).
- intervention: seed 001's latent traversal found automatically — for the most factor-specific
  dimensions of vae64 and adagvae64, the synthfaces factor each one moves (intervention effects),
  plus a traversal image of those dimensions.
- beta_schedule: seed 003's β scheduler that "did not change inside the model" — the β each facelab
  schedule puts into the loss, read back from the loss itself.
- arithmetic: seed 003's centroid attribute arithmetic (Male ± the centroid difference), judged by
  the attribute classifier, and an image strip.
- coverage: seed 004's mode-collapse check — precision / recall / density / coverage and
  nearest-neighbour distances of 1,000 samples vs 1,000 held-out faces in the attribute
  classifier's features, plus the sampled attribute prevalences.
- curves: training curves of the shipped GANs (and any run with TensorBoard events) from runs/*/logs.
- conditional --bundle B (not part of "all"): seed 000's conditional precision of one bundle, judged by a
  second classifier (benchmarks/bench_conditional.py's table as JSON) — what fills the HVAE's row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from training.results_measure_gen import CLASSIFIER, measure_coverage, measure_curves  # noqa: E402

DATA = ROOT / "results" / "data"
TRAVERSAL_BUNDLES = ("assets/vae_synthfaces64", "assets/adagvae_synthfaces64")
ARITHMETIC_BUNDLES = ("assets/vae_synthfaces64", "assets/adagvae_synthfaces64")


def write(name: str, command: str, what: str, data: dict[str, Any], out: Path = DATA) -> Path:
    """Save one measurement as results/data/<name>.json with its command and description."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    record = {"command": command, "measured": what, **data}
    path.write_text(json.dumps(record, indent=1, sort_keys=True, default=float) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


# ---------------------------------------------------------------- seed 001: balanced split


def measure_splits(n: int = 50_000, seed: int = 0) -> dict[str, Any]:
    """Prevalence per split of a prevalence-balanced 80/10/10 split and of a random one."""
    from facelab.data.splits import DEFAULT_FRACTIONS, _default_stratify, balanced_split, prevalence_report
    from facelab.data.synthfaces import ATTRIBUTE_NAMES, SynthFaces, attributes_from_factors

    names = list(ATTRIBUTE_NAMES)
    attrs = attributes_from_factors(SynthFaces(size=16, length=n, seed=seed).factors(np.arange(n)))
    _, balanced = balanced_split(attrs, names, DEFAULT_FRACTIONS, seed=seed)
    perm = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum([int(round(f * n)) for f in DEFAULT_FRACTIONS])[:-1]
    random = prevalence_report(attrs, names, dict(zip(("train", "valid", "test"), np.split(perm, cuts))))

    def spread(report: dict[str, dict[str, float]]) -> dict[str, float]:
        return {a: max(report[s][a] for s in ("train", "valid", "test"))
                - min(report[s][a] for s in ("train", "valid", "test")) for a in names}

    return {"n": n, "seed": seed, "fractions": list(DEFAULT_FRACTIONS), "attributes": names,
            "stratified_on": _default_stratify(attrs, names), "balanced": balanced, "random": random,
            "balanced_spread": spread(balanced), "random_spread": spread(random)}


# ---------------------------------------------------------------- seed 001: automatic traversal


def _probe_face(size: int, background: str, seed: int = 1) -> torch.Tensor:
    """One held-out synthfaces face [1,3,S,S] (test split, item 0) to traverse from."""
    from facelab.metrics.fid_protocol import real_images

    return real_images(size, background, 1, 0, seed=seed)[0]


def _label_strip(rows: list[torch.Tensor], labels: list[str], path: Path) -> None:
    """Rows of images [k,3,S,S] with a text label left of each row, saved as PNG."""
    from PIL import Image, ImageDraw

    from facelab.imaging import grid

    strips = [grid(r, nrow=len(r), pad=2) for r in rows]
    label_w = 8 + 7 * max(len(s) for s in labels)
    w, h = strips[0].size
    canvas = Image.new("RGB", (label_w + w, h * len(strips)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (strip, text) in enumerate(zip(strips, labels)):
        canvas.paste(strip, (label_w, i * h))
        draw.text((4, i * h + h // 2 - 6), text, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)


def measure_intervention(folder: str, n: int = 300, seed: int = 0, top: int = 8,
                         out: Path = DATA) -> dict[str, Any]:
    """The dimensions that move one factor most, the factor each moves, and a traversal image of them."""
    from facelab.data.synthfaces_factors import FACTOR_NAMES, FACTOR_SIZES
    from facelab.hub import load_bundle
    from facelab.metrics.evaluate import synthfaces_encoder
    from facelab.metrics.intervention import effect_summary, intervention_effects

    bundle = load_bundle(folder)
    model = bundle.model.eval()
    size, background = int(model.image_size), bundle.meta.get("background") or "original"
    res = intervention_effects(synthfaces_encoder(model, size, background), FACTOR_SIZES, n=n, seed=seed)
    effects = res["effects"]  # [F, D]
    order = np.argsort(-effects.max(axis=0), kind="stable")[:top]
    dims = []
    for d in order.tolist():
        f = np.argsort(-effects[:, d], kind="stable")
        dims.append({"dim": d, "factor": FACTOR_NAMES[f[0]], "effect": float(effects[f[0], d]),
                     "runner_up": FACTOR_NAMES[f[1]], "runner_up_effect": float(effects[f[1], d]),
                     "std": float(res["std"][d])})
    values = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    with torch.no_grad():
        z = model.encode(_probe_face(size, background))[0].reshape(1, -1)
        rows = []
        for row in dims:
            zs = z.repeat(len(values), 1)
            zs[:, row["dim"]] = torch.tensor(values)
            rows.append(model.decode([zs.reshape(len(values), *model.latent_levels[0].shape)]).float())
    image = out / f"traversal_{bundle.meta.get('name') or Path(folder).name}.png"
    _label_strip(rows, [f"dim {r['dim']}: {r['factor']}" for r in dims], image)
    return {"bundle": folder, "name": bundle.meta.get("name"), "steps": (bundle.meta.get("training") or {}).get("steps"),
            "n": n, "seed": seed, "image_size": size,
            "active_dims": int(res["active"].sum()), "latent_dims": int(effects.shape[1]),
            "top_dims": dims, "per_factor": effect_summary(effects, FACTOR_NAMES),
            "traversal_values": values, "traversal_image": image.name}


# ---------------------------------------------------------------- seed 003: β schedules, arithmetic


def measure_beta_schedules(steps: tuple[int, ...] = (0, 250, 500, 1000, 1500, 2000, 3000, 4000)
                           ) -> dict[str, Any]:
    """β each schedule puts into the loss, read back from the loss: (loss − α·recon) / KL at each step."""
    from facelab.models.vae import VAE

    torch.manual_seed(0)
    batch = {"image": torch.rand(8, 3, 32, 32) * 2 - 1}
    specs = {"constant": {"beta": 4.0},
             "warmup": {"beta": 4.0, "warmup_steps": 1500},
             "cyclical": {"beta": 4.0, "cycle_steps": 2000, "cycle_ratio": 0.5},
             "capacity": {"gamma": 1000.0, "c_max": 25.0, "c_steps": 4000}}
    out: dict[str, Any] = {}
    for kind, params in specs.items():
        model = VAE(image_size=32, latent_dim=8, base_channels=8, beta_schedule=kind, **params).eval()
        rows = []
        with torch.no_grad():
            for s in steps:
                loss = model.loss(batch, step=s)
                used = float((loss["loss"] - model.config.alpha * loss["recon"]) / loss["kl"])
                row = {"step": s, "beta_schedule": float(loss["beta"]), "kl_weight_in_loss": used}
                if "capacity" in loss:
                    row["capacity"] = float(loss["capacity"])
                rows.append(row)
        out[kind] = {"params": params, "rows": rows}
    return {"steps": list(steps), "schedules": out}


def _faces_with(attribute: str, value: int, size: int, background: str, n: int) -> torch.Tensor:
    """The first n held-out synthfaces faces (test split) whose attribute equals value."""
    from facelab.data.synthfaces import ATTRIBUTE_NAMES
    from facelab.metrics.fid_protocol import real_images

    images, labels = real_images(size, background, 8 * n, 0, seed=1)
    keep = (labels[:, list(ATTRIBUTE_NAMES).index(attribute)] == value).nonzero().flatten()[:n]
    return images[keep]


def measure_arithmetic(folder: str, attribute: str = "Male", n: int = 100,
                       strengths: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0), out: Path = DATA
                       ) -> dict[str, Any]:
    """Faces ± s × the attribute's centroid difference, judged by the attribute classifier."""
    from facelab.hub import load_bundle
    from facelab.models.classifier import load_attribute_classifier
    from facelab.probes.io import load_probes

    bundle = load_bundle(folder)
    model, judge = bundle.model.eval(), load_attribute_classifier(ROOT / CLASSIFIER)
    size, background = int(model.image_size), bundle.meta.get("background") or "original"
    direction = torch.as_tensor(load_probes(Path(folder) / "probes").directions("centroid/z")[attribute]).float()
    a = list(judge.attribute_names).index(attribute)
    result: dict[str, Any] = {}
    strip = []
    for start, sign in (("without", 0), ("with", 1)):
        faces = _faces_with(attribute, sign, size, background, n)
        with torch.no_grad():
            z = model.encode(faces)[0].reshape(len(faces), -1)
            base = judge.predict(model.decode([z.reshape(len(z), *model.latent_levels[0].shape)]))
            rows = []
            for s in strengths:
                zs = (z + s * direction).reshape(len(z), *model.latent_levels[0].shape)
                images = model.decode([zs]).float()
                p = judge.predict(images)
                others = torch.cat([p[:, :a], p[:, a + 1:]], 1) - torch.cat([base[:, :a], base[:, a + 1:]], 1)
                rows.append({"strength": s, "judged_share": float((p[:, a] > 0.5).float().mean()),
                             "other_attributes_mean_abs_change": float(others.abs().mean())})
                strip.append(images[:4])
        result[f"{start}_{attribute}"] = {"n": len(faces), "rows": rows}
    image = out / f"arithmetic_{bundle.meta.get('name') or Path(folder).name}.png"
    cols = [torch.stack([strip[i][j] for i in range(len(strengths))]) for j in range(4)]
    cols += [torch.stack([strip[len(strengths) + i][j] for i in range(len(strengths))]) for j in range(4)]
    _label_strip(cols, [f"no {attribute}" if k < 4 else attribute for k in range(8)], image)
    return {"bundle": folder, "name": bundle.meta.get("name"), "attribute": attribute,
            "steps": (bundle.meta.get("training") or {}).get("steps"),
            "beta": bundle.meta.get("run_config", {}).get("model", {}).get("params", {}).get("beta"),
            "judge": CLASSIFIER, "strengths": list(strengths), "image": image.name, **result}


# ---------------------------------------------------------------- seed 000: conditional precision


def _cell_pair(cell: str) -> list[float | None]:
    """'0.990 / 0.895' (or '0.990 / —') from bench_conditional's table → [0.99, 0.895]."""
    return [float(v) if v.strip() not in ("—", "") else None for v in cell.split("/")]


def measure_conditional(folder: str, judge: str, methods: list[str], n: int, temperature: float,
                        variant: str, seed: int = 0, min_prevalence: float = 0.10) -> dict[str, Any]:
    """benchmarks/bench_conditional.py's table for one bundle, as JSON (precision per target, acceptance)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_conditional", ROOT / "benchmarks" / "bench_conditional.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.run(folder, judge, methods, n, min_prevalence, seed, None, variant, temperature)
    keys = [m.replace(":", "_strength" if m.startswith("cvae") else "_margin") for m in methods]
    attributes = []
    for row in rows[:-2]:  # the last two rows are the minimum and the cost per accepted face
        entry: dict[str, Any] = {"attribute": row[0], "prevalence": float(row[1])}
        for k, key in enumerate(keys):
            entry[key] = _cell_pair(row[2 + 2 * k])
            entry[f"{key}_acceptance"] = float(row[3 + 2 * k])
        attributes.append(entry)
    minimum = {key: float(rows[-2][2 + 2 * k].strip("*")) for k, key in enumerate(keys)}
    cost = {key: float(rows[-1][2 + 2 * k]) for k, key in enumerate(keys)}
    from facelab.hub import load_bundle

    meta = load_bundle(folder).meta
    return {"bundle": meta.get("name") or Path(folder).name, "kind": meta.get("kind"),
            "steps": (meta.get("training") or {}).get("steps"),
            "levels": f"HVAE classifiers: {variant}" if meta.get("kind") == "hvae" else None,
            "protocol": {"n_per_target": n, "temperature": temperature, "judge": judge,
                         "min_prevalence": min_prevalence, "seed": seed},
            "methods": {key: m for key, m in zip(keys, methods)},
            "attributes": attributes, "minimum": minimum, "ms_per_accepted_face": cost}


# ---------------------------------------------------------------- command line

MEASUREMENTS: dict[str, Callable[[Path], None]] = {}
LATENT_SIZES = (32, 64, 256)
LATENT_SIZE_CMD = ("python training/train.py --config training/configs/vae_synthfaces64.yaml --set "
                   "model.params.latent_dim=N train.max_steps=3000 train.output_dir=runs/vae64_zN; "
                   "python training/evaluate.py runs/vae64_zN/bundle --no-fid --quick; "
                   "python training/fid_protocol.py runs/vae64_zN/bundle --write")


def _register(name: str) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    def wrap(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        MEASUREMENTS[name] = fn
        return fn
    return wrap


@_register("splits")
def _splits(out: Path) -> None:
    write("splits", "python training/results_measure.py splits",
          "prevalence of each attribute per split, 50,000 synthfaces (factor prior, no rendering): "
          "facelab.data.splits.balanced_split vs a random permutation, fractions 0.8/0.1/0.1",
          measure_splits(), out)


@_register("intervention")
def _intervention(out: Path) -> None:
    for folder in TRAVERSAL_BUNDLES:
        data = measure_intervention(folder, out=out)
        write(f"intervention_{data['name']}", "python training/results_measure.py intervention",
              "intervention effects (facelab.metrics.intervention, uniform factors, same nuisance seed): "
              "the latent dimensions with the largest single-factor effect, the factor each moves, and a "
              "traversal (values -3..3) of those dimensions from one held-out face", data, out)


@_register("beta_schedule")
def _beta(out: Path) -> None:
    write("beta_schedule", "python training/results_measure.py beta_schedule",
          "the KL weight each facelab β schedule puts into the VAE loss at given steps, read back from "
          "the loss ((loss − α·recon) / KL), on a random batch with an untrained 32-px VAE",
          measure_beta_schedules(), out)


@_register("arithmetic")
def _arithmetic(out: Path) -> None:
    for folder in ARITHMETIC_BUNDLES:
        data = measure_arithmetic(folder, out=out)
        write(f"arithmetic_{data['name']}", "python training/results_measure.py arithmetic",
              "centroid attribute arithmetic: held-out faces encoded, ± s × (mean z with the attribute − "
              "mean z without), decoded and judged by the attribute classifier (share judged to have it; "
              "mean |change| of the other attributes' probabilities against the plain reconstruction)",
              data, out)


@_register("coverage")
def _coverage(out: Path) -> None:
    write("coverage", "python training/results_measure.py coverage",
          "mode-collapse check: precision/recall/density/coverage (k = 5) and median nearest-neighbour "
          "distances, 1,000 samples (seed 0, temperature 1) vs 1,000 held-out faces, attribute-classifier "
          "features; attribute prevalence judged by the classifier", measure_coverage(), out)


@_register("latent_size")
def _latent_size(out: Path) -> None:
    rows = []
    for n in LATENT_SIZES:
        folder = ROOT / "runs" / f"vae64_z{n}" / "bundle"
        meta = json.loads((folder / "facelab.json").read_text())
        m = json.loads((folder / "metrics.json").read_text())["metrics"]
        rows.append({"latent_dim": n, "recon_mse": m.get("recon_mse"), "fid": m.get("fid_1000"),
                     "kid": m.get("kid_1000"), "active_dims": m.get("factor_vae_active_dims"),
                     "steps": (meta.get("training") or {}).get("steps")})
    write("latent_size", "python training/results_measure.py latent_size",
          f"VAE latent size at 64 px, same preset and steps ({LATENT_SIZE_CMD}): held-out reconstruction MSE "
          "(training/evaluate.py), FID/KID at the shared protocol (1,000 vs 1,000), FactorVAE active dimensions",
          {"rows": rows}, out)


@_register("curves")
def _curves(out: Path) -> None:
    write("curves", "python training/results_measure.py curves",
          "training curves (TensorBoard scalars of each run folder, ≤ 200 points per tag, window means)",
          measure_curves(), out)


def conditional(args: argparse.Namespace) -> None:
    """Seed 000's conditional precision for one bundle (not in "all": it needs a judge and minutes per method)."""
    methods = [m for m in args.methods.split(",") if m]
    data = measure_conditional(args.bundle, args.judge, methods, args.n, args.temperature, args.variant)
    cmd = (f"python training/results_measure.py conditional --bundle {args.bundle} --judge {args.judge} "
           f"--methods {args.methods} --n {args.n} --temperature {args.temperature} --variant {args.variant}")
    write(f"conditional_{data['bundle']}", cmd,
          "conditional-sampling precision per attribute (benchmarks/bench_conditional.py): faces asked for "
          "attribute = 1 and = 0, judged by a second attribute classifier", data, args.out)


def main(argv: list[str] | None = None) -> None:
    """Run the named measurements (or all) and write their JSON files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", choices=[*MEASUREMENTS, "all", "conditional"])
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--bundle", help="conditional: the bundle to sample from")
    parser.add_argument("--judge", default="runs/judge64",
                        help="conditional: a second attribute classifier (training/train_classifier.py --seed 1)")
    parser.add_argument("--methods", default="rejection,nearest:1")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--variant", default="per_level", choices=("per_level", "cumulative"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a quick measurement beside running trainings: one core at most
    if "conditional" in args.names:
        if not args.bundle:
            parser.error("conditional needs --bundle")
        conditional(args)
    for name in (list(MEASUREMENTS) if "all" in args.names else [n for n in args.names if n != "conditional"]):
        MEASUREMENTS[name](args.out)


if __name__ == "__main__":
    main()
