"""facelab Space: the UI only. Each tab is built by one _build_<tab>() over a shared FaceLab.

Every event is an API endpoint (api_name) callable with gradio_client. Per-session values (the
last uploaded photos' face crops) live in gr.State; the models live once in the FaceLab.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
from typing import Any, Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402
from PIL import Image  # noqa: E402

from facelab.lab import inputs as limits  # noqa: E402
from facelab.data import synthfaces  # noqa: E402
from facelab.hub import BundleError  # noqa: E402
from facelab.imaging import save_png_shared  # noqa: E402
from facelab.lab import START_SOURCES, FaceLab, FaceSpec  # noqa: E402

TITLE = "facelab — face generation and latent-space study"
CONCURRENCY = 2  # CPU Space: two requests at a time keep each one fast
MAX_LEVEL_SLIDERS = 8
MORPH_SEEDS = (5, 10)
AXIS_KINDS = ["latent dimension", "PCA component", "attribute direction"]
PHOTO_TYPES = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"]
# Gradio hides the message of an error raised before a handler runs (a photo path that was never
# uploaded, say) unless show_error is on; every handler's own errors are gr.Error already (_ui).
LAUNCH_OPTIONS = {"show_error": True}
PHOTO_NOTE = ("Photos: JPEG/PNG/WebP (any mode, EXIF rotation applied); the face is found, cropped and "
              "centred before encoding — the preview says how. **The shipped models learned synthetic faces "
              "only**, so a real photo comes back as the nearest cartoon face, not a likeness (a domain gap, "
              "not a bug): for real faces, start the app with a model trained on them, e.g. "
              "`python app.py --model user/celeba-vae` (any bundle folder or Hub id; `training/train.py "
              "--set data.name=celeba data.root=...` makes one).")
INTRO = ("**facelab** is a research space for face generation and latent-space study: variational autoencoders "
         "(VAE, β-VAE, conditional and hierarchical VAEs), DCGAN and StyleGAN, with probes that read attributes "
         "out of their latents. The shipped models were trained on this CPU on facelab's **synthetic faces** "
         "(procedural cartoons with known factors, 32 and 64 px; see *Synthetic faces*) on original or "
         "grey backgrounds. **Generate** draws faces; **Conditional sampling** asks for attributes; **Latent "
         "traversal** walks one latent direction; **Background** compares models trained with and without "
         "backgrounds; **Morphing** blends two faces and adds attributes; **Style mixing** swaps StyleGAN "
         "layers; **Results** shows each model's measurements and the five studies facelab redoes "
         "(RESULTS.md; speed in BENCHMARKS.md). Small models' images are shown enlarged with nearest-neighbour "
         "upscaling, so their own pixels stay visible.")


def _as_files(value: Any) -> Any:
    """Every PIL image in a handler's outputs (nested in tuples, lists, gr.update dicts) as a PNG file
    written whole into Gradio's cache: Gradio rewrites a PIL output's cache file in place, so identical
    concurrent answers truncated each other's downloads (issue 21: 6 of 44 calls under 16 clients)."""
    if isinstance(value, Image.Image):
        return str(save_png_shared(value, get_upload_folder()))
    if isinstance(value, (list, tuple)):
        return type(value)(_as_files(v) for v in value)
    if isinstance(value, dict) and value.get("__type__") == "update":  # not gr.State dicts: they keep PIL
        return {k: _as_files(v) for k, v in value.items()}
    return value


