"""facelab.imaging conversions: uint8 arrays and [-1, 1] tensors round-trip exactly."""

from __future__ import annotations

import numpy as np
import torch

from facelab.imaging import from_uint8, to_uint8


def test_from_uint8_inverts_to_uint8():
    arr = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    x = from_uint8(arr)
    assert x.shape == (2, 3, 5, 7) and x.dtype == torch.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert torch.equal(x[1, 2], torch.from_numpy(arr[1, :, :, 2]).float() / 127.5 - 1.0)  # channels moved, not mixed
    assert np.array_equal(to_uint8(x), arr)
