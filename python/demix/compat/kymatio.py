"""kymatio 0.3's 2D scattering on demix's WST:
``from demix.compat.kymatio import Scattering2D`` instead of
``from kymatio.torch import Scattering2D``.

``Scattering2D(J, shape, L=8, max_order=2)`` is a torch module: called on real tensors
``(..., M, N)`` it returns kymatio's array ``(..., C, M // 2**J, N // 2**J)`` with
``C = 1 + J L + L**2 J (J - 1) / 2`` channels (``1 + J L`` with ``max_order=1``) in kymatio's
order: S0; S1 by (j1, theta1); S2 by (j1, theta1, j2, theta2) with j1 < j2. Reflection padding,
Morlet filters and subsampling are kymatio's; the numbers agree to float32 rounding. The result is
differentiable with respect to the input. ``.to(device)``, ``.cuda()`` and ``.cpu()`` move the
module as they move kymatio's; the input must be on the module's device.

Not supported (NotImplementedError): ``pre_pad=True``, backends other than "torch".
"""

from __future__ import annotations

from typing import Any, Union

import torch

from ..stats import WST

__all__ = ["Scattering2D"]


def _unsupported(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"demix.compat.kymatio: {what} is not supported; supported: Scattering2D(J, shape, L, "
        "max_order=1 or 2, pre_pad=False, backend='torch', out_type='array' or 'list') on real "
        "torch tensors")


class Scattering2D(torch.nn.Module):
    """kymatio 0.3's ``Scattering2D`` (torch frontend) for ``shape = (M, N)`` maps.

    Args:
        J: log2 of the scattering scale; ``2**J <= min(M, N)``.
        shape: ``(M, N)``, the spatial size of the input.
        L: number of angles in [0, pi) (default 8).
        max_order: 1 or 2 (default).
        pre_pad: only False (demix pads by reflection itself, as kymatio does).
        backend: only "torch".
        out_type: "array" (default): one tensor; "list": kymatio's list of dicts
            ``{"coef": (..., M // 2**J, N // 2**J), "j": (...), "n": (...), "theta": (...)}``.
    """

    def __init__(self, J: int, shape: tuple[int, int], L: int = 8, max_order: int = 2,
                 pre_pad: bool = False, backend: Any = "torch",
                 out_type: str = "array") -> None:
        super().__init__()
        if pre_pad:
            raise _unsupported("pre_pad=True")
        if backend != "torch":
            raise _unsupported(f"backend={backend!r}")
        if out_type not in ("array", "list"):
            raise RuntimeError(f"The out_type must be one of 'array' or 'list', got {out_type!r}")
        M, N = (int(s) for s in shape)
        if 2 ** J > M or 2 ** J > N:
            raise RuntimeError(f"The smallest dimension of shape {(M, N)} should be larger than "
                               f"2^J = {2 ** J}.")
        self.J, self.L, self.max_order = J, L, max_order
        self.shape = (M, N)
        self.pre_pad, self.backend, self.out_type = pre_pad, backend, out_type
        # kymatio's padded size (reflection padding to a multiple of 2^J, one 2^J beyond).
        self._M_padded = ((M + 2 ** J) // 2 ** J + 1) * 2 ** J
        self._N_padded = ((N + 2 ** J) // 2 ** J + 1) * 2 ** J
        self._wst = WST((M, N), J=J, L=L, max_order=max_order, boundary="nonperiodic")
        # An empty buffer that nn.Module's .to/.cuda/.cpu move: the module's device. demix
        # builds its filters on the input's device on first use.
        self.register_buffer("_device_marker", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        return self._device_marker.device

    def scattering(self, input: torch.Tensor) -> Union[torch.Tensor, list[dict[str, Any]]]:
        """The scattering coefficients of ``input`` ``(..., M, N)`` (real tensor on the
        module's device): ``(..., C, M // 2**J, N // 2**J)``, or kymatio's list."""
        if not torch.is_tensor(input):
            raise TypeError(f"The input should be a PyTorch Tensor, got {type(input).__name__}")
        if input.dim() < 2:
            raise RuntimeError("Input tensor must have at least two dimensions.")
        if tuple(input.shape[-2:]) != self.shape:
            raise RuntimeError(f"Tensor must be of spatial size {self.shape}, got "
                               f"{tuple(input.shape[-2:])}.")
        if input.is_complex():
            raise TypeError("The input should be real.")
        if input.device != self.device:
            raise RuntimeError(f"The input is on {input.device} but the scattering module on "
                               f"{self.device}: move one of them (.to(device)).")
        if self.out_type not in ("array", "list"):
            raise RuntimeError("The out_type must be one of 'array' or 'list'.")
        batch = input.shape[:-2]
        maps = self._wst.maps(input.reshape((-1,) + self.shape))  # (B, C, h, w)
        S = maps.reshape(tuple(batch) + tuple(maps.shape[1:]))
        if self.out_type == "array":
            return S
        labels = self._wst.labels()
        order, j1, t1 = (labels.label(n) for n in ("order", "j1", "t1"))
        j2, t2 = labels.label("j2"), labels.label("t2")
        out = []
        for c in range(S.shape[-3]):
            if order[c] == 0:
                j, n, theta = (), (), ()
            elif order[c] == 1:
                j, n, theta = (int(j1[c]),), (int(j1[c] * self.L + t1[c]),), (int(t1[c]),)
            else:
                j = (int(j1[c]), int(j2[c]))
                n = (int(j1[c] * self.L + t1[c]), int(j2[c] * self.L + t2[c]))
                theta = (int(t1[c]), int(t2[c]))
            out.append({"coef": S[..., c, :, :], "j": j, "n": n, "theta": theta})
        return out

    def forward(self, input: torch.Tensor) -> Union[torch.Tensor, list[dict[str, Any]]]:
        """Alias of :meth:`scattering` (``S(x)``)."""
        return self.scattering(input)

    def extra_repr(self) -> str:
        return (f"J={self.J}, shape={self.shape}, L={self.L}, max_order={self.max_order}, "
                f"out_type={self.out_type!r}")
