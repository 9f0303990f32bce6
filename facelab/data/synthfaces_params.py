"""Factor values -> per-image drawing parameters (colours, geometry) for synthfaces."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from facelab.data.synthfaces_factors import FACTOR_NAMES

F32 = np.float32

SKIN = np.array([[0.95, 0.85, 0.79], [0.92, 0.74, 0.61], [0.80, 0.58, 0.42],
                 [0.63, 0.43, 0.28], [0.40, 0.26, 0.17]], F32)
HAIR = np.array([[0.08, 0.07, 0.07], [0.38, 0.22, 0.11], [0.93, 0.78, 0.40],
                 [0.72, 0.26, 0.08], [0.78, 0.78, 0.80]], F32)
BACKGROUND = np.array([[0.33, 0.47, 0.70], [0.16, 0.53, 0.53], [0.47, 0.52, 0.22],
                       [0.88, 0.70, 0.25], [0.70, 0.28, 0.22], [0.50, 0.33, 0.62],
                       [0.93, 0.58, 0.70], [0.82, 0.82, 0.80]], F32)
# Nuisance palettes: drawn from the per-image seed, not factors.
CLOTH = np.array([[0.14, 0.19, 0.35], [0.24, 0.24, 0.26], [0.90, 0.90, 0.88],
                  [0.50, 0.12, 0.16], [0.17, 0.35, 0.22], [0.36, 0.46, 0.62]], F32)
IRIS = np.array([[0.32, 0.19, 0.08], [0.22, 0.42, 0.68], [0.28, 0.48, 0.28], [0.14, 0.09, 0.05]], F32)

FACE_HALF_WIDTH = np.array([0.35, 0.385, 0.42, 0.455], F32)
FACE_HALF_HEIGHT = 0.48
HEAD_Y = -0.1  # head centre; roll pivots here
ROLL = np.deg2rad(np.array([-16.0, -8.0, 0.0, 8.0, 16.0], F32))
YAW = np.array([-1.0, -0.5, 0.0, 0.5, 1.0], F32)
# Light direction in head-local (u right, v down) and gain; "front" is flat with a soft falloff.
LIGHT = np.array([[-1.0, -0.25, 0.34], [-0.7, -0.7, 0.34], [0.0, 0.0, 0.0],
                  [0.7, -0.7, 0.34], [1.0, -0.25, 0.34]], F32)
NUISANCE_SLOTS = 4


@dataclass
class FaceParams:
    """Per-image parameters: ints are the factor codes [N]; floats are [N] or colours [N,3]."""

    sex: np.ndarray
    age: np.ndarray
    style: np.ndarray
    glasses: np.ndarray
    smile: np.ndarray
    beard: np.ndarray
    lipstick: np.ndarray
    a: np.ndarray
    b: float
    taper: np.ndarray
    yaw: np.ndarray
    roll: np.ndarray
    hx: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    cloth: np.ndarray
    iris: np.ndarray
    light: np.ndarray

    def take(self, idx: np.ndarray) -> "FaceParams":
        """The parameters of images idx only."""
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self)
                                if isinstance(getattr(self, f.name), np.ndarray)})


def face_params(factors: np.ndarray, nuisance: np.ndarray) -> FaceParams:
    """Build drawing parameters from checked factors [N,F] and nuisance uniforms [N,>=4]."""
    f = {name: factors[:, k] for k, name in enumerate(FACTOR_NAMES)}
    yaw = YAW[f["yaw"]]
    # Small brightness jitter keeps colours continuous without blurring factor identity.
    skin = SKIN[f["skin_tone"]] * (0.97 + 0.06 * nuisance[:, :1]).astype(F32)
    hair = HAIR[f["hair_colour"]] * (0.94 + 0.12 * nuisance[:, 1:2]).astype(F32)
    cloth = CLOTH[(nuisance[:, 2] * len(CLOTH)).astype(np.int64)]
    iris = IRIS[(nuisance[:, 3] * len(IRIS)).astype(np.int64)]
    return FaceParams(
        sex=f["sex"], age=f["age"], style=f["hair_style"], glasses=f["eyeglasses"],
        smile=f["smile"], beard=f["beard"], lipstick=f["lipstick"],
        a=FACE_HALF_WIDTH[f["face_width"]], b=FACE_HALF_HEIGHT,
        taper=np.where(f["sex"] == 1, 0.16, 0.36).astype(F32),
        yaw=yaw, roll=ROLL[f["roll"]], hx=(0.04 * yaw).astype(F32),
        skin=np.minimum(skin, 1.0), hair=np.minimum(hair, 1.0), cloth=cloth, iris=iris,
        light=LIGHT[f["lighting"]],
    )
