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
    finite = np.isfinite(s)
    if not finite.all():
        low = np.where(finite[:, domain], s[:, domain], np.inf).min(axis=1, keepdims=True)
        s = np.where(finite, s, np.where(np.isfinite(low), low, 0.0))
    d = s[:, domain]
    if how == "minmax":
        lo, hi = d.min(axis=1, keepdims=True), d.max(axis=1, keepdims=True)
        span = hi - lo
        out = np.divide(s - lo, span, out=np.zeros_like(s), where=span > 0)
    elif how == "zscore":
        mu, sd = d.mean(axis=1, keepdims=True), d.std(axis=1, keepdims=True)
        out = np.divide(s - mu, sd, out=np.zeros_like(s), where=sd > 0)
    else:
        out = np.zeros_like(s)
        if d.shape[1] > 1:
            from scipy.stats import rankdata  # scipy.stats costs ~0.5 s to import: only when used

            out[:, domain] = (rankdata(d, method="average", axis=1) - 1.0) / (d.shape[1] - 1)
    return out.astype(np.float32)


__all__ = ["normalised"]
