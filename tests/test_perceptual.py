"""Feature-matching reconstruction term (VAE perceptual_weight / perceptual_net)."""

from __future__ import annotations

import pytest
import torch

from facelab.data.synthfaces import SynthFaces
from facelab.models.classifier import AttributeClassifier
from facelab.models.perceptual import FeatureLoss, build_feature_net
from facelab.models.vae import VAE, ConditionalVAE

KW = dict(image_size=16, latent_dim=8, base_channels=8, max_channels=16)


def _faces(n: int = 4, size: int = 16) -> dict[str, torch.Tensor]:
    return torch.utils.data.default_collate(SynthFaces(size=size, length=n).__getitems__(list(range(n))))


def test_random_feature_net_is_fixed_and_frozen():
    torch.manual_seed(123)
    a = build_feature_net("random", 16)
    torch.manual_seed(456)
    b = build_feature_net("random", 16)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not any(p.requires_grad for p in a.parameters())
    assert not a.training
    # building it must not consume the caller's random stream
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    build_feature_net("random", 16)
    assert torch.equal(torch.rand(3), expected)


def test_feature_loss_is_zero_only_for_equal_images_and_grads_reach_the_reconstruction():
    loss = FeatureLoss(build_feature_net("random", 16))
    x = _faces()["image"]
    assert torch.allclose(loss(x, x), torch.zeros(len(x)))
    recon = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1).requires_grad_(True)
    target = x.clone().requires_grad_(True)
    value = loss(recon, target)
    assert value.shape == (len(x),) and bool((value > 0).all())
    value.sum().backward()
    assert recon.grad is not None and recon.grad.abs().sum() > 0
    assert target.grad is None  # the input is a constant target


def test_vae_adds_the_weighted_feature_term_in_training_only():
    torch.manual_seed(0)
    plain, matched = VAE(**KW), VAE(**KW, perceptual_weight=0.5)
    matched.load_state_dict(plain.state_dict())
    batch = _faces()

    def run(model: VAE) -> dict[str, torch.Tensor]:
        torch.manual_seed(1)  # the same posterior noise for both models
        return model(batch)

    a, b = run(plain), run(matched)
    assert "perceptual" not in a and float(b["perceptual"]) > 0
    assert float(b["recon"]) == pytest.approx(float(a["recon"]))  # the pixel term is unchanged
    assert float(b["loss"].detach()) == pytest.approx(float(a["loss"].detach()) + 0.5 * float(b["perceptual"]), rel=1e-5)
    b["loss"].backward()
    assert all(p.grad is not None for p in matched.decoder.parameters() if p.requires_grad)
    plain.eval(), matched.eval()
    a, b = run(plain), run(matched)
    assert "perceptual" not in b  # evaluation: the true ELBO
    assert float(b["loss"].detach()) == pytest.approx(float(a["loss"].detach()))


def test_feature_net_stays_out_of_the_weights():
    model = VAE(**KW, perceptual_weight=1.0)
    keys = set(model.state_dict())
    model(_faces())
    assert set(model.state_dict()) == keys == set(VAE(**KW).state_dict())
    assert not any(name.startswith("_features") for name, _ in model.named_parameters())


def test_trained_classifier_folder_as_feature_net(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "classifier"
    AttributeClassifier(attribute_names=["Smiling", "Male"], image_size=16, widths=[8, 16]).save_pretrained(folder)
    model = ConditionalVAE(**KW, num_attributes=2, perceptual_weight=0.1, perceptual_net=str(folder))
    out = model({**_faces(), "attributes": torch.zeros(4, 2)})
    assert float(out["perceptual"]) > 0
    net = model._feature_loss().net
    assert list(net.config.widths) == [8, 16]  # the folder's network, not the random default


def test_bad_perceptual_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="perceptual_weight"):
        VAE(**KW, perceptual_weight=-1.0)
    model = VAE(**KW, perceptual_weight=1.0, perceptual_net=str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="train_classifier.py"):
        model(_faces())
    # a pixel-only model never builds the net, so a stale path does not matter
    VAE(**KW, perceptual_net=str(tmp_path / "missing"))(_faces())
