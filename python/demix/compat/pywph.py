"""pywph 1.1.3's interface on demix's WPH: ``import demix.compat.pywph as pw``.

``pw.WPHOp(M, N, J, L=4, dn=0, ...)`` and its ``apply``/``forward`` (also ``wph_op(data)``),
``preconfigure``, ``load_model``, ``clear_normalization`` and ``to``, and the coefficient
container ``pw.WPH`` (``get_coeffs``, ``to_isopar``, arithmetic), with pywph's defaults, output
shapes and orderings:

* ``apply(data)`` returns a torch tensor ``(..., K)`` for data ``(..., M, N)`` (NumPy or torch),
  complex, in pywph's model order: the WPH moments (classes S11, S00, S01, C01, Cphase, in the
  order of ``wph_op.wph_moments_indices``, rows ``[j1, t1, p1, j2, t2, p2, n, a, pseudo]``) then
  the scaling moments (``wph_op.scaling_moments_indices``, rows ``[j, p1, p2, pseudo]``).
  NumPy data is cast to the operator's precision first, as pywph does; the result is
  differentiable with respect to torch data (``loss.backward()``).
* ``norm="auto"``: the first call stores the normalisation (means and deviations of every field
  of that call's data, held constant for gradients); later ``norm="auto"`` calls reuse it until
  ``clear_normalization()``, exactly as pywph does.
* Chunks: demix bounds its memory itself, so ``preconfigure`` always reports one chunk and
  ``apply(data, 0, ret_indices=True)`` returns every coefficient with ``arange(K)``: pywph's
  chunked loops run unchanged.

Everything else pywph offers raises NotImplementedError naming what is supported (see
:data:`SUPPORTED`).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from .. import _demix
from ..errors import ShapeError
from ..stats import WPH as _DemixWPH

__all__ = ["WPHOp", "WPH", "SUPPORTED"]

#: pywph's default model, the only classes this layer computes (any subset of them).
DEFAULT_CLASSES = ("S11", "S00", "S01", "C01", "Cphase", "L")

#: What this layer supports, quoted by its errors.
SUPPORTED = ("pywph's default model (classes S11, S00, S01, C01, Cphase, L, or a subset of them; "
             "default dj, dl, sm_j_list, sm_p_list, tau_grid='exp'; dn and A free), real data "
             "or complex data with cplx=True, norm None or 'auto', pbc True or False, cross=True "
             "on periodic maps, j_min=0, cut_x_param == cut_y_param, the default filters")

DeviceArg = Union[int, str, torch.device]

# Classes pywph's WPH.get_coeffs selects, as rules on the index rows: (j1 == j2 ?, test of p1,
# test of p2).
_CLASS_RULES = {
    "S11": (True, lambda p: p == 1, lambda p: p == 1),
    "S00": (True, lambda p: p == 0, lambda p: p == 0),
    "S01": (True, lambda p: p == 0, lambda p: p == 1),
    "S10": (True, lambda p: p == 1, lambda p: p == 0),
    "C00": (False, lambda p: p == 0, lambda p: p == 0),
    "C01": (False, lambda p: p == 0, lambda p: p == 1),
    "C10": (False, lambda p: p == 1, lambda p: p == 0),
    "Cphase": (False, lambda p: p == 1, lambda p: p != 0),
    "Cphase_inv": (False, lambda p: p != 0, lambda p: p == 1),
}


def _unsupported(what: str) -> NotImplementedError:
    return NotImplementedError(f"demix.compat.pywph: {what} is not supported; supported: "
                               f"{SUPPORTED}")


def _torch_device(device: DeviceArg) -> torch.device:
    """pywph's device argument (a GPU index, "cpu", "cuda:1" or a torch.device)."""
    if isinstance(device, torch.device):
        return device
    if isinstance(device, (int, np.integer)) and not isinstance(device, bool):
        return torch.device("cuda", int(device))
    if isinstance(device, str):
        return torch.device(device)
    raise TypeError(f"device must be a GPU index, 'cpu' or a torch.device, got {device!r}")