def _ui(fn: Callable) -> Callable:
    """Turn the lab's clear errors into gr.Error (shown in the UI and raised by gradio_client); images
    out as files written whole (_as_files)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        """Call fn; LabError/BundleError/ValueError become gr.Error."""
        try:
            return _as_files(fn(*args, **kwargs))
        except (ValueError, KeyError, BundleError, OSError, RuntimeError) as err:
            # str(KeyError) quotes its message; the message itself is what the user should read
            msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            raise gr.Error(str(msg)) from err
    return wrapper


def _named_params(names: list[str], **keyword_defaults: Any) -> inspect.Signature:
    """A signature naming each value of a *args handler, so the API shows `temperature_level_0`, not `param_5`."""
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in keyword_defaults.items()]
    return inspect.Signature(params)


def _seed_input(value: int, label: str) -> gr.Number:
    """A seed box: Gradio refuses values outside 0..MAX_SEED, the lab refuses NaN and fractions in words."""
    # precision=None: with 0, Gradio would round a NaN itself and fail with an empty error
    return gr.Number(value, precision=None, minimum=0, maximum=limits.MAX_SEED, step=1, label=label)


def _first(names: list[str]) -> str | None:
    return names[0] if names else None


def _picker(lab: FaceLab, need: str = "any", label: str = "model") -> gr.Dropdown:
    names = lab.model_names(need)
    return gr.Dropdown(lab.model_choices(need), value=_first(names), label=label, allow_custom_value=True,
                       info=None if names else lab.models_message())


def _default_targets(choices: list[str]) -> list[str]:
    """Seed 000's example targets where the model knows them, else the first choice."""
    picks = [c for c in ("Male = 0", "Eyeglasses = 1") if c in choices]
    return picks or choices[:1]


def _face_inputs(lab: FaceLab, label: str, seed: int) -> tuple[gr.Radio, gr.Number, gr.File]:
    """Source / seed / photo inputs for one face (plus shipped example photos, when there are any)."""
    with gr.Group():
        source = gr.Radio(list(START_SOURCES), value="seed", label=f"{label}: from",
                          info="seed: sampled from the prior · example: synthetic face #seed, encoded · "
                               "photo: your upload, encoded")
        seed_in = _seed_input(seed, f"{label}: seed / example number")
        photo = gr.File(label=f"{label}: photo", file_types=PHOTO_TYPES, type="filepath", height=80)
    if lab.example_photos():
        gr.Examples([[p] for p in lab.example_photos()], [photo], label=f"{label}: example photos")
    return source, seed_in, photo


def _build_models_panel(lab: FaceLab) -> None:
    """The model list: every source, loaded or with its error."""
    with gr.Accordion("Models", open=not lab.model_names()):
        msg = gr.Markdown(lab.models_message())
        table = gr.Dataframe(lab.models_table(), headers=["model", "kind", "px", "data / background", "status"],
                             interactive=False, wrap=True)
        refresh = gr.Button("Model status", size="sm")
    refresh.click(_ui(lambda: (lab.models_table(), lab.models_message())), None, [table, msg], api_name="models")


