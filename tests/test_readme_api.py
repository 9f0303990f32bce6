"""README's "Use via API" block, run as written against the app serving the shipped models on loopback."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _api_block() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"### Use via API.*?```python\n(.*?)```", readme, re.S)
    assert found, "README.md has no 'Use via API' python block"
    return found.group(1)


@pytest.fixture(scope="module")
def url():
    import app
    from facelab.lab import FaceLab

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_demo(FaceLab())  # the shipped bundles under assets/, as `python app.py` serves them
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_readme_api_examples_run_as_written(url, monkeypatch):
    monkeypatch.chdir(ROOT)  # the block names assets/examples/... relative to the repository
    code = _api_block()
    assert "http://127.0.0.1:7860/" in code
    ns: dict = {}
    exec(code.replace("http://127.0.0.1:7860/", url), ns)
    assert len(ns["faces"]) == 8 and all(Image.open(f["image"]).size == (64, 64) for f in ns["faces"])
    assert len(ns["table"]["data"]) == 8  # one verdict row per conditional sample
    for key in ("grid", "face", "original", "mask", "strip", "gif", "edited", "mixed"):
        Image.open(ns[key]).load()
    assert ns["start"].startswith("start: photo") and "ground-truth mask" in ns["how"]
    assert ns["text"].startswith("## Seed 004") and ns["figures"]
    assert ns["attributes"]["Eyeglasses"] == 1 and ns["attributes"]["Smiling"] == 1


def test_every_endpoint_parameter_has_a_default(url):
    from gradio_client import Client

    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    missing = [f"{name}:{p['parameter_name']}" for name, e in api.items() for p in e["parameters"]
               if not p["parameter_has_default"]]
    unnamed = [f"{name}:{p['parameter_name']}" for name, e in api.items() for p in e["parameters"]
               if p["parameter_name"].startswith("param_")]
    assert missing == [] and unnamed == []
