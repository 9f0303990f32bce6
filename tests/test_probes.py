"""Latent probes: level tables, the batched SVM solver against liblinear, directions, PCA, files."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC

from facelab.probes.classifiers import LinearProbe, ProbeTable, fit_level_probes, fit_squared_hinge
from facelab.probes.directions import (
    centroid_directions,
    conditional_direction,
    edit,
    fit_pca,
    svm_normals,
)
from facelab.probes.io import Probes, ProbesError, load_probes, save_probes

NAMES = ["A", "B"]


def _levels(n=1200, seed=0):
    """Three levels [4, 8, 6]: level 1 is noise, A is written in level 2, B in level 3."""
    rng = np.random.default_rng(seed)
    levels = [rng.standard_normal((n, d)).astype(np.float32) for d in (4, 8, 6)]
    a = levels[1][:, :3].sum(1) + 0.3 * rng.standard_normal(n) > 0.5
    b = levels[2][:, 0] - levels[2][:, 1] + 0.3 * rng.standard_normal(n) > 0
    return levels, np.stack([a, b], 1).astype(np.int64)


def _sqhinge_objective(w, b, x, y):
    margin = 1 - (2 * y - 1) * (x @ w + b)
    return 0.5 * (w @ w + b * b) + np.sum(np.clip(margin, 0, None) ** 2)


# ---------------------------------------------------------------- tables


def test_per_level_table_finds_the_level_holding_each_attribute():
    levels, labels = _levels()
    table = fit_level_probes(levels, labels, NAMES, mode="per_level")
    assert table.columns == ["z1", "z2", "z3"] and table.dims == [4, 8, 6]
    assert (table.n_train, table.n_test) == (960, 240)
    acc = dict(zip(NAMES, table.accuracy))
    assert acc["A"][1] >= 0.9 and acc["B"][2] >= 0.9
    assert acc["A"][0] <= table.baseline[0] + 0.06  # level 1 is noise: no better than the majority class
    assert acc["B"][1] <= table.baseline[1] + 0.06
    assert ((table.balanced_accuracy >= 0) & (table.balanced_accuracy <= 1)).all()
    assert table.balanced_accuracy[0, 0] <= 0.6  # balanced accuracy sees through the imbalance


def test_cumulative_table_grows_with_levels():
    levels, labels = _levels()
    table = fit_level_probes(levels, labels, NAMES, mode="cumulative", level_names=["top", "mid", "low"])
    assert table.columns == ["top..top", "top..mid", "top..low"] and table.dims == [4, 12, 18]
    assert table.accuracy[0, 1] >= 0.9 and table.accuracy[1, 2] >= 0.9
    assert table.accuracy[1, 2] >= table.accuracy[1, 1] + 0.2
    assert table.probe("B", 2).levels == (0, 1, 2)


def test_mask_restricts_samples_like_seed_000s_age_groups():
    levels, labels = _levels(n=1600)
    over15 = np.arange(1600) % 2 == 0
    # Outside the group the attribute is unrelated to the latents, as for children in seed 000.
    labels[~over15, 0] = np.random.default_rng(5).integers(0, 2, int((~over15).sum()))
    everyone = fit_level_probes(levels, labels, NAMES, mode="per_level")
    group = fit_level_probes(levels, labels, NAMES, mode="per_level", mask=over15)
    assert group.n_train + group.n_test == over15.sum()
    assert group.accuracy[0, 1] >= everyone.accuracy[0, 1] + 0.1


def test_newton_solver_matches_liblinear():
    levels, labels = _levels(n=2000, seed=3)
    fast = fit_level_probes(levels, labels, NAMES, mode="cumulative")
    ref = fit_level_probes(levels, labels, NAMES, mode="cumulative", solver="liblinear")
    assert np.abs(fast.accuracy - ref.accuracy).max() <= 0.005
    w_fast, w_ref = fast.probe("A", 2).w, ref.probe("A", 2).w
    assert w_fast @ w_ref / np.linalg.norm(w_fast) / np.linalg.norm(w_ref) >= 0.999


def test_fit_squared_hinge_reaches_liblinears_objective():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((800, 10))
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.5 * rng.standard_normal(800) > 0).astype(np.int64)
    xb = torch.from_numpy(np.hstack([np.ones((800, 1)), x]).astype(np.float32))
    w = fit_squared_hinge(xb, torch.from_numpy(2.0 * y - 1).float()[:, None])[:, 0].double().numpy()
    ref = LinearSVC(dual=False).fit(x, y)
    ours = _sqhinge_objective(w[1:], w[0], x, y)
    theirs = _sqhinge_objective(ref.coef_[0], ref.intercept_[0], x, y)
    assert ours <= theirs * (1 + 1e-4)


def test_linear_probe_decision_predict_raw_and_distance():
    levels, labels = _levels()
    table = fit_level_probes(levels, labels, NAMES, mode="cumulative")
    probe = table.probe("A", "z1..z2")
    x = probe.select(levels)
    assert x.shape == (1200, 12)
    _, test = train_test_split(np.arange(1200), test_size=0.2, random_state=0)
    assert np.mean(probe.predict(x[test]) == labels[test, 0]) == pytest.approx(probe.accuracy)
    assert balanced_accuracy_score(labels[test, 0], probe.predict(x[test])) == pytest.approx(
        table.balanced_accuracy[0, 1])
    w_raw, b_raw = probe.raw()
    np.testing.assert_allclose(probe.decision(x), x @ w_raw + b_raw, rtol=1e-6, atol=1e-6)
    assert np.linalg.norm(probe.normal()) == pytest.approx(1.0)
    np.testing.assert_allclose(probe.distance(x), probe.decision(x) / np.linalg.norm(w_raw), rtol=1e-9)
    assert np.allclose(probe.decision(torch.from_numpy(x)), probe.decision(x))


def test_markdown_in_seed_000_layout():
    levels, labels = _levels()
    md = fit_level_probes(levels, labels, NAMES, mode="per_level").to_markdown().splitlines()
    assert md[0].startswith("| accuracy (svm, per level) | z1 | z2 | z3 | majority |")
    assert md[2] == "| dimensions | 4 | 8 | 6 |  |"
    assert [row.split(" | ")[0] for row in md[3:]] == ["| A", "| B"]
    assert len(md[3].split("|")) == len(md[0].split("|"))


def test_mlp_probe_scores_without_linear_probes():
    levels, labels = _levels(n=800)
    table = fit_level_probes(levels, labels, NAMES, mode="per_level", kind="mlp", mlp_hidden=(16,))
    assert table.accuracy[0, 1] >= 0.8 and table.accuracy[0, 0] <= table.baseline[0] + 0.08
    assert table.probes == {}
    with pytest.raises(KeyError, match="no mlp probe"):
        table.probe("A", 1)


def test_constant_attribute_and_bad_inputs():
    levels, labels = _levels(n=300)
    labels[:, 1] = 1
    table = fit_level_probes(levels, labels, NAMES)
    assert (table.accuracy[1] == 1.0).all() and table.baseline[1] == 1.0
    assert (table.balanced_accuracy[1] == 1.0).all()  # only the present class counts, as in sklearn
    with pytest.raises(ValueError, match="attribute names"):
        fit_level_probes(levels, labels, ["A"])
    with pytest.raises(ValueError, match="0/1"):
        fit_level_probes(levels, labels * 2, NAMES)
    with pytest.raises(ValueError, match="one row per label"):
        fit_level_probes([levels[0][:10]], labels, NAMES)
    with pytest.raises(ValueError, match="mode"):
        fit_level_probes(levels, labels, NAMES, mode="sideways")


# ---------------------------------------------------------------- directions


def _flat_data(n=1000, seed=0):
    """Male = z·u > 0, Smiling = z·v + Male > 0: Smiling's boundary is tilted towards Male's."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 6))
    u, v = np.eye(6)[0], np.eye(6)[1]
    male = z @ u > 0
    smiling = z @ v + 1.5 * male - 0.75 + 0.1 * rng.standard_normal(n) > 0
    return z, np.stack([male, smiling], 1).astype(np.int64), u


