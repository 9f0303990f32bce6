"""Shared widget helpers of the app: error/file wrapping of handlers, seed boxes, model pickers, face inputs."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import gradio as gr
from gradio.utils import get_upload_folder
from PIL import Image

from facelab.lab import inputs as limits
from facelab.hub import BundleError
from facelab.imaging import save_png_shared
from facelab.lab import START_SOURCES, FaceLab

PHOTO_TYPES = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"]


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
