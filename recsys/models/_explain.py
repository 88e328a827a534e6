"""What a model's explanation hook returns, and how the base class turns it into a frame.

A model that can explain a score implements ``_explain(user_idx, item_idx)``
and/or ``_explain_history(item_idx, ratings, timestamps, target)`` on internal
indices and returns an :class:`Explanation`; the base class maps ids, keeps the
``top`` largest contributions and folds the others into one ``rest`` row, so
the ``contribution`` column always sums to the score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.data import IdMap

SourceKind = Literal["item", "user", "attention"]


@dataclass(frozen=True)
class Explanation:
    """One score broken into parts (internal indices; built by a model's explain hook).

    Attributes
    ----------
    kind : {"item", "user", "attention"}
        What ``sources`` index: history items, neighbour users, or history
        items weighted by attention (an approximation, not a decomposition).
    sources : ndarray of int
        Internal indices of the contributing items or users.
    contributions : ndarray of float
        One value per source. For exact kinds, these plus ``terms`` sum to ``score``.
    score : float
        The score being explained (as ``recommend`` reports it).
    terms : dict of str to float
        Named parts that no source carries (a bias, a baseline, a popularity prior).
    exact : bool
        Whether contributions + terms reproduce ``score`` (False for attention weights).
    columns : dict of str to ndarray
        Extra per-source columns (e.g. ``similarity``, ``value``), aligned with ``sources``.
    """

    kind: SourceKind
    sources: NDArray[np.int64]
    contributions: NDArray[np.float64]
    score: float
    terms: dict[str, float] = field(default_factory=dict)
    exact: bool = True
    columns: dict[str, NDArray[Any]] = field(default_factory=dict)


def explanation_frame(
    exp: Explanation, top: int, items: IdMap, users: IdMap, model: str
) -> pd.DataFrame:
    """The frame :meth:`Recommender.explain` returns (see there for the columns)."""
    src = np.asarray(exp.sources, dtype=np.int64)
    con = np.asarray(exp.contributions, dtype=np.float64)
    if src.shape != con.shape:
        raise ValueError(f"{model}: explanation sources and contributions differ in length ({len(src)} vs {len(con)})")
    # largest magnitude first, ties to the lower index: negative parts matter as much as positive ones
    order = np.lexsort((src, -np.abs(con)))
    keep, rest = order[:top], order[top:]
    ids = (items if exp.kind in ("item", "attention") else users).to_ids(src[keep])
    kinds: list[str] = [exp.kind] * len(keep)
    idcol: list[Any] = list(ids)
    contrib: list[float] = con[keep].tolist()
    extra = {name: list(np.asarray(col)[keep]) for name, col in exp.columns.items()}
    if len(rest):
        kinds.append("rest")
        idcol.append(None)
        contrib.append(float(con[rest].sum()))
        for col in extra.values():
            col.append(None)
    for name, value in exp.terms.items():
        kinds.append(name)
        idcol.append(None)
        contrib.append(float(value))
        for col in extra.values():
            col.append(None)
    frame = pd.DataFrame({"kind": kinds, "id": pd.Series(idcol, dtype=object), "contribution": contrib, **extra})
    frame.attrs.update({"score": float(exp.score), "exact": bool(exp.exact), "model": model, "n_sources": int(len(src))})
    return frame


__all__ = ["Explanation", "explanation_frame"]
