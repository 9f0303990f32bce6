"""The app in a real headless Chromium: open the page, run Generate, see the model's faces appear."""

from __future__ import annotations

import io
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures_servers import CHROMIUM_FLAGS, ensure_chromium, free_port

SCREENSHOT_COPY = Path("/tmp/facelab_generate.png")
IMAGE_SIZE = 32
# gallery thumbnails the browser has actually loaded (decoded, non-empty), served by this app
LOADED_IMAGES = ("() => [...document.querySelectorAll('img')].filter(i => i.src.includes('file=') && "
                 "i.complete && i.naturalWidth > 0 && i.offsetParent !== null).map(i => [i.src, i.naturalWidth])")


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system chromium (apt-installed on first use when missing), checked before any app starts."""
    pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")
    return ensure_chromium()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A tiny VAE trained by training/train.py for 150 steps (seconds; blurry faces, not noise): a real bundle."""
    from training.train import main

    out = tmp_path_factory.mktemp("run")
    rc = main(["--config", "training/configs/vae_synthfaces64.yaml", "--set",
               f"model.params.image_size={IMAGE_SIZE}", f"data.image_size={IMAGE_SIZE}", "data.length=2400",
               "model.params.latent_dim=8", "model.params.base_channels=8", "model.params.max_channels=16",
               "train.max_steps=150", "train.batch_size=16", "train.num_samples=4", "train.sample_every=1000",
               "train.checkpoint_every=1000", "train.log_every=50", f"train.output_dir={out}"])
    assert rc == 0
    return out / "bundle"


@pytest.fixture(scope="module")
def app_url(bundle):
    """The whole app (app.build_demo) over the tiny bundle, served on loopback."""
    import app
    from facelab.lab import FaceLab

    lab = FaceLab(model_sources=[str(bundle)])
    demo = app.build_demo(lab)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", lab
    finally:
        demo.close()


def test_generate_in_chromium(chromium, app_url, tmp_path):
    from playwright import sync_api

    url, lab = app_url
    shot = tmp_path / "generate.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="Generate", exact=True).click()
            button = page.get_by_role("button", name="Generate", exact=True)
            button.wait_for(state="visible")
            assert page.evaluate(LOADED_IMAGES) == []  # nothing in the gallery before the click
            button.click()
            page.wait_for_function(f"({LOADED_IMAGES})().length >= 1", timeout=60_000)
            loaded = page.evaluate(LOADED_IMAGES)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert len(loaded) >= 1 and {w for _, w in loaded} == {IMAGE_SIZE}  # the model's 32-px faces, not icons
    srcs = [src for src, _ in loaded]
    # The first thumbnail is the model's first sample for the default seed 0 (16 samples).
    with urllib.request.urlopen(srcs[0], timeout=30) as resp:
        shown = np.asarray(Image.open(io.BytesIO(resp.read())).convert("RGB"))
    expected = np.asarray(lab.generate(lab.model_names()[0], 16, 0)[0])
    assert np.array_equal(shown, expected)
    with Image.open(shot) as img:
        assert img.format == "PNG" and img.width >= 1000 and img.height >= 400
    shutil.copyfile(shot, SCREENSHOT_COPY)
