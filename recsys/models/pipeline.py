"""Two-stage recommendation: a retriever proposes candidates, a ranker (e.g. DeepFM, DIN) orders them."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from recsys._utils.params import check_int
from recsys._utils.registry import build_component
from recsys._utils.topk import topk
from recsys.data import Interactions
from recsys.errors import NotSupportedError, ParameterError
from recsys.models.base import Recommender


def _component(value: Any, name: str) -> Recommender:
    if isinstance(value, dict) and "__config__" in value:
        value = build_component(value["__config__"])
    if not isinstance(value, Recommender):
        raise ParameterError(
            f"The {name!r} parameter of Pipeline must be a Recommender (or its config). Got {type(value).__name__} instead."
        )
    return value


class Pipeline(Recommender):
    """Retrieve ``n_candidates`` items per user with one model, re-rank them with another.

    ``recommend`` asks the retriever for each user's top ``max(n_candidates, k)``
    items (with the same seen-item exclusion and candidate restrictions) and
    returns the ``k`` of them the ranker scores highest. Scores are the
    ranker's (``score`` gives the ranker's score of any pair). Both models are
    fitted on the same data (fresh copies; the given objects are not
    changed), so they share the id maps.

    Parameters
    ----------
    retriever : Recommender, optional
        Any fitted-on-the-same-data model: ItemKNN, EASE, an embedding model
        whose retrieval goes through the FAISS ``ItemIndex``... Default ``ItemKNN()``.
    ranker : Recommender, optional
        Usually :class:`~recsys.models.DeepFM` or :class:`~recsys.models.DIN`.
        Default ``DeepFM()``.
    n_candidates : int >= 1, default 200
        Candidates re-ranked per user.

    Attributes
    ----------
    retriever_, ranker_ : Recommender
        The fitted models.

    Examples
    --------
    >>> from recsys.models import DeepFM, ItemKNN
    >>> from recsys.testing import tiny_interactions
    >>> model = Pipeline(retriever=ItemKNN(k=10), n_candidates=8,
    ...                  ranker=DeepFM(epochs=2, hidden_units=[16], num_threads=1, show_progress=False))
    >>> ids, scores = model.fit(tiny_interactions()).recommend_one(0, k=3)
    >>> len(ids), bool(scores[0] >= scores[-1])
    (3, True)
    """

    def __init__(self, retriever: Recommender | None = None, ranker: Recommender | None = None, n_candidates: int = 200) -> None:
        self.retriever = retriever
        self.ranker = ranker
        self.n_candidates = n_candidates

    def _validate_params(self) -> None:
        for name in ("retriever", "ranker"):
            value = getattr(self, name)
            if value is not None:
                _component(value, name)
        check_int("Pipeline", "n_candidates", self.n_candidates, low=1)

    def _part(self, name: str) -> Recommender:
        value = getattr(self, name)
        if value is None:
            if name == "retriever":
                from recsys.models.knn import ItemKNN

                return ItemKNN()
            from recsys.models.deep import DeepFM

            return DeepFM()
        return Recommender.from_config(_component(value, name).get_config())

    def _fit(self, data: Interactions) -> None:
        self.retriever_ = self._part("retriever").fit(data)
        self.ranker_ = self._part("ranker").fit(data)

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        return np.asarray(self.ranker_._score(user_idx, item_idx), dtype=np.float32)

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return np.asarray(self.ranker_._score_pairs(user_idx, item_idx), dtype=np.float32)

    def _topk_users(
        self, uidx: NDArray[np.int32], k: int, exclude_seen: bool, allowed: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        n = max(int(self.n_candidates), k)
        cand, _ = self.retriever_._topk_users(uidx, n, exclude_seen, allowed)
        valid = cand >= 0
        rows, cols = np.nonzero(valid)
        scores = np.full(cand.shape, -np.inf, dtype=np.float32)
        if len(rows):
            s = self._score_pairs(uidx[rows].astype(np.int32), cand[rows, cols].astype(np.int32))
            if np.isnan(s).any():
                raise NotSupportedError(f"the ranker {type(self.ranker_).__name__} produced NaN scores")
            scores[rows, cols] = s
        # ties between equal ranker scores go to the lower item index, as everywhere else
        order = np.argsort(np.where(valid, cand, np.iinfo(np.int64).max), axis=1, kind="stable")
        cand_sorted = np.take_along_axis(cand, order, axis=1)
        s_sorted = np.take_along_axis(scores, order, axis=1)
        pos, vals = topk(s_sorted, min(k, self.n_items_))
        ids = np.where(pos >= 0, np.take_along_axis(cand_sorted, np.maximum(pos, 0), axis=1), -1)
        return ids, vals

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        raise NotSupportedError("Pipeline cannot recommend from a history: its ranker scores known users only")


__all__ = ["Pipeline"]
