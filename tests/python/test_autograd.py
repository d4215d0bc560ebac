"""torch.autograd through the statistics: loss.backward() in Python against central finite
differences, in float64, for every statistic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import demix

OPERATORS = {
    "wph": lambda shape: demix.WPH(shape, J=3, L=4, dn=1),
    "wph-auto": lambda shape: demix.WPH(shape, J=3, L=4, dn=1, norm="auto"),
    "wph-nonperiodic": lambda shape: demix.WPH(shape, J=2, L=4, dn=1, boundary="nonperiodic"),
    "wst": lambda shape: demix.WST(shape, J=3, L=4),
    "scov": lambda shape: demix.ScatteringCov(shape, J=3, L=4),
    "ps": lambda shape: demix.PowerSpectrum(shape),
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_backward_matches_finite_differences(name, dust128):
    x0 = torch.from_numpy(dust128[:32, :32].copy())  # float64
    op = OPERATORS[name](tuple(x0.shape))
    ref = op.reference(x0)  # norm auto: a fixed normalisation, so the loss is a plain function
    gen = torch.Generator().manual_seed(0)
    w_re = torch.randn(len(op), generator=gen, dtype=torch.float64)
    w_im = torch.randn(len(op), generator=gen, dtype=torch.float64)

    def loss(x: torch.Tensor) -> torch.Tensor:
        v = op(x, reference=ref).values
        # A real loss that depends on every coefficient's real and imaginary parts, squared so
        # that it is not linear.
        return (w_re * torch.real(v) + w_im * torch.imag(v) if v.is_complex() else w_re * v).sum() \
            + (torch.abs(v) ** 2).sum()

    x = x0.clone().requires_grad_(True)
    loss(x).backward()
    assert x.grad is not None and x.grad.shape == x0.shape

    for _ in range(3):  # directional derivatives along random directions
        d = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        h = 1e-6
        with torch.no_grad():
            fd = (loss(x0 + h * d) - loss(x0 - h * d)).item() / (2 * h)
        ad = float((x.grad * d).sum())
        # Central differences in float64: the moduli of wavelet coefficients near zero curve the
        # loss strongly, so the truncation error ~h^2 |f'''| is 3e-5 relative at h = 1e-4 but
        # ~1e-9 at h = 1e-6 (measured for wph, wst, scov), where rounding ~1e-16 |f| / h is
        # ~1e-8. A wrong gradient is off by O(1), far beyond 1e-5.
        assert abs(ad - fd) <= 1e-5 * max(abs(fd), 1e-3 * float(x.grad.abs().sum())), (ad, fd)


def test_gradient_flows_to_a_torch_parameter(dust128):
    """A typical user's loop: a map as a parameter, an optimiser step lowers the loss."""
    target_map = torch.from_numpy(dust128[:32, :32].copy())
    op = demix.WPH((32, 32), J=3, dn=0)
    target = op(target_map).values.detach()
    x = torch.nn.Parameter(torch.randn(32, 32, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(1)))
    opt = torch.optim.Adam([x], lr=0.05)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = (op(x).values - target).abs().pow(2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_no_grad_and_numpy_inputs_build_no_graph(dust128):
    op = demix.PowerSpectrum((32, 32))
    with torch.no_grad():
        v = op(torch.from_numpy(dust128[:32, :32].copy()).requires_grad_(True)).values
    assert not v.requires_grad
    assert isinstance(op(dust128[:32, :32]).values, np.ndarray)
