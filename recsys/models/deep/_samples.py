"""Training rows for the CTR models: labels, sampled negatives and leak-free behaviour histories.

Everything here is vectorised numpy over whole arrays. An epoch is index
arrays only (:class:`EpochRows`: rows -> user, item, label, history run, and
the sampled negatives); the trainer gathers each mini-batch's arrays from
them, so memory per epoch is a few bytes per row whatever the model's inputs.
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


# Rows per step of the sampler's membership test.
_CHUNK = 1 << 20


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

    def _seen(self, users: NDArray[np.integer[Any]], items: NDArray[np.int64]) -> NDArray[np.bool_]:
        out = np.empty(len(users), dtype=np.bool_)
        for s in range(0, len(users), _CHUNK):  # bounded temporaries (int64 keys and positions)
            keys = users[s : s + _CHUNK].astype(np.int64) * self.n_items + items[s : s + _CHUNK]
            pos = np.minimum(np.searchsorted(self.seen_keys, keys), len(self.seen_keys) - 1)
            out[s : s + _CHUNK] = self.seen_keys[pos] == keys
        return out

    def sample(self, users: NDArray[np.integer[Any]], rng: np.random.Generator) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
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


def index_dtype(n: int) -> type[np.signedinteger[Any]]:
    """The smallest of int32 / int64 that holds the indices ``0..n``.

    Examples
    --------
    >>> index_dtype(10), index_dtype(2**31)
    (<class 'numpy.int32'>, <class 'numpy.int64'>)
    """
    return np.int32 if n < 2**31 else np.int64


def compact_labels(labels: NDArray[Any]) -> NDArray[Any]:
    """0/1 labels as int8 (a batch turns them into float32 exactly); any other labels as float32.

    Examples
    --------
    >>> compact_labels(np.array([1.0, 0.0])).dtype, compact_labels(np.array([0.5])).dtype
    (dtype('int8'), dtype('float32'))
    """
    labels = np.asarray(labels)
    if labels.dtype == np.bool_ or bool(np.all((labels == 0) | (labels == 1))):
        return labels.astype(np.int8, copy=False)
    return labels.astype(np.float32)


@dataclass
class Rows:
    """Labelled (user, item) rows with their history pointers (``end``, ``length``; zeros without
    histories) and, for rankers trained on a retriever's candidates, the retriever's standardised score.

    Stored compactly (int32 indices, int8 labels when they are 0/1, see
    :func:`compact_labels`); :meth:`EpochRows.gather` widens a batch's rows
    to the dtypes the networks take.
    """

    users: NDArray[np.signedinteger[Any]]
    items: NDArray[np.signedinteger[Any]]
    labels: NDArray[Any]
    end: NDArray[np.signedinteger[Any]]
    length: NDArray[np.signedinteger[Any]]
    prior: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users).astype(np.int32, copy=False)
        self.items = np.asarray(self.items).astype(np.int32, copy=False)
        self.labels = compact_labels(self.labels)
        end = np.asarray(self.end)
        self.end = end.astype(index_dtype(int(end.max(initial=0))), copy=False)
        self.length = np.asarray(self.length).astype(np.int32, copy=False)

    def __len__(self) -> int:
        return len(self.users)

    def take(self, sel: NDArray[Any]) -> Rows:
        return Rows(
            self.users[sel], self.items[sel], self.labels[sel], self.end[sel], self.length[sel],
            None if self.prior is None else self.prior[sel],
        )


def base_rows(
    part: Interactions,
    labels: NDArray[Any],
    store: HistoryStore | None,
    max_len: int,
) -> Rows:
    """Rows of ``part`` with the given labels; histories from ``store`` strictly before each row's time."""
    users = part.user_index
    end: NDArray[np.signedinteger[Any]]
    length: NDArray[np.signedinteger[Any]]
    if store is None:
        end = length = np.zeros(len(users), dtype=np.int32)
    else:
        end, length = store.lookup(users, part.timestamps, max_len)
    return Rows(users, part.item_index, labels, end, length)


