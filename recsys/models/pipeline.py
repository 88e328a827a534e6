"""Two-stage recommendation: a retriever proposes candidates, a ranker (e.g. DeepFM, DIN) orders them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from recsys._state_spec import Model, Spec
from recsys._utils.params import check_choice, check_float, check_int
from recsys._utils.registry import as_component
from recsys._utils.topk import nonzero2d, topk
from recsys.data import Interactions
from recsys.errors import NotSupportedError, ParameterError
from recsys.models.base import Recommender

if TYPE_CHECKING:
    from recsys.models.deep._base import CandidateRows


@runtime_checkable
class Ranker(Protocol):
    """What a :class:`Pipeline` needs of a ranker trained on its retriever's candidates
    (``ranker_training="candidates"``); :class:`~recsys.models.DeepFM` and
    :class:`~recsys.models.DIN` implement it.

    Any other :class:`~recsys.models.Recommender` can still rank with
    ``ranker_training="interactions"``: the Pipeline then scores candidates
    through the ranker's ``_score_pairs`` hook.

    Examples
    --------
    >>> from recsys.models import EASE, DeepFM
    >>> isinstance(DeepFM(), Ranker), isinstance(EASE(), Ranker)
    (True, False)
    """

    def fit_ranker(self, data: Interactions, candidates: CandidateRows) -> Recommender:
        """Fit (a transaction, as ``fit``) on ``data`` and the labelled ``candidates``; returns the fitted model."""
        ...

    def score_candidates(
        self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32], prior: NDArray[np.float32] | None
    ) -> NDArray[np.float32]:
        """Scores of (user, item) pairs (internal indices), given the retriever's standardised score ``prior``."""
        ...


def _component(value: Any, name: str) -> Recommender:
    component: Recommender = as_component(value, Recommender, name, "Pipeline")
    return component


