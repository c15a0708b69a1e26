"""The conditional affine coupling layer and its residual conditioner MLP."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AffineCoupling", "ResidualMLP"]


class _Block(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.linear = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.dropout(torch.relu(self.linear(self.norm(h))))


class ResidualMLP(nn.Module):
    """``in_features -> hidden -> n_blocks x (h + Dropout(ReLU(Linear(LayerNorm(h))))) -> out``.

    The last layer starts at zero, so a fresh coupling layer is the identity.
    """

    def __init__(
        self, in_features: int, out_features: int, hidden: int, n_blocks: int, dropout: float
    ) -> None:
        super().__init__()
        self.inp = nn.Linear(in_features, hidden)
        self.blocks = nn.Sequential(*[_Block(hidden, dropout) for _ in range(n_blocks)])
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, out_features)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.inp(x))
        return self.out(torch.relu(self.out_norm(h)))


class AffineCoupling(nn.Module):
    """``y_b = x_b * exp(s) + t`` with ``(s, t) = MLP([x_a, LayerNorm(c)])``; ``y_a = x_a``.

    ``mask`` is binary (True: passed through, conditions the rest), so the inverse is
    exact. ``s = tanh(raw) * scale`` (``scale`` learned per dimension) bounds the
    log-scales. log|det J| = sum(s).
    """

    def __init__(
        self,
        mask: torch.Tensor,
        context_dim: int,
        hidden: int,
        n_blocks: int = 2,
        dropout: float = 0.05,
    ) -> None:
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        keep = torch.nonzero(mask).flatten()
        change = torch.nonzero(~mask).flatten()
        if len(change) == 0:
            raise ValueError("coupling mask must leave at least one dimension to transform")
        self.register_buffer("keep", keep)
        self.register_buffer("change", change)
        self.register_buffer("order", torch.argsort(torch.cat([keep, change])))
        self.context_norm = nn.LayerNorm(context_dim)
        self.net = ResidualMLP(len(keep) + context_dim, 2 * len(change), hidden, n_blocks, dropout)
        self.scale = nn.Parameter(torch.ones(len(change)))

    def _shift_scale(self, xa: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(torch.cat([xa, self.context_norm(c)], dim=-1)).chunk(2, dim=-1)
        return torch.tanh(raw_s) * self.scale, t

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa = x[..., self.keep]
        s, t = self._shift_scale(xa, c)
        yb = x[..., self.change] * torch.exp(s) + t
        return torch.cat([xa, yb], dim=-1)[..., self.order], s.sum(-1)

    def inverse(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        ya = y[..., self.keep]
        s, t = self._shift_scale(ya, c)
        xb = (y[..., self.change] - t) * torch.exp(-s)
        return torch.cat([ya, xb], dim=-1)[..., self.order]
