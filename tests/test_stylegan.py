"""StyleGAN: shapes, phases, R1, learning, round trip (EMA), truncation, per-layer ws, growth, EMA, bf16."""

import pytest
import torch
import torch.nn.functional as F

from facelab.models.progressive import get_inverse_sigmoid_schedule, inverse_sigmoid_decay
from facelab.models.stylegan import StyleGAN

TINY = dict(image_size=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16,
            fade_images=100, stable_images=100)


def make(**kw) -> StyleGAN:
    m = StyleGAN(**{**TINY, **kw})
    m.set_progress(m.max_level, 1.0)
    return m


def batch(size: int = 16, n: int = 4) -> dict[str, torch.Tensor]:
    return {"image": torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def seeded_loss(m: StyleGAN, b: dict, phase: str, seed: int = 123) -> float:
    """Loss with z, mixing and noise fixed by the global seed (step 1: no R1)."""
    torch.manual_seed(seed)
    return float(m(b, step=1, phase=phase)["loss"].detach())


@pytest.mark.parametrize("size,num_ws", [(16, 6), (32, 8)])
def test_shapes(size, num_ws):
    m = make(image_size=size)
    assert m.num_ws == num_ws and m.resolution == size
    x = m.sample(3, generator=gen())
    assert x.shape == (3, 3, size, size) and x.abs().max() <= 1
    assert [lv.name for lv in m.latent_levels] == ["z", "w"] and m.latent_levels[1].shape == (16,)
    images, (z, w) = m.sample_with_latents(2, generator=gen())
    assert z.shape == (2, 16) and w.shape == (2, 16)
    assert torch.equal(images, x[:2])


def test_losses_phases_and_lazy_r1():
    m = make(r1_interval=4)
    g = m.generator_loss(batch(), step=4)
    assert torch.isfinite(g["loss"]) and "r1" not in g
    g["loss"].backward()
    assert all(p.grad is None for p in m.discriminator.parameters())
    layer = m.generator.synthesis.blocks[-1][0]
    assert layer.noise_strength.grad is not None and layer.noise_strength.grad != 0, "noise strength learns"
    assert m.generator.mapping.net[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.generator_ema.parameters())
    m.zero_grad(set_to_none=True)
    d = m.discriminator_loss(batch(), step=4)
    assert "r1" in d and torch.isfinite(d["r1"]) and d["r1"] > 0
    no_r1 = m.discriminator_loss(batch(), step=5)
    assert "r1" not in no_r1 and torch.isfinite(no_r1["loss"])
    d["loss"].backward()
    assert all(p.grad is None for p in m.generator.parameters())
    unused = {id(p) for p in m.discriminator.from_rgb[:-1].parameters()}  # older fromRGBs: faded out
    assert all(p.grad is not None for p in m.discriminator.parameters() if id(p) not in unused)
    assert "r1" not in make(r1_gamma=0.0).discriminator_loss(batch(), step=0)


def test_training_steps_lower_d_then_g_loss():
    m = make(r1_gamma=0.0)
    b = batch()
    # equalized-LR weights are N(0,1), so G needs a larger step than D to move in 5 steps
    for phase, lr in (("discriminator", 3e-3), ("generator", 1e-2)):
        opt = m.configure_optimizers(lr=lr)[phase]
        before = seeded_loss(m, b, phase)
        for step in range(5):
            opt.zero_grad(set_to_none=True)
            m(b, step=step, phase=phase)["loss"].backward()
            opt.step()
        assert seeded_loss(m, b, phase) < before - 0.02, phase


def test_optimizers():
    m = make()
    opts = m.configure_optimizers()
    assert opts["generator"].defaults["betas"] == (0.0, 0.99)
    g_ids = {id(p) for grp in opts["generator"].param_groups for p in grp["params"]}
    assert {id(p) for p in m.generator.mapping.parameters()} <= g_ids
    assert not g_ids & {id(p) for p in m.generator_ema.parameters()}
    lin = m.generator.mapping.net[0]
    assert lin.weight_gain == pytest.approx(0.01 / 16 ** 0.5), "mapping net at lr ×0.01"


def test_save_load_round_trip_with_ema_and_progress(tmp_path):
    m = make()
    with torch.no_grad():
        for p in m.generator.parameters():
            p.add_(0.1 * torch.randn_like(p))
        m.generator.mapping.w_avg.normal_()
    m.after_step(1, 1_000)  # EMA now differs from both init and G
    m.set_progress(1, 0.25)
    m.save_pretrained(tmp_path)
    ref = [m.sample(3, generator=gen(5), use_ema=e, psi=0.7) for e in (True, False)]
    assert not torch.allclose(ref[0], ref[1])
    for low_mem in (True, False):
        m2 = StyleGAN.from_pretrained(tmp_path, low_cpu_mem_usage=low_mem)
        assert m2.progress() == (1, 0.25) and int(m2.images_seen) == 1_000
        for e, r in zip((True, False), ref):
            assert torch.equal(m2.sample(3, generator=gen(5), use_ema=e, psi=0.7), r)
        assert not any(p.requires_grad for p in m2.generator_ema.parameters())


def test_deterministic_sampling():
    m = make()
    with torch.no_grad():
        for layer in m.generator_ema.synthesis.modules():
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.5)
    for mode in ("const", "random"):
        a = m.sample(3, generator=gen(1), noise_mode=mode)
        assert torch.equal(a, m.sample(3, generator=gen(1), noise_mode=mode))
        assert not torch.allclose(a, m.sample(3, generator=gen(2), noise_mode=mode))
    ws = m.mapping(torch.randn(2, 16))
    const, rnd = m.synthesis(ws, "const"), m.synthesis(ws, "random", gen(3))
    assert not torch.allclose(const, rnd) and not torch.allclose(const, m.synthesis(ws, "none"))


