"""RESULTS.md sections for seed 000 (HVAE levels, probes, conditional precision) and seed 001 (CelebA VAE).

Every number printed comes from a shipped bundle's JSON or a results/data/*.json file: the
functions here only select and format; absent inputs become clearly marked pending lines.
"""

from __future__ import annotations

from typing import Any

from training.results_figures import levels_figure, study_image
from training.results_inputs import (BundleFiles, Inputs, Page, count, md_table, num, pending, plain)

NOT_COMPARABLE = ("**Not comparable across columns:** the seed measured {seed_data}; facelab measures "
                  "synthfaces (procedural faces with ground-truth factors) with models trained on this CPU. "
                  "Same question, different faces, labels and model sizes — read the trends, not the digits.")


def header(seed: dict[str, Any], title: str) -> str:
    """A section's heading, the seed's question and where its numbers come from."""
    return (f"## Seed {seed.get('id', '?')} — {title}\n\n*{seed.get('title', '')}* "
            f"(`../shared/seeds/{seed.get('file', '')}`; {seed.get('dataset', '')})\n\n"
            f"**Question.** {seed.get('question', '')}")


def row_of(table: dict[str, Any], attribute: str, metric: str = "accuracy") -> list[float] | None:
    """One attribute's scores across a probe table's columns (None when it was not probed)."""
    names = table.get("attributes") or []
    return list(table[metric][names.index(attribute)]) if attribute in names else None


def baseline_of(table: dict[str, Any], attribute: str) -> float | None:
    """The majority-class rate of one attribute in a probe table's held-out split."""
    names = table.get("attributes") or []
    return table["baseline"][names.index(attribute)] if attribute in names else None


def hvae_bundle(inp: Inputs) -> BundleFiles | None:
    """The shipped hierarchical VAE, if any."""
    found = inp.of_kind("hvae")
    return found[0] if found else None


def early_note(b: BundleFiles) -> str:
    """The app's early-run label, said before its numbers."""
    note = b.meta.get("note") or "an early run"
    return (f"**Early run.** `{b.name}` is marked early in its facelab.json ({note}); its numbers below are "
            "measured on it, not on a model that reached the goal, and are replaced automatically when a "
            f"better bundle lands in `assets/{b.folder.name}`.")


# ---------------------------------------------------------------- seed 000


def _levels_rows(seed: dict[str, Any], tables: dict[str, Any], attribute: str) -> list[list[str]]:
    """Per level k: the seed's three SVM series beside facelab's four (cumulative, per level, restricted)."""
    keys = ("svm/cumulative", "svm/per_level", "age/svm/cumulative", "age/svm/per_level")
    series = {k: row_of(tables[k], attribute) if k in tables else None for k in keys}
    dims = (tables.get("svm/cumulative") or {}).get("dims") or []
    n = max([len(seed.get("cumulative", {}).get("svm", []))] + [len(v) for v in series.values() if v])
    rows = []
    for k in range(n):
        def at(values: Any, digits: int = 3) -> str:
            return num(values[k], digits) if values and k < len(values) else "—"
        seed_dims = seed.get("cumulative", {}).get("dims") or []
        rows.append([plain(k + 1), plain(seed_dims[k]) if k < len(seed_dims) else "—",
                     plain(dims[k]) if k < len(dims) else "—",
                     at(seed.get("cumulative", {}).get("svm")), at(series["svm/cumulative"]),
                     at(seed.get("per_level", {}).get("svm")), at(series["svm/per_level"]),
                     at(seed.get("age_restricted", {}).get("svm")), at(series["age/svm/cumulative"]),
                     at(series["age/svm/per_level"])])
    return rows


