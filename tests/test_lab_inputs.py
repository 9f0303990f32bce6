"""Every number and list an endpoint takes is checked by the lab itself (clients can send JSON past the
sliders): NaN, ±inf, 1e300, negatives and huge ranges get a message a person understands, and no list is
expanded or loaded before its length is known.

The lab runs for real on tiny untrained bundles (a VAE, a StyleGAN, an HVAE) saved with save_bundle; the
app is served on loopback for the checks that only the app can show (Gradio's own errors).
"""

from __future__ import annotations

import json
import math
import socket
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest
import torch

from facelab.hub import save_bundle
from facelab.models import build_model

SIZE = 16
TINY = {
    "vae": {"image_size": SIZE, "latent_dim": 4, "base_channels": 8, "max_channels": 16},
    "stylegan": {"image_size": SIZE, "z_dim": 16, "w_dim": 16, "mapping_layers": 2, "channel_base": 64,
                 "channel_max": 16, "mbstd_group": 2},
    "hvae": {"image_size": SIZE, "width": 16, "group_resolutions": [1, 4, 8], "latent_channels": 4},
}
BAD_NUMBERS = [float("nan"), float("inf"), -float("inf"), 1e300, -1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from facelab.lab import FaceLab

    root = tmp_path_factory.mktemp("tiny_bundles")
    torch.manual_seed(0)
    sources = [str(save_bundle(build_model(kind, params).eval(), root / kind, {"name": kind}))
               for kind, params in TINY.items()]
    lab = FaceLab(model_sources=sources, device="cpu", classifier_path="")
    lab.load()
    assert lab.model_names() == ["vae", "stylegan", "hvae"]
    return lab


def _refused(match: str, fn, *args, **kwargs) -> str:
    """Call fn, expect a LabError matching `match`; return its message."""
    from facelab.lab import LabError

    with pytest.raises(LabError, match=match) as info:
        fn(*args, **kwargs)
    return str(info.value)


def _bounded_in_time_and_memory(fn, seconds: float = 1.0, megabytes: float = 20.0) -> None:
    """fn must fail (LabError) fast and without allocating: the list was refused before it was expanded."""
    from facelab.lab import LabError

    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(LabError, match="at most"):
            fn()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < seconds and peak < megabytes, (time.perf_counter() - t0, peak)


# ---------------------------------------------------------------- 2. lists bounded before they are expanded


@pytest.mark.parametrize("kind, axes", [("latent dimension", ["0-2000000"]), ("PCA component", ["PC1-PC2000000"]),
                                        ("latent dimension", ["0-3", "4-2000000"]),
                                        ("latent dimension", [str(i) for i in range(100_000)])])
def test_traversal_axis_ranges_are_bounded_before_they_are_expanded(lab, kind, axes):
    from facelab.lab import FaceSpec

    _bounded_in_time_and_memory(lambda: lab.traversal("vae", None, kind, axes, 1.0, 3, FaceSpec()))


@pytest.mark.parametrize("rows", ["0-2000000", ", ".join(["1"] * 100_000)])
def test_style_mixing_seed_ranges_are_bounded_before_they_are_expanded(lab, rows):
    _bounded_in_time_and_memory(lambda: lab.style_mix("stylegan", rows, "1", 0, 1))


def test_background_comparison_limits_and_deduplicates_its_model_list(lab):
    variants = lab.background_variants("example", 0)
    _bounded_in_time_and_memory(lambda: lab.background_compare(["vae"] * 3000, variants))
    out = lab.background_compare(["vae", "vae", "hvae", "vae"], variants)
    assert out["headers"] == ["metric", "vae", "hvae"]  # asked three times, compared once
    _refused("at most 8 models", lab.background_compare, [f"m{i}" for i in range(9)], variants)


def test_other_lists_are_bounded_too(lab):
    temps = [1.0] * 1_000_000
    _bounded_in_time_and_memory(lambda: lab.generate("hvae", 1, 0, level_temperatures=temps))
    _bounded_in_time_and_memory(lambda: lab.conditional("vae", ["Male = 1"] * 100_000, 1, 0))
    _bounded_in_time_and_memory(lambda: lab.conditional("hvae", ["Male = 1"], 1, 0, levels=["z0"] * 100_000))
    from facelab.lab import FaceSpec

    terms = {f"a{i}": 1.0 for i in range(100_000)}
    _bounded_in_time_and_memory(lambda: lab.arithmetic("vae", FaceSpec(), None, terms))
    _refused("axes: at most 400 characters", lab.traversal, "vae", None, "latent dimension", ["1" * 5000], 1.0, 3,
             FaceSpec())


# ---------------------------------------------------------------- 4. every number checked by the lab


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_generate_refuses_bad_numbers_in_words(lab, bad):
    _refused(r"temperature must be a number from 0 to 2; got", lab.generate, "vae", 2, 0, temperature=bad)
    _refused(r"truncation ψ must be a number from 0 to 1\.5; got", lab.generate, "stylegan", 2, 0, psi=bad)
    _refused(r"temperature of level 1 must be a number from 0 to 2", lab.generate, "hvae", 2, 0,
             level_temperatures=[1.0, bad, 1.0])
    _refused(r"seed must be a whole number from 0 to 4,294,967,295; got", lab.generate, "vae", 2, bad)
    _refused(r"number of samples must be a whole number from 1 to 64; got", lab.generate, "vae", bad, 0)


def test_nan_messages_say_nan_and_fractions_are_not_seeds(lab):
    assert _refused("temperature", lab.generate, "vae", 2, 0, temperature=float("nan")).endswith("got nan")
    assert _refused("seed", lab.generate, "vae", 2, 1e300).endswith("got 1e+300")
    _refused(r"seed must be a whole number .*got 2\.5", lab.generate, "vae", 2, 2.5)
    _refused(r"seed must be a whole number .*got None", lab.generate, "vae", 2, None)
    assert len(lab.generate("vae", 2.0, 3.0, temperature="0.5")) == 2  # whole floats and numeric text are fine


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_every_endpoint_checks_its_numbers(lab, bad):
    from facelab.lab import FaceSpec

    _refused("seed must be", lab.conditional, "vae", ["Male = 1"], 2, bad)
    _refused("number of samples must be", lab.conditional, "vae", ["Male = 1"], bad, 0)
    _refused(r"range ± must be a number above 0 and at most 20; got", lab.traversal, "vae", None,
             "latent dimension", ["0"], bad, 3, FaceSpec())
    _refused("steps must be a whole number", lab.traversal, "vae", None, "latent dimension", ["0"], 1.0, bad,
             FaceSpec())
    _refused("seed must be", lab.traversal, "vae", None, "latent dimension", ["0"], 1.0, 3, FaceSpec("seed", bad))
    _refused("truncation ψ must be", lab.traversal, "stylegan", None, "latent dimension", ["0"], 1.0, 3,
             FaceSpec(), psi=bad)
    _refused("frames must be a whole number", lab.morph, "vae", FaceSpec(), FaceSpec(), bad)
    _refused("GIF frames per second must be", lab.morph, "vae", FaceSpec(), FaceSpec(), 4, fps=bad)
    _refused("example number must be", lab.morph, "vae", FaceSpec("example", bad), FaceSpec(), 4)
    _refused("strength of Smiling must be a number from -4 to 4", lab.arithmetic, "vae", FaceSpec(), None,
             {"Smiling": bad * 10})
    _refused("row seeds: .* is not a seed", lab.style_mix, "stylegan", [bad], "1", 0, 1)
    _refused("first layer must be a whole number", lab.style_mix, "stylegan", "1", "2", bad, 1)
    _refused("truncation ψ must be", lab.style_mix, "stylegan", "1", "2", 0, 1, psi=bad)
    _refused("example seed must be", lab.background_variants, "example", bad)
    _refused("seed must be", lab.random_factors, bad)
    _refused("example number must be", lab.example_face, bad, SIZE)
    _refused("image size must be", lab.synth_face, lab.random_factors(0), 0, bad)
    _refused("detail seed must be", lab.synth_face, lab.random_factors(0), bad, 64)
    _refused("factor sex must be a whole number from 0 to 1", lab.synth_face, {**lab.random_factors(0), "sex": bad})
    _refused("photo size must be", lab.prepare_photo, "x.png", bad)


def test_typed_seed_lists_refuse_negatives_and_overflow(lab):
    _refused(r"row seeds: '-5' is not a seed \(use whole numbers from 0 to 4,294,967,295", lab.style_mix,
             "stylegan", "-5", "1", 0, 1)
    _refused("column seeds: .* is not a seed", lab.style_mix, "stylegan", "1", "99999999999999999999", 0, 1)
    _refused(r"range '9-3' runs backwards", lab.style_mix, "stylegan", "9-3", "1", 0, 1)
    grid, info = lab.style_mix("stylegan", "1; 2", "3-5", 0, 1)
    assert info["row_seeds"] == [1, 2] and info["column_seeds"] == [3, 4, 5]


def test_in_range_values_still_work(lab):
    from facelab.lab import FaceSpec

    assert len(lab.generate("hvae", 2, 4_294_967_295, level_temperatures=[0.0, 2.0, 1.0])) == 2
    grid, info = lab.traversal("vae", None, "latent dimension", ["0-1"], 20, 2, FaceSpec("seed", 0))
    assert info["offsets"] == [-20.0, 20.0]
    lab.morph("vae", FaceSpec("seed", 1), FaceSpec("example", 2), 64, fps=50)


# ---------------------------------------------------------------- the app: Gradio's own errors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(lab):
    import app

    demo = app.build_demo(lab)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.LAUNCH_OPTIONS)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


