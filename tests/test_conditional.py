"""Conditional sampling: seed 000's level-by-level rejection (variants 1 and 2), boundary shifting on flat
latents, budgets, the missing-probes message, and precision judged by an image attribute classifier.

The latent spaces are real models' (a few-step HVAE, VAE and StyleGAN); the attributes are hand-built
linear functions of their latents, so the probes are known to be accurate and any miss is the sampler's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facelab.data.synthfaces import SynthFaces, attributes_from_factors, render, sample_factors
from facelab.hub import Bundle
from facelab.metrics.attributes import train_attribute_classifier
from facelab.models import VAE, HierarchicalVAE, StyleGAN
from facelab.probes.conditional import (ConditionalResult, ProbesMissingError, conditional_sample,
                                        implied_targets, precision, probe_table, signed_margins)
from facelab.probes.encode import Encoded
from facelab.probes.fit import fit_probes
from facelab.probes.moves import nearest_latents, shift_latents

N_FIT = 600


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _bundle(model, levels: list[np.ndarray], labels: np.ndarray, hierarchical: bool) -> Bundle:
    """A bundle whose probes were fitted on (levels, labels) with attributes A and B."""
    names = [s.name for s in model.latent_levels]
    assert len(names) == len(levels)
    enc = Encoded(levels=levels, level_names=names, labels=labels.astype(np.float32), attribute_names=["A", "B"],
                  source="generated")
    probes, _, _ = fit_probes(enc, hierarchical, age_mask=None, mlp="none", pca_components=2)
    return Bundle(model=model, meta={"kind": model.kind}, path=Path("unused"), source="test",
                  extras={"probes": probes})


@pytest.fixture(scope="module")
def hvae_bundle():
    """A few-step HVAE; A is written in level z1, B in level z2 of its prior samples."""
    torch.manual_seed(0)
    model = HierarchicalVAE(image_size=16, width=16, group_resolutions=(1, 4, 8), latent_channels=3)
    data = SynthFaces(size=16, length=64, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for s in range(3):
        batch = torch.stack([b["image"] for b in data.__getitems__(list(range(16 * s, 16 * s + 16)))])
        loss = model.loss({"image": batch})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    _, zs = model.sample(N_FIT, generator=_gen(1), return_latents=True)
    levels = [z.reshape(N_FIT, -1).numpy() for z in zs]
    rng = np.random.default_rng(0)
    a = levels[1] @ rng.standard_normal(levels[1].shape[1]) > 0
    b = levels[2] @ rng.standard_normal(levels[2].shape[1]) > 0
    return _bundle(model, levels, np.stack([a, b], 1), hierarchical=True)


def _check_levels(bundle, result, variant, levels):
    """Every constrained level's probe puts the final latents on the target side of every attribute."""
    table = probe_table(bundle, variant)
    signs = np.array([1.0 if result.targets[a] else -1.0 for a in result.targets])
    for k in levels:
        probes = [table.probe(a, k) for a in result.targets]
        assert (signed_margins(probes, signs, result.latents) > 0).all(), (variant, k)


@pytest.mark.parametrize("variant", ["per_level", "cumulative"])
def test_hvae_rejection_meets_targets_at_every_constrained_level(hvae_bundle, variant):
    targets = {"A": 1, "B": 0}
    res = conditional_sample(hvae_bundle, targets, 24, variant=variant, levels=[1, 2], generator=_gen(2))
    assert res.satisfied.all() and res.exhausted == [] and res.targets == targets
    assert set(res.acceptance_rate) == {"z1", "z2"}
    assert all(0 < r <= 1 for r in res.acceptance_rate.values())
    assert all(res.attempts[k] >= 24 for k in ("z1", "z2"))
    # the cumulative probe at z2 reads z0..z2: it only passes if z1 stayed what was accepted at level 1
    _check_levels(hvae_bundle, res, variant, [1, 2])
    with torch.no_grad():
        torch.testing.assert_close(res.images, hvae_bundle.model.decode(res.latents), atol=1e-5, rtol=1e-4)
    # and the targets are really selective: unconstrained samples miss them often
    free = hvae_bundle.model.sample(24, generator=_gen(2), return_latents=True)[1]
    table = probe_table(hvae_bundle, variant)
    free_ok = signed_margins([table.probe("A", 1)], np.array([1.0]), free) > 0
    assert free_ok.mean() < 0.9


