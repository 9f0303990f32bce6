"""RESULTS.md sections for seed 002 (backgrounds), seed 003 (α/β, schedules, arithmetic), seed 004 (VAE vs GANs).

As in results_probes: select and format numbers from shipped bundles and results/data/*.json;
never compute a number that is printed (figures may plot cumulative curves of stored values).
"""

from __future__ import annotations

from typing import Any

from training.results_figures import curves_figure, pca_figure, samples_figure, study_image, sweep_figure
from training.results_inputs import BundleFiles, Inputs, Page, count, md_table, num, pending, plain
from training.results_probes import NOT_COMPARABLE, header

VARIANTS = ("original", "grey", "blur")


def seconds(value: Any) -> str:
    """Wall seconds rounded to whole seconds, with thousands separators."""
    return f"{value:,.0f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def _status(b: BundleFiles) -> str:
    return f"`{b.name}`" + (" (early run)" if b.early else "")


def variant_groups(inp: Inputs) -> dict[tuple[str, int], dict[str, BundleFiles]]:
    """Bundles of one kind and size trained on more than one background variant (seed 002's pairs)."""
    groups: dict[tuple[str, int], dict[str, BundleFiles]] = {}
    for b in inp.bundles.values():
        if b.fid() is not None:
            groups.setdefault((b.kind, int(b.meta.get("image_size") or 0)), {}).setdefault(b.background, b)
    return {k: v for k, v in groups.items() if len(v) > 1}


def _spectrum(b: BundleFiles) -> tuple[str, list[float]] | None:
    """The PCA basis a study reads: StyleGAN's w space, else the first level's."""
    pca = b.probes.get("pca") or {}
    key = "pca/w" if "pca/w" in pca else next(iter(sorted(pca)), None)
    return (key.split("/")[-1], pca[key]["var_ratio"]) if key else None


# ---------------------------------------------------------------- seed 002


def _stage_images(stage: dict[str, Any]) -> int:
    return int((stage.get("training") or {}).get("images_seen") or 0)


def total(b: BundleFiles, key: str = "images_seen") -> float | None:
    """A training count (images_seen, seconds) over every stage: the bundle's own `<key>_all_stages` when
    it was continued from another (train.py writes it), else its one run's; None when unrecorded."""
    t = b.meta.get("training") or {}
    return t.get(f"{key}_all_stages") if b.meta.get("lineage") else t.get(key)


def _earlier_stages(model: str, variant: str, b: BundleFiles) -> list[list[str]]:
    """Rows for the measured earlier stages of a bundle trained further (lineage), for equal-images comparisons."""
    rows, seen = [], 0
    for i, stage in enumerate(b.meta.get("lineage") or [], 1):
        seen += _stage_images(stage)  # cumulative: what the weights had seen when the stage was measured
        m = stage.get("metrics") or {}
        if m.get("fid_1000") is None:
            continue
        rows.append([model, f"{variant} (stage {i} of `{b.name}`: `{stage.get('name')}`)", num(m["fid_1000"], 1),
                     num(m.get("fid_floor_1000"), 1), f"{num(m.get('kid_1000'), 4)} ± {num(m.get('kid_1000_std'), 4)}",
                     "—", "—", "—", count(seen)])
    return rows