def _build_generate_tab(lab: FaceLab) -> None:
    """Samples from the prior: seed, count, temperature (per level for the HVAE), truncation ψ (StyleGAN)."""
    start = _first(lab.model_names())
    kind, names = (lab.model_info(start)["kind"], lab.model_info(start)["levels"]) if start else ("", [])
    with gr.Row():
        with gr.Column(scale=1):
            model = _picker(lab)
            seed = _seed_input(0, "seed")
            n = gr.Slider(*limits.SAMPLES, value=16, step=1, label="number of samples")
            temp = gr.Slider(*limits.TEMPERATURE, value=1.0, step=0.05, label="temperature",
                             visible=kind not in ("hvae", "stylegan"))
            with gr.Group(visible=kind == "hvae") as level_box:
                levels = [gr.Slider(*limits.TEMPERATURE, value=1.0, step=0.05,
                                    visible=kind == "hvae" and k < len(names),
                                    label=f"temperature, level {names[k] if k < len(names) else k}")
                          for k in range(MAX_LEVEL_SLIDERS)]
            psi = gr.Slider(*limits.PSI, value=1.0, step=0.05, label="truncation ψ", visible=kind == "stylegan")
            go = gr.Button("Generate", variant="primary")
        with gr.Column(scale=3):
            gallery = gr.Gallery(label="samples (#k: the k-th face of this seed)", columns=8, format="png",
                                 buttons=["download", "fullscreen"])
            gr.Markdown("The same seed and number of samples give the same faces. In the other tabs, "
                        "“seed *s*” is the face made here with seed *s* and 1 sample.")

    def adapt(model):
        """Show the controls that apply to the chosen model."""
        info = lab.model_info(model)
        hvae = info["kind"] == "hvae"
        sliders = [gr.update(visible=hvae and k < len(info["levels"]),
                             label=f"temperature, level {info['levels'][k]}" if k < len(info["levels"]) else None)
                   for k in range(MAX_LEVEL_SLIDERS)]
        return [gr.update(visible=not hvae and info["kind"] != "stylegan"), gr.update(visible=hvae),
                *sliders, gr.update(visible=info["kind"] == "stylegan")]

    def generate(model, seed, n, temperature, psi, *level_temperatures, progress=gr.Progress()):
        """n faces from the prior (HVAE: one temperature per level; StyleGAN: truncation ψ)."""
        images = lab.generate(model, n, seed, temperature, list(level_temperatures), psi, progress)
        return [(im, f"#{i}") for i, im in enumerate(images)]  # short: a caption sits over its thumbnail

    generate.__signature__ = _named_params(["model", "seed", "n", "temperature", "psi",
                                            *[f"temperature_level_{k}" for k in range(MAX_LEVEL_SLIDERS)]],
                                           progress=gr.Progress())

    model.change(_ui(adapt), model, [temp, level_box, *levels, psi], api_name="generate_options")
    go.click(_ui(generate), [model, seed, n, temp, psi, *levels], gallery, api_name="generate")


def _build_conditional_tab(lab: FaceLab) -> None:
    """Seed 000's conditional sampling: attribute targets, HVAE levels and classifier variant."""
    names = lab.model_names("conditional")
    start = _first(names)
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(lab.model_choices("conditional"), value=start,
                                label="model (probed, or a conditional VAE)",
                                allow_custom_value=True,
                                info=None if names else "no probed model: run training/probe.py on a bundle")
            choices = lab.target_choices(start) if start else []
            targets = gr.Dropdown(choices, value=_default_targets(choices), multiselect=True,
                                  allow_custom_value=True, label="targets (e.g. Male = 0, Eyeglasses = 1)")
            n = gr.Slider(*limits.SAMPLES, value=16, step=1, label="number of samples")
            seed = _seed_input(0, "seed")
            method = gr.Radio(["rejection", "shift", "nearest"], value="nearest", label="method",
                              info="rejection: redraw until the probe agrees; shift: move across each boundary "
                                   "without moving the others; nearest: the smallest move onto the target side")
            hvae = bool(start) and lab.model_info(start)["kind"] == "hvae"
            variant = gr.Radio(["per_level", "cumulative"], value="per_level", label="HVAE classifiers",
                               info="per level: the SVM on z_k; cumulative: the SVM on z_1..z_k", visible=hvae)
            levels = gr.CheckboxGroup(lab.model_info(start)["levels"] if hvae else [], visible=hvae,
                                      label="HVAE levels constrained (none = all)")
            go = gr.Button("Sample", variant="primary")
        with gr.Column(scale=3):
            gallery = gr.Gallery(label="samples (#k ✓: the classifier says every target is met; numbers below)",
                                 columns=8, format="png",
                                 buttons=["download", "fullscreen"])
            summary = gr.Markdown()
            table = gr.Dataframe(headers=["sample", "all targets met"], label="verdict per sample", interactive=False)

    def adapt(model):
        """Show the controls that apply to the chosen model."""
        info = lab.model_info(model)
        hvae = info["kind"] == "hvae"
        choices = lab.target_choices(model)
        return (gr.update(choices=choices, value=_default_targets(choices)),
                gr.update(visible=hvae), gr.update(choices=info["levels"] if hvae else [], value=[], visible=hvae))

    def run(model, targets, n, seed, method, variant, levels, progress=gr.Progress()):
        """Samples meeting targets like ['Male = 0', 'Eyeglasses = 1'], with acceptance and verdict."""
        out = lab.conditional(model, targets, n, seed, method, variant, levels or None, progress)
        rows = {"headers": out["headers"], "data": out["rows"]}
        return list(zip(out["images"], out["captions"])), out["summary"], rows

    model.change(_ui(adapt), model, [targets, variant, levels], api_name="conditional_options")
    go.click(_ui(run), [model, targets, n, seed, method, variant, levels], [gallery, summary, table],
             api_name="conditional")


