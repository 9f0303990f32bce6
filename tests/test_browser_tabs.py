"""Every tab in a real headless Chromium, with its defaults, over the shipped models: each button answers with
images and no error, and a screenshot of each tab is saved (to $FACELAB_SCREENSHOTS, default /tmp/facelab_tabs)
for a person to look at."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from PIL import Image

from fixtures_servers import CHROMIUM_FLAGS, ensure_chromium

SHOTS = Path(os.environ.get("FACELAB_SCREENSHOTS", "/tmp/facelab_tabs"))
# (tab, buttons pressed in order): the defaults each tab opens with
TABS = [("Generate", ["Generate"]), ("Conditional sampling", ["Sample"]), ("Latent traversal", ["Traverse"]),
        ("Background", ["Show variants", "Compare models"]), ("Morphing", ["Morph", "Apply"]),
        ("Style mixing", ["Mix"]), ("Results", ["Show results"]), ("Synthetic faces", ["Render"])]
VISIBLE_IMAGES = ("() => [...document.querySelectorAll('img')].filter(i => i.src.includes('file=') && i.complete"
                  " && i.naturalWidth > 0 && i.offsetParent !== null).length")
ERRORS = "() => [...document.querySelectorAll('.toast-body.error, .error')].filter(e => e.offsetParent !== null).length"


@pytest.fixture(scope="module")
def url():
    import app
    from facelab.lab import FaceLab

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_demo(FaceLab())
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_every_tab_answers_with_its_defaults(url):
    pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")
    from playwright import sync_api

    chromium = ensure_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    seen = {}
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url, wait_until="domcontentloaded")  # Gradio's event stream never lets the network idle
            page.get_by_role("tab", name=TABS[0][0], exact=True).wait_for(state="visible")
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SHOTS / "00_first_screen.png"))
            assert "facelab" in page.inner_text("body").lower()
            for i, (tab, buttons) in enumerate(TABS, start=1):
                page.get_by_role("tab", name=tab, exact=True).click()
                for label in buttons:
                    before = page.evaluate(VISIBLE_IMAGES)
                    page.get_by_role("button", name=label, exact=True).click()
                    page.wait_for_function(f"({VISIBLE_IMAGES})() > {before}", timeout=120_000)
                    page.wait_for_timeout(1500)  # the rest of the answer (tables, plots) lands with the images
                    assert page.evaluate(ERRORS) == 0, f"{tab} / {label} shows an error"
                seen[tab] = page.evaluate(VISIBLE_IMAGES)
                page.screenshot(path=str(SHOTS / f"{i:02d}_{tab.lower().replace(' ', '_')}.png"), full_page=True)
        finally:
            browser.close()
    assert all(n > 0 for n in seen.values()), seen
    for shot in SHOTS.glob("*.png"):
        with Image.open(shot) as img:
            assert img.width >= 1000 and img.height >= 500
