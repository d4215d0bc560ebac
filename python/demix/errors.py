"""The exceptions demix raises.

The C++ library throws typed errors whose message names the file or argument, the value received
and what is allowed; the extension turns each into the exception below with that message. Each
also derives from the built-in exception a Python user would catch for it, so ``except
ValueError`` and ``except OSError`` work as with any other package.

================================  ===========================  =================================
C++ (demix/core/errors.hpp)       Python                       also an instance of
================================  ===========================  =================================
demix::Error (any other)          ``demix.Error``              ``Exception``
demix::IoError                    ``demix.IoError``            ``OSError``
demix::FormatError                ``demix.FormatError``        ``demix.IoError``, ``OSError``
demix::ValueError                 ``demix.InvalidValueError``  ``ValueError``
demix::ShapeError                 ``demix.ShapeError``         ``ValueError``
demix::DeviceError                ``demix.DeviceError``        ``RuntimeError``
================================  ===========================  =================================

Errors raised by LibTorch inside the library (rare: they are bugs or exhausted memory) arrive as
``RuntimeError`` (``ValueError``, ``TypeError``, ``IndexError`` for LibTorch's own kinds).
"""

from __future__ import annotations

__all__ = ["Error", "IoError", "FormatError", "InvalidValueError", "ShapeError", "DeviceError"]


class Error(Exception):
    """Base of every error the demix library raises on purpose."""


class IoError(Error, OSError):
    """A file cannot be found, opened, read or written."""


class FormatError(IoError):
    """A file exists but its content is not what it claims or what demix supports."""


class InvalidValueError(Error, ValueError):
    """A value is out of its allowed range (an option, NaN pixels, ...)."""


class ShapeError(Error, ValueError):
    """An array has the wrong number of dimensions or the wrong extent."""


class DeviceError(Error, RuntimeError):
    """The requested compute device is not available."""
