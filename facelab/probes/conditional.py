"""Conditional sampling with latent probes: seed 000's level-by-level rejection, and boundary shifting.

Seed 000 samples p(z | c) ∝ p(c | z) p(z) with a linear SVM as p(c | z). For the hierarchical VAE it
goes level by level: draw z_k from the prior given the frozen levels z_<k, accept it when the SVM
gives the target class, freeze it, go on to z_{k+1}. Two SVMs can judge level k:

- variant 1, "per_level": the SVM fitted on z_k alone,      p(z_k | c, z_<k) ∝ p(z_k | z_<k) p(c | z_k)
- variant 2, "cumulative": the SVM fitted on z_1..z_k,      p(z_k | c, z_<k) ∝ p(z_k | z_<k) p(c | z_≤k)

Every constrained attribute must be on its target side at once. `levels` picks the constrained
levels: all (default, as seed 000), a list, or "informative" — those where every target's probe
reaches balanced accuracy INFORMATIVE (a chance-level probe can only waste attempts or, worse,
reject a class it never predicts). Each level has a budget of max_attempts draws per sample; a
sample that runs out keeps its best draw (largest worst-attribute margin), is marked unsatisfied,
and the level is listed in `exhausted` — never an endless loop.

Flat latents (VAE z, DCGAN z, StyleGAN w or z) get the same rejection against the SVM, and "shift"
mode (InterFaceGAN): draw once, then move each sample along boundary normals until every decision
is on its target side by `margin` (SVM decision units: 1 is the SVM's own margin). With several
attributes each is moved along its conditional direction — its normal with the other constrained
normals projected off (facelab.probes.directions.conditional_direction) — so fixing one attribute
never moves another's decision. "nearest" moves each draw instead to the nearest point (Euclidean, in
the latent) on the target side of every boundary by `margin`: the projection onto the intersection
of half-spaces (Hildreth's algorithm). It moves no further than needed — constraints already met
stay free unless the move would break them — so draws stay closer to where the prior put them, and
the decoder sees more typical latents. The HVAE accepts "shift" and "nearest" too: each constrained
level's draw is shifted along that level's block of the SVM normal before it is frozen.

The probes come from bundle.extras["probes"] (written by `python training/probe.py BUNDLE`). When
the bundle has SVMs fitted on classifier-labelled prior samples (probe.py --classifier), they are
used by default (probes="auto"): they estimate p(c | decode(z)) where the sampler draws z, while
seed 000's posterior-mean probes only see the aggregate posterior. On a 16 px synthfaces VAE (800
steps) this took Eyeglasses precision, judged by a second independently trained classifier, from
0.57 to 0.92 (rejection) and 0.97 (shift).
Hair colours name one property: a face with Brown_Hair has no Black_Hair. A single linear boundary
cannot cut a middle class out of a line (brown lies between black and blond), so shifting along the
Brown_Hair normal alone walks into black hair. With exclusive=True (default) a target of 1 for one
member of an EXCLUSIVE_GROUPS group adds the other members at 0 (unless targeted explicitly, or
their probe is no better than chance: balanced accuracy below INFORMATIVE), which keeps each on its
"absent" side while the target moves. The added targets are listed in ConditionalResult.implied.
`precision()` then asks an image attribute classifier, which never saw a latent, how many of the
images really have the target attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from facelab.models.base import randn
from facelab.probes.classifiers import LinearProbe, ProbeTable, to_numpy
from facelab.probes.encode import inference
from facelab.probes.moves import OVERSHOOT, SHIFT_MARGIN, mover, rejection

Method = Literal["rejection", "shift", "nearest"]
MOVES = ("shift", "nearest")  # methods that draw once and move the draw
Variant = Literal["per_level", "cumulative"]
DEFAULT_MAX_ATTEMPTS = 100
INFORMATIVE = 0.6  # levels="informative": balanced accuracy every target's probe must reach at a level
# Attributes naming values of one property (CelebA's and synthfaces' hair colours): one present
# implies the others absent.
EXCLUSIVE_GROUPS: tuple[tuple[str, ...], ...] = (("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"),)


class ProbesMissingError(RuntimeError):
    """The bundle has no probes (or not the ones asked for); the message says which command makes them."""


@dataclass
class ConditionalResult:
    """Images drawn under attribute targets, with the latents and the sampler's own bookkeeping.

    acceptance_rate / attempts: per constrained level name (one entry for flat latents): accepted
    draws / draws, and the number of draws (in shift mode: the share of draws already on the
    target side before any move). satisfied[i]: sample i met every target at every
    constrained level (by the probes); exhausted: levels where some sample ran out of attempts.
    """

    images: torch.Tensor
    latents: list[torch.Tensor]
    level_names: list[str]
    acceptance_rate: dict[str, float]
    attempts: dict[str, int]
    targets: dict[str, int]
    satisfied: np.ndarray
    exhausted: list[str] = field(default_factory=list)
    method: str = "rejection"
    variant: str = "per_level"
    probe_source: str = "dataset"  # which probes judged: "dataset" (seed 000's) or "generated"
    implied: list[str] = field(default_factory=list)  # targets added at 0 by EXCLUSIVE_GROUPS

    @property
    def probe_precision(self) -> float:
        """Fraction of samples the probes judge to meet every target (1.0 unless the budget ran out)."""
        return float(np.mean(self.satisfied)) if len(self.satisfied) else float("nan")


# ---------------------------------------------------------------- probes and targets


def _probes(bundle: Any) -> Any:
    probes = getattr(bundle, "extras", {}).get("probes")
    if probes is None:
        raise ProbesMissingError(f"bundle {bundle.name!r} has no latent probes: "
                                 f"run python training/probe.py {bundle.path} first")
    return probes


def probe_table(bundle: Any, variant: str = "per_level", kind: str = "svm", source: str = "dataset") -> ProbeTable:
    """The bundle's fitted probe table kind/variant (e.g. svm/cumulative), with a clear error if missing.

    source "dataset": the probes of the encoded latents (seed 000's); "generated": those fitted on
    classifier-labelled prior samples; "auto": generated when the bundle has them, else dataset.
    """
    if variant not in ("per_level", "cumulative"):
        raise ValueError(f"variant must be 'per_level' or 'cumulative', got {variant!r}")
    if source not in ("auto", "dataset", "generated"):
        raise ValueError(f"source must be 'auto', 'dataset' or 'generated', got {source!r}")
    probes = _probes(bundle)
    generated = f"generated/{kind}/{variant}"
    source = resolve_source(bundle, variant, kind, source)
    try:
        return probes.table(generated if source == "generated" else f"{kind}/{variant}")
    except KeyError as err:
        hint = " --classifier CLASSIFIER" if source == "generated" else ""
        raise ProbesMissingError(f"bundle {bundle.name!r} has no {source} {kind}/{variant} probes: "
                                 f"run python training/probe.py {bundle.path}{hint} first") from err


def resolve_source(bundle: Any, variant: str = "per_level", kind: str = "svm", source: str = "auto") -> str:
    """"generated" or "dataset": which probes probe_table(..., source) reads for this bundle."""
    if source != "auto":
        return source
    return "generated" if f"generated/{kind}/{variant}" in _probes(bundle).meta.get("tables", {}) else "dataset"


def implied_targets(targets: dict[str, int], known: Sequence[str]) -> dict[str, int]:
    """targets plus, for each exclusive group with a member targeted 1, its other known members at 0.

    known: the attributes whose probes can be trusted (informative_attributes); a chance-level probe's
    "absent" side is noise, and constraining to it only moves samples at random.
    """
    out = dict(targets)
    for group in EXCLUSIVE_GROUPS:
        if any(int(targets.get(a, 0)) == 1 for a in group):
            out.update({a: 0 for a in group if a in known and a not in targets})
    return out


def informative_attributes(table: ProbeTable) -> list[str]:
    """Attributes whose probe reaches balanced accuracy INFORMATIVE in some column of the table."""
    best = np.asarray(table.balanced_accuracy, np.float64).reshape(len(table.attributes), -1).max(1)
    return [a for a, b in zip(table.attributes, best) if b >= INFORMATIVE]


def _check_targets(targets: dict[str, int], table: ProbeTable) -> tuple[list[str], np.ndarray]:
    """Target names (validated against the table) and their signs (+1 present, -1 absent)."""
    if not targets:
        raise ValueError("targets must name at least one attribute, e.g. {'Male': 1}")
    unknown = sorted(set(targets) - set(table.attributes))
    if unknown:
        raise ValueError(f"no probes for attribute(s) {unknown}; probed: {table.attributes}")
    bad = {a: v for a, v in targets.items() if int(v) not in (0, 1) or float(v) != int(v)}
    if bad:
        raise ValueError(f"target values must be 0 or 1, got {bad}")
    names = list(targets)
    return names, np.array([1.0 if int(targets[a]) else -1.0 for a in names])


def signed_margins(probes: Sequence[LinearProbe], signs: np.ndarray, levels: Sequence[Any]) -> np.ndarray:
    """[n, A] signed SVM decisions (positive = on the target side) of full per-level latents."""
    return np.stack([s * p.decision(p.select(levels)) for p, s in zip(probes, signs)], 1)


def _block(probe: LinearProbe, level_dims: Sequence[int], k: int) -> slice:
    """The slice of a probe's input that belongs to level k (probe inputs concatenate its levels)."""
    start = sum(level_dims[j] for j in probe.levels if j < k)
    return slice(start, start + level_dims[k])


def _shift_level(probes: Sequence[LinearProbe], signs: np.ndarray, levels: list[Any], k: int,
                 margin: float, method: str = "shift") -> np.ndarray:
    """Level k of full per-level latents shifted so every probe decision meets its target by margin."""
    flat = [to_numpy(x).reshape(len(x), -1).astype(np.float64) for x in levels]
    dims = [x.shape[1] for x in flat]
    weights = np.stack([p.raw()[0][_block(p, dims, k)] for p in probes])
    decisions = np.stack([p.decision(p.select(flat)) for p in probes], 1)
    return mover(method)(flat[k], weights, decisions, signs, margin)


# ---------------------------------------------------------------- hierarchical VAE


def _hvae_level(model: Any, k: int, frozen: list[torch.Tensor], probes: list[LinearProbe], signs: np.ndarray,
                n: int, method: str, margin: float, max_attempts: int, temperature: float,
                generator: torch.Generator | None) -> tuple[torch.Tensor, np.ndarray, int, int]:
    """Level k under the targets, given frozen levels 0..k-1: (z_k, satisfied, draws, accepted)."""
    shape = model.latent_levels[k].shape

    def draw(idx: np.ndarray) -> torch.Tensor:
        prev = [z[torch.as_tensor(idx, device=z.device)] for z in frozen]
        return model.sample_level(k, prev, len(idx), temperature, generator)

    def score(idx: np.ndarray, cand: torch.Tensor) -> np.ndarray:
        prev = [z[torch.as_tensor(idx, device=z.device)] for z in frozen]
        return signed_margins(probes, signs, [*prev, cand]).min(1)

    if method == "rejection":
        return rejection(n, draw, score, max_attempts, margin)
    everyone = np.arange(n)
    cand = draw(everyone)
    moved = _shift_level(probes, signs, [*frozen, cand], k, margin, method)
    z_k = torch.as_tensor(moved, dtype=cand.dtype, device=cand.device).reshape(n, *shape)
    ok = score(everyone, z_k) >= margin * (1 - OVERSHOOT)
    return z_k, ok, n, int((score(everyone, cand) > margin).sum())


def _hvae_sample(model: Any, table: ProbeTable, targets: dict[str, int], n: int, method: str,
                 levels: Sequence[int | str] | str | None, margin: float, max_attempts: int, temperature: float,
                 generator: torch.Generator | None, variant: str) -> ConditionalResult:
    """Seed 000's level-by-level sampling over the HVAE's latent groups."""
    names, signs = _check_targets(targets, table)
    specs = model.latent_levels
    constrained = _constrained_levels(levels, [s.name for s in specs], table, names)
    frozen: list[torch.Tensor] = []
    rates, attempts, exhausted = {}, {}, []
    satisfied = np.ones(n, bool)
    with inference(model):
        for k, spec in enumerate(specs):
            if k not in constrained:
                frozen.append(model.sample_level(k, frozen, n, temperature, generator))
                continue
            probes = [table.probe(a, k) for a in names]
            z_k, ok, drawn, accepted = _hvae_level(model, k, frozen, probes, signs, n, method, margin,
                                                   max_attempts, temperature, generator)
            frozen.append(z_k)
            rates[spec.name], attempts[spec.name] = accepted / max(drawn, 1), drawn
            satisfied &= ok
            if not ok.all():
                exhausted.append(spec.name)
        images = model.decode(frozen)
    return ConditionalResult(images=images, latents=frozen, level_names=[s.name for s in specs],
                             acceptance_rate=rates, attempts=attempts, targets=dict(targets),
                             satisfied=satisfied, exhausted=exhausted, method=method, variant=variant)


def _constrained_levels(levels: Sequence[int | str] | str | None, names: list[str], table: ProbeTable,
                        targets: list[str]) -> set[int]:
    """Level indices to constrain: all (None), "informative", or given names/indices."""
    if levels is None:
        return set(range(len(names)))
    if isinstance(levels, str) and levels == "informative":
        rows = [table.attributes.index(a) for a in targets]
        worst = table.balanced_accuracy[rows].min(0)  # per column: the least readable target
        chosen = {k for k in range(len(names)) if worst[k] >= INFORMATIVE}
        return chosen or {int(np.argmax(worst))}
    out = set()
    for lv in [levels] if isinstance(levels, (str, int)) else levels:
        k = names.index(lv) if isinstance(lv, str) and lv in names else lv
        if not isinstance(k, (int, np.integer)) or not 0 <= int(k) < len(names):
            raise ValueError(f"unknown latent level {lv!r}; levels are {names} (or indices 0..{len(names) - 1}), "
                             "or 'informative'")
        out.add(int(k))
    if not out:
        raise ValueError("levels must name at least one latent level (or be None for all)")
    return out


# ---------------------------------------------------------------- flat latents


@dataclass
class FlatSpace:
    """A flat latent space: how to draw latents and how to render them, and its probe column."""

    name: str
    draw: Callable[[int, torch.Generator | None], torch.Tensor]
    render: Callable[[torch.Tensor], torch.Tensor]


def flat_space(model: Any, space: str | None = None, temperature: float = 1.0, psi: float = 1.0) -> FlatSpace:
    """The flat latent space of a VAE/DCGAN ("z") or a StyleGAN ("w", default, or "z")."""
    dev = model.device
    if model.kind == "stylegan":
        space = space or "w"
        z_dim = int(model.config.z_dim)
        if space == "w":
            return FlatSpace("w", lambda m, g: model.mapping(randn((m, z_dim), g, dev) * temperature, psi)[:, 0],
                             lambda w: model.synthesis(w).clamp(-1, 1))
        if space == "z":
            return FlatSpace("z", lambda m, g: randn((m, z_dim), g, dev) * temperature,
                             lambda z: model.synthesis(model.mapping(z, psi)).clamp(-1, 1))
        raise ValueError(f"StyleGAN latent space must be 'w' or 'z', got {space!r}")
    if space not in (None, "z"):
        raise ValueError(f"{model.kind} has one latent space 'z', got {space!r}")
    if model.kind == "dcgan":
        return FlatSpace("z", lambda m, g: model.draw_z(m, temperature, g), model.generate)
    if model.kind == "vae":
        dim = int(model.config.latent_dim)
        return FlatSpace("z", lambda m, g: randn((m, dim), g, dev) * temperature, lambda z: model.decode([z]))
    if model.kind == "cvae":
        raise ValueError("a conditional VAE is conditioned natively: use model.sample(n, attributes=...)")
    raise ValueError(f"no flat latent space for model kind {model.kind!r}")


def _flat_sample(model: Any, table: ProbeTable, targets: dict[str, int], n: int, method: str, margin: float,
                 max_attempts: int, generator: torch.Generator | None, space: FlatSpace) -> ConditionalResult:
    """Rejection against, or shifting across, the SVM boundaries of one flat latent space."""
    names, signs = _check_targets(targets, table)
    if space.name not in table.columns:
        raise ProbesMissingError(f"the probes have no column for latent space {space.name!r} "
                                 f"(columns: {table.columns}); re-run python training/probe.py")
    probes = [table.probe(a, space.name) for a in names]

    def score(_: np.ndarray, z: torch.Tensor) -> np.ndarray:
        return np.stack([s * p.decision(z) for p, s in zip(probes, signs)], 1).min(1)

    with inference(model):
        if method == "rejection":
            z, ok, drawn, accepted = rejection(n, lambda idx: space.draw(len(idx), generator), score,
                                               max_attempts, margin)
        else:
            z0 = space.draw(n, generator)
            weights = np.stack([p.raw()[0] for p in probes])
            decisions = np.stack([p.decision(z0) for p in probes], 1)
            z = torch.as_tensor(mover(method)(to_numpy(z0), weights, decisions, signs, margin),
                                dtype=z0.dtype, device=z0.device)
            ok = score(None, z) >= margin * (1 - OVERSHOOT)
            drawn, accepted = n, int((score(None, z0) > margin).sum())
        images = space.render(z)
    return ConditionalResult(images=images, latents=[z], level_names=[space.name],
                             acceptance_rate={space.name: accepted / max(drawn, 1)},
                             attempts={space.name: drawn}, targets=dict(targets), satisfied=ok,
                             exhausted=[] if ok.all() else [space.name], method=method, variant="per_level")


# ---------------------------------------------------------------- entry points


def conditional_sample(bundle: Any, targets: dict[str, int], n: int, method: Method = "rejection",
                       variant: Variant = "per_level", levels: Sequence[int | str] | str | None = None,
                       generator: torch.Generator | None = None, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                       margin: float | None = None, temperature: float = 1.0,
                       space: str | None = None, probes: str = "auto", exclusive: bool = True) -> ConditionalResult:
    """n images whose latents the bundle's SVM probes put on the target side of every targeted attribute."""
    if method not in ("rejection", *MOVES):
        raise ValueError(f"method must be 'rejection', 'shift' or 'nearest', got {method!r}")
    if int(n) < 1 or int(max_attempts) < 1:
        raise ValueError(f"n and max_attempts must be >= 1, got n={n}, max_attempts={max_attempts}")
    margin = (0.0 if method == "rejection" else SHIFT_MARGIN) if margin is None else float(margin)
    if method in MOVES and margin <= 0:
        raise ValueError(f"{method} mode needs margin > 0 (a sample left on the boundary has no class), got {margin}")
    model = bundle.model
    if model.kind == "hvae":
        table = probe_table(bundle, variant, source=probes)
        full = implied_targets(targets, informative_attributes(table)) if exclusive else dict(targets)
        res = _hvae_sample(model, table, full, int(n), method, levels, margin, int(max_attempts),
                           float(temperature), generator, variant)
        res.probe_source = resolve_source(bundle, variant, source=probes)
    else:  # one flat level: variant 1 and 2 are the same classifier
        flat = flat_space(model, space, float(temperature))
        allowed = (None, "informative", flat.name, 0, (flat.name,), (0,))
        if (tuple(levels) if isinstance(levels, list) else levels) not in allowed:
            raise ValueError(f"{model.kind} has one latent level here ({flat.name!r}); levels={levels!r} does not apply")
        table = probe_table(bundle, "per_level", source=probes)
        full = implied_targets(targets, informative_attributes(table)) if exclusive else dict(targets)
        res = _flat_sample(model, table, full, int(n), method, margin, int(max_attempts), generator, flat)
        res.probe_source = resolve_source(bundle, "per_level", source=probes)
    res.implied = [a for a in full if a not in targets]
    return res


def precision(result: ConditionalResult, classifier: Any, batch_size: int = 256) -> dict[str, float]:
    """Per target attribute, the fraction of images the image classifier judges to have the target value."""
    names = list(classifier.attribute_names)
    missing = sorted(set(result.targets) - set(names))
    if missing:
        raise KeyError(f"the classifier does not judge {missing}; it knows {names}")
    probs = np.concatenate([to_numpy(classifier.predict(result.images[i:i + batch_size]))
                            for i in range(0, len(result.images), batch_size)])
    return {a: float(((probs[:, names.index(a)] > 0.5) == bool(t)).mean()) for a, t in result.targets.items()}
