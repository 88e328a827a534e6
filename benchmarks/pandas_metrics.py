"""Baseline for ``benchmarks.evaluation``: precision, recall and NDCG by pandas merge-and-groupby.

This is the style of Microsoft Recommenders' ``python_evaluation``
(``merge_ranking_true_pred`` followed by per-metric groupbys), written here
from the definitions, with the same conventions as ``recsys.evaluation``:
binary relevance, ``log2(rank + 1)`` discount, precision divided by k,
averages over the users present in both frames. It is given the lists
already cut and ranked (their ``relevancy_method=None`` path), so no sort
is charged to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def pandas_precision_recall_ndcg(test: pd.DataFrame, recs: pd.DataFrame, k: int) -> dict[str, float]:
    """``precision@k``, ``recall@k`` and ``ndcg@k`` of ranked lists against test interactions.

    ``test`` has ``user``, ``item``; ``recs`` has ``user``, ``item``, ``rank``.

    Examples
    --------
    >>> test = pd.DataFrame({"user": [1, 1], "item": [5, 6]})
    >>> recs = pd.DataFrame({"user": [1, 1, 1], "item": [5, 9, 6], "rank": [1, 2, 3]})
    >>> {m: round(v, 5) for m, v in pandas_precision_recall_ndcg(test, recs, 3).items()}
    {'precision@3': 0.66667, 'recall@3': 1.0, 'ndcg@3': 0.91972}
    """
    common = np.intersect1d(test["user"].unique(), recs["user"].unique())
    true = test.loc[test["user"].isin(common), ["user", "item"]]
    pred = recs.loc[recs["user"].isin(common) & (recs["rank"] <= k), ["user", "item", "rank"]]
    n_users = len(common)

    hits = pd.merge(pred, true, on=["user", "item"], how="inner")
    actual = true.groupby("user", as_index=False).size().rename(columns={"size": "actual"})
    hit_count = hits.groupby("user", as_index=False).size().rename(columns={"size": "hit"})
    per_user = pd.merge(hit_count, actual, on="user", how="inner")

    precision = (per_user["hit"] / k).sum() / n_users
    recall = (per_user["hit"] / per_user["actual"]).sum() / n_users

    hits["dcg"] = 1.0 / np.log2(hits["rank"] + 1.0)
    dcg = hits.groupby("user", as_index=False)["dcg"].sum()
    ideal = true.copy()
    ideal["irank"] = ideal.groupby("user").cumcount() + 1
    ideal = ideal[ideal["irank"] <= k]
    ideal["idcg"] = 1.0 / np.log2(ideal["irank"] + 1.0)
    idcg = ideal.groupby("user", as_index=False)["idcg"].sum()
    both = pd.merge(idcg, dcg, on="user", how="left").fillna({"dcg": 0.0})
    ndcg = (both["dcg"] / both["idcg"]).sum() / n_users
    return {f"precision@{k}": float(precision), f"recall@{k}": float(recall), f"ndcg@{k}": float(ndcg)}


def ms_style_precision_recall_ndcg(test: pd.DataFrame, pred: pd.DataFrame, k: int) -> dict[str, float]:
    """The same three metrics the way Microsoft Recommenders' ``python_evaluation`` computes them.

    From scored predictions (``user``, ``item``, ``score``): common users by
    set intersection, top-k per user by sort + groupby head, ranks by
    cumcount, hits by merge, per-user counts by groupby + merge; NDCG merges
    the hits back with the predictions and outer-merges the test items to get
    the ideal ranking. The shared merge step is computed once for the three
    metrics (their ``lru_cache`` does the same, at the price of hashing the
    frames, which is not charged here). Binary gains, log2 discount.

    Examples
    --------
    The same numbers as :func:`pandas_precision_recall_ndcg` on lists ranked by score:

    >>> test = pd.DataFrame({"user": [1, 1, 2], "item": [5, 6, 5]})
    >>> pred = pd.DataFrame({"user": [1, 1, 1, 2], "item": [5, 9, 6, 7], "score": [0.9, 0.5, 0.2, 0.3]})
    >>> ours = ms_style_precision_recall_ndcg(test, pred, 3)
    >>> theirs = pandas_precision_recall_ndcg(test, pred.assign(rank=[1, 2, 3, 1]), 3)
    >>> all(abs(ours[m] - theirs[m]) < 1e-12 for m in theirs), round(ours["ndcg@3"], 5)
    (True, 0.45986)
    """
    common = set(test["user"]).intersection(set(pred["user"]))
    true = test[test["user"].isin(common)][["user", "item"]]
    scored = pred[pred["user"].isin(common)]
    n_users = len(common)
    top = (
        scored.sort_values(["user", "score"], ascending=[True, False])
        .groupby("user", as_index=False)
        .head(k)
        .reset_index(drop=True)
    )
    top["rank"] = top.groupby("user", sort=False).cumcount() + 1
    hit = pd.merge(top, true, on=["user", "item"])[["user", "item", "rank"]]
    hit_count = pd.merge(
        hit.groupby("user", as_index=False)["item"].count().rename(columns={"item": "hit"}),
        true.groupby("user", as_index=False)["item"].count().rename(columns={"item": "actual"}),
        on="user",
    )
    precision = (hit_count["hit"] / k).sum() / n_users
    recall = (hit_count["hit"] / hit_count["actual"]).sum() / n_users

    dcg_rows = pd.merge(hit, scored, on=["user", "item"]).merge(
        true, on=["user", "item"], how="outer", suffixes=("_left", None)
    )
    dcg_rows["rel"] = 1.0
    dcg_rows["dcg"] = dcg_rows["rel"] / np.log2(1 + dcg_rows["rank"])
    ideal = dcg_rows.sort_values("user", kind="stable")
    ideal["irank"] = ideal.groupby("user", sort=False).cumcount() + 1
    ideal["idcg"] = ideal["rel"] / np.log2(1 + ideal["irank"])
    per_user = dcg_rows.groupby("user", as_index=False, sort=False).agg({"dcg": "sum"})
    per_user = per_user.merge(
        ideal.groupby("user", as_index=False, sort=False).head(k).groupby("user", as_index=False).agg({"idcg": "sum"}),
        on="user",
    )
    ndcg = (per_user["dcg"] / per_user["idcg"]).mean()
    return {f"precision@{k}": float(precision), f"recall@{k}": float(recall), f"ndcg@{k}": float(ndcg)}
