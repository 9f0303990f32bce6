"""Reconstruction quality of encoding models on held-out images: MSE, PSNR and bits per dimension.

MSE is per pixel channel on the models' [-1, 1] scale (the scale of the VAE's logged "mse").
PSNR is per image, 10·log10(peak² / MSE) with peak-to-peak 2 (identical to the usual [0, 1]
convention), averaged over images; a perfect reconstruction is capped at 100 dB.

Bits per dimension (negative ELBO, lower is better), from the model's own loss in eval mode:
- a model whose loss reports "bpd" (HierarchicalVAE: discretised logistic/Gaussian over the 256
  levels) or "bits_per_dim" (VAE with recon="gaussian") is used as is;
- otherwise (VAE/CVAE trained with "mse" or "bce") the decoder mean is read as a Gaussian with one
  shared σ set to its maximum-likelihood value σ² = mean squared error over the evaluated images,
  so −log p(x|z) per dimension = ½·log(2πσ²) + ½; with the KL (nats per image) this is a
  continuous density on [-1, 1], moved to [0, 256) by adding log2(128) bits — the convention the
  VAE itself uses for "bits_per_dim". Choosing σ on the evaluated images makes this bound slightly
  optimistic (by one fitted scalar); "bpd_source" in the result says which route was taken.
The ELBO's expectation over q(z|x) is the loss's own single-sample estimate, drawn under a fixed
seed so the number is reproducible.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

PSNR_CAP = 100.0


def _model_kwargs(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Conditional models encode/decode given the batch's attributes."""
    if getattr(model, "is_conditional", False):
        return {"attributes": batch["attributes"].to(model.device)}
    return {}


def _reconstruct(model: Any, images: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    if hasattr(model, "reconstruct"):
        return model.reconstruct(images, **kwargs)
    return model.decode(model.encode(images, **kwargs), **kwargs)


@torch.no_grad()
def reconstruction_scores(model: Any, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
    """recon_mse (per pixel, [-1,1] scale) and psnr (dB, mean over images) of decode(encode(x))."""
    was_training = model.training
    model.eval()
    sq_sum, count, psnrs = 0.0, 0, []
    try:
        for batch in batches:
            x = batch["image"].to(model.device, torch.float32)
            rec = _reconstruct(model, x, **_model_kwargs(model, batch)).float().clamp(-1, 1)
            per_image = (rec - x).pow(2).flatten(1).mean(1)
            sq_sum += float(per_image.sum())
            count += len(x)
            psnr = 10 * torch.log10(4.0 / per_image.clamp_min(1e-12))
            psnrs.append(psnr.clamp(max=PSNR_CAP).cpu())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("reconstruction_scores needs at least one image")
    return {"recon_mse": sq_sum / count, "psnr": float(torch.cat(psnrs).mean()), "recon_n": count}


@torch.no_grad()
def bits_per_dim(model: Any, batches: Iterable[dict[str, torch.Tensor]], seed: int = 0) -> dict[str, Any]:
    """Negative ELBO in bits/dim (see the module docstring for the two routes) and which route it took."""
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {"bpd": 0.0, "mse": 0.0, "kl": 0.0}
    count, dims, source = 0, 0, None
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for batch in batches:
                batch = {k: v.to(model.device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
                out = model.loss(batch)
                n = len(batch["image"])
                dims = batch["image"][0].numel()
                key = "bpd" if "bpd" in out else "bits_per_dim" if "bits_per_dim" in out else None
                source = "model" if key else "gaussian_mle_sigma"
                if key:
                    totals["bpd"] += float(out[key]) * n
                else:
                    totals["mse"] += float(out["mse"]) * n
                    totals["kl"] += float(out["kl"]) * n
                count += n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("bits_per_dim needs at least one batch")
    if source == "model":
        return {"bits_per_dim": totals["bpd"] / count, "bpd_source": source}
    sigma2 = max(totals["mse"] / count, 1e-12)
    nll_per_dim = 0.5 * math.log(2 * math.pi * sigma2) + 0.5
    bpd = (nll_per_dim + totals["kl"] / count / dims) / math.log(2) + math.log2(128)
    return {"bits_per_dim": bpd, "bpd_source": source, "bpd_sigma": math.sqrt(sigma2)}