def _build_traversal_tab(lab: FaceLab) -> None:
    """Seed 001's traversal grids: axes = dimensions, PCs or attribute directions; start = seed or photo."""
    start = _first(lab.model_names())
    info0 = lab.model_info(start) if start else {"levels": []}
    with gr.Row():
        with gr.Column(scale=1):
            model = _picker(lab)
            level = gr.Dropdown(info0["levels"], value=_first(info0["levels"]), label="latent level",
                                allow_custom_value=True)
            kind = gr.Radio(AXIS_KINDS, value=AXIS_KINDS[0], label="axis")
            axes = gr.Dropdown(lab.axis_choices(start, None, AXIS_KINDS[0]) if start else [], multiselect=True,
                               allow_custom_value=True,
                               label="axes (empty = the first 8 listed; dimensions are listed by how much they "
                                     "change the face, most first; ranges like 0-7)")
            span = gr.Slider(0.5, 10.0, value=3.0, step=0.5, label="range ± (units: prior σ / PC σ / direction)")
            steps = gr.Slider(3, 15, value=9, step=1, label="steps")
            source, seed, photo = _face_inputs(lab, "start", 0)
            psi = gr.Slider(*limits.PSI, value=1.0, step=0.05, label="truncation ψ (StyleGAN)")
            go = gr.Button("Traverse", variant="primary")
        with gr.Column(scale=3):
            grid = gr.Image(label="traversal: one row per axis", show_label=False, type="pil", format="png",
                            buttons=["download", "fullscreen"])
            with gr.Row():
                face = gr.Image(label="start photo, as the model sees it", type="pil", format="png", height=160)
                with gr.Column():
                    start_note = gr.Markdown(PHOTO_NOTE)
                    with gr.Accordion("grid details", open=False):
                        info = gr.JSON(label="grid")
    cache = gr.State({})

    def adapt_model(model):
        """Levels and axes of the chosen model."""
        levels = lab.model_info(model)["levels"]
        axes = lab.axis_choices(model, None, AXIS_KINDS[0])
        return gr.update(choices=levels, value=_first(levels)), gr.update(choices=axes, value=[]), AXIS_KINDS[0]

    def adapt_axes(model, level, axis):
        """Axis choices for a level and axis kind."""
        try:
            return gr.update(choices=lab.axis_choices(model, level, axis), value=[])
        except ValueError as err:  # e.g. no probes: say so where the axes would be
            gr.Warning(str(err))
            return gr.update(choices=[], value=[])

    def run(model, level, axis, axes, span, steps, start, seed, photo=None, psi=None, state=None,
            progress=gr.Progress()):
        """Traversal grid (one row per axis) from a seed or an uploaded photo."""
        g, meta = lab.traversal(model, level, axis, axes or [], span, steps, FaceSpec(start, seed, photo), psi, state,
                                progress)
        shown = lab.photo_face(photo, lab.bundle(model).model.image_size, state)[0] if start == "photo" else None
        note = f"start: {meta['start']}" + (f"  \n{meta['dimensions']}" if "dimensions" in meta else "")
        return g, meta, shown, note, state

    def preview(model, photo=None, state=None):
        """The uploaded photo as the model will see it, and how the face was found."""
        face, how = lab.photo_face(photo, lab.bundle(model).model.image_size if model else 128, state)
        return face, how, state

    model.change(_ui(adapt_model), model, [level, axes, kind], api_name="traversal_options")
    gr.on([level.change, kind.change], _ui(adapt_axes), [model, level, kind], axes, api_name="traversal_axes")
    photo.upload(_ui(preview), [model, photo, cache], [face, start_note, cache], api_name="traversal_photo")
    go.click(_ui(run), [model, level, kind, axes, span, steps, source, seed, photo, psi, cache],
             [grid, info, face, start_note, cache], api_name="traversal")