def _raw_call(url: str, api: str, data: list) -> tuple[str, object]:
    """POST raw JSON to an endpoint as any HTTP client can (no gradio_client checks) -> (event, payload)."""
    with httpx.Client(timeout=60) as http:
        body = json.dumps({"data": data}, allow_nan=True)
        r = http.post(f"{url}/gradio_api/call/{api}", content=body, headers={"Content-Type": "application/json"})
        r.raise_for_status()
        event_id = r.json()["event_id"]
        event, payload = "", None
        with http.stream("GET", f"{url}/gradio_api/call/{api}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = json.loads(line.split(":", 1)[1])
                    break
    return event, payload


def test_random_factors_with_a_negative_seed_is_a_clear_error_not_an_empty_one(server):
    event, payload = _raw_call(server, "synth_random_factors", [-1])
    assert event == "error" and "less than minimum value 0" in str(payload)
    event, payload = _raw_call(server, "synth_random_factors", [math.nan])
    assert event == "error" and "seed must be a whole number from 0 to 4,294,967,295; got nan" in str(payload)
    event, payload = _raw_call(server, "synth_random_factors", [7])
    assert event == "complete" and len(payload) == 15


def test_nan_and_huge_numbers_sent_past_the_sliders_are_refused_in_words(server):
    event, payload = _raw_call(server, "generate", ["vae", math.nan, 2, 1.0, 1.0, *[1.0] * 8])
    assert event == "error" and "seed must be a whole number" in str(payload)
    event, payload = _raw_call(server, "generate", ["vae", 1e300, 2, 1.0, 1.0, *[1.0] * 8])
    assert event == "error" and "greater than maximum value 4294967295" in str(payload)
    event, payload = _raw_call(server, "generate", ["vae", 0, 2, math.nan, 1.0, *[1.0] * 8])
    assert event == "error" and "temperature must be a number from 0 to 2; got nan" in str(payload)


def test_a_photo_path_that_was_never_uploaded_is_refused_in_words(server, tmp_path):
    secret = Path(tmp_path / "not-uploaded.png")
    secret.write_bytes(b"\x89PNG\r\n\x1a\n")
    photo = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}
    event, payload = _raw_call(server, "background_variants", ["photo", 0, photo])
    assert event == "error" and "not uploaded by a user" in str(payload)