def test_centroid_directions_known_values():
    z = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])
    dirs = centroid_directions(z, np.array([[0, 0], [1, 0], [0, 1], [1, 1]]), ["right", "up"])
    np.testing.assert_allclose(dirs["right"], [2.0, 0.0])
    np.testing.assert_allclose(dirs["up"], [0.0, 4.0])
    with pytest.raises(ValueError, match="'up'"):
        centroid_directions(z, np.array([[0, 1], [1, 1], [0, 1], [1, 1]]), ["right", "up"])


def test_svm_normal_recovers_the_true_boundary():
    z, labels, u = _flat_data()
    normals, accuracy = svm_normals(z, labels, ["Male", "Smiling"])
    assert normals["Male"] @ u >= 0.98
    assert np.linalg.norm(normals["Smiling"]) == pytest.approx(1.0)
    assert accuracy["Male"] >= 0.95


def test_conditional_direction_edits_smiling_without_moving_male():
    z, labels, _ = _flat_data()
    table = fit_level_probes([z], labels, ["Male", "Smiling"], test_size=0.2)
    male, smiling = table.probe("Male", 0), table.probe("Smiling", 0)
    n1, n2 = smiling.normal(), male.normal()
    assert abs(n1 @ n2) >= 0.2  # entangled: a plain Smiling edit would change Male
    d = conditional_direction(n1, [n2])
    np.testing.assert_allclose(d, (n1 - (n1 @ n2) * n2) / np.linalg.norm(n1 - (n1 @ n2) * n2))
    edited = edit(z[:50], d, 3.0)
    np.testing.assert_allclose(male.decision(edited), male.decision(z[:50]), atol=1e-9)
    assert (smiling.decision(edited) > smiling.decision(z[:50]) + 1).all()
    two = conditional_direction(n1, [n2, np.eye(6)[5]])
    assert abs(two @ n2) < 1e-9 and abs(two[5]) < 1e-9 and np.linalg.norm(two) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="span"):
        conditional_direction(n2, [n2 * 2])