def test_truncation():
    m = make()
    m.generator_ema.mapping.w_avg.normal_()
    x0 = m.sample(4, generator=gen(), psi=0.0)
    assert torch.allclose(x0, x0[:1].expand_as(x0), atol=1e-6), "ψ=0: every z gives the w_avg image"
    w_avg = m.generator_ema.mapping.w_avg[None]
    assert torch.allclose(x0[:1], m.synthesis(w_avg).clamp(-1, 1), atol=1e-6)
    x1 = m.sample(4, generator=gen(), psi=1.0)
    assert not torch.allclose(x1[0], x1[1], atol=1e-3)
    cold = m.sample(4, generator=gen(), temperature=0.0)
    assert torch.allclose(cold, x0, atol=1e-6), "temperature multiplies ψ"
    # cutoff: only the first layers truncated -> differs from both full truncation and none
    xc = m.sample(4, generator=gen(), psi=0.0, truncation_cutoff=2)
    assert not torch.allclose(xc, x0) and not torch.allclose(xc, x1)


def test_per_layer_ws_and_style_mix():
    m = make()
    z = torch.randn(3, 16, generator=gen(4))
    plain = m.sample(3, generator=gen(4))
    w = m.mapping(z)[:, 0]
    assert torch.allclose(m.sample(3, ws=w), plain, atol=1e-5), "same w everywhere = plain sampling"
    ws = m.mapping(z)
    other = m.mapping(torch.randn(3, 16, generator=gen(9)))
    mixed = torch.cat([ws[:, :3], other[:, 3:]], dim=1)
    out = m.sample(3, ws=mixed)
    assert not torch.allclose(out, plain, atol=1e-4) and not torch.allclose(out, m.sample(3, ws=other))
    grid = m.style_mix(ws[:2], other, layers=range(3, m.num_ws))
    assert grid.shape == (6, 3, 16, 16)
    cells = grid.view(2, 3, 3, 16, 16)  # (row, col): row's w, col's w on layers 3..
    # batch sizes differ (6 vs 3), so convolutions may round differently: compare to 1e-5
    assert torch.allclose(cells[0, 0], out[0], atol=1e-5) and torch.allclose(cells[1, 1], out[1], atol=1e-5)
    assert torch.allclose(m.style_mix(ws[:2], other, range(0)).view(2, 3, 3, 16, 16)[:, 0], plain[:2], atol=1e-5)
    assert torch.allclose(m.style_mix(ws[:2], other, range(m.num_ws))[:3], m.sample(3, ws=other), atol=1e-5)
    with pytest.raises(ValueError):
        m.sample(3, ws=torch.zeros(3, 5, 16))


def test_style_mixing_regularisation():
    torch.manual_seed(0)
    ws = make(style_mixing_prob=1.0)._training_ws(4, 2, torch.device("cpu"), False)
    assert not torch.allclose(ws[:, 0], ws[:, -1]), "prob 1: a second w takes over after a cutoff"
    ws = make(style_mixing_prob=0.0)._training_ws(4, 2, torch.device("cpu"), False)
    assert torch.equal(ws[:, 0], ws[:, -1])


