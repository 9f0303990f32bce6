"""VAE / β-VAE / ConditionalVAE: shapes, losses, schedules reaching the loss, round trips, sampling."""

import pytest
import torch

from facelab.models.base import LevelSpec
from facelab.models.vae import VAE, ConditionalVAE

TINY = dict(latent_dim=8, base_channels=8, max_channels=32)


def _images(n: int = 8, size: int = 16) -> torch.Tensor:
    """A fixed structured batch: smooth colour ramps with a bright square per image."""
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(-1, 1, size)
    x = (ramp[None, None, :, None] * torch.rand(n, 3, 1, 1, generator=g)).expand(n, 3, size, size).clone()
    for i in range(n):
        r, c = (i * 3) % (size // 2), (i * 5) % (size // 2)
        x[i, :, r:r + size // 4, c:c + size // 4] = 0.8
    return x.clamp(-1, 1)


def _warm(model: VAE, x: torch.Tensor, attrs: torch.Tensor | None = None) -> None:
    """A few train-mode forwards so BatchNorm running statistics are not the defaults."""
    model.train()
    batch = {"image": x} if attrs is None else {"image": x, "attributes": attrs}
    with torch.no_grad():
        for _ in range(3):
            model(batch)
    model.eval()


@pytest.mark.parametrize("arch", ["conv", "resnet"])
@pytest.mark.parametrize("size", [16, 32])
def test_shapes(arch, size):
    model = VAE(image_size=size, arch=arch, **TINY).eval()
    x = _images(4, size)
    (mu,) = model.encode(x)
    assert mu.shape == (4, 8)
    out = model.decode([mu])
    assert out.shape == (4, 3, size, size) and out.abs().max() <= 1
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(3).shape == (3, 3, size, size)
    assert model.latent_levels == [LevelSpec("z", (8,))]
    assert model.is_encoder and not model.is_gan and not model.is_conditional and model.kind == "vae"


@pytest.mark.parametrize("latent_dim", [32, 256])
def test_latent_size_is_configurable(latent_dim):
    model = VAE(image_size=16, latent_dim=latent_dim, base_channels=8, max_channels=32).eval()
    assert model.encode(_images(2))[0].shape == (2, latent_dim)
    assert model.latent_levels[0].size == latent_dim
    assert model.sample(2).shape == (2, 3, 16, 16)


def test_image_size_sets_number_of_downsamplings():
    small, large = VAE(image_size=16, **TINY), VAE(image_size=64, **TINY)
    n_convs = lambda m: sum(isinstance(x, torch.nn.Conv2d) for x in m.encoder.modules())  # noqa: E731
    assert n_convs(large) == n_convs(small) + 2
    with pytest.raises(ValueError):
        VAE(image_size=48)


@pytest.mark.parametrize("recon", ["mse", "bce", "gaussian"])
def test_losses_finite_for_each_reconstruction(recon):
    model = VAE(image_size=16, recon=recon, **TINY)
    out = model({"image": _images()}, step=0)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert out["loss"].dim() == 0 and out["loss"].requires_grad
    # per-sample sums: recon is summed over 3·16·16 pixels, mse is the per-pixel mean
    if recon == "mse":
        assert out["recon"].item() == pytest.approx(out["mse"].item() * 3 * 16 * 16, rel=1e-4)


def test_gaussian_learns_sigma_and_reports_bits_per_dim():
    model = VAE(image_size=16, recon="gaussian", log_sigma=-1.0, **TINY)
    out = model({"image": _images()})
    out["loss"].backward()
    assert model.decoder_log_sigma.grad is not None and model.decoder_log_sigma.grad.abs() > 0
    assert out["log_sigma"].item() == pytest.approx(-1.0)
    expected = (out["recon"] + out["kl"]) / (3 * 16 * 16 * torch.log(torch.tensor(2.0))) + 7
    assert out["bits_per_dim"].item() == pytest.approx(expected.item(), rel=1e-5)
    fixed = VAE(image_size=16, recon="gaussian", learn_sigma=False, **TINY)
    trained = fixed.configure_optimizers()["model"].param_groups[0]["params"]
    assert all(p is not fixed.decoder_log_sigma for p in trained)


@pytest.mark.parametrize("arch", ["conv", "resnet"])
def test_adam_steps_lower_the_loss_on_a_fixed_batch(arch):
    model = VAE(image_size=16, arch=arch, **TINY)
    opt = model.configure_optimizers(lr=2e-3)["model"]
    assert isinstance(opt, torch.optim.Adam)
    batch = {"image": _images()}

    def loss_at_fixed_noise() -> float:
        torch.manual_seed(123)
        with torch.no_grad():
            return model(batch)["loss"].item()

    before = loss_at_fixed_noise()
    for step in range(25):
        loss = model(batch, step)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_at_fixed_noise() < 0.7 * before


def test_warmup_schedule_sets_the_beta_the_loss_uses():
    model = VAE(image_size=16, beta_schedule="warmup", beta=4.0, warmup_steps=10, **TINY)
    batch = {"image": _images()}
    for step, beta in [(0, 0.0), (5, 2.0), (10, 4.0), (50, 4.0)]:
        out = model(batch, step)
        assert out["beta"].item() == pytest.approx(beta)
        assert out["loss"].item() == pytest.approx(out["recon"].item() + beta * out["kl"].item(), rel=1e-5)
    # same noise, different step → a different total: the schedule reached the model
    torch.manual_seed(7)
    early = model(batch, 0)["loss"].item()
    torch.manual_seed(7)
    late = model(batch, 10)["loss"].item()
    assert late > early


def test_beta_vae_is_a_configuration_and_alpha_weights_reconstruction():
    model = VAE(image_size=16, beta=4.0, alpha=2.0, **TINY)
    assert type(model) is VAE and model.config.beta == 4.0
    out = model({"image": _images()}, step=123)
    assert out["beta"].item() == 4.0
    assert out["loss"].item() == pytest.approx(2.0 * out["recon"].item() + 4.0 * out["kl"].item(), rel=1e-5)


def test_cyclical_schedule_restarts_in_the_loss():
    model = VAE(image_size=16, beta_schedule="cyclical", beta=1.0, cycle_steps=20, cycle_ratio=0.5, **TINY)
    batch = {"image": _images()}
    assert [model(batch, s)["beta"].item() for s in (0, 5, 10, 19, 20)] == pytest.approx([0, 0.5, 1, 1, 0])


def test_final_beta_lowers_the_kl_weight_in_the_loss_and_survives_save_load(tmp_path):
    model = VAE(image_size=16, beta_schedule="warmup", beta=4.0, warmup_steps=10, beta_final=1.0,
                beta_final_start=100, **TINY)
    batch = {"image": _images()}
    assert [model(batch, s)["beta"].item() for s in (5, 99, 100, 500)] == pytest.approx([2.0, 4.0, 1.0, 1.0])
    model.save_pretrained(tmp_path)
    assert VAE.from_pretrained(tmp_path).schedule.value(100) == 1.0
    with pytest.raises(ValueError, match="final_beta"):
        VAE(image_size=16, beta_schedule="capacity", beta_final=1.0, **TINY)


def test_capacity_annealing_term_in_the_loss():
    model = VAE(image_size=16, beta_schedule="capacity", gamma=10.0, c_max=30.0, c_steps=100, **TINY)
    batch = {"image": _images()}
    for step, c in [(0, 0.0), (50, 15.0), (100, 30.0), (400, 30.0)]:
        out = model(batch, step)
        assert out["capacity"].item() == pytest.approx(c)
        assert out["beta"].item() == 10.0
        expected = out["recon"].item() + 10.0 * abs(out["kl"].item() - c)
        assert out["loss"].item() == pytest.approx(expected, rel=1e-5)


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    x = _images()
    model = VAE(image_size=16, recon="gaussian", log_sigma=-0.5, beta=3.0, **TINY)
    _warm(model, x)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = VAE.from_pretrained(tmp_path).eval()
    assert loaded.config.beta == 3.0 and loaded.config.recon == "gaussian"
    assert torch.equal(model.encode(x)[0], loaded.encode(x)[0])
    z = torch.randn(4, 8)
    assert torch.equal(model.decode([z]), loaded.decode([z]))
    s1 = model.sample(4, generator=torch.Generator().manual_seed(3))
    s2 = loaded.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s1, s2)
    assert loaded.decoder_log_sigma.item() == pytest.approx(-0.5) and loaded.decoder_log_sigma.requires_grad


def test_sampling_is_deterministic_given_a_generator():
    model = VAE(image_size=16, **TINY)
    _warm(model, _images())
    a = model.sample(4, generator=torch.Generator().manual_seed(0))
    b = model.sample(4, generator=torch.Generator().manual_seed(0))
    c = model.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    cold = model.sample(4, temperature=0.0, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(cold, cold[:1].expand_as(cold))


def test_eval_mode_encode_does_not_depend_on_the_batch():
    model = VAE(image_size=16, **TINY)
    x = _images()
    _warm(model, x)
    assert torch.allclose(model.encode(x[:1])[0], model.encode(x)[0][:1], atol=1e-5)


@pytest.mark.parametrize("arch", ["conv", "resnet"])
def test_bf16_autocast_forward_gives_finite_fp32_loss(arch):
    model = VAE(image_size=16, arch=arch, **TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model({"image": _images(4)})
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _cvae(**kw) -> ConditionalVAE:
    return ConditionalVAE(image_size=16, num_attributes=3, attribute_names=["Male", "Smiling", "Eyeglasses"],
                          **TINY, **kw)


def test_cvae_attributes_change_decoded_images():
    model = _cvae()
    assert model.is_conditional and model.kind == "cvae"
    _warm(model, _images(), torch.ones(8, 3))
    z = torch.randn(2, 8)
    a = model.decode([z], attributes=torch.tensor([1.0, 0.0, 0.0]))
    b = model.decode([z], attributes=torch.tensor([0.0, 1.0, 1.0]))
    assert (a - b).abs().mean() > 1e-4
    x = _images(2)
    assert not torch.allclose(model.encode(x, attributes=torch.zeros(3))[0],
                              model.encode(x, attributes=torch.ones(3))[0])


def test_cvae_sample_needs_and_validates_attributes():
    model = _cvae().eval()
    with pytest.raises(ValueError):
        model.sample(2)
    with pytest.raises(ValueError):
        model.sample(2, attributes=torch.ones(4))
    with pytest.raises(ValueError):
        model.sample(2, attributes=torch.ones(3, 3))
    shared = model.sample(2, attributes=torch.tensor([1.0, 0.0, 1.0]), generator=torch.Generator().manual_seed(0))
    per_row = model.sample(2, attributes=torch.tensor([[1.0, 0.0, 1.0]] * 2),
                           generator=torch.Generator().manual_seed(0))
    assert shared.shape == (2, 3, 16, 16) and torch.equal(shared, per_row)
    with pytest.raises(ValueError):
        model({"image": _images(2)})  # training batch without attributes


def test_cvae_round_trip_keeps_attribute_names(tmp_path):
    model = _cvae(recon="bce")
    attrs = (torch.arange(24).view(8, 3) % 2).float()
    out = model({"image": _images(), "attributes": attrs})
    assert torch.isfinite(out["loss"])
    _warm(model, _images(), attrs)
    model.save_pretrained(tmp_path)
    loaded = ConditionalVAE.from_pretrained(tmp_path).eval()
    assert loaded.attribute_names == ["Male", "Smiling", "Eyeglasses"] and loaded.config.num_attributes == 3
    assert not loaded.decoder_log_sigma.requires_grad  # unused σ stays out of the optimizer (and DDP)
    g = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    assert torch.equal(model.sample(3, attributes=attrs[:3], generator=g()),
                       loaded.sample(3, attributes=attrs[:3], generator=g()))
    with pytest.raises(ValueError):
        ConditionalVAE(image_size=16, num_attributes=2, attribute_names=["a"])