def test_hvae_levels_before_the_constrained_one_are_the_free_prior_draws(hvae_bundle):
    res = conditional_sample(hvae_bundle, {"B": 1}, 16, levels=["z2"], generator=_gen(5))
    _, free = hvae_bundle.model.sample(16, generator=_gen(5), return_latents=True)
    for k in (0, 1):  # drawn from the prior with the same generator, never touched
        torch.testing.assert_close(res.latents[k], free[k])
    assert list(res.acceptance_rate) == ["z2"] and res.satisfied.all()
    _check_levels(hvae_bundle, res, "per_level", [2])


def test_budget_runs_out_with_a_clear_result(hvae_bundle):
    res = conditional_sample(hvae_bundle, {"A": 1, "B": 1}, 40, levels=[1, 2], max_attempts=1, generator=_gen(3))
    assert res.images.shape[0] == 40 and len(res.latents[2]) == 40
    assert res.exhausted and not res.satisfied.all() and res.satisfied.any()
    assert res.attempts["z1"] == 40  # one draw per sample
    assert 0 < res.acceptance_rate["z1"] < 1
    assert 0 < res.probe_precision < 1


@pytest.mark.parametrize("method", ["shift", "nearest"])
def test_hvae_shift_moves_each_level_across_the_boundary(hvae_bundle, method):
    res = conditional_sample(hvae_bundle, {"A": 0, "B": 1}, 16, method=method, variant="cumulative",
                             levels=[1, 2], generator=_gen(4))
    assert res.satisfied.all() and res.method == method
    table = probe_table(hvae_bundle, "cumulative")
    for k in (1, 2):
        margins = signed_margins([table.probe(a, k) for a in ("A", "B")], np.array([-1.0, 1.0]), res.latents)
        assert margins.min() >= 0.99  # on the target side by the SVM margin


# ---------------------------------------------------------------- flat latents


@pytest.fixture(scope="module")
def vae_bundle():
    """A VAE z space where A and B are linear in z, with correlated normals (so projection matters)."""
    torch.manual_seed(0)
    model = VAE(image_size=16, latent_dim=6, base_channels=8, max_channels=16).eval()
    z = torch.randn(N_FIT, 6, generator=_gen(7)).numpy()
    a = z @ np.array([1.0, 1.0, 0, 0, 0, 0]) > 0.3
    b = z @ np.array([1.0, 0, 1.0, 0, 0, 0]) > -0.2
    return _bundle(model, [z], np.stack([a, b], 1), hierarchical=False)


def test_flat_rejection_accepts_only_target_side_latents(vae_bundle):
    res = conditional_sample(vae_bundle, {"A": 1, "B": 0}, 32, generator=_gen(8))
    assert res.level_names == ["z"] and res.satisfied.all()
    assert 0 < res.acceptance_rate["z"] < 0.6 and res.attempts["z"] > 32
    table = probe_table(vae_bundle)
    assert (table.probe("A", "z").predict(res.latents[0]) == 1).all()
    assert (table.probe("B", "z").predict(res.latents[0]) == 0).all()
    with torch.no_grad():
        torch.testing.assert_close(res.images, vae_bundle.model.decode(res.latents), atol=1e-5, rtol=1e-4)


