"""Statistics operators: wavelet phase harmonics, the wavelet scattering transform, the
scattering covariance and the power spectrum, over demix's C++ registry (stats/registry.hpp).

An operator is built for one map shape and its options; it computes on the device and in the
precision of the maps it is given (or those fixed at construction), building its filters once
for each. Maps are ``(H, W)`` or batches ``(B, H, W)``: NumPy arrays (results are NumPy arrays)
or torch tensors (results are tensors on the same device, differentiable with respect to the
maps, so ``loss.backward()`` works).
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Union

import torch

from . import _demix
from ._arrays import ArrayLike, as_tensor, compute_dtype, like_input
from ._demix import Reference
from .coefficients import Coefficients
from .errors import InvalidValueError, ShapeError

__all__ = ["Statistic", "WPH", "WST", "ScatteringCov", "PowerSpectrum", "statistic", "Reference"]

DeviceLike = Union[str, torch.device, None]


class Statistic:
    """Base of the operators; build one of the subclasses or use :func:`statistic`."""

    #: The registry's name: "wph", "wst", "scov" or "ps".
    kind: ClassVar[str] = ""

    def __init__(self, shape: tuple[int, int], *, boundary: str = "periodic",
                 device: DeviceLike = None, dtype: Optional[torch.dtype] = None,
                 **options: Any) -> None:
        if type(self) is Statistic:
            raise TypeError("Statistic is abstract: use WPH, WST, ScatteringCov, "
                            "PowerSpectrum or demix.statistic(name, shape, ...)")
        try:
            height, width = (int(s) for s in shape)
        except (TypeError, ValueError):
            raise ShapeError(f"shape must be (H, W), got {shape!r}") from None
        self.shape = (height, width)
        self.boundary = boundary
        self.device = torch.device(device) if device is not None else None
        self.dtype = dtype
        self._options = {k: v for k, v in options.items() if v is not None}
        self._operators: dict[tuple[str, str, bool], Any] = {}
        # Built now so that bad options fail here, with the library's message.
        self._default = self._operator(self.device or torch.device("cpu"),
                                       compute_dtype(torch.empty(0), dtype), False)

    # ---- operators per device and precision ------------------------------------------------
    def _operator(self, device: torch.device, dtype: str, complex_maps: bool):
        # Only WPH changes with complex maps (2L angles and pseudo moments); the others take
        # complex maps as they are (power spectrum) or refuse them.
        complex_data = complex_maps and self.kind == "wph"
        key = (str(device), dtype, complex_data)
        op = self._operators.get(key)
        if op is None:
            op = _demix.Statistic(self.kind, self.shape[0], self.shape[1],
                                  boundary=self.boundary, device=device, dtype=dtype,
                                  complex_data=complex_data, **self._options)
            self._operators[key] = op
        return op

    def _operator_for(self, t: torch.Tensor):
        return self._operator(self.device or t.device, compute_dtype(t, self.dtype),
                              t.is_complex())

    def _maps(self, x: object, name: str) -> tuple[torch.Tensor, bool]:
        t, numpy_in = as_tensor(x, name)
        if t.dim() not in (2, 3) or tuple(t.shape[-2:]) != self.shape:
            raise ShapeError(f"{name} must be (H, W) or (B, H, W) with (H, W) = {self.shape} "
                             f"(the operator's shape), got {tuple(t.shape)}")
        return t, numpy_in

    def _result(self, raw: tuple, single: bool, numpy_in: bool) -> Coefficients:
        values, classes, class_id, label_names, labels = raw
        if single:  # an (H, W) map: (K,) values, as pywph returns them
            values = values[0]
        return Coefficients(like_input(values, numpy_in), classes, class_id, label_names, labels)

    # ---- the statistics --------------------------------------------------------------------
    def forward(self, x: ArrayLike, reference: Optional[Reference] = None) -> Coefficients:
        """The coefficients of each map.

        Args:
            x: ``(H, W)`` or ``(B, H, W)`` maps, real (complex for WPH and the power spectrum).
            reference: from :meth:`reference` (1 or B maps), for statistics that normalise by a
                reference (WPH with ``norm="auto"``, the scattering covariance); None normalises
                each map by its own statistics (held constant for gradients).

        Returns:
            Coefficients with values ``(K,)`` for an ``(H, W)`` map, ``(B, K)`` for a batch.
        """
        t, numpy_in = self._maps(x, "x")
        raw = self._operator_for(t).forward(t, reference)
        return self._result(raw, t.dim() == 2, numpy_in)

    __call__ = forward

    def forward_cross(self, x: ArrayLike, y: ArrayLike,
                      reference: Optional[Reference] = None) -> Coefficients:
        """Cross statistics of ``x`` and ``y`` (same shape, ``(H, W)`` or ``(B, H, W)``):
        WPH's first fields from x and second fields from y (pywph's ``cross=True``), the cross
        power spectrum. ``forward_cross(x, x) == forward(x)``. InvalidValueError for statistics
        without a cross form (``supports_cross``)."""
        tx, numpy_in = self._maps(x, "x")
        ty, _ = self._maps(y, "y")
        if tx.shape != ty.shape:
            raise ShapeError(f"x and y must have the same shape, got {tuple(tx.shape)} and "
                             f"{tuple(ty.shape)}")
        op = self._operator_for(tx if tx.is_complex() or not ty.is_complex() else ty)
        return self._result(op.forward_cross(tx, ty, reference), tx.dim() == 2, numpy_in)

    def reference(self, maps: ArrayLike) -> Reference:
        """The normalisation statistics of reference maps ``(B0, H, W)`` or ``(H, W)``
        (detached): pass them to :meth:`forward` or :meth:`loss_and_grad`. Empty for
        statistics that normalise by nothing."""
        t, _ = self._maps(maps, "maps")
        return self._operator_for(t).reference(t)

    def loss_and_grad(self, x: ArrayLike, target: Union[Coefficients, ArrayLike],
                      weights: Optional[ArrayLike] = None, reference: Optional[Reference] = None,
                      want_grad: bool = True) -> tuple[ArrayLike, Optional[ArrayLike]]:
        """The loss ``sum_k w_k |phi_k(x) - target_k|^2`` of each map and its gradient, computed
        by the library's memory-bounded path (WPH: chunk by chunk), detached from any graph.

        Args:
            x: ``(H, W)`` or ``(B, H, W)`` maps.
            target: ``(K,)`` for every map or ``(B, K)`` one row per map (or Coefficients).
            weights: ``(K,)`` or ``(B, K)``, >= 0; None for 1.
            reference: as in :meth:`forward`.
            want_grad: False to compute the loss alone.

        Returns:
            ``(loss, grad)``: loss ``()`` for an ``(H, W)`` map, ``(B,)`` for a batch; grad like
            x (None unless ``want_grad``).
        """
        t, numpy_in = self._maps(x, "x")
        op = self._operator_for(t)
        if isinstance(target, Coefficients):
            target = target.values
        if target is None:
            raise InvalidValueError("target has no values (labels only)")
        device = self.device or t.device
        tt = as_tensor(target, "target")[0].to(device)
        tw = as_tensor(weights, "weights")[0].to(device) if weights is not None else None
        # The library's loss reads target rows by coefficient index and would not notice a
        # longer target; say what was expected here.
        for name, a in (("target", tt), ("weights", tw)):
            if a is not None and (a.dim() not in (1, 2) or a.shape[-1] != op.size):
                raise ShapeError(f"{name} must be (K,) or (B, K) with K = {op.size} (the "
                                 f"operator's coefficients), got {tuple(a.shape)}")
        loss, grad = op.loss_and_grad(t, tt, tw, None, reference, want_grad)
        if t.dim() == 2:
            loss = loss[0]
        return (like_input(loss, numpy_in),
                like_input(grad, numpy_in) if grad is not None else None)

    # ---- description -----------------------------------------------------------------------
    def labels(self) -> Coefficients:
        """The coefficients' classes and labels, in the order of :meth:`forward`, without
        computing anything (values None)."""
        return Coefficients(*self._default.labels())

    def __len__(self) -> int:
        """K, the number of coefficients (of real maps)."""
        return self._default.size

    @property
    def keywords(self) -> dict[str, Any]:
        """The options as the library records them in output files (FITS keywords' JSON
        names): e.g. ``{"J": 7, "L": 4, "dn": 2, "norm": "none", ...}``."""
        return {json: value for _fits, json, value, _comment in self._default.keywords()}

    @property
    def supports_cross(self) -> bool:
        """Whether :meth:`forward_cross` is implemented."""
        return self._default.supports_cross

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.keywords.items())
        device = f", device={str(self.device)!r}" if self.device is not None else ""
        dtype = f", dtype={self.dtype}" if self.dtype is not None else ""
        return f"{type(self).__name__}(shape={self.shape}, {options}{device}{dtype})"


class WPH(Statistic):
    """Wavelet phase harmonics as pywph 1.1 computes them (default model: classes S11, S00,
    S01, C01, Cphase, L; bump-steerable wavelets). Complex values ``(B, K)``.

    Args:
        shape: ``(H, W)`` of the maps.
        J: dyadic scales, ``2**J < min(H, W)``; default ``min(7, log2(min(H, W)) - 2)``.
        L: angles in [0, pi); default 4.
        dn: radial steps of the shift grid (0: no shifts); default 2 (pywph's examples).
        norm: ``"none"`` (default: covariances) or ``"auto"`` (divided by the reference's, or
            each map's own, deviations; pywph's ``norm="auto"``).
        A: azimuthal steps of the shift grid; default 4.
        boundary: ``"periodic"`` (pywph ``pbc=True``) or ``"nonperiodic"`` (``pbc=False``).
        cut_param: non-periodic maps: border cut in units of ``2**J`` pixels; default 0.5.
        memory_bytes: memory the intermediate results may take; default 40% of what is free.
        device: compute device; default: the maps' own.
        dtype: ``torch.float32`` or ``torch.float64``; default: the maps' precision.
    """

    kind = "wph"

    def __init__(self, shape: tuple[int, int], J: Optional[int] = None, L: Optional[int] = None,
                 dn: Optional[int] = None, *, norm: Optional[str] = None,
                 A: Optional[int] = None, boundary: str = "periodic",
                 cut_param: Optional[float] = None, memory_bytes: Optional[int] = None,
                 device: DeviceLike = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(shape, boundary=boundary, device=device, dtype=dtype, J=J, L=L, dn=dn,
                         norm=norm, A=A, cut_param=cut_param, memory_bytes=memory_bytes)


class WST(Statistic):
    """Wavelet scattering transform as kymatio computes it, spatially averaged: classes S0,
    S1, S2, real values ``(B, K)``.

    Args:
        shape: ``(H, W)`` of the maps.
        J: dyadic scales, ``2**J <= min(H, W)``; default ``min(5, log2(min(H, W)) - 2)``.
        L: orientations in [0, pi); default 8.
        max_order: 1 or 2 (default).
        boundary: ``"periodic"`` (default, sizes divisible by ``2**J``) or ``"nonperiodic"``
            (kymatio's reflection padding).
        device, dtype: as for :class:`WPH`.
    """

    kind = "wst"

    def __init__(self, shape: tuple[int, int], J: Optional[int] = None, L: Optional[int] = None,
                 *, max_order: Optional[int] = None, boundary: str = "periodic",
                 device: DeviceLike = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(shape, boundary=boundary, device=device, dtype=dtype, J=J, L=L,
                         max_order=max_order)

    def maps(self, x: ArrayLike) -> ArrayLike:
        """The scattering maps before their spatial mean, kymatio's output array.

        Args:
            x: ``(H, W)`` or ``(B, H, W)`` real maps.

        Returns:
            ``(C, H / 2**J, W / 2**J)`` for an ``(H, W)`` map, ``(B, C, H / 2**J, W / 2**J)``
            for a batch (integer division), channels in the order of :meth:`labels`;
            differentiable with respect to ``x`` (torch in, torch out; NumPy in, NumPy out).
        """
        t, numpy_in = self._maps(x, "x")
        out = self._operator_for(t).forward_maps(t)
        return like_input(out, numpy_in)


class ScatteringCov(Statistic):
    """Scattering covariance of Cheng et al. (classes mean, var, P00, S1, C01, C11 and their
    isotropic reductions ``*_iso``); periodic maps.

    Args:
        shape: ``(H, W)`` of the maps.
        J: dyadic scales, ``2**J <= min(H, W)``; default ``min(7, log2(min(H, W)) - 2)``.
        L: orientations in [0, pi); default 4.
        norm: ``"auto"`` (default: Cheng's P00, of the reference when one is passed),
            ``"none"`` or ``"p11"``.
        isotropic: True for mean, var and the isotropic classes only.
        device, dtype: as for :class:`WPH`.
    """

    kind = "scov"

    def __init__(self, shape: tuple[int, int], J: Optional[int] = None, L: Optional[int] = None,
                 *, norm: Optional[str] = None, isotropic: Optional[bool] = None,
                 device: DeviceLike = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(shape, device=device, dtype=dtype, J=J, L=L, norm=norm,
                         isotropic=isotropic)


class PowerSpectrum(Statistic):
    """Isotropic power spectrum ``|FFT|^2 / (H W)`` (class P, label ``bin``); periodic maps.

    Args:
        shape: ``(H, W)`` of the maps.
        bins: 0 (default): one bin per integer ``|k|`` up to Nyquist; else that many bins.
        binning: ``"linear"`` (default) or ``"log"`` (needs ``bins``).
        subtract_mean: subtract each map's mean first (default True).
        include_corners: extend the bins to the largest ``|k|`` of the grid (default False).
        device, dtype: as for :class:`WPH`.
    """

    kind = "ps"

    def __init__(self, shape: tuple[int, int], *, bins: Optional[int] = None,
                 binning: Optional[str] = None, subtract_mean: Optional[bool] = None,
                 include_corners: Optional[bool] = None, device: DeviceLike = None,
                 dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(shape, device=device, dtype=dtype, bins=bins, binning=binning,
                         subtract_mean=subtract_mean, include_corners=include_corners)


_CLASSES: dict[str, type[Statistic]] = {c.kind: c for c in (WPH, WST, ScatteringCov,
                                                            PowerSpectrum)}


def statistic(name: str, shape: tuple[int, int], **options: Any) -> Statistic:
    """The operator the registry calls ``name`` ("wph", "wst", "scov", "ps", as
    ``demix stats --kind``), with the options of its class (:class:`WPH`...)."""
    cls = _CLASSES.get(name)
    if cls is None:
        raise InvalidValueError(f"no statistic named '{name}'; statistics: "
                                f"{', '.join(_demix.statistic_names())}")
    return cls(shape, **options)


def weighted_terms(statistics: Union["Statistic", "list[Statistic]", None],
                   weights: Optional["list[float]"]) -> list:
    """The (operator, weight) pairs synthesis and separation pass to the library: one operator or
    a sequence of them (None: the library's default statistic), weights one per operator
    (default 1). TypeError for what is not a demix operator, InvalidValueError for a weight
    count that does not match."""
    if isinstance(statistics, Statistic):
        statistics = [statistics]
    statistics = list(statistics or [])
    for s in statistics:
        if not isinstance(s, Statistic):
            raise TypeError(f"statistics must be demix operators (demix.WPH...), got "
                            f"{type(s).__name__}")
    if weights is None:
        weights = [1.0] * len(statistics)
    if len(weights) != len(statistics):
        raise InvalidValueError(f"weights gives {len(weights)} weight(s) for "
                                f"{len(statistics)} statistic(s)")
    return [(s._default, float(w)) for s, w in zip(statistics, weights)]
