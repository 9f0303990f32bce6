"""Bundles by Hub repo id through a real Hub-compatible server (olah, offline mode) on loopback.

The server serves a local git repo "user/tiny" with two commits: tag v1 (model A) and main
(model B). huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported, so the
downloads run in a child process with those set, exactly as a user's process would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

from facelab.hub import load_bundle, save_bundle
from facelab.models import build_model
from fixtures_servers import git_commit, olah_server

ROOT = Path(__file__).resolve().parents[1]
TINY_VAE = {"image_size": 16, "latent_dim": 4, "base_channels": 8, "max_channels": 16}

# Runs in the child: every source in argv -> samples (or the error), then the app-level path.
CLIENT = r"""
import json, sys
import numpy as np, torch
from safetensors.numpy import save_file
from facelab.hub import BundleError, load_bundle
from facelab.lab import FaceLab

out, arrays, report = sys.argv[1], {}, {}
for source in sys.argv[2:]:
    try:
        b = load_bundle(source)
    except BundleError as err:
        report[source] = {"error": str(err)}
        continue
    with torch.no_grad():
        arrays[source] = b.model.sample(3, generator=torch.Generator().manual_seed(3)).numpy()
    report[source] = {"files": sorted(str(p.relative_to(b.path)) for p in b.path.rglob("*") if p.is_file()),
                      "name": b.name}
lab = FaceLab(model_sources=["user/tiny", "user/does-not-exist"])
names = lab.model_names()
report["lab"] = {"names": names, "table": lab.models_table()}
if names:
    arrays["lab"] = np.stack([np.asarray(im) for im in lab.generate(names[0], 2, seed=5)])
save_file(arrays, out + ".safetensors")
json.dump(report, open(out + ".json", "w"))
"""


def _tiny(seed: int):
    torch.manual_seed(seed)
    return build_model("vae", TINY_VAE).eval()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """olah serving user/tiny (v1 = model A, main = model B); yields (endpoint, local copies by revision)."""
    root = tmp_path_factory.mktemp("olah")
    repo = root / "mirrors" / "models" / "user" / "tiny"
    local = {}
    for rev, seed, tag in (("v1", 1, "v1"), ("main", 2, None)):
        save_bundle(_tiny(seed), repo, {"name": "tiny", "dataset": "synthfaces", "revision_note": rev},
                    samples=Image.new("RGB", (8, 8), (seed * 60, 0, 0)), card=f"# tiny {rev}\n")
        (repo / "logs").mkdir(exist_ok=True)
        (repo / "logs" / "train.log").write_text(f"not part of a bundle ({rev})\n")
        git_commit(repo, f"tiny {rev}", tag=tag)
        local[rev] = shutil.copytree(repo, root / f"local-{rev}", ignore=shutil.ignore_patterns(".git"))
    with olah_server(root / "mirrors", root, probe_repo="user/tiny") as endpoint:
        yield endpoint, local, root


@pytest.fixture(scope="module")
def downloaded(hub):
    """One child process loading several sources through the server; (report, arrays)."""
    endpoint, _, root = hub
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(root / "hf-home"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(ROOT)}
    out = root / "result"
    sources = ["user/tiny", "user/tiny@main", "user/tiny@v1", "user/tiny@no-such-branch", "user/does-not-exist"]
    res = subprocess.run([sys.executable, "-c", CLIENT, str(out), *sources], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(Path(f"{out}.json").read_text()), load_file(f"{out}.safetensors")


def _local_samples(folder: Path) -> np.ndarray:
    with torch.no_grad():
        return load_bundle(str(folder)).model.sample(3, generator=torch.Generator().manual_seed(3)).numpy()


def test_revisions_load_the_right_weights(hub, downloaded):
    _, local, _ = hub
    report, arrays = downloaded
    a, b = _local_samples(local["v1"]), _local_samples(local["main"])
    assert not np.array_equal(a, b)  # the two revisions really differ
    assert np.array_equal(arrays["user/tiny@v1"], a)
    assert np.array_equal(arrays["user/tiny@main"], b)
    assert np.array_equal(arrays["user/tiny"], b)  # no revision: main
    assert report["user/tiny@v1"]["name"] == "tiny"


def test_only_bundle_files_are_downloaded(downloaded):
    report, _ = downloaded
    files = report["user/tiny@v1"]["files"]
    expected = {"config.json", "diffusion_pytorch_model.safetensors", "facelab.json", "README.md", "samples.png"}
    assert expected <= set(files)
    assert not any(f.startswith("logs") for f in files)  # allow_patterns kept the training log out


def test_missing_repo_and_revision_are_clear_errors(downloaded):
    report, _ = downloaded
    assert "Hub repo not found" in report["user/does-not-exist"]["error"]
    # olah answers an unknown revision as the Hub answers a hidden repo (401 RepoNotFound)
    err = report["user/tiny@no-such-branch"]["error"]
    assert err.startswith("bundle 'user/tiny@no-such-branch'") and "not found" in err


def test_app_loads_a_hub_repo_id(hub, downloaded):
    _, local, _ = hub
    report, arrays = downloaded
    assert report["lab"]["names"] == ["tiny"]  # the broken source does not take the app down
    broken = [row for row in report["lab"]["table"] if "does-not-exist" in " ".join(map(str, row))]
    assert broken and "not found" in " ".join(map(str, broken[0]))
    from facelab.lab import FaceLab

    here = FaceLab(model_sources=[str(local["main"])])
    expected = np.stack([np.asarray(im) for im in here.generate(here.model_names()[0], 2, seed=5)])
    assert np.array_equal(arrays["lab"], expected)
