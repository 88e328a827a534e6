"""Most-popular baseline."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recsys._state_spec import FLOAT_DTYPES as FLOATS
from recsys._state_spec import Array, Spec
from recsys._utils.params import check_float
from recsys._utils.topk import topk
from recsys.data import Interactions
from recsys.errors import DataError
from recsys.models._explain import Explanation
from recsys.models.base import Recommender

# The fast top-k sorts about this many seen entries per block of users.
_BLOCK_SEEN = 1 << 22


class Popular(Recommender):
    """Recommends the items with the most training interactions.

    With ``half_life`` set, each interaction counts ``0.5 ** (age / half_life)``
    where ``age`` is the time between it and the latest training interaction,
    so recent popularity dominates.

    Every user shares one ranking, so top-k for many users skips each user's
    seen items along it: the cost is the seen items plus ``k`` per user, not
    ``users x items`` scores (the same lists as scoring every item;
    ``benchmarks/results/scale.md`` has the times).

    :meth:`explain` reports the score as one term, ``popularity``: no part of
    it depends on the user.

    Parameters
    ----------
    half_life : float, optional
        In the units of the training timestamps (nanoseconds for datetimes).
        None counts every interaction once.

    Examples
    --------
    >>> import pandas as pd
    >>> from recsys import Interactions
    >>> data = Interactions.from_frame(pd.DataFrame({"user": [1, 2, 2, 3], "item": ["a", "a", "b", "c"]}))
    >>> Popular().fit(data).recommend_one(1, k=2)
    (array(['b', 'c'], dtype=object), array([1., 1.], dtype=float32))
    """

    _state_spec: ClassVar[dict[str, Spec]] = {"popularity_": Array(shape=("n_items",), dtype=FLOATS)}

    def __init__(self, half_life: float | None = None) -> None:
        self.half_life = half_life

    def _validate_params(self) -> None:
        if self.half_life is not None:
            check_float("Popular", "half_life", self.half_life, low=0.0, low_open=True)

    def _fit(self, data: Interactions) -> None:
        if self.half_life is None:
            weights = None
        else:
            if data.timestamps is None:
                raise DataError("Popular(half_life=...) needs timestamps; these interactions have none")
            age = (data.timestamps.max() - data.timestamps).astype(np.float64)
            weights = np.exp2(-age / float(self.half_life))
        self.popularity_ = np.bincount(data.item_index, weights=weights, minlength=data.n_items).astype(np.float32)

    def _prepare(self) -> None:
        super()._prepare()
        self._order: NDArray[np.int64] | None = None  # scorable items, best first (built on first use)

    def _ranked(self, allowed: NDArray[np.bool_] | None) -> NDArray[np.int64]:
        """Candidate items by decreasing popularity, ties to the lower index (the order of ``topk``)."""
        if allowed is None and self._order is not None:
            return self._order
        s = np.where(self._never if allowed is None else ~allowed, -np.inf, self.popularity_).astype(np.float32)
        order = topk(s[None, :], self.n_items_)[0][0]
        order = order[order >= 0]
        if allowed is None:
            self._order = order
        return order

    def _topk_users(
        self, uidx: NDArray[np.int32], k: int, exclude_seen: bool, allowed: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        # Every user shares one ranking: walk it and skip the user's seen items, which costs
        # users x (k + seen) instead of the generic users x items scores (the same lists).
        order = self._ranked(allowed)
        kk = min(k, self.n_items_)
        ids = np.full((len(uidx), kk), -1, dtype=np.int64)
        vals = np.full((len(uidx), kk), -np.inf, dtype=np.float32)
        head = order[:kk]
        if not exclude_seen:
            ids[:, : len(head)] = head
            vals[:, : len(head)] = self.popularity_[head]
            return ids, vals
        rank = np.full(self.n_items_, -1, dtype=np.int64)
        rank[order] = np.arange(len(order))
        # A user's i-th unseen rank is i + #{j : t_j - j <= i}, with t_0 < t_1 < ... the ranks of the
        # user's seen items (t_j - j unseen ranks lie before t_j): one sort of the seen ranks, no scores.
        indptr = self.seen_.indptr
        per_block = max(1, _BLOCK_SEEN // max(1, int(indptr[-1]) // max(1, len(indptr) - 1) + kk))
        steps = np.arange(kk)
        for start in range(0, len(uidx), per_block):
            block = uidx[start : start + per_block]
            sub = self._seen_rows(block)
            row = np.repeat(np.arange(len(block), dtype=np.int64), np.diff(sub.indptr))
            r = rank[sub.indices]
            keep = (r >= 0) & (r < kk + np.diff(sub.indptr)[row])  # later ranks cannot move the first kk
            key = np.sort(row[keep] * len(order) + r[keep])
            row, t = np.divmod(key, len(order))
            first = np.searchsorted(row, np.arange(len(block)))
            g = t - (np.arange(len(key)) - first[row])
            small = g < kk
            below = np.bincount(row[small] * kk + g[small], minlength=len(block) * kk).reshape(len(block), kk)
            ans = steps + np.cumsum(below, axis=1)
            ok = ans < len(order)
            got = np.where(ok, order[np.minimum(ans, len(order) - 1)], -1)
            ids[start : start + len(block)] = got
            vals[start : start + len(block)] = np.where(ok, self.popularity_[np.maximum(got, 0)], -np.inf)
        return ids, vals

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        s = self.popularity_ if item_idx is None else self.popularity_[item_idx]
        return np.broadcast_to(s, (len(user_idx), len(s)))

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return np.asarray(self.popularity_[item_idx], dtype=np.float32)

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        return np.asarray(self.popularity_, dtype=np.float32)

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        # nothing of the user's is in the score: one term, the item's (decayed) interaction count
        pop = float(self.popularity_[item_idx])
        return Explanation("item", np.empty(0, np.int64), np.empty(0), pop, terms={"popularity": pop})

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        return self._explain(0, target)
