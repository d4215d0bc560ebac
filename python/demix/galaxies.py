"""Galaxies: simulated LSST-like datasets (``demix simulate blends|isolated``) and the deblending
pipeline (``demix deblend``: MADNESS or the classical deblender), with catalogues that carry
their units."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from . import _demix
from ._arrays import ArrayLike, as_tensor, compute_dtype
from .io import Header, PathLike
from .stats import DeviceLike

__all__ = ["Catalogue", "Dataset", "DeblendResult", "deblend", "read_dataset",
           "simulate_blends", "simulate_isolated"]


class Catalogue:
    """A table of columns with units and descriptions, as demix writes them (the truth of a
    simulated dataset, the deblending catalogue). ``cat["flux_r"]`` is a NumPy column;
    ``units``/``descriptions`` map names to text; ``to_numpy()`` gives a structured array,
    ``to_table()`` an astropy Table with units (needs astropy)."""

    def __init__(self, columns: Sequence[tuple[str, Any, str, str]]) -> None:
        self.columns: dict[str, np.ndarray] = {}
        self.units: dict[str, str] = {}
        self.descriptions: dict[str, str] = {}
        for name, values, unit, description in columns:
            self.columns[name] = (np.asarray(values, dtype=str) if isinstance(values, list)
                                  else values.numpy())
            self.units[name], self.descriptions[name] = unit, description

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def to_numpy(self) -> np.ndarray:
        """The rows as a NumPy structured array (one field per column)."""
        fields = [(n, v.dtype, v.shape[1:]) for n, v in self.columns.items()]
        out = np.empty(len(self), dtype=fields)
        for n, v in self.columns.items():
            out[n] = v
        return out

    def to_table(self) -> "astropy.table.Table":  # noqa: F821
        """An astropy Table with each column's unit and description."""
        from astropy.table import Table
        import astropy.units as u

        t = Table()
        for n, v in self.columns.items():
            unit = self.units[n]
            t[n] = v * u.Unit(unit, parse_strict="silent") if unit else v
            t[n].description = self.descriptions[n]
        return t

    def __repr__(self) -> str:
        return f"Catalogue({len(self)} rows: {', '.join(self.names)})"


@dataclass
class Dataset:
    """A simulated dataset read back (:func:`read_dataset`).

    Attributes:
        kind: ``"blends"`` or ``"isolated"``.
        images: ``(N, B, H, W)`` float32, noisy (noiseless when written without noise).
        noiseless: ``(N, B, H, W)`` or None; stamps: blends only, ``(G, B, S, S)`` each galaxy
            alone, noiseless.
        psf: ``(B, S, S)``; sigma: ``(B,)`` the noise per band, e-/pixel; bands: their names.
        truth: one row per galaxy (positions, fluxes and magnitudes, shapes, blend index...).
        header: the images' FITS keywords (SIGMAn, BANDn, the survey).
    """

    kind: str
    images: np.ndarray
    noiseless: Optional[np.ndarray]
    stamps: Optional[np.ndarray]
    psf: Optional[np.ndarray]
    sigma: Optional[np.ndarray]
    bands: list[str]
    truth: Catalogue
    header: Header


