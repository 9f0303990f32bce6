"""Training and judging with the image attribute classifier (the network: facelab.models.classifier).

The classifier never sees latents, so it can judge conditional sampling and attribute edits
independently of the probes. Its pooled penultimate features also give the offline Fréchet
distance "FD-attr" (facelab.metrics.fid) when no Inception weights are available.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from facelab.models.classifier import AttributeClassifier

# ---------------------------------------------------------------- training


def split_indices(n: int, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random (train, held-out) split of range(n)."""
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be in (0, 1), got {held_out}")
    perm = np.random.default_rng(seed).permutation(n)
    n_eval = max(1, int(round(n * held_out)))
    return np.sort(perm[n_eval:]), np.sort(perm[:n_eval])


def _batches(dataset: Dataset, batch: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
    """An endless stream of shuffled batches (a new epoch whenever one runs out)."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=len(dataset) >= batch,
                        generator=generator)
    while True:
        yield from loader


def _labels_and_probs(model: AttributeClassifier, dataset: Dataset,
                      batch: int) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = [], []
    for item in DataLoader(dataset, batch_size=batch, shuffle=False):
        labels.append(item["attributes"].numpy())
        probs.append(model.predict(item["image"], batch_size=batch).numpy())
    return np.concatenate(labels), np.concatenate(probs)


def accuracy_report(labels: np.ndarray, probs: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Held-out accuracy, balanced accuracy and majority baseline per attribute, plus their means."""
    y, pred = labels > 0.5, probs > 0.5
    acc = (y == pred).mean(0)
    pos, neg = y.sum(0), (~y).sum(0)
    tpr = np.where(pos > 0, (pred & y).sum(0) / np.maximum(pos, 1), np.nan)
    tnr = np.where(neg > 0, (~pred & ~y).sum(0) / np.maximum(neg, 1), np.nan)
    # an attribute absent (or always present) in the held-out set has one defined rate: use it alone
    balanced = np.nanmean(np.stack([tpr, tnr]), axis=0)
    majority = np.maximum(y.mean(0), 1 - y.mean(0))
    return {
        "held_out_accuracy": {n: float(a) for n, a in zip(names, acc)},
        "balanced_accuracy": {n: float(a) for n, a in zip(names, balanced)},
        "majority_baseline": {n: float(a) for n, a in zip(names, majority)},
        "mean_accuracy": float(acc.mean()),
        "mean_balanced_accuracy": float(np.nanmean(balanced)),
        "mean_majority_baseline": float(majority.mean()),
        "n_eval": int(len(y)),
    }


def evaluate_classifier(model: AttributeClassifier, dataset: Dataset, batch: int = 128) -> dict[str, Any]:
    """accuracy_report of the classifier on a labelled dataset (attributes matched by name)."""
    labels, probs = _labels_and_probs(model, dataset, batch)
    names = list(getattr(dataset, "attribute_names", None) or model.attribute_names)
    if names != model.attribute_names:
        cols = [model.attribute_names.index(n) for n in names if n in model.attribute_names]
        keep = [i for i, n in enumerate(names) if n in model.attribute_names]
        labels, probs, names = labels[:, keep], probs[:, cols], [names[i] for i in keep]
    return accuracy_report(labels, probs, names)


def train_attribute_classifier(dataset: Dataset, steps: int = 2000, batch: int = 64, lr: float = 2e-3,
                               seed: int = 0, held_out: float = 0.2, eval_dataset: Dataset | None = None,
                               max_eval: int = 5000, image_size: int | None = None,
                               widths: Sequence[int] = (32, 64, 128, 256),
                               device: str | torch.device = "cpu") -> tuple[AttributeClassifier, dict[str, Any]]:
    """Train on the dataset's binary attributes (BCE); report held-out accuracy on a 20% split or eval_dataset."""
    names = list(getattr(dataset, "attribute_names", None) or [])
    torch.manual_seed(seed)
    size = int(image_size or min(64, int(dataset[0]["image"].shape[-1])))
    model = AttributeClassifier(attribute_names=names, image_size=size, widths=tuple(widths)).to(device)
    if eval_dataset is None:
        train_idx, eval_idx = split_indices(len(dataset), held_out, seed)
        train_set, eval_set = Subset(dataset, train_idx.tolist()), Subset(dataset, eval_idx[:max_eval].tolist())
    else:  # an official split (CelebA's test partition): train on all of dataset
        train_set, eval_set = dataset, Subset(eval_dataset, list(range(min(len(eval_dataset), max_eval))))
    _fit(model, _batches(train_set, batch, seed), steps, lr, seed)
    report = evaluate_classifier(model, eval_set, batch=max(batch, 128))
    report.update({"steps": int(steps), "batch": int(batch), "lr": float(lr), "seed": int(seed),
                   "n_train": len(train_set)})
    return model.eval(), report


def _init_bias(model: AttributeClassifier, batches: Iterator[dict[str, torch.Tensor]],
               peek: int = 8) -> Iterator[dict[str, torch.Tensor]]:
    """Set the head's biases to the label log-odds of the first batches, and hand those batches back.

    Starting at the prevalences skips the phase where every attribute first learns its base rate;
    on synthfaces it roughly halves the steps to beat the majority baseline.
    """
    first = [next(batches) for _ in range(peek)]
    p = torch.cat([b["attributes"] for b in first]).float().mean(0).clamp(0.02, 0.98)
    with torch.no_grad():
        model.head.bias.copy_(torch.log(p / (1 - p)).to(model.head.bias))
    return itertools.chain(first, batches)


def _fit(model: AttributeClassifier, batches: Iterator[dict[str, torch.Tensor]], steps: int, lr: float,
         seed: int) -> None:
    """AdamW, linear warm-up then cosine decay, on BCE, with horizontal flips (face attributes are mirror-invariant)."""
    batches = _init_bias(model, batches, peek=max(1, min(8, steps)))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    flip_gen = torch.Generator().manual_seed(seed + 1)
    model.train()
    for _, item in zip(range(steps), batches):
        x, y = item["image"].to(model.device), item["attributes"].to(model.device, torch.float32)
        flip = torch.rand(len(x), generator=flip_gen) < 0.5
        x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