def seed000_levels(inp: Inputs, page: Page, seed: dict[str, Any], attribute: str = "Male") -> str:
    """The side-by-side table of gender accuracy per latent level, and its figure."""
    hvae = hvae_bundle(inp)
    tables = hvae.tables() if hvae else {}
    parts = [f"**Side by side** — {attribute} (the seed: gender), held-out accuracy of a linear SVM. Seed columns: "
             f"{seed['cumulative']['cite']}; {seed['per_level']['cite']}; {seed['age_restricted']['cite']}."]
    if hvae is None:
        parts.append(pending("facelab's HVAE columns", "no hierarchical VAE bundle in assets/ yet"))
    else:
        if hvae.early:
            parts.append(early_note(hvae))
        parts.append(f"facelab: `{hvae.name}` ({hvae.kind}, {plain(hvae.meta.get('image_size'))} px).")
    parts.append(md_table(["level k", "seed dims", "facelab dims", "seed 1..k", "facelab 1..k", "seed k alone",
                           "facelab k alone", "seed over 15, 1..k", "facelab restricted, 1..k",
                           "facelab restricted, k alone"], _levels_rows(seed, tables, attribute)))
    if hvae is None:
        return "\n\n".join(parts)
    base = baseline_of(tables.get("svm/per_level") or {}, attribute)
    age = tables.get("age/svm/per_level") or {}
    parts.append(f"Majority-class rate of {attribute} in facelab's held-out split: {num(base)} "
                 f"(restricted: {num(baseline_of(age, attribute))}; restriction: "
                 f"{(hvae.meta.get('probes') or {}).get('restriction', {}).get('rule', '—')}).")
    facelab = {name: row_of(tables[key], attribute) for name, key in (
        ("cumulative", "svm/cumulative"), ("per_level", "svm/per_level"),
        ("age_cumulative", "age/svm/cumulative")) if key in tables and row_of(tables[key], attribute)}
    parts.append(page.link(levels_figure(seed, facelab, page.figure("seed000_levels.png")),
                           f"{attribute} accuracy per latent level, seed 000 vs facelab"))
    return "\n\n".join(p for p in parts if p)


def seed000_mlp(inp: Inputs, seed: dict[str, Any]) -> str:
    """MLP vs linear SVM: the seed's ~0.8 for both, facelab's per attribute where an MLP table exists."""
    mlp = seed.get("mlp") or {}
    parts = [f"**MLP vs SVM.** Seed: MLP with {plain(mlp.get('hidden_layers'))} hidden layers ≈ "
             f"{num(mlp.get('score'), 1)}, no better than the SVM ({mlp.get('cite', '')}); more levels plateau at "
             f"≈ {num(seed.get('more_levels', {}).get('plateau'), 1)} ({seed.get('more_levels', {}).get('cite', '')})."]
    hvae = hvae_bundle(inp)
    hvae_mlp = [k for k in (hvae.tables() if hvae else {}) if k.startswith("mlp/")]
    if hvae is None or not hvae_mlp:
        parts.append(pending("facelab's HVAE MLP table", "the HVAE bundle has no MLP probe table yet "
                             "(`python training/probe.py assets/hvae_synthfaces64 --mlp all` writes one)"))
    flat = [b for b in inp.of_kind("vae") if "mlp/all" in b.tables() and "svm/per_level" in b.tables()]
    for b in ([hvae] if hvae is not None and hvae_mlp else []) + flat[:1]:
        tables = b.tables()
        svm, mlp_t = tables["svm/per_level"], tables[hvae_mlp[0] if b is hvae else "mlp/all"]
        rows = [[a, num(row_of(svm, a)[-1]), num(row_of(mlp_t, a)[-1]), num(baseline_of(mlp_t, a))]
                for a in mlp_t["attributes"] if row_of(svm, a)]
        parts.append(f"`{b.name}` ({b.kind}; SVM per level, last column; MLP on all levels; train "
                     f"{count(mlp_t.get('n_train'))}, held out {count(mlp_t.get('n_test'))}):")
        parts.append(md_table(["attribute", "linear SVM", "MLP", "majority"], rows))
    return "\n\n".join(parts)


def _cell(value: Any) -> str:
    """A target-1 / target-0 pair, or a single number (an acceptance rate)."""
    if isinstance(value, list):
        return " / ".join(num(v) for v in value)
    return num(value, 2) if value is not None else "—"


