"""A deliberately simple, loop-based implementation of the evaluator's definitions.

It exists to check :class:`recsys.evaluation.Evaluator` independently: it
shares no code with the vectorised kernels, works on external ids with
Python dicts, sets and loops, and reads like the definitions in the
:class:`~recsys.evaluation.Evaluator` docstring. It is far too slow for real
data; the tests run both on random inputs and require agreement to 1e-9.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from recsys.errors import DataError

__all__ = ["reference_evaluate"]


def _rows(frame: pd.DataFrame, *cols: str) -> list[tuple[Any, ...]]:
    data = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in cols]
    return list(zip(*data))


def _ordered_lists(recs: pd.DataFrame, test_users: set[Any]) -> dict[Any, list[Any]]:
    """Each test user's items in list order: by rank, else by score descending, ties by row."""
    by_rank = "rank" in recs.columns
    rows: dict[Any, list[tuple[float, int, Any]]] = {}
    for pos, (user, item, rank, score) in enumerate(_rows(recs, "user", "item", "rank", "score")):
        if user not in test_users:
            continue
        key = float(rank) if by_rank else -float(score)
        rows.setdefault(user, []).append((key, pos, item))
    lists: dict[Any, list[Any]] = {}
    for user, entries in rows.items():
        entries.sort()
        items = [item for _, _, item in entries]
        if len(set(items)) != len(items):
            raise DataError(f"user {user!r} has a duplicate item")
        if by_rank:
            keys = [key for key, _, _ in entries]
            if len(set(keys)) != len(keys):
                raise DataError(f"user {user!r} has two rows with the same rank")
        lists[user] = items
    return lists