def _numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _broadcast_reference(ref: _demix.Reference, stored: tuple[int, ...],
                         out: tuple[int, ...]) -> _demix.Reference:
    """The reference of maps with leading dimensions ``stored`` broadcast to ``out`` (one row
    per map of the flattened ``out``)."""
    tensors = []
    for name, t in ref.tensors.items():
        rest = tuple(t.shape[1:])
        t = t.reshape((1,) * (len(out) - len(stored)) + stored + rest)
        tensors.append((name, t.expand(out + rest).reshape((-1,) + rest).contiguous()))
    return _demix.Reference(ref.statistic, tensors)


class WPHOp(torch.nn.Module):
    """pywph's WPH operator for ``M x N`` maps (pywph 1.1.3's signature and defaults).

    Args:
        M, N: height and width of the maps.
        J: number of dyadic scales.
        L: number of angles in [0, pi) (default 4).
        cplx: True if the operator will see complex maps (2L angles, pseudo moments).
        lp_filter_cls, bp_filter_cls: only the defaults (Gaussian low-pass, bump-steerable
            wavelets) are supported; leave them None.
        j_min: only 0 is supported.
        dn: radial steps of the shift grid (default 0).
        A: azimuthal steps of the shift grid (default 4).
        cut_x_param, cut_y_param: border cut of non-periodic maps in units of ``2**J`` pixels
            (default 1/2); both must be equal.
        precision: "single" (default) or "double": NumPy data are cast to it.
        device: "cpu" (default), a GPU index or a torch.device.
    """

    def __init__(self, M: int, N: int, J: int, L: int = 4, cplx: bool = False,
                 lp_filter_cls: Any = None, bp_filter_cls: Any = None, j_min: int = 0,
                 dn: int = 0, A: int = 4, cut_x_param: float = 1 / 2,
                 cut_y_param: float = 1 / 2, precision: str = "single",
                 device: DeviceArg = "cpu") -> None:
        super().__init__()
        for name, cls, default in (("lp_filter_cls", lp_filter_cls, "GaussianFilter"),
                                   ("bp_filter_cls", bp_filter_cls, "BumpSteerableWavelet")):
            # pywph's own default classes are accepted by name (a script may pass them).
            if cls is not None and getattr(cls, "__name__", None) != default:
                raise _unsupported(f"{name}={cls!r} (only pywph's {default})")
        if j_min != 0:
            raise _unsupported(f"j_min={j_min}")
        if cut_x_param != cut_y_param:
            raise _unsupported(f"cut_x_param={cut_x_param} != cut_y_param={cut_y_param}")
        if precision not in ("single", "double"):
            raise ValueError("precision parameter must be equal to either 'single' or 'double', "
                             f"got {precision!r}")
        self.M, self.N, self.J, self.L, self.cplx, self.j_min = M, N, J, L, bool(cplx), j_min
        self.dn, self.A = dn, A
        self.cut_x_param = self.cut_y_param = cut_x_param
        self.precision = precision
        self.device = device
        self._device = _torch_device(device)
        self._classes: tuple[str, ...] = DEFAULT_CLASSES
        self._operators: dict[tuple[str, bool], _DemixWPH] = {}
        self.preconfigured = False
        self.nb_chunks = 1
        self.clear_normalization()
        self._load_indices()

    # ---- precision and the demix operators ------------------------------------------------
    @property
    def _real_dtype(self) -> torch.dtype:
        return torch.float64 if self.precision == "double" else torch.float32

    def _operator(self, pbc: bool, norm: str = "none") -> _DemixWPH:
        # One demix operator per boundary and normalisation; each holds its filters per device
        # and precision.
        op = self._operators.get((norm, pbc))
        if op is None:
            op = _DemixWPH((self.M, self.N), J=self.J, L=self.L, dn=self.dn, A=self.A,
                           norm=norm, boundary="periodic" if pbc else "nonperiodic",
                           cut_param=self.cut_x_param, device=self._device)
            self._operators[(norm, pbc)] = op
        return op

    def _load_indices(self) -> None:
        """The model's moments in pywph's order, from the library's labels: ``_keep`` (positions
        in demix's coefficients), ``wph_moments_indices`` (nb_wph_moments, 9) and
        ``scaling_moments_indices`` (nb_scaling_moments, 4), as pywph's attributes."""
        dtype = "float64" if self.precision == "double" else "float32"
        raw = self._operator(True)._operator(self._device, dtype, self.cplx).labels()
        _values, classes, class_id, _label_names, labels = raw
        class_id = _numpy(class_id)
        labels = _numpy(labels).astype(np.int64)
        names = np.asarray(classes, dtype=object)[class_id]
        wanted = np.isin(names, self._classes)
        is_sm = names == "L"
        # WPH moments first, then the scaling moments, each in the library's order, which is
        # pywph's model order (tests/python/test_compat_pywph.py checks it against pywph).
        wph_pos = np.flatnonzero(wanted & ~is_sm)
        sm_pos = np.flatnonzero(wanted & is_sm)
        self._keep = np.concatenate([wph_pos, sm_pos])
        self._keep_t: dict[torch.device, torch.Tensor] = {}
        self.wph_moments_indices = torch.from_numpy(labels[wph_pos]).to(self._device)
        # Scaling moments' labels are [j, -1, p1, j, -1, p2, -1, -1, pseudo]: pywph's [j, p1, p2,
        # pseudo].
        self.scaling_moments_indices = torch.from_numpy(
            labels[sm_pos][:, [0, 2, 5, 8]].copy()).to(self._device)
        self.nb_wph_moments = len(wph_pos)
        self.nb_scaling_moments = len(sm_pos)

    def _keep_on(self, device: torch.device) -> torch.Tensor:
        t = self._keep_t.get(device)
        if t is None:
            t = torch.from_numpy(self._keep).to(device)
            self._keep_t[device] = t
        return t

    # ---- pywph's API -------------------------------------------------------------------------
    def load_model(self, classes: Union[str, Sequence[str]] = DEFAULT_CLASSES,
                   extra_wph_moments: Sequence[Sequence[int]] = (),
                   extra_scaling_moments: Sequence[Sequence[int]] = (),
                   cross_moments: bool = False, sm_j_list: Sequence[int] = (),
                   sm_p_list: Sequence[tuple[int, int]] = ((0, 0), (0, 1), (1, 1)),
                   dj: Optional[int] = None, dl: Optional[int] = None, dn: Optional[int] = None,
                   A: Optional[int] = None, tau_grid: str = "exp") -> None:
        """Select the model: any subset of pywph's default classes (S11, S00, S01, C01,
        Cphase, L) with pywph's default parameters; ``dn`` and ``A`` may change. Other models
        raise NotImplementedError. Loading a model clears the stored normalisation."""
        if isinstance(classes, str):
            classes = [classes]
        other = [c for c in classes if c not in DEFAULT_CLASSES]
        if other:
            raise _unsupported(f"load_model with classes {other}")
        if len(extra_wph_moments) or len(extra_scaling_moments):
            raise _unsupported("load_model with extra_wph_moments or extra_scaling_moments")
        if cross_moments:
            raise _unsupported("load_model(cross_moments=True) (the symmetrised cross model; "
                               "apply(..., cross=True) with the default model is supported)")
        if len(sm_j_list) and list(sm_j_list) != list(range(-1, self.J // 4 + 1)):
            raise _unsupported(f"sm_j_list={list(sm_j_list)} (only the default, "
                               f"{list(range(-1, self.J // 4 + 1))})")
        if [tuple(p) for p in sm_p_list] != [(0, 0), (0, 1), (1, 1)]:
            raise _unsupported(f"sm_p_list={list(sm_p_list)}")
        if dj is not None and dj != self.J - self.j_min - 1:
            raise _unsupported(f"dj={dj} (only the default, J - 1 = {self.J - 1})")
        if dl is not None and dl != self.L // 2:
            raise _unsupported(f"dl={dl} (only the default, L // 2 = {self.L // 2})")
        if tau_grid != "exp":
            raise _unsupported(f"tau_grid={tau_grid!r}")
        changed = (dn is not None and dn != self.dn) or (A is not None and A != self.A)
        if dn is not None:
            self.dn = dn
        if A is not None:
            self.A = A
        if changed:
            self._operators = {}
        self._classes = tuple(c for c in DEFAULT_CLASSES if c in classes)
        # pywph keeps its stored normalisation only while its size matches the model; with a
        # new model it normalises the next call by that call's data, as a cleared state does.
        self.clear_normalization()
        self._load_indices()

    def clear_normalization(self) -> None:
        """Forget the normalisation stored by the first ``norm="auto"`` call."""
        self._reference: Optional[_demix.Reference] = None
        self._reference_lead: tuple[int, ...] = ()
        self._cross_normalised = False

    def get_normalization(self) -> Any:
        raise _unsupported("get_normalization (pywph's internal tensors; demix stores a "
                           "demix.Reference)")

    def set_normalization(self, *args: Any, **kwargs: Any) -> None:
        raise _unsupported("set_normalization")

    def set_custom_scale_dependent_normalization(self, *args: Any, **kwargs: Any) -> None:
        raise _unsupported("set_custom_scale_dependent_normalization")

    def to(self, device: DeviceArg) -> "WPHOp":  # type: ignore[override]
        """Move the operator (and a stored normalisation) to ``device``: a GPU index or "cpu".
        Without CUDA it warns and stays on the CPU, as pywph does."""
        dev = _torch_device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            warnings.warn("CUDA is not available, moving to cpu.")
            device, dev = "cpu", torch.device("cpu")
        self.device, self._device = device, dev
        self._operators = {}
        self.wph_moments_indices = self.wph_moments_indices.to(dev)
        self.scaling_moments_indices = self.scaling_moments_indices.to(dev)
        if self._reference is not None:
            self._reference = _demix.Reference(
                self._reference.statistic,
                [(k, v.to(dev)) for k, v in self._reference.tensors.items()])
        return self

    def __getstate__(self) -> dict[str, Any]:
        # Picklable, as pywph's operator is (its denoising example sends it to worker
        # processes): the library's operators are rebuilt on first use, a stored normalisation
        # travels as its tensors.
        state = self.__dict__.copy()
        state["_operators"] = {}
        ref = state.pop("_reference")
        state["_reference_state"] = (None if ref is None
                                     else (ref.statistic, list(ref.tensors.items())))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        ref = state.pop("_reference_state")
        self.__dict__.update(state)
        self._reference = None if ref is None else _demix.Reference(*ref)

    def _to_torch(self, data: Any, requires_grad: bool) -> torch.Tensor:
        # pywph's conversion: lists become arrays, arrays are cast to the precision (complex
        # when complex), tensors keep their dtype; all go to the operator's device.
        if isinstance(data, list):
            data = np.array(data)
        if isinstance(data, np.ndarray):
            dtype = self._real_dtype
            if np.iscomplexobj(data):
                dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
            t = torch.from_numpy(np.ascontiguousarray(data)).to(dtype)
        elif isinstance(data, torch.Tensor):
            t = data
        else:
            raise TypeError(f"data must be a NumPy array, a list or a torch tensor, got "
                            f"{type(data).__name__}")
        t = t.to(self._device).contiguous()
        if requires_grad and not t.requires_grad:
            t.requires_grad = True
        return t

    def preconfigure(self, data: Any, requires_grad: bool = False, mem_chunk_factor: int = 25,
                     mem_chunk_factor_grad: int = 40, precompute_wt: bool = True,
                     precompute_modwt: bool = True, cross: bool = False,
                     nb_wph_cov_per_chunk: Optional[int] = None,
                     pbc: bool = True) -> tuple[Any, int]:
        """Convert ``data`` as ``apply`` does (``requires_grad`` turns it on) and return it with
        the number of chunks, always 1 (demix bounds its memory itself); the memory options
        are accepted and have no effect."""
        if cross:
            if not isinstance(data, list) or len(data) != 2:
                raise ValueError("When cross is True, data must be a list of two maps")
            d = [self._to_torch(d, requires_grad) for d in data]
            if d[0].shape != d[1].shape:
                raise ShapeError(f"data1 and data2 must be of same shape, got "
                                 f"{tuple(d[0].shape)} and {tuple(d[1].shape)}")
            out: Any = d
        else:
            out = self._to_torch(data, requires_grad)
        self.nb_chunks = 1
        self.preconfigured = True
        return out, self.nb_chunks

    def _coefficients(self, data: Any, norm: Optional[str], pbc: bool,
                      cross: bool) -> torch.Tensor:
        """The model's coefficients ``(..., K)`` of ``data`` ``(..., M, N)`` (a pair if
        cross)."""
        maps = data if cross else [data]
        for m in maps:
            if m.dim() < 2 or tuple(m.shape[-2:]) != (self.M, self.N):
                raise ShapeError(f"data must be (..., M, N) with (M, N) = ({self.M}, {self.N}), "
                                 f"got {tuple(m.shape)}")
            if m.is_complex() and not self.cplx:
                raise ValueError("complex data needs an operator built with cplx=True")
        lead = tuple(maps[0].shape[:-2])
        reference = self._reference
        if norm == "auto" and not cross and reference is not None:
            # pywph broadcasts the stored statistics (leading dimensions of the call that stored
            # them) against the data's leading dimensions.
            stored = self._reference_lead
            out = tuple(torch.broadcast_shapes(lead, stored))
            if out != lead:
                maps = [m.expand(out + (self.M, self.N)) for m in maps]
            if out != stored and int(np.prod(stored)) > 1:
                reference = _broadcast_reference(reference, stored, out)
            lead = out
        flat = []
        for m in maps:
            m = m.reshape(-1, self.M, self.N)
            if self.cplx and not m.is_complex():
                # The complex model of a real map (pywph computes it on the real data).
                m = m.to(torch.complex128 if m.dtype == torch.float64 else torch.complex64)
            if self.precision == "double" and m.dtype in (torch.float32, torch.complex64):
                # pywph's double-precision filters make the computation double.
                m = m.to(torch.complex128 if m.is_complex() else torch.float64)
            flat.append(m)
        if norm == "auto":
            op = self._operator(pbc, "auto")
            if cross:
                if self._reference is not None or self._cross_normalised:
                    raise _unsupported(
                        "cross=True with norm='auto' while a normalisation is stored (demix "
                        "normalises cross moments by each map's own statistics, as pywph's "
                        "first call does); call clear_normalization() before each such call")
                c = op.forward_cross(flat[0], flat[1])
                self._cross_normalised = True
            else:
                if self._cross_normalised:
                    raise _unsupported(
                        "norm='auto' after a cross=True norm='auto' call (its stored "
                        "normalisation mixes two maps); call clear_normalization() first")
                if reference is None:
                    reference = self._reference = op.reference(flat[0].detach())
                    self._reference_lead = lead
                c = op.forward(flat[0], reference)
        else:
            op = self._operator(pbc)
            c = op.forward_cross(flat[0], flat[1]) if cross else op.forward(flat[0])
        values = c.values
        values = values.index_select(-1, self._keep_on(values.device))
        return values.reshape(tuple(lead) + (values.shape[-1],))

    def apply(self, data: Any, chunk_id: Optional[int] = None, requires_grad: bool = False,
              norm: Optional[str] = None, ret_indices: bool = False, pbc: bool = True,
              ret_wph_obj: bool = False, cross: bool = False,
              auto_free_mem: bool = True) -> Any:
        """The WPH coefficients of ``data`` ``(..., M, N)`` (a list of two such maps with
        ``cross=True``).

        Args:
            data: NumPy array, list or torch tensor (list of two with ``cross=True``).
            chunk_id: None for every coefficient; after ``preconfigure``, 0 (the only chunk).
            requires_grad: turn ``requires_grad`` on for the converted data.
            norm: None (covariances) or "auto" (normalised by the stored normalisation, stored
                by the first such call).
            ret_indices: also return the coefficients' positions (``arange(K)``).
            pbc: periodic maps (True) or not (False: borders cut, shifts reweighted).
            ret_wph_obj: return a :class:`WPH` object instead of a tensor.
            cross: cross moments of two maps (periodic maps).
            auto_free_mem: end the preconfiguration after the last chunk.

        Returns:
            A complex tensor ``(..., K)`` in pywph's order on the operator's device (with the
            indices if ``ret_indices``), or a :class:`WPH`.
        """
        if norm not in (None, "auto"):
            if norm == "auto_std_only":
                raise _unsupported("norm='auto_std_only'")
            raise ValueError(f"Unknown normalization mode: {norm!r} (None or 'auto')")
        if cross and not isinstance(data, list):
            raise ValueError("Please provide in data a list of two maps to estimate cross "
                             "moments")
        if chunk_id is None:
            data, _ = self.preconfigure(data, requires_grad=requires_grad, cross=cross, pbc=pbc)
        else:
            if not self.preconfigured:
                raise RuntimeError("First preconfigure data!")
            if not 0 <= chunk_id < self.nb_chunks:
                raise ValueError(f"Invalid chunk_id {chunk_id}: demix computes every "
                                 f"coefficient in one chunk (nb_chunks = {self.nb_chunks})")
            data = ([self._to_torch(d, False) for d in data] if cross
                    else self._to_torch(data, False))
        coeffs = self._coefficients(data, norm, pbc, cross)
        if (chunk_id is None or chunk_id == self.nb_chunks - 1) and auto_free_mem:
            self.preconfigured = False
        if ret_wph_obj:
            return WPH(coeffs, self.wph_moments_indices, self.scaling_moments_indices, J=self.J,
                       L=self.L, A=self.A)
        if ret_indices:
            return coeffs, torch.arange(coeffs.shape[-1])
        return coeffs

    def forward(self, data: Any, chunk_id: Optional[int] = None, requires_grad: bool = False,
                norm: Optional[str] = None, ret_indices: bool = False, pbc: bool = True,
                ret_wph_obj: bool = False, cross: bool = False,
                auto_free_mem: bool = True) -> Any:
        """Alias of :meth:`apply` (``wph_op(data, ...)``)."""
        return self.apply(data, chunk_id=chunk_id, requires_grad=requires_grad, norm=norm,
                          ret_indices=ret_indices, pbc=pbc, ret_wph_obj=ret_wph_obj, cross=cross,
                          auto_free_mem=auto_free_mem)

    def extra_repr(self) -> str:
        return (f"M={self.M}, N={self.N}, J={self.J}, L={self.L}, dn={self.dn}, A={self.A}, "
                f"cplx={self.cplx}, classes={list(self._classes)}, precision={self.precision!r}, "
                f"device={self.device!r}")


class WPH:
    """pywph's coefficient container: NumPy copies of the coefficients and their indices, both
    sorted lexicographically on the index rows.

    Attributes:
        wph_coeffs: ``(..., n_wph)`` WPH moments.
        wph_coeffs_indices: ``(n_wph, 9)`` rows ``[j1, t1, p1, j2, t2, p2, n, a, pseudo]``.
        sm_coeffs: ``(..., n_sm)`` scaling moments.
        sm_coeffs_indices: ``(n_sm, 4)`` rows ``[j, p1, p2, pseudo]``.
        J, L, A: the operator's (detected from the indices when not given).
    """

    def __init__(self, coeffs: Any, wph_coeffs_indices: Any,
                 sm_coeffs_indices: Any = np.array([]), J: Optional[int] = None,
                 L: Optional[int] = None, A: Optional[int] = None) -> None:
        coeffs = _numpy(coeffs).copy()
        wph_idx = _numpy(wph_coeffs_indices).copy()
        sm_idx = _numpy(sm_coeffs_indices).copy()
        n_wph = wph_idx.shape[0]
        if coeffs.shape[-1] != n_wph + sm_idx.shape[0]:
            raise ValueError(f"coeffs has {coeffs.shape[-1]} values for {n_wph} WPH and "
                             f"{sm_idx.shape[0]} scaling-moment indices")
        self.wph_coeffs = coeffs[..., :n_wph]
        self.sm_coeffs = coeffs[..., n_wph:]
        self.wph_coeffs_indices = wph_idx
        self.sm_coeffs_indices = sm_idx
        self.reorder()
        w = self.wph_coeffs_indices
        self.J = J if J is not None else int(max(w[:, 0].max(), w[:, 3].max()) + 1)
        self.L = L if L is not None else int(max(w[:, 1].max(), w[:, 4].max()) + 1)
        self.A = A if A is not None else int((w[:, 7].max() + 1) // 2)

    def reorder(self) -> None:
        """Sort the WPH and the scaling moments lexicographically on their index rows."""
        for coeffs, idx in (("wph_coeffs", "wph_coeffs_indices"),
                            ("sm_coeffs", "sm_coeffs_indices")):
            rows = getattr(self, idx)
            if rows.shape[0] == 0:
                continue
            order = np.lexsort(rows.T[::-1])  # first column is the primary key
            setattr(self, idx, rows[order])
            setattr(self, coeffs, getattr(self, coeffs)[..., order])

    def _mask(self, clas: str = "", j: Optional[int] = None, p: Optional[int] = None,
              j1: Optional[int] = None, t1: Optional[int] = None, p1: Optional[int] = None,
              j2: Optional[int] = None, t2: Optional[int] = None, p2: Optional[int] = None,
              n: Optional[int] = None, a: Optional[int] = None, sm: bool = False,
              pseudo: Optional[int] = None) -> np.ndarray:
        if sm or clas == "L":
            rows = self.sm_coeffs_indices
            keep = np.ones(rows.shape[0], bool)
            # j and j1 both name the scale, p and p1 the first harmonic.
            for col, value in ((0, j), (0, j1), (1, p), (1, p1), (2, p2), (3, pseudo)):
                if value is not None:
                    keep &= rows[:, col] == int(value)
            return keep
        rows = self.wph_coeffs_indices
        keep = np.ones(rows.shape[0], bool)
        for col, value in enumerate((j1, t1, p1, j2, t2, p2, n, a, pseudo)):
            if value is not None:
                keep &= rows[:, col] == int(value)
        if clas:
            if clas not in _CLASS_RULES:
                raise ValueError(f"Unknown class of coefficients: {clas!r}; classes: "
                                 f"{', '.join(list(_CLASS_RULES) + ['L'])}")
            same_scale, test1, test2 = _CLASS_RULES[clas]
            keep &= (rows[:, 0] == rows[:, 3]) == same_scale
            keep &= test1(rows[:, 2]) & test2(rows[:, 5])
        return keep

    def get_coeffs(self, clas: str = "", j: Optional[int] = None, p: Optional[int] = None,
                   j1: Optional[int] = None, t1: Optional[int] = None, p1: Optional[int] = None,
                   j2: Optional[int] = None, t2: Optional[int] = None, p2: Optional[int] = None,
                   n: Optional[int] = None, a: Optional[int] = None, sm: bool = False,
                   pseudo: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """The coefficients of class ``clas`` (S11, S00, S01, S10, C00, C01, C10, Cphase,
        Cphase_inv; L or ``sm=True`` for scaling moments) whose indices equal the given values:
        ``(coeffs (..., k), indices (k, 9 or 4))``."""
        keep = self._mask(clas, j, p, j1, t1, p1, j2, t2, p2, n, a, sm, pseudo)
        if sm or clas == "L":
            return self.sm_coeffs[..., keep], self.sm_coeffs_indices[keep, :]
        return self.wph_coeffs[..., keep], self.wph_coeffs_indices[keep, :]

    def to_isopar(self) -> "WPH":
        """Isotropic and parity-invariant coefficients, in place: each WPH moment is averaged
        over t1 at fixed angular distance dt between t1 and t2 (t2 - L for pseudo moments) on a
        circle of 2L angles, its index row becoming ``[j1, 0, p1, j2, dt, p2, n, a, pseudo]``.
        Returns self."""
        rows = self.wph_coeffs_indices
        if rows.shape[0] == 0:
            return self
        t2 = np.where(rows[:, 8] == 0, rows[:, 4], rows[:, 4] - self.L)
        d = np.abs(rows[:, 1] - t2)
        dt = np.minimum(d, 2 * self.L - d)
        keys = rows.copy()
        keys[:, 1] = 0
        keys[:, 4] = dt
        unique, group = np.unique(keys, axis=0, return_inverse=True)
        group = group.reshape(-1)
        sums = np.zeros(self.wph_coeffs.shape[:-1] + (unique.shape[0],),
                        dtype=self.wph_coeffs.dtype)
        np.add.at(np.moveaxis(sums, -1, 0), group, np.moveaxis(self.wph_coeffs, -1, 0))
        counts = np.bincount(group, minlength=unique.shape[0])
        self.wph_coeffs = sums / counts
        self.wph_coeffs_indices = unique
        self.reorder()
        return self

    # ---- arithmetic, on copies -------------------------------------------------------------
    def _check_consistent(self, other: "WPH") -> None:
        if not (np.array_equal(self.wph_coeffs_indices, other.wph_coeffs_indices)
                and np.array_equal(self.sm_coeffs_indices, other.sm_coeffs_indices)):
            raise ValueError("the two WPH objects hold different coefficients")

    def _combine(self, other: Any, op: Any) -> "WPH":
        out = copy.deepcopy(self)
        if isinstance(other, WPH):
            self._check_consistent(other)
            out.wph_coeffs = op(out.wph_coeffs, other.wph_coeffs)
            out.sm_coeffs = op(out.sm_coeffs, other.sm_coeffs)
        else:
            out.wph_coeffs = op(out.wph_coeffs, other)
            out.sm_coeffs = op(out.sm_coeffs, other)
        return out

    def __add__(self, other: Any) -> "WPH":
        return self._combine(other, np.add)

    def __sub__(self, other: Any) -> "WPH":
        return self._combine(other, np.subtract)

    def __truediv__(self, other: Any) -> "WPH":
        return self._combine(other, np.true_divide)

    def __pow__(self, power: Any) -> "WPH":
        return self._combine(power, np.power)

    def __abs__(self) -> "WPH":
        out = copy.deepcopy(self)
        out.wph_coeffs = np.abs(out.wph_coeffs)
        out.sm_coeffs = np.abs(out.sm_coeffs)
        return out

    def __repr__(self) -> str:
        return (f"WPH({self.wph_coeffs_indices.shape[0]} WPH moments, "
                f"{self.sm_coeffs_indices.shape[0]} scaling moments, "
                f"coeffs {self.wph_coeffs.shape[:-1]}, J={self.J}, L={self.L}, A={self.A})")
