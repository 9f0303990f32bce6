"""FaceLab over tiny real bundles (trained, probed and evaluated here): every operation the app exposes.

build_bundles() is shared with tests/test_app.py (one set per test process): a VAE (original
background, probed, evaluated, TensorBoard logs), an HVAE (grey background, probed), a StyleGAN
(probed through an image attribute classifier), a conditional VAE, and two broken bundles.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

SIZE = 16
_BUILT: dict[str, Any] = {}
TINY = {
    "vae": ["model.kind=vae", "model.params.latent_dim=8", "model.params.base_channels=8",
            "model.params.max_channels=16", "train.max_steps=40", "train.batch_size=16",
            "train.learning_rate=3e-3", "train.report_to=tensorboard"],
    "hvae_grey": ["model.kind=hvae", "model.params.width=16", "model.params.group_resolutions=[1,4,8]",
                  "model.params.latent_channels=4", "train.max_steps=4", "train.batch_size=4",
                  "data.background=grey"],
    "stylegan": ["model.kind=stylegan", "model.params.z_dim=16", "model.params.w_dim=16",
                 "model.params.mapping_layers=2", "model.params.channel_base=64", "model.params.channel_max=16",
                 "model.params.mbstd_group=2", "model.params.fade_images=8", "model.params.stable_images=8",
                 "model.params.r1_interval=2", "train.lr_scheduler=inverse_sigmoid", "train.max_steps=4",
                 "train.batch_size=4"],
    "cvae": ["model.kind=cvae", "model.params.latent_dim=8", "model.params.base_channels=8",
             "model.params.max_channels=16", "train.max_steps=3", "train.batch_size=4"],
}


def _train(root: Path, name: str) -> Path:
    from training.train import main

    out = root / name
    args = ["--set", *TINY[name], f"data.image_size={SIZE}", "data.length=512", f"train.output_dir={out}",
            "train.log_every=1", "train.sample_every=1000", "train.checkpoint_every=1000", "train.num_samples=4"]
    if not any(a.startswith("train.report_to") for a in args):
        args.append("train.report_to=none")
    assert main(args) == 0
    return out / "bundle"


def _broken(root: Path, vae: Path) -> tuple[Path, Path]:
    """A bundle holding a pickle, and a copy of the VAE with its weights file cut short."""
    pickled = root / "pickled"
    pickled.mkdir()
    (pickled / "facelab.json").write_text(json.dumps({"kind": "vae", "image_size": SIZE}))
    (pickled / "weights.pkl").write_bytes(b"\x80\x04K\x01.")
    truncated = root / "truncated"
    shutil.copytree(vae, truncated, ignore=shutil.ignore_patterns("probes", "metrics.json"))
    weights = truncated / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    return pickled, truncated


def build_bundles(root: Path) -> dict[str, Any]:
    """Train, probe and evaluate the tiny bundles once per process; {name: path} plus 'classifier'."""
    if _BUILT:
        return _BUILT
    from training.evaluate import main as evaluate
    from training.probe import main as probe
    from training.train_classifier import main as train_classifier

    paths = {name: _train(root, name) for name in TINY}
    clf = root / "classifier"
    assert train_classifier(["--size", str(SIZE), "--length", "256", "--steps", "20", "--batch", "16",
                             "--max-eval", "32", "--out", str(clf)]) == 0
    probe_args = ["--n", "300", "--no-cache", "--mlp", "none", "--pca-components", "16", "--no-age"]
    for name in ("vae", "hvae_grey"):
        assert probe([str(paths[name]), *probe_args]) == 0
    assert probe([str(paths["stylegan"]), *probe_args, "--classifier", str(clf)]) == 0
    assert evaluate([str(paths["vae"]), "--n", "32", "--no-fid", "--no-disentanglement",
                     "--classifier", str(clf)]) == 0
    paths["pickled"], paths["truncated"] = _broken(root, paths["vae"])
    _BUILT.update({k: str(v) for k, v in paths.items()}, classifier=str(clf))
    return _BUILT


SOURCES = ["vae", "hvae_grey", "stylegan", "cvae", "pickled", "truncated"]


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, Any]:
    return build_bundles(tmp_path_factory.mktemp("lab_bundles"))


@pytest.fixture(scope="module")
def lab(bundles):
    from facelab.lab import FaceLab

    lab = FaceLab(model_sources=[bundles[k] for k in SOURCES], device="cpu",
                  classifier_path=bundles["classifier"])
    lab.load()
    return lab


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


# ---------------------------------------------------------------- catalogue


def test_broken_bundles_are_listed_with_their_error_and_the_rest_work(lab):
    rows = {r[0]: r for r in lab.models_table()}
    assert [rows[n][4] for n in ("vae", "hvae_grey", "stylegan", "cvae")] == ["ready"] * 4
    assert "pickle" in rows["pickled"][4] and "weights.pkl" in rows["pickled"][4]
    assert rows["truncated"][4].startswith("error") and "weights" in rows["truncated"][4]
    assert lab.model_names() == ["vae", "hvae_grey", "stylegan", "cvae"]
    from facelab.lab import LabError

    with pytest.raises(LabError, match="failed to load.*pickle"):
        lab.generate("pickled", 2, 0)
    assert len(lab.generate("vae", 2, 0)) == 2
    assert "2 failed to load" in lab.models_message()


def test_early_runs_are_never_listed_as_ready(tmp_path, bundles):
    from facelab.lab import FaceLab

    early = tmp_path / "weak"
    shutil.copytree(bundles["vae"], early)
    meta = json.loads((early / "facelab.json").read_text())
    meta.update(name="weak_vae", status="early", note="400 CPU steps: blobs")
    (early / "facelab.json").write_text(json.dumps(meta))
    named = tmp_path / "named"  # older bundles say it in their name only
    shutil.copytree(bundles["vae"], named)
    meta.update(name="vae_early")
    del meta["status"]
    (named / "facelab.json").write_text(json.dumps(meta))
    lab = FaceLab(model_sources=[bundles["vae"], str(early), str(named)], device="cpu")
    rows = {r[0]: r[4] for r in lab.models_table()}
    assert rows["vae"] == "ready"
    assert rows["weak_vae"].startswith("early run") and "400 CPU steps" in rows["weak_vae"]
    assert rows["vae_early"].startswith("early run")
    choices = dict((value, label) for label, value in lab.model_choices())
    assert choices["vae"] == "vae" and "samples are not faces yet" in choices["weak_vae"]
    assert lab.model_names() == ["vae", "weak_vae", "vae_early"]  # still usable, by name
    assert lab.models_message().startswith("1 model(s) ready; 2 early run(s)")


def test_default_sources_find_bundle_folders_but_not_examples_or_classifiers(tmp_path, bundles):
    from facelab.lab import FaceLab
    from facelab.lab.bundles import default_sources

    shutil.copytree(bundles["vae"], tmp_path / "a_vae")
    shutil.copytree(bundles["pickled"], tmp_path / "b_pickled")
    shutil.copytree(bundles["classifier"], tmp_path / "classifier")
    (tmp_path / "examples").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "examples" / "face.png")
    assert [Path(s).name for s in default_sources(tmp_path)] == ["a_vae", "b_pickled"]
    (tmp_path / "order.txt").write_text("b_pickled\nmissing_folder\n")  # best first; unknown names ignored
    assert [Path(s).name for s in default_sources(tmp_path)] == ["b_pickled", "a_vae"]
    empty = FaceLab(assets_dir=tmp_path / "nothing", device="cpu")
    assert empty.model_names() == [] and "no models" in empty.models_message()
    with pytest.raises(ValueError, match="no models"):
        empty.generate(None, 1, 0)


# ---------------------------------------------------------------- generate


@pytest.mark.parametrize("name", ["vae", "hvae_grey", "stylegan", "cvae"])
def test_codes_decode_to_the_models_own_samples(lab, name):
    from facelab.lab.latents import cvae_attributes, decode, generator, random_code, sample_images

    b = lab.bundle(name)
    ours = decode(b, random_code(b, 3, seed=7))
    kw = {"attributes": cvae_attributes(b, 3, 7)} if name == "cvae" else {}
    theirs = b.model.sample(3, generator=generator(7), **kw)
    assert torch.allclose(ours, theirs.float().cpu(), atol=1e-5)
    assert torch.allclose(sample_images(b, 3, seed=7), ours, atol=1e-5)


def test_generate_is_seeded_and_hvae_takes_one_temperature_per_level(lab):
    a = lab.generate("hvae_grey", 4, 3, level_temperatures=[1.0, 1.0, 1.0])
    b = lab.generate("hvae_grey", 4, 3, level_temperatures=[1.0, 1.0, 1.0])
    c = lab.generate("hvae_grey", 4, 4, level_temperatures=[1.0, 1.0, 1.0])
    cold = lab.generate("hvae_grey", 4, 3, level_temperatures=[1.0, 1.0, 0.0])
    assert len(a) == 4 and all(im.size == (SIZE, SIZE) for im in a)
    assert all(np.array_equal(_arr(x), _arr(y)) for x, y in zip(a, b))
    assert not all(np.array_equal(_arr(x), _arr(y)) for x, y in zip(a, c))
    assert not all(np.array_equal(_arr(x), _arr(y)) for x, y in zip(a, cold))
    psi0 = lab.generate("stylegan", 3, 1, psi=0.0)  # ψ = 0: every face is the average face
    assert all(np.array_equal(_arr(psi0[0]), _arr(p)) for p in psi0[1:])


def test_generate_tab_starts_at_the_bundles_recorded_level_temperatures(lab):
    meta = lab.bundle("hvae_grey").meta
    assert lab.model_info("hvae_grey")["temperatures"] == [1.0, 1.0, 1.0]  # nothing recorded: 1 per level
    saved = meta.get("sampling")
    try:
        meta["sampling"] = {"level_temperatures": [1, 0.6, 0.3]}
        assert lab.model_info("hvae_grey")["temperatures"] == [1.0, 0.6, 0.3]
        meta["sampling"] = {"level_temperatures": [0.5]}  # not one per level: ignored, not half-applied
        assert lab.model_info("hvae_grey")["temperatures"] == [1.0, 1.0, 1.0]
    finally:
        meta.pop("sampling")
        if saved is not None:
            meta["sampling"] = saved


# ---------------------------------------------------------------- traversal


@pytest.mark.parametrize("name, kind, axes, rows", [
    ("vae", "latent dimension", ["0-3"], 4),
    ("vae", "PCA component", ["PC1", "PC2"], 2),
    ("vae", "attribute direction", ["Male", "Eyeglasses"], 2),
    ("stylegan", "PCA component", [], 8),  # empty: the first eight components
    ("hvae_grey", "latent dimension", ["0, 5"], 2),
])
def test_traversal_grid_has_one_row_per_axis_and_the_start_face_in_the_middle(lab, name, kind, axes, rows):
    from facelab.lab import FaceSpec
    from facelab.lab.latents import decode, random_code
    from facelab.lab.render import GridLayout, upscale

    level = "z2" if name == "hvae_grey" else None
    grid, info = lab.traversal(name, level, kind, axes, 2.0, 5, FaceSpec("seed", 11))
    layout = GridLayout.from_dict(info)
    assert grid.size == layout.size and (info["rows"], info["columns"]) == (rows, 5) == (len(info["axes"]), 5)
    b = lab.bundle(name)
    start = upscale(decode_pil(decode(b, random_code(b, 1, 11))), info["cell"])
    cells = [[_arr(grid.crop(layout.box(r, c))) for c in range(5)] for r in range(rows)]
    assert all(np.array_equal(row[2], _arr(start)) for row in cells)  # offset 0 is the start face
    assert any(not np.array_equal(row[0], row[4]) for row in cells)  # the walk changes the face


def decode_pil(images: torch.Tensor) -> Image.Image:
    from facelab.imaging import to_pil

    return to_pil(images)[0]


def test_traversal_from_a_photo_encodes_the_cropped_face(lab):
    import skimage.data

    from facelab.lab import FaceSpec, LabError

    photo = Image.fromarray(skimage.data.astronaut())
    face, how = lab.prepare_photo(photo, SIZE)
    assert face.size == (SIZE, SIZE) and "Face found" in how
    grid, info = lab.traversal("vae", None, "latent dimension", ["0"], 1.0, 3, FaceSpec("photo", photo=photo))
    assert info["start"].startswith("photo (Face found")
    with pytest.raises(LabError, match="no encoder"):
        lab.traversal("stylegan", None, "latent dimension", ["0"], 1.0, 3, FaceSpec("photo", photo=photo))


def test_traversal_refuses_bad_axes_clearly(lab):
    from facelab.lab import FaceSpec, LabError

    with pytest.raises(LabError, match="out of range"):
        lab.traversal("vae", None, "latent dimension", ["99"], 1.0, 3, FaceSpec())
    with pytest.raises(LabError, match="no direction for \\['Nope'\\]"):
        lab.traversal("vae", None, "attribute direction", ["Nope"], 1.0, 3, FaceSpec())
    with pytest.raises(LabError, match="no PCA basis.*training/probe.py"):
        lab.traversal("cvae", None, "PCA component", [], 1.0, 3, FaceSpec())


# ---------------------------------------------------------------- morphing and arithmetic


def test_slerp_keeps_endpoints_and_interpolates_the_norm():
    from facelab.lab.morph import lerp, slerp

    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    t = torch.tensor([0.0, 0.5, 1.0])
    s = slerp(a, b, t)
    assert torch.allclose(s[0], a[0]) and torch.allclose(s[2], b[0], atol=1e-6)
    assert torch.isclose(s[1].norm(), torch.tensor(2.0))  # halfway between norms 3 and 1
    assert torch.allclose(s[1] / s[1].norm(), torch.tensor([0.5 ** 0.5, 0.5 ** 0.5]))
    assert torch.allclose(lerp(a, b, t)[1], torch.tensor([1.5, 0.5]))


def test_morph_runs_from_face_a_to_face_b_with_a_gif_of_every_frame(lab):
    from facelab.lab import FaceSpec

    strip, gif, info = lab.morph("hvae_grey", FaceSpec("seed", 1), FaceSpec("seed", 2), 6, "linear")
    first, last = lab.generate("hvae_grey", 1, 1)[0], lab.generate("hvae_grey", 1, 2)[0]
    from facelab.lab.render import upscale

    cell = info["cell"]
    with Image.open(gif) as im:
        assert im.n_frames == 6 and im.size == (cell, cell)  # small faces upscaled like the strip
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(im.convert("RGB"))
    # GIF palettes quantise colours: compare loosely
    assert np.abs(_arr(frames[0]) - _arr(upscale(first, cell))).mean() < 8
    assert np.abs(_arr(frames[-1]) - _arr(upscale(last, cell))).mean() < 8
    assert info["frames"] == 6 and strip.size[0] == 2 + 6 * (info["cell"] + 2)


def test_arithmetic_shows_start_each_edit_and_all_together(lab):
    from facelab.lab import FaceSpec, LabError

    strip, info = lab.arithmetic("vae", FaceSpec("seed", 5), None, {"Male": 2.0, "Eyeglasses": -1.5})
    assert info["labels"] == ["start", "+2 Male", "-1.5 Eyeglasses", "all together"]
    assert info["directions"] == "centroid/z"
    from facelab.lab.render import GridLayout

    layout = GridLayout.from_dict(info)
    cells = [_arr(strip.crop(layout.box(0, c))) for c in range(4)]
    assert not np.array_equal(cells[0], cells[1])  # the VAE's units are active: a +2 edit shows
    with pytest.raises(LabError, match="non-zero strength"):
        lab.arithmetic("vae", FaceSpec(), None, {"Male": 0.0})


# ---------------------------------------------------------------- style mixing


def test_style_mixing_grid_takes_the_chosen_layers_from_the_columns(lab):
    from facelab.lab import LabError
    from facelab.lab.render import GridLayout

    n = lab.model_info("stylegan")["num_ws"]
    grid, info = lab.style_mix("stylegan", "1, 2", "3-5", 0, n - 1)
    layout = GridLayout.from_dict(info)
    assert (info["rows"], info["columns"]) == (3, 4) and grid.size == layout.size
    # all layers from the columns: every mix is its column's face
    for r in (1, 2):
        for c in (1, 2, 3):
            assert np.array_equal(_arr(grid.crop(layout.box(r, c))), _arr(grid.crop(layout.box(0, c))))
    with pytest.raises(LabError, match="layer range"):
        lab.style_mix("stylegan", "1", "2", 3, 1)
    with pytest.raises(LabError, match="needs a StyleGAN"):
        lab.style_mix("vae", "1", "2", 0, 1)


# ---------------------------------------------------------------- conditional sampling


def test_conditional_sampling_per_model_kind(lab):
    out = lab.conditional("stylegan", ["Male = 1"], 6, 0)
    assert len(out["images"]) == 6 and set(out["acceptance_rate"]) == {"w"}
    assert 0 < out["acceptance_rate"]["w"] <= 1
    # the classifier's verdict, short (the probabilities are in the rows): ✓ exactly where the row says yes
    assert [c[-1] for c in out["captions"]] == ["✓" if r[-1] == "yes" else "✗" for r in out["rows"]]
    assert [c.split()[0] for c in out["captions"]] == [f"#{i}" for i in range(6)]
    assert out["precision"] is not None and out["headers"] == ["sample", "P(Male)", "all targets met"]
    hv = lab.conditional("hvae_grey", {"Male": 1}, 4, 0, "rejection", "cumulative", ["z2"])
    assert set(hv["acceptance_rate"]) == {"z2"}
    cv = lab.conditional("cvae", ["Eyeglasses = 1"], 3, 0)
    assert len(cv["images"]) == 3 and "conditional VAE" in cv["summary"] and "strength 1.5" in cv["summary"]
    # the tiny untrained CVAE's faces rarely pass the classifier: the rest are filled with plain draws, said so
    assert 0.0 <= cv["acceptance_rate"]["z"] < 1.0 and "unfiltered draws" in cv["summary"]
    nb = lab.conditional("vae", ["Brown_Hair = 1"], 4, 0, "nearest")
    assert len(nb["images"]) == 4 and "Black_Hair" in nb["summary"] and "held absent" in nb["summary"]


def test_cvae_draws_the_other_attributes_given_the_targets(lab):
    from facelab.lab import LabError
    from facelab.lab.latents import cvae_attributes

    b = lab.bundle("cvae")
    names = b.model.attribute_names
    a = cvae_attributes(b, 200, 0, {"Male": 1}).numpy()
    assert (a[:, names.index("Male")] == 1).all()
    assert a[:, names.index("Wearing_Lipstick")].mean() < 0.05  # not forced onto female attribute rows
    with pytest.raises(LabError, match="too rare"):
        lab.conditional("cvae", ["Male = 0", "Mustache = 1"], 2, 0)


def test_conditional_targets_are_checked(lab):
    from facelab.lab import LabError

    with pytest.raises(LabError, match="both 0 and 1"):
        lab.conditional("vae", ["Male = 1", "Male = 0"], 2, 0)
    with pytest.raises(LabError, match="must be 0 or 1"):
        lab.conditional("vae", ["Male = 2"], 2, 0)
    with pytest.raises(LabError, match="no probes for attribute"):
        lab.conditional("vae", ["Unicorn = 1"], 2, 0)


# ---------------------------------------------------------------- background and results


def test_background_variants_and_model_comparison(lab):
    v = lab.background_variants("example", 4)
    mask = np.asarray(v.images["mask"], dtype=np.float32) / 255
    grey = _arr(v.images["grey"])
    assert grey.shape == (256, 256, 3) and np.abs(grey[mask < 0.02] - 127).max() <= 2
    out = lab.background_compare(["vae", "hvae_grey", "stylegan"], v)
    assert out["captions"] == ["vae (original)", "hvae_grey (grey)"]
    from facelab.lab.render import GridLayout

    layout = GridLayout.from_dict(out["layout"])
    assert out["reconstructions"].size == layout.size and layout.rows == 2
    grey_input = _arr(out["reconstructions"].crop(layout.box(1, 0)))  # hvae_grey's input: the grey variant
    corner = grey_input[:4, :4].reshape(-1, 3)  # synthfaces keep the background in the corners
    assert np.abs(corner - 127).max() <= 3
    assert any("stylegan" in n and "no encoder" in n for n in out["notes"])
    rows = {r[0]: r[1:] for r in out["rows"]}
    assert rows["background of the training data"] == ["original", "grey", "original"]
    assert rows["background_share"][0] != "—" and out["share"] is not None and out["pca"] is not None


def test_results_show_probes_metrics_spectrum_curves_and_samples(lab):
    r = lab.results("vae")
    assert "svm/per_level" in r["probes"] and "| Male |" in r["probes"]
    assert "fd_attr" in r["fid"] and "recon_mse" in r["metrics"]
    assert "Disentanglement" in r["disentanglement"] and "not measured" in r["disentanglement"]
    assert r["spectrum"] is not None and r["curves"] is not None and "TensorBoard" in r["curves_note"]
    assert Path(r["samples"]).is_file()
    bare = lab.results("cvae")
    assert bare["curves"] is None and "No training curves" in bare["curves_note"]
    assert "none" in bare["probes"] and "training/probe.py" in bare["probes"]


def test_background_of_an_uploaded_photo_is_masked_by_rembg(tmp_path, monkeypatch):
    from helpers_onnx import bright_disc_image, write_brightness_model

    from facelab.lab import FaceLab, LabError

    home = tmp_path / "rembg_home"
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("REMBG_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # a real rembg session over a tiny ONNX model: bright pixels are foreground
    write_brightness_model(home / "models" / "u2netp" / "u2netp.onnx")
    img, _ = bright_disc_image(200, 200)
    v = FaceLab(model_sources=[], device="cpu", rembg_model="u2netp").background_variants(
        "photo", photo=Image.fromarray(img))
    assert "rembg u2netp" in v.how and "No face found" in v.how
    mask = np.asarray(v.images["mask"], dtype=np.float32) / 255
    grey, original = _arr(v.images["grey"]), _arr(v.images["original"])
    assert 0.2 < (mask > 0.5).mean() < 0.8  # the bright disc, not everything or nothing
    assert np.abs(grey[mask < 0.02] - 127).max() <= 2
    assert np.array_equal(grey[mask > 0.999], original[mask > 0.999])
    offline = FaceLab(model_sources=[], device="cpu", rembg_model="u2net")
    with pytest.raises(LabError, match="cannot mask.*u2net.*missing"):
        offline.background_variants("photo", photo=Image.fromarray(img))
    # what the tab shows offline: the photo's crop, no variants, and why (not an error on every image)
    images, note = offline.background_view("photo", photo=Image.fromarray(img))
    assert images["original"].size == (256, 256) and images["mask"] is images["grey"] is images["blur"] is None
    assert "No mask" in note and "u2net" in note


def test_photo_for_a_grey_trained_model_gets_its_background_removed(bundles, tmp_path, monkeypatch):
    from helpers_onnx import bright_disc_image, write_brightness_model

    from facelab.lab import FaceLab

    home = tmp_path / "rembg_home"
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("REMBG_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    photo = Image.fromarray(bright_disc_image(200, 200)[0])
    lab = FaceLab(model_sources=[bundles["hvae_grey"], bundles["vae"]], device="cpu", rembg_model="u2netp")
    grey_model, original_model = lab.bundle("hvae_grey"), lab.bundle("vae")
    # no rembg model yet (offline): the photo is encoded as it is, and the note says so
    kept, how = lab.photo_face_for(grey_model, photo)
    assert "background kept" in how and "u2netp" in how
    write_brightness_model(home / "models" / "u2netp" / "u2netp.onnx")
    img, how = lab.photo_face_for(grey_model, photo)
    assert "background → grey" in how and img.size == kept.size
    arr = _arr(img)
    assert np.abs(arr[:3, :3] - 127).max() <= 3  # the dark corner became the grey of the training data
    assert np.abs(_arr(kept)[:3, :3] - 127).min() > 40
    plain, how = lab.photo_face_for(original_model, photo)  # original-background models see the photo as is
    assert "background" not in how and np.array_equal(_arr(plain), _arr(kept))


def test_morph_between_synthetic_examples_starts_at_the_encoded_example(lab, tmp_path):
    from facelab.imaging import from_pil
    from facelab.lab import FaceLab, FaceSpec, LabError
    from facelab.lab.latents import decode, encode
    from facelab.lab.render import GridLayout, upscale

    strip, _, info = lab.morph("vae", FaceSpec("example", 3), FaceSpec("example", 4), 3, "linear")
    assert (info["from"], info["to"]) == ("synthetic example 3", "synthetic example 4")
    b = lab.bundle("vae")
    example = lab.example_face(3, SIZE)
    assert example.size == (SIZE, SIZE)
    expected = upscale(decode_pil(decode(b, encode(b, from_pil(example)[None]))), info["cell"])
    first = strip.crop(GridLayout.from_dict(info).box(0, 0))
    assert np.array_equal(_arr(first), _arr(expected))
    with pytest.raises(LabError, match="no encoder"):
        lab.morph("stylegan", FaceSpec("example", 3), FaceSpec("seed", 4), 3)
    (tmp_path / "examples").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "examples" / "a.png")
    (tmp_path / "examples" / "notes.txt").write_text("not a photo")
    assert [Path(p).name for p in FaceLab(model_sources=[], assets_dir=tmp_path).example_photos()] == ["a.png"]


def test_a_bundle_answers_to_its_assets_folder_name_and_its_display_name(bundles, tmp_path):
    """`--model vae_synthfaces64` names a folder of assets/ even though the bundle calls itself vae64."""
    from facelab.lab import FaceLab, LabError

    assets = tmp_path / "assets"
    shutil.copytree(bundles["vae"], assets / "tiny_vae_folder")
    meta = json.loads((assets / "tiny_vae_folder" / "facelab.json").read_text())
    meta["name"] = "tiny64"
    (assets / "tiny_vae_folder" / "facelab.json").write_text(json.dumps(meta))
    lab = FaceLab(model_sources=["tiny_vae_folder"], device="cpu", assets_dir=assets)
    assert lab.model_names() == ["tiny64"]
    assert lab.bundle("tiny_vae_folder") is lab.bundle("tiny64")
    with pytest.raises(LabError, match="no model called 'nope'"):
        lab.bundle("nope")


def test_latent_dimensions_are_listed_by_how_much_they_change_the_face(lab):
    """Issue 23: index order showed rows that never change; the default axes are now the most visible."""
    from facelab.lab import FaceSpec
    from facelab.lab.render import GridLayout
    from facelab.lab.traverse import dimension_effects

    b = lab.bundle("vae")
    effects = dimension_effects(b, None)
    listed = [int(i) for i in lab.axis_choices("vae", None, "latent dimension")]
    assert sorted(listed) == list(range(effects.size))
    assert list(effects[listed]) == sorted(effects, reverse=True)
    grid, info = lab.traversal("vae", None, "latent dimension", [], 2.0, 3, FaceSpec("seed", 0))
    assert info["axes"] == [f"z[{i}]" for i in listed[:8]] and "change it visibly" in info["dimensions"]
    layout = GridLayout.from_dict(info)
    first, last = (_arr(grid.crop(layout.box(r, 0))) - _arr(grid.crop(layout.box(r, 2))) for r in (0, info["rows"] - 1))
    assert np.abs(first).mean() >= np.abs(last).mean()  # the top row moves the face at least as much as the last


def test_a_zero_spread_is_not_printed_as_a_number():
    from facelab.lab.results import metrics_markdown

    text = metrics_markdown({"kid_std": 3.35e-16, "kid_1000_std": 0.002, "fid": 12.5}, "FID", "none")
    assert "3.35e-16" not in text and "no spread" in text and "| kid_1000_std | 0.002 |" in text