def seed002_main(inp: Inputs, page: Page) -> str:
    """Original vs grey vs blur per model family: FID, background share, PCA spectrum."""
    groups = variant_groups(inp)
    rows, spectra = [], {}
    for (kind, size), by_variant in sorted(groups.items()):
        for variant in VARIANTS:
            b = by_variant.get(variant)
            if b is None:
                rows.append([f"{kind} {plain(size)} px", variant, "pending: no bundle trained on this variant",
                             "", "", "", "", "", ""])
                continue
            fid, spec = b.fid() or {}, _spectrum(b)
            share = b.metric("background_share")
            top = ", ".join(num(v) for v in spec[1][:3]) if spec else "—"
            rows.append([f"{kind} {plain(size)} px", f"{variant} ({_status(b)})", num(fid.get("fid"), 1),
                         num(fid.get("fid_floor"), 1), f"{num(fid.get('kid'), 4)} ± {num(fid.get('kid_std'), 4)}",
                         num(share) if share is not None else "— (no encoder)",
                         plain(b.metric("factor_vae_active_dims")), f"{spec[0]}: {top}" if spec else "—",
                         count(total(b))])
            if spec:
                spectra[f"{b.name} ({spec[0]})"] = spec[1]
            rows += _earlier_stages(f"{kind} {plain(size)} px", variant, b)
    if not rows:
        return pending("original vs grey", "no model family is shipped on two background variants")
    fig = pca_figure(spectra, page.figure("seed002_pca.png")) if spectra else None
    return "\n\n".join(p for p in [
        "**Same recipe and seed, different backgrounds** — FID and KID against held-out faces *of the same "
        "variant* (each model against its own data; the data floor is two disjoint real sets of that variant); "
        "background share = share of latent variance explained by the background factors (metrics.json); "
        "active dims = dimensions the FactorVAE metric keeps (posterior-mean spread above its pruning threshold; "
        "metrics.json); PCA = the first three "
        "components' shares of latent variance (probes.json); a *stage* row is an earlier, measured stage of a "
        "bundle trained further (facelab.json lineage): compare variants at equal images seen:",
        md_table(["model", "trained on", "FID", "data floor", "KID ± std", "background share", "active dims",
                  "PCA top-3", "images seen (all stages)"], rows, "llrrrrrlr"),
        page.link(fig, "cumulative PCA spectrum of each bundle's latents")] if p)


def seed002_probes(inp: Inputs) -> str:
    """Balanced probe accuracy per attribute, original vs grey, for each family."""
    bundles = [b for _, by in sorted(variant_groups(inp).items()) for v in VARIANTS if (b := by.get(v))]
    tables = [(b, b.tables().get("svm/per_level")) for b in bundles]
    tables = [(b, t) for b, t in tables if t]
    if not tables:
        return ""
    attrs = list(dict.fromkeys(a for _, t in tables for a in t["attributes"]))

    def cell(t: dict[str, Any], a: str) -> str:
        if a not in t["attributes"]:
            return "—"
        return num(t["balanced_accuracy"][t["attributes"].index(a)][-1])

    head = [f"{b.name} ({t['columns'][-1]})" for b, t in tables]
    ns = "; ".join(f"{b.name} {count(t['n_train'])} / {count(t['n_test'])}" for b, t in tables)
    return (f"**Probe accuracy** (linear SVM on the latent, balanced accuracy, held out; train / held-out: {ns}):\n\n"
            + md_table(["attribute", *head], [[a, *[cell(t, a) for _, t in tables]] for a in attrs]))


def seed002_share(inp: Inputs) -> str:
    """Background share over three training seeds (results/data/background_share_seeds.json)."""
    s = inp.data.get("background_share_seeds")
    if not s:
        return ""
    p = s["protocol"]
    rows = [[r["trained_on"], r["measured_on"], f"{num(r['mean'])} ± {num(r['std'])}",
             ", ".join(num(v) for v in r["per_seed"]) if r.get("per_seed") else "—"] for r in s["rows"]]
    d = s.get("paired_difference") or {}
    return (f"**Background share over {plain(p['seeds'])} training seeds** ({plain(p['resolution'])} px, latent "
            f"{plain(p['latent_dim'])}, {count(p['steps'])} steps, {count(p['test_faces'])} test faces; "
            f"source: {s['source']}; `{s['command']}`):\n\n"
            + md_table(["trained on", "measured on", "share, mean ± std", "per seed"], rows)
            + f"\n\nPaired by seed, original − grey = {num(d.get('mean'))} ± {num(d.get('std'))} (smallest "
              f"{num(d.get('smallest'))}).")


def seed002_cost(inp: Inputs, seed: dict[str, Any]) -> str:
    """The seed's training-cost table beside facelab's measured training time of the compared bundles."""
    cost = seed.get("cost_table") or {}
    rows = [[r["hardware"], plain(r["minutes_per_epoch"]), plain(r["hours_for_400_epochs"])] for r in cost.get("rows", [])]
    ours = [[_status(b), (b.meta.get("training") or {}).get("device", "—"),
             count(total(b)), seconds(total(b, "seconds"))]
            for _, by in sorted(variant_groups(inp).items()) for v in VARIANTS if (b := by.get(v))]
    return "\n\n".join([f"**Cost.** Seed, {cost.get('cite', '')} (FFHQ {count(seed.get('resolution'))} px):",
                        md_table(["hardware", "minutes per epoch", f"hours for {plain(cost.get('epochs'))} epochs"], rows),
                        "facelab, each bundle above (facelab.json `training`):",
                        md_table(["bundle", "device", "images seen (all stages)", "wall seconds (all stages)"], ours)])