@dataclass
class EpochRows:
    """One epoch's training rows as index arrays, gathered batch by batch.

    Rows ``0 .. len(base) - 1`` are ``base``; row ``len(base) + j`` is a
    sampled negative: the user, history and prior of base row
    ``neg_parent[j]`` (the same moment in time) with item ``neg_items[j]`` and
    label 0 (or the label row ``neg_label``: multi-task rows carry one label per task, NaN where a
    task has none). Nothing of size "rows x features" or "rows x history" exists:
    :meth:`gather` builds one batch's arrays from these indices.

    Examples
    --------
    >>> base = Rows(np.array([0, 1]), np.array([5, 6]), np.array([1, 1]), np.zeros(2), np.zeros(2))
    >>> e = EpochRows(base, np.array([1], np.int32), np.array([9], np.int32), ("user", "item"))
    >>> b = e.gather(np.array([2, 0]))
    >>> b["user"].tolist(), b["item"].tolist(), b["label"].tolist()
    ([1, 0], [9, 5], [0.0, 1.0])
    """

    base: Rows
    neg_parent: NDArray[np.signedinteger[Any]]
    neg_items: NDArray[np.signedinteger[Any]]
    names: tuple[str, ...]
    neg_label: NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return len(self.base) + len(self.neg_parent)

    def has_both_labels(self) -> bool:
        """True when the rows hold a positive and a negative (a validation AUC is defined); with one
        label column per task, in some task's column (NaN: the task has no label on that row)."""
        labels = self.base.labels
        for col in (labels if labels.ndim > 1 else labels[:, None]).T:
            values = np.unique(col[~np.isnan(col)])
            if len(values) == 2 or (len(self.neg_parent) > 0 and bool((values != 0).any())):
                return True
        return False

    def gather(self, index: NDArray[np.integer[Any]]) -> dict[str, NDArray[Any]]:
        """The arrays of rows ``index``: int64 ``user``, ``item``, ``end``, ``length``, float32
        ``prior`` (those among :attr:`names`) and float32 ``label``."""
        index = np.asarray(index)
        base = self.base
        neg = neg_j = None
        parent: NDArray[Any] = index
        if len(self.neg_parent):
            j = index - len(base)
            neg = np.flatnonzero(j >= 0)
            neg_j = j[neg]
            parent = index.astype(np.int64)
            parent[neg] = self.neg_parent[neg_j]
        out: dict[str, NDArray[Any]] = {}
        for name in self.names:
            if name == "user":
                out[name] = base.users[parent].astype(np.int64)
            elif name == "item":
                item = base.items[parent].astype(np.int64)
                if neg is not None:
                    item[neg] = self.neg_items[neg_j]
                out[name] = item
            elif name in ("end", "length"):
                out[name] = getattr(base, name)[parent].astype(np.int64)
            elif name == "prior":
                assert base.prior is not None
                out[name] = base.prior[parent]
            else:
                raise KeyError(f"no training input {name!r}")
        label = base.labels[parent].astype(np.float32)
        if neg is not None:
            label[neg] = 0.0 if self.neg_label is None else self.neg_label
        out["label"] = label
        return out

    def __getitem__(self, name: str) -> NDArray[Any]:
        """Column ``name`` of every row (materialised: for inspection and tests, not for training)."""
        return self.gather(np.arange(len(self)))[name]


def sample_negatives(
    positives: Rows,
    sampler: NegativeSampler | None,
    ratio: int,
    rng: np.random.Generator,
    names: tuple[str, ...],
    neg_label: NDArray[np.float32] | None = None,
) -> EpochRows:
    """``positives`` plus ``ratio`` sampled negatives per positive (none without a ``sampler``); a
    negative shares its positive's user and history (the same moment in time) and has label 0
    (or ``neg_label``, see :class:`EpochRows`)."""
    if sampler is None or ratio == 0:
        none = np.zeros(0, np.int32)
        return EpochRows(positives, none, none, names, neg_label)
    rep = np.repeat(np.arange(len(positives), dtype=index_dtype(len(positives))), ratio)
    items, kept = sampler.sample(positives.users[rep], rng)
    return EpochRows(positives, rep[kept], items[kept].astype(np.int32), names, neg_label)


__all__ = [
    "EpochRows", "HistoryStore", "NegativeSampler", "Rows", "base_rows", "compact_labels", "index_dtype", "sample_negatives",
]