def test_flat_shift_moves_several_attributes_independently(vae_bundle):
    table = probe_table(vae_bundle)
    pa, pb = table.probe("A", "z"), table.probe("B", "z")
    start = torch.randn(64, 6, generator=_gen(9))  # the draw the sampler makes with this generator
    res = conditional_sample(vae_bundle, {"A": 1, "B": 1}, 64, method="shift", generator=_gen(9))
    z0, z1 = start.numpy(), res.latents[0].numpy()
    da0, db0, da1, db1 = pa.decision(z0), pb.decision(z0), pa.decision(z1), pb.decision(z1)
    assert (da1 >= 0.99).all() and (db1 >= 0.99).all() and res.satisfied.all()
    # conditional directions: a sample already past A's margin keeps A's decision while B is moved
    keep = (da0 >= 1) & (db0 < 1)
    assert keep.sum() >= 3
    np.testing.assert_allclose(da1[keep], da0[keep], atol=1e-4)
    assert not np.allclose(db1[keep], db0[keep])
    untouched = (da0 >= 1) & (db0 >= 1)
    np.testing.assert_allclose(z1[untouched], z0[untouched], atol=1e-6)
    assert res.acceptance_rate["z"] == pytest.approx(untouched.mean())


def test_stylegan_shift_and_rejection_in_w():
    torch.manual_seed(0)
    sg = StyleGAN(image_size=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=128, channel_max=16).eval()
    with torch.no_grad():
        w = sg.mapping(torch.randn(N_FIT, 8, generator=_gen(10)))[:, 0].numpy()
        z = torch.randn(N_FIT, 8, generator=_gen(12)).numpy()  # the z column exists; w is what we test
    proj = w @ np.random.default_rng(1).standard_normal(8)
    a, b = proj > np.median(proj), w[:, 0] > np.median(w[:, 0])
    bundle = _bundle(sg, [z, w], np.stack([a, b], 1), hierarchical=False)
    for method in ("rejection", "shift"):
        res = conditional_sample(bundle, {"B": 1}, 12, method=method, generator=_gen(11))
        assert res.level_names == ["w"] and res.satisfied.all()
        assert (probe_table(bundle).probe("B", "w").predict(res.latents[0]) == 1).all()
        with torch.no_grad():
            torch.testing.assert_close(res.images, sg.synthesis(res.latents[0]).clamp(-1, 1))


# ---------------------------------------------------------------- errors


def test_missing_probes_say_which_command_to_run():
    model = VAE(image_size=16, latent_dim=4, base_channels=8, max_channels=16)
    bundle = Bundle(model=model, meta={}, path=Path("runs/x/bundle"), source="runs/x/bundle")
    with pytest.raises(ProbesMissingError, match=r"run python training/probe.py runs/x/bundle first"):
        conditional_sample(bundle, {"Male": 1}, 4)


def test_bad_targets_and_options_are_refused(vae_bundle, hvae_bundle):
    with pytest.raises(ValueError, match="no probes for attribute"):
        conditional_sample(vae_bundle, {"Smiling": 1}, 4)
    with pytest.raises(ValueError, match="0 or 1"):
        conditional_sample(vae_bundle, {"A": 2}, 4)
    with pytest.raises(ValueError, match="method"):
        conditional_sample(vae_bundle, {"A": 1}, 4, method="langevin")
    with pytest.raises(ValueError, match="unknown latent level"):
        conditional_sample(hvae_bundle, {"A": 1}, 4, levels=["z9"])


# ---------------------------------------------------------------- precision


