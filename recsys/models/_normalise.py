"""Per-user score normalisation shared by the score-blending models (Hybrid, Blend)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def normalised(scores: NDArray[np.float32], domain: NDArray[np.bool_], how: str) -> NDArray[np.float32]:
    """Rows of ``scores`` mapped to a common scale using the statistics of the ``domain`` columns only.

    ``minmax``: to [0, 1] by the row's domain min and max; ``zscore``: minus the
    domain mean, over the domain standard deviation; ``rank``: the average rank
    within the domain scaled to [0, 1] (columns outside the domain get 0). A
    row whose domain scores are all equal maps to 0. ``-inf`` (an item a model
    rules out, e.g. a non-neighbour in ItemKNN's similarities) counts as the
    row's lowest finite domain score.

    Examples
    --------
    >>> normalised(np.array([[1.0, 3.0, 9.0]], np.float32), np.array([True, True, False]), "zscore")
    array([[-1.,  1.,  7.]], dtype=float32)
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[1] == 0 or not domain.any():
        return np.zeros(s.shape, dtype=np.float32)
    s = _finite(s, domain)
    d = s[:, domain]
    if how in ("minmax", "zscore"):
        shift, scale = _affine(d, how)
        out = np.divide(s - shift, scale, out=np.zeros_like(s), where=scale > 0)
    else:
        out = np.zeros_like(s)
        if d.shape[1] > 1:
            from scipy.stats import rankdata  # scipy.stats costs ~0.5 s to import: only when used

            out[:, domain] = (rankdata(d, method="average", axis=1) - 1.0) / (d.shape[1] - 1)
    return out.astype(np.float32)


def _finite(s: NDArray[np.float64], domain: NDArray[np.bool_]) -> NDArray[np.float64]:
    """``-inf`` (and other non-finite scores) replaced by the row's lowest finite domain score (0 if none)."""
    finite = np.isfinite(s)
    if finite.all():
        return s
    low = np.where(finite[:, domain], s[:, domain], np.inf).min(axis=1, keepdims=True)
    return np.where(finite, s, np.where(np.isfinite(low), low, 0.0))


def _affine(d: NDArray[np.float64], how: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-row ``(shift, scale)`` of ``minmax`` (min, max - min) or ``zscore`` (mean, std) over ``d``."""
    if how == "minmax":
        lo, hi = d.min(axis=1, keepdims=True), d.max(axis=1, keepdims=True)
        return lo, hi - lo
    return d.mean(axis=1, keepdims=True), d.std(axis=1, keepdims=True)


def normalising_map(scores: NDArray[np.float32], domain: NDArray[np.bool_], how: str) -> tuple[float, float, NDArray[np.float64]] | None:
    """The affine map :func:`normalised` applies to one row of scores: ``(shift, scale, filled)``.

    ``normalised(x) = (x - shift) / scale`` for ``scale > 0`` (and 0 for every
    item when ``scale == 0``); ``filled`` is the row with non-finite scores
    replaced as :func:`normalised` replaces them. None for ``rank``, which is
    not affine.

    Examples
    --------
    >>> normalising_map(np.array([1.0, 3.0, 9.0], np.float32), np.array([True, True, False]), "zscore")[:2]
    (2.0, 1.0)
    """
    if how not in ("minmax", "zscore"):
        return None
    s = np.asarray(scores, dtype=np.float64).reshape(1, -1)
    if s.shape[1] == 0 or not domain.any():
        return 0.0, 0.0, s[0]
    s = _finite(s, domain)
    shift, scale = _affine(s[:, domain], how)
    return float(shift[0, 0]), float(scale[0, 0]), s[0]


__all__ = ["normalised", "normalising_map"]