def seed002(inp: Inputs, page: Page) -> str:
    """Seed 002: original vs grey (vs blur) — FID, PCA spectrum, background share, probe accuracy."""
    seed = inp.seed("002")
    if not seed:
        return pending("Seed 002", "results/data/seeds.json has no entry for it")
    said = (f"**The seed's numbers.** {seed.get('findings', {}).get('cite', '')}. Its only table is the training "
            "cost, quoted below.")
    plan = (inp.data.get("plans") or {}).get("blur") or {}
    missing = [f"{kind} {size} px" for (kind, size), by in sorted(variant_groups(inp).items()) if "blur" not in by]
    blur = pending("blurred-background bundles", f"no {', '.join(missing)} is trained on the blur variant yet "
                   f"({plan.get('command', '')}; fills: {plan.get('fills', '')})") if missing else ""
    protocol = ("**Protocol.** FID/KID: the shared protocol (facelab.metrics.fid_protocol): samples at its fixed "
                "seed, prior temperature as stored in each record (StyleGAN: no truncation, EMA generator), "
                "Inception features; KID on subsets of half the set. "
                "Background share and probes: held-out synthfaces of the bundle's variant; GAN probes are fitted on "
                "samples labelled by the attribute classifier (they have no encoder).")
    parts = [header(seed, "backgrounds removed: original vs grey vs blur"), said, seed002_main(inp, page), blur,
             seed002_probes(inp), seed002_share(inp), seed002_cost(inp, seed), protocol,
             NOT_COMPARABLE.format(seed_data=seed.get("dataset", ""))]
    return "\n\n".join(p for p in parts if p)


# ---------------------------------------------------------------- seed 003


def _sweep_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["model"], plain(r["beta"]), count(r["steps"]), num(r["recon_mse"], 4), num(r["beta_vae"]),
             num(r["factor_vae"]), num(r["mig"]), num((r.get("dci") or [None])[0], 2), num(r.get("background_share"))]
            for r in rows]


def seed003_sweep(inp: Inputs, page: Page) -> str:
    """The β sweep (reconstruction vs disentanglement) and the shipped VAEs' reconstruction vs KL."""
    sw = inp.data.get("beta_sweep")
    parts = []
    if sw:
        p = sw["protocol"]
        parts += [f"**β sweep** ({plain(p['resolution'])} px, {plain(p['latent_dim'])} latents, α = "
                  f"{plain(p['alpha'])}, {p['recon']} reconstruction; disentanglement on {plain(p['factors'])} "
                  f"factors, {count(p['disent_train'])} / {count(p['disent_eval'])} points; source: {sw['source']}; "
                  f"`{sw['command']}`):",
                  md_table(["model", "β", "steps", "recon MSE", "β-VAE metric", "FactorVAE", "MIG", "DCI D",
                            "background share"], _sweep_rows(sw["unsupervised"] + sw["weakly_supervised"])),
                  page.link(sweep_figure(sw, inp.data.get("beta_schedule") or {}, page.figure("seed003_beta.png")),
                            "reconstruction vs disentanglement per β, and β in the loss per schedule")]
    vaes = [b for b in inp.of_kind("vae", "cvae") if b.meta.get("final_losses")]
    rows = [[_status(b), plain(b.params().get("alpha")), plain(b.params().get("beta")),
             num(b.meta["final_losses"].get("kl"), 1), num(b.metric("recon_mse"), 4), num(b.metric("beta_vae_eval_accuracy")),
             num(b.metric("mig"))] for b in vaes]
    if rows:
        parts += ["**Shipped VAEs: reconstruction vs KL vs disentanglement** (α and β from each run config; KL in "
                  "nats on the last training batch, facelab.json `final_losses`; held-out MSE and metrics from "
                  "metrics.json):",
                  md_table(["bundle", "α", "β (last stage)", "KL", "recon MSE", "β-VAE metric", "MIG"], rows)]
    return "\n\n".join(p for p in parts if p)


