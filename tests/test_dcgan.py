"""DCGAN: shapes, losses per phase, learning, round trip, determinism, init, bf16."""

import pytest
import torch

from facelab.models.base import LevelSpec
from facelab.models.dcgan import DCGAN

TINY = dict(image_size=16, nz=8, ngf=8, ndf=8)


def batch(size: int = 16, n: int = 8) -> dict[str, torch.Tensor]:
    return {"image": torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1}


def seeded_loss(model: DCGAN, b: dict, phase: str, seed: int = 123) -> float:
    """Loss with the fake batch's z fixed, so before/after comparisons see the same fakes."""
    torch.manual_seed(seed)
    return float(model(b, phase=phase)["loss"].detach())


@pytest.mark.parametrize("size", [16, 32])
def test_shapes_and_range(size):
    m = DCGAN(image_size=size, nz=8, ngf=8, ndf=8)
    x = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert m.discriminator(x).shape == (3,)
    assert m.latent_levels == [LevelSpec("z", (8,))]
    assert m.is_gan and m.kind == "dcgan"


def test_bad_size_refused():
    with pytest.raises(ValueError, match="power of two"):
        DCGAN(image_size=48)


def test_losses_finite_and_phases_isolated():
    m = DCGAN(**TINY)
    g = m.generator_loss(batch())
    assert {"loss", "d_fake"} <= set(g) and torch.isfinite(g["loss"])
    g["loss"].backward()
    assert all(p.grad is None for p in m.discriminator.parameters()), "G phase must not touch D grads"
    assert all(p.grad is not None for p in m.generator.parameters())
    m.zero_grad(set_to_none=True)
    d = m.discriminator_loss(batch())
    assert {"loss", "d_real", "d_fake"} <= set(d) and torch.isfinite(d["loss"])
    d["loss"].backward()
    assert all(p.grad is None for p in m.generator.parameters()), "D phase must not touch G grads"
    assert all(p.grad is not None for p in m.discriminator.parameters())
    with pytest.raises(ValueError):
        m(batch(), phase="both")


def test_training_steps_lower_d_then_g_loss():
    m = DCGAN(**TINY)
    opts = m.configure_optimizers(lr=2e-3)
    b = batch()
    before = seeded_loss(m, b, "discriminator")
    for step in range(6):
        opts["discriminator"].zero_grad(set_to_none=True)
        m(b, step=step, phase="discriminator")["loss"].backward()
        opts["discriminator"].step()
    assert seeded_loss(m, b, "discriminator") < before - 0.05
    d_params = [p.detach().clone() for p in m.discriminator.parameters()]
    before = seeded_loss(m, b, "generator")
    for step in range(6):
        opts["generator"].zero_grad(set_to_none=True)
        m(b, step=step, phase="generator")["loss"].backward()
        opts["generator"].step()
    assert seeded_loss(m, b, "generator") < before - 0.05
    assert all(torch.equal(p, q) for p, q in zip(m.discriminator.parameters(), d_params)), "D moved"


def test_optimizers_adam_half_beta():
    m = DCGAN(**TINY)
    opts = m.configure_optimizers()
    assert set(opts) == {"generator", "discriminator"}
    assert opts["generator"].defaults["betas"] == (0.5, 0.999)
    assert opts["generator"].defaults["lr"] == pytest.approx(2e-4)
    g_ids = {id(p) for grp in opts["generator"].param_groups for p in grp["params"]}
    d_ids = {id(p) for grp in opts["discriminator"].param_groups for p in grp["params"]}
    assert not g_ids & d_ids and len(g_ids | d_ids) == len(list(m.parameters()))
    assert m.after_step(0, 8) == {}