def test_precision_is_judged_by_the_image_classifier():
    """Rendered faces with and without glasses: the classifier (never saw a latent) decides precision."""
    clf, report = train_attribute_classifier(SynthFaces(size=16, length=1200, seed=5), steps=120, batch=32,
                                             lr=5e-3, widths=(8, 16, 32), max_eval=300)
    assert report["balanced_accuracy"]["Eyeglasses"] > 0.9
    factors = sample_factors(np.random.default_rng(0), 40, fixed={"eyeglasses": 2})
    factors[20:] = sample_factors(np.random.default_rng(1), 20, fixed={"eyeglasses": 0})
    images = torch.from_numpy(render(factors, 16)[0]).permute(0, 3, 1, 2).float() / 127.5 - 1
    truth = attributes_from_factors(factors)[:, clf.attribute_names.index("Eyeglasses")]

    def result(targets):
        return ConditionalResult(images=images[:20], latents=[], level_names=[], acceptance_rate={}, attempts={},
                                 targets=targets, satisfied=np.ones(20, bool))

    assert truth[:20].all() and not truth[20:].any()
    assert precision(result({"Eyeglasses": 1}), clf)["Eyeglasses"] >= 0.9
    assert precision(result({"Eyeglasses": 0}), clf)["Eyeglasses"] <= 0.1
    both = precision(result({"Eyeglasses": 1, "Male": 1}), clf)
    assert set(both) == {"Eyeglasses", "Male"}
    with pytest.raises(KeyError, match="does not judge"):
        precision(result({"A": 1}), clf)


# ---------------------------------------------------------------- nearest move, exclusive groups


def test_nearest_is_the_projection_onto_the_target_side():
    rng = np.random.default_rng(0)
    w = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # correlated normals
    c = np.array([0.2, -0.4])
    z = rng.standard_normal((200, 3))
    signs = np.array([1.0, -1.0])
    moved = nearest_latents(z, w, z @ w.T + c, signs, margin=1.0)
    margins = (moved @ w.T + c) * signs
    assert margins.min() >= 1.0 - 1e-6
    # nearest: no feasible point is closer (checked against shift's moves and random feasible candidates)
    shifted = shift_latents(z, w, z @ w.T + c, signs, margin=1.0)
    d_near, d_shift = np.linalg.norm(moved - z, axis=1), np.linalg.norm(shifted - z, axis=1)
    assert (d_near <= d_shift + 1e-6).all() and (d_near < d_shift - 1e-3).any()
    # KKT: the move is a non-negative combination of the active constraints' normals
    lam, *_ = np.linalg.lstsq((w * signs[:, None]).T, (moved - z).T, rcond=None)
    assert (lam > -1e-6).all()
    untouched = (((z @ w.T + c) * signs) >= 1.0 + 1e-3).all(1)
    np.testing.assert_allclose(moved[untouched], z[untouched])


def test_flat_nearest_meets_every_target(vae_bundle):
    res = conditional_sample(vae_bundle, {"A": 1, "B": 0}, 32, method="nearest", generator=_gen(13))
    assert res.method == "nearest" and res.satisfied.all()
    table = probe_table(vae_bundle)
    assert (table.probe("A", "z").decision(res.latents[0]) >= 0.99).all()
    assert (table.probe("B", "z").decision(res.latents[0]) <= -0.99).all()


def test_exclusive_hair_colours_are_implied_absent():
    known = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male"]
    assert implied_targets({"Brown_Hair": 1}, known) == {"Brown_Hair": 1, "Black_Hair": 0, "Blond_Hair": 0}
    assert implied_targets({"Brown_Hair": 1, "Black_Hair": 1}, known) == {"Brown_Hair": 1, "Black_Hair": 1,
                                                                         "Blond_Hair": 0}
    assert implied_targets({"Brown_Hair": 0, "Male": 1}, known) == {"Brown_Hair": 0, "Male": 1}


def test_only_informative_probes_are_implied():
    from types import SimpleNamespace

    from facelab.probes.conditional import INFORMATIVE, informative_attributes

    table = SimpleNamespace(attributes=["Black_Hair", "Brown_Hair", "Blond_Hair"],
                            balanced_accuracy=np.array([[0.5, 0.94], [0.55, INFORMATIVE - 0.01], [0.81, 0.7]]))
    known = informative_attributes(table)
    assert known == ["Black_Hair", "Blond_Hair"]  # Brown_Hair's probe is at chance in every column
    assert implied_targets({"Black_Hair": 1}, known) == {"Black_Hair": 1, "Blond_Hair": 0}