def seed003_schedules(inp: Inputs, seed: dict[str, Any]) -> str:
    """The β each schedule puts into the loss, and the schedules that helped."""
    sch = inp.data.get("beta_schedule")
    parts = [f"**β schedule.** Seed: {seed.get('schedule', {}).get('cite', '')}."]
    if sch:
        kinds = sorted(sch["schedules"])
        def cell(kind: str, i: int) -> str:
            row = sch["schedules"][kind]["rows"][i]
            # the capacity objective weighs |KL − C| by γ: its C per step is the schedule, not a β
            return f"C = {num(row['capacity'], 2)}" if "capacity" in row else num(row["kl_weight_in_loss"])

        rows = [[plain(step), *[cell(k, i) for k in kinds]] for i, step in enumerate(sch["steps"])]
        params = "; ".join(f"{k}: " + ", ".join(f"{p} {plain(v)}" for p, v in sch["schedules"][k]["params"].items())
                           for k in kinds)
        parts += [f"facelab reads β from the schedule inside the loss at every step — the KL weight below is read "
                  f"back from the loss itself (`{sch['command']}`: {sch['measured']}; {params}):",
                  md_table(["step", *kinds], rows)]
    sw = inp.data.get("beta_sweep") or {}
    bf = sw.get("beta_final")
    if bf:
        parts += [f"What a schedule bought (source: {bf['source']}):", md_table(
            ["model", "β", "steps", "recon MSE", "β-VAE metric", "FactorVAE", "MIG", "DCI D", "background share"],
            _sweep_rows(bf["rows"]))]
    full = sw.get("shipped_adagvae64_full_protocol")
    ada = next((b for b in inp.bundles.values() if b.meta.get("lineage")), None)
    if ada is not None:
        stages = ada.meta["lineage"] + [{"name": ada.name, "run_config": ada.meta.get("run_config"),
                                         "training": ada.meta.get("training")}]
        rows = [[s.get("name", "—"), plain(((s.get("run_config") or {}).get("model") or {}).get("params", {}).get("beta")),
                 ((s.get("run_config") or {}).get("model") or {}).get("params", {}).get("beta_schedule", "—"),
                 count((s.get("training") or {}).get("steps"))] for s in stages]
        parts += [f"The shipped {_status(ada)} is a step-down β schedule in stages (facelab.json `lineage`):",
                  md_table(["stage", "β", "schedule within the stage", "steps"], rows)]
        if full:
            parts.append(f"β-VAE metric on the full protocol ({count(full['disent_train'])} / "
                         f"{count(full['disent_eval'])} points): {num(full['beta_vae_seed0'])} and "
                         f"{num(full['beta_vae_seed1'])} on two seeds (`{full['command']}`).")
    return "\n\n".join(parts)


def seed003_arithmetic(inp: Inputs, page: Page) -> str:
    """Centroid attribute arithmetic judged by the attribute classifier."""
    parts = []
    for st in [s for s in inp.studies("arithmetic_") if inp.current(s, "name") is not None]:
        a = st["attribute"]
        without, with_ = st[f"without_{a}"], st[f"with_{a}"]
        rows = [[plain(r0["strength"]), num(r0["judged_share"], 2), num(r1["judged_share"], 2),
                 num(r0["other_attributes_mean_abs_change"]), num(r1["other_attributes_mean_abs_change"])]
                for r0, r1 in zip(without["rows"], with_["rows"])]
        parts += [f"**Centroid arithmetic — `{st['name']}`** (β {plain(st.get('beta'))}; z ± s × centroid "
                  f"difference of {a}; {count(without['n'])} faces without and {count(with_['n'])} with it; judge "
                  f"`{st['judge']}`; `{st['command']}`):",
                  md_table(["s", f"judged {a}, faces without", f"judged {a}, faces with",
                            "other attributes' |Δp|, without", "other attributes' |Δp|, with"], rows),
                  page.link(study_image(inp.data_dir / st["image"]),
                            f"{a} arithmetic on {st['name']}")]
    return "\n\n".join(p for p in parts if p) or pending("centroid arithmetic",
                                                           "run `python training/results_measure.py arithmetic`")


