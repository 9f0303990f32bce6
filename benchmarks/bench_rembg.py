#!/usr/bin/env python
"""Background removal: one rembg session reused (facelab's get_session) vs a new session per image.

    python benchmarks/bench_rembg.py                    # a real model if present, else a stand-in
    python benchmarks/bench_rembg.py --model u2netp     # a named rembg model (downloads when online)

Both paths call rembg's own `remove(..., only_mask=True)` through facelab.data.background.rembg_mask
on the same images, interleaved image by image so machine load hits both alike. "Reused" takes the
session from get_session (created once, cached per model file, as the app and prepare_data do);
"per image" builds a fresh onnxruntime session for every image, which is what calling rembg's
`remove(img)` without a session does. With no rembg model on disk (this machine is offline) the
script writes a stand-in: a random-weight conv net of about u2netp's parameter count (0.96 M vs
1.1 M) and its input/output layout, so the per-image inference is of a realistic size; its graph has
~12 nodes against u2netp's hundreds, so its session set-up — and the per-image-session penalty — is
smaller than a real model's (a lower bound). The table says which model ran.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # rembg's import JIT-compiles matting kernels never used here

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facelab.data import background as bg  # noqa: E402
from facelab.data.synthfaces import render  # noqa: E402
from facelab.data.synthfaces_factors import sample_factors  # noqa: E402


def standin_model(path: Path, seed: int = 0) -> Path:
    """Save a u2netp-sized random conv net (input.1 [1,3,320,320] -> d0 [1,1,320,320]) as ONNX."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    chans = [(3, 64, 2), (64, 128, 2), (128, 256, 2), (256, 256, 1)]  # (in, out, stride): ~1.0 M params
    nodes, inits, x = [], [], "input.1"
    for i, (cin, cout, stride) in enumerate(chans):
        w = (rng.standard_normal((cout, cin, 3, 3)) * (2 / (9 * cin)) ** 0.5).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[3, 3],
                                   pads=[1, 1, 1, 1], strides=[stride, stride]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        x = f"r{i}"
    head = (rng.standard_normal((1, 256, 1, 1)) * 0.05).astype(np.float32)
    inits += [numpy_helper.from_array(head, "wh"), numpy_helper.from_array(np.zeros(1, np.float32), "bh"),
              numpy_helper.from_array(np.array([1, 1, 8, 8], np.float32), "scales")]
    nodes += [helper.make_node("Conv", [x, "wh", "bh"], ["logit"], kernel_shape=[1, 1]),
              helper.make_node("Resize", ["logit", "", "scales"], ["up"], mode="linear"),
              helper.make_node("Sigmoid", ["up"], ["d0"])]
    graph = helper.make_graph(nodes, "u2netp_sized_standin",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 320, 320])],
                              [helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 1, 320, 320])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def pick_model(name: str | None, home: Path) -> tuple[str, str | None, str]:
    """(rembg model name, custom path or None, description): a named model on disk, else the stand-in."""
    for candidate in ([name] if name else ["u2netp", "u2net"]):
        cls = bg._session_class(candidate)
        if name or cls.resolve_existing(bg.REMBG_MODELS[candidate]) is not None:
            return candidate, None, f"rembg {candidate}"
    os.environ["U2NET_HOME"] = str(home)  # rembg loads custom models only from inside its home
    path = standin_model(home / "u2netp_sized_standin.onnx")
    n_params = 3 * 64 * 9 + 64 * 128 * 9 + 128 * 256 * 9 + 256 * 256 * 9 + 256
    return bg.CUSTOM_MODEL, str(path), f"u2netp-sized stand-in ONNX ({n_params / 1e6:.2f} M params, random weights)"


def main(argv: list[str] | None = None) -> int:
    """Time both paths over --images faces of --size px and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(bg.REMBG_MODELS), help="a named rembg model (default: u2netp/"
                   "u2net when on disk, else the stand-in)")
    p.add_argument("--images", type=int, default=12, help="images per path (default 12)")
    p.add_argument("--size", type=int, default=256, help="image side in px (default 256)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        name, path, what = pick_model(args.model, Path(tmp))
        images = render(sample_factors(np.random.default_rng(0), args.images), args.size)[0]
        t0 = time.perf_counter()
        bg.get_session(name, path)  # created once; every later get_session returns it
        setup = time.perf_counter() - t0
        reused, fresh = [], []
        for img in images:
            t0 = time.perf_counter()
            m_reused = bg.rembg_mask(img, bg.get_session(name, path))
            reused.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            m_fresh = bg.rembg_mask(img, bg._new_session(name, path))
            fresh.append(time.perf_counter() - t0)
            assert np.allclose(m_reused, m_fresh, atol=1 / 255), "the two paths must give the same mask"
    r, f = statistics.median(reused), statistics.median(fresh)
    print(f"rembg only_mask on {args.images} synthfaces of {args.size} px, model: {what}; "
          f"onnxruntime threads: default; one-off session set-up {setup * 1e3:.0f} ms\n")
    print("| path | ms per image (median) | images/s | × per-image session |")
    print("|---|---:|---:|---:|")
    print(f"| one session reused (facelab get_session) | {r * 1e3:.0f} | {1 / r:.1f} | {f / r:.2f} |")
    print(f"| a new session per image | {f * 1e3:.0f} | {1 / f:.1f} | 1.00 |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
