"""facelab Space: the UI only. Each tab is built by one _build_<tab>() over a shared FaceLab."""

from __future__ import annotations

import argparse
import os

import gradio as gr

from facelab.data import synthfaces
from facelab.lab import FaceLab

TITLE = "facelab — face generation and latent-space study"


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
            seed = gr.Number(value=0, precision=0, label="detail seed (texture, blobs)")
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
        *factors, seed_v, size_v = values
        r = lab.synth_face(dict(zip(synthfaces.FACTOR_NAMES, factors)), int(seed_v), int(size_v))
        return r["original"], r["grey"], r["blur"], r["mask"], r["attributes"]

    def randomise(seed_v):
        f = lab.random_factors(int(seed_v))
        return [f[name] for name in synthfaces.FACTOR_NAMES]

    inputs = [*pickers, seed, size]
    render_btn.click(render, inputs, [*outs, attrs], api_name="synth_face")
    random_btn.click(randomise, [seed], pickers, api_name="synth_random_factors").then(
        render, inputs, [*outs, attrs], api_name=False)


def build_demo(lab: FaceLab) -> gr.Blocks:
    """The whole app over one FaceLab."""
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}")
        with gr.Tab("Synthetic faces"):
            _build_synthfaces_tab(lab)
    return demo


def main(argv: list[str] | None = None) -> None:
    """Parse --model/--port and launch with a queue."""
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--model", action="append", default=None,
                        help="bundle folder or Hub repo id[@revision] (repeatable; env FACELAB_MODELS)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    sources = args.model or [s for s in os.environ.get("FACELAB_MODELS", "").split(",") if s]
    demo = build_demo(FaceLab(model_sources=sources))
    demo.queue(default_concurrency_limit=2).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
