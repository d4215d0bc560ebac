"""Drop-in layers for scripts written for other scattering codes.

Change one import line and an existing script runs on demix's C++ statistics:

* ``import demix.compat.pywph as pw`` instead of ``import pywph as pw`` (pywph 1.1.3's
  ``WPHOp`` and ``WPH``, default model);
* ``from demix.compat.kymatio import Scattering2D`` instead of
  ``from kymatio.torch import Scattering2D`` (kymatio 0.3's torch frontend).

Same defaults, output shapes, orderings and numbers (to float tolerance) as the originals. What a
layer does not support raises :class:`NotImplementedError` with a message that starts with the
layer's name (``demix.compat.pywph: ...``), says what was asked and what is supported; nothing is
silently approximated. The README's Python section lists what is supported.
"""

__all__ = ["kymatio", "pywph"]
