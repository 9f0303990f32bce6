"""HierarchicalVAE: shapes, per-level losses, training, round trip, fixed/tempered sampling, guard, bf16."""

import math

import pytest
import torch

from facelab.models.hvae import HierarchicalVAE
from facelab.models.hvae_blocks import discretized_log_prob, gaussian_kl

GROUPS = (1, 4, 4, 8, 8)


def tiny(image_size: int = 16, patch_size: int = 1, **kw) -> HierarchicalVAE:
    """A small model with the seed-000 group layout."""
    kw = {"width": 16, "group_resolutions": GROUPS, "latent_channels": 4, **kw}
    return HierarchicalVAE(image_size=image_size, patch_size=patch_size, **kw).eval()


def images(n: int = 4, size: int = 16, seed: int = 1) -> torch.Tensor:
    """Smooth random images in [-1, 1] (a fixed batch)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 4, size // 4, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def perturb_posteriors(model: HierarchicalVAE) -> None:
    """Move q away from p (it starts equal, KL 0) so KL terms are non-trivial."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for group in model.groups:
            w = group.posterior.c4.weight
            w.copy_(0.3 * torch.randn(w.shape, generator=g))


@pytest.mark.parametrize("size,patch", [(16, 1), (32, 2)])
def test_shapes_agree_across_levels_encode_sample_decode(size, patch):
    m = tiny(size, patch)
    levels = m.latent_levels
    assert len(levels) >= 5
    assert [lv.shape for lv in levels] == [(4, r, r) for r in GROUPS]
    x = images(3, size)
    zs = m.encode(x)
    assert [tuple(z.shape) for z in zs] == [(3, *lv.shape) for lv in levels]
    imgs, sampled = m.sample(2, generator=torch.Generator().manual_seed(0), return_latents=True)
    assert imgs.shape == (2, 3, size, size) and imgs.abs().max() <= 1
    assert [tuple(z.shape) for z in sampled] == [(2, *lv.shape) for lv in levels]
    assert m.decode(zs).shape == (3, 3, size, size)


def test_loss_dict_per_level_kl_and_total():
    m = tiny(beta=0.7, beta_warmup_steps=10)
    perturb_posteriors(m)
    torch.manual_seed(0)
    out = m({"image": images()}, step=5)
    n_levels = len(m.latent_levels)
    kls = [out[f"kl_{k}"] for k in range(n_levels)]
    assert all(torch.isfinite(v) and v > 0 for v in kls)
    beta = 0.7 * 5 / 10
    assert out["beta"].item() == pytest.approx(beta)
    total = out["recon"] + beta * sum(kls)
    assert torch.allclose(out["loss"], total, rtol=1e-5)
    assert torch.allclose(out["kl"], sum(kls), rtol=1e-5)
    assert torch.allclose(out["bpd"], (out["recon"] + out["kl"]) / math.log(2), rtol=1e-5)
    assert m.loss({"image": images()}, step=20)["beta"].item() == pytest.approx(0.7)


def test_free_bits_floor_each_groups_kl_in_the_loss_only():
    plain, floored = tiny(), tiny(free_bits=50.0)
    perturb_posteriors(plain)
    floored.load_state_dict(plain.state_dict())  # same weights: only the loss differs
    torch.manual_seed(0)
    a = plain({"image": images()})
    torch.manual_seed(0)
    b = floored({"image": images()})
    assert torch.allclose(a["kl"], b["kl"]) and torch.allclose(a["recon"], b["recon"])  # reported KL is true
    dims = 3 * 16 * 16
    floors = sum(50.0 * math.prod(s.shape) for s in floored.latent_levels) / dims
    assert torch.allclose(b["loss"], b["recon"] + torch.tensor(floors), rtol=1e-5)  # every group below 50 nats/dim
    assert b["loss"] > a["loss"]
    with pytest.raises(ValueError, match="free_bits"):
        tiny(free_bits=-1.0)


def test_kl_weights_scale_each_groups_kl_in_the_loss():
    plain = tiny()
    n = len(plain.latent_levels)
    weighted = tiny(kl_weights=[1.0] * (n - 1) + [3.0])
    perturb_posteriors(plain)
    weighted.load_state_dict(plain.state_dict())
    torch.manual_seed(0)
    a = plain({"image": images()})
    torch.manual_seed(0)
    b = weighted({"image": images()})
    assert torch.allclose(b["kl"], a["kl"])
    assert torch.allclose(b["loss"], a["loss"] + 2.0 * a[f"kl_{n - 1}"], rtol=1e-5)
    with pytest.raises(ValueError, match="kl_weights"):
        tiny(kl_weights=[1.0])
    with pytest.raises(ValueError, match="kl_weights"):
        tiny(kl_weights=[1.0] * (n - 1) + [0.0])


