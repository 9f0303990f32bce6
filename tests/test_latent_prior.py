"""Fitted conditional prior p(z | a) for the CVAE: the fit recovers a known linear-Gaussian law,
sampling follows it, it survives save/load, and training/fit_cvae_prior.py writes a bundle with it."""

import sys
from pathlib import Path

import pytest
import torch

from facelab.data.synthfaces_factors import ATTRIBUTE_NAMES
from facelab.hub import load_bundle, save_bundle
from facelab.models.latent_prior import ConditionalGaussianPrior
from facelab.models.vae import ConditionalVAE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import fit_cvae_prior  # noqa: E402


def _known_law(n: int = 4000):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 5, generator=g)
    b = torch.randn(5, generator=g)
    a = (torch.rand(n, 3, generator=g) < 0.4).float()
    mu = a @ w + b + 0.5 * torch.randn(n, 5, generator=g)
    logvar = torch.full((n, 5), 2 * torch.log(torch.tensor(0.3)).item())
    return w, b, a, mu, logvar


def test_fit_recovers_weights_and_spread():
    w, b, a, mu, logvar = _known_law()
    prior = ConditionalGaussianPrior(3, 5)
    report = prior.fit(mu, logvar, a)
    assert torch.allclose(prior.weight, w, atol=0.08) and torch.allclose(prior.bias, b, atol=0.08)
    # spread = residual (0.5²) + posterior variance (0.3²) on the diagonal
    var = (prior.scale_tril @ prior.scale_tril.T).diagonal()
    assert torch.allclose(var, torch.full((5,), 0.25 + 0.09), atol=0.04)
    assert 0.5 < report["mean_r2"] < 1.0 and report["n"] == 4000


def test_sample_follows_the_attributes_and_temperature():
    w, b, a, mu, logvar = _known_law()
    prior = ConditionalGaussianPrior(3, 5)
    prior.fit(mu, logvar, a)
    rows = torch.tensor([[1.0, 0.0, 1.0]]).expand(3000, 3)
    z = prior.sample(rows, 1.0, torch.Generator().manual_seed(1))
    assert torch.allclose(z.mean(0), rows[0] @ w + b, atol=0.06)
    cold = prior.sample(rows[:4], 0.0, torch.Generator().manual_seed(1))
    assert torch.allclose(cold, (rows[:4] @ prior.weight + prior.bias), atol=1e-6)


def test_fit_refuses_mismatched_or_too_few_rows():
    prior = ConditionalGaussianPrior(3, 5)
    with pytest.raises(ValueError, match="share N"):
        prior.fit(torch.zeros(10, 5), torch.zeros(10, 5), torch.zeros(9, 3))
    with pytest.raises(ValueError, match="more than 4"):
        prior.fit(torch.zeros(4, 5), torch.zeros(4, 5), torch.zeros(4, 3))


def _tiny_cvae(**kw) -> ConditionalVAE:
    return ConditionalVAE(image_size=16, num_attributes=len(ATTRIBUTE_NAMES), attribute_names=list(ATTRIBUTE_NAMES),
                          latent_dim=8, base_channels=8, max_channels=16, **kw).eval()


def test_cvae_with_fitted_prior_samples_from_it_and_round_trips(tmp_path):
    model = _tiny_cvae(prior="fitted")
    model.latent_prior.bias.fill_(3.0)  # a prior far from N(0, I) must change the images
    attrs = torch.zeros(len(ATTRIBUTE_NAMES))
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    standard = _tiny_cvae()
    standard.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("latent_prior")})
    fitted_images = model.sample(4, attributes=attrs, generator=g())
    assert (fitted_images - standard.sample(4, attributes=attrs, generator=g())).abs().mean() > 1e-3
    model.save_pretrained(tmp_path)
    loaded = ConditionalVAE.from_pretrained(tmp_path).eval()
    assert loaded.config.prior == "fitted" and torch.equal(loaded.latent_prior.bias, model.latent_prior.bias)
    assert torch.equal(loaded.sample(4, attributes=attrs, generator=g()), fitted_images)
    with pytest.raises(ValueError, match="prior must be"):
        _tiny_cvae(prior="gmm")


def test_fit_script_writes_a_bundle_whose_prior_moves_with_the_attributes(tmp_path, capsys):
    src, out = tmp_path / "cvae", tmp_path / "fitted"
    save_bundle(_tiny_cvae(), src, {"dataset": "synthfaces", "background": "original",
                                    "attribute_names": list(ATTRIBUTE_NAMES)})
    assert fit_cvae_prior.main([str(src), "--out", str(out), "--n", "96", "--batch-size", "32"]) == 0
    bundle = load_bundle(out, with_probes=False)
    assert bundle.model.config.prior == "fitted" and bundle.meta["latent_prior"]["n"] == 96
    assert bundle.model.latent_prior.weight.abs().sum() > 0  # fitted, not left at zero
    assert load_bundle(src, with_probes=False).model.config.prior == "standard"  # source untouched
    assert "fitted p(z | a) on 96 images" in capsys.readouterr().out
    # not a CVAE: refused with a message, nothing written
    from facelab.models.vae import VAE
    save_bundle(VAE(image_size=16, latent_dim=8, base_channels=8, max_channels=16), tmp_path / "vae", {})
    assert fit_cvae_prior.main([str(tmp_path / "vae"), "--n", "40"]) == 2
    assert "conditional VAEs" in capsys.readouterr().err
