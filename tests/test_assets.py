"""The shipped bundles in assets/: every one the app lists loads from safetensors, samples faces and has probes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facelab.hub import load_bundle
from facelab.lab_bundles import ORDER_FILE, default_sources

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
