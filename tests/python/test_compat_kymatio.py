"""demix.compat.kymatio: kymatio 0.3's Scattering2D over demix's WST maps.

Against the recorded kymatio output (shared/reference/peers/kymatio_J5_L8_256.npy), shapes and
channel order, max_order=1, the list output, batches, autograd, devices and the errors for what is
not supported. Where kymatio itself is importable (``pip install kymatio==0.3.0``), against it on
random maps; skipped otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import demix
from demix.compat.kymatio import Scattering2D

from conftest import shared_file


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|: kymatio computes in float32, so errors are relative to the largest
    coefficient (of an order), as the peers' README advises."""
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max())


def orders(J: int, L: int) -> list[slice]:
    n1 = 1 + J * L
    return [slice(0, 1), slice(1, n1), slice(n1, n1 + L * L * J * (J - 1) // 2)]


@pytest.fixture(scope="module")
def peer() -> tuple[torch.Tensor, torch.Tensor]:
    x = np.load(shared_file("reference/peers/input_I1_256.npy")).astype(np.float32)
    ref = np.load(shared_file("reference/peers/kymatio_J5_L8_256.npy"))
    return torch.from_numpy(x).unsqueeze(0), torch.from_numpy(ref)


def test_recorded_kymatio_output(peer):
    x, ref = peer
    S = Scattering2D(J=5, shape=(256, 256), L=8)(x)
    assert S.shape == ref.shape == (1, 681, 8, 8) and S.dtype == torch.float32
    for o, sl in enumerate(orders(5, 8)):
        err = relative_error(S[:, sl], ref[:, sl])
        assert err < 1e-5, f"order {o}: {err}"


def test_max_order_one_and_shapes(peer):
    x, ref = peer
    S1 = Scattering2D(5, (256, 256), L=8, max_order=1)(x[0])  # (M, N) in: (C, h, w) out
    assert S1.shape == (41, 8, 8)
    assert relative_error(S1[1:], ref[0, 1:41]) < 1e-5
    # Odd sizes: kymatio's M // 2**J, N // 2**J; batch dimensions kept.
    S = Scattering2D(2, (37, 50), L=4)
    y = torch.rand(2, 3, 37, 50)
    out = S(y)
    assert out.shape == (2, 3, 1 + 2 * 4 + 16, 9, 12)
    np.testing.assert_allclose(out[1, 2].numpy(), S(y[1, 2]).numpy(), rtol=1e-6, atol=1e-7)


def test_channel_order_is_kymatios():
    J, L = 3, 4
    S = Scattering2D(J, (32, 32), L=L, out_type="list")
    out = S(torch.rand(2, 32, 32))
    assert len(out) == 1 + J * L + L * L * J * (J - 1) // 2
    assert out[0]["j"] == () and out[0]["coef"].shape == (2, 4, 4)
    expected = [((j,), (j * L + t,), (t,)) for j in range(J) for t in range(L)]
    expected += [((j1, j2), (j1 * L + t1, j2 * L + t2), (t1, t2))
                 for j1 in range(J) for t1 in range(L) for j2 in range(J) for t2 in range(L)
                 if j2 > j1]
    assert [(d["j"], d["n"], d["theta"]) for d in out[1:]] == expected
    # The same numbers as the array.
    array = Scattering2D(J, (32, 32), L=L)
    x = torch.rand(2, 32, 32)
    a, lst = array(x), S(x)
    for c, d in enumerate(lst):
        assert torch.equal(d["coef"], a[:, c])


def test_means_are_demix_wst():
    x = torch.rand(2, 64, 64, dtype=torch.float64)
    S = Scattering2D(3, (64, 64), L=4)(x)
    means = demix.WST((64, 64), J=3, L=4, boundary="nonperiodic")(x).values
    torch.testing.assert_close(S.mean(dim=(-2, -1)), means, rtol=1e-12, atol=1e-14)


def test_autograd_and_module_behaviour():
    S = Scattering2D(2, (32, 32), L=4)
    assert isinstance(S, torch.nn.Module)
    x = torch.rand(32, 32, dtype=torch.float64, requires_grad=True)
    loss = S(x).pow(2).sum()
    loss.backward()
    v = torch.rand(32, 32, dtype=torch.float64)
    eps = 1e-6
    with torch.no_grad():
        fd = (S(x + eps * v).pow(2).sum() - S(x - eps * v).pow(2).sum()) / (2 * eps)
    assert float((x.grad * v).sum()) == pytest.approx(float(fd), rel=1e-6)
    assert S.cpu() is S and S.to("cpu") is S and S.device.type == "cpu"
    if torch.cuda.is_available():
        S.cuda()
        with pytest.raises(RuntimeError, match="move one of them"):
            S(torch.rand(32, 32))
        assert S(torch.rand(32, 32, device="cuda")).device.type == "cuda"


@pytest.mark.parametrize("kwargs,message", [
    (dict(pre_pad=True), "pre_pad=True"),
    (dict(backend="torch_skcuda"), "backend='torch_skcuda'"),
])
def test_unsupported_options(kwargs, message):
    with pytest.raises(NotImplementedError) as e:
        Scattering2D(2, (32, 32), **kwargs)
    assert str(e.value).startswith("demix.compat.kymatio: ") and message in str(e.value)


def test_bad_input():
    with pytest.raises(RuntimeError, match="larger than 2\\^J"):
        Scattering2D(6, (32, 32))
    with pytest.raises(RuntimeError, match="out_type"):
        Scattering2D(2, (32, 32), out_type="dict")
    S = Scattering2D(2, (32, 32))
    with pytest.raises(TypeError, match="PyTorch Tensor"):
        S(np.zeros((32, 32), dtype=np.float32))
    with pytest.raises(RuntimeError, match="spatial size"):
        S(torch.zeros(32, 31))
    with pytest.raises(RuntimeError, match="at least two dimensions"):
        S(torch.zeros(32))
    with pytest.raises(TypeError, match="real"):
        S(torch.zeros(32, 32, dtype=torch.complex64))


def test_against_kymatio_on_random_maps():
    kymatio_torch = pytest.importorskip("kymatio.torch")
    torch.manual_seed(0)
    for J, shape, L, max_order in ((3, (64, 64), 8, 2), (2, (40, 52), 6, 1), (4, (96, 80), 4, 2)):
        x = torch.rand((2,) + shape)
        theirs = kymatio_torch.Scattering2D(J, shape, L=L, max_order=max_order)(x)
        ours = Scattering2D(J, shape, L=L, max_order=max_order)(x)
        assert ours.shape == theirs.shape
        n = ours.shape[1]
        for sl in orders(J, L):
            if sl.start < n:
                assert relative_error(ours[:, sl], theirs[:, sl]) < 1e-5, (J, shape, L)
    lt = kymatio_torch.Scattering2D(2, (32, 32), L=4, out_type="list")(torch.rand(32, 32))
    lo = Scattering2D(2, (32, 32), L=4, out_type="list")(torch.rand(32, 32))
    assert [(d["j"], d["n"], d["theta"]) for d in lo] == [
        (tuple(d["j"]), tuple(d["n"]), tuple(d["theta"])) for d in lt]
    assert all(a["coef"].shape == b["coef"].shape for a, b in zip(lo, lt))
