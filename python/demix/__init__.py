"""demix: scattering statistics, synthesis, component separation and galaxy deblending of
astrophysical images, from Python.

The package is a thin layer over demix's C++ library, running on the libtorch that ``torch``
loads: maps pass as tensors without copies, on their device, and autograd flows through the
statistics. NumPy arrays are taken too (and NumPy arrays come back).

    >>> import demix
    >>> x, header = demix.read_image("map.fits")
    >>> c = demix.WPH(x.shape, J=6)(x)
    >>> c["C01"].values
"""

import torch  # first: the extension links against the libtorch that torch loads

from . import errors
from .errors import DeviceError, Error, FormatError, InvalidValueError, IoError, ShapeError
from . import _demix


def _check_torch() -> None:
    # The library is compiled against one LibTorch; another torch in the same process would
    # fail later with obscure symbol or ABI errors.
    built = _demix.libtorch_version.split(".")[:2]
    running = torch.__version__.split("+")[0].split(".")[:2]
    if built != running:
        raise ImportError(
            f"demix was built against LibTorch {_demix.libtorch_version} but torch "
            f"{torch.__version__} is imported: reinstall demix in this environment "
            "(pip install --no-build-isolation .) so that it is built against this torch")


_check_torch()

from .coefficients import Coefficients  # noqa: E402
from .io import Header, read_image, write_image  # noqa: E402
from .stats import (PowerSpectrum, Reference, ScatteringCov, Statistic, WPH, WST,  # noqa: E402
                    statistic)
from .synthesis import SynthesisResult, synthesize  # noqa: E402

__version__: str = _demix.__version__

__all__ = [
    "Coefficients", "Header", "PowerSpectrum", "Reference", "ScatteringCov", "Statistic",
    "SynthesisResult", "WPH", "WST", "read_image", "statistic", "synthesize", "write_image",
    "errors", "Error", "IoError", "FormatError", "InvalidValueError", "ShapeError", "DeviceError",
]
