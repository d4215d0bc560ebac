"""Statistical component separation: recover a signal s from an observation d = s + c when the
contamination c is known only by realizations (``demix separate``; Regaldo-Saint Blancard et al.
2021, Delouis et al. 2022), and the linear baselines (Wiener and spectrum-matched filters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from . import _demix
from ._arrays import ArrayLike, as_tensor, compute_dtype, like_input
from .errors import ShapeError
from .stats import DeviceLike, Statistic, weighted_terms

__all__ = ["SeparationResult", "separate", "wiener_filter"]


@dataclass
class SeparationResult:
    """What :func:`separate` returns.

    Attributes:
        signal: the estimate s~, shaped as the observation (``(H, W)`` or ``(C, H, W)``); NumPy
            when the observation was NumPy, else a tensor on the compute device.
        contamination: d - s~, likewise.
        loss_history: per era, the loss before its first iteration and after each.
        kept_parts: per era, the real and imaginary parts of coefficients the loss keeps.
        seconds: wall time.
    """

    signal: ArrayLike
    contamination: ArrayLike
    loss_history: list[np.ndarray]
    kept_parts: list[int]
    seconds: float


def _channels(x: torch.Tensor, name: str, dims: int) -> torch.Tensor:
    # (H, W) -> (1, H, W); realizations (M, H, W) -> (M, 1, H, W)
    if x.dim() == dims - 1:
        return x.unsqueeze(-3)
    if x.dim() != dims:
        raise ShapeError(f"{name} must have {dims - 1} or {dims} dimensions, got "
                         f"{tuple(x.shape)}")
    return x


def separate(
    observation: ArrayLike,
    contamination: ArrayLike,
    statistics: Union[Statistic, Sequence[Statistic], None] = None,
    *,
    weights: Optional[Sequence[float]] = None,
    estimator: str = "bias",
    eras: int = 5,
    iterations: int = 50,
    spectrum_eras: int = 0,
    start: str = "matched",
    terms: Optional[Mapping[str, float]] = None,
    template: Optional[ArrayLike] = None,
    half_missions: Optional[ArrayLike] = None,
    regions: Optional[ArrayLike] = None,
    masks: Optional[ArrayLike] = None,
    bias_clip: float = 0.0,
    cross: bool = True,
    fresh_realizations: int = 0,
    seed: int = 0,
    chunk: int = 25,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = None,
    progress: Optional[Callable[[dict[str, Any]], None]] = None,
) -> SeparationResult:
    """Separates d = s + c given realizations of c, as ``demix separate`` does.

    Args:
        observation: d, ``(H, W)`` or ``(C, H, W)`` (C channels: I, Q, U or frequencies), real,
            or complex ``(H, W)`` (Q + iU). NumPy or torch.
        contamination: M >= 2 realizations of c, ``(M, H, W)`` or ``(M, C, H, W)``.
        statistics: operators built for ``(H, W)``, or None for WPH with the registry's J and
            L, ``dn=2``, ``norm="auto"``; weights: one per statistic (default 1).
        estimator: ``"bias"`` (phi(u) matches phi(d) - B, Delouis et al. 2022) or
            ``"realizations"`` (phi(u + c_i) matches phi(d) on average, Regaldo-Saint Blancard
            et al. 2021).
        eras, iterations: outer iterations (spreads and bias recomputed at s~) and L-BFGS
            iterations per era; spectrum_eras: the first eras match the power spectrum only.
        start: ``"matched"`` (the spectrum-matched linear filter), ``"wiener"`` or
            ``"observation"`` (u = d, the papers' codes).
        terms: weights of further terms by name: ``contamination``, ``independence``,
            ``template`` (needs ``template``), ``half_missions`` (needs ``half_missions``,
            ``(2, H, W)`` or ``(2, C, H, W)``), ``residual_variance`` (needs ``regions``, an
            ``(H, W)`` integer label map, negative for no region).
        masks: weights in [0, 1], ``(H, W)`` or ``(R, H, W)`` (statistics per region): every
            statistic is computed on the maps times each mask; 0 excludes a pixel (it is then
            not fitted), apodised edges soften the cut.
        bias_clip: bias estimator: targets of positive statistics kept above this fraction of
            the observed value. cross: with channels, the cross statistics of each pair.
        fresh_realizations: realizations estimator: K of the M drawn afresh at each evaluation
            (0: all, fixed); seed: of those draws.
        chunk: realizations per statistic call (memory).
        device, dtype: where and in which precision; default the observation's.
        progress: called after each iteration with ``{"era", "eras", "iteration",
            "iterations", "loss"}``. Ctrl-C stops the run (KeyboardInterrupt).
    """
    d, numpy_in = as_tensor(observation, "observation")
    c, _ = as_tensor(contamination, "contamination")
    d3, c4 = _channels(d, "observation", 3), _channels(c, "contamination", 4)
    weighted = weighted_terms(statistics, weights)
    device = torch.device(device) if device is not None else d.device
    precision = compute_dtype(d, dtype)
    real = torch.float64 if precision == "float64" else torch.float32
    cplx = torch.complex128 if precision == "float64" else torch.complex64

    def as_maps(x: torch.Tensor) -> torch.Tensor:
        return x.to(device, cplx if x.is_complex() else real)

    def optional(x: Optional[ArrayLike], name: str, dims: int) -> Optional[torch.Tensor]:
        if x is None:
            return None
        t, _ = as_tensor(x, name)
        return as_maps(_channels(t, name, dims))

    regions_t = None
    if regions is not None:
        regions_t, _ = as_tensor(regions, "regions")
        regions_t = regions_t.to(torch.int64)
    raw = _demix.separate(
        as_maps(d3.detach()), as_maps(c4.detach()),
        weighted,
        estimator=estimator, eras=eras, iterations=iterations, spectrum_eras=spectrum_eras,
        start=start, terms=dict(terms or {}), template=optional(template, "template", 3),
        half_missions=optional(half_missions, "half_missions", 4), regions=regions_t,
        masks=None if masks is None else as_tensor(masks, "masks")[0].to(torch.float64),
        bias_clip=bias_clip, cross=cross, fresh_realizations=fresh_realizations, seed=seed,
        chunk=chunk, device=device, dtype=precision, progress=progress)
    signal, contam = raw["signal"], raw["contamination"]
    if d.dim() == 2:
        signal, contam = signal[0], contam[0]
    return SeparationResult(
        signal=like_input(signal, numpy_in),
        contamination=like_input(contam, numpy_in),
        loss_history=[np.asarray(h) for h in raw["loss_history"]],
        kept_parts=list(raw["kept_parts"]),
        seconds=raw["seconds"],
    )


def wiener_filter(observation: ArrayLike, contamination: ArrayLike, *,
                  gain: str = "wiener") -> ArrayLike:
    """The linear baseline: d filtered per |k| annulus with the signal's spectrum estimated from
    d and the realizations' (P_s = P_d - P_c where detected, a power law beyond).

    Args:
        observation: ``(H, W)`` or ``(C, H, W)``; contamination: ``(M, H, W)`` or
            ``(M, C, H, W)``.
        gain: ``"wiener"`` (P_s / (P_s + P_c), least squares) or ``"matched"``
            (sqrt(P_s / (P_s + P_c)), which keeps the signal's spectrum).

    Returns the filtered map shaped as the observation (NumPy for NumPy input).
    """
    d, numpy_in = as_tensor(observation, "observation")
    c, _ = as_tensor(contamination, "contamination")
    d3, c4 = _channels(d, "observation", 3), _channels(c, "contamination", 4)
    out = _demix.wiener_filter(d3.detach(), c4.detach().to(d3.device, d3.dtype), gain)
    return like_input(out[0] if d.dim() == 2 else out, numpy_in)
