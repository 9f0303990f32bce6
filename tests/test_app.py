"""The app served for real on loopback, every endpoint called through gradio_client.

The tiny bundles come from tests/test_lab.py's build_bundles (trained, probed and evaluated once
per test process); two of the sources are broken on purpose and must not stop the others.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_lab import SIZE, SOURCES, build_bundles

from facelab.data import synthfaces

MAX_LEVELS = 8  # app.MAX_LEVEL_SLIDERS: /generate takes this many per-level temperatures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    import app
    from facelab.lab import FaceLab

    paths = build_bundles(tmp_path_factory.mktemp("lab_bundles"))
    lab = FaceLab(model_sources=[paths[k] for k in SOURCES], device="cpu", classifier_path=paths["classifier"])
    demo = app.build_demo(lab)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def _img(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def _gallery(items: list[dict]) -> list[np.ndarray]:
    return [_img(it["image"]) for it in items]


def _cells(path: str, info: dict) -> list[list[np.ndarray]]:
    from facelab.lab.render import GridLayout

    layout = GridLayout.from_dict(info)
    grid = Image.open(path).convert("RGB")
    assert grid.size == layout.size
    return [[np.asarray(grid.crop(layout.box(r, c)), dtype=np.int16) for c in range(info["columns"])]
            for r in range(info["rows"])]


# ---------------------------------------------------------------- models


def test_models_lists_broken_bundles_with_their_error(client):
    table, message = client.predict(api_name="/models")
    rows = {r[0]: r for r in table["data"]}
    assert all(rows[n][4] == "ready" for n in ("vae", "hvae_grey", "stylegan", "cvae"))
    assert "pickle-format" in rows["pickled"][4] and "weights" in rows["truncated"][4]
    assert message.startswith("4 model(s) ready; 2 failed")


def test_broken_bundle_gives_a_clear_error_and_the_rest_keeps_working(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="failed to load.*pickle"):
        client.predict("pickled", 0, 2, 1.0, 1.0, *[1.0] * MAX_LEVELS, api_name="/generate")
    assert len(client.predict("vae", 0, 2, 1.0, 1.0, *[1.0] * MAX_LEVELS, api_name="/generate")) == 2


# ---------------------------------------------------------------- generate


def test_generate_same_seed_same_faces_other_seed_other_faces(client):
    def gen(model, seed, n=5, psi=1.0):
        return client.predict(model, seed, n, 1.0, psi, *[1.0] * MAX_LEVELS, api_name="/generate")

    a, b, c = gen("vae", 3), gen("vae", 3), gen("vae", 4)
    assert len(a) == 5 and [it["caption"] for it in a][:2] == ["#0", "#1"]
    assert all(im.shape == (SIZE, SIZE, 3) for im in _gallery(a))
    assert all(np.array_equal(x, y) for x, y in zip(_gallery(a), _gallery(b)))
    assert not any(np.array_equal(x, y) for x, y in zip(_gallery(a), _gallery(c)))
    for model in ("hvae_grey", "stylegan", "cvae"):
        assert len(gen(model, 1, 3)) == 3
    flat = _gallery(gen("stylegan", 1, 3, psi=0.0))  # ψ = 0 collapses every face onto the average
    assert np.array_equal(flat[0], flat[1]) and np.array_equal(flat[1], flat[2])


def test_generate_grid_is_the_same_faces_in_one_file(client):
    faces = _gallery(client.predict("vae", 3, 10, 1.0, 1.0, *[1.0] * MAX_LEVELS, api_name="/generate"))
    tiled = _img(client.predict("vae", 3, 10, 1.0, 1.0, *[1.0] * MAX_LEVELS, api_name="/generate_grid"))
    pad = 2  # facelab.imaging.grid: 8 per row, 2-px white gutters
    assert tiled.shape == (2 * (SIZE + pad) + pad, 8 * (SIZE + pad) + pad, 3)
    for k in (0, 7, 9):
        r, c = divmod(k, 8)
        top, left = pad + r * (SIZE + pad), pad + c * (SIZE + pad)
        assert np.array_equal(tiled[top:top + SIZE, left:left + SIZE], faces[k])
    assert (tiled[pad + SIZE + pad:, pad + 2 * (SIZE + pad):] == 255).all()  # cells past the 10th stay blank


def test_generate_options_show_one_temperature_per_hvae_level(client):
    temp, *sliders, psi = client.predict("hvae_grey", api_name="/generate_options")  # the slider group is layout
    assert temp["visible"] is False and psi["visible"] is False and len(sliders) == MAX_LEVELS
    assert [s["visible"] for s in sliders] == [True] * 3 + [False] * (MAX_LEVELS - 3)
    assert sliders[2]["label"] == "temperature, level z2"
    assert client.predict("stylegan", api_name="/generate_options")[-1]["visible"] is True


# ---------------------------------------------------------------- conditional sampling


def test_conditional_sampling_shows_acceptance_and_the_classifiers_verdict(client):
    targets, variant, levels = client.predict("hvae_grey", api_name="/conditional_options")
    assert ["Male = 1", "Male = 1"] in targets["choices"] and levels["visible"] is True
    assert [c[0] for c in levels["choices"]] == ["z0", "z1", "z2"]
    gallery, summary, table = client.predict("stylegan", ["Male = 1", "Eyeglasses = 0"], 6, 0, "rejection",
                                             "per_level", [], api_name="/conditional")
    assert len(gallery) == 6 and [it["caption"][-1] for it in gallery] == [
        "✓" if row[-1] == "yes" else "✗" for row in table["data"]]
    assert "draws kept" in summary and "image classifier precision" in summary
    _, moved, _ = client.predict("vae", ["Male = 1"], 4, 0, "nearest", "per_level", [], api_name="/conditional")
    assert "moved onto the target side" in moved and "draws kept" not in moved
    assert table["headers"] == ["sample", "P(Male)", "P(Eyeglasses)", "all targets met"] and len(table["data"]) == 6
    gallery, summary, _ = client.predict("hvae_grey", ["Male = 1"], 3, 0, "rejection", "cumulative", ["z1"],
                                         api_name="/conditional")
    assert len(gallery) == 3 and "z1:" in summary and "z0:" not in summary


# ---------------------------------------------------------------- traversal


def test_traversal_grid_rows_are_axes_and_the_middle_column_is_the_start(client):
    path, info, face, note = client.predict("vae", "z", "latent dimension", ["0-2", "5"], 2.0, 7, "seed", 9, None,
                                            1.0, api_name="/traversal")
    assert note.startswith("start: seed 9") and "change it visibly" in note  # the dimensions note follows
    assert (info["rows"], info["columns"]) == (4, 7) and info["axes"] == ["z[0]", "z[1]", "z[2]", "z[5]"]
    cells = _cells(path, info)
    assert all(np.array_equal(row[3], cells[0][3]) for row in cells)
    assert all(not np.array_equal(row[0], row[6]) for row in cells)
    assert face is None
    axes = client.predict("stylegan", "w", "attribute direction", api_name="/traversal_axes")
    assert "Male" in [c[0] for c in axes["choices"]]
    path, info, *_ = client.predict("stylegan", "w", "attribute direction", ["Male"], 1.0, 3, "seed", 0, None, 0.7,
                                    api_name="/traversal")
    assert (info["rows"], info["columns"]) == (1, 3)
    level, axes, _ = client.predict("hvae_grey", api_name="/traversal_options")
    assert level["value"] == "z0" and len(axes["choices"]) == 4  # z0 is 4×1×1


def test_traversal_from_an_uploaded_photo(client, tmp_path):
    import skimage.data
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()).save(photo, quality=90)
    face, how = client.predict("vae", handle_file(str(photo)), api_name="/traversal_photo")
    assert Image.open(face).size == (SIZE, SIZE) and how.startswith("Face found")
    path, info, shown, note = client.predict("vae", "z", "latent dimension", ["0"], 1.0, 3, "photo", 0,
                                             handle_file(str(photo)), 1.0, api_name="/traversal")
    assert info["start"].startswith("photo (Face found") and Image.open(shown).size == (SIZE, SIZE)
    assert note.startswith("start: photo (Face found")
    with pytest.raises(AppError, match="no encoder"):
        client.predict("stylegan", "w", "latent dimension", ["0"], 1.0, 3, "photo", 0, handle_file(str(photo)),
                       1.0, api_name="/traversal")
    junk = tmp_path / "notes.png"
    junk.write_text("this is not a picture")
    with pytest.raises(AppError, match="not an image"):
        client.predict("vae", handle_file(str(junk)), api_name="/traversal_photo")


# ---------------------------------------------------------------- background


def test_background_variants_and_comparison(client):
    original, mask, grey, blur, how = client.predict("example", 2, None, api_name="/background_variants")
    m = _img(mask)[..., 0] / 255.0
    assert _img(grey).shape == (256, 256, 3) and "ground-truth" in how
    assert np.abs(_img(grey)[m < 0.02] - 127).max() <= 2
    assert np.array_equal(_img(grey)[m > 0.999], _img(original)[m > 0.999])  # soft edges blend
    recon, pca, share, table, notes = client.predict("example", 2, None, ["vae", "hvae_grey", "stylegan"],
                                                     api_name="/background_compare")
    assert "Rows: vae (original), hvae_grey (grey)." in notes
    from facelab.lab.render import HEADER_H, MIN_CELL, PAD

    assert Image.open(recon).size[1] == HEADER_H + PAD + 2 * (MIN_CELL + PAD)  # header + two rows of enlarged cells
    assert pca["type"] == "matplotlib" and share["type"] == "matplotlib"
    assert table["headers"] == ["metric", "vae", "hvae_grey", "stylegan"]
    assert "no encoder" in notes


# ---------------------------------------------------------------- morphing


def test_morph_gif_has_one_frame_per_step_and_arithmetic_one_column_per_edit(client):
    strip, gif, gif_file, info = client.predict("vae", "seed", 1, None, "seed", 2, None, "spherical", 7, 10,
                                                api_name="/morph")
    with Image.open(gif) as im:
        assert im.n_frames == 7 and im.size == (info["cell"], info["cell"])
    assert Path(gif_file).read_bytes() == Path(gif).read_bytes()
    cells = _cells(strip, info)[0]
    assert len(cells) == 7 and not np.array_equal(cells[0], cells[-1])
    img, meta = client.predict("vae", "seed", 1, None, "z", "Male", 1.5, "Eyeglasses", -1.0, None, 0.0,
                               api_name="/arithmetic")
    assert meta["labels"] == ["start", "+1.5 Male", "-1 Eyeglasses", "all together"]
    assert len(_cells(img, meta)[0]) == 4


# ---------------------------------------------------------------- style mixing


def test_style_mixing_grid_shape_and_layers(client):
    first, last = client.predict("stylegan", api_name="/style_options")
    n = first["maximum"] + 1
    path, info = client.predict("stylegan", "1, 2, 3", "4, 5", 0, n - 1, 1.0, api_name="/style_mix")
    cells = _cells(path, info)
    assert (info["rows"], info["columns"]) == (4, 3)  # header row + 3 rows; header column + 2 columns
    assert all(np.array_equal(cells[r][c], cells[0][c]) for r in (1, 2, 3) for c in (1, 2))
    path, info = client.predict("stylegan", "1", "4", 0, 0, 1.0, api_name="/style_mix")
    assert (info["rows"], info["columns"]) == (2, 2)


# ---------------------------------------------------------------- results


def test_results_tab_reads_the_bundle(client):
    summary, samples, fid, dis, probes, spectrum, curves, notes, metrics = client.predict(
        "vae", api_name="/results")
    assert "**vae**" in summary and Image.open(samples).size[0] > SIZE
    assert "fd_attr" in fid and "svm/per_level" in probes and "recon_mse" in metrics
    assert spectrum["type"] == "matplotlib" and curves["type"] == "matplotlib"
    *_, curves, notes, _ = client.predict("stylegan", api_name="/results")
    assert curves is None and "No training curves" in notes


# ---------------------------------------------------------------- synthetic faces


def test_synth_face_endpoint(client):
    factors = {name: 0 for name in synthfaces.FACTOR_NAMES}
    original, grey, blur, mask, attrs = client.predict(
        *[factors[n] for n in synthfaces.FACTOR_NAMES], 3, 64, api_name="/synth_face")
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in (original, grey, blur)]
    m = np.asarray(Image.open(mask).convert("L")) / 255.0
    assert all(im.shape == (64, 64, 3) for im in imgs)
    background = m < 0.02
    assert background.mean() > 0.1, "some of the image must be background"
    # grey variant: flat mid-grey background; face pixels identical to the original
    assert np.abs(imgs[1][background].astype(int) - 127).max() <= 2
    face = m > 0.999  # fully opaque mask pixels; soft edges blend with the background
    assert np.array_equal(imgs[1][face], imgs[0][face])
    assert set(attrs) >= {"Male", "Smiling", "Eyeglasses"}


def test_random_factors_endpoint(client):
    values = client.predict(5, api_name="/synth_random_factors")
    assert len(values) == len(synthfaces.FACTOR_NAMES)
    assert all(0 <= int(v) < size for v, size in zip(values, synthfaces.FACTOR_SIZES))


def test_an_app_without_models_says_what_to_do(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    import app
    from facelab.lab import FaceLab

    demo = app.build_demo(FaceLab(assets_dir=tmp_path / "no_assets", device="cpu"))
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        table, message = client.predict(api_name="/models")
        assert table["data"] == []
        assert "no models" in message and "--model" in message
        with pytest.raises(AppError, match="no models.*--model"):
            client.predict(None, 0, 2, 1.0, 1.0, *[1.0] * MAX_LEVELS, api_name="/generate")
        assert len(client.predict(5, api_name="/synth_random_factors")) == len(synthfaces.FACTOR_NAMES)
    finally:
        demo.close()


def test_concurrent_identical_answers_all_arrive_whole(client):
    """Identical answers share one cached file; Gradio used to rewrite it in place while other
    clients were downloading it (issue 21: truncated downloads under 16 clients)."""
    import threading

    from gradio_client import Client

    results, errors = [], []

    def user():
        c = Client(client.src, verbose=False)
        for _ in range(3):
            try:
                results.append(_gallery(c.predict("vae", 0, 16, 1.0, 1.0, *[1.0] * MAX_LEVELS, api_name="/generate")))
            except Exception as err:  # a truncated file fails to decode
                errors.append(err)

    threads = [threading.Thread(target=user) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 18
    assert all(np.array_equal(x, y) for r in results for x, y in zip(r, results[0]))


def test_handler_images_become_whole_files_but_session_state_keeps_its_images():
    import gradio as gr

    import app

    img = Image.new("RGB", (8, 8), (10, 20, 30))
    state = {("photo", 8): (img, "how")}
    out = app._as_files(([(img, "caption")], gr.update(value=img), state, "text"))
    [(path, caption)], update, kept, text = out
    assert Path(path).is_file() and caption == "caption" and Path(update["value"]).is_file()
    assert kept is state and kept[("photo", 8)][0] is img and text == "text"