def _build_background_tab(lab: FaceLab) -> None:
    """Seed 002: mask + original / grey / blur, then models trained on each background compared."""
    from facelab.lab.background import default_comparison

    with gr.Row():
        with gr.Column(scale=1):
            source = gr.Radio(["example", "photo"], value="example", label="face")
            seed = _seed_input(0, "example seed (synthetic face, ground-truth mask)")
            photo = gr.File(label="photo (masked with rembg)", file_types=PHOTO_TYPES, type="filepath", height=80)
            if lab.example_photos():
                gr.Examples([[p] for p in lab.example_photos()], [photo], label="example photos")
            show = gr.Button("Show variants", variant="primary")
        with gr.Column(scale=3):
            with gr.Row():
                views = [gr.Image(label=lbl, type="pil", format="png")
                         for lbl in ("original", "mask", "grey background", "blurred background")]
            how = gr.Markdown()
    names = lab.model_names()
    loaded = [lab.bundle(n) for n in names]
    with gr.Row():
        models = gr.Dropdown(lab.model_choices(), value=default_comparison(loaded), multiselect=True,
                             allow_custom_value=True,
                             label="models to compare (e.g. trained on original vs grey backgrounds)", scale=3)
        compare = gr.Button("Compare models", scale=1)
    recon = gr.Image(label="each model: its background variant → its reconstruction", show_label=False, type="pil",
                     format="png")
    with gr.Row():
        pca = gr.Plot(label="PCA explained variance", show_label=False)
        share = gr.Plot(label="background share of latent variance", show_label=False)
    table = gr.Dataframe(headers=["model"], label="metrics", interactive=False)
    notes = gr.Markdown(label="notes")
    cache = gr.State({})

    def variants(face, seed, photo=None, state=None):
        """Original, mask, grey and blur of an example face or an uploaded photo (offline: the original and why)."""
        images, note = lab.background_view(face, seed, photo, state)
        return (*images.values(), note, state)

    def run(face, seed, photo=None, models=None, state=None, progress=gr.Progress()):
        """Models trained on different backgrounds compared on the same face."""
        progress(0.1, "masking the face")
        v = lab.background_variants(face, seed, photo, state)
        out = lab.background_compare(models or [], v)
        rows = f"Rows: {', '.join(out['captions'])}." if out["captions"] else ""
        notes_md = "\n".join([rows, *(f"- {n}" for n in out["notes"])])
        return (out["reconstructions"], out["pca"], out["share"], {"headers": out["headers"], "data": out["rows"]},
                notes_md, state)

    show.click(_ui(variants), [source, seed, photo, cache], [*views, how, cache], api_name="background_variants")
    compare.click(_ui(run), [source, seed, photo, models, cache], [recon, pca, share, table, notes, cache],
                  api_name="background_compare")


