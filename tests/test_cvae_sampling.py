"""CVAE sampling levers: condition strength and the image-classifier filter (facelab.models.cvae_sampling)."""

import pytest
import torch

from facelab.models.classifier import AttributeClassifier
from facelab.models.cvae_sampling import MAX_DRAWS_PER_FACE, sample_cvae, strengthen
from facelab.models.vae import ConditionalVAE

NAMES = ["Male", "Smiling", "Eyeglasses"]


def _cvae() -> ConditionalVAE:
    torch.manual_seed(0)
    return ConditionalVAE(image_size=16, num_attributes=3, attribute_names=NAMES, latent_dim=8,
                          base_channels=8, max_channels=16).eval()


def _rows(k: int) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, 1.0]]).repeat(k, 1)


def _classifier(bias: float = 0.0) -> AttributeClassifier:
    torch.manual_seed(1)
    clf = AttributeClassifier(attribute_names=["Smiling", "Male"], image_size=16, widths=(4, 8)).eval()
    with torch.no_grad():
        clf.head.weight.zero_()
        clf.head.bias.fill_(bias)
    return clf


def test_strengthen_sets_only_the_targeted_columns():
    out = strengthen(_rows(2), {0: 1, 1: 0}, 1.5)
    assert out.tolist() == [[1.5, -0.5, 1.0]] * 2
    assert strengthen(_rows(1), {2: 1}, 1.0).tolist() == _rows(1).tolist()
    with pytest.raises(ValueError, match="strength"):
        strengthen(_rows(1), {0: 1}, 0.5)


def test_strength_changes_the_faces_and_plain_draws_accept_all():
    model = _cvae()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = sample_cvae(model, _rows, {"Male": 1}, 4, generator=g())
    strong = sample_cvae(model, _rows, {"Male": 1}, 4, strength=2.0, generator=g())
    assert plain.acceptance_rate == 1.0 and plain.images.shape == (4, 3, 16, 16)
    assert strong.attributes[:, 0].tolist() == [2.0] * 4
    assert (plain.images - strong.images).abs().mean() > 1e-4
    with pytest.raises(ValueError, match="not conditioned on"):
        sample_cvae(model, _rows, {"Bald": 1}, 2)


def _splitting_classifier(model: ConditionalVAE) -> AttributeClassifier:
    """A classifier whose Male probability crosses 0.5 in the middle of the model's samples."""
    clf = _classifier()
    torch.manual_seed(2)
    with torch.no_grad():
        clf.head.weight.normal_()
        images = model.sample(64, generator=torch.Generator().manual_seed(9), attributes=_rows(64))
        logits = clf(images)[:, 1]
        scale = 10.0 / logits.std()
        clf.head.weight.mul_(scale)
        clf.head.bias.fill_(-float(logits.median() * scale))
    return clf


def test_filter_returns_only_faces_the_classifier_accepts():
    model = _cvae()
    clf = _splitting_classifier(model)
    got = sample_cvae(model, _rows, {"Male": 1}, 8, generator=torch.Generator().manual_seed(0),
                      classifier=clf, confidence=0.7)
    assert 0.0 < got.acceptance_rate < 1.0  # the random head splits the draws
    assert len(got.images) == 8
    assert (clf.predict(got.images)[:, 1] >= 0.7).all()  # column of Male in the classifier's order


def test_filter_gives_up_after_the_draw_budget():
    model = _cvae()
    always_male = _classifier(bias=8.0)
    got = sample_cvae(model, _rows, {"Male": 0}, 2, classifier=always_male)
    assert len(got.images) == 0 and got.draws >= MAX_DRAWS_PER_FACE * 2 and got.acceptance_rate == 0.0
    assert len(sample_cvae(model, _rows, {"Male": 1}, 2, classifier=always_male).images) == 2
    with pytest.raises(ValueError, match="does not predict"):
        sample_cvae(model, _rows, {"Eyeglasses": 1}, 2, classifier=always_male)
    with pytest.raises(ValueError, match="confidence"):
        sample_cvae(model, _rows, {"Male": 1}, 2, classifier=always_male, confidence=0.3)
