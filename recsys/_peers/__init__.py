"""Peer libraries run under the benchmark's protocol: implicit, Surprise and Cornac, when installed.

Each adapter fits on the same train :class:`~recsys.Interactions` (internal
indices, every interaction of weight 1; Surprise's SVD uses the ratings, as
it is a rating model) and answers ``recommend(users, k)`` with the
benchmark's rules: each user's train items excluded, unknown users skipped.
The lists are scored by the :class:`~recsys.evaluation.Evaluator` like any
recsys model. Hyper-parameters are the ones tuned on a validation split of
ML-100K under this protocol; each peer's ``source`` names the result file.

Surprise and Cornac have no batched top-N call; their learned factors (or
their own ``score``) give every item's score, and the top-k is taken in
numpy: the recommend time of those rows is that of this scoring, said in the
note.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys._utils.topk import topk
from recsys.data import Interactions


class PeerUnavailable(Exception):
    pass


class PeerModel:
    """The part of the Recommender API the benchmark uses: fit, recommend, get_params."""

    label = "peer"
    library = ""
    note = ""

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        self.params = dict(params)
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def fit(self, data: Interactions) -> PeerModel:
        self.data_ = data
        self.seen_ = data.matrix("csr", "binary").astype(np.float32)
        self._fit(data)
        return self

    def _fit(self, data: Interactions) -> None:
        raise NotImplementedError

    def _topk(self, uidx: NDArray[np.int32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        raise NotImplementedError

    def top_indices(self, uidx: NDArray[np.int32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Item indices and scores of each user index's top ``k`` (-1 pads), train items excluded.

        What :meth:`recommend` turns into a frame; the benchmarks time it alone.
        """
        return self._topk(np.asarray(uidx, dtype=np.int32), k)

    def recommend(self, users: Any, k: int = 10, *, exclude_seen: bool = True, on_unknown: str = "skip", **_: Any) -> pd.DataFrame:
        data = self.data_
        query = np.asarray(users)
        uidx = data.users.to_index(query, missing="negative")
        known = uidx >= 0
        q, u = query[known], uidx[known].astype(np.int32)
        ids, scores = self._topk(u, k)
        valid = ids >= 0
        counts = valid.sum(axis=1)
        return pd.DataFrame(
            {
                "user": np.repeat(q, counts),
                "item": data.items.to_ids(ids[valid]),
                "score": scores[valid].astype(np.float32),
                "rank": np.broadcast_to(np.arange(1, ids.shape[1] + 1), ids.shape)[valid],
            }
        )

    def _dense_topk(
        self, uidx: NDArray[np.int32], k: int, score: Callable[[NDArray[np.int32]], NDArray[np.float32]]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Top-k from a dense scoring function, seen items excluded, in user blocks."""
        n_items = self.seen_.shape[1]
        kk = min(k, n_items)
        ids = np.empty((len(uidx), kk), dtype=np.int64)
        vals = np.empty((len(uidx), kk), dtype=np.float32)
        block = max(1, (1 << 22) // max(1, n_items))
        never = np.asarray(self.seen_.sum(axis=0)).ravel() == 0  # items without train interactions
        for s in range(0, len(uidx), block):
            b = uidx[s : s + block]
            sc = np.array(score(b), dtype=np.float32, copy=True)
            sub = self.seen_[b]
            sc[np.repeat(np.arange(len(b)), np.diff(sub.indptr)), sub.indices] = -np.inf
            sc[:, never] = -np.inf
            c, v = topk(sc, kk)
            ids[s : s + len(b)], vals[s : s + len(b)] = c, v
        return ids, vals


# -- implicit -------------------------------------------------------------------------------


class _Implicit(PeerModel):
    library = "implicit"
    make: Callable[[dict[str, Any], int], Any]

    def _fit(self, data: Interactions) -> None:
        self.model = type(self).make(self.params, self.seed)
        from recsys._utils.threads import limit_threads

        # implicit's advice: its own threads, single-threaded BLAS (else the two oversubscribe the cores)
        with limit_threads(1, blas=True):
            self.model.fit(self.seen_.tocsr(), show_progress=False)

    def _topk(self, uidx: NDArray[np.int32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        ids, scores = self.model.recommend(uidx, self.seen_[uidx], N=k, filter_already_liked_items=True)
        ids = np.asarray(ids, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float32)
        bad = ~np.isfinite(scores) | (scores <= np.finfo(np.float32).min)  # implicit pads with -inf/min
        ids[bad] = -1
        return ids, scores


def _implicit_als(p: dict[str, Any], seed: int) -> Any:
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares(**p, random_state=seed)


def _implicit_bpr(p: dict[str, Any], seed: int) -> Any:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return BayesianPersonalizedRanking(**p, random_state=seed)


def _implicit_bm25(p: dict[str, Any], seed: int) -> Any:
    from implicit.nearest_neighbours import BM25Recommender

    return BM25Recommender(**p)


def _implicit_cosine(p: dict[str, Any], seed: int) -> Any:
    from implicit.nearest_neighbours import CosineRecommender

    return CosineRecommender(**p)


class ImplicitALS(_Implicit):
    make = staticmethod(_implicit_als)


class ImplicitBPR(_Implicit):
    make = staticmethod(_implicit_bpr)


class ImplicitBM25(_Implicit):
    make = staticmethod(_implicit_bm25)


class ImplicitCosine(_Implicit):
    make = staticmethod(_implicit_cosine)


# -- Surprise ---------------------------------------------------------------------------------


class SurpriseSVD(PeerModel):
    library = "scikit-surprise"
    note = "Surprise has no top-N call: every item scored from its learned biases and factors in numpy"

    def _fit(self, data: Interactions) -> None:
        from surprise import SVD, Dataset, Reader

        if data.ratings is None:
            raise PeerUnavailable("Surprise SVD is a rating model and the data has no ratings")
        r = data.ratings
        frame = pd.DataFrame({"u": data.user_index.astype(np.int64), "i": data.item_index.astype(np.int64), "r": r.astype(np.float64)})
        trainset = Dataset.load_from_df(frame, Reader(rating_scale=(float(r.min()), float(r.max())))).build_full_trainset()
        self.model = SVD(**self.params, random_state=self.seed)
        self.model.fit(trainset)
        # Surprise's inner ids -> our indices
        n_u, n_i = data.n_users, data.n_items
        k = self.model.pu.shape[1]
        self.bu = np.zeros(n_u, np.float64)
        self.pu = np.zeros((n_u, k), np.float64)
        self.bi = np.zeros(n_i, np.float64)
        self.qi = np.zeros((n_i, k), np.float64)
        u_raw = np.array([trainset.to_raw_uid(j) for j in range(trainset.n_users)], dtype=np.int64)
        i_raw = np.array([trainset.to_raw_iid(j) for j in range(trainset.n_items)], dtype=np.int64)
        self.bu[u_raw], self.pu[u_raw] = self.model.bu, self.model.pu
        self.bi[i_raw], self.qi[i_raw] = self.model.bi, self.model.qi
        self.mu = float(trainset.global_mean)

    def _topk(self, uidx: NDArray[np.int32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        def score(b: NDArray[np.int32]) -> NDArray[np.float32]:
            return (self.mu + self.bu[b, None] + self.bi[None, :] + self.pu[b] @ self.qi.T).astype(np.float32)

        return self._dense_topk(uidx, k, score)


# -- Cornac ----------------------------------------------------------------------------------


class _Cornac(PeerModel):
    library = "cornac"
    note = "Cornac scores every item with its own score(); top-k taken in numpy"

    def _build(self) -> Any:
        raise NotImplementedError

    def _fit(self, data: Interactions) -> None:
        from cornac.data import Dataset

        triples = list(
            zip(data.user_index.astype(str).tolist(), data.item_index.astype(str).tolist(), np.ones(data.nnz).tolist())
        )
        ds = Dataset.from_uir(triples, seed=self.seed)
        self.model = self._build()
        self.model.fit(ds)
        # Cornac's indices -> ours
        self.u_of = np.full(data.n_users, -1, np.int64)
        for raw, j in ds.uid_map.items():
            self.u_of[int(raw)] = j
        self.i_from = np.full(data.n_items, -1, np.int64)
        for raw, j in ds.iid_map.items():
            self.i_from[int(raw)] = j
        self.n_cornac_items = ds.num_items

    def _topk(self, uidx: NDArray[np.int32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        has = self.i_from >= 0

        def score(b: NDArray[np.int32]) -> NDArray[np.float32]:
            out = np.full((len(b), len(self.i_from)), -np.inf, dtype=np.float32)
            for row, u in enumerate(b):
                cu = self.u_of[u]
                if cu >= 0:
                    s = np.asarray(self.model.score(int(cu)), dtype=np.float32).ravel()
                    out[row, has] = s[self.i_from[has]]
            return out

        return self._dense_topk(uidx, k, score)


class CornacBPR(_Cornac):
    def _build(self) -> Any:
        from cornac.models import BPR

        return BPR(**self.params, seed=self.seed, verbose=False)


class CornacEASE(_Cornac):
    def _build(self) -> Any:
        from cornac.models import EASE

        return EASE(**self.params, seed=self.seed, verbose=False)


# -- registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSpec:
    name: str
    module: str
    pip: str
    cls: type[PeerModel]
    params: dict[str, Any]
    source: str


PEERS: dict[str, PeerSpec] = {
    p.name: p
    for p in (
        PeerSpec("implicit-als", "implicit", "implicit", ImplicitALS,
                 {"factors": 32, "regularization": 0.01, "alpha": 5.0, "iterations": 15}, "tuned on ML-100K validation, see benchmarks/results/mf.md"),
        PeerSpec("implicit-bpr", "implicit", "implicit", ImplicitBPR,
                 {"factors": 128, "learning_rate": 0.005, "iterations": 100}, "tuned on ML-100K validation, see benchmarks/results/mf.md"),
        PeerSpec("implicit-bm25", "implicit", "implicit", ImplicitBM25, {"K": 200}, "tuned on ML-100K validation, see benchmarks/results/neighbourhood.md"),
        PeerSpec("implicit-cosine", "implicit", "implicit", ImplicitCosine, {"K": 20}, "tuned on ML-100K validation, see benchmarks/results/neighbourhood.md"),
        PeerSpec("surprise-svd", "surprise", "scikit-surprise", SurpriseSVD, {}, "Surprise defaults"),
        PeerSpec("cornac-bpr", "cornac", "cornac", CornacBPR,
                 {"k": 200, "learning_rate": 0.01, "max_iter": 100}, "tuned on ML-100K validation, see benchmarks/results/mf.md"),
        PeerSpec("cornac-ease", "cornac", "cornac", CornacEASE, {"lamb": 500.0}, "RecTools' published EASE setting (lambda 500), see benchmarks/results/headline.md"),
    )
}  # fmt: skip


def build_peer(name: str, seed: int) -> PeerModel:
    spec = PEERS[name]
    if importlib.util.find_spec(spec.module) is None:
        raise PeerUnavailable(f"{spec.pip} is not installed (pip install {spec.pip})")
    model = spec.cls(spec.params, seed)
    model.label = name
    return model
