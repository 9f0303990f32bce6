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