def conditional_table(study: dict[str, Any]) -> str:
    """One saved conditional-precision study: per attribute, each method's target 1 / target 0 precision."""
    rows = study.get("attributes") or []
    methods = list(dict.fromkeys(k for r in rows for k in r if k not in ("attribute", "prevalence")))
    headers = ["attribute", "prevalence", *[m.replace("_", " ") for m in methods]]
    body = [[r["attribute"], num(r.get("prevalence")), *[_cell(r.get(m)) for m in methods]] for r in rows]
    legend = "; ".join(f"*{k.replace('_', ' ')}*: {v}" for k, v in (study.get("methods") or {}).items())
    minimum = study.get("minimum") or {}
    lows = ", ".join(f"{k.replace('_', ' ')} {num(v)}" for k, v in minimum.items())
    return "\n\n".join(p for p in [md_table(headers, body), legend,
                                   f"Minimum over attributes and targets: {lows}." if lows else ""] if p)


def _study_protocol(study: dict[str, Any]) -> str:
    """Only the protocol facts a study file states."""
    proto = study.get("protocol") or {}
    facts = [f"judge {proto['judge']}" if proto.get("judge") else "",
             f"{count(proto['n_per_target'])} faces per target" if proto.get("n_per_target") else "",
             f"prior temperature {plain(proto['temperature'])}" if proto.get("temperature") else "",
             proto.get("probes", "")]
    return "; ".join(f for f in facts if f)


def _summary(summary: dict[str, Any]) -> str:
    return "; ".join(f"{k.replace('_', ' ')} {' / '.join(plain(x) for x in v) if isinstance(v, list) else plain(v)}"
                     for k, v in summary.items())


def seed000_precision(inp: Inputs, seed: dict[str, Any]) -> str:
    """Conditional-sampling precision: the seed's 81 in 100 beside facelab's judged precision."""
    prec = seed.get("precision") or {}
    parts = [f"**Conditional sampling precision.** Seed: {plain(prec.get('accepted'))} of {plain(prec.get('of'))} "
             f"generated faces have the asked gender ({prec.get('cite', '')})."]
    # full tables first, then the studies that only kept a summary
    studies = [s for s in inp.studies("conditional_") if inp.current(s) is not None  # stale ones are not shown
               and s.get("kind") != "cvae"]  # seed 001's model: in its section
    for study in sorted(studies, key=lambda s: (not s.get("protocol"), s.get("bundle", ""))):
        b = inp.current(study)
        label = f"`{study.get('bundle')}`" + (" (early run)" if b.early else "")
        detail = "; ".join(x for x in (study.get("levels") or "", _study_protocol(study)) if x)
        parts.append(f"facelab {label} ({study.get('kind', '')}{'; ' + detail if detail else ''}). "
                     f"Source: {study.get('source') or study.get('measured', '')}; `{study.get('command', '')}`.")
        if study.get("attributes"):
            parts.append(conditional_table(study))
        if study.get("summary"):
            parts.append("Summary: " + _summary(study["summary"]) + ".")
    hvae = hvae_bundle(inp)
    if hvae is None or not any(inp.current(s) is hvae for s in studies):
        plan = (inp.data.get("plans") or {}).get("hvae_conditional") or {}
        parts.append(pending("level-wise conditional precision of the HVAE (seed 000's method, per level)",
                             f"`{plan.get('command', 'python training/results_measure.py conditional --bundle BUNDLE')}` "
                             f"once the new HVAE is shipped writes {plan.get('fills', 'its JSON')}, which fills this row"))
    return "\n\n".join(parts)


def seed000_tables(inp: Inputs) -> str:
    """All of the HVAE's probe tables in seed 000's layout (facelab.probes.fit.tables_markdown)."""
    from facelab.probes.classifiers import ProbeTable
    from facelab.probes.fit import tables_markdown

    hvae = hvae_bundle(inp)
    if hvae is None or not hvae.tables():
        return ""
    tables = {k: ProbeTable.from_dict(v) for k, v in sorted(hvae.tables().items())}
    return (f"<details><summary>Every probe table of <code>{hvae.name}</code> (accuracy and balanced accuracy, "
            f"all attributes)</summary>\n\n{tables_markdown(tables, hvae.meta.get('probes'))}\n\n</details>")


