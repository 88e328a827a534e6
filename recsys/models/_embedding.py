"""Shared base of models that end in user and item vectors (ALS, BPR, SVD++, content)."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from numpy.typing import NDArray

from recsys.models.base import Recommender


class EmbeddingRecommender(Recommender):
    """A model whose score is ``user_vector · item_vector`` (biases folded into the vectors).

    Subclasses implement ``_fit`` plus ``_user_vectors`` / ``_item_vectors``;
    scoring, pair scoring, fold-in hooks and item similarity follow from them.
    Retrieval for ``recommend`` goes through the shared FAISS ``ItemIndex``
    once it is built in ``_prepare``.
    """

    @abstractmethod
    def _user_vectors(self, user_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        """Query vectors of known users, shape (len(user_idx), dim)."""

    @abstractmethod
    def _item_vectors(self) -> NDArray[np.float32]:
        """Vectors of all items, shape (n_items, dim); row r is item index r."""

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        items = self._item_vectors()
        if item_idx is not None:
            items = items[item_idx]
        return np.asarray(self._user_vectors(user_idx) @ items.T, dtype=np.float32)

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        u = self._user_vectors(user_idx)
        v = self._item_vectors()[item_idx]
        return np.einsum("ij,ij->i", u, v).astype(np.float32)
