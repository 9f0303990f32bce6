"""FaceLab: the service the app calls. Holds cached bundles; every method takes plain values
and returns PIL images / numbers, so the UI stays a thin layer and the API is testable alone."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from facelab.data import background, synthfaces


@dataclass
class FaceLab:
    """Cached models and the operations the app exposes; safe to share between sessions."""

    model_sources: list[str] = field(default_factory=list)
    device: str = "cpu"
    _bundles: dict[str, Any] = field(default_factory=dict, repr=False)
    _errors: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---- synthetic faces -------------------------------------------------------------
    @staticmethod
    def factor_choices() -> dict[str, list[tuple[str, int]]]:
        """Per factor, (label, value) pairs for UI pickers."""
        return {name: [(label, i) for i, label in enumerate(synthfaces.FACTOR_VALUE_NAMES[name])]
                for name in synthfaces.FACTOR_NAMES}

    @staticmethod
    def random_factors(seed: int) -> dict[str, int]:
        """Factors drawn from synthfaces' correlated prior for a seed."""
        f = synthfaces.sample_factors(np.random.default_rng(int(seed)), 1)[0]
        return {name: int(v) for name, v in zip(synthfaces.FACTOR_NAMES, f)}

    @staticmethod
    def synth_face(factors: dict[str, int], seed: int = 0, size: int = 128) -> dict[str, Any]:
        """Render one synthetic face: its original/grey/blur variants, mask and attributes."""
        values = np.array([[int(factors[n]) for n in synthfaces.FACTOR_NAMES]], dtype=np.int64)
        rgb, mask = synthfaces.render(values, size=int(size), seeds=np.array([int(seed)]))
        out: dict[str, Any] = {v: Image.fromarray(background.composite(rgb[0], mask[0], v))
                               for v in background.VARIANTS}
        out["mask"] = Image.fromarray((mask[0] * 255).round().astype(np.uint8), "L")
        attrs = synthfaces.attributes_from_factors(values)[0]
        out["attributes"] = {n: int(a) for n, a in zip(synthfaces.ATTRIBUTE_NAMES, attrs)}
        return out
