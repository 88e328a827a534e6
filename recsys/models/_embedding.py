"""Shared base of models that end in user and item vectors (ALS, BPR, SVD++, content)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._state_spec import Index, Spec
from recsys.errors import NotSupportedError
from recsys.index import ItemIndex
from recsys.models.base import Recommender

# Users whose query vectors are built and searched together.
_USER_BLOCK = 1 << 15


class EmbeddingRecommender(Recommender):
    """A model whose score is ``user_vector · item_vector`` (biases folded into the vectors).

    Subclasses implement ``_fit`` plus ``_user_vectors`` / ``_item_vectors``
    (and ``_history_vector`` where a new user can be folded in); scoring,
    pair scoring, fold-in and item similarity follow from them.

    Retrieval for :meth:`recommend`, :meth:`recommend_one` and
    :meth:`recommend_history` goes through the shared FAISS
    :class:`~recsys.index.ItemIndex` (``index_``, metric ``dot``), built after
    ``fit`` over the items the model can recommend (every item for models
    that score cold items, else the items with train interactions) and saved
    with the model. The default ``kind="auto"`` is exact below 50,000 items
    and IVF above; :meth:`build_index` switches kind or parameters. The exact
    kind returns the same ids and scores as brute-force scoring, and never
    depends on how many users are asked for at once.
    """

    _state_spec: ClassVar[dict[str, Spec]] = {"index_": Index()}

    @abstractmethod
    def _user_vectors(self, user_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        """Query vectors of known users, shape (len(user_idx), dim)."""

    @abstractmethod
    def _item_vectors(self) -> NDArray[np.float32]:
        """Vectors of all items, shape (n_items, dim); row r is item index r."""

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[Any]:
        """Query vector of a user known only by a history (fold-in), shape (dim,)."""
        raise NotSupportedError(f"{type(self).__name__} cannot recommend from a history (no fold-in)")

    # -- the retrieval index --------------------------------------------------------

    def _index_rows(self) -> NDArray[np.int64] | None:
        """Item indices held by the index (None: all items, in order)."""
        return None if not self._never.any() else np.flatnonzero(~self._never).astype(np.int64)

    def _prepare(self) -> None:
        super()._prepare()
        if "index_" not in vars(self):  # after fit; a loaded model brings its own
            self.index_ = ItemIndex.build(self._index_matrix(), metric="dot", kind="auto")
        rows = self._index_rows()
        n_index = self.n_items_ if rows is None else len(rows)
        if self.index_.n_items != n_index:
            from recsys.errors import ArtifactError

            raise ArtifactError(f"{type(self).__name__}: the index holds {self.index_.n_items} items; expected {n_index}")
        dim = int(np.shape(self._item_vectors())[1])
        if self.index_.dim != dim:
            from recsys.errors import ArtifactError

            raise ArtifactError(f"{type(self).__name__}: the index holds vectors of dimension {self.index_.dim}; the model's have {dim}")
        self._rows = rows
        self._pos: NDArray[np.int64] | None = None
        if rows is not None:
            pos = np.full(self.n_items_, -1, dtype=np.int64)
            pos[rows] = np.arange(len(rows))
            self._pos = pos

    def _index_matrix(self) -> NDArray[np.float32]:
        vectors = np.asarray(self._item_vectors(), dtype=np.float32)
        rows = self._index_rows()
        return vectors if rows is None else vectors[rows]

    def build_index(self, kind: str = "auto", *, threads: int | None = None, **params: Any) -> ItemIndex:
        """Rebuild the retrieval index with another kind or parameters (saved with the model).

        Parameters
        ----------
        kind : {"auto", "exact", "ivf", "hnsw", "ivfpq"}
        threads : int, optional
            Thread limit of the index's searches.
        **params
            Kind parameters (``nlist``, ``nprobe``, ``M``, ``ef_search``...); see
            :meth:`recsys.index.ItemIndex.build`.

        Returns
        -------
        ItemIndex
            The new ``index_``.
        """
        self._check_fitted()
        self.index_ = ItemIndex.build(self._index_matrix(), metric="dot", kind=kind, threads=threads, **params)
        self._prepare()
        return self.index_

    def _rebuild_index(self) -> None:
        """Rebuild ``index_`` with its kind and parameters after the item vectors changed."""
        old = self.index_
        params: dict[str, Any] = dict(old.params)
        Recommender._prepare(self)  # which items the index holds follows the new cold items
        self.index_ = ItemIndex.build(self._index_matrix(), metric="dot", kind=old.kind, threads=old.threads, **params)
        self._prepare()

    def _search(
        self,
        queries: NDArray[Any],
        k: int,
        exclude: sp.csr_matrix | None,
        allowed: NDArray[np.bool_] | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Index search in item indices: ``exclude`` rows and ``allowed`` use item indices too."""
        pos = self._pos
        cand = None
        if allowed is not None:
            cand = np.flatnonzero(allowed).astype(np.int64)
            if pos is not None:
                cand = pos[cand]
                cand = cand[cand >= 0]
        if exclude is not None and pos is not None:
            p = pos[exclude.indices]
            keep = p >= 0  # items outside the index cannot be returned anyway
            indptr = np.concatenate(([0], np.cumsum(keep)))[exclude.indptr]
            exclude = sp.csr_matrix((exclude.data[keep], p[keep], indptr), shape=(exclude.shape[0], self.index_.n_items))
        ids, scores = self.index_.search(queries, k, exclude=exclude, candidates=cand)
        if self._rows is not None:
            ids = np.where(ids >= 0, self._rows[np.maximum(ids, 0)], -1)
        return ids, scores

    def _topk_users(
        self, uidx: NDArray[np.int32], k: int, exclude_seen: bool, allowed: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        kk = min(k, self.n_items_)
        ids = np.empty((len(uidx), kk), dtype=np.int64)
        vals = np.empty((len(uidx), kk), dtype=np.float32)
        for start in range(0, len(uidx), _USER_BLOCK):
            block = uidx[start : start + _USER_BLOCK]
            excl = self._seen_rows(block) if exclude_seen else None
            ids[start : start + len(block)], vals[start : start + len(block)] = self._search(
                self._user_vectors(block), kk, excl, allowed
            )
        return ids, vals

    def _topk_history(
        self,
        item_idx: NDArray[np.int32],
        ratings: NDArray[np.float32] | None,
        timestamps: NDArray[Any] | None,
        k: int,
        exclude_seen: bool,
        allowed: NDArray[np.bool_] | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        query = np.asarray(self._history_vector(item_idx, ratings, timestamps)).reshape(1, -1)
        excl = None
        if exclude_seen:
            hist = np.unique(item_idx)
            excl = sp.csr_matrix((np.ones(len(hist), np.float32), hist, [0, len(hist)]), shape=(1, self.n_items_))
        ids, vals = self._search(query, min(k, self.n_items_), excl, allowed)
        return ids[0], vals[0]

    # -- scores from the vectors (what the index returns, in float64 rounded once) ---------

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        items = np.asarray(self._item_vectors(), dtype=np.float32)
        if item_idx is not None:
            items = items[item_idx]
        users = np.asarray(self._user_vectors(user_idx), dtype=np.float32)
        return (users.astype(np.float64) @ items.T.astype(np.float64)).astype(np.float32)

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        out = np.empty(len(user_idx), dtype=np.float32)
        items = np.asarray(self._item_vectors(), dtype=np.float32)
        for start in range(0, len(user_idx), _USER_BLOCK):
            u = np.asarray(self._user_vectors(user_idx[start : start + _USER_BLOCK]), dtype=np.float32)
            v = items[item_idx[start : start + _USER_BLOCK]]
            out[start : start + len(u)] = (u.astype(np.float64) * v).sum(axis=1)
        return out

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        query = np.asarray(self._history_vector(item_idx, ratings, timestamps), dtype=np.float32)
        items = np.asarray(self._item_vectors(), dtype=np.float32)
        return (items.astype(np.float64) @ query.astype(np.float64)).astype(np.float32)

    def _similar_items(self, item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        """Cosine similarity of item vectors (zero vectors: 0)."""
        items = np.asarray(self._item_vectors(), dtype=np.float64)
        norms = np.linalg.norm(items, axis=1)
        unit = np.divide(items, norms[:, None], out=np.zeros_like(items), where=norms[:, None] > 0)
        return (unit[item_idx] @ unit.T).astype(np.float32)
