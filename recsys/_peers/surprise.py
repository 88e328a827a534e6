"""Surprise's SVDpp as the SVD++ benchmark runs it: fit on an Interactions' ratings, RMSE and top-k as its docs show."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.data import Interactions


class SurpriseSVDpp:
    """Surprise's SVDpp(cache_ratings=True) fit on an Interactions' ratings, used as its docs show."""

    def __init__(self, surprise: Any, train: Interactions) -> None:
        self.surprise = surprise
        frame = train.to_frame()[["user", "item", "rating"]]
        reader = surprise.Reader(rating_scale=(float(frame["rating"].min()), float(frame["rating"].max())))
        self.trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
        self.algo: Any = None

    def fit(self) -> None:
        self.algo = self.surprise.SVDpp(cache_ratings=True, random_state=0).fit(self.trainset)

    def rmse(self, test: Interactions) -> float:
        f = test.to_frame()
        testset = list(zip(f["user"], f["item"], f["rating"].astype(float)))
        return float(self.surprise.accuracy.rmse(self.algo.test(testset), verbose=False))

    def scores(self) -> np.ndarray:
        """Unclipped estimates for every (inner user, inner item), from the learned parameters."""
        a, ts = self.algo, self.trainset
        z = np.zeros_like(a.pu)
        for u, ratings in ts.ur.items():
            items = [j for j, _ in ratings]
            z[u] = a.yj[items].sum(0) / np.sqrt(len(items))
        return ts.global_mean + a.bu[:, None] + a.bi[None, :] + (a.pu + z) @ a.qi.T  # type: ignore[no-any-return]

    def recommendations(self, users: np.ndarray, k: int) -> pd.DataFrame:
        ts = self.trainset
        s = self.scores()
        # the scores agree with Surprise's own estimate (checked on a few pairs)
        for u, i in [(0, 0), (1, 5), (ts.n_users - 1, ts.n_items - 1)]:
            assert np.isclose(s[u, i], self.algo.estimate(u, i), atol=1e-6)
        for u, ratings in ts.ur.items():
            s[u, [j for j, _ in ratings]] = -np.inf
        rows = []
        for raw in users:
            u = ts.to_inner_uid(raw)
            top = np.argsort(-s[u], kind="stable")[:k]
            rows.append(
                pd.DataFrame(
                    {"user": raw, "item": [ts.to_raw_iid(int(i)) for i in top], "score": s[u, top], "rank": np.arange(1, k + 1)}
                )
            )
        return pd.concat(rows, ignore_index=True)