def seed003(inp: Inputs, page: Page) -> str:
    """Seed 003: α/β trade-off, a β schedule that reaches the loss, centroid arithmetic."""
    seed = inp.seed("003")
    if not seed:
        return pending("Seed 003", "results/data/seeds.json has no entry for it")
    said = (f"**The seed's numbers.** β = {plain(seed.get('beta', {}).get('value'))} "
            f"({seed.get('beta', {}).get('cite', '')}); {seed.get('findings', {}).get('cite', '')}.")
    alpha = ("**α.** Every facelab run keeps α at the value in the tables: with Adam, scaling the whole loss "
             "changes little, so the trade-off is set by β/α and the β sweep is the α sweep read backwards.")
    protocol = ("**Protocol.** Disentanglement: disentanglement_lib's β-VAE, FactorVAE, MIG and DCI on synthfaces' "
                "ground-truth factors; reconstruction MSE on held-out faces; arithmetic judged by the "
                "shipped attribute classifier.")
    parts = [header(seed, "α/β, β schedules and attribute arithmetic (CelebA, Keras)"), said,
             seed003_sweep(inp, page), alpha, seed003_schedules(inp, seed), seed003_arithmetic(inp, page), protocol,
             NOT_COMPARABLE.format(seed_data=seed.get("dataset", ""))]
    return "\n\n".join(p for p in parts if p)


# ---------------------------------------------------------------- seed 004


def seed004_fid(inp: Inputs) -> str:
    """Every shipped bundle under the one FID protocol."""
    rows = []
    for b in inp.bundles.values():
        for suffix in ("", "_32px"):
            fid = b.fid(suffix)
            if fid is None:
                continue
            rows.append([_status(b), b.kind, fid.get("background", "—"), plain(fid.get("resolution")),
                         num(fid.get("fid"), 1), f"{num(fid.get('kid'), 4)} ± {num(fid.get('kid_std'), 4)}",
                         num(fid.get("fid_floor"), 1), count(total(b)), seconds(total(b, "seconds"))])
    if not rows:
        return pending("FID/KID", "no bundle carries the shared FID protocol yet")
    return ("**FID / KID at one protocol** (each bundle's metrics.json `fid_protocol`: generated vs held-out "
            "synthfaces of its variant, area-downsampled where the protocol size is below the model's):\n\n"
            + md_table(["bundle", "kind", "background", "px", "FID", "KID ± std", "data floor", "images seen (all stages)",
                        "wall seconds (all stages)"], rows, "lllrrrrrr"))


def seed004_coverage(inp: Inputs, seed: dict[str, Any]) -> str:
    """Mode-collapse check: precision/recall/density/coverage and duplicates, and the sampled skin share."""
    cov = inp.data.get("coverage")
    collapse = (inp.data.get("gan_training") or {}).get("dcgan_batchnorm_collapse")
    parts = [f"**Mode collapse.** Seed: {seed.get('mode_collapse', {}).get('cite', '')}."]
    if cov:
        rows = []
        for b in inp.bundles.values():
            if b.fid() is None:
                continue
            r = cov["bundles"].get(b.name)
            if r is not None and inp.current({"bundle": b.name, **({"steps": r["steps"]} if "steps" in r else {})}) is None:
                r = None  # measured on an earlier bundle of the same name
            if r is None:
                rows.append([_status(b), "pending: measured on an earlier bundle or not yet", "", "", "", "", "", ""])
                continue
            gen, real = r["prevalence_generated"], r["prevalence_real_judged"]
            rows.append([_status(b), f"{plain(r['image_size'])} px, {r['background']}", num(r["precision"]),
                         num(r["recall"]), num(r["density"]), num(r["coverage"]), num(r["nn_ratio"], 2),
                         f"{num(gen.get('Pale_Skin'))} / {num(real.get('Pale_Skin'))}"])
        parts += [f"facelab (`{cov['command']}`: {cov['measured']}; features: {cov['features']}; reals: {cov['reals']}; "
                  f"n = {count(cov['n'])} each, seed {plain(cov['seed'])}). Recall and coverage fall when a model "
                  "drops modes; a nearest-neighbour ratio (median distance sample → nearest other sample over real → "
                  "nearest other real) well below one means samples crowd together:",
                  md_table(["bundle", "reals", "precision", "recall", "density", "coverage", "NN ratio",
                            "Pale_Skin generated / real"], rows)]
    else:
        parts.append(pending("coverage", "run `python training/results_measure.py coverage`"))
    if collapse:
        parts.append(f"A collapse seen here: {collapse['config']} — by {count(collapse['steps'])} steps "
                     f"({count(collapse['images'])} images) D's loss sat at {plain(collapse['d_loss'])}, G's at "
                     f"{'–'.join(plain(v) for v in collapse['g_loss_range'])}, and {collapse['observed']} "
                     "(source: BENCHMARKS.md; not shipped). The shipped DCGAN uses a spectral-norm D.")
    return "\n\n".join(parts)