def score_stats(scores: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and standard deviation of each row's finite scores (a user's candidate list; -inf pads).

    A retriever's scores live on a per-user scale (EASE and ItemKNN scores grow
    with the history length); standardised with the statistics of the user's
    own candidate list they mean the same for every user, which is what a
    ranker can learn from.

    Examples
    --------
    >>> mean, sd = score_stats(np.array([[3.0, 1.0, -np.inf]], np.float32))
    >>> float(mean[0]), float(sd[0])
    (2.0, 1.0)
    """
    valid = np.isfinite(scores)
    n = np.maximum(valid.sum(1), 1)
    s = np.where(valid, scores, 0.0).astype(np.float64)
    mean = s.sum(1) / n
    sd = np.sqrt((np.where(valid, s - mean[:, None], 0.0) ** 2).sum(1) / n)
    return mean, sd


def _standardised(raw: NDArray[Any], mean: NDArray[np.float64], sd: NDArray[np.float64]) -> NDArray[np.float32]:
    ok = sd > 0
    return np.where(ok, (np.asarray(raw, np.float64) - mean) / np.where(ok, sd, 1.0), 0.0).astype(np.float32)


# Candidate pairs ranked per block of users by Pipeline's top-k for many users.
_BLOCK_PAIRS = 1 << 18


class Pipeline(Recommender):
    """Retrieve ``n_candidates`` items per user with one model, re-rank them with another.

    ``recommend`` asks the retriever for each user's top ``max(n_candidates, k)``
    items (with the same seen-item exclusion and candidate restrictions) and
    returns the ``k`` of them the ranker scores highest. Scores are the
    ranker's.

    How the ranker learns (``ranker_training``):

    * ``"candidates"`` (default, for rankers implementing :class:`Ranker`: DeepFM, DIN):
      learning to rank the retriever's own candidates, cross-fitted. The
      training interactions are cut into ``n_folds`` folds (``k_fold``); for
      each fold, a copy of the retriever fitted on the other folds retrieves
      ``n_candidates`` items per user, and a candidate is a positive if it is
      in that user's part of the fold. So every training interaction labels
      a candidate list once, and no label was seen by the retriever that
      proposed it (with ``n_folds=1``: one per-user holdout of ``holdout``,
      a fifth of the labels for the same share). The ranker sees each
      candidate's retriever score, standardised with the mean and deviation
      of the user's ``n_candidates`` best scores (see :func:`score_stats`;
      seen items excluded, so a pair's score never depends on the request's
      ``items`` restriction), through a learned weight, so it starts from
      the retriever's order and learns what to change; DIN's histories are
      the other folds. The serving retriever is then fitted on all of the
      data, and its standardised scores feed the ranker at recommendation time.
    * ``"interactions"``: the ranker is fitted on the interactions alone (its
      own sampled negatives), like a stand-alone model, and knows nothing of
      the retriever. Any model can rank this way.

    Both models share the id maps of the data (fresh copies are fitted; the
    given objects are not changed).

    Parameters
    ----------
    retriever : Recommender, optional
        Any model: ItemKNN, EASE, an embedding model whose retrieval goes
        through the FAISS ``ItemIndex``... Default ``ItemKNN()``.
    ranker : Recommender, optional
        Usually :class:`~recsys.models.DeepFM` or :class:`~recsys.models.DIN`.
        Default ``DeepFM()``. With ``ranker_training="candidates"`` it must
        implement :class:`Ranker` (a ParameterError says so otherwise).
    n_candidates : int >= 1, default 200
        Candidates re-ranked per user.
    ranker_training : {"candidates", "interactions"}, default "candidates"
    n_folds : int >= 1, default 5
        Cross-fitting folds of ``"candidates"`` training (the ranker trains on
        ``n_folds`` candidate lists per user). On ML-100K, five folds instead of
        one holdout turn Pipeline(ItemKNN, DeepFM) from a tie with ItemKNN into
        a significant gain (benchmarks/results/deep.md). The ranker's training
        rows grow with ``n_folds``, and so does its fitting time.
    holdout : float in (0, 1), default 0.2
        With ``n_folds=1``: the share of each user's interactions held out to label the candidates.
    seed : int, default 0
        Seed of the folds (or of the holdout split).

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

    _no_explanation: ClassVar[str] = (
        "its scores come from the ranker, a neural network re-scoring the retriever's candidates; "
        "no part of them belongs to one history item"
    )
    _state_spec: ClassVar[dict[str, Spec]] = {"retriever_": Model(), "ranker_": Model()}

    def __init__(
        self,
        retriever: Recommender | None = None,
        ranker: Recommender | None = None,
        n_candidates: int = 200,
        ranker_training: str = "candidates",
        n_folds: int = 5,
        holdout: float = 0.2,
        seed: int = 0,
    ) -> None:
        self.retriever = retriever
        self.ranker = ranker
        self.n_candidates = n_candidates
        self.ranker_training = ranker_training
        self.n_folds = n_folds
        self.holdout = holdout
        self.seed = seed

    def _validate_params(self) -> None:
        for name in ("retriever", "ranker"):
            value = getattr(self, name)
            if value is not None:
                _component(value, name)
        check_int("Pipeline", "n_candidates", self.n_candidates, low=1)
        check_choice("Pipeline", "ranker_training", self.ranker_training, ("candidates", "interactions"))
        if self.ranker_training == "candidates" and self.ranker is not None:
            ranker = _component(self.ranker, "ranker")
            if not isinstance(ranker, Ranker):
                raise ParameterError(
                    "The 'ranker' parameter of Pipeline must implement recsys.models.Ranker (fit_ranker, "
                    f"score_candidates: DeepFM, DIN) for ranker_training='candidates'. Got {type(ranker).__name__}, "
                    "which does not: pass ranker_training='interactions' to fit it on the interactions alone."
                )
        check_int("Pipeline", "n_folds", self.n_folds, low=1)
        check_float("Pipeline", "holdout", self.holdout, low=0.0, high=1.0, low_open=True, high_open=True)
        check_int("Pipeline", "seed", self.seed, low=0)

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
        ranker = self._part("ranker")
        if self.ranker_training == "candidates":
            assert isinstance(ranker, Ranker)  # _validate_params checked it
            self.ranker_ = ranker.fit_ranker(data, self._candidate_rows(data))
        else:
            self.ranker_ = ranker.fit(data)
        self.retriever_ = self._part("retriever").fit(data)

    def _candidate_rows(self, data: Interactions) -> CandidateRows:
        from recsys.models.deep._base import CandidateRows
        from recsys.split import k_fold, stratified_split

        if int(self.n_folds) > 1:
            folds = k_fold(data, n_folds=int(self.n_folds), seed=int(self.seed))
        else:
            folds = [stratified_split(data, ratio=1.0 - float(self.holdout), by="user", seed=int(self.seed))]
        parts: dict[str, list[Any]] = {"fold": [], "users": [], "items": [], "labels": [], "prior": []}
        for f, (part, held) in enumerate(folds):
            retriever = self._part("retriever").fit(part)
            users = np.unique(held.user_index).astype(np.int32)
            cand, scores = retriever._topk_users(users, int(self.n_candidates), True, None)
            mean, sd = score_stats(scores)
            rows, cols = nonzero2d(cand >= 0)
            u = users[rows].astype(np.int64)
            i = cand[rows, cols].astype(np.int64)
            parts["fold"].append(np.full(len(u), f, np.int64))
            parts["users"].append(u)
            parts["items"].append(i)
            parts["labels"].append(np.asarray(held.matrix("csr", "binary")[u, i], dtype=np.float32).ravel())
            parts["prior"].append(_standardised(scores[rows, cols], mean[rows], sd[rows]))
        return CandidateRows(history=[part for part, _ in folds], **{k: np.concatenate(v) for k, v in parts.items()})

    def _user_stats(self, uidx: NDArray[np.int32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-user statistics of the retriever's scores over the user's ``n_candidates`` best unseen items."""
        _, scores = self.retriever_._topk_users(np.asarray(uidx, np.int32), int(self.n_candidates), True, None)
        return score_stats(scores)

    def _rank(self, uidx: NDArray[np.int32], iidx: NDArray[np.int32], prior: NDArray[np.float32]) -> NDArray[np.float32]:
        if isinstance(self.ranker_, Ranker):
            return np.asarray(self.ranker_.score_candidates(uidx, iidx, prior), dtype=np.float32)
        return np.asarray(self.ranker_._score_pairs(uidx, iidx), dtype=np.float32)

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        users, inv = np.unique(np.asarray(user_idx, np.int32), return_inverse=True)
        mean, sd = self._user_stats(users)
        raw = self.retriever_._score_pairs(np.asarray(user_idx, np.int32), np.asarray(item_idx, np.int32))
        prior = _standardised(raw, mean[inv], sd[inv])
        out = self._rank(np.asarray(user_idx, np.int32), np.asarray(item_idx, np.int32), prior)
        if np.isnan(out).any():
            raise NotSupportedError(f"the ranker {type(self.ranker_).__name__} produced NaN scores")
        return out

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        items = np.arange(self.n_items_, dtype=np.int32) if item_idx is None else np.asarray(item_idx, np.int32)
        u = np.repeat(np.asarray(user_idx, np.int32), len(items))
        return self._score_pairs(u, np.tile(items, len(user_idx))).reshape(len(user_idx), len(items))

    def _topk_users(
        self, uidx: NDArray[np.int32], k: int, exclude_seen: bool, allowed: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        # users in blocks of about _BLOCK_PAIRS candidates: the ranker's inputs (DIN's histories: pairs x
        # max_len) stay bounded whatever the number of users; every user's list depends on that user only
        n = max(int(self.n_candidates), k)
        per_block = max(1, _BLOCK_PAIRS // n)
        if len(uidx) <= per_block:
            return self._topk_block(uidx, k, exclude_seen, allowed)
        parts = [self._topk_block(uidx[s : s + per_block], k, exclude_seen, allowed) for s in range(0, len(uidx), per_block)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _topk_block(
        self, uidx: NDArray[np.int32], k: int, exclude_seen: bool, allowed: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        n = max(int(self.n_candidates), k)
        cand, raw = self.retriever_._topk_users(uidx, n, exclude_seen, allowed)
        valid = cand >= 0
        if n == int(self.n_candidates) and exclude_seen and allowed is None:
            mean, sd = score_stats(raw)  # the lists the statistics are defined on
        else:
            mean, sd = self._user_stats(uidx)
        rows, cols = nonzero2d(valid)
        scores = np.full(cand.shape, -np.inf, dtype=np.float32)
        if len(rows):
            prior = _standardised(raw[rows, cols], mean[rows], sd[rows])
            s = self._rank(uidx[rows].astype(np.int32), cand[rows, cols].astype(np.int32), prior)
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


__all__ = ["Pipeline", "Ranker"]