def seed000(inp: Inputs, page: Page) -> str:
    """Seed 000: gender per HVAE level, age restriction, MLP vs SVM, level-wise conditional precision."""
    seed = inp.seed("000")
    if not seed:
        return pending("Seed 000", "results/data/seeds.json has no entry for it")
    hvae = hvae_bundle(inp)
    probes = (hvae.meta.get("probes") or {}) if hvae else {}
    enc = (probes.get("encoding") or {}).get("dataset") or {}
    protocol = (f"**Protocol.** Seed: {seed.get('protocol', '')}. facelab: {count(probes.get('n'))} "
                f"{enc.get('class', 'faces')} faces at {plain(enc.get('size'))} px (dataset seed "
                f"{plain(enc.get('seed'))}) encoded to posterior means, linear SVM per level and on levels 1..k; "
                f"held-out split as in each table; restricted tables keep "
                f"{count((probes.get('restriction') or {}).get('n'))} faces.") if hvae else ""
    parts = [header(seed, "HVAE levels and gender (FFHQ, VD-VAE)"), seed000_levels(inp, page, seed),
             seed000_mlp(inp, seed), seed000_precision(inp, seed), seed000_tables(inp), protocol,
             NOT_COMPARABLE.format(seed_data=seed.get("dataset", ""))]
    return "\n\n".join(p for p in parts if p)


# ---------------------------------------------------------------- seed 001


def seed001_split(inp: Inputs) -> str:
    """Prevalence per split, balanced vs random (results/data/splits.json)."""
    s = inp.data.get("splits")
    if not s:
        return pending("balanced split prevalence", "run `python training/results_measure.py splits`")
    b, r = s["balanced"], s["random"]
    rows = [[a, num(b["all"][a], 4), num(b["train"][a], 4), num(b["valid"][a], 4), num(b["test"][a], 4),
             num(s["balanced_spread"][a], 4), num(s["random_spread"][a], 4)] for a in s["attributes"]]
    return (f"**Balanced split** (`{s.get('command')}`: {s.get('measured')}; stratified on "
            f"{', '.join(s.get('stratified_on') or [])}):\n\n"
            + md_table(["attribute", "all", "train", "valid", "test", "max − min, balanced", "max − min, random"],
                       rows))


def seed001_classifier(inp: Inputs) -> str:
    """The shipped attribute classifier's held-out accuracy per attribute."""
    clf = next(iter(inp.of_kind("attribute_classifier")), None)
    acc = (clf.meta.get("accuracy") or {}) if clf else {}
    if not acc:
        return pending("attribute classifier per attribute", "no assets/attribute_classifier/facelab.json")
    rows = [[a, num(acc["held_out_accuracy"][a]), num(acc["balanced_accuracy"][a]), num(acc["majority_baseline"][a])]
            for a in clf.meta.get("attribute_names", sorted(acc["held_out_accuracy"]))]
    rows.append(["**mean**", num(acc.get("mean_accuracy")), num(acc.get("mean_balanced_accuracy")),
                 num(acc.get("mean_majority_baseline"))])
    return (f"**Attribute classifier** (`{clf.folder.name}`: a small CNN trained from scratch, "
            f"{count(acc.get('n_train'))} training faces, {count(acc.get('steps'))} steps, seed {plain(acc.get('seed'))}, "
            f"{plain(clf.meta.get('image_size'))} px; held out: {clf.meta.get('held_out', '')}, "
            f"n = {count(acc.get('n_eval'))}):\n\n"
            + md_table(["attribute", "held-out accuracy", "balanced accuracy", "majority baseline"], rows))