def test_a_few_adamw_steps_lower_the_loss():
    m = tiny().train()
    batch = {"image": images(8)}
    opt = m.configure_optimizers(lr=3e-3)["model"]
    assert isinstance(opt, torch.optim.AdamW)

    def evaluate() -> float:
        torch.manual_seed(123)  # same reparameterisation noise before and after
        with torch.no_grad():
            return m(batch)["loss"].item()

    before = evaluate()
    for step in range(10):
        opt.zero_grad()
        m(batch, step)["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), m.config.grad_clip)
        if not m.should_skip_update(norm):
            opt.step()
    assert evaluate() < before - 0.3


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    m = tiny(32, 2, latent_channels=[2, 3, 4, 5, 6])
    perturb_posteriors(m)
    m.should_skip_update(float("inf"))
    m.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and list(tmp_path.glob("*.safetensors"))
    m2 = HierarchicalVAE.from_pretrained(tmp_path).eval()
    assert m2.latent_levels == m.latent_levels
    assert m2.skipped_updates.item() == 1
    a = m.sample(3, temperature=[1, .8, .6, .4, .2], generator=torch.Generator().manual_seed(7))
    b = m2.sample(3, temperature=[1, .8, .6, .4, .2], generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    x = images(2, 32)
    for za, zb in zip(m.encode(x), m2.encode(x)):
        assert torch.equal(za, zb)
    torch.manual_seed(0)
    la = m({"image": x})["loss"]
    torch.manual_seed(0)
    assert torch.equal(la, m2({"image": x})["loss"])


def test_fixed_levels_are_kept_and_the_rest_are_drawn():
    m = tiny()
    z0 = torch.randn(4, 1, 1)  # broadcast to every sample
    z2 = torch.randn(3, 4, 4, 4)
    fixed = {0: z0, 2: z2}
    ia, la = m.sample(3, generator=torch.Generator().manual_seed(1), fixed=fixed, return_latents=True)
    ib, lb = m.sample(3, generator=torch.Generator().manual_seed(2), fixed=fixed, return_latents=True)
    for lv in (la, lb):
        assert torch.equal(lv[0], z0.expand(3, -1, -1, -1))
        assert torch.equal(lv[2], z2)
    for k in (1, 3, 4):
        assert not torch.allclose(la[k], lb[k])
    assert not torch.allclose(ia, ib)
    ic, lc = m.sample(3, generator=torch.Generator().manual_seed(1), fixed=fixed, return_latents=True)
    assert torch.equal(ia, ic) and all(torch.equal(p, q) for p, q in zip(la, lc))
    with pytest.raises(ValueError):
        m.sample(3, fixed={1: torch.randn(4, 8, 8)})


def test_temperature_zero_gives_the_prior_mean():
    m = tiny()
    z0 = torch.randn(2, 4, 1, 1)
    temps = [1.0, 0.0, 1.0, 1.0, 1.0]
    _, la = m.sample(2, temps, torch.Generator().manual_seed(1), fixed={0: z0}, return_latents=True)
    _, lb = m.sample(2, temps, torch.Generator().manual_seed(2), fixed={0: z0}, return_latents=True)
    mean, std = m.prior_params([z0])
    assert torch.equal(la[1], mean) and torch.equal(lb[1], mean)
    assert (std > 0).all()
    assert not torch.allclose(la[3], lb[3])


def test_sample_level_matches_sampling_with_frozen_levels_and_decode():
    m = tiny()
    prev = [torch.randn(2, 4, 1, 1), torch.randn(2, 4, 4, 4)]
    z2 = m.sample_level(2, prev, generator=torch.Generator().manual_seed(5), temperature=0.5)
    _, levels = m.sample(2, [1, 1, 0.5, 1, 1], torch.Generator().manual_seed(5),
                         fixed={0: prev[0], 1: prev[1]}, return_latents=True)
    assert torch.equal(z2, levels[2])
    z0 = m.sample_level(0, [], n=3, generator=torch.Generator().manual_seed(0))
    assert z0.shape == (3, 4, 1, 1)
    imgs, levels = m.sample(2, generator=torch.Generator().manual_seed(9), return_latents=True)
    assert torch.allclose(m.decode(levels), imgs, atol=1e-6)


def test_should_skip_update_counts_bad_norms_and_passes_normal_ones():
    m = tiny(grad_skip_threshold=100.0)
    assert "skipped_updates" in m.state_dict()
    assert not m.should_skip_update(3.5)
    assert not m.should_skip_update(torch.tensor(99.0))
    for bad in (float("nan"), float("inf"), 1e9, torch.tensor(float("nan"))):
        assert m.should_skip_update(bad)
    assert m.skipped_updates.item() == 4
    off = tiny(grad_skip_threshold=0.0)  # threshold off: only non-finite norms skip
    assert not off.should_skip_update(1e9) and off.should_skip_update(float("inf"))


def test_bf16_autocast_forward_and_sample_are_finite():
    m = tiny(32, 2)
    perturb_posteriors(m)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m({"image": images(2, 32)})
        imgs = m.sample(2, generator=torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v).all() and v.dtype == torch.float32 for v in out.values())
    assert torch.isfinite(imgs).all()


@pytest.mark.parametrize("family", ["logistic", "gaussian"])
def test_discretized_likelihood_is_a_distribution_over_256_bins(family):
    bins = torch.arange(256, dtype=torch.float32) / 127.5 - 1
    for mean, log_scale in [(0.1, -3.0), (-0.95, -2.0), (0.5, -6.5)]:
        lp = discretized_log_prob(bins, torch.full_like(bins, mean), torch.full_like(bins, log_scale), family)
        assert lp.exp().sum().item() == pytest.approx(1.0, abs=2e-3)


def test_gaussian_kl_matches_torch_distributions():
    qm, ql, pm, pl = torch.randn(4, 10).unbind(0)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(qm, ql.exp()),
                                            torch.distributions.Normal(pm, pl.exp()))
    assert torch.allclose(gaussian_kl(qm, ql, pm, pl), ref, atol=1e-5)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError):
        tiny(group_resolutions=(1, 4, 3, 8, 8))  # not a power of two
    with pytest.raises(ValueError):
        tiny(group_resolutions=(8, 4, 4, 1, 1))  # must rise
    with pytest.raises(ValueError):
        tiny(16, 2, group_resolutions=(1, 4, 4, 8, 16))  # above image_size / patch_size
    with pytest.raises(ValueError):
        tiny(likelihood="mse")