def _build_morph_tab(lab: FaceLab) -> None:
    """Seeds 003/004: interpolate two faces (strip + GIF); attribute arithmetic with strengths."""
    start = _first(lab.model_names())
    info0 = lab.model_info(start) if start else {"levels": [], "attributes": []}
    with gr.Row():
        with gr.Column(scale=1):
            model = _picker(lab)
            # seeds 5 and 10 differ in hair, skin, glasses and background on the shipped models (1 and 2 looked alike)
            a = _face_inputs(lab, "face A", MORPH_SEEDS[0])
            b = _face_inputs(lab, "face B", MORPH_SEEDS[1])
            method = gr.Radio(["spherical", "linear"], value="spherical", label="interpolation")
            frames = gr.Slider(limits.FRAMES[0], 32, value=8, step=1, label="frames")
            fps = gr.Slider(limits.FPS[0], 30, value=8, step=1, label="GIF frames per second")
            go = gr.Button("Morph", variant="primary")
        with gr.Column(scale=3):
            strip = gr.Image(label="frames", show_label=False, type="pil", format="png", buttons=["download"])
            with gr.Row():
                gif = gr.Image(label="animation", type="filepath", height=220)
                with gr.Column():
                    gif_file = gr.File(label="GIF download")
                    with gr.Accordion("details", open=False):
                        info = gr.JSON(label="morph")
    gr.Markdown("### Attribute arithmetic (face A + strength × attribute direction)")
    with gr.Row():
        level = gr.Dropdown(info0["levels"], value=_first(info0["levels"]), label="latent level",
                            allow_custom_value=True)
        terms = []
        for default, s in (("Smiling", 1.5), ("Eyeglasses", -1.0), ("", 0.0)):
            terms.append(gr.Dropdown(info0["attributes"], value=default if default in info0["attributes"] else None,
                                     label="attribute", allow_custom_value=True))
            terms.append(gr.Slider(*limits.STRENGTH, value=s, step=0.25, label="strength"))
        edit = gr.Button("Apply", variant="primary")
    edited = gr.Image(label="start · each edit alone · all together", show_label=False, type="pil", format="png",
                      height=220)
    cache = gr.State({})

    # None defaults: gradio_client callers may leave the photos (and what has no initial value) out
    def run(model, a_from, a_seed, a_photo=None, b_from=None, b_seed=None, b_photo=None, interpolation=None,
            frames=None, fps=None, state=None, progress=gr.Progress()):
        """Morph face A into face B: frame strip, GIF and details."""
        s, path, meta = lab.morph(model, FaceSpec(a_from, a_seed, a_photo),
                                  FaceSpec(b_from, b_seed, b_photo), frames, interpolation, fps,
                                  state, progress)
        return s, path, path, meta, state

    def arith(model, a_from, a_seed, a_photo=None, level=None, attribute1=None, strength1=None, attribute2=None,
              strength2=None, attribute3=None, strength3=None, state=None):
        """Face A plus strength × attribute direction, each edit alone and all together."""
        pairs = {k: v for k, v in ((attribute1, strength1), (attribute2, strength2),
                                          (attribute3, strength3)) if k}
        img, meta = lab.arithmetic(model, FaceSpec(a_from, a_seed, a_photo), level, pairs, state)
        return img, meta, state

    def adapt(model):
        """Show the controls that apply to the chosen model."""
        info_v = lab.model_info(model)
        attrs = gr.update(choices=info_v["attributes"])
        return gr.update(choices=info_v["levels"], value=_first(info_v["levels"])), attrs, attrs, attrs

    model.change(_ui(adapt), model, [level, terms[0], terms[2], terms[4]], api_name="morph_options")
    go.click(_ui(run), [model, *a, *b, method, frames, fps, cache], [strip, gif, gif_file, info, cache],
             api_name="morph")
    edit.click(_ui(arith), [model, *a, level, *terms, cache], [edited, info, cache], api_name="arithmetic")


