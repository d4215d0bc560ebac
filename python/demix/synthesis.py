"""Microcanonical synthesis: new maps whose statistics match those of one or a few targets
(``demix synth``; Bruna & Mallat 2019, Allys et al. 2020), by L-BFGS from noise, each sample its
own problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

from . import _demix
from ._arrays import ArrayLike, as_tensor, compute_dtype, like_input
from .errors import ShapeError
from .stats import DeviceLike, Statistic, weighted_terms

__all__ = ["SynthesisResult", "synthesize"]


@dataclass
class SynthesisResult:
    """What :func:`synthesize` returns.

    Attributes:
        samples: ``(S, H, W)``, or ``(S, C, H, W)`` with channels, in the targets' units; NumPy
            when the targets were NumPy, else a tensor on the compute device.
        loss_history: ``(n + 1, S)``: each sample's loss before iteration 1 and after each of
            the n iterations done.
        term_losses: each loss term's final value per sample, ``(S,)``, by name
            (``"wph[0]"``, ``"ps[0x1]"``...).
        converged: ``(S,)`` bool: stopped before the iteration limit (line search done).
        iterations: iterations done; ``evaluations``: loss and gradient evaluations;
        seconds: wall time.
    """

    samples: ArrayLike
    loss_history: np.ndarray
    term_losses: dict[str, np.ndarray]
    converged: np.ndarray
    iterations: int
    evaluations: int
    seconds: float


def synthesize(
    targets: ArrayLike,
    statistics: Union[Statistic, Sequence[Statistic], None] = None,
    *,
    weights: Optional[Sequence[float]] = None,
    samples: int = 1,
    iterations: int = 100,
    seed: int = 0,
    log: bool = False,
    standardize: bool = True,
    init: str = "noise",
    scale: str = "auto",
    channels: bool = False,
    cross: bool = True,
    history: int = 20,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = None,
    progress: Optional[Callable[[dict[str, Any]], None]] = None,
) -> SynthesisResult:
    """Draws maps whose statistics match the targets', as ``demix synth`` does.

    Args:
        targets: ``(H, W)`` one map; ``(T, H, W)`` T maps (or, with ``channels``, one map of T
            channels); ``(T, C, H, W)`` T maps of C channels. NumPy or torch.
        statistics: operators built for ``(H, W)`` (their options are used: pass
            ``norm="auto"`` for pywph's synthesis), or None for WPH with the registry's J and L,
            ``dn=2``, ``norm="auto"``.
        weights: one per statistic (default 1).
        samples: maps drawn; iterations: L-BFGS iterations at most; seed: of the initial noise
            (same seed, options and device: same samples).
        log: synthesise log(x) (targets > 0); standardize: per channel, by the targets' mean
            and deviation (undone on output).
        init: ``"noise"`` or ``"gaussian"`` (a Gaussian field of the targets' spectrum).
        scale: residual scale of each coefficient: ``"auto"``, ``"none"``, ``"modulus"``,
            ``"class-rms"``, ``"statistic-rms"``, ``"spread"`` (README, "Synthesis").
        cross: with channels, also the cross statistics of each pair.
        history: L-BFGS curvature pairs per sample.
        device, dtype: where and in which precision; default the targets' device and precision.
        progress: called after each iteration with ``{"iteration", "iterations", "loss",
            "running", "iterations_per_s", "eta_s"}``. Ctrl-C stops the run
            (KeyboardInterrupt).
    """
    t, numpy_in = as_tensor(targets, "targets")
    if t.dim() == 2:
        t4 = t[None, None]
    elif t.dim() == 3:
        t4 = t[None] if channels else t[:, None]
    elif t.dim() == 4:
        t4 = t
    else:
        raise ShapeError(f"targets must be (H, W), (T, H, W) or (T, C, H, W), got "
                         f"{tuple(t.shape)}")
    weighted = weighted_terms(statistics, weights)
    device = torch.device(device) if device is not None else t.device
    raw = _demix.synthesize(
        t4.detach(), weighted,
        samples=samples, iterations=iterations, seed=seed, log=log, standardize=standardize,
        init=init, scale=scale, cross=cross, history=history, device=device,
        dtype=compute_dtype(t, dtype), progress=progress)
    out = raw["samples"]
    if out.size(1) == 1 and t.dim() < 4 and not channels:
        out = out[:, 0]
    term_losses = raw["term_losses"].numpy()
    return SynthesisResult(
        samples=like_input(out, numpy_in),
        loss_history=raw["loss_history"].numpy(),
        term_losses={name: term_losses[i] for i, name in enumerate(raw["term_names"])},
        converged=raw["converged"].numpy(),
        iterations=raw["iterations"],
        evaluations=raw["evaluations"],
        seconds=raw["seconds"],
    )
