"""The result of every statistics operator: values with a label row per coefficient."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from ._arrays import ArrayLike
from .errors import InvalidValueError


class Coefficients:
    """Coefficients of one statistic for one map or a batch of maps.

    Attributes:
        values: ``(K,)`` for one ``(H, W)`` map, ``(B, K)`` for a batch ``(B, H, W)``; real or
            complex. A NumPy array when the maps were NumPy arrays, else a torch tensor on the
            maps' device, differentiable with respect to them. ``None`` for labels alone
            (``Statistic.labels()``).
        classes: class names, e.g. ``("S11", "S00", "S01", "C01", "Cphase", "L")`` for WPH.
        class_id: ``(K,)`` int64, index of each coefficient's class in ``classes``.
        label_names: names of the label columns, e.g. ``("j1", "t1", "p1", ...)``.
        labels: ``(K, len(label_names))`` int64; -1 where a label does not apply.

    Select a class with ``c["C01"]`` or ``c.select("C01", j1=2)``; ``to_numpy()`` gives a
    structured array, ``to_table()`` an astropy Table.
    """

    def __init__(
        self,
        values: Optional[ArrayLike],
        classes: Sequence[str],
        class_id: ArrayLike,
        label_names: Sequence[str],
        labels: ArrayLike,
    ) -> None:
        self.values = values
        self.classes = tuple(classes)
        self.class_id = np.asarray(class_id.numpy() if torch.is_tensor(class_id) else class_id)
        self.label_names = tuple(label_names)
        self.labels = np.asarray(labels.numpy() if torch.is_tensor(labels) else labels)
        if self.labels.shape != (len(self.class_id), len(self.label_names)):
            raise InvalidValueError(
                f"labels must be (K, {len(self.label_names)}) = ({len(self.class_id)}, "
                f"{len(self.label_names)}), got {self.labels.shape}")

    # ---- shape -----------------------------------------------------------------------------
    def __len__(self) -> int:
        """K, the number of coefficients."""
        return len(self.class_id)

    @property
    def batched(self) -> bool:
        """Whether ``values`` holds a batch, ``(B, K)``."""
        return self.values is not None and self.values.ndim == 2

    # ---- selection -------------------------------------------------------------------------
    def mask(self, cls: Optional[str] = None, **labels: int) -> np.ndarray:
        """``(K,)`` bool: the coefficients of class ``cls`` (any class if None) whose labels
        equal the given values, e.g. ``mask("C01", j1=2, j2=4)``."""
        keep = np.ones(len(self), dtype=bool)
        if cls is not None:
            if cls not in self.classes:
                raise InvalidValueError(
                    f"no class '{cls}'; classes: {', '.join(self.classes)}")
            keep &= self.class_id == self.classes.index(cls)
        for name, value in labels.items():
            keep &= self.label(name) == value
        return keep

    def select(self, cls: Optional[str] = None, **labels: int) -> "Coefficients":
        """The coefficients ``mask(cls, **labels)`` keeps, values (differentiably) and labels."""
        keep = self.mask(cls, **labels)
        index = np.flatnonzero(keep)
        values = self.values
        if values is not None:
            if torch.is_tensor(values):
                values = values.index_select(-1, torch.from_numpy(index).to(values.device))
            else:
                values = values[..., index]
        return Coefficients(values, self.classes, self.class_id[index], self.label_names,
                            self.labels[index])

    def __getitem__(self, cls: str) -> "Coefficients":
        """``c["C01"]``: the coefficients of one class."""
        if not isinstance(cls, str):
            raise TypeError(f"Coefficients are indexed by class name, got {type(cls).__name__}"
                            "; use .values for positions")
        return self.select(cls)

    def label(self, name: str) -> np.ndarray:
        """Label column ``name`` (e.g. ``"j1"``), ``(K,)`` int64."""
        if name not in self.label_names:
            raise InvalidValueError(
                f"no label '{name}'; labels: {', '.join(self.label_names)}")
        return self.labels[:, self.label_names.index(name)]

    @property
    def class_names(self) -> np.ndarray:
        """``(K,)`` the class name of each coefficient."""
        return np.asarray(self.classes, dtype=object)[self.class_id]

    # ---- conversion ------------------------------------------------------------------------
    def numpy_values(self) -> Optional[np.ndarray]:
        """``values`` as a NumPy array (detached, on the CPU)."""
        v = self.values
        if v is None or isinstance(v, np.ndarray):
            return v
        return v.detach().cpu().numpy()

    def to_numpy(self) -> np.ndarray:
        """A structured array, one record per coefficient: ``class`` (str), one int64 field per
        label, and ``value`` (the value, or a ``(B,)`` sub-array of one per map for a batch).
        Labels alone (no values) have no ``value`` field."""
        width = max((len(c) for c in self.classes), default=1)
        fields: list[tuple[Any, ...]] = [("class", f"U{width}")]
        fields += [(name, np.int64) for name in self.label_names]
        v = self.numpy_values()
        if v is not None:
            fields.append(("value", v.dtype, (v.shape[0],)) if v.ndim == 2
                          else ("value", v.dtype))
        out = np.empty(len(self), dtype=fields)
        out["class"] = self.class_names
        for i, name in enumerate(self.label_names):
            out[name] = self.labels[:, i]
        if v is not None:
            out["value"] = v.T if v.ndim == 2 else v
        return out

    def to_table(self):
        """An astropy ``Table`` of ``to_numpy()``'s columns (needs astropy)."""
        try:
            from astropy.table import Table
        except ImportError as e:
            raise ImportError("Coefficients.to_table needs astropy (pip install astropy); "
                              "to_numpy() gives the same columns as a NumPy array") from e
        return Table(self.to_numpy())

    def __repr__(self) -> str:
        if self.values is None:
            what = "labels only"
        else:
            kind = "tensor" if torch.is_tensor(self.values) else "array"
            what = f"values {kind} {tuple(self.values.shape)} {self.values.dtype}"
        return (f"Coefficients({len(self)} in {len(self.classes)} classes "
                f"[{', '.join(self.classes)}], {what})")
