"""Tab builders for making faces: the models panel, Generate, Conditional sampling and Style mixing."""

from __future__ import annotations

import gradio as gr

from facelab.imaging import grid
from facelab.lab import inputs as limits
from facelab.lab import FaceLab

from app_ui.widgets import _default_targets, _first, _named_params, _picker, _seed_input, _ui

MAX_LEVEL_SLIDERS = 8


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
    info0 = lab.model_info(start) if start else {"kind": "", "levels": [], "temperatures": []}
    kind, names, temps0 = info0["kind"], info0["levels"], info0["temperatures"]
    with gr.Row():
        with gr.Column(scale=1):
            model = _picker(lab)
            seed = _seed_input(0, "seed")
            n = gr.Slider(*limits.SAMPLES, value=16, step=1, label="number of samples")
            temp = gr.Slider(*limits.TEMPERATURE, value=1.0, step=0.05, label="temperature",
                             visible=kind not in ("hvae", "stylegan"))
            with gr.Group(visible=kind == "hvae") as level_box:
                levels = [gr.Slider(*limits.TEMPERATURE, value=temps0[k] if k < len(temps0) else 1.0, step=0.05,
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
            # API only (/generate_grid): the same faces as one PNG, one download instead of n for scripts
            grid_image = gr.Image(visible=False, format="png", label="samples, one grid")
            grid_go = gr.Button(visible=False)

    def adapt(model):
        """Show the controls that apply to the chosen model."""
        info = lab.model_info(model)
        hvae = info["kind"] == "hvae"
        sliders = [gr.update(visible=hvae and k < len(info["levels"]),
                             label=f"temperature, level {info['levels'][k]}" if k < len(info["levels"]) else None,
                             value=info["temperatures"][k] if k < len(info["temperatures"]) else 1.0)
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

    def generate_grid(model, seed, n, temperature, psi, *level_temperatures):
        """The faces of /generate with the same arguments, tiled 8 per row into one image."""
        return grid(lab.generate(model, n, seed, temperature, list(level_temperatures), psi))

    generate_grid.__signature__ = generate.__signature__
    model.change(_ui(adapt), model, [temp, level_box, *levels, psi], api_name="generate_options")
    go.click(_ui(generate), [model, seed, n, temp, psi, *levels], gallery, api_name="generate")
    grid_go.click(_ui(generate_grid), [model, seed, n, temp, psi, *levels], grid_image, api_name="generate_grid")


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
