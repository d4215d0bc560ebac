"""Statistics from Python: the same numbers as the command line and as pywph's recorded outputs,
labels and selection, NumPy in -> NumPy out, tensors on their device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import demix
from conftest import run_cli, shared_file


def rel_error(ours: np.ndarray, ref: np.ndarray, floor: float = 1e-6) -> float:
    """Largest |ours - ref| / |ref|, with |ref| floored at `floor` times its largest value so
    that coefficients zero analytically (imaginary parts of S11 at tau = 0) do not count."""
    scale = np.maximum(np.abs(ref), floor * np.abs(ref).max())
    return float(np.max(np.abs(ours - ref) / scale))


# ---- against the command line ---------------------------------------------------------------

CLI_CASES = {  # statistic -> (Python options, CLI options): the same statistic both ways
    "wph": (dict(J=5, L=4, dn=1), ["-J", "5", "-L", "4", "--dn", "1"]),
    "wst": (dict(J=4, L=8), ["-J", "4", "-L", "8"]),
    "scov": (dict(J=5, L=4), ["-J", "5", "-L", "4"]),
    "ps": (dict(), []),
}


@pytest.mark.parametrize("kind", sorted(CLI_CASES))
def test_same_numbers_as_the_command_line(kind, dust128, cli, tmp_path):
    astropy_fits = pytest.importorskip("astropy.io.fits")
    np.save(tmp_path / "map.npy", dust128)
    options, flags = CLI_CASES[kind]
    out = tmp_path / "c.fits"
    run_cli(cli, "--dtype", "float64", "--device", "cpu", "stats", str(tmp_path / "map.npy"),
            "--kind", kind, *flags, "-o", str(out))
    table = astropy_fits.getdata(out, "COEFFS")

    c = demix.statistic(kind, dust128.shape, **options)(dust128)  # float64 map: float64 maths
    assert isinstance(c.values, np.ndarray) and c.values.shape == (len(table),)
    assert list(c.class_names) == [s.strip() for s in table["CLASS"]]
    for i, name in enumerate(c.label_names):
        np.testing.assert_array_equal(c.labels[:, i], table[name.upper()])
    ref = table["REAL"] + 1j * table["IMAG"]
    # Same library, same float64 precision, same map: only the order of multithreaded sums can
    # differ, ~1e-15 relative; 1e-12 leaves room and still catches any real difference.
    assert rel_error(c.values, ref) < 1e-12


# ---- against pywph ------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["none", "auto"])
@pytest.mark.parametrize("pbc", [1, 0])
def test_wph_matches_pywph(norm, pbc):
    name = f"wph_M128_J5_L4_dn0_norm-{norm}_pbc-{pbc}"
    peers = "reference/peers/"
    x = np.load(shared_file(peers + "input_I1_256.npy"))[:128, :128]
    op = demix.WPH((128, 128), J=5, L=4, dn=0, norm=norm,
                   boundary="periodic" if pbc else "nonperiodic")
    c = op(torch.from_numpy(np.ascontiguousarray(x)))
    assert c.values.dtype == torch.complex128
    ours = {}
    for k in range(len(c)):
        lab = tuple(int(v) for v in c.labels[k])
        key = (lab[0], lab[2], lab[5], lab[8]) if c.classes[c.class_id[k]] == "L" else lab
        ours[key] = c.values[k].item()
    for part, width in (("wph", 9), ("sm", 4)):
        idx = np.load(shared_file(f"{peers}{name}_{part}_indices.npy"))
        ref = np.load(shared_file(f"{peers}{name}_{part}_coeffs.npy"))
        got = np.array([ours[tuple(int(v) for v in row[:width])] for row in idx])
        assert rel_error(got, ref) < 1e-8  # double vs double: the C++ regression test's bound
    assert len(c) == 260 + 9


# ---- labels and selection -----------------------------------------------------------------------

def test_labels_and_selection(dust128):
    op = demix.WPH(dust128.shape, J=4, L=4, dn=0)
    labels = op.labels()
    assert labels.values is None and len(labels) == len(op)
    assert labels.classes == ("S11", "S00", "S01", "C01", "Cphase", "L")
    c = op(dust128)
    c01 = c["C01"]
    assert len(c01) == int(np.sum(c.class_id == c.classes.index("C01"))) > 0
    assert set(c01.class_names) == {"C01"}
    np.testing.assert_array_equal(c01.values, c.values[c.class_id == c.classes.index("C01")])
    sel = c.select("S11", j1=2)
    assert len(sel) > 0 and np.all(sel.label("j1") == 2) and set(sel.class_names) == {"S11"}
    with pytest.raises(ValueError, match="no class 'C02'; classes: S11, S00"):
        c["C02"]
    with pytest.raises(ValueError, match="no label 'k'"):
        c.select(k=1)

    rec = c.to_numpy()
    assert rec.dtype.names == ("class", *c.label_names, "value")
    assert rec["class"][0] == "S11" and np.iscomplexobj(rec["value"])
    np.testing.assert_array_equal(rec["value"], c.values)


def test_to_table(dust128):
    pytest.importorskip("astropy")
    c = demix.PowerSpectrum(dust128.shape)(np.stack([dust128, 2 * dust128]))
    t = c.to_table()
    assert t.colnames == ["class", "bin", "value"] and len(t) == len(c)
    np.testing.assert_allclose(t["value"][:, 1], 4 * t["value"][:, 0], rtol=1e-12)


# ---- arrays in, arrays out ----------------------------------------------------------------------

def test_numpy_in_numpy_out_and_torch_in_torch_out(dust128):
    op = demix.WPH(dust128.shape, J=4, dn=1)
    c_np = op(dust128)
    assert isinstance(c_np.values, np.ndarray) and c_np.values.dtype == np.complex128
    c_t = op(torch.from_numpy(dust128))
    assert torch.is_tensor(c_t.values) and c_t.values.dtype == torch.complex128
    np.testing.assert_array_equal(c_t.values.numpy(), c_np.values)
    # float32 maps are computed in float32 unless a precision is asked for.
    c32 = op(dust128.astype(np.float32))
    assert c32.values.dtype == np.complex64
    assert rel_error(c32.values, c_np.values, floor=1e-3) < 1e-3  # float32 rounding
    c64 = demix.WPH(dust128.shape, J=4, dn=1, dtype=torch.float64)(dust128.astype(np.float32))
    assert c64.values.dtype == np.complex128
    # Big-endian data (astropy's FITS arrays) and non-contiguous views are taken.
    np.testing.assert_array_equal(op(dust128.astype(">f8")).values, c_np.values)
    flipped = dust128[:, ::-1]
    np.testing.assert_array_equal(op(flipped).values, op(flipped.copy()).values)


def test_batches_match_single_maps(dust128):
    op = demix.WST(dust128.shape, J=3, L=4)
    batch = np.stack([dust128, dust128.T, -dust128])
    c = op(batch)
    assert c.values.shape == (3, len(op)) and c.batched
    for b in range(3):
        np.testing.assert_allclose(c.values[b], op(batch[b]).values, rtol=1e-12, atol=1e-14)


def test_cross_and_reference(dust128):
    x = torch.from_numpy(dust128)
    op = demix.WPH(dust128.shape, J=4, dn=1, norm="auto")
    c = op(x)
    np.testing.assert_allclose(op.forward_cross(x, x).values.numpy(), c.values.numpy(),
                               rtol=1e-12, atol=1e-14)
    ref = op.reference(x)
    assert ref.statistic == "wph" and ref.maps == 1 and "field_std" in ref.tensors
    # Normalised by the map's own statistics either way.
    np.testing.assert_allclose(op(x, reference=ref).values.numpy(), c.values.numpy(),
                               rtol=1e-12, atol=1e-14)
    other = op(2 * x + 1, reference=ref).values  # a reference changes the normalisation
    assert not np.allclose(other.numpy(), c.values.numpy())


def test_loss_and_grad_matches_autograd(dust128):
    x = torch.from_numpy(dust128[:64, :64].copy())
    op = demix.WPH((64, 64), J=3, dn=1)
    target = op(x.flip(0)).values
    weights = torch.rand(len(op), dtype=torch.float64)
    loss, grad = op.loss_and_grad(x, target, weights)
    assert loss.shape == () and grad.shape == x.shape

    xr = x.clone().requires_grad_(True)
    ref_loss = (weights * (op(xr).values - target).abs() ** 2).sum()
    ref_loss.backward()
    # The same sums, chunked differently: float64 rounding only.
    assert abs(loss.item() - ref_loss.item()) <= 1e-10 * ref_loss.item()
    assert torch.allclose(grad, xr.grad, rtol=1e-8, atol=1e-10 * xr.grad.abs().max().item())
    loss_np, grad_np = op.loss_and_grad(dust128[:64, :64], target.numpy(), want_grad=False)
    assert isinstance(loss_np, np.ndarray) and grad_np is None


def test_statistic_factory_and_repr():
    op = demix.statistic("wph", (64, 64), J=3, L=4, dn=2)
    assert isinstance(op, demix.WPH)
    assert op.keywords["J"] == 3 and op.keywords["dn"] == 2
    assert "WPH(shape=(64, 64), J=3, L=4, dn=2" in repr(op)
    assert demix.statistic("scov", (64, 64)).keywords["J"] == 4  # log2(64) - 2
    with pytest.raises(ValueError, match="no statistic named 'wphh'; statistics: wph, wst"):
        demix.statistic("wphh", (64, 64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_tensors_stay_on_their_device(dust128):
    x = torch.from_numpy(dust128).cuda()
    for op in (demix.WPH(x.shape, J=4, dn=1), demix.PowerSpectrum(x.shape)):
        c = op(x)
        assert c.values.device == x.device
        cpu = op(x.cpu()).values
        assert cpu.device.type == "cpu"
        assert rel_error(c.values.cpu().numpy(), cpu.numpy()) < 1e-9  # float64 on both


def test_wst_maps(dust128):
    # The maps before their mean (kymatio's array): their means are forward()'s values.
    wst = demix.WST((128, 128), J=3, L=4, boundary="nonperiodic")
    maps = wst.maps(dust128)
    assert isinstance(maps, np.ndarray) and maps.shape == (len(wst), 16, 16)
    np.testing.assert_allclose(maps.mean(axis=(-2, -1)), wst(dust128).values, rtol=1e-12)
    batch = torch.from_numpy(np.stack([dust128, dust128.T]))
    tmaps = wst.maps(batch)
    assert torch.is_tensor(tmaps) and tmaps.shape == (2, len(wst), 16, 16)
    with pytest.raises(demix.InvalidValueError, match="no scattering maps"):
        demix.WPH((128, 128), J=3)._default.forward_maps(batch)
