"""Tiny deterministic data with a known structure, for contract tests and docstrings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data import Interactions

_WORDS = {0: ["space", "alien", "robot", "future"], 1: ["love", "wedding", "paris", "romance"]}


def tiny_frames(n_users: int = 20, n_items: int = 30, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Interactions, item features and user features of a two-group "checkerboard".

    Users and items fall in two groups (even / odd index). Each user rates
    most items of their own group highly (4-5) and a few of the other group
    low (1-2), so a model that learns preferences ranks own-group items first.
    Two extra catalogue items (ids 1000 and 1001) have features but no
    interactions. Timestamps increase along each user's history.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        g = u % 2
        own = [i for i in range(n_items) if i % 2 == g]
        other = [i for i in range(n_items) if i % 2 != g]
        liked = rng.choice(own, size=int(len(own) * 0.6), replace=False)
        disliked = rng.choice(other, size=2, replace=False)
        for j, i in enumerate(sorted(liked.tolist() + disliked.tolist())):
            rating = float(rng.integers(4, 6)) if i % 2 == g else float(rng.integers(1, 3))
            rows.append((u, i, rating, 1_000_000 + 1000 * u + 10 * j))
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    item_ids = list(range(n_items)) + [1000, 1001]
    groups = [i % 2 for i in range(n_items)] + [0, 1]
    items = pd.DataFrame(
        {
            "item": item_ids,
            "title": [f"{_WORDS[g][i % 4]} {_WORDS[g][(i + 1) % 4]} story {i}" for i, g in zip(item_ids, groups)],
            "genres": [["scifi"] if g == 0 else ["romance", "drama"] for g in groups],
            "year": [1990 + i % 20 for i in item_ids],
        }
    )
    users = pd.DataFrame({"user": range(n_users), "gender": ["F" if u % 3 else "M" for u in range(n_users)], "age": [20 + u for u in range(n_users)]})
    return df, items, users


def tiny_interactions(n_users: int = 20, n_items: int = 30, *, seed: int = 0) -> Interactions:
    """:func:`tiny_frames` as :class:`Interactions` with ratings, timestamps and features.

    Examples
    --------
    >>> tiny_interactions()
    Interactions(20 users x 32 items, 220 interactions, density 0.344, ratings, timestamps, user features, item features)
    """
    df, items, users = tiny_frames(n_users, n_items, seed=seed)
    return Interactions.from_frame(
        df, rating_col="rating", timestamp_col="timestamp", item_features=items, user_features=users
    )