def test_progress_schedule():
    m = StyleGAN(**TINY)  # max level 2; 100 stable, then (100 fade + 100 stable) per level
    assert m.progress() == (0, 1.0) and m.sample(2).shape == (2, 3, 16, 16)
    expected = {0: (0, 1.0), 99: (0, 1.0), 100: (1, 0.0), 150: (1, 0.5), 200: (1, 1.0), 299: (1, 1.0),
                300: (2, 0.0), 375: (2, 0.75), 400: (2, 1.0), 10_000: (2, 1.0)}
    for seen, (level, alpha) in expected.items():
        assert m.progress_for(seen) == (level, pytest.approx(alpha)), seen
    logs = m.after_step(1, 150)
    assert m.progress() == (1, 0.5) and logs["alpha"] == 0.5 and logs["resolution"] == 8
    out = m(batch(), step=1, phase="discriminator")
    assert out["resolution"] == 8 and out["alpha"] == 0.5
    fake = m.generator.synthesis(m.mapping(torch.randn(2, 16), use_ema=False), *m.progress())
    assert fake.shape[-1] == 8, "training fakes come at the current resolution"
    m.after_step(2, 375)
    assert m.progress() == (2, 0.75) and m.generator.synthesis(
        m.mapping(torch.randn(2, 16), use_ema=False), *m.progress()).shape[-1] == 16
    assert StyleGAN(**TINY, progressive=False).progress_for(0) == (2, 1.0)


def test_fade_in_blends_generator_and_discriminator():
    m = StyleGAN(**TINY)
    ws = m.mapping(torch.randn(2, 16, generator=gen(2)))
    syn = m.generator_ema.synthesis
    for level in (1, 2):
        prev = syn(ws, level - 1, 1.0, "const")
        at0 = syn(ws, level, 0.0, "const")
        assert at0.shape[-1] == 2 * prev.shape[-1]
        assert torch.allclose(at0, F.interpolate(prev, scale_factor=2, mode="nearest"), atol=1e-6)
        at1, half = syn(ws, level, 1.0, "const"), syn(ws, level, 0.5, "const")
        assert not torch.allclose(at1, at0, atol=1e-4)
        assert torch.allclose(half, 0.5 * (at0 + at1), atol=1e-5)
    m.set_progress(1, 0.0)  # the public output stays image_size: 4×4 content nearest-upsampled
    x = m.synthesis(ws)
    assert x.shape[-1] == 16 and torch.allclose(x, F.interpolate(syn(ws, 0, 1.0, "const"), size=16))
    d = m.discriminator
    img = torch.randn(2, 3, 8, 8)
    assert torch.allclose(d(img, 1, 0.0), d(F.avg_pool2d(img, 2), 0), atol=1e-5)
    assert not torch.allclose(d(img, 1, 1.0), d(img, 1, 0.0), atol=1e-4)


def test_ema_moves_towards_generator():
    m = make()

    def dist() -> float:
        return sum((a - b).square().sum().item() for a, b in zip(m.generator_ema.parameters(),
                                                                  m.generator.parameters()))

    m.after_step(0, 1_000_000)  # a million images in one go: EMA jumps onto G
    assert dist() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for p in m.generator.parameters():
            p.add_(torch.randn_like(p))
    d0 = dist()
    logs = m.after_step(1, 1_000_000 + 5_000)
    assert 0 < logs["ema_beta"] < 1 and logs["ema_beta"] == pytest.approx(0.5 ** 0.5)
    d1 = dist()
    assert d1 < d0 and d1 == pytest.approx(d0 * logs["ema_beta"] ** 2, rel=1e-3)
    assert m.after_step(1, 1_005_000)["ema_beta"] == 1.0 and dist() == pytest.approx(d1), "no double update"


def test_inverse_sigmoid_lr_decay():
    f = [inverse_sigmoid_decay(s, 100) for s in range(0, 101, 10)]
    assert f[0] == 1.0 and all(a > b for a, b in zip(f, f[1:])) and f[-1] < 0.01
    assert inverse_sigmoid_decay(100, 100, min_factor=0.1) == pytest.approx(0.1, abs=0.01)
    assert f[0] - f[1] < f[4] - f[5] and f[9] - f[10] < f[5] - f[6], "steepest around the midpoint"
    opt = make().configure_optimizers(lr=1.0)["generator"]
    sched = get_inverse_sigmoid_schedule(opt, total_steps=10)
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(inverse_sigmoid_decay(5, 10))


def test_bf16_autocast_finite():
    m = StyleGAN(**TINY)
    m.set_progress(1, 0.5)  # fade path included
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for phase in ("generator", "discriminator"):
            out = m(batch(n=2), step=0, phase=phase)
            assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
            out["loss"].backward()
        assert torch.isfinite(out["r1"])
        assert torch.isfinite(m.sample(2)).all()
