"""training/results.py: RESULTS.md is generated from files — every number it prints is in an input, reruns are byte-identical.

The fixture is a tiny fake assets/ + results/data/ made in tmp_path (JSON and two tiny PNGs, no
models). Its numbers are deliberately odd, so a number typed into the generator would not be
found among them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from PIL import Image

from training.results import build
from training.results_inputs import REPO

ATTRS = ["Male", "Smiling", "Wearing_Lipstick"]
# a number not glued to a word, a path or another number: "0.816", "16,000", "-0.5", "000" (in "Seed 000")
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?!\w)")


# ---------------------------------------------------------------- the fixture


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (18, 18), colour).save(path)


def _table(mode: str, columns: list[str], dims: list[int], start: float, n_train: int, n_test: int) -> dict[str, Any]:
    acc = [[round(start + 0.0113 * i + 0.0371 * j, 4) for j in range(len(columns))] for i in range(len(ATTRS))]
    return {"mode": mode, "kind": "svm", "attributes": ATTRS,
            "columns": columns, "dims": dims, "accuracy": acc,
            "balanced_accuracy": [[round(v - 0.0217, 4) for v in row] for row in acc],
            "baseline": [0.5873, 0.5419, 0.6037], "n_train": n_train, "n_test": n_test}


def _fid(fid: float, floor: float, kid: float, background: str, size: int) -> dict[str, Any]:
    return {"details": {"fid_protocol": {"fid_1000": {
        "fid": fid, "fid_floor": floor, "kid": kid, "kid_std": 0.00217, "n": 1000, "resolution": size,
        "background": background, "temperature": 1.0}}}}


def _vae(assets: Path, folder: str, background: str, fid: float, share: float) -> None:
    meta = {"name": folder, "kind": "vae", "background": background, "image_size": 32,
            "final_losses": {"kl": 33.71, "beta": 1.0},
            "run_config": {"model": {"params": {"alpha": 1.0, "beta": 1.0}}},
            "training": {"images_seen": 76800, "seconds": 657.38, "device": "cpu"},
            "probes": {"n": 3000, "tables": {"svm/per_level": _table("per_level", ["z"], [32], 0.7123, 2400, 600),
                                             "mlp/all": _table("cumulative", ["z"], [32], 0.7346, 2400, 600)}}}
    metrics = _fid(fid, 14.21, 0.0917, background, 32)
    metrics["metrics"] = {"background_share": share, "recon_mse": 0.01937, "beta_vae_eval_accuracy": 0.3141,
                          "mig": 0.0427}
    _write(assets / folder / "facelab.json", meta)
    _write(assets / folder / "metrics.json", metrics)
    _write(assets / folder / "probes" / "probes.json", {"pca": {"pca/z": {"var_ratio": [0.1173, 0.0839, 0.0652, 0.0411]}}})
    _png(assets / folder / "samples.png", (200, 120, 90))


def _hvae(assets: Path) -> None:
    levels, dims, cum = ["z0", "z1", "z2"], [16, 256, 256], [16, 272, 528]
    tables = {"svm/per_level": _table("per_level", levels, dims, 0.5521, 2400, 600),
              "svm/cumulative": _table("cumulative", [f"z0..{z}" for z in levels], cum, 0.5634, 2400, 600),
              "age/svm/per_level": _table("per_level", levels, dims, 0.5747, 792, 199),
              "age/svm/cumulative": _table("cumulative", [f"z0..{z}" for z in levels], cum, 0.5858, 792, 199)}
    meta = {"name": "hvaefx_early", "kind": "hvae", "status": "early", "note": "a short run", "image_size": 64,
            "probes": {"n": 3000, "tables": tables, "restriction": {"n": 991, "rule": "older than 15"},
                       "encoding": {"dataset": {"class": "SynthFaces", "size": 64, "seed": 0}}},
            "training": {"images_seen": 38400, "seconds": 956.19, "steps": 1200}}
    _write(assets / "hvae_fx" / "facelab.json", meta)
    _write(assets / "hvae_fx" / "metrics.json", _fid(330.47, 11.69, 0.4343, "original", 64))


def _seeds() -> dict[str, Any]:
    return {"seeds": [
        {"id": "000", "title": "HVAE study", "file": "000_x.txt", "dataset": "FFHQ", "question": "gender by level?",
         "protocol": "linear SVM", "cumulative": {"cite": "§3.6.2", "levels": [1, 2, 3], "dims": [16, 32, 288],
                                                   "svm": [0.53, 0.54, 0.66]},
         "per_level": {"cite": "§3.6.2", "levels": [1, 2, 3], "svm": [0.5, 0.54, 0.66]},
         "age_restricted": {"cite": "§3.7.1", "levels": [1, 2, 3], "svm": [0.549, 0.547, 0.689]},
         "mlp": {"cite": "§3.7.3", "hidden_layers": 2, "score": 0.8}, "more_levels": {"cite": "§3.7.2", "plateau": 0.8},
         "precision": {"cite": "§3.6.2", "accepted": 81, "of": 100}},
        {"id": "001", "title": "CelebA VAE", "file": "001_x.txt", "latent_dims": 64,
         "manual_dims": {"cite": "Results", "rows": [{"dim": 16, "meaning": "hair colour"}]}},
        {"id": "002", "title": "backgrounds", "file": "002_x.txt", "resolution": 128,
         "cost_table": {"cite": "Table 1", "epochs": 400, "rows": [{"hardware": "M1 CPU", "minutes_per_epoch": 240,
                                                                     "hours_for_400_epochs": 1600}]}},
        {"id": "003", "title": "alpha beta", "file": "003_x.txt", "beta": {"cite": "spec", "value": 0.1}},
        {"id": "004", "title": "VAE vs GAN", "file": "004_x.txt", "n_images": 202599, "resolution": 64,
         "latent_size": {"cite": "§2.2", "overfits_from": 64, "works_at": 32}}]}


def _studies(data: Path) -> None:
    _write(data / "seeds.json", _seeds())
    report = {s: {"Male": 0.4187 + 0.0011 * k, "Smiling": 0.4523 - 0.0007 * k, "Wearing_Lipstick": 0.4119}
              for k, s in enumerate(("all", "train", "valid", "test"))}
    _write(data / "splits.json", {"command": "measure splits", "measured": "prevalence", "attributes": ATTRS,
                                  "stratified_on": ["Male"], "balanced": report, "random": report,
                                  "balanced_spread": dict.fromkeys(ATTRS, 0.0033),
                                  "random_spread": dict.fromkeys(ATTRS, 0.0089)})
    _write(data / "intervention_vae_fx.json", {
        "command": "measure intervention", "name": "vae_fx", "n": 300, "seed": 0, "active_dims": 31, "latent_dims": 32,
        "top_dims": [{"dim": 7, "factor": "sex", "effect": 1.37, "runner_up": "age", "runner_up_effect": 0.21}],
        "traversal_image": "traversal_vae_fx.png"})
    _png(data / "traversal_vae_fx.png", (10, 200, 10))
    _write(data / "beta_schedule.json", {"command": "measure beta", "measured": "β in the loss", "steps": [0, 750],
                                         "schedules": {"warmup": {"params": {"beta": 3.5, "warmup_steps": 1500},
                                                                  "rows": [{"step": 0, "kl_weight_in_loss": 0.0},
                                                                           {"step": 750, "kl_weight_in_loss": 1.7503}]}}})
    _write(data / "coverage.json", {"command": "measure coverage", "measured": "prdc", "features": "clf",
                                    "reals": "held out", "n": 1000, "seed": 0, "bundles": {"vae_fx": {
                                        "image_size": 32, "background": "original", "precision": 0.7523,
                                        "recall": 0.7261, "density": 0.3931, "coverage": 0.4324, "nn_ratio": 1.1783,
                                        "prevalence_generated": {"Pale_Skin": 0.1417},
                                        "prevalence_real_judged": {"Pale_Skin": 0.1389}}}})
    _write(data / "conditional_vae_fx.json", {
        "bundle": "vae_fx", "kind": "vae", "command": "bench", "source": "measured",
        "protocol": {"n_per_target": 200, "temperature": 0.7, "judge": "judge64"},
        "methods": {"rejection": "seed 000's method"},
        "attributes": [{"attribute": "Male", "prevalence": 0.415, "rejection": [0.81, 0.985]}],
        "minimum": {"rejection": 0.81}})


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A fake assets/ (two VAE variants, an early HVAE, a classifier) and results/data/."""
    assets, data = tmp_path / "in" / "assets", tmp_path / "in" / "data"
    _vae(assets, "vae_fx", "original", 101.37, 0.2718)
    _vae(assets, "vae_fx_grey", "grey", 83.11, 0.0153)
    _hvae(assets)
    _write(assets / "clf" / "facelab.json", {"kind": "attribute_classifier", "attribute_names": ATTRS, "image_size": 64,
                                             "accuracy": {"held_out_accuracy": dict(zip(ATTRS, [0.994, 0.992, 0.913])),
                                                          "balanced_accuracy": dict(zip(ATTRS, [0.9953, 0.9912, 0.9183])),
                                                          "majority_baseline": dict(zip(ATTRS, [0.635, 0.555, 0.553])),
                                                          "n_train": 40000, "n_eval": 1000, "steps": 400, "seed": 0}})
    _studies(data)
    return assets, data


