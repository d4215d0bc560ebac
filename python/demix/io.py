"""Images in and out, FITS or NumPy ``.npy``, keeping FITS headers (WCS, units, provenance)."""

from __future__ import annotations

import numbers
import os
import re
from typing import Any, Iterable, Optional, Union

import numpy as np

from . import _demix
from ._arrays import ArrayLike, as_tensor

__all__ = ["Header", "read_image", "write_image"]

PathLike = Union[str, "os.PathLike[str]"]

_LISTS = ("COMMENT", "HISTORY")  # keywords that accumulate lines of text
_INT = re.compile(r"[+-]?\d+$")


class Header(dict):
    """FITS keywords of an image, in file order: keyword -> value (bool, int, float or str);
    ``"COMMENT"`` and ``"HISTORY"`` map to lists of text lines. ``comments`` maps keywords to
    their comments. Structural keywords (BITPIX, NAXISn, BSCALE...) are not kept: the writer
    derives them. A plain dict works wherever a Header is taken."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.comments: dict[str, str] = {}

    @classmethod
    def from_cards(cls, cards: Iterable[str]) -> "Header":
        """A Header from 80-character FITS cards."""
        h = cls()
        last = None
        for card in cards:
            key, value, comment = _parse_card(card)
            if key in _LISTS:
                h.setdefault(key, []).append(value)
            elif key == "CONTINUE":  # a long string's next piece (FITS 4.2.1.2)
                if isinstance(h.get(last), str) and h[last].endswith("&"):
                    h[last] = h[last][:-1] + (value or "")
            elif key:
                h[key] = value
                if comment:
                    h.comments[key] = comment
                last = key
        return h

    def _entries(self) -> list[tuple[str, Any, str]]:
        out = []
        for key, value in self.items():
            if key in _LISTS:
                lines = [value] if isinstance(value, str) else value
                out += [(key, str(line), "") for line in lines]
                continue
            out.append((key, _keyword_value(key, value), getattr(self, "comments", {}).get(key, "")))
        return out

    def __repr__(self) -> str:
        return f"Header({dict.__repr__(self)})"


def _keyword_value(key: str, value: Any) -> Union[bool, int, float, str]:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"FITS keyword {key}: values must be bool, int, float or str, got "
                    f"{type(value).__name__} ({value!r})")


def _parse_card(card: str) -> tuple[str, Any, str]:
    """(keyword, value, comment) of one card, by the FITS standard's fixed format: value
    indicator "= " in columns 9-10, strings in single quotes ('' for a quote)."""
    key = card[:8].strip()
    if key in _LISTS or key == "" or card[8:10] != "= ":
        text = card[8:].rstrip()
        if key == "CONTINUE":
            return key, _parse_value(card[8:])[0], ""
        return key, text, ""
    value, comment = _parse_value(card[10:])
    return key, value, comment


def _parse_value(field: str) -> tuple[Any, str]:
    s = field.lstrip()
    if s.startswith("'"):
        text, i = [], 1
        while i < len(s):
            if s[i] == "'":
                if s[i + 1:i + 2] == "'":
                    text.append("'")
                    i += 2
                    continue
                break
            text.append(s[i])
            i += 1
        rest = s[i + 1:]
        comment = rest.split("/", 1)[1].strip() if "/" in rest else ""
        return "".join(text).rstrip(), comment
    token, _, comment = s.partition("/")
    token = token.strip()
    if token in ("T", "F"):
        return token == "T", comment.strip()
    if _INT.match(token):
        return int(token), comment.strip()
    try:
        return float(token.replace("D", "E")), comment.strip()
    except ValueError:
        return token or None, comment.strip()  # complex or undefined values: kept as text


def read_image(path: PathLike, *, nan: str = "reject") -> tuple[np.ndarray, Header]:
    """Reads a 2-D image or a 3-D cube from FITS (``"map.fits[SCI]"`` or ``"map.fits[2]"``
    picks an HDU; ``.fits.gz`` too) or ``.npy``, recognised from the content.

    Args:
        path: the file, optionally with a FITS HDU selector.
        nan: what to do with NaN/Inf pixels: ``"reject"`` (default: InvalidValueError with
            their count), ``"keep"``, ``"zero"``, or ``"mean"`` (each plane's finite mean).

    Returns:
        ``(data, header)``: ``(H, W)`` or ``(C, H, W)`` float32/float64 (complex from npy), and
        the FITS keywords (empty for npy).

    Raises:
        IoError (OSError) for a missing file, FormatError for a file that is neither FITS nor
        npy or is corrupt, ShapeError for data that is not 2-D or 3-D.
    """
    data, cards, _source, _format = _demix.read_image(os.fspath(path), nan)
    return data.numpy(), Header.from_cards(cards)


def write_image(path: PathLike, data: ArrayLike, header: Optional[dict] = None, *,
                dtype: str = "same") -> None:
    """Writes an image atomically (a failure leaves no file and an existing one unchanged): FITS
    for ``.fits``/``.fit``/``.fts`` (optionally ``.gz``) with ``header``'s keywords, npy for
    ``.npy``.

    Args:
        data: ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)``, NumPy or torch (any device); complex
            data only to npy.
        header: keywords (a :class:`Header` from :func:`read_image`, or a dict of keyword ->
            bool/int/float/str, ``"COMMENT"``/``"HISTORY"`` -> lines).
        dtype: ``"same"`` (default), ``"float32"`` or ``"float64"``.
    """
    t, _ = as_tensor(data, "data")
    h = header if isinstance(header, Header) else Header(header or {})
    _demix.write_image(os.fspath(path), t, h._entries(), dtype)