def test_edit_strengths_scalar_and_per_row():
    z = np.zeros((3, 2))
    np.testing.assert_allclose(edit(z, [1.0, 0.0], 2.0), [[2, 0]] * 3)
    np.testing.assert_allclose(edit(z, [0.0, 1.0], [1.0, 2.0, 3.0])[:, 1], [1, 2, 3])


def test_pca_basis_ganspace_layout():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((500, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1]) + 7.0
    full = fit_pca(z)
    assert full.components.shape == (5, 5) and full.mean.shape == (5,)
    assert np.all(np.diff(full.var_ratio) <= 0) and full.var_ratio.sum() == pytest.approx(1.0)
    assert full.var_ratio[0] >= 0.6
    np.testing.assert_allclose(full.components @ full.components.T, np.eye(5), atol=1e-10)
    np.testing.assert_allclose(full.reconstruct(full.project(z)), z, atol=1e-9)
    np.testing.assert_allclose(full.project(z).std(0, ddof=1), full.std, rtol=1e-9)
    two = fit_pca(z, 2)
    assert two.var_ratio.sum() < 1 and two.project(z).shape == (500, 2)
    samples = two.sample(4000, seed=1)
    assert samples.shape == (4000, 5)
    np.testing.assert_allclose(two.project(samples).std(0), two.std, rtol=0.05)


# ---------------------------------------------------------------- files


def _probes():
    levels, labels = _levels(n=400)
    probes = Probes(meta={"level_names": ["z1", "z2", "z3"]})
    probes.add_table("svm/per_level", fit_level_probes(levels, labels, NAMES, mode="per_level"))
    probes.add_table("mlp/per_level", fit_level_probes(levels, labels, NAMES, kind="mlp", mlp_hidden=(8,)))
    z = np.concatenate(levels, 1)
    probes.add_directions("directions/centroid", centroid_directions(z, labels, NAMES), {"kind": "centroid"})
    probes.add_pca("pca", fit_pca(z, 3))
    return probes, levels


