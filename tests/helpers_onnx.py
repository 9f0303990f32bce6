"""A tiny real ONNX "background remover" for rembg's offline tests: bright pixels = foreground.

Also turns off numba JIT before rembg is imported: rembg's import eagerly compiles pymatting's
alpha-matting kernels (~45-70 s on a cold venv), which the only_mask path never runs.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

# rembg's U2-Net sessions feed (pixel / image max - mean) / std at 320×320.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
GAIN = 20.0  # sigmoid steepness: mean brightness 0.6 -> 0.88, 0.4 -> 0.12


def brightness_model() -> onnx.ModelProto:
    """1×1 Conv + Sigmoid: out = sigmoid(GAIN * (mean RGB in [0,1] - 0.5)), input "input.1" [1,3,320,320]."""
    # Undo rembg's normalisation inside the conv: x_c * std_c + mean_c is the pixel in [0,1].
    weight = (GAIN * STD / 3.0).reshape(1, 3, 1, 1).astype(np.float32)
    bias = np.array([GAIN * (MEAN.sum() / 3.0 - 0.5)], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input.1", "w", "b"], ["logit"], kernel_shape=[1, 1]),
         helper.make_node("Sigmoid", ["logit"], ["d0"])],
        "brightness_mask",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 320, 320])],
        [helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 1, 320, 320])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by any onnxruntime of the last years
    onnx.checker.check_model(model)
    return model


def write_brightness_model(path: Path) -> Path:
    """Save brightness_model() to path (parents made) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(brightness_model(), str(path))
    return path


def bright_disc_image(h: int = 120, w: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright textured ellipse on a dark textured background: (uint8 [H,W,3], bool GT mask [H,W])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    inside = ((yy - h / 2) / (0.35 * h)) ** 2 + ((xx - w / 2) / (0.35 * w)) ** 2 <= 1.0
    img = rng.integers(10, 80, size=(h, w, 3))
    img[inside] = rng.integers(190, 256, size=(int(inside.sum()), 3))
    return img.astype(np.uint8), inside