def seed004_latent_size(inp: Inputs, seed: dict[str, Any]) -> str:
    """VAE latent size 32 / 64 / 256 at one resolution: saved study when present, pending otherwise."""
    ls = seed.get("latent_size") or {}
    said = (f"**Latent size.** Seed: overfits from z = {plain(ls.get('overfits_from'))}, works at z = "
            f"{plain(ls.get('works_at'))} ({ls.get('cite', '')}).")
    st = inp.data.get("latent_size")
    if not st:
        plan = (inp.data.get("plans") or {}).get("latent_size") or {}
        dims = ", ".join(plain(d) for d in plan.get("latent_dims", []))
        return said + "\n\n" + pending(
            f"VAE latent size {dims or 'study'} at {plain(plan.get('resolution'))} px",
            f"one training of ≈ {plain(plan.get('cpu_hours_each'))} CPU hour each, not run beside the trainings "
            f"in progress (`{plan.get('command', '')}`); {plan.get('fills', '')} fills this table")
    rows = [[plain(r.get("latent_dim")), count(r.get("steps")), num(r.get("recon_mse"), 4), num(r.get("fid"), 1),
             num(r.get("kid"), 4), plain(r.get("active_dims"))] for r in st.get("rows", [])]
    return "\n\n".join([said, f"facelab ({st.get('measured', '')}; `{st.get('command', '')}`):",
                        md_table(["latent dim", "steps", "held-out recon MSE", "FID", "KID", "active dims"], rows)])


def seed004(inp: Inputs, page: Page) -> str:
    """Seed 004: VAE vs DCGAN vs StyleGAN — samples, FID/KID, curves, mode collapse, latent size."""
    seed = inp.seed("004")
    if not seed:
        return pending("Seed 004", "results/data/seeds.json has no entry for it")
    v, d = seed.get("vae") or {}, seed.get("dcgan") or {}
    said = (f"**The seed's numbers.** {count(seed.get('n_images'))} images at {plain(seed.get('resolution'))} px; "
            f"VAE latents {', '.join(plain(x) for x in v.get('latents', []))}, {plain(v.get('epochs'))} epochs "
            f"({v.get('cite', '')}); DCGAN {d.get('cite', '')}. No FID or other sample-quality number is reported.")
    order = ("vae", "dcgan", "stylegan", "hvae", "cvae")
    shown = [b for k in order for b in inp.of_kind(k) if b.background == "original"]
    samples = page.link(samples_figure(shown, page.figure("seed004_samples.png")),
                        "samples of each shipped model, original backgrounds")
    runs = (inp.data.get("curves") or {}).get("runs") or {}
    curves = page.link(curves_figure(runs, page.figure("seed004_curves.png")), "GAN training losses")
    curve_note = (f"**Training curves** ({(inp.data.get('curves') or {}).get('note', '')}; `"
                  f"{(inp.data.get('curves') or {}).get('command', '')}`): runs {', '.join(sorted(runs)) or '—'}. "
                  "The VAEs' run folders were not kept: only their final losses (facelab.json) remain.") if runs else \
        pending("training curves", "run `python training/results_measure.py curves` where the run folders are")
    protocol = ("**Protocol.** Samples: each bundle's samples.png. FID/KID: Inception features; coverage: the "
                "attribute classifier's features (a synthfaces-trained CNN, not Inception).")
    parts = [header(seed, "VAE vs DCGAN vs StyleGAN (CelebA 64 px)"), said, "**Samples** (shipped samples.png):",
             samples, seed004_fid(inp), seed004_coverage(inp, seed), curve_note, curves,
             seed004_latent_size(inp, seed), protocol, NOT_COMPARABLE.format(seed_data=seed.get("dataset", ""))]
    return "\n\n".join(p for p in parts if p)
