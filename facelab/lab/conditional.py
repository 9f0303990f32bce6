"""Conditional sampling for the app: targets in, samples + acceptance rates + an image classifier's verdict out.

The sampling itself is facelab.probes.conditional (seed 000's level-by-level rejection, boundary
shifting, or the nearest move to the target side). A conditional VAE needs no probes: its decoder takes the targets as conditioning.
The verdict comes from an image attribute classifier that never saw a latent, when one is available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from facelab.hub import Bundle
from facelab.lab.bundles import LabError
from facelab.lab.latents import cvae_attributes, generator

MAX_SAMPLES = 64
#: CVAE condition strength and filter confidence (facelab.models.cvae_sampling; BENCHMARKS.md measures them)
CVAE_STRENGTH = 1.5
CVAE_CONFIDENCE = 0.9
CVAE_DRAWS_PER_FACE = 8  # the app's filter budget: at most 8 · 64 decodes (~2.5 s on one core)


@dataclass
class Conditioned:
    """What the Conditional tab shows."""

    images: torch.Tensor
    acceptance_rate: dict[str, float]
    satisfied: np.ndarray  # per sample: the probes (or the CVAE's conditioning) meet every target
    targets: dict[str, int]
    verdict: np.ndarray | None = None  # [N, len(targets)] classifier probabilities, target order
    notes: list[str] = field(default_factory=list)


def target_attributes(bundle: Bundle) -> list[str]:
    """Attributes the bundle can be conditioned on (probe table rows, or the CVAE's inputs)."""
    if bundle.model.kind == "cvae":
        return list(bundle.model.attribute_names)
    probes = bundle.extras.get("probes")
    table = (probes.meta.get("tables") or {}).get("svm/per_level") if probes is not None else None
    return list(table["attributes"]) if table else []


def parse_targets(items: Sequence[str] | dict[str, int] | None) -> dict[str, int]:
    """{'Male': 0, 'Eyeglasses': 1} from such a dict or from picks like ['Male = 0', 'Eyeglasses = 1']."""
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items or []:
            name, sep, value = str(item).partition("=")
            if not sep:
                raise LabError(f"target {item!r} must look like 'Attribute = 0' or 'Attribute = 1'")
            pairs.append((name.strip(), value.strip()))
    out: dict[str, int] = {}
    for name, value in pairs:
        if str(value) not in ("0", "1"):
            raise LabError(f"target {name} = {value!r}: the value must be 0 or 1")
        if name in out and out[name] != int(value):
            raise LabError(f"{name} is asked to be both 0 and 1")
        out[name] = int(value)
    if not out:
        raise LabError("pick at least one target, e.g. 'Male = 0' or 'Eyeglasses = 1'")
    return out


def _cvae(bundle: Bundle, targets: dict[str, int], n: int, seed: int, classifier: Any | None) -> Conditioned:
    from facelab.models.cvae_sampling import sample_cvae

    row_seeds = iter(range(int(seed), int(seed) + 100_000))  # a new attribute-row seed per batch, reproducible
    rows = lambda k: cvae_attributes(bundle, k, next(row_seeds), targets)  # noqa: E731
    g = generator(seed)
    try:
        got = sample_cvae(bundle.model, rows, targets, n, strength=CVAE_STRENGTH, generator=g,
                          classifier=classifier, confidence=CVAE_CONFIDENCE, max_draws=CVAE_DRAWS_PER_FACE * n)
        images, satisfied = got.images.float().cpu(), np.ones(len(got.images), bool)
        notes = [f"conditional VAE: the targets are decoder inputs at strength {CVAE_STRENGTH} and the other "
                 "attributes follow the data given them"]
        if classifier is not None:
            notes.append(f"kept the faces the image classifier puts on the targets' side with probability ≥ "
                         f"{CVAE_CONFIDENCE} ({got.acceptance_rate:.0%} of {got.draws} draws), so its verdict "
                         "agrees by construction; BENCHMARKS.md gives an independent judge's precision")
        if len(images) < n:  # the filter's budget ran out: fill up with plain draws, marked as not met
            rest = sample_cvae(bundle.model, rows, targets, n - len(images), strength=CVAE_STRENGTH, generator=g)
            images = torch.cat([images, rest.images.float().cpu()])
            satisfied = np.concatenate([satisfied, np.zeros(n - len(satisfied), bool)])
            notes.append(f"only {int(satisfied.sum())} of {n} faces passed the classifier in {got.draws} draws; "
                         "the rest are unfiltered draws")
    except ValueError as e:
        raise LabError(str(e)) from None
    return Conditioned(images, {"z": got.acceptance_rate}, satisfied, targets, notes=notes)


def sample(bundle: Bundle, targets: dict[str, int], n: int, seed: int, method: str = "rejection",
           variant: str = "per_level", levels: Sequence[str] | None = None,
           classifier: Any | None = None) -> Conditioned:
    """n samples meeting the targets, with acceptance rates and (given a classifier) per-sample verdicts."""
    if not 1 <= int(n) <= MAX_SAMPLES:
        raise LabError(f"number of samples must be between 1 and {MAX_SAMPLES}, got {n}")
    if bundle.model.kind == "cvae":
        out = _cvae(bundle, targets, int(n), int(seed), classifier)
    else:
        out = _probed(bundle, targets, int(n), int(seed), method, variant, levels)
    if classifier is not None:
        out.verdict = _verdict(classifier, out.images, targets, out.notes)
    else:
        out.notes.append("no image attribute classifier available: the verdict column is the probes' own")
    return out


def _probed(bundle: Bundle, targets: dict[str, int], n: int, seed: int, method: str, variant: str,
            levels: Sequence[str] | None) -> Conditioned:
    from facelab.probes.conditional import ProbesMissingError, conditional_sample

    hvae = bundle.model.kind == "hvae"
    try:
        res = conditional_sample(bundle, targets, n, method=method, variant=variant if hvae else "per_level",
                                 levels=list(levels) if (hvae and levels) else None, generator=generator(seed))
    except ProbesMissingError as err:
        raise LabError(str(err)) from err
    except (ValueError, KeyError) as err:
        raise LabError(f"conditional sampling on {bundle.name}: {err}") from err
    notes = [f"{', '.join(res.implied)} held absent too (hair colours exclude each other)"] if res.implied else []
    if res.exhausted:
        notes.append(f"some samples ran out of attempts at level(s) {', '.join(res.exhausted)}: "
                     "they keep their best draw (marked ✗)")
    return Conditioned(res.images.float().cpu(), dict(res.acceptance_rate), np.asarray(res.satisfied, bool),
                       dict(targets), notes=notes)


def _verdict(classifier: Any, images: torch.Tensor, targets: dict[str, int], notes: list[str]) -> np.ndarray | None:
    names = list(classifier.attribute_names)
    missing = sorted(set(targets) - set(names))
    if missing:
        notes.append(f"the attribute classifier does not judge {missing}")
        return None
    probs = classifier.predict(images).detach().cpu().numpy()[:, [names.index(a) for a in targets]]
    broken = int((~np.isfinite(probs)).any(axis=1).sum())
    if broken:  # NaN > 0.5 is False, which would read as "meets target 0": say it, count it as a miss
        notes.append(f"the attribute classifier gave no valid probability (NaN or infinite) for {broken} "
                     "sample(s): they count as not meeting the targets")
    return probs


def precision(out: Conditioned) -> dict[str, float] | None:
    """Per target, the share of samples the classifier judges to have the target value (NaN never counts)."""
    if out.verdict is None:
        return None
    v = out.verdict
    return {a: float((np.isfinite(v[:, i]) & ((v[:, i] > 0.5) == bool(t))).mean())
            for i, (a, t) in enumerate(out.targets.items())}
