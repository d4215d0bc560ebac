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
from ._build import LIBTORCH_VERSION as _LIBTORCH_VERSION
from .errors import DeviceError, Error, FormatError, InvalidValueError, IoError, ShapeError


def _check_torch() -> None:
    # The library is compiled against one LibTorch; loading it beside another torch would crash
    # the process or fail with obscure symbol errors, so this is checked before the extension
    # is loaded.
    built = _LIBTORCH_VERSION.split(".")[:2]
    running = torch.__version__.split("+")[0].split(".")[:2]
    if built != running:
        raise ImportError(
            f"demix was built against LibTorch {_LIBTORCH_VERSION} but torch "
            f"{torch.__version__} is imported: reinstall demix in this environment "
            "(pip install --no-build-isolation .) so that it is built against this torch")


_check_torch()

from . import _demix  # noqa: E402

from .coefficients import Coefficients  # noqa: E402
from .galaxies import (Catalogue, Dataset, DeblendResult, deblend, read_dataset,  # noqa: E402
                       simulate_blends, simulate_isolated)
from .io import Header, read_image, write_image  # noqa: E402
from .stats import (PowerSpectrum, Reference, ScatteringCov, Statistic, WPH, WST,  # noqa: E402
                    statistic)
from .separation import SeparationResult, separate, wiener_filter  # noqa: E402
from .synthesis import SynthesisResult, synthesize  # noqa: E402
from .validation import ValidationReport, validate  # noqa: E402

__version__: str = _demix.__version__

__all__ = [
    "Catalogue", "Coefficients", "Dataset", "DeblendResult", "Header", "PowerSpectrum",
    "Reference", "ScatteringCov", "SeparationResult", "Statistic", "SynthesisResult",
    "ValidationReport", "WPH", "WST", "deblend", "read_dataset", "read_image", "separate",
    "simulate_blends", "simulate_isolated", "statistic", "synthesize", "validate",
    "wiener_filter", "write_image",
    "errors", "Error", "IoError", "FormatError", "InvalidValueError", "ShapeError", "DeviceError",
]
