"""Tab builders for what the models record: Results (with the studies section) and Synthetic faces."""

from __future__ import annotations

import gradio as gr

from facelab.data import synthfaces
from facelab.lab import FaceLab

from app_ui.widgets import _named_params, _picker, _seed_input, _ui

FIGURE_SLOTS = 3  # most figures one RESULTS.md study shows


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
