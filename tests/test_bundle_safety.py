"""Bundles are untrusted input: links out of the folder, pickles under any name, files of unknown formats,
weights that are incomplete or non-finite, and metadata of the wrong shape are all refused by name.

Every bundle here is a real one (a tiny VAE saved with save_bundle), altered on disk the way a hostile
or broken download would be; the lab and the Results tab run on them for real.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from facelab.bundle_files import check_bundle_files
from facelab.hub import META_FILE, WEIGHTS_FILE, BundleError, load_bundle, save_bundle
from facelab.models import build_model

TINY_VAE = {"image_size": 16, "latent_dim": 4, "base_channels": 8, "max_channels": 16}
ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    return build_model("vae", TINY_VAE).eval()


@pytest.fixture
def bundle(tmp_path, model) -> Path:
    """A fresh bundle in tmp_path/inside/tiny, next to a secret file the bundle must never reach."""
    (tmp_path / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"TOP SECRET" * 10)
    (tmp_path / "secret.txt").write_text("password=hunter2\n")
    samples = Image.new("RGB", (16, 16), (10, 20, 30))
    return save_bundle(model, tmp_path / "inside" / "tiny", {"name": "tiny", "dataset": "synthfaces"},
                       samples=samples, card="# tiny\n")


def _lab(*sources: Path):
    from facelab.lab import FaceLab

    lab = FaceLab(model_sources=[str(s) for s in sources], device="cpu", classifier_path="")
    lab.load()
    return lab


def _status(lab, name: str) -> str:
    return {r[0]: r[4] for r in lab.models_table()}[name]


# ---------------------------------------------------------------- 1. nothing outside the bundle


@pytest.mark.parametrize("target", ["absolute", "dotdot", "chain"])
def test_a_samples_link_out_of_the_bundle_refuses_it_by_name(bundle, target):
    (bundle / "samples.png").unlink()
    secret = bundle.parents[1] / "secret.png"
    if target == "absolute":
        os.symlink(secret, bundle / "samples.png")
    elif target == "dotdot":
        os.symlink("../../secret.png", bundle / "samples.png")
    else:  # a link to a link inside the bundle that leads out
        os.symlink("../../secret.png", bundle / "hop.png")
        os.symlink("hop.png", bundle / "samples.png")
    with pytest.raises(BundleError, match=r"(samples|hop)\.png is a link to .*outside the bundle"):
        load_bundle(str(bundle))
    lab = _lab(bundle)
    assert _status(lab, "tiny").startswith("error") and ".png is a link" in _status(lab, "tiny")
    from facelab.lab import LabError

    with pytest.raises(LabError, match="failed to load"):
        lab.results("tiny")  # the Results tab never gets to serve the secret


def test_weights_and_folders_linked_from_outside_are_refused(bundle, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(bundle / WEIGHTS_FILE, outside / WEIGHTS_FILE)
    os.symlink(outside / WEIGHTS_FILE, bundle / WEIGHTS_FILE)
    with pytest.raises(BundleError, match=rf"{WEIGHTS_FILE} is a link to .*outside"):
        load_bundle(str(bundle))
    (bundle / WEIGHTS_FILE).unlink()
    shutil.move(outside / WEIGHTS_FILE, bundle / WEIGHTS_FILE)
    os.symlink(outside, bundle / "probes")  # a whole folder linked in
    with pytest.raises(BundleError, match=r"probes is a link to .*outside"):
        load_bundle(str(bundle))


def test_links_inside_the_bundle_are_fine(bundle):
    (bundle / "docs").mkdir()
    shutil.move(bundle / "README.md", bundle / "docs" / "card.md")
    os.symlink("docs/card.md", bundle / "README.md")
    os.symlink(str(bundle / "samples.png"), bundle / "preview.png")  # absolute, but into the bundle
    assert load_bundle(str(bundle)).name == "tiny"


def test_special_files_are_refused_not_read(bundle):
    (bundle / "samples.png").unlink()
    os.mkfifo(bundle / "samples.png")  # reading it would block the request forever
    with pytest.raises(BundleError, match=r"samples\.png is not a regular file"):
        load_bundle(str(bundle))


def test_a_link_swapped_in_after_loading_is_never_served(bundle):
    """The Results tab re-checks at serving time: a file replaced by a link after loading is not read."""
    lab = _lab(bundle)
    assert lab.results("tiny")["samples"] == str(bundle / "samples.png")
    (bundle / "samples.png").unlink()
    os.symlink(bundle.parents[1] / "secret.png", bundle / "samples.png")
    (bundle / "metrics.json").symlink_to(bundle.parents[1] / "secret.txt")
    (bundle / "logs").mkdir()
    (bundle / "logs" / "history.jsonl").symlink_to(bundle.parents[1] / "secret.txt")
    out = lab.results("tiny")
    assert out["samples"] is None
    assert "hunter2" not in json.dumps({k: v for k, v in out.items() if isinstance(v, str)})


def test_a_run_folder_is_read_for_curves_only_when_train_py_wrote_it(tmp_path, model):
    """Curves may come from the run folder around '.../bundle', never from an arbitrary parent folder."""
    run = tmp_path / "run"
    save_bundle(model, run / "bundle", {"name": "r"})
    (run / "history.jsonl").write_text('{"step": 1, "loss": 3.0}\n{"step": 2, "loss": 2.0}\n')
    from facelab.lab.results import history

    assert history(load_bundle(str(run / "bundle")))[0] == {}  # no config.yaml: not a training run folder
    (run / "config.yaml").write_text("model: {kind: vae}\n")
    assert history(load_bundle(str(run / "bundle")))[0]["loss"] == ([1.0, 2.0], [3.0, 2.0])


def _hub_cache(cache: Path, bundle: Path, repo: str = "someone/tiny") -> Path:
    """A Hub cache exactly as huggingface_hub lays it out: snapshot files are links into blobs/."""
    root = cache / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    snap = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / path.relative_to(bundle)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    return snap


def test_hub_snapshots_link_into_their_blobs_and_load_but_nowhere_else(bundle, tmp_path):
    snap = _hub_cache(tmp_path / "hub", bundle)
    loaded = load_bundle("someone/tiny", cache_dir=tmp_path / "hub")
    assert loaded.path == snap and loaded.file("samples.png") is not None
    (snap / "samples.png").unlink()
    os.symlink(tmp_path / "secret.png", snap / "samples.png")
    with pytest.raises(BundleError, match=r"samples\.png is a link to .*outside"):
        load_bundle("someone/tiny", cache_dir=tmp_path / "hub")


# ---------------------------------------------------------------- 3. broken weights never pass as ready


def test_weights_missing_half_their_tensors_are_refused(bundle):
    tensors = load_file(str(bundle / WEIGHTS_FILE))
    keep = dict(list(tensors.items())[: len(tensors) // 2])
    save_file(keep, str(bundle / WEIGHTS_FILE), metadata={"format": "pt"})
    with pytest.raises(BundleError, match=rf"{WEIGHTS_FILE} does not match VAE: \d+ tensor\(s\) missing"):
        load_bundle(str(bundle))
    lab = _lab(bundle)
    assert "missing" in _status(lab, "tiny") and lab.model_names() == []


def test_unexpected_tensors_are_refused(bundle):
    tensors = load_file(str(bundle / WEIGHTS_FILE))
    tensors["backdoor.weight"] = torch.zeros(3)
    save_file(tensors, str(bundle / WEIGHTS_FILE), metadata={"format": "pt"})
    with pytest.raises(BundleError, match=r"1 unexpected \['backdoor.weight'\]"):
        load_bundle(str(bundle))


@pytest.mark.parametrize("value, dtype", [(float("nan"), torch.float32), (float("inf"), torch.float16)])
def test_non_finite_weights_are_refused(bundle, value, dtype):
    tensors = {k: torch.full_like(v, value, dtype=dtype) for k, v in load_file(str(bundle / WEIGHTS_FILE)).items()}
    save_file(tensors, str(bundle / WEIGHTS_FILE), metadata={"format": "pt"})
    with pytest.raises(BundleError, match="tiny': .*NaN or infinite weights"):
        load_bundle(str(bundle))


def test_non_finite_probes_are_refused(bundle):
    from facelab.probes.io import save_probes

    save_probes(bundle / "probes", {"pca/z/mean": np.array([0.0, np.nan])}, {})
    with pytest.raises(BundleError, match=r"probes\.safetensors holds NaN or infinite values.*pca/z/mean"):
        load_bundle(str(bundle))


def test_a_classifier_with_nan_weights_is_refused(tmp_path):
    from facelab.models.classifier import AttributeClassifier, load_attribute_classifier

    clf = AttributeClassifier(attribute_names=["Male"], image_size=16, widths=(4, 8))
    with torch.no_grad():
        for p in clf.parameters():
            p.fill_(float("nan"))
    clf.save_pretrained(tmp_path / "clf", safe_serialization=True)
    with pytest.raises(BundleError, match="NaN or infinite weights"):
        load_attribute_classifier(tmp_path / "clf")


def test_a_nan_verdict_never_counts_as_meeting_the_target():
    """'Male nan ✓' was a NaN probability read as 'not male', i.e. meeting target Male = 0."""
    from facelab.lab.conditional import Conditioned, precision
    from facelab.lab.present import conditional_report

    out = Conditioned(images=torch.zeros(3, 3, 8, 8), acceptance_rate={"z": 1.0}, satisfied=np.ones(3, bool),
                      targets={"Male": 0}, verdict=np.array([[np.nan], [0.1], [np.inf]]))
    assert precision(out) == {"Male": pytest.approx(1 / 3)}
    report = conditional_report(out, "nearest", None, None)
    assert report["captions"] == ["#0 ✗", "#1 ✓", "#2 ✗"]
    assert [r[1] for r in report["rows"]] == [None, 0.1, None]  # non-finite probabilities shown as none
    assert [r[-1] for r in report["rows"]] == ["no", "yes", "no"]


# ---------------------------------------------------------------- 6. pickles by their bytes, unknown files


def _torch_zip(path: Path) -> None:
    torch.save({"x": torch.zeros(1)}, path)  # a zip holding archive/data.pkl


@pytest.mark.parametrize("name, write", [
    ("weights.joblib", lambda p: p.write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))),
    ("cache.pkl.gz", lambda p: p.write_bytes(gzip.compress(pickle.dumps([1, 2, 3])))),
    ("latents.npy", lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)),
    ("extra.json", lambda p: p.write_bytes(pickle.dumps({"a": [1, 2]}, protocol=0))),  # text-looking opcodes
    ("notes.txt", _torch_zip),
    ("samples.png", lambda p: p.write_bytes(pickle.dumps(object, protocol=2))),
    ("probes/probes.safetensors", _torch_zip),
])
def test_pickles_are_recognised_by_their_bytes_whatever_their_name(bundle, name, write):
    target = bundle / name
    target.parent.mkdir(exist_ok=True)
    write(target)
    with pytest.raises(BundleError, match=rf"pickle-format files \({name}\).*refuses pickles"):
        load_bundle(str(bundle))


@pytest.mark.parametrize("name, data, why", [
    ("model.onnx", b"\x08\x07\x12\x04onnx" + bytes(range(256)), "not part of the bundle layout, nor a known safe"),
    ("arrays.npy", None, "not part of the bundle layout, nor a known safe"),
    ("samples.png", b"\xff\xd8\xff\xe0" + b"\x00" * 64, r"named \.png but its bytes are not a PNG file"),
    ("README.md", b"\x00\x01\x02binary", r"named like a text file \(\.md\) but holds binary data"),
])
def test_files_of_unknown_format_or_false_names_are_refused(bundle, name, data, why):
    if data is None:
        np.save(bundle / name, np.zeros(3))  # a plain array: safe in itself, but not part of any bundle
    else:
        (bundle / name).write_bytes(data)
    with pytest.raises(BundleError, match=rf"'{re.escape(str(bundle))}': {name}: {why}"):
        load_bundle(str(bundle))


def test_known_safe_extras_are_fine(bundle):
    (bundle / "notes.txt").write_text("trained on a laptop\n")
    (bundle / "logs").mkdir()
    (bundle / "logs" / "history.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    Image.new("RGB", (4, 4)).save(bundle / "extra.jpg")
    (bundle / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    (bundle / "logs" / "train.log").write_text("step 1 loss 1.0\n")
    (bundle / ".git" / "objects").mkdir(parents=True)  # a `git clone` of the Hub repo: git's store is not read
    (bundle / ".git" / "objects" / "ab12").write_bytes(b"x\x01" + bytes(range(256)))
    assert load_bundle(str(bundle)).name == "tiny"


def test_every_shipped_bundle_passes_the_file_checks():
    folders = [p for p in sorted(ASSETS.iterdir()) if (p / "config.json").is_file()]
    assert len(folders) >= 5
    for folder in folders:
        check_bundle_files(folder)


# ---------------------------------------------------------------- 9. messages a person can act on


@pytest.mark.parametrize("content, holds", [("[1, 2]", "list"), ('"vae"', "string"), ("null", "null")])
def test_facelab_json_that_is_not_an_object_is_refused_clearly(bundle, content, holds):
    (bundle / META_FILE).write_text(content)
    with pytest.raises(BundleError, match=rf"facelab\.json must hold a JSON object .*but it holds a {holds}"):
        load_bundle(str(bundle))


def test_a_model_parameter_of_the_wrong_type_is_named():
    from facelab.config import ConfigError
    from training.train_utils import build_model_checked

    with pytest.raises(ConfigError, match=r"model.params \(vae\): latent_dim: expected a whole number, got str 'abc'"):
        build_model_checked("vae", {**TINY_VAE, "latent_dim": "abc"})
    with pytest.raises(ConfigError, match=r"beta: expected a number, got str"):
        build_model_checked("vae", {**TINY_VAE, "beta": "high"})
    assert build_model_checked("vae", {**TINY_VAE, "beta": 4}).config.beta == 4  # an int is a fine float
