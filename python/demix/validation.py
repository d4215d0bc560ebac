"""The validation report of ``demix validate``: target maps against samples (synthesised or
separated) on measures a synthesis does not constrain: the isotropic power spectrum, the PDF,
Minkowski functionals, binned bispectra and peak counts."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from . import _demix
from ._arrays import ArrayLike, as_tensor
from .errors import ShapeError

__all__ = ["Curve", "ValidationReport", "validate"]


@dataclass
class Curve:
    """One measure against its abscissa: the targets' mean and spread, the samples'.

    ``max_deviation``: the largest |sample mean - target mean| over the ``compared`` points,
    relative to |target mean| (power spectrum) or to the curve's largest |target mean| (the
    others, whose zeros make a pointwise ratio meaningless)."""

    name: str
    x_label: str
    x: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray
    sample_mean: np.ndarray
    sample_std: np.ndarray
    compared: np.ndarray
    max_deviation: float


@dataclass
class ValidationReport:
    """What :func:`validate` returns: sizes, the targets' mean and deviation (the units of the
    PDF and thresholds), per-map moments as ``{"target_mean", "target_std", "sample_mean",
    "sample_std"}``, the two-sample KS distance of the pixel values, and the curves by name
    (``power_spectrum``, ``pdf``, ``minkowski_v0/v1/v2``, ``bispectrum_equilateral``,
    ``bispectrum_folded``, ``peak_counts``)."""

    target_maps: int
    sample_maps: int
    mu: float
    sigma: float
    moments: dict[str, dict[str, float]]
    ks_distance: float
    curves: dict[str, Curve]

    def max_deviations(self) -> dict[str, float]:
        """Each curve's largest deviation, by name (what ``demix validate`` prints)."""
        return {name: c.max_deviation for name, c in self.curves.items()}


def _maps(x: ArrayLike, name: str) -> "torch.Tensor":  # noqa: F821
    t, _ = as_tensor(x, name)
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3:
        raise ShapeError(f"{name} must be (H, W) or (N, H, W), got {tuple(t.shape)}")
    return t.detach()


def validate(targets: ArrayLike, samples: ArrayLike, *,
             figure: Union[str, os.PathLike, None] = None,
             title: Optional[str] = None) -> ValidationReport:
    """Compares sample maps with target maps, as ``demix validate`` does.

    Args:
        targets: ``(H, W)`` or ``(T, H, W)``; samples: ``(H, W)`` or ``(S, H, W)`` of the same
            size (at least 16 x 16), real and finite. Pass log maps to compare in log.
        figure: write the report's figure (PNG, drawn with cairo) to this path.
        title: the figure's title.
    """
    raw = _demix.validate(_maps(targets, "targets"), _maps(samples, "samples"),
                          os.fspath(figure) if figure is not None else "",
                          title or "targets against samples")
    j = json.loads(raw)
    curves = {
        name: Curve(name=name, x_label=c["x_label"], x=np.asarray(c["x"], float),
                    target_mean=np.asarray(c["target_mean"], float),
                    target_std=np.asarray(c["target_std"], float),
                    sample_mean=np.asarray(c["sample_mean"], float),
                    sample_std=np.asarray(c["sample_std"], float),
                    compared=np.asarray(c["compared"], bool),
                    max_deviation=float(c["max_deviation"]))
        for name, c in j["curves"].items()}
    return ValidationReport(
        target_maps=j["target_maps"], sample_maps=j["sample_maps"], mu=j["mu_T"],
        sigma=j["sigma_T"],
        moments={k: j[k] for k in ("mean", "std", "skewness", "excess_kurtosis")},
        ks_distance=j["ks_distance"], curves=curves)
