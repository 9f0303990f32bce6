"""facelab Space: the UI only. Each tab is built by one _build_<tab>() over a shared FaceLab.

Every event is an API endpoint (api_name) callable with gradio_client. Per-session values (the
last uploaded photos' face crops) live in gr.State; the models live once in the FaceLab. This file is
the entry point (build_demo, main); the widget helpers and tab builders live in app_ui/.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from facelab.lab import FaceLab  # noqa: E402

# Re-exported: tests and benchmarks reach these as app.X.
from app_ui.widgets import (PHOTO_TYPES, _as_files, _default_targets, _face_inputs, _first,  # noqa: E402
                            _named_params, _picker, _seed_input, _ui)
from app_ui.tabs_generate import (MAX_LEVEL_SLIDERS, _build_conditional_tab, _build_generate_tab,  # noqa: E402
                                  _build_models_panel, _build_style_tab)
from app_ui.tabs_explore import (AXIS_KINDS, MORPH_SEEDS, PHOTO_NOTE, _build_background_tab,  # noqa: E402
                                 _build_morph_tab, _build_traversal_tab)
from app_ui.tabs_results import (FIGURE_SLOTS, _build_results_tab, _build_studies_section,  # noqa: E402
                                 _build_synthfaces_tab, _figure_slots)

__all__ = ["TITLE", "CONCURRENCY", "LAUNCH_OPTIONS", "INTRO", "TABS", "build_demo", "main", "_cap_malloc_arenas",
           "PHOTO_TYPES", "_as_files", "_default_targets", "_face_inputs", "_first", "_named_params", "_picker",
           "_seed_input", "_ui", "MAX_LEVEL_SLIDERS", "_build_conditional_tab", "_build_generate_tab",
           "_build_models_panel", "_build_style_tab", "AXIS_KINDS", "MORPH_SEEDS", "PHOTO_NOTE",
           "_build_background_tab", "_build_morph_tab", "_build_traversal_tab", "FIGURE_SLOTS", "_build_results_tab",
           "_build_studies_section", "_build_synthfaces_tab", "_figure_slots"]

TITLE = "facelab — face generation and latent-space study"
CONCURRENCY = 2  # CPU Space: two requests at a time keep each one fast
# Gradio hides the message of an error raised before a handler runs (a photo path that was never
# uploaded, say) unless show_error is on; every handler's own errors are gr.Error already (_ui).
LAUNCH_OPTIONS = {"show_error": True}
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