def test_dcgan_init_stats():
    m = DCGAN(image_size=32, nz=16, ngf=16, ndf=16)
    w = torch.cat([mod.weight.flatten() for mod in m.modules()
                   if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    assert w.std().item() == pytest.approx(0.02, rel=0.05) and abs(w.mean().item()) < 1e-3
    bn = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    gamma = torch.cat([b.weight.flatten() for b in bn])
    assert gamma.mean().item() == pytest.approx(1.0, abs=0.01) and gamma.std().item() < 0.05
    assert all(torch.all(b.bias == 0) for b in bn)


def test_save_load_round_trip(tmp_path):
    m = DCGAN(**TINY)
    opt = m.configure_optimizers(lr=1e-2)["generator"]
    m(batch(), phase="generator")["loss"].backward()  # move weights and BN stats off their init
    opt.step()
    m.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    ref = m.sample(4, generator=torch.Generator().manual_seed(3))
    for low_mem in (True, False):
        m2 = DCGAN.from_pretrained(tmp_path, low_cpu_mem_usage=low_mem)
        assert m2.config.nz == 8
        assert torch.equal(m2.sample(4, generator=torch.Generator().manual_seed(3)), ref)


def test_sampling_deterministic_and_per_z():
    m = DCGAN(**TINY)
    a = m.sample(4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, m.sample(4, generator=torch.Generator().manual_seed(7)))
    assert not torch.allclose(a, m.sample(4, generator=torch.Generator().manual_seed(8)))
    z = m.draw_z(4, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(m.generate(z)[:1], m.generate(z[:1]), atol=1e-6), "image depends on its z only"
    assert m.training, "sampling must not leave the model in eval mode"
    cold = m.sample(3, temperature=0.0)
    assert torch.allclose(cold[0], cold[2]), "temperature 0 → z = 0 for all"
    imgs, (z2,) = m.sample_with_latents(2, generator=torch.Generator().manual_seed(7))
    assert torch.equal(z2, z[:2]) and torch.equal(imgs, a[:2])


def test_bf16_autocast_finite():
    m = DCGAN(**TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for phase in ("generator", "discriminator"):
            out = m(batch(), phase=phase)
            assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
            out["loss"].backward()
        x = m.sample(2)
    assert torch.isfinite(x).all()


def test_spectral_norm_discriminator_is_lipschitz_and_trains_phase_isolated():
    m = DCGAN(**{**TINY, "d_norm": "spectral"})
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.discriminator.modules())
    assert any(isinstance(x, torch.nn.BatchNorm2d) for x in m.generator.modules())  # G keeps the paper's BN
    m.train()
    for _ in range(30):  # power iterations converge during training forwards
        m.discriminator(batch()["image"])
    convs = [x for x in m.discriminator.modules() if isinstance(x, torch.nn.Conv2d)]
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.1)
    d = m.discriminator_loss(batch())
    d["loss"].backward()
    assert all(p.grad is None for p in m.generator.parameters())
    m.zero_grad(set_to_none=True)
    g = m.generator_loss(batch())
    g["loss"].backward()
    assert all(p.grad is None for p in m.discriminator.parameters()), "G phase must not touch D grads"
    with pytest.raises(ValueError, match="d_norm"):
        DCGAN(**{**TINY, "d_norm": "layer"})


def test_spectral_norm_bundle_round_trips(tmp_path):
    from facelab.hub import load_bundle, save_bundle

    m = DCGAN(**{**TINY, "d_norm": "spectral"}).eval()
    save_bundle(m, tmp_path / "dc", {"name": "dc"})
    loaded = load_bundle(str(tmp_path / "dc")).model
    z = torch.randn(3, m.config.nz)
    assert torch.equal(loaded.generate(z), m.generate(z))
    x = batch()["image"]
    with torch.no_grad():
        assert torch.allclose(loaded.discriminator.eval()(x), m.discriminator.eval()(x))


def _train_steps(m: DCGAN, steps: int, batch_size: int = 8) -> None:
    opts = m.configure_optimizers(lr=1e-2)
    for step in range(steps):
        for phase in ("discriminator", "generator"):
            opts[phase].zero_grad(set_to_none=True)
            m(batch(n=batch_size), step=step, phase=phase)["loss"].backward()
            opts[phase].step()
        m.after_step(step + 1, (step + 1) * batch_size)


def test_ema_generator_averages_by_images_and_is_what_sampling_draws():
    plain, ema = DCGAN(**TINY), DCGAN(**TINY, ema_half_life_images=16)
    assert not plain.has_ema and "generator_ema.0.weight" not in plain.state_dict()
    assert ema.has_ema and not any(p.requires_grad for p in ema.generator_ema.parameters())
    before = {k: v.clone() for k, v in ema.generator_ema.state_dict().items()}
    live0 = ema.generator[0].weight.detach().clone()
    _train_steps(ema, 1)  # 8 images at half-life 16: beta = 0.5 ** 0.5
    beta = 0.5 ** 0.5
    expected = beta * before["0.weight"] + (1 - beta) * ema.generator[0].weight.detach()
    assert torch.allclose(ema.generator_ema[0].weight, expected, atol=1e-6)
    assert not torch.equal(ema.generator[0].weight, live0)
    assert ema.after_step(1, 8) == {"ema_beta": 1.0}, "the same images must not be averaged twice"
    z = ema.draw_z(3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), eval_mode_of(ema.generator_ema):
        direct = ema.generator_ema(z[:, :, None, None])
    assert torch.allclose(ema.generate(z), direct)
    with torch.no_grad(), eval_mode_of(ema.generator):
        assert not torch.allclose(ema.generate(z), ema.generator(z[:, :, None, None]))
    with pytest.raises(ValueError, match="ema_half_life_images"):
        DCGAN(**TINY, ema_half_life_images=-1)


def eval_mode_of(module):
    from facelab.models.dcgan import eval_mode

    return eval_mode(module)


def test_fine_tuning_a_bundle_without_ema_starts_the_ema_from_its_generator(tmp_path):
    from facelab.hub import save_bundle
    from training.train_utils import init_weights

    src = DCGAN(**TINY)
    _train_steps(src, 2)
    save_bundle(src, tmp_path / "b", {"kind": "dcgan", "name": "b"})
    ft = DCGAN(**TINY, ema_half_life_images=1000)
    init_weights(ft, str(tmp_path / "b"))
    assert all(torch.equal(ft.generator_ema.state_dict()[k], v) for k, v in src.generator.state_dict().items())
    assert int(ft.ema_images_seen) == 0
    z = torch.randn(2, 8)
    assert torch.allclose(ft.generate(z), src.generate(z))  # the averaged generator starts as the bundle's