def _build_style_tab(lab: FaceLab) -> None:
    """Seed 002's style blending: row faces take layers first..last from the column faces."""
    names = lab.model_names("stylegan")
    num_ws = lab.model_info(names[0])["num_ws"] if names else 10
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(lab.model_choices("stylegan"), value=_first(names), label="StyleGAN model",
                                allow_custom_value=True,
                                info=None if names else "no StyleGAN model loaded")
            rows = gr.Textbox("1, 2, 3", label="row seeds")
            cols = gr.Textbox("4, 5, 6, 7", label="column seeds")
            first = gr.Slider(0, num_ws - 1, value=0, step=1, label="first layer taken from the columns")
            last = gr.Slider(0, num_ws - 1, value=min(3, num_ws - 1), step=1, label="last layer taken from the columns")
            gr.Markdown("Low layers = coarse (pose, face shape); middle = features; high = colour and texture.")
            psi = gr.Slider(*limits.PSI, value=1.0, step=0.05, label="truncation ψ")
            go = gr.Button("Mix", variant="primary")
        with gr.Column(scale=3):
            grid = gr.Image(label="style mixing: row faces with the chosen layers' styles from the column faces",
                            show_label=False,
                            type="pil", format="png", buttons=["download", "fullscreen"])
            with gr.Accordion("grid details", open=False):
                info = gr.JSON(label="grid")

    def adapt(model):
        """Show the controls that apply to the chosen model."""
        n = lab.model_info(model)["num_ws"]
        return gr.update(maximum=n - 1, value=0), gr.update(maximum=n - 1, value=min(3, n - 1))

    def run(model, row_seeds, column_seeds, first_layer, last_layer, psi):
        """Style-mixing grid: row faces take layers first..last from the column faces."""
        return lab.style_mix(model, row_seeds, column_seeds, first_layer, last_layer, psi)

    model.change(_ui(adapt), model, [first, last], api_name="style_options")
    go.click(_ui(run), [model, rows, cols, first, last, psi], [grid, info], api_name="style_mix")


def _build_results_tab(lab: FaceLab) -> None:
    """Per bundle: probe tables, disentanglement, PCA spectrum, FID, training curves, samples."""
    with gr.Row():
        model = _picker(lab)
        show = gr.Button("Show results", variant="primary")
    summary = gr.Markdown()
    with gr.Row():
        samples = gr.Image(label="samples.png", type="filepath", height=520, buttons=["download", "fullscreen"])
        with gr.Column():
            fid = gr.Markdown()
            dis = gr.Markdown()
    with gr.Accordion("Probe accuracy per attribute (one table per latent level and probe)", open=False):
        probes = gr.Markdown()
    with gr.Row():
        spectrum = gr.Plot(label="PCA spectrum", show_label=False)
        curves = gr.Plot(label="training curves", show_label=False)
    notes = gr.Markdown()
    with gr.Accordion("All metrics", open=False):
        metrics = gr.Markdown()

    def run(model, progress=gr.Progress()):
        """Everything the bundle records about itself."""
        progress(0.2, "reading the bundle")
        r = lab.results(model)
        note = "  \n".join(x for x in (r["spectrum_note"], r["curves_note"]) if x)
        return (r["summary"], r["samples"], r["fid"], r["disentanglement"], r["probes"], r["spectrum"],
                r["curves"], note, r["metrics"])

    outs = [summary, samples, fid, dis, probes, spectrum, curves, notes, metrics]
    show.click(_ui(run), model, outs, api_name="results")
    model.change(_ui(run), model, outs, api_name=False)
    _build_studies_section(lab)


FIGURE_SLOTS = 3  # most figures one RESULTS.md study shows


def _figure_slots(figures: list[tuple[str, str]]) -> list[dict]:
    """Value, label and visibility of each image slot: the study's figures, then hidden empty slots."""
    shown = [{"value": p, "label": c[:80] or "figure", "visible": True} for p, c in figures[:FIGURE_SLOTS]]
    return shown + [{"value": None, "label": "figure", "visible": False}] * (FIGURE_SLOTS - len(shown))


def _build_studies_section(lab: FaceLab) -> None:
    """RESULTS.md in the app: the five seed studies redone, one section at a time."""
    titles = lab.study_titles()
    if not titles:
        return
    gr.Markdown("## Studies: the five seed studies, redone side by side (RESULTS.md)")
    pick = gr.Dropdown(titles, value=titles[0], label="study", show_label=False)
    first = lab.study(titles[0])
    with gr.Row():
        slots = [gr.Image(**slot, type="filepath", height=320, interactive=False, buttons=["download", "fullscreen"])
                 for slot in _figure_slots(first["figures"])]
    with gr.Accordion("Study text and tables", open=True):
        text = gr.Markdown(first["markdown"])

    def run(title):
        """The chosen seed's section of RESULTS.md and its figures."""
        r = lab.study(title)
        return [r["markdown"]] + [gr.update(**slot) for slot in _figure_slots(r["figures"])]

    pick.change(_ui(run), pick, [text, *slots], api_name="study")


