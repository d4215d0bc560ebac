"""NumPy arrays and torch tensors in, the same kind out."""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

#: What demix's functions take for maps: a NumPy array or a torch tensor (any device).
ArrayLike = Union[np.ndarray, torch.Tensor]

_REAL = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.complex64: "float32",
    torch.complex128: "float64",
}


def as_tensor(x: object, name: str) -> tuple[torch.Tensor, bool]:
    """``x`` as a tensor, without a copy where possible, and whether it came as NumPy.

    Tensors pass as they are (their device, dtype and autograd graph kept). NumPy arrays are
    shared with ``torch.from_numpy``; byte-swapped data (FITS files read by astropy are
    big-endian) and negative strides are copied first, since torch takes neither.
    """
    if isinstance(x, torch.Tensor):
        return x, False
    if isinstance(x, (list, tuple)) or np.isscalar(x):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if any(s < 0 for s in x.strides):
        x = np.ascontiguousarray(x)
    try:
        return torch.from_numpy(x), True
    except TypeError as e:  # object, string or unsigned 16/32/64-bit arrays
        raise TypeError(f"{name}: NumPy dtype {x.dtype} is not supported ({e})") from None


def compute_dtype(t: torch.Tensor, requested: torch.dtype | None) -> str:
    """The precision an operator computes ``t`` in: the requested one, else the map's own
    (float64 and complex128 maps in float64, float32 and complex64 in float32), else torch's
    default dtype (integer or half-precision maps)."""
    if requested is not None:
        if requested not in _REAL:
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {requested}")
        return _REAL[requested]
    return _REAL.get(t.dtype, _REAL[torch.get_default_dtype()])


def like_input(t: torch.Tensor, numpy_in: bool) -> ArrayLike:
    """``t`` as NumPy (detached, on the CPU) when the input was NumPy, else as is."""
    return t.detach().cpu().numpy() if numpy_in else t
