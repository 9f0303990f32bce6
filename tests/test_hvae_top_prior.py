"""Fitted top-level prior of the HVAE: the mixture fit recovers known clusters, the HVAE draws level 0
from it (and every finer level from its learned priors given it), and training/fit_hvae_prior.py writes
a bundle with it that loads and samples."""

import sys
from pathlib import Path

import pytest
import torch

from facelab.hub import load_bundle, save_bundle
from facelab.models.hvae import HierarchicalVAE
from facelab.models.latent_prior import GaussianMixturePrior

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import fit_hvae_prior  # noqa: E402


def _clusters(n: int = 3000):
    """Two well-separated Gaussian clusters in 4-d, weights 0.7 / 0.3, spreads 0.1 / 0.3."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[3.0, 0, 0, 0], [-3.0, 1, 0, 0]])
    which = (torch.rand(n, generator=g) < 0.3).long()
    spread = torch.tensor([0.1, 0.3])[which][:, None]
    return centres, centres[which] + spread * torch.randn(n, 4, generator=g)


def test_mixture_fit_recovers_clusters_and_samples_them():
    centres, z = _clusters()
    prior = GaussianMixturePrior(2, 4)
    report = prior.fit(z)
    assert report["converged"] and report["n"] == 3000
    order = prior.means[:, 0].argsort(descending=True)
    assert torch.allclose(prior.means[order], centres, atol=0.05)
    assert torch.allclose(prior.weights[order], torch.tensor([0.7, 0.3], dtype=prior.weights.dtype), atol=0.03)
    draws = prior.sample(4000, generator=torch.Generator().manual_seed(1))
    assert abs(float((draws[:, 0] > 0).float().mean()) - 0.7) < 0.03  # components drawn by weight
    cold = prior.sample(50, temperature=0.0, generator=torch.Generator().manual_seed(1))
    assert all(torch.isclose(c, prior.means.float(), atol=1e-5).all(1).any() for c in cold)  # T = 0: a mean
    mean, std = prior.moments()
    assert torch.allclose(mean, z.mean(0), atol=0.05) and torch.allclose(std, z.std(0), atol=0.05)
    with pytest.raises(ValueError, match="at least"):
        prior.fit(z[:10])


def _tiny(**kw) -> HierarchicalVAE:
    return HierarchicalVAE(image_size=16, patch_size=1, width=16, group_resolutions=(1, 2, 4),
                           latent_channels=4, **kw).eval()


def test_hvae_draws_level_zero_from_the_mixture_and_the_rest_given_it():
    model = _tiny(top_prior_components=1)
    assert model.has_top_prior and not _tiny().has_top_prior
    with torch.no_grad():
        model.top_prior.means.fill_(5.0)  # far from anything the learned prior would give
        model.top_prior.scale_trils.mul_(0.01)
    _, zs = model.sample(3, return_latents=True, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(zs[0], torch.full_like(zs[0], 5.0), atol=0.1)
    assert zs[1].shape == (3, 4, 2, 2)
    # fixed levels win over the mixture; sample_level / prior_params use it for level 0 only
    _, fixed = model.sample(2, fixed={0: torch.zeros(4, 1, 1)}, return_latents=True)
    assert torch.equal(fixed[0], torch.zeros(2, 4, 1, 1))
    assert torch.allclose(model.sample_level(0, [], n=2), torch.full((2, 4, 1, 1), 5.0), atol=0.1)
    mean, std = model.prior_params([], n=2)
    assert torch.allclose(mean, torch.full((2, 4, 1, 1), 5.0)) and std.max() < 0.02
    with pytest.raises(ValueError, match="top_prior_components"):
        _tiny(top_prior_components=-1)


def test_fit_script_writes_a_bundle_that_samples_from_its_mixture(tmp_path, capsys):
    src, out = tmp_path / "hvae", tmp_path / "fitted"
    save_bundle(_tiny(), src, {"dataset": "synthfaces", "background": "original", "kind": "hvae"})
    assert fit_hvae_prior.main([str(src), "--out", str(out), "--n", "64", "--components", "2",
                                "--batch-size", "32"]) == 0
    bundle = load_bundle(out, with_probes=False)
    assert bundle.model.config.top_prior_components == 2 and bundle.meta["latent_prior"]["n"] == 64
    assert bundle.model.top_prior.means.abs().sum() > 0  # fitted, not left at zero
    assert not load_bundle(src, with_probes=False).model.has_top_prior  # source untouched
    images = bundle.model.sample(4, generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 3, 16, 16) and torch.isfinite(images).all()
    assert "2-component mixture to level 0 of 64 faces" in capsys.readouterr().out
    from facelab.cards import model_card
    card = model_card({**bundle.meta, "sampling": {"level_temperatures": [1, 0.5, 0.3]}})
    assert "## Fitted top-level prior" in card and "2-component Gaussian mixture" in card
    assert "Conditional prior" not in card and "temperatures at 1, 0.5, 0.3" in card
    # refitting replaces the earlier fit, with another number of components
    assert fit_hvae_prior.main([str(out), "--n", "64", "--components", "3", "--batch-size", "32"]) == 0
    assert load_bundle(out, with_probes=False).model.top_prior.means.shape == (3, 4)
    from facelab.models.vae import VAE
    save_bundle(VAE(image_size=16, latent_dim=8, base_channels=8, max_channels=16), tmp_path / "vae", {})
    assert fit_hvae_prior.main([str(tmp_path / "vae"), "--n", "40"]) == 2
    assert "hierarchical VAEs" in capsys.readouterr().err