def _build_synthfaces_tab(lab: FaceLab) -> None:
    """Browse procedural faces by their ground-truth factors; original / grey / blur side by side."""
    choices = lab.factor_choices()
    start = lab.random_factors(0)
    gr.Markdown("Procedural faces drawn from known factors (the ground truth every metric is scored "
                "against). Pick factor values, or draw a random face from the correlated prior.")
    with gr.Row():
        with gr.Column(scale=1):
            pickers = [gr.Dropdown(choices=choices[name], value=start[name], label=name)
                       for name in synthfaces.FACTOR_NAMES]
            seed = _seed_input(0, "detail seed (texture, blobs)")
            size = gr.Radio([64, 128, 256], value=128, label="size")
            with gr.Row():
                random_btn = gr.Button("Random face")
                render_btn = gr.Button("Render", variant="primary")
        with gr.Column(scale=2):
            with gr.Row():
                outs = [gr.Image(label=label, type="pil", format="png")
                        for label in ("original", "grey background", "blurred background", "mask")]
            attrs = gr.JSON(label="CelebA-named attributes")

    def render(*values):
        """One synthetic face from its factors: variants, mask, attributes."""
        *factors, seed_v, size_v = values
        r = lab.synth_face(dict(zip(synthfaces.FACTOR_NAMES, factors)), seed_v, size_v)
        return r["original"], r["grey"], r["blur"], r["mask"], r["attributes"]

    render.__signature__ = _named_params([*synthfaces.FACTOR_NAMES, "seed", "size"])

    def randomise(seed_v):
        """Factors drawn from the prior for a seed."""
        f = lab.random_factors(seed_v)
        return [f[name] for name in synthfaces.FACTOR_NAMES]

    inputs = [*pickers, seed, size]
    render_btn.click(_ui(render), inputs, [*outs, attrs], api_name="synth_face")
    random_btn.click(_ui(randomise), [seed], pickers, api_name="synth_random_factors").success(
        _ui(render), inputs, [*outs, attrs], api_name=False)


TABS = [("Generate", _build_generate_tab), ("Conditional sampling", _build_conditional_tab),
        ("Latent traversal", _build_traversal_tab), ("Background", _build_background_tab),
        ("Morphing", _build_morph_tab), ("Style mixing", _build_style_tab), ("Results", _build_results_tab),
        ("Synthetic faces", _build_synthfaces_tab)]


def build_demo(lab: FaceLab) -> gr.Blocks:
    """The whole app over one FaceLab, queued with a concurrency limit."""
    lab.load()
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}")
        gr.Markdown(INTRO)
        _build_models_panel(lab)
        for label, build in TABS:
            with gr.Tab(label):
                build(lab)
    return demo.queue(default_concurrency_limit=CONCURRENCY)


def _cap_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each request thread its own malloc arena, which keeps what it freed: under 16 concurrent
    clients the server grew 124 MB in 30 s with the default and 58 MB with two arenas
    (benchmarks/bench_load.py). Same effect as MALLOC_ARENA_MAX=2; a no-op off glibc."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Parse --model/--port and launch with a queue."""
    _cap_malloc_arenas()  # before the server starts its threads
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--model", action="append", default=None,
                        help="bundle folder or Hub repo id[@revision] (repeatable; env FACELAB_MODELS; "
                             "default: every bundle under assets/)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    sources = args.model or [s for s in os.environ.get("FACELAB_MODELS", "").split(",") if s] or None
    build_demo(FaceLab(model_sources=sources)).launch(server_name=args.host, server_port=args.port, **LAUNCH_OPTIONS)


if __name__ == "__main__":
    main()