# ---------------------------------------------------------------- provenance


def _tokens(text: str) -> Iterator[str]:
    for match in NUMBER.finditer(text):
        yield match.group().rstrip(",")


def _input_numbers(*folders: Path) -> tuple[set[str], list[float]]:
    """Every number in the inputs: JSON numeric leaves and numbers inside JSON strings."""
    strings: set[str] = set()
    values: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(k)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            for t in _tokens(node):
                strings.add(t)
                values.append(float(t.replace(",", "")))
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            values.append(float(node))

    for folder in folders:
        for path in sorted(folder.rglob("*.json")):
            walk(json.loads(path.read_text()))
    return strings, values


def unsourced_numbers(text: str, *folders: Path) -> list[str]:
    """Numbers in text that no input file under folders holds (to the printed precision)."""
    strings, values = _input_numbers(*folders)
    by_digits = {d: {round(v, d) for v in values} for d in range(8)}
    missing = []
    for t in _tokens(text):
        if t in strings:
            continue
        digits = len(t.split(".")[1]) if "." in t else 0
        if round(float(t.replace(",", "")), digits) not in by_digits[min(digits, 7)]:
            missing.append(t)
    return missing


def _build(tmp_path: Path, inputs: tuple[Path, Path]) -> Path:
    return build(inputs[0], inputs[1], tmp_path / "out" / "RESULTS.md", tmp_path / "out" / "results" / "figures")


