"""Latents for probes: posterior means per level (VAE, HVAE), labelled GAN samples, and the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelab.data.synthfaces import FACTOR_NAMES, SynthFaces
from facelab.models.classifier import AttributeClassifier
from facelab.models import DCGAN, VAE, HierarchicalVAE, StyleGAN
from facelab.probes.encode import encode_dataset, fingerprint, generate_latents, load_encoded


def _train(model, data, steps: int = 4):
    """A few optimiser steps on synthfaces: enough that the weights are no longer the initial ones."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for s in range(steps):
        batch = data.__getitems__(list(range(8 * s, 8 * s + 8)))
        loss = model.loss({"image": torch.stack([b["image"] for b in batch])})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def data():
    return SynthFaces(size=16, length=48, seed=3)


@pytest.fixture(scope="module")
def vae(data):
    torch.manual_seed(0)
    return _train(VAE(image_size=16, latent_dim=6, base_channels=8, max_channels=16), data)


@pytest.fixture(scope="module")
def hvae(data):
    torch.manual_seed(0)
    return _train(HierarchicalVAE(image_size=16, width=16, group_resolutions=(1, 4, 8), latent_channels=3), data)


def test_vae_posterior_means_shapes_labels_and_factors(vae, data, tmp_path):
    enc = encode_dataset(vae, data, n=20, batch_size=8, cache_dir=tmp_path)
    assert enc.level_names == ["z"] and enc.source == "dataset" and enc.n == 20
    assert enc.levels[0].shape == (20, 6) and enc.levels[0].dtype == np.float32
    items = data.__getitems__(list(range(20)))
    np.testing.assert_array_equal(enc.labels, np.stack([i["attributes"].numpy() for i in items]))
    np.testing.assert_array_equal(enc.factors, np.stack([i["factors"].numpy() for i in items]))
    assert enc.factor_names == FACTOR_NAMES and enc.attribute_names == data.attribute_names
    # posterior means: the encoder's mu of exactly those images, batch-independent (eval mode)
    with torch.no_grad():
        mu = vae.encode(torch.stack([i["image"] for i in items[:5]]))[0]
    np.testing.assert_allclose(enc.levels[0][:5], mu.numpy(), rtol=1e-4, atol=1e-5)


def test_hvae_levels_are_flattened_per_group(hvae, data, tmp_path):
    enc = encode_dataset(hvae, data, n=12, batch_size=5, cache_dir=tmp_path)
    assert enc.level_names == ["z0", "z1", "z2"]
    assert [x.shape for x in enc.levels] == [(12, 3), (12, 3 * 4 * 4), (12, 3 * 8 * 8)]
    with torch.no_grad():
        zs = hvae.encode(torch.stack([data[i]["image"] for i in range(3)]))
    for x, z in zip(enc.levels, zs):
        np.testing.assert_allclose(x[:3], z.reshape(3, -1).numpy(), rtol=1e-4, atol=1e-5)


def test_encoding_runs_in_eval_mode_and_restores_train_mode(vae, data, tmp_path):
    ref = encode_dataset(vae, data, n=16, batch_size=16, use_cache=False)
    vae.train()  # BatchNorm in train mode would make each mean depend on its batch
    try:
        enc = encode_dataset(vae, data, n=16, batch_size=3, use_cache=False)
        assert vae.training
    finally:
        vae.eval()
    np.testing.assert_allclose(enc.levels[0], ref.levels[0], rtol=1e-4, atol=1e-5)


