"""A GAN continued from its bundle (train.init_from) counts its images on from the bundle's."""

from __future__ import annotations

import torch

from facelab.hub import load_bundle
from training.train import main

from tests.test_train import tiny_args


def _run(out, kind, steps, *extra):
    assert main(tiny_args(kind, out, steps, "train.report_to=none", *extra)) == 0
    return load_bundle(out / "bundle").model


def test_stylegan_stage_two_keeps_the_top_level_and_updates_its_ema(tmp_path):
    # stage 1: 12 steps of 4 images pass every fade/stable phase of 8 images at 16 px (levels 0..2)
    first = _run(tmp_path / "s1", "stylegan", 12)
    assert int(first.level) == first.max_level and int(first.images_seen) == 48
    second = _run(tmp_path / "s2", "stylegan", 2, f"train.init_from={tmp_path / 's1' / 'bundle'}")
    # without the offset the schedule would restart at 4 px and the EMA would wait for 48 new images
    assert int(second.level) == second.max_level and float(second.alpha) == 1.0
    assert int(second.images_seen) == 48 + 8
    ema_a, ema_b = first.generator_ema.state_dict(), second.generator_ema.state_dict()
    assert any(not torch.equal(ema_a[k], ema_b[k]) for k in ema_a)


def test_dcgan_with_ema_continued_keeps_averaging(tmp_path):
    ema = "model.params.ema_half_life_images=16"
    first = _run(tmp_path / "s1", "dcgan", 6, ema)
    assert int(first.ema_images_seen) == 24
    second = _run(tmp_path / "s2", "dcgan", 2, ema, f"train.init_from={tmp_path / 's1' / 'bundle'}")
    assert int(second.ema_images_seen) == 24 + 8
    ema_a, ema_b = first.generator_ema.state_dict(), second.generator_ema.state_dict()
    assert any(not torch.equal(ema_a[k], ema_b[k]) for k in ema_a if ema_a[k].is_floating_point())
