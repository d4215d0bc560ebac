"""demix.compat.pywph: pywph 1.1.3's interface over demix's WPH.

Against the recorded pywph outputs (shared/reference/peers: both configurations, norm none/auto,
pbc 1/0), pywph's normalisation-state semantics (checked through identities that hold whatever
the implementation: a map normalised by its own statistics has unit S11 at zero shift), batches,
chunks, autograd against finite differences, and the errors for what is not supported. Where pywph
itself is importable (``pip install pywph==1.1.3``), against it on random maps, including the
order of the output tensor; skipped otherwise.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import demix
import demix.compat.pywph as pw

from conftest import shared_file

PEERS = "reference/peers/"
CONFIGS = [("M128_J5_L4_dn0", 128, 5, 0, 260), ("M256_J7_L4_dn2", 256, 7, 2, 3096)]


def max_relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """Per coefficient, with a floor at 1e-6 of the largest |value| (coefficients that vanish
    analytically, ~1e-17, do not count), as the C++ regression tests compare."""
    floor = 1e-6 * np.abs(ref).max()
    return float((np.abs(ours - ref) / np.maximum(np.abs(ref), floor)).max())


@pytest.fixture(scope="module")
def peer_input() -> np.ndarray:
    return np.load(shared_file(PEERS + "input_I1_256.npy"))


@pytest.fixture(scope="module")
def peer_ops() -> dict[str, pw.WPHOp]:
    return {name: pw.WPHOp(M, M, J, L=4, dn=dn, precision="double")
            for name, M, J, dn, _ in CONFIGS}


@pytest.mark.parametrize("pbc", [1, 0])
@pytest.mark.parametrize("norm", ["none", "auto"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_recorded_pywph_outputs(peer_ops, peer_input, cfg, norm, pbc):
    name, M, _J, _dn, n_wph = cfg
    op = peer_ops[name]
    op.clear_normalization()
    prefix = f"{PEERS}wph_{name}_norm-{norm}_pbc-{pbc}"
    ref_idx = np.load(shared_file(prefix + "_wph_indices.npy"))
    ref_sm_idx = np.load(shared_file(prefix + "_sm_indices.npy"))
    ref_wph = np.load(shared_file(prefix + "_wph_coeffs.npy"))
    ref_sm = np.load(shared_file(prefix + "_sm_coeffs.npy"))
    x = peer_input[:M, :M]

    coeffs = op.apply(x, norm=None if norm == "none" else "auto", pbc=bool(pbc))
    # pywph returns a torch tensor, NumPy in or not; double precision: complex128.
    assert isinstance(coeffs, torch.Tensor) and coeffs.dtype == torch.complex128
    assert coeffs.shape == (n_wph + 9,)
    assert (op.nb_wph_moments, op.nb_scaling_moments) == (n_wph, 9)
    # The WPH object sorts the tensor's coefficients by their index rows: pywph's files.
    w = pw.WPH(coeffs, op.wph_moments_indices, op.scaling_moments_indices, J=op.J, L=op.L,
               A=op.A)
    np.testing.assert_array_equal(w.wph_coeffs_indices, ref_idx)
    np.testing.assert_array_equal(w.sm_coeffs_indices, ref_sm_idx)
    assert max_relative_error(w.wph_coeffs, ref_wph) < 1e-8
    assert max_relative_error(w.sm_coeffs, ref_sm) < 1e-8


def test_ret_wph_obj_is_the_sorted_tensor(peer_input):
    op = pw.WPHOp(128, 128, 5, dn=0, precision="double")
    x = peer_input[:128, :128]
    w = op.apply(x, ret_wph_obj=True)
    assert isinstance(w, pw.WPH)
    assert (w.J, w.L, w.A) == (5, 4, 4)
    ref = np.load(shared_file(PEERS + "wph_M128_J5_L4_dn0_norm-none_pbc-1_wph_coeffs.npy"))
    assert isinstance(w.wph_coeffs, np.ndarray) and w.wph_coeffs.shape == ref.shape
    assert max_relative_error(w.wph_coeffs, ref) < 1e-8
    # The tensor holds the same values in the model's order.
    t = op.apply(x).numpy()
    rows = {tuple(r): i for i, r in enumerate(w.wph_coeffs_indices)}
    order = [rows[tuple(r)] for r in op.wph_moments_indices.numpy()]
    np.testing.assert_array_equal(t[:op.nb_wph_moments], w.wph_coeffs[order])


# ---- normalisation state ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_map() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 64))
    # Some large-scale structure so that every scale has power.
    k = np.fft.fftfreq(64)
    x = np.fft.ifft2(np.fft.fft2(x) / (0.02 + np.hypot(*np.meshgrid(k, k)))).real
    return (x - x.mean()) / x.std()


def s11_zero_shift(op: pw.WPHOp, coeffs: torch.Tensor) -> np.ndarray:
    """The S11 moments at tau = 0 (the normalised variances of the wavelet fields)."""
    rows = op.wph_moments_indices.cpu().numpy()
    keep = (rows[:, 2] == 1) & (rows[:, 5] == 1) & (rows[:, 0] == rows[:, 3]) & (rows[:, 6] == 0)
    return coeffs.detach().cpu().numpy()[..., :op.nb_wph_moments][..., keep]


def test_auto_norm_is_stored_by_the_first_call(small_map):
    op = pw.WPHOp(64, 64, 4, L=4, dn=1, precision="double")
    x = small_map
    # First call: x normalised by its own statistics, so its S11 at tau = 0 is 1.
    np.testing.assert_allclose(s11_zero_shift(op, op.apply(x, norm="auto")), 1, atol=1e-12)
    # Later calls reuse x's statistics: 2x has four times the variance.
    np.testing.assert_allclose(s11_zero_shift(op, op.apply(2 * x, norm="auto")), 4, atol=1e-11)
    # ... also through the chunked loop and the WPH object.
    xt, nb = op.preconfigure(2 * x)
    c, _ = op.apply(xt, nb - 1, norm="auto", ret_indices=True)
    np.testing.assert_allclose(s11_zero_shift(op, c), 4, atol=1e-11)
    # norm=None neither uses nor changes the stored statistics.
    op.apply(3 * x)
    np.testing.assert_allclose(s11_zero_shift(op, op.apply(0.5 * x, norm="auto")), 0.25,
                               atol=1e-12)
    # clear_normalization: the next call stores again.
    op.clear_normalization()
    np.testing.assert_allclose(s11_zero_shift(op, op.apply(2 * x, norm="auto")), 1, atol=1e-12)
    np.testing.assert_allclose(s11_zero_shift(op, op.apply(x, norm="auto")), 0.25, atol=1e-12)


def test_auto_norm_stored_from_one_map_applies_to_a_batch(small_map):
    op = pw.WPHOp(64, 64, 4, L=4, dn=1, precision="double")
    op.apply(small_map, norm="auto")
    batch = np.stack([small_map, 2 * small_map, -small_map])
    s = s11_zero_shift(op, op.apply(batch, norm="auto"))
    assert s.shape[0] == 3
    np.testing.assert_allclose(s[0], 1, atol=1e-12)
    np.testing.assert_allclose(s[1], 4, atol=1e-11)
    np.testing.assert_allclose(s[2], 1, atol=1e-12)


def test_auto_norm_matches_demix_reference(small_map):
    # The same numbers as demix's own API with an explicit reference.
    op = pw.WPHOp(64, 64, 4, L=4, dn=1, precision="double")
    op.apply(small_map, norm="auto")
    y = np.roll(small_map, 5, axis=0) ** 2
    got = op.apply(y, norm="auto").numpy()
    w = demix.WPH((64, 64), J=4, L=4, dn=1, norm="auto")
    ref = w(y, reference=w.reference(small_map)).values
    assert np.array_equal(got, ref)


# ---- shapes, dtypes, batches, chunks ------------------------------------------------------------
def test_numpy_in_tensor_out_and_batches(small_map):
    op = pw.WPHOp(64, 64, 4, L=4, dn=1)
    K = op.nb_wph_moments + op.nb_scaling_moments
    assert K == len(demix.WPH((64, 64), J=4, L=4, dn=1))
    c = op.apply(small_map)
    assert isinstance(c, torch.Tensor) and c.dtype == torch.complex64 and c.shape == (K,)
    batch = np.stack([small_map, small_map.T, -small_map]).reshape(3, 1, 64, 64)
    cb = op.apply(batch)
    assert cb.shape == (3, 1, K)
    for i in range(3):
        np.testing.assert_allclose(cb[i, 0].numpy(), op.apply(batch[i, 0]).numpy(), rtol=0,
                                   atol=1e-5 * float(c.abs().max()))
    # A float64 tensor keeps its precision (pywph does not cast tensors).
    assert op.apply(torch.from_numpy(small_map)).dtype == torch.complex128


def test_chunk_loop_of_pywph_scripts(small_map):
    op = pw.WPHOp(64, 64, 4, L=4, dn=1, precision="double")
    full = op.apply(small_map)
    x, nb_chunks = op.preconfigure(small_map, requires_grad=True)
    assert nb_chunks == 1 and op.preconfigured
    assert x.requires_grad and x.is_leaf and x.dtype == torch.float64
    coeffs, indices = op.apply(x, 0, ret_indices=True)
    assert torch.equal(indices, torch.arange(full.shape[-1]))
    assert torch.equal(coeffs.detach(), full)
    assert not op.preconfigured  # auto_free_mem after the last chunk
    with pytest.raises(RuntimeError, match="First preconfigure data"):
        op.apply(x, 0)
    op.preconfigure(x)
    with pytest.raises(ValueError, match="Invalid chunk_id 1"):
        op.apply(x, 1)


def test_load_model_subsets(small_map):
    op = pw.WPHOp(64, 64, 4, L=4, dn=1, precision="double")
    full = op.apply(small_map).numpy()
    full_rows = op.wph_moments_indices.numpy()
    full_sm = op.scaling_moments_indices.numpy()
    op.load_model(["L", "S11"])  # pywph reorders the classes itself
    rows = op.wph_moments_indices.numpy()
    s11 = (full_rows[:, 0] == full_rows[:, 3]) & (full_rows[:, 2] == 1) & (full_rows[:, 5] == 1)
    np.testing.assert_array_equal(rows, full_rows[s11])
    np.testing.assert_array_equal(op.scaling_moments_indices.numpy(), full_sm)
    sub = op.apply(small_map).numpy()
    np.testing.assert_array_equal(sub, np.concatenate([full[:len(full_rows)][s11],
                                                       full[len(full_rows):]]))
    op.load_model("S11")
    assert op.nb_scaling_moments == 0 and op.apply(small_map).shape == (s11.sum(),)
    op.load_model(dn=0)
    assert op.dn == 0 and op.nb_wph_moments < len(full_rows)
    assert not (op.wph_moments_indices[:, 6] > 0).any()


def test_wph_object_selection_and_isopar(small_map):
    op = pw.WPHOp(64, 64, 4, L=4, dn=1, precision="double")
    w = op.apply(small_map, ret_wph_obj=True)
    s11, idx = w.get_coeffs("S11")
    assert len(s11) == 4 * 4 * (1 + 1 * 4)
    assert (idx[:, 0] == idx[:, 3]).all() and (idx[:, 2] == 1).all() and (idx[:, 5] == 1).all()
    c01, idx = w.get_coeffs("C01", j1=1)
    assert len(c01) and (idx[:, 0] == 1).all() and (idx[:, 3] > 1).all()
    sm, sm_idx = w.get_coeffs("L")
    np.testing.assert_array_equal(sm, w.sm_coeffs)
    assert sm_idx.shape[1] == 4
    with pytest.raises(ValueError, match="Unknown class"):
        w.get_coeffs("S22")
    # Isotropic, parity-invariant average: check one C01 group by hand.
    rows, values = w.wph_coeffs_indices.copy(), w.wph_coeffs.copy()
    iso = w.to_isopar()
    assert iso is w and (w.wph_coeffs_indices[:, 1] == 0).all()
    d = np.abs(rows[:, 1] - rows[:, 4])
    dt = np.minimum(d, 8 - d)
    for key in ([0, 0, 0, 2, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1, 1, 2, 0]):
        group = ((rows[:, [0, 2, 3, 5, 6, 7, 8]] == np.array(key)[[0, 2, 3, 5, 6, 7, 8]])
                 .all(axis=1) & (dt == key[4]))
        assert group.sum() >= 4
        at = np.flatnonzero((w.wph_coeffs_indices == key).all(axis=1))
        assert len(at) == 1
        np.testing.assert_allclose(w.wph_coeffs[at[0]], values[group].mean(), rtol=1e-14)
    # Arithmetic keeps the indices.
    w2 = op.apply(small_map, ret_wph_obj=True)
    assert np.all(abs(w2 - w2).wph_coeffs == 0)
    np.testing.assert_allclose((w2 / 2).wph_coeffs * 2, w2.wph_coeffs)


# ---- autograd -----------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", [None, "auto"])
def test_gradient_against_finite_differences(norm):
    rng = np.random.default_rng(7)
    op = pw.WPHOp(32, 32, 3, L=4, dn=1, precision="double")
    target = op.apply(rng.normal(size=(32, 32)), norm=norm).detach()  # stores the "auto" norm
    x = torch.from_numpy(rng.normal(size=(32, 32))).requires_grad_(True)
    loss = (op.apply(x, norm=norm) - target).abs().pow(2).sum()
    loss.backward()
    v = torch.from_numpy(rng.normal(size=(32, 32)))
    eps = 1e-5

    def f(y: torch.Tensor) -> float:
        return float((op.apply(y, norm=norm) - target).abs().pow(2).sum())

    fd = (f(x.detach() + eps * v) - f(x.detach() - eps * v)) / (2 * eps)
    assert float((x.grad * v).sum()) == pytest.approx(fd, rel=1e-6)


# ---- devices and errors -------------------------------------------------------------------------
def test_device_arguments():
    op = pw.WPHOp(32, 32, 3, device=torch.device("cpu"))
    assert op.apply(np.zeros((32, 32))).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(demix.DeviceError):
            pw.WPHOp(32, 32, 3, device=0)
        with pytest.warns(UserWarning, match="CUDA is not available"):
            assert op.to(0) is op
        assert op.device == "cpu"


UNSUPPORTED = [
    ("load_model C00", lambda op: op.load_model(["S11", "C00"]), "classes \\['C00'\\]"),
    ("cross model", lambda op: op.load_model(cross_moments=True), "cross_moments=True"),
    ("extra moments", lambda op: op.load_model(extra_wph_moments=[[0, 0, 1, 0, 0, 1, 0, 0, 0]]),
     "extra_wph_moments"),
    ("legacy grid", lambda op: op.load_model(tau_grid="legacy"), "tau_grid='legacy'"),
    ("dl", lambda op: op.load_model(dl=1), "dl=1"),
    ("sm_p_list", lambda op: op.load_model(sm_p_list=[(0, 0)]), "sm_p_list"),
    ("auto_std_only", lambda op: op.apply(np.zeros((32, 32)), norm="auto_std_only"),
     "auto_std_only"),
    ("get_normalization", lambda op: op.get_normalization(), "get_normalization"),
    ("j_min", lambda op: pw.WPHOp(32, 32, 3, j_min=1), "j_min=1"),
    ("cut", lambda op: pw.WPHOp(32, 32, 3, cut_x_param=0.25), "cut_x_param=0.25"),
    ("filters", lambda op: pw.WPHOp(32, 32, 3, bp_filter_cls=dict), "bp_filter_cls"),
]


@pytest.mark.parametrize("what,call,message", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_options_raise(what, call, message):
    op = pw.WPHOp(32, 32, 3)
    with pytest.raises(NotImplementedError) as e:
        call(op)
    text = str(e.value)
    assert text.startswith("demix.compat.pywph: ")
    assert re.search(message, text) and "supported: pywph's default model" in text


def test_bad_input_errors(small_map):
    op = pw.WPHOp(64, 64, 4)
    with pytest.raises(ValueError, match="Unknown normalization mode"):
        op.apply(small_map, norm="std")
    with pytest.raises(ValueError, match="cplx=True"):
        op.apply(small_map + 1j * small_map)
    with pytest.raises(demix.ShapeError, match=r"\(M, N\) = \(64, 64\)"):
        op.apply(small_map[:32])
    with pytest.raises(ValueError, match="list of two maps"):
        op.apply(small_map, cross=True)
    with pytest.raises(TypeError, match="NumPy array, a list or a torch tensor"):
        op.apply("map.npy")


def test_cross_and_cross_auto_state(small_map):
    op = pw.WPHOp(64, 64, 4, L=4, dn=1, precision="double")
    y = np.roll(small_map, 7, axis=1)
    ref = demix.WPH((64, 64), J=4, L=4, dn=1).forward_cross(small_map, y).values
    np.testing.assert_array_equal(op.apply([small_map, y], cross=True).numpy(), ref)
    # cross of a map with itself is its WPH
    np.testing.assert_allclose(op.apply([small_map, small_map], cross=True).numpy(),
                               op.apply(small_map).numpy(), rtol=0, atol=1e-12)
    op.apply([small_map, y], cross=True, norm="auto")
    with pytest.raises(NotImplementedError, match="clear_normalization"):
        op.apply([small_map, y], cross=True, norm="auto")
    with pytest.raises(NotImplementedError, match="clear_normalization"):
        op.apply(small_map, norm="auto")
    op.clear_normalization()
    op.apply([small_map, y], cross=True, norm="auto")


# ---- against pywph itself -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_pywph():
    return pytest.importorskip("pywph")


@pytest.mark.parametrize("cplx", [False, True])
def test_against_pywph_on_random_maps(real_pywph, cplx):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 64, 64))
    y = rng.normal(size=(64, 64))
    if cplx:
        x = x + 1j * rng.normal(size=(2, 64, 64))
        y = y + 1j * rng.normal(size=(64, 64))
    kw = dict(L=4, dn=1, cplx=cplx, precision="double", device="cpu")
    theirs, ours = real_pywph.WPHOp(64, 64, 4, **kw), pw.WPHOp(64, 64, 4, **kw)
    # The model, in pywph's order.
    np.testing.assert_array_equal(ours.wph_moments_indices.numpy(),
                                  theirs.wph_moments_indices.cpu().numpy())
    np.testing.assert_array_equal(ours.scaling_moments_indices.numpy(),
                                  theirs.scaling_moments_indices.cpu().numpy())
    for norm in (None, "auto"):
        for pbc in (True, False):
            for op in (theirs, ours):
                op.clear_normalization()
            # The tensor, element by element (its order), batch and state included: the first
            # "auto" call stores x's normalisation, the second reuses it on y.
            a, b = theirs.apply(x, norm=norm, pbc=pbc), ours.apply(x, norm=norm, pbc=pbc)
            assert a.shape == b.shape and a.dtype == b.dtype
            assert max_relative_error(b.numpy(), a.numpy()) < 1e-8
            a, b = theirs.apply(y, norm=norm, pbc=pbc), ours.apply(y, norm=norm, pbc=pbc)
            assert max_relative_error(b.numpy(), a.numpy()) < 1e-8
    for op in (theirs, ours):
        op.clear_normalization()
    wa, wb = (op.apply(y, ret_wph_obj=True) for op in (theirs, ours))
    np.testing.assert_array_equal(wb.wph_coeffs_indices, wa.wph_coeffs_indices)
    for clas in ("S11", "C01", "Cphase", "L"):
        (ca, ia), (cb, ib) = wa.get_coeffs(clas), wb.get_coeffs(clas)
        np.testing.assert_array_equal(ib, ia)
        assert max_relative_error(cb, ca) < 1e-8
    wa.to_isopar(), wb.to_isopar()
    np.testing.assert_array_equal(wb.wph_coeffs_indices, wa.wph_coeffs_indices)
    assert max_relative_error(wb.wph_coeffs, wa.wph_coeffs) < 1e-8


def test_against_pywph_single_precision_cross_and_subset(real_pywph):
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(64, 64)), rng.normal(size=(64, 64))
    theirs = real_pywph.WPHOp(64, 64, 4, L=4, dn=2, device="cpu")
    ours = pw.WPHOp(64, 64, 4, L=4, dn=2, device="cpu")
    a, b = theirs.apply(x, norm="auto"), ours.apply(x, norm="auto")
    assert a.dtype == b.dtype == torch.complex64
    assert max_relative_error(b.numpy(), a.numpy()) < 1e-4
    for op in (theirs, ours):
        op.clear_normalization()
    a, b = theirs.apply([x, y], cross=True), ours.apply([x, y], cross=True)
    assert max_relative_error(b.numpy(), a.numpy()) < 1e-4
    for op in (theirs, ours):
        op.load_model(["S01", "Cphase", "L"], dn=1)
    np.testing.assert_array_equal(ours.wph_moments_indices.numpy(),
                                  theirs.wph_moments_indices.cpu().numpy())
    a, b = theirs.apply(x), ours.apply(x)
    assert max_relative_error(b.numpy(), a.numpy()) < 1e-4


def test_pickle_keeps_the_model_and_the_stored_normalisation(small_map):
    # pywph's denoising example sends the operator to worker processes.
    import pickle

    op = pw.WPHOp(64, 64, 4, L=4, dn=1, precision="double")
    op.load_model(["S11", "C01", "L"])
    op.apply(small_map, norm="auto")
    copy = pickle.loads(pickle.dumps(op))
    np.testing.assert_array_equal(copy.wph_moments_indices, op.wph_moments_indices)
    y = 2 * small_map
    assert torch.equal(copy.apply(y, norm="auto"), op.apply(y, norm="auto"))
    np.testing.assert_allclose(s11_zero_shift(copy, copy.apply(y, norm="auto")), 4, atol=1e-11)