def seed001_traversal(inp: Inputs, page: Page, seed: dict[str, Any]) -> str:
    """Dimensions found automatically by intervention effects, beside the seed's hand-picked ones."""
    manual = seed.get("manual_dims") or {}
    parts = [f"**Latent dimensions, by hand (seed)** — {manual.get('cite', '')}:",
             md_table(["dimension", "meaning (seed's reading)"],
                      [[plain(r["dim"]), r["meaning"]] for r in manual.get("rows", [])], "rl")]
    studies = [s for s in inp.studies("intervention_") if inp.current(s, "name") is not None]
    if not studies:
        parts.append(pending("automatic traversal", "run `python training/results_measure.py intervention`"))
    for st in studies:
        rows = [[plain(r["dim"]), r["factor"], num(r["effect"], 2), r["runner_up"], num(r["runner_up_effect"], 2)]
                for r in st["top_dims"]]
        parts.append(f"**Found automatically — `{st['name']}`** ({plain(st['active_dims'])} of "
                     f"{plain(st['latent_dims'])} dimensions active; n = {count(st['n'])} intervened faces, "
                     f"seed {plain(st['seed'])}; effect = mean |Δz| / std z when one factor changes, about one for a "
                     f"full-range move; `{st['command']}`):")
        parts.append(md_table(["dimension", "factor it moves", "effect", "next factor", "its effect"], rows, "rlrlr"))
        image = study_image(inp.data_dir / st.get("traversal_image", ""))
        parts.append(page.link(image, f"traversal of {st['name']}'s most factor-specific dimensions"))
    return "\n\n".join(p for p in parts if p)


def seed001_cvae(inp: Inputs) -> str:
    """The conditional VAE row: its metrics when shipped, pending otherwise."""
    cvae = next(iter(inp.of_kind("cvae")), None)
    if cvae is None:
        return pending("CVAE (seed 001's model)", "assets/cvae_synthfaces64 is training; its metrics.json "
                       "(FID protocol, reconstruction, conditional attribute accuracy) fills this table")
    fid = cvae.fid() or {}
    rows = [[f"FID ({count(fid.get('n'))} generated vs held out, {plain(fid.get('resolution'))} px)",
             num(fid.get("fid"), 1)],
            ["data floor FID", num(fid.get("fid_floor"), 1)],
            ["reconstruction MSE", num(cvae.metric("recon_mse"), 4)],
            ["conditional attribute accuracy (judged)", num(cvae.metric("conditional_attribute_accuracy"))]]
    per = ((cvae.metrics.get("details") or {}).get("attributes") or {}).get("conditional_attribute_accuracy") or {}
    table = md_table(["attribute", "judged accuracy of conditioned samples"], [[a, num(v)] for a, v in per.items()])
    studies = [s for s in inp.studies("conditional_") if s.get("kind") == "cvae" and inp.current(s) is cvae]
    judged = []
    for study in studies:
        judged += [f"Conditional generation judged by an independent classifier ({_study_protocol(study)}); "
                   f"`{study.get('command', '')}`:", conditional_table(study)]
    return "\n\n".join(p for p in [
        f"**CVAE** `{cvae.name}`" + (" (early run)" if cvae.early else "") + ":",
        md_table(["metric", "value"], rows), table if per else "", *judged] if p)


def seed001(inp: Inputs, page: Page) -> str:
    """Seed 001: balanced split, classifier per attribute, automatic traversal, CVAE."""
    seed = inp.seed("001")
    if not seed:
        return pending("Seed 001", "results/data/seeds.json has no entry for it")
    said = (f"**The seed's numbers.** Classifier: {seed.get('classifier', {}).get('cite', '')} — no accuracy is "
            f"given. Split: {seed.get('split', {}).get('cite', '')} — no prevalence is given. Latent size "
            f"{plain(seed.get('latent_dims'))}.")
    protocol = ("**Protocol.** Split: factor prior of synthfaces, no rendering. Classifier: held-out faces of "
                "the training distribution. Traversal: uniform factors rendered at the bundle's size, posterior "
                "means; the image traverses each listed dimension over the stored values from one held-out face.")
    parts = [header(seed, "CelebA attributes, balanced split and a 64-dimension VAE"), said, seed001_split(inp),
             seed001_classifier(inp), seed001_traversal(inp, page, seed), seed001_cvae(inp), protocol,
             NOT_COMPARABLE.format(seed_data=seed.get("dataset", ""))]
    return "\n\n".join(p for p in parts if p)
