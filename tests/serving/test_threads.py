"""Thread safety: many threads calling one loaded (memory-mapped) model get exactly the sequential answers.

Runs over every model exported from recsys.models (through the contract cases,
so models added later are covered), on a freshly loaded artifact with no
warm-up (lazy caches such as pandas' hash tables are built under contention).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys import load_model
from recsys.datasets import synthetic
from recsys.errors import NotSupportedError
from recsys.models.base import Recommender
from recsys.testing import CONTRACT_CASES, tiny_interactions

N_THREADS = 8


def _calls(model: Recommender, data: Any, rng: random.Random) -> list[tuple[str, Callable[[], Any]]]:
    """A mixed workload: single users (with options), batches, histories and similar items."""
    users = list(data.users.ids)[:40]
    items = list(data.items.ids)
    out: list[tuple[str, Callable[[], Any]]] = []
    for i, u in enumerate(users):
        out.append((f"one {u}", lambda u=u: model.recommend_one(u, k=7)))
        out.append((f"one-all {u}", lambda u=u: model.recommend_one(u, k=7, exclude_seen=False)))
        cand = rng.sample(items, max(2, len(items) // 4))
        out.append((f"one-cand {u}", lambda u=u, c=cand: model.recommend_one(u, k=5, items=c)))
        if i % 5 == 0:
            block = users[i : i + 6]
            out.append((f"batch {i}", lambda b=block: model.recommend(b, k=5)))
    out.append(("unknown", lambda: model.recommend_one("nobody-at-all", k=4, on_unknown="popular")))
    for j in range(0, min(len(items), 40), 4):
        hist = items[j : j + 4]
        out.append((f"hist {j}", lambda h=hist: _or_none(lambda: model.recommend_history(h, k=6))))
        out.append((f"sim {j}", lambda h=hist: _or_none(lambda: model.similar_items(h[:1], k=6))))
    return out


def _or_none(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except NotSupportedError:
        return None


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, pd.DataFrame):
        return bool(a.equals(b))
    return a[0].tolist() == b[0].tolist() and np.array_equal(a[1], b[1])


def _hammer(path: Path, data: Any) -> None:
    sequential_model = load_model(path)
    calls = _calls(sequential_model, data, random.Random(0))
    expected = {name: fn() for name, fn in calls}

    model = load_model(path)  # fresh: nothing warmed up
    calls = _calls(model, data, random.Random(0))
    work = list(calls)
    random.Random(1).shuffle(work)
    barrier = threading.Barrier(N_THREADS)
    mismatches: list[str] = []

    def run(chunk: list[tuple[str, Callable[[], Any]]]) -> None:
        barrier.wait()
        for name, fn in chunk:
            if not _same(fn(), expected[name]):
                mismatches.append(name)

    with ThreadPoolExecutor(N_THREADS) as pool:
        for f in [pool.submit(run, work[t::N_THREADS]) for t in range(N_THREADS)]:
            f.result()
    assert not mismatches, f"{len(mismatches)} concurrent answers differ, e.g. {mismatches[:5]}"


@pytest.mark.parametrize("name", sorted(CONTRACT_CASES))
def test_concurrent_calls_equal_sequential(name: str, tmp_path: Path) -> None:
    case = CONTRACT_CASES[name]
    data = case.data()
    path = case.factory().fit(data).save(tmp_path / "m")
    _hammer(path, data)


@pytest.mark.parametrize("name", ["ItemKNN", "EASE", "ContentBased"])
def test_concurrent_calls_larger_catalogue(name: str, tmp_path: Path) -> None:
    # bigger than the contract's tiny data: BLAS products and candidate paths of realistic shape
    case = CONTRACT_CASES[name]
    if case.data is not tiny_interactions:
        pytest.skip("the case needs its own data")
    data = synthetic(n_users=80, n_items=500, n_interactions=4000, seed=3)
    path = case.factory().fit(data).save(tmp_path / "m")
    _hammer(path, data)
