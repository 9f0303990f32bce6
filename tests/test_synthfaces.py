"""synthfaces: contract, determinism, factor control, attributes, prior correlations, masks, sizes."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facelab.data.synthfaces import (
    ATTRIBUTE_NAMES, BACKGROUND_FACTORS, FACTOR_NAMES, FACTOR_SIZES, FACTOR_VALUE_NAMES, SynthFaces,
    attributes_from_factors, render, sample_attributes, sample_factors,
)

F = {name: k for k, name in enumerate(FACTOR_NAMES)}
A = {name: k for k, name in enumerate(ATTRIBUTE_NAMES)}
REQUIRED_ATTRS = ["Male", "Young", "Smiling", "Eyeglasses", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair",
                  "Gray_Hair", "Mustache", "No_Beard", "Pale_Skin"]


def face(**values: int) -> np.ndarray:
    """One factor row: a frontal, upright, blond young woman on a flat background, with overrides."""
    row = dict(sex=0, age=0, skin_tone=1, face_width=1, yaw=2, roll=2, hair_colour=2, hair_style=0,
               eyeglasses=0, smile=1, beard=0, lipstick=0, lighting=2, bg_kind=0, bg_colour=0)
    row.update(values)
    return np.array([[row[name] for name in FACTOR_NAMES]], dtype=np.int64)


def rows(frac_y: tuple[float, float], size: int) -> slice:
    return slice(int(frac_y[0] * size), int(frac_y[1] * size))


def test_factor_and_attribute_tables():
    assert len(FACTOR_NAMES) >= 10 and len(FACTOR_SIZES) == len(FACTOR_NAMES)
    assert [len(FACTOR_VALUE_NAMES[n]) for n in FACTOR_NAMES] == FACTOR_SIZES
    assert set(REQUIRED_ATTRS) <= set(ATTRIBUTE_NAMES)
    assert set(BACKGROUND_FACTORS) <= set(FACTOR_NAMES)
    assert FACTOR_SIZES[F["smile"]] >= 4 and FACTOR_SIZES[F["bg_kind"]] == 5


def test_item_contract_at_32px():
    ds = SynthFaces(size=32, length=10, seed=0)
    item = ds[3]
    assert set(item) == {"image", "attributes", "mask", "factors"}
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["image"].min() >= -1 and item["image"].max() <= 1 and item["image"].std() > 0.1
    assert item["attributes"].shape == (len(ATTRIBUTE_NAMES),) and item["attributes"].dtype == torch.float32
    assert set(item["attributes"].unique().tolist()) <= {0.0, 1.0}
    assert item["mask"].shape == (1, 32, 32) and item["mask"].dtype == torch.float32
    assert 0 <= item["mask"].min() and item["mask"].max() <= 1
    assert item["factors"].shape == (len(FACTOR_NAMES),) and item["factors"].dtype == torch.int64
    assert (item["factors"] >= 0).all() and (item["factors"] < torch.tensor(FACTOR_SIZES)).all()
    assert ds.attribute_names == ATTRIBUTE_NAMES and ds.factor_sizes == FACTOR_SIZES
    assert ds.background_factor_names == BACKGROUND_FACTORS and len(ds) == 10


def _digest(item: dict) -> str:
    return hashlib.sha256(item["image"].numpy().tobytes() + item["mask"].numpy().tobytes()).hexdigest()


def test_deterministic_across_instances_and_processes():
    a, b = SynthFaces(size=32, length=100, seed=7), SynthFaces(size=32, length=100, seed=7)
    assert _digest(a[42]) == _digest(b[42])
    code = ("from facelab.data.synthfaces import SynthFaces; import hashlib; it = SynthFaces(32, 100, 7)[42]; "
            "print(hashlib.sha256(it['image'].numpy().tobytes() + it['mask'].numpy().tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == _digest(a[42])
    other = SynthFaces(size=32, length=100, seed=8)
    assert not np.array_equal(other.factors(range(20)), a.factors(range(20)))
    assert _digest(other[42]) != _digest(a[42])


def test_batched_access_equals_single_access_in_any_order():
    ds = SynthFaces(size=32, length=50, seed=1)
    batch = ds.__getitems__([9, 2, 9, 40])
    for idx, item in zip([9, 2, 9, 40], batch):
        single = ds[idx]
        for key in item:
            assert torch.equal(item[key], single[key]), key
    assert np.array_equal(ds.factors([9, 2, 40]), torch.stack([ds[i]["factors"] for i in (9, 2, 40)]).numpy())
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    first = next(iter(loader))
    assert first["image"].shape == (4, 3, 32, 32)
    assert torch.equal(first["image"][3], ds[3]["image"])
    assert torch.equal(ds[-1]["image"], ds[49]["image"])


def test_random_access_needs_no_storage_and_checks_range():
    ds = SynthFaces(size=32, length=2_000_000_000, seed=3)
    assert ds.factors([1_999_999_999]).shape == (1, len(FACTOR_NAMES))
    with pytest.raises(IndexError, match="out of range"):
        ds[2_000_000_000]
    with pytest.raises(IndexError):
        SynthFaces(size=32, length=5).__getitems__([0, 5])


def test_bad_factor_values_name_the_factor():
    bad = face(smile=7)
    with pytest.raises(ValueError, match="smile"):
        render(bad, 32)
    with pytest.raises(ValueError, match="smile"):
        attributes_from_factors(bad)
    with pytest.raises(ValueError, match="factors must be"):
        render(np.zeros((2, 3), np.int64), 32)
    with pytest.raises(ValueError, match="'beards'"):
        sample_factors(np.random.default_rng(0), 2, fixed={"beards": 1})
    with pytest.raises(ValueError, match="'eyeglasses'"):
        sample_factors(np.random.default_rng(0), 2, fixed={"eyeglasses": 3})
    with pytest.raises(ValueError, match="background variant"):
        SynthFaces(background="green")
    with pytest.raises(ValueError, match="size"):
        render(face(), 4)


def test_background_factors_leave_the_foreground_alone():
    base = face()
    other = face(bg_colour=5, bg_kind=3)
    (img_a, img_b), (mask_a, mask_b) = render(np.concatenate([base, other]), 64)
    assert np.array_equal(mask_a, mask_b)
    solid = mask_a > 0.999
    assert solid.mean() > 0.2
    assert np.array_equal(img_a[solid], img_b[solid])
    empty = mask_a < 0.001
    assert np.abs(img_a[empty].astype(int) - img_b[empty].astype(int)).mean() > 30


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(-1)


def test_glasses_change_the_eye_region_only():
    (plain, clear, sun), _ = render(np.concatenate([face(), face(eyeglasses=1), face(eyeglasses=2)]), 64)
    eyes, mouth = rows((0.36, 0.52), 64), rows((0.55, 0.75), 64)
    for glasses in (clear, sun):
        d = _diff(plain, glasses)
        assert d[eyes].sum() > 0.9 * d.sum() and d[mouth].sum() == 0
    # Dark lenses hide the eyes: the eye band gets much darker than with clear lenses.
    box = (eyes, slice(19, 45))
    assert sun[box].mean() < clear[box].mean() - 25


def test_smile_changes_the_mouth_region_and_yaw_shifts_features():
    smiles, _ = render(np.concatenate([face(smile=s) for s in range(5)]), 64)
    mouth = rows((0.55, 0.75), 64)
    for s in (0, 2, 3, 4):  # vs neutral; frowns also lower the brows and grins squint
        d = _diff(smiles[1], smiles[s])
        assert d[mouth].sum() > (0.95 if s in (2, 3) else 0.4) * d.sum() > 0, s
    for s in range(4):
        assert _diff(smiles[s], smiles[s + 1])[mouth].sum() > 0, s
    # Sunglasses are the darkest thing on a blond head: their centroid follows the yaw.
    turned, _ = render(np.concatenate([face(eyeglasses=2, yaw=y) for y in range(5)]), 64)
    xs = [np.nonzero(img.sum(-1)[rows((0.36, 0.52), 64)] < 60)[1].mean() for img in turned]
    assert all(b > a for a, b in zip(xs, xs[1:])) and xs[-1] - xs[0] > 3, xs


def test_attributes_follow_the_factors():
    cases = {
        "grey": (face(hair_colour=4), {"Gray_Hair": 1, "Blond_Hair": 0, "Black_Hair": 0, "Brown_Hair": 0}),
        "beard": (face(sex=1, beard=2), {"No_Beard": 0, "Mustache": 0, "Male": 1}),
        "moustache": (face(sex=1, beard=1), {"No_Beard": 1, "Mustache": 1}),
        "full": (face(sex=1, beard=3), {"No_Beard": 0, "Mustache": 1}),
        "sun": (face(eyeglasses=2, smile=4), {"Eyeglasses": 1, "Smiling": 1}),
        "slight": (face(smile=2, age=1), {"Smiling": 0, "Young": 0, "Eyeglasses": 0}),
        "bangs": (face(hair_style=2, skin_tone=0, lipstick=1),
                  {"Bangs": 1, "Pale_Skin": 1, "Wearing_Lipstick": 1}),
        "bald": (face(hair_style=3, age=2), {"Bald": 1, "Bangs": 0, "Bags_Under_Eyes": 1}),
    }
    for name, (row, expected) in cases.items():
        attrs = attributes_from_factors(row)[0]
        assert attrs.dtype == np.float32
        for attr, value in expected.items():
            assert attrs[A[attr]] == value, (name, attr)


def test_prior_is_correlated_like_celeba():
    f = sample_factors(np.random.default_rng(0), 20_000)
    male, age = f[:, F["sex"]] == 1, f[:, F["age"]]
    beard = f[:, F["beard"]] >= 2
    grey = f[:, F["hair_colour"]] == 4
    long_hair = f[:, F["hair_style"]] == 1
    assert beard[male].mean() > 0.25 and beard[~male].mean() < 0.01
    assert grey[age == 2].mean() > 5 * grey[age == 0].mean()
    assert long_hair[~male].mean() > 4 * long_hair[male].mean()
    prevalence = attributes_from_factors(f).mean(0)
    assert (prevalence > 0.03).all() and (prevalence < 0.97).all(), dict(zip(ATTRIBUTE_NAMES, prevalence))
    fixed = sample_factors(np.random.default_rng(1), 500, fixed={"sex": 0, "eyeglasses": 2})
    assert (fixed[:, F["sex"]] == 0).all() and (fixed[:, F["eyeglasses"]] == 2).all()
    assert (fixed[:, F["beard"]] == 0).all()  # descendants follow the fixed value
    assert len(np.unique(fixed[:, F["bg_colour"]])) == FACTOR_SIZES[F["bg_colour"]]


def test_sample_attributes_conditions_on_targets_and_keeps_the_rest_consistent():
    a = sample_attributes(np.random.default_rng(0), 400, {"Male": 1})
    assert a.shape == (400, len(ATTRIBUTE_NAMES)) and (a[:, A["Male"]] == 1).all()
    assert a[:, A["Wearing_Lipstick"]].mean() < 0.02  # as the prior: men without lipstick
    assert a[:, A["Mustache"]].mean() > 0.1
    free = sample_attributes(np.random.default_rng(0), 2000)
    assert 0.3 < free[:, A["Male"]].mean() < 0.55  # no targets: the prior's prevalence
    with pytest.raises(ValueError, match="unknown attributes"):
        sample_attributes(np.random.default_rng(0), 2, {"Hat": 1})
    with pytest.raises(ValueError, match="too rare"):
        sample_attributes(np.random.default_rng(0), 2, {"Male": 0, "Mustache": 1}, max_draws=2000)


def test_uniform_prior_draws_independent_uniform_factors():
    f = sample_factors(np.random.default_rng(0), 20_000, prior="uniform")
    for k, size in enumerate(FACTOR_SIZES):  # every value of every factor, about equally often
        share = np.bincount(f[:, k], minlength=size) / len(f)
        assert np.abs(share - 1 / size).max() < 0.02, FACTOR_NAMES[k]
    male = f[:, F["sex"]] == 1
    # what the correlated prior never draws: lipstick and no beard alike on men and women
    assert abs((f[male, F["lipstick"]] == 1).mean() - 0.5) < 0.03
    assert abs((f[~male, F["beard"]] >= 2).mean() - 0.5) < 0.03
    fixed = sample_factors(np.random.default_rng(1), 500, fixed={"sex": 0}, prior="uniform")
    assert (fixed[:, F["sex"]] == 0).all() and (fixed[:, F["beard"]] > 0).any()
    ds = SynthFaces(size=16, length=2000, prior="uniform")
    assert ds.prior == "uniform" and (ds.factors(range(2000))[:, F["lipstick"]] == 1).mean() > 0.4
    # the same keys under another prior give other factors
    assert not np.array_equal(ds.factors(range(50)), SynthFaces(size=16, length=2000).factors(range(50)))
    with pytest.raises(ValueError, match="unknown factor prior 'flat'.*correlated, uniform"):
        SynthFaces(size=16, prior="flat")


def test_mask_covers_the_person_not_the_corners():
    _, masks = render(sample_factors(np.random.default_rng(2), 16), 64, seeds=np.arange(16))
    assert masks.dtype == np.float32 and masks.min() >= 0 and masks.max() <= 1
    assert (masks[:, 28:36, 28:36] > 0.99).all()
    for corner in (masks[:, :4, :4], masks[:, :4, -4:], masks[:, -2:, :2], masks[:, -2:, -2:]):
        assert (corner < 0.01).all()
    edge = ((masks > 0.05) & (masks < 0.95)).sum((1, 2))
    assert (edge > 10).all()  # anti-aliased: soft edge pixels on every outline


def test_grey_and_blur_backgrounds_use_the_mask():
    grey = SynthFaces(size=32, length=8, seed=5, background="grey")
    orig = SynthFaces(size=32, length=8, seed=5)
    blur = SynthFaces(size=32, length=8, seed=5, background="blur")
    for i in range(4):
        g, o, b = grey[i], orig[i], blur[i]
        back = g["mask"][0] < 0.01
        pixels = (g["image"].permute(1, 2, 0)[back] + 1) * 127.5
        assert (pixels - 127).abs().max() <= 1.0
        solid = g["mask"][0] > 0.999
        assert torch.allclose(g["image"][:, solid], o["image"][:, solid], atol=1e-6)
        assert torch.allclose(b["image"][:, solid], o["image"][:, solid], atol=1e-6)
        assert not torch.equal(b["image"], o["image"])


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_every_size_renders_the_same_face(size):
    f = face(hair_style=1, eyeglasses=1, beard=0)
    img, mask = render(f, size)
    assert img.shape == (1, size, size, 3) and img.dtype == np.uint8 and mask.shape == (1, size, size)
    ref_img, ref_mask = render(f, 32)
    assert abs(mask.mean() - ref_mask.mean()) < 0.02
    small = img.reshape(1, 32, size // 32, 32, size // 32, 3).mean((2, 4))
    assert np.abs(small - ref_img).mean() < 12


def test_seeds_change_nuisance_only():
    f = np.repeat(face(bg_kind=4), 2, axis=0)
    imgs, masks = render(f, 32, seeds=np.array([0, 1]))
    assert np.array_equal(masks[0], masks[1]) and not np.array_equal(imgs[0], imgs[1])
    again, _ = render(f, 32, seeds=np.array([0, 1]))
    assert np.array_equal(imgs, again)
    with pytest.raises(ValueError, match="seeds"):
        render(f, 32, seeds=np.array([0]))