def test_probes_round_trip_through_files(tmp_path):
    probes, levels = _probes()
    probes.save(tmp_path / "probes")
    assert sorted(p.name for p in (tmp_path / "probes").iterdir()) == ["probes.json", "probes.safetensors"]
    loaded = load_probes(tmp_path / "probes")
    assert "svm/per_level/z2/A/w" in loaded.arrays and loaded.meta["level_names"] == ["z1", "z2", "z3"]
    table, orig = loaded.table("svm/per_level"), probes.table("svm/per_level")
    np.testing.assert_array_equal(table.accuracy, orig.accuracy)
    x = orig.probe("B", "z3").select(levels)
    # stored as float32 (half the bytes), widened on load: decisions agree to float32 rounding
    np.testing.assert_allclose(table.probe("B", "z3").decision(x), orig.probe("B", "z3").decision(x), rtol=1e-6, atol=1e-6)
    from safetensors import safe_open
    with safe_open(str(tmp_path / "probes" / "probes.safetensors"), "np") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} <= {"F32", "I64", "BOOL", "U8"}
    assert table.probe("B", "z3").levels == (2,)
    assert loaded.table("mlp/per_level").probes == {}
    np.testing.assert_allclose(loaded.directions("directions/centroid")["A"],
                               probes.directions("directions/centroid")["A"], rtol=1e-6, atol=1e-7)
    assert loaded.meta["directions"]["directions/centroid"]["info"] == {"kind": "centroid"}
    np.testing.assert_allclose(loaded.pca("pca").components, probes.pca("pca").components, rtol=1e-6, atol=1e-7)
    assert loaded.meta["pca"]["pca"]["var_ratio"] == pytest.approx(list(probes.pca("pca").var_ratio))
    with pytest.raises(KeyError, match="svm/cumulative"):
        loaded.table("svm/cumulative")


def test_save_probes_raw_dicts_and_replacing_an_entry(tmp_path):
    save_probes(tmp_path, {"x/y": np.arange(3.0)}, {"note": "hi"})
    loaded = load_probes(tmp_path)
    np.testing.assert_array_equal(loaded.arrays["x/y"], [0.0, 1.0, 2.0])
    assert loaded.meta["note"] == "hi" and loaded.meta["arrays"] == {"x/y": [3]}
    loaded.add_directions("x", {"a": np.ones(2)})
    loaded.add_directions("x", {"b": np.zeros(2)})
    assert sorted(loaded.arrays) == ["x/b"]  # the old x/y and x/a are gone with the old entry
    with pytest.raises(ValueError, match="no '/'"):
        loaded.add_directions("d", {"a/b": np.ones(2)})


def test_missing_and_corrupt_files_are_named(tmp_path):
    probes, _ = _probes()
    folder = probes.save(tmp_path / "p")
    with pytest.raises(FileNotFoundError, match="probes.json"):
        load_probes(tmp_path / "nowhere")
    (folder / "probes.safetensors").rename(tmp_path / "kept.safetensors")
    with pytest.raises(FileNotFoundError, match="probes.safetensors"):
        load_probes(folder)
    (folder / "probes.safetensors").write_bytes(b"\x80\x04not safetensors at all")
    with pytest.raises(ProbesError, match="probes.safetensors.*corrupt"):
        load_probes(folder)
    (tmp_path / "kept.safetensors").rename(folder / "probes.safetensors")
    meta = json.loads((folder / "probes.json").read_text())
    meta["arrays"]["svm/per_level/z9/A/w"] = [4]
    (folder / "probes.json").write_text(json.dumps(meta))
    with pytest.raises(ProbesError, match="does not match"):
        load_probes(folder)
    (folder / "probes.json").write_text("{ truncated")
    with pytest.raises(ProbesError, match="probes.json.*corrupt"):
        load_probes(folder)
    (folder / "probes.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ProbesError, match="not a facelab probes file"):
        load_probes(folder)


def test_table_dict_round_trip_keeps_scores():
    levels, labels = _levels(n=300)
    table = fit_level_probes(levels, labels, NAMES, mode="cumulative")
    back = ProbeTable.from_dict(json.loads(json.dumps(table.to_dict())))
    np.testing.assert_array_equal(back.balanced_accuracy, table.balanced_accuracy)
    assert back.to_markdown() == table.to_markdown()
    assert isinstance(table.probe("A", 0), LinearProbe)
