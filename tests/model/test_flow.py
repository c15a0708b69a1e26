"""The conditional Real-NVP: every variant is shaped, differentiable, exactly invertible,
has the right log-det and survives save/load."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from model import MIXINGS, ConditionalRealNVP
from tests.model.conftest import perturb

VARIANTS = [
    pytest.param(dict(mixing=m, n_layers=n), id=f"{m}-{n}layers")
    for m in MIXINGS
    for n in (1, 2, 5)
]


def _flow(dim=5, context_dim=3, **kw) -> ConditionalRealNVP:
    kw.setdefault("hidden", 16)
    return perturb(ConditionalRealNVP(dim, context_dim, **kw), std=0.3).eval()


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_flow_variant(kwargs, tmp_path):
    torch.manual_seed(0)
    flow = _flow(**kwargs)
    x, c = torch.randn(7, 5), torch.randn(7, 3)

    # shapes
    z, logdet = flow(x, c)
    assert z.shape == (7, 5) and logdet.shape == (7,)
    assert flow.inverse(z, c).shape == (7, 5)
    assert flow.log_prob(x, c).shape == (7,)
    assert flow.sample(c[0], 4, temperature=0.5).shape == (4, 5)
    # a single context broadcasts over a batch
    z1, _ = flow(x, c[0])
    assert torch.allclose(z1[0], flow(x[:1], c[:1])[0][0], atol=1e-6)

    # gradients reach every parameter
    flow.train()
    (-flow.log_prob(x, c).mean()).backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in flow.parameters())
    flow.eval()

    # exact inversion (both ways)
    with torch.no_grad():
        z, _ = flow(x, c)
        assert torch.allclose(flow.inverse(z, c), x, atol=1e-5)
        assert torch.allclose(flow(flow.inverse(x, c), c)[0], x, atol=1e-5)

    # log-det against autograd's Jacobian, in float64
    flow64 = flow.double()
    xs, cs = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    for xi, ci in zip(xs, cs):
        jac = torch.autograd.functional.jacobian(lambda v, ci=ci: flow64(v, ci)[0], xi)
        _, ld = flow64(xi[None], ci[None])
        assert torch.allclose(ld[0], torch.linalg.slogdet(jac)[1], atol=1e-8)
    flow.float()

    # save/load through safetensors rebuilds the same function
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in flow.state_dict().items()}, str(path))
    again = ConditionalRealNVP(**flow.config).eval()
    again.load_state_dict(load_file(str(path)))
    with torch.no_grad():
        assert torch.equal(again(x, c)[0], flow(x, c)[0])
        assert torch.equal(again.inverse(z, c), flow.inverse(z, c))


@settings(max_examples=30, deadline=None)
@given(
    dim=st.integers(2, 10),
    context_dim=st.integers(1, 8),
    n_layers=st.integers(1, 6),
    mixing=st.sampled_from(MIXINGS),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 10.0),
)
def test_inverse_of_forward_is_identity(dim, context_dim, n_layers, mixing, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    flow = _flow(dim, context_dim, n_layers=n_layers, mixing=mixing, seed=seed).double()
    x = torch.randn(16, dim, generator=gen, dtype=torch.float64) * scale
    c = torch.randn(16, context_dim, generator=gen, dtype=torch.float64) * scale
    with torch.no_grad():
        z, logdet = flow(x, c)
        assert torch.isfinite(z).all() and torch.isfinite(logdet).all()
        assert torch.allclose(flow.inverse(z, c), x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mixing", MIXINGS)
def test_float32_round_trip_at_full_size(mixing):
    """The configuration the Predictor runs: 10 layers, hidden 768, float32.

    The algebra is exact (see the float64 property test); what is left is float32
    rounding, about 1e-6 of the largest |z| the forward pass reaches.
    """
    gen = torch.Generator().manual_seed(1)
    flow = perturb(ConditionalRealNVP(10, 384, mixing=mixing), std=0.02).eval()
    x = torch.randn(64, 10, generator=gen) * 2
    c = torch.randn(64, 384, generator=gen)
    with torch.no_grad():
        z, _ = flow(x, c)
        err = (flow.inverse(z, c) - x).abs().max().item()
    assert err <= 1e-6 * max(1.0, z.abs().max().item()) + 1e-5


def test_fresh_flow_is_identity():
    flow = ConditionalRealNVP(10, 4, n_layers=3, hidden=8, mixing="permutation").eval()
    x, c = torch.randn(5, 10), torch.randn(5, 4)
    with torch.no_grad():
        z, logdet = flow(x, c)
    # permutations between layers only reorder; couplings start as the identity
    assert torch.allclose(torch.sort(z, dim=-1).values, torch.sort(x, dim=-1).values)
    assert torch.equal(logdet, torch.zeros(5))


def test_same_seed_same_flow_and_config_round_trip():
    a = ConditionalRealNVP(6, 2, n_layers=4, hidden=8, mixing="lu", seed=3)
    b = ConditionalRealNVP(**a.config)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        if ka.endswith(("perm", "inv", ".p", "sign")):
            assert torch.equal(va, vb), ka


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dim=1, context_dim=3), "dim must be an int >= 2"),
        (dict(dim=4, context_dim=0), "context_dim must be an int >= 1"),
        (dict(dim=4, context_dim=3, n_layers=0), "n_layers must be an int >= 1"),
        (dict(dim=4, context_dim=3, dropout=1.0), "dropout must be in range 0..1"),
        (dict(dim=4, context_dim=3, mixing="soft"), "mixing must be one of permutation, lu"),
    ],
)
def test_bad_hyper_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConditionalRealNVP(**kwargs)


def test_wrong_feature_counts_are_refused():
    flow = ConditionalRealNVP(4, 3, n_layers=1, hidden=8)
    with pytest.raises(ValueError, match="context must have 3 features"):
        flow(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="input must have 4 features"):
        flow.inverse(torch.zeros(2, 6), torch.zeros(2, 3))