def test_cache_is_read_back_and_invalidated_by_new_weights(vae, data, tmp_path):
    first = encode_dataset(vae, data, n=10, batch_size=4, cache_dir=tmp_path)
    files = sorted(tmp_path.glob("*.safetensors"))
    assert len(files) == 1 and not first.info["from_cache"]
    second = encode_dataset(vae, data, n=10, batch_size=4, cache_dir=tmp_path)
    assert second.info["from_cache"]
    np.testing.assert_array_equal(second.levels[0], first.levels[0])
    np.testing.assert_array_equal(second.factors, first.factors)
    assert load_encoded(files[0]).attribute_names == data.attribute_names
    # the cache is keyed by n and by the dataset too
    assert not encode_dataset(vae, data, n=9, batch_size=4, cache_dir=tmp_path).info["from_cache"]
    other = SynthFaces(size=16, length=48, seed=4)
    assert not encode_dataset(vae, other, n=10, batch_size=4, cache_dir=tmp_path).info["from_cache"]
    # changing one weight changes the fingerprint, so the stale file is not read
    before = fingerprint(vae)
    p = vae.to_posterior.bias  # shifts every posterior mean
    saved = p.detach().clone()
    with torch.no_grad():
        p.add_(0.5)
    try:
        assert fingerprint(vae) != before
        third = encode_dataset(vae, data, n=10, batch_size=4, cache_dir=tmp_path)
        assert not third.info["from_cache"]
        assert not np.allclose(third.levels[0], first.levels[0])
    finally:
        with torch.no_grad():
            p.copy_(saved)
    assert fingerprint(vae) == before


def test_gan_latents_are_labelled_by_the_image_classifier(tmp_path):
    torch.manual_seed(0)
    clf = AttributeClassifier(attribute_names=["A", "B"], image_size=16, widths=(8, 16)).eval()
    gan = DCGAN(image_size=16, nz=8, ngf=8, ndf=8).eval()
    enc = generate_latents(gan, 10, clf, batch_size=4, seed=1, cache_dir=tmp_path)
    assert enc.source == "generated" and enc.level_names == ["z"] and enc.levels[0].shape == (10, 8)
    images = gan.generate(torch.from_numpy(enc.levels[0]))
    np.testing.assert_array_equal(enc.labels, (clf.predict(images).numpy() > 0.5).astype(np.float32))
    assert enc.attribute_names == ["A", "B"] and enc.factors is None
    # same seed, same latents; and a read from the cache
    again = generate_latents(gan, 10, clf, batch_size=4, seed=1, cache_dir=tmp_path)
    assert again.info["from_cache"]
    np.testing.assert_array_equal(again.levels[0], enc.levels[0])
    with pytest.raises(ValueError, match="attribute classifier"):
        generate_latents(gan, 4, None)


def test_vae_prior_samples_can_be_labelled_instead_of_encoded(vae, tmp_path):
    clf = AttributeClassifier(attribute_names=["A"], image_size=16, widths=(8,)).eval()
    enc = generate_latents(vae, 9, clf, batch_size=4, seed=2, cache_dir=tmp_path)
    assert enc.source == "generated" and enc.levels[0].shape == (9, 6)
    z = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))  # the first batch's draw
    np.testing.assert_allclose(enc.levels[0][:4], z.numpy())
    with torch.no_grad():
        probs = clf.predict(vae.decode([torch.from_numpy(enc.levels[0])])).numpy()
    np.testing.assert_array_equal(enc.labels, (probs > 0.5).astype(np.float32))


def test_stylegan_gives_z_and_w(tmp_path):
    torch.manual_seed(0)
    clf = AttributeClassifier(attribute_names=["A"], image_size=16, widths=(8,)).eval()
    sg = StyleGAN(image_size=16, z_dim=16, w_dim=12, mapping_layers=2, channel_base=128, channel_max=16).eval()
    enc = generate_latents(sg, 6, clf, batch_size=4, cache_dir=tmp_path)
    assert enc.level_names == ["z", "w"] and [x.shape for x in enc.levels] == [(6, 16), (6, 12)]
    w = sg.mapping(torch.from_numpy(enc.levels[0]))[:, 0]
    np.testing.assert_allclose(enc.levels[1], w.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_gan_has_no_posterior_means(data):
    with pytest.raises(ValueError, match="no encoder"):
        encode_dataset(DCGAN(image_size=16, nz=8, ngf=8, ndf=8), data, n=4)