def test_calibrated_pixel_scale_is_the_batch_rms_and_keeps_the_weights_layout():
    from facelab.models.hvae import calibrated_log_scale
    from facelab.models.hvae_blocks import quantize

    learned = tiny(likelihood="gaussian")
    calibrated = tiny(likelihood="gaussian", pixel_scale="calibrated")
    assert learned.state_dict().keys() == calibrated.state_dict().keys()  # init_from works both ways
    calibrated.load_state_dict(learned.state_dict())
    x = quantize(images())
    mean = torch.zeros_like(x)
    assert torch.allclose(calibrated_log_scale(x, mean).exp().flatten(), x.pow(2).mean().sqrt().flatten())
    torch.manual_seed(0)
    a = learned({"image": images()})
    torch.manual_seed(0)
    b = calibrated({"image": images()})
    assert torch.allclose(a["kl"], b["kl"]) and not torch.allclose(a["recon"], b["recon"])
    b["loss"].backward()  # the scale is held constant: gradients reach the mean head only through the error
    assert torch.isfinite(calibrated.head.weight.grad).all()
    with pytest.raises(ValueError, match="pixel_scale"):
        tiny(pixel_scale="per_channel")


def test_dense_upsampling_starts_as_nearest_and_learns_positions(tmp_path):
    from facelab.hub import save_bundle
    from training.train_utils import init_weights

    groups = {"group_resolutions": (1, 2, 4), "latent_channels": 4}
    nearest = tiny(**groups)
    assert len(nearest.ups) == 0  # the nearest layout has no upsampler weights: old bundles load as before
    save_bundle(nearest, tmp_path / "b", {"kind": "hvae", "name": "b"})
    dense = tiny(**groups, upsample="dense")
    assert sorted(dense.ups) == ["2", "4"]  # out of the 1x1 and 2x2 maps only
    init_weights(dense, str(tmp_path / "b"))  # fine-tuning a nearest bundle into a dense one
    levels = [torch.randn(2, *spec.shape) for spec in nearest.latent_levels]
    assert torch.allclose(dense.decode(levels), nearest.decode(levels))  # zero at init: the same function
    # with a trained upsampler the 1x1 code alone varies the 2x2 state across positions; nearest cannot
    with torch.no_grad():
        dense.ups["2"].linear.weight.normal_(0, 0.1)
    h_dense, _ = dense._walk(1, lambda k, h, pm, ls: levels[k][:1], stop=1)
    h_near, _ = nearest._walk(1, lambda k, h, pm, ls: levels[k][:1], stop=1)
    assert h_near.shape[-1] == 2 and torch.allclose(h_near, h_near[..., :1, :1].expand_as(h_near))
    assert not torch.allclose(h_dense, h_dense[..., :1, :1].expand_as(h_dense))
    with pytest.raises(ValueError, match="upsample"):
        tiny(upsample="bilinear")