# ---------------------------------------------------------------- tests


def test_every_number_comes_from_an_input_file(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    page = _build(tmp_path, inputs)
    text = page.read_text()
    assert "## Seed 000" in text and "## Seed 004" in text
    assert unsourced_numbers(text, tmp_path / "in") == []
    # the checker itself catches a typed number
    assert unsourced_numbers(text + "\nthe best run scored 0.9876\n", tmp_path / "in") == ["0.9876"]


def test_two_runs_give_identical_bytes(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    page = _build(tmp_path, inputs)
    figures = sorted((tmp_path / "out" / "results" / "figures").glob("*.png"))
    first = [page.read_bytes()] + [f.read_bytes() for f in figures]
    assert len(figures) >= 3  # levels per HVAE level, PCA spectrum, samples
    _build(tmp_path, inputs)
    assert [page.read_bytes()] + [f.read_bytes() for f in figures] == first
    assert sorted((tmp_path / "out" / "results" / "figures").glob("*.png")) == figures


def test_pending_rows_fill_when_the_bundle_lands(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    # a study of an earlier bundle under the same name (other steps) is stale: not shown, the row stays pending
    _write(inputs[1] / "conditional_hvaefx_early.json", {"bundle": "hvaefx_early", "steps": 600, "kind": "hvae",
                                                          "attributes": [{"attribute": "Male", "reported": [0.7411, 0.2713]}]})
    text = _build(tmp_path, inputs).read_text()
    assert "**pending** — CVAE" in text and "**Early run.**" in text
    assert "0.741" not in text and "**pending** — level-wise conditional precision of the HVAE" in text
    assets = inputs[0]
    metrics = _fid(97.31, 11.69, 0.0813, "original", 64)
    metrics["metrics"] = {"recon_mse": 0.01171, "conditional_attribute_accuracy": 0.9137}
    _write(assets / "cvae_fx" / "facelab.json", {"name": "cvae_fx", "kind": "cvae", "image_size": 64})
    _write(assets / "cvae_fx" / "metrics.json", metrics)
    text = _build(tmp_path, inputs).read_text()
    assert "**pending** — CVAE" not in text and "0.914" in text and "97.3" in text
    assert unsourced_numbers(text, tmp_path / "in") == []


def test_shipped_results_md_is_current(tmp_path: Path) -> None:
    """RESULTS.md in the repository is what the command makes from the shipped files (else: rerun it)."""
    shipped = REPO / "RESULTS.md"
    if not shipped.is_file():
        pytest.skip("RESULTS.md not generated yet")
    # the same layout as the repository (linked, not copied), so the page's relative links match
    (tmp_path / "results").mkdir()
    (tmp_path / "assets").symlink_to(REPO / "assets")
    (tmp_path / "results" / "data").symlink_to(REPO / "results" / "data")
    page = build(tmp_path / "assets", tmp_path / "results" / "data", tmp_path / "RESULTS.md",
                 tmp_path / "results" / "figures")
    assert page.read_text() == shipped.read_text(), "RESULTS.md is stale: run `python training/results.py`"
    assert unsourced_numbers(page.read_text(), REPO / "assets", REPO / "results" / "data") == []