def reference_evaluate(
    train: pd.DataFrame,
    test: pd.DataFrame,
    recommendations: pd.DataFrame,
    ks: Sequence[int],
    *,
    relevance_threshold: float | None = None,
    item_vectors: Mapping[Any, Sequence[float]] | None = None,
    predict: Callable[[Any, Any], float] | None = None,
) -> dict[str, Any]:
    """Every metric of the evaluator, computed with plain loops.

    Parameters
    ----------
    train, test : pandas.DataFrame
        ``user``, ``item`` (and ``rating``) columns, no duplicate pairs.
    recommendations : pandas.DataFrame
        ``user``, ``item`` and ``rank`` or ``score``.
    ks : sequence of int
    relevance_threshold : float, optional
    item_vectors : mapping, optional
        item -> feature vector; diversity then uses their cosine.
    predict : callable, optional
        ``predict(user, item) -> float`` for rmse / mae.

    Returns
    -------
    dict
        ``summary`` (name -> value), ``per_user`` (user -> name -> value),
        ``n_users_evaluated``, ``n_test_users``.

    Examples
    --------
    >>> train = pd.DataFrame({"user": [1, 1], "item": [7, 8]})
    >>> test = pd.DataFrame({"user": [1, 1], "item": [5, 6]})
    >>> recs = pd.DataFrame({"user": [1, 1, 1], "item": [5, 9, 6], "rank": [1, 2, 3]})
    >>> out = reference_evaluate(train, test, recs, [3])
    >>> round(out["summary"]["ndcg@3"], 5), out["summary"]["coverage@3"]
    (0.91972, 0.6)
    """
    train_rows = _rows(train, "user", "item", "rating")
    test_rows = _rows(test, "user", "item", "rating")

    train_users_of: dict[Any, set[Any]] = {}
    train_count: dict[Any, int] = {}
    user_train_count: dict[Any, int] = {}
    train_ratings = []
    for user, item, rating in train_rows:
        train_users_of.setdefault(item, set()).add(user)
        train_count[item] = train_count.get(item, 0) + 1
        user_train_count[user] = user_train_count.get(user, 0) + 1
        if rating is not None:
            train_ratings.append(float(rating))
    n_train = len(train_rows)
    i_train = set(train_count)

    test_users = {user for user, _, _ in test_rows}
    relevant: dict[Any, set[Any]] = {}
    for user, item, rating in test_rows:
        if relevance_threshold is None or float(rating) >= relevance_threshold:
            relevant.setdefault(user, set()).add(item)
    evaluated = sorted(
        (u for u in relevant if user_train_count.get(u, 0) > 0), key=lambda u: (str(type(u)), u)
    )
    lists = _ordered_lists(recommendations, test_users)
    if not evaluated:  # nothing to average over (the Evaluator raises DataError here)
        return {"summary": {}, "per_user": {}, "n_users_evaluated": 0, "n_test_users": len(test_users)}

    # Popularity rank for serendipity: 1 = most train interactions, equal counts share a rank.
    distinct_counts = sorted(set(train_count.values()), reverse=True)
    pop_rank = {item: distinct_counts.index(c) + 1 for item, c in train_count.items()}
    n_cat = len(i_train)

    def sim(i: Any, j: Any) -> float:
        if item_vectors is not None:
            a, b = item_vectors.get(i), item_vectors.get(j)
            if a is None or b is None:
                return 0.0
            na = math.sqrt(sum(x * x for x in a))
            nb = math.sqrt(sum(x * x for x in b))
            if na == 0 or nb == 0:
                return 0.0
            return sum(x * y for x, y in zip(a, b)) / (na * nb)
        ui, uj = train_users_of.get(i, set()), train_users_of.get(j, set())
        if not ui or not uj:
            return 0.0
        return len(ui & uj) / math.sqrt(len(ui) * len(uj))

    summary: dict[str, float] = {}
    per_user: dict[Any, dict[str, float]] = {u: {} for u in evaluated}
    for k in ks:
        acc: dict[str, list[float]] = {
            m: [] for m in ("precision", "recall", "f1", "hit_rate", "mrr", "ndcg", "map", "serendipity")
        }
        diversities = []
        slot_novelties = []
        slot_items = []
        for u in evaluated:
            top = lists.get(u, [])[:k]
            t_u = relevant[u]
            hits = 0
            first = None
            dcg = 0.0
            ap = 0.0
            ser = 0.0
            for r, item in enumerate(top, start=1):
                rel = item in t_u
                if rel:
                    hits += 1
                    if first is None:
                        first = r
                    dcg += 1.0 / math.log2(r + 1)
                    ap += hits / r
                    p_r = (n_cat + 1 - r) / n_cat
                    pu = (n_cat + 1 - pop_rank[item]) / n_cat if item in pop_rank else 0.0
                    ser += max(p_r - pu, 0.0)
                nov = -math.log2(max(train_count.get(item, 0), 1) / n_train)
                slot_novelties.append(nov)
                slot_items.append(item)
            idcg = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(t_u), k) + 1))
            precision, recall = hits / k, hits / len(t_u)
            values = {
                "precision": precision,
                "recall": recall,
                "f1": 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0,
                "hit_rate": 1.0 if hits > 0 else 0.0,
                "mrr": 1.0 / first if first else 0.0,
                "ndcg": dcg / idcg,
                "map": ap / min(len(t_u), k),
                "serendipity": ser / len(top) if top else 0.0,
            }
            for name, v in values.items():
                acc[name].append(v)
                per_user[u][f"{name}@{k}"] = v
            if top:
                per_user[u][f"novelty@{k}"] = sum(slot_novelties[-len(top):]) / len(top)
            else:
                per_user[u][f"novelty@{k}"] = math.nan
            if len(top) >= 2:
                pairs = list(itertools.combinations(top, 2))
                d = 1.0 - sum(sim(i, j) for i, j in pairs) / len(pairs)
                diversities.append(d)
                per_user[u][f"diversity@{k}"] = d
            else:
                per_user[u][f"diversity@{k}"] = math.nan
        for name, vals in acc.items():
            summary[f"{name}@{k}"] = sum(vals) / len(vals)
        recommended = set(slot_items)
        summary[f"coverage@{k}"] = len(recommended) / len(i_train | recommended)
        entropy = 0.0
        counts = {i: slot_items.count(i) for i in recommended}
        for c in counts.values():
            p = c / len(slot_items)
            entropy -= p * math.log2(p)
        summary[f"distributional_coverage@{k}"] = entropy
        summary[f"novelty@{k}"] = sum(slot_novelties) / len(slot_novelties) if slot_novelties else math.nan
        summary[f"diversity@{k}"] = sum(diversities) / len(diversities) if diversities else math.nan
        with_list = [u for u in test_users if lists.get(u)]
        summary[f"user_coverage@{k}"] = len(with_list) / len(test_users)
        catalogue = sorted(counts.get(i, 0) for i in i_train | recommended)
        n = len(catalogue)
        total = sum(catalogue)
        if total:
            summary[f"gini@{k}"] = sum((2 * j - n - 1) * c for j, c in enumerate(catalogue, start=1)) / (n * total)
        else:
            summary[f"gini@{k}"] = math.nan

    if predict is not None:
        lo, hi = min(train_ratings), max(train_ratings)
        sq, ab = [], []
        for user, item, rating in test_rows:
            if user_train_count.get(user, 0) > 0 and train_count.get(item, 0) > 0:
                pred = min(max(float(predict(user, item)), lo), hi)
                sq.append((pred - float(rating)) ** 2)
                ab.append(abs(pred - float(rating)))
        if sq:  # no usable test rating: rmse / mae are not reported
            summary["rmse"] = math.sqrt(sum(sq) / len(sq))
            summary["mae"] = sum(ab) / len(ab)

    return {
        "summary": summary,
        "per_user": per_user,
        "n_users_evaluated": len(evaluated),
        "n_test_users": len(test_users),
    }
