"""What a model's explanation hook returns, and how the base class turns it into a frame.

A model that can explain a score implements ``_explain(user_idx, item_idx)``
and/or ``_explain_history(item_idx, ratings, timestamps, target)`` on internal
indices and returns an :class:`Explanation`; the base class maps ids, keeps the
``top`` largest contributions and folds the others into one ``rest`` row, so
the ``contribution`` column always sums to the score.

Two builders serve several models: :func:`linear_explanation` (a score that is
a weighted sum over the history, ``sum_j x_j w_j``: ItemKNN, EASE, SparseEASE,
ContentBased) and :func:`blended_explanation` (a weighted sum of per-user
normalised component scores: Hybrid, Blend).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    kind : {"item", "user", "attention"} or ndarray of str
        What ``sources`` index: history items, neighbour users, or history
        items weighted by attention (an approximation, not a decomposition).
        An array gives one kind per source (a blend of models that explain by
        items and by users).
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

    kind: SourceKind | NDArray[np.str_]
    sources: NDArray[np.int64]
    contributions: NDArray[np.float64]
    score: float
    terms: dict[str, float] = field(default_factory=dict)
    exact: bool = True
    columns: dict[str, NDArray[Any]] = field(default_factory=dict)

    def kinds(self) -> NDArray[np.str_]:
        """One kind per source."""
        if isinstance(self.kind, str):
            return np.full(len(self.sources), self.kind, dtype=object).astype(str)
        return np.asarray(self.kind, dtype=str)


def linear_explanation(
    sources: NDArray[Any], values: NDArray[Any], weights: NDArray[Any], score: float | None = None, *, value: str = "value", weight: str = "weight"
) -> Explanation:
    """The parts of ``score = sum_j values_j * weights_j`` over history items ``j`` (``sources``).

    Sources whose weight is 0 (not a neighbour of the target) are dropped: they
    contribute nothing. Duplicated sources (a history that repeats an item) are
    merged, their values summed. ``score`` defaults to the sum of the parts;
    pass the score the model reports when it is computed another way (the
    difference is float rounding). The detail columns are named ``value`` and
    ``weight``.

    Examples
    --------
    >>> e = linear_explanation(np.array([3, 1, 3]), np.array([1.0, 2.0, 1.0]), np.array([0.5, 0.0, 0.5]))
    >>> e.sources.tolist(), e.contributions.tolist(), e.score
    ([3], [1.0], 1.0)
    """
    src = np.asarray(sources, dtype=np.int64)
    val = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if len(np.unique(src)) != len(src):
        uniq, inv = np.unique(src, return_inverse=True)
        val = np.bincount(inv, weights=val, minlength=len(uniq)).astype(np.float64)
        w = w[np.unique(inv, return_index=True)[1]]
        src = uniq
    keep = w != 0
    src, val, w = src[keep], val[keep], w[keep]
    part = val * w
    total = float(part.sum()) if score is None else float(score)
    return Explanation("item", src, part, total, columns={weight: w, value: val})


def blended_explanation(
    parts: Sequence[tuple[str, float, Explanation, float, float]], score: float, terms: dict[str, float] | None = None
) -> Explanation:
    """Explain ``score = sum_c weight_c * (score_c - shift_c) / scale_c`` from each component's explanation.

    ``parts`` holds, per component, ``(name, weight, explanation, shift, scale)``:
    the component's explanation of its own score, and the affine map its
    per-user normalisation applied (``scale`` 0: every score mapped to 0, the
    component adds nothing).

    Every source's contribution is scaled by ``weight / scale``, then the
    sources of all components are merged by (kind, index): one row per history
    item (or neighbour user), its contribution the sum over components, and
    one detail column per component with that component's share. The
    components' terms become ``"<name>.<term>"`` (scaled the same way), and
    the normalisation's offset ``-weight * shift / scale`` the term
    ``"<name>.normalisation"``. ``terms`` adds any other named parts.

    Examples
    --------
    >>> a = Explanation("item", np.array([1, 2]), np.array([1.0, 3.0]), 4.0)
    >>> b = Explanation("item", np.array([2]), np.array([2.0]), 2.0, terms={"bias": 1.0})
    >>> e = blended_explanation([("a", 0.5, a, 0.0, 2.0), ("b", 0.5, b, 1.0, 1.0)], 2.0)
    >>> e.sources.tolist(), e.contributions.tolist(), e.terms
    ([1, 2], [0.25, 1.75], {'b.bias': 0.5, 'b.normalisation': -0.5})
    """
    kinds: list[NDArray[np.str_]] = []
    srcs: list[NDArray[np.int64]] = []
    cons: list[NDArray[np.float64]] = []
    owner: list[NDArray[np.int64]] = []
    out_terms: dict[str, float] = {}
    names = [p[0] for p in parts]
    for c, (name, weight, exp, shift, scale) in enumerate(parts):
        if scale == 0 or weight == 0:
            continue
        f = float(weight) / float(scale)
        kinds.append(exp.kinds())
        srcs.append(np.asarray(exp.sources, dtype=np.int64))
        cons.append(np.asarray(exp.contributions, dtype=np.float64) * f)
        owner.append(np.full(len(exp.sources), c, dtype=np.int64))
        for t, v in exp.terms.items():
            out_terms[f"{name}.{t}"] = float(v) * f
        if shift != 0:
            out_terms[f"{name}.normalisation"] = -float(shift) * f
    out_terms.update(terms or {})
    if not srcs:
        empty = np.empty(0, dtype=np.int64)
        return Explanation("item", empty, np.empty(0), float(score), terms=out_terms, columns={n: np.empty(0) for n in names})
    kind, src, con, who = np.concatenate(kinds), np.concatenate(srcs), np.concatenate(cons), np.concatenate(owner)
    key = np.char.add(np.char.add(kind.astype(str), ":"), src.astype(str))
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    merged = np.bincount(inv, weights=con, minlength=len(uniq)).astype(np.float64)
    share = np.zeros((len(uniq), len(parts)))
    np.add.at(share, (inv, who), con)
    cols = {n: share[:, c] for c, n in enumerate(names)}
    kind_out: SourceKind | NDArray[np.str_] = kind[first]
    if len(set(kind[first].tolist())) == 1:
        kind_out = str(kind[first][0])  # type: ignore[assignment]
    return Explanation(kind_out, src[first], merged, float(score), terms=out_terms, columns=cols)


def unscored(value: float) -> Explanation:
    """A component score with no parts: an item the component rules out (``-inf``), which the
    blend's normalisation replaces by ``value`` (the row's lowest score)."""
    return Explanation("item", np.empty(0, np.int64), np.empty(0), float(value), terms={"unscored": float(value)})


def explanation_frame(
    exp: Explanation, top: int, items: IdMap, users: IdMap, model: str
) -> pd.DataFrame:
    """The frame :meth:`Recommender.explain` returns (see there for the columns)."""
    src = np.asarray(exp.sources, dtype=np.int64)
    con = np.asarray(exp.contributions, dtype=np.float64)
    if src.shape != con.shape:
        raise ValueError(f"{model}: explanation sources and contributions differ in length ({len(src)} vs {len(con)})")
    kinds = exp.kinds()
    # largest magnitude first, ties to the lower index: negative parts matter as much as positive ones
    order = np.lexsort((src, -np.abs(con)))
    keep, rest = order[:top], order[top:]
    by_user = kinds[keep] == "user"
    ids = np.empty(len(keep), dtype=object)
    if by_user.any():
        ids[by_user] = users.to_ids(src[keep][by_user])
    if (~by_user).any():
        ids[~by_user] = items.to_ids(src[keep][~by_user])
    kind_col: list[str] = kinds[keep].tolist()
    idcol: list[Any] = list(ids)
    contrib: list[float] = con[keep].tolist()
    extra = {name: list(np.asarray(col)[keep]) for name, col in exp.columns.items()}
    if len(rest):
        kind_col.append("rest")
        idcol.append(None)
        contrib.append(float(con[rest].sum()))
        for col in extra.values():
            col.append(None)
    for name, value in exp.terms.items():
        kind_col.append(name)
        idcol.append(None)
        contrib.append(float(value))
        for col in extra.values():
            col.append(None)
    frame = pd.DataFrame({"kind": kind_col, "id": pd.Series(idcol, dtype=object), "contribution": contrib, **extra})
    frame.attrs.update({"score": float(exp.score), "exact": bool(exp.exact), "model": model, "n_sources": int(len(src))})
    return frame


__all__ = ["Explanation", "blended_explanation", "explanation_frame", "linear_explanation", "unscored"]
