"""The conditional Real-NVP: theta (normalised) <-> z ~ N(0, I), given a text embedding."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from model.coupling import AffineCoupling
from model.mixing import LUMixing, Permutation

__all__ = ["MIXINGS", "ConditionalRealNVP"]

#: Accepted values of ``mixing``: fixed random permutations, or Glow's LU linear maps.
MIXINGS = ("permutation", "lu")


class ConditionalRealNVP(nn.Module):
    """An exactly invertible flow ``x [..., dim] <-> z [..., dim]`` given ``c [..., context_dim]``.

    ``n_layers`` affine coupling layers with alternating binary masks; between layers a
    mixing of dimensions (``"permutation"`` or ``"lu"``). ``forward`` goes data -> latent
    and returns log|det dz/dx|, so ``log_prob`` is the exact density of x given c.
    Layers start as the identity (last conditioner layer zero). ``seed`` fixes the
    permutations and the LU start; both are buffers saved with the weights.

    >>> flow = ConditionalRealNVP(dim=10, context_dim=4, n_layers=2, hidden=16)
    >>> z, logdet = flow(torch.zeros(3, 10), torch.zeros(3, 4))
    >>> z.shape, logdet.shape
    (torch.Size([3, 10]), torch.Size([3]))
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        n_layers: int = 10,
        hidden: int = 768,
        n_blocks: int = 2,
        dropout: float = 0.05,
        mixing: str = "permutation",
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("dim", dim, 2),
            ("context_dim", context_dim, 1),
            ("n_layers", n_layers, 1),
            ("hidden", hidden, 1),
            ("n_blocks", n_blocks, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in range 0..1 (1 excluded), got {dropout!r}")
        if mixing not in MIXINGS:
            raise ValueError(f"mixing must be one of {', '.join(MIXINGS)}, got {mixing!r}")
        self.dim, self.context_dim = dim, context_dim
        self._config = dict(
            dim=dim, context_dim=context_dim, n_layers=n_layers, hidden=hidden,
            n_blocks=n_blocks, dropout=float(dropout), mixing=mixing, seed=int(seed),
        )  # fmt: skip
        gen = torch.Generator().manual_seed(int(seed))
        half = torch.arange(dim) < dim // 2
        mixers, couplings = [], []
        for i in range(n_layers):
            if i == 0:
                mixers.append(nn.Identity())
            elif mixing == "lu":
                mixers.append(LUMixing(dim, gen))
            else:
                mixers.append(Permutation(dim, gen))
            mask = half if i % 2 == 0 else ~half
            couplings.append(AffineCoupling(mask, context_dim, hidden, n_blocks, dropout))
        self.mixers = nn.ModuleList(mixers)
        self.couplings = nn.ModuleList(couplings)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's arguments; ``ConditionalRealNVP(**flow.config)`` rebuilds it."""
        return dict(self._config)

    def _context(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if c.shape[-1] != self.context_dim:
            raise ValueError(
                f"context must have {self.context_dim} features, got shape {tuple(c.shape)}"
            )
        if x.shape[-1] != self.dim:
            raise ValueError(f"input must have {self.dim} features, got shape {tuple(x.shape)}")
        return c.expand(*x.shape[:-1], self.context_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data -> latent: ``x [..., dim]``, ``c [..., context_dim]`` -> ``(z [..., dim],
        log|det dz/dx| [...])``."""
        c = self._context(x, c)
        logdet = x.new_zeros(x.shape[:-1])
        for mixer, coupling in zip(self.mixers, self.couplings):
            if not isinstance(mixer, nn.Identity):
                x, ld = mixer(x)
                logdet = logdet + ld
            x, ld = coupling(x, c)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Latent -> data: ``z [..., dim]``, ``c [..., context_dim]`` -> ``x [..., dim]``."""
        c = self._context(z, c)
        for mixer, coupling in zip(reversed(self.mixers), reversed(self.couplings)):
            z = coupling.inverse(z, c)
            if not isinstance(mixer, nn.Identity):
                z = mixer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """log p(x | c) in nats, shape ``[...]``: standard normal of z plus log|det|."""
        z, logdet = self(x, c)
        return _std_normal_log_prob(z) + logdet

    def sample(
        self,
        c: torch.Tensor,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` draws of x for one context ``c [context_dim]``, z ~ N(0, temperature^2),
        shape ``[n, dim]``."""
        z = torch.randn(n, self.dim, generator=generator, dtype=c.dtype, device=c.device)
        return self.inverse(z * temperature, c)


def _std_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
