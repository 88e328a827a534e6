"""Training rows for the CTR models: labels, sampled negatives and leak-free behaviour histories.

Everything here is vectorised numpy over whole arrays; the trainer receives
ready tensors once per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recsys.data import Interactions
from recsys.errors import DataError


@dataclass
class HistoryStore:
    """Each user's positive interactions in time order (ties by external item id), CSR-style.

    ``items[indptr[u]:indptr[u+1]]`` are user ``u``'s positives. :meth:`lookup`
    gives, for a (user, time) query, the end of the run of positives strictly
    earlier than that time and its capped length, so the history of a row is
    ``items[end - length:end]``: only the same user's positives with a
    timestamp strictly before the row's. A row never sees itself and rows
    sharing a second never see each other.
    """

    indptr: NDArray[np.int64]
    items: NDArray[np.int32]
    timestamps: NDArray[Any]

    @classmethod
    def from_interactions(cls, data: Interactions, positive: NDArray[np.bool_]) -> HistoryStore:
        """The rows of ``data`` where ``positive`` is True (a mask over data's rows)."""
        h = data.histories()  # sorted by (user, timestamp, external item id)
        keep = positive[h.rows]
        users = data.user_index[h.rows][keep]
        indptr = np.zeros(data.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=data.n_users), out=indptr[1:])
        return cls(indptr=indptr, items=np.ascontiguousarray(h.items[keep]), timestamps=np.ascontiguousarray(h.timestamps[keep]))

    def lookup(
        self, users: NDArray[np.integer[Any]], timestamps: NDArray[Any] | None, max_len: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(end, length)`` per query: positives of ``users[r]`` strictly before ``timestamps[r]``
        (all of them when ``timestamps`` is None), the most recent ``max_len``.

        Examples
        --------
        >>> s = HistoryStore(np.array([0, 3]), np.array([7, 8, 9], np.int32), np.array([10, 20, 20]))
        >>> s.lookup(np.array([0, 0, 0, 0]), np.array([10, 11, 20, 21]), max_len=2)
        (array([0, 1, 1, 3]), array([0, 1, 1, 2]))
        """
        users = np.asarray(users, dtype=np.int64)
        start = self.indptr[users]
        if timestamps is None:
            end = self.indptr[users + 1]
        else:
            ts = np.asarray(timestamps)
            uniq = np.unique(self.timestamps)
            m = np.int64(len(uniq) + 1)
            user_of = np.repeat(np.arange(len(self.indptr) - 1, dtype=np.int64), np.diff(self.indptr))
            store_key = user_of * m + np.searchsorted(uniq, self.timestamps, side="left")
            # rank of the query time among the store's times: store ts < t  <=>  rank(ts) < searchsorted(uniq, t, 'left')
            query_key = users * m + np.searchsorted(uniq, ts, side="left")
            end = np.searchsorted(store_key, query_key, side="left").astype(np.int64)
            end = np.clip(end, start, self.indptr[users + 1])
        length = np.minimum(end - start, max_len)
        return end, length


class NegativeSampler:
    """Items a user never interacted with, drawn uniformly or by popularity (count ** 0.75).

    Only items with at least one interaction are drawn (the others are never
    recommended). A draw that hits one of the user's items is re-drawn up to
    ``rounds`` times; the rare draws still colliding are dropped.
    """

    def __init__(self, data: Interactions, mode: str, rounds: int = 10) -> None:
        counts = data.item_counts.astype(np.float64)
        self.pool = np.flatnonzero(counts > 0).astype(np.int64)
        if len(self.pool) == 0:
            raise DataError("no item has an interaction: nothing to sample negatives from")
        if mode == "popularity":
            w = counts[self.pool] ** 0.75
            self.cdf: NDArray[np.float64] | None = np.cumsum(w / w.sum())
        else:
            self.cdf = None
        csr = data.matrix("csr", "binary")
        users = np.repeat(np.arange(data.n_users, dtype=np.int64), np.diff(csr.indptr))
        self.n_items = data.n_items
        self.seen_keys = users * self.n_items + csr.indices.astype(np.int64)  # sorted: csr rows, sorted columns
        self.rounds = rounds

    def _draw(self, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
        if self.cdf is None:
            return self.pool[rng.integers(0, len(self.pool), size=n)]
        pos = np.searchsorted(self.cdf, rng.random(n), side="right")
        return self.pool[np.minimum(pos, len(self.pool) - 1)]

    def _seen(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.bool_]:
        keys = users * self.n_items + items
        pos = np.searchsorted(self.seen_keys, keys)
        pos = np.minimum(pos, len(self.seen_keys) - 1)
        return self.seen_keys[pos] == keys  # type: ignore[no-any-return]

    def sample(self, users: NDArray[np.int64], rng: np.random.Generator) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """One negative item per entry of ``users`` and a mask of the draws kept."""
        items = self._draw(len(users), rng)
        bad = self._seen(users, items)
        for _ in range(self.rounds):
            idx = np.flatnonzero(bad)
            if len(idx) == 0:
                break
            items[idx] = self._draw(len(idx), rng)
            bad[idx] = self._seen(users[idx], items[idx])
        return items, ~bad


@dataclass
class Rows:
    """Labelled (user, item) rows with their history pointers (``end``, ``length``; zeros without
    histories) and, for rankers trained on a retriever's candidates, the retriever's standardised score."""

    users: NDArray[np.int64]
    items: NDArray[np.int64]
    labels: NDArray[np.float32]
    end: NDArray[np.int64]
    length: NDArray[np.int64]
    prior: NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return len(self.users)

    def take(self, sel: NDArray[Any]) -> Rows:
        return Rows(
            self.users[sel], self.items[sel], self.labels[sel], self.end[sel], self.length[sel],
            None if self.prior is None else self.prior[sel],
        )

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        cols = [np.concatenate([getattr(p, f) for p in parts]) for f in ("users", "items", "labels", "end", "length")]
        prior = None if any(p.prior is None for p in parts) else np.concatenate([p.prior for p in parts])  # type: ignore[misc]
        return Rows(cols[0], cols[1], cols[2], cols[3], cols[4], prior)


def base_rows(
    part: Interactions,
    labels: NDArray[np.float32],
    store: HistoryStore | None,
    max_len: int,
) -> Rows:
    """Rows of ``part`` with the given labels; histories from ``store`` strictly before each row's time."""
    users = part.user_index.astype(np.int64)
    if store is None:
        end = length = np.zeros(len(users), dtype=np.int64)
    else:
        end, length = store.lookup(users, part.timestamps, max_len)
    return Rows(users, part.item_index.astype(np.int64), labels.astype(np.float32), end, length)


def with_negatives(positives: Rows, sampler: NegativeSampler, ratio: int, rng: np.random.Generator) -> Rows:
    """``positives`` plus ``ratio`` sampled negatives per positive; a negative shares its positive's
    user and history (the same moment in time)."""
    rep = np.repeat(np.arange(len(positives)), ratio)
    items, kept = sampler.sample(positives.users[rep], rng)
    neg = positives.take(rep[kept])
    neg.items = items[kept]
    neg.labels = np.zeros(len(neg), dtype=np.float32)
    return Rows.concat([positives, neg])


__all__ = ["HistoryStore", "NegativeSampler", "Rows", "base_rows", "with_negatives"]
