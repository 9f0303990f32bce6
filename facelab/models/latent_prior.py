"""A conditional Gaussian prior p(z | a) fitted to a trained CVAE's posteriors (ex-post density estimation).

A CVAE trained against N(0, I) may still write a graded attribute (age, skin tone) into z as well
as reading it from its condition: then a z drawn from N(0, I) can carry "young" while the condition
says "old", and the decoder follows z. Sohn et al. (2015) give the CVAE a prior network p(z | a);
fitting one after training (Ghosh et al. 2020's ex-post density estimation, here linear-Gaussian in
the attributes) makes the drawn z agree with the asked-for attributes without retraining:

    z = W a + b + L ε,  ε ~ N(0, T² I)

W, b: least squares of the posterior means on the attributes; L: Cholesky factor of the residual
covariance plus the mean posterior variance (the aggregate posterior's spread given a).
"""

from __future__ import annotations

import torch
from torch import nn

from facelab.models.base import randn


class ConditionalGaussianPrior(nn.Module):
    """p(z | a) = N(W a + b, L Lᵀ); buffers saved with the model's weights."""

    def __init__(self, num_attributes: int, latent_dim: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_attributes, latent_dim))
        self.register_buffer("bias", torch.zeros(latent_dim))
        self.register_buffer("scale_tril", torch.eye(latent_dim))

    @torch.no_grad()
    def fit(self, mu: torch.Tensor, logvar: torch.Tensor, attributes: torch.Tensor, ridge: float = 1e-3) -> dict:
        """Fit W, b, L to posterior means/log-variances [N, D] of images with attributes [N, A]."""
        if not (mu.shape == logvar.shape and mu.shape[0] == attributes.shape[0]):
            raise ValueError(f"mu {list(mu.shape)}, logvar {list(logvar.shape)} and attributes "
                             f"{list(attributes.shape)} must share N")
        n, a = mu.shape[0], attributes.shape[1]
        if n <= a + 1:
            raise ValueError(f"need more than {a + 1} encoded images to fit the prior, got {n}")
        x = torch.cat([attributes.double(), torch.ones(n, 1, dtype=torch.float64)], dim=1)
        y = mu.double()
        # ridge keeps W defined when an attribute never varies in the fitted set
        gram = x.T @ x + ridge * n * torch.diag(torch.tensor([1.0] * a + [0.0], dtype=torch.float64))
        coef = torch.linalg.solve(gram, x.T @ y)
        resid = y - x @ coef
        cov = resid.T @ resid / (n - a - 1) + torch.diag(logvar.double().exp().mean(0))
        self.weight.copy_(coef[:a].float())
        self.bias.copy_(coef[a].float())
        self.scale_tril.copy_(torch.linalg.cholesky(cov).float())
        explained = 1.0 - resid.pow(2).sum() / (y - y.mean(0)).pow(2).sum()
        return {"n": int(n), "mean_r2": float(explained), "mean_std": float(cov.diagonal().sqrt().mean())}

    def sample(self, attributes: torch.Tensor, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Latents [N, D] for attribute rows [N, A]; temperature scales the spread around the mean."""
        eps = randn((attributes.shape[0], self.bias.shape[0]), generator, self.bias.device)
        return attributes.to(self.weight.dtype) @ self.weight + self.bias + temperature * eps @ self.scale_tril.T


class GaussianMixturePrior(nn.Module):
    """p(z) = Σ_k π_k N(μ_k, L_k L_kᵀ) over a flattened latent; buffers saved with the model's weights.

    An HVAE's top group has a single learned Gaussian prior, but its aggregate posterior is far
    narrower per image (posterior std ~0.03 against a spread of ~0.3 on the CPU model) and not
    Gaussian: draws from the Gaussian land between the encoded faces and decode to muted average
    backgrounds. A mixture fitted to posterior draws after training (Ghosh et al. 2020's ex-post
    density estimation) puts the draws where faces were encoded.
    """

    def __init__(self, components: int, latent_dim: int):
        super().__init__()
        self.register_buffer("weights", torch.full((components,), 1.0 / components))
        self.register_buffer("means", torch.zeros(components, latent_dim))
        self.register_buffer("scale_trils", torch.eye(latent_dim).repeat(components, 1, 1))

    @torch.no_grad()
    def fit(self, z: torch.Tensor, seed: int = 0, reg_covar: float = 1e-4) -> dict:
        """Fit by EM (scikit-learn, full covariances) to latent draws z [N, D]; returns a fit report."""
        from sklearn.mixture import GaussianMixture

        k, d = self.means.shape
        if z.dim() != 2 or z.shape[1] != d:
            raise ValueError(f"need latent draws of shape [N, {d}], got {list(z.shape)}")
        if z.shape[0] < 10 * k:
            raise ValueError(f"need at least {10 * k} encoded images for {k} components, got {z.shape[0]}")
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=reg_covar, random_state=seed).fit(z.double().numpy())
        self.weights.copy_(torch.as_tensor(gmm.weights_))
        self.means.copy_(torch.as_tensor(gmm.means_))
        self.scale_trils.copy_(torch.linalg.cholesky(torch.as_tensor(gmm.covariances_)))
        return {"n": int(z.shape[0]), "components": int(k), "converged": bool(gmm.converged_),
                "mean_log_likelihood": float(gmm.score(z.double().numpy())),
                "smallest_weight": float(gmm.weights_.min())}

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latents [n, D]: a component by its weight, then its mean plus temperature × its spread."""
        gen_device = generator.device if generator is not None else self.weights.device
        comp = torch.multinomial(self.weights.float().to(gen_device), n, replacement=True, generator=generator)
        comp = comp.to(self.means.device)
        eps = randn((n, self.means.shape[1]), generator, self.means.device)
        spread = torch.einsum("nij,nj->ni", self.scale_trils[comp].float(), eps)
        return self.means[comp].float() + float(temperature) * spread

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's mean and per-dimension std (for callers that want one Gaussian summary)."""
        w = self.weights.float()[:, None]
        mean = (w * self.means.float()).sum(0)
        var = (w * (self.scale_trils.float().pow(2).sum(-1) + self.means.float().pow(2))).sum(0) - mean.pow(2)
        return mean, var.clamp(min=1e-12).sqrt()