def _numpy(t: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    return None if t is None else t.numpy()


def read_dataset(path: PathLike) -> Dataset:
    """Reads a dataset written by :func:`simulate_blends`, :func:`simulate_isolated` or
    ``demix simulate``. IoError, FormatError (naming what is missing), ShapeError."""
    raw = _demix.read_dataset(os.fspath(path))
    return Dataset(kind=raw["kind"], images=raw["images"].numpy(),
                   noiseless=_numpy(raw["noiseless"]), stamps=_numpy(raw["stamps"]),
                   psf=_numpy(raw["psf"]), sigma=_numpy(raw["sigma"]), bands=list(raw["bands"]),
                   truth=Catalogue(raw["truth"]), header=Header.from_cards(raw["cards"]))


def _device(device: DeviceLike) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


def simulate_blends(path: PathLike, count: int = 100, *, seed: int = 0, min_galaxies: int = 1,
                    max_galaxies: int = 6, field_size: int = 120, density: float = 0.0,
                    stamp_size: int = 45, noise: bool = True, source_noise: bool = False,
                    psf: str = "moffat", mag_limit: float = 25.3, mag_bright: float = 20.0,
                    truth: Optional[PathLike] = None, device: DeviceLike = None,
                    progress: Optional[Callable[[dict[str, Any]], None]] = None) -> Dataset:
    """Blends of LSST-like galaxies with their truth, written to ``path`` as ``demix simulate
    blends`` writes them (the same file for the same options and seed), then read back.

    Args:
        count: blends; min_galaxies, max_galaxies: galaxies per blend (uniform).
        field_size: side of the blend images, pixels; density: galaxies per arcmin^2 over the
            square their centres are drawn in (0: the largest square keeping every stamp inside).
        stamp_size: side of the galaxy stamps (odd); noise, source_noise: the sky's noise, the
            galaxies' own Poisson noise; psf: ``"moffat"``, ``"kolmogorov"`` or ``"none"``.
        mag_limit, mag_bright: the i-band magnitude range drawn.
        truth: also write the truth catalogue here (``.csv``, ``.ecsv`` or ``.fits``).
        device: where the galaxies are rendered (default the CPU); progress: called with
            ``{"done", "total"}`` after each chunk.
    """
    _demix.simulate_blends(
        os.fspath(path), count=count, seed=seed, min_galaxies=min_galaxies,
        max_galaxies=max_galaxies, field_size=field_size, density=density, stamp_size=stamp_size,
        noise=noise, source_noise=source_noise, psf=psf, mag_limit=mag_limit,
        mag_bright=mag_bright, truth=os.fspath(truth) if truth is not None else "",
        device=_device(device), progress=progress)
    return read_dataset(path)


def simulate_isolated(path: PathLike, count: int = 1000, *, seed: int = 0, stamp_size: int = 45,
                      max_offset: float = 0.0, noise: bool = True, source_noise: bool = False,
                      psf: str = "moffat", mag_limit: float = 25.3, mag_bright: float = 20.0,
                      truth: Optional[PathLike] = None, device: DeviceLike = None,
                      progress: Optional[Callable[[dict[str, Any]], None]] = None) -> Dataset:
    """Isolated galaxy stamps (a training set) as ``demix simulate isolated`` writes them; the
    options as :func:`simulate_blends`', and ``max_offset``: centres uniform within that many
    pixels of the centre pixel, in [0, 0.5)."""
    _demix.simulate_isolated(
        os.fspath(path), count=count, seed=seed, stamp_size=stamp_size, max_offset=max_offset,
        noise=noise, source_noise=source_noise, psf=psf, mag_limit=mag_limit,
        mag_bright=mag_bright, truth=os.fspath(truth) if truth is not None else "",
        device=_device(device), progress=progress)
    return read_dataset(path)


@dataclass
class DeblendResult:
    """What :func:`deblend` returns (NumPy, on the CPU).

    Attributes:
        catalogue: one row per galaxy: id, x, y (pixels, 0-based), ra, dec (with a celestial
            WCS), flux_<band> (the image's unit), mag_<band> (with ZPn/EXPTIMEn), e1, e2, converged,
            flags (1 not converged, 2 stamp beyond the image, 4 flux <= 0).
        stamps: ``(G, B, S, S)`` each galaxy's model on a stamp centred on its nearest pixel;
        stamp_origins: ``(G, 2)`` the blend column and row of each stamp's pixel (0, 0).
        children: ``(G, B, H, W)`` full-frame models (classical, or ``full_frame=True``), or None.
        residual: ``(B, H, W)`` the blend minus all models.
        positions: ``(G, 2)`` x, y used; noise_sigmas: ``(B,)`` or None; bands: names.
        converged: ``(G,)``; steps: MADNESS's Adam steps; loss: its final loss (NaN classical).
    """

    catalogue: Catalogue
    stamps: np.ndarray
    stamp_origins: np.ndarray
    children: Optional[np.ndarray]
    residual: np.ndarray
    positions: np.ndarray
    noise_sigmas: Optional[np.ndarray]
    bands: list[str]
    converged: np.ndarray
    steps: int
    loss: float


def deblend(image: ArrayLike, header: Optional[dict] = None, *,
            positions: Optional[ArrayLike] = None, method: str = "madness",
            model: Optional[PathLike] = None, noise_sigmas: Optional[Sequence[float]] = None,
            noise_from_image: bool = False, max_steps: int = 200, stamp_size: int = 45,
            full_frame: bool = False, threshold: float = 5.0, device: DeviceLike = None,
            dtype: Optional[torch.dtype] = None) -> DeblendResult:
    """Separates the galaxies of one multi-band blend, as ``demix deblend`` does.

    Args:
        image: ``(B, H, W)`` or ``(H, W)``; header: its FITS keywords (SIGMAn and BANDn are read;
            the WCS gives ra, dec; ZPn and EXPTIMEn give magnitudes).
        positions: ``(G, 2)`` x (column), y (row), 0-based pixels; None: peaks are detected
            (above ``threshold`` sigma).
        method: ``"madness"`` (a trained generative prior: ``model``, default the shipped LSST
            model) or ``"classical"`` (symmetric templates, no model).
        noise_sigmas: one per band, e-/pixel; else the SIGMAn keywords, the LSST table for
            6 bands, or (``noise_from_image``) an estimate from the pixels.
        max_steps: MADNESS's Adam steps at most; stamp_size: classical stamps' side (odd);
        full_frame: also return MADNESS's models in the full frame.
        device, dtype: where and in which precision (default the CPU, float32).
    """
    t, _ = as_tensor(image, "image")
    h = header if isinstance(header, Header) else Header(header or {})
    pos = None
    if positions is not None:
        pos, _ = as_tensor(positions, "positions")
        pos = pos.to(torch.float64)
    raw = _demix.deblend(
        t.detach(), h._entries(), pos, method=method,
        model=os.fspath(model) if model is not None else "",
        noise_sigmas=[float(s) for s in (noise_sigmas or [])], noise_from_image=noise_from_image,
        max_steps=max_steps, stamp_size=stamp_size, full_frame=full_frame, threshold=threshold,
        device=_device(device),
        dtype=compute_dtype(t, dtype) if dtype is not None else "float32")
    return DeblendResult(
        catalogue=Catalogue(raw["catalogue"]), stamps=raw["stamps"].numpy(),
        stamp_origins=raw["stamp_origins"].numpy(), children=_numpy(raw["children"]),
        residual=raw["residual"].numpy(), positions=raw["positions"].numpy(),
        noise_sigmas=_numpy(raw["noise_sigmas"]), bands=list(raw["bands"]),
        converged=raw["converged"].numpy(), steps=raw["steps"], loss=raw["loss"])
