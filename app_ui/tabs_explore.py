"""Tab builders for exploring latent space: Latent traversal, Background and Morphing."""

from __future__ import annotations

import gradio as gr

from facelab.lab import inputs as limits
from facelab.lab import FaceLab, FaceSpec

from app_ui.widgets import PHOTO_TYPES, _face_inputs, _first, _picker, _seed_input, _ui

MORPH_SEEDS = (5, 10)
AXIS_KINDS = ["latent dimension", "PCA component", "attribute direction"]
PHOTO_NOTE = ("Photos: JPEG/PNG/WebP (any mode, EXIF rotation applied); the face is found, cropped and "
              "centred before encoding — the preview says how. **The shipped models learned synthetic faces "
              "only**, so a real photo comes back as the nearest cartoon face, not a likeness (a domain gap, "
              "not a bug): for real faces, start the app with a model trained on them, e.g. "
              "`python app.py --model user/celeba-vae` (any bundle folder or Hub id; `training/train.py "
              "--set data.name=celeba data.root=...` makes one).")


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
