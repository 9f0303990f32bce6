"""The shipped bundles in assets/: every one the app lists loads from safetensors, samples faces and has probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from facelab.config import load_config, to_dict
from facelab.hub import load_bundle
from facelab.lab_bundles import ORDER_FILE, default_sources
from training.train_utils import resolve_model_params

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SOURCES = default_sources(ASSETS)


def test_order_file_names_only_shipped_bundles_and_lists_them_first():
    listed = (ASSETS / ORDER_FILE).read_text().split()
    assert listed and all((ASSETS / name).is_dir() for name in listed)
    assert [Path(s).name for s in SOURCES[:len(listed)]] == listed


@pytest.mark.parametrize("source", SOURCES, ids=[Path(s).name for s in SOURCES])
def test_shipped_bundle_loads_samples_and_has_probes(source):
    bundle = load_bundle(source)
    model = bundle.model.eval()
    size = int(bundle.meta["image_size"])
    images = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, size, size) and torch.isfinite(images).all()
    assert images.std() > 0.05  # a trained model draws faces, not a flat colour
    assert (Path(source) / "probes" / "probes.json").is_file() and bundle.meta.get("probes")


def test_adagvae_presets_are_the_shipped_bundles_recorded_recipe():
    """The two adagvae presets resolve to the run configs the shipped adagvae64 records (lineage), paths aside."""
    configs = ASSETS.parent / "training" / "configs"

    def resolved(name: str) -> dict:
        cfg = load_config(configs / f"{name}.yaml")
        resolve_model_params(cfg)  # the run config records every constructor argument, defaults included
        return to_dict(cfg)

    meta = json.loads((ASSETS / "adagvae_synthfaces64" / "facelab.json").read_text())
    recorded = [stage["run_config"] for stage in meta["lineage"]] + [meta["run_config"]]
    presets = [resolved(name) for name in ("adagvae_synthfaces64", "adagvae_synthfaces64_cooldown")]
    assert len(recorded) == len(presets) == 2
    paths = {"output_dir", "init_from", "report_to"}
    for preset, run in zip(presets, recorded):
        assert preset["model"] == run["model"] and preset["data"] == run["data"]
        assert {k: v for k, v in preset["train"].items() if k not in paths} == \
            {k: v for k, v in run["train"].items() if k not in paths}
    # stage 2 starts from stage 1's bundle
    assert presets[1]["train"]["init_from"] == f"{presets[0]['train']['output_dir']}/bundle"
