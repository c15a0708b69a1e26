"""Invertible mixings of dimensions between coupling layers.

Each maps ``x [..., dim] -> (y [..., dim], logdet [...])`` and back, exactly.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LUMixing", "Permutation"]


class Permutation(nn.Module):
    """A fixed permutation ``y = x[..., perm]``; log|det J| = 0.

    The permutation is a buffer, so it is saved with the weights and a checkpoint does
    not depend on a random generator's stream.
    """

    def __init__(self, dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        perm = torch.randperm(dim, generator=generator)
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., self.perm], x.new_zeros(x.shape[:-1])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y[..., self.inv]


class LUMixing(nn.Module):
    """A learnable invertible linear map ``y = x W^T``, LU-parameterised as in Glow.

    ``W = P L (U + diag(sign * exp(log_s)))`` with P a fixed permutation, L unit lower
    triangular and U strictly upper triangular; log|det W| = sum(log_s). Starts as a
    random rotation.
    """

    def __init__(self, dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        diag = torch.diagonal(upper)
        self.register_buffer("p", p.float())
        self.register_buffer("sign", torch.sign(diag).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), -1))
        self.lower = nn.Parameter(torch.tril(lower, -1).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(diag.abs()).float())

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        eye = torch.eye(self.p.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return lower, upper

    def weight(self) -> torch.Tensor:
        """W, shape [dim, dim]."""
        lower, upper = self._factors()
        return self.p @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x @ self.weight().T
        return y, self.log_s.sum().expand(x.shape[:-1])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        lower, upper = self._factors()
        rows = y.reshape(-1, y.shape[-1]).T  # [dim, n]
        rows = self.p.T @ rows
        rows = torch.linalg.solve_triangular(lower, rows, upper=False, unitriangular=True)
        rows = torch.linalg.solve_triangular(upper, rows, upper=True)
        return rows.T.reshape(y.shape)
