"""Leak-free behaviour histories and negative sampling, against hand-built cases and brute force."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.datasets import synthetic
from recsys.models import DIN
from recsys.models.deep import _base
from recsys.models.deep._samples import HistoryStore, NegativeSampler, base_rows

# user "A": two rows in second 10, a negative at 20, two rows in second 30, one at 40; user "B" elsewhere
ROWS = [
    ("A", "i1", 10, 5.0), ("A", "i2", 10, 4.0), ("A", "i3", 20, 2.0), ("A", "i5", 30, 5.0),
    ("A", "i4", 30, 5.0), ("A", "i6", 40, 4.0), ("B", "j1", 5, 5.0), ("B", "i1", 35, 5.0),
]
EXPECTED = {  # positives (rating >= 4) strictly earlier, ordered by (time, item id)
    ("A", "i1"): [], ("A", "i2"): [], ("A", "i3"): ["i1", "i2"], ("A", "i5"): ["i1", "i2"],
    ("A", "i4"): ["i1", "i2"], ("A", "i6"): ["i1", "i2", "i4", "i5"], ("B", "j1"): [], ("B", "i1"): ["j1"],
}


def _hand_data() -> Interactions:
    df = pd.DataFrame(ROWS, columns=["user", "item", "timestamp", "rating"])
    return Interactions.from_frame(df, rating_col="rating", timestamp_col="timestamp")


def _decode(data: Interactions, store: HistoryStore, end: np.ndarray, length: np.ndarray) -> list[list[Any]]:
    return [data.items.to_ids(store.items[e - n : e]).tolist() for e, n in zip(end, length)]


def test_hand_built_histories_exclude_the_row_itself_and_same_second_rows() -> None:
    d = _hand_data()
    assert d.ratings is not None
    store = HistoryStore.from_interactions(d, d.ratings >= 4)
    rows = base_rows(d, (d.ratings >= 4).astype(np.float32), store, max_len=50)
    got = _decode(d, store, rows.end, rows.length)
    for (u, i, _, _), hist in zip(ROWS, got):
        assert hist == EXPECTED[(u, i)], f"history of ({u}, {i})"


def test_history_keeps_the_most_recent_entries() -> None:
    d = _hand_data()
    assert d.ratings is not None
    store = HistoryStore.from_interactions(d, d.ratings >= 4)
    rows = base_rows(d, np.zeros(d.nnz, np.float32), store, max_len=2)
    got = dict(zip([(u, i) for u, i, _, _ in ROWS], _decode(d, store, rows.end, rows.length)))
    assert got[("A", "i6")] == ["i4", "i5"] and got[("A", "i3")] == ["i1", "i2"]


def test_din_trains_on_exactly_these_histories(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows DIN's trainer receives carry the hand-built histories (no validation split here)."""
    captured: dict[str, Any] = {}
    real = _base.Trainer

    class Capture(real):  # type: ignore[misc,valid-type]
        def fit(self, module: Any, source: Any, valid: Any = None) -> Any:
            captured["rows"] = source.epoch(0)
            return super().fit(module, source, valid)

    monkeypatch.setattr(_base, "Trainer", Capture)
    d = _hand_data()
    model = DIN(label_threshold=4, epochs=1, hidden_units=[4], attention_units=[4], validation_fraction=0.0,
                num_threads=1, show_progress=False).fit(d)
    rows = captured["rows"]
    hist = [d.items.to_ids(np.asarray(model.history_items_)[e - n : e]).tolist() for e, n in zip(rows["end"], rows["length"])]
    pairs = list(zip(d.users.to_ids(rows["user"]), d.items.to_ids(rows["item"])))
    for pair, h in zip(pairs, hist):
        assert h == EXPECTED[pair], pair
    np.testing.assert_array_equal(rows["label"], [1, 1, 0, 1, 1, 1, 1, 1])


def test_lookup_matches_brute_force_on_data_full_of_ties() -> None:
    d0 = synthetic(n_users=40, n_items=60, n_interactions=1500, seed=5)
    f = d0.to_frame()
    f["timestamp"] = f["timestamp"] // 200_000  # many rows of a user share a "second"
    d = Interactions.from_frame(f, rating_col="rating", timestamp_col="timestamp")
    assert d.ratings is not None and d.timestamps is not None
    pos = d.ratings >= 4
    store = HistoryStore.from_interactions(d, pos)
    end, length = store.lookup(d.user_index, d.timestamps, max_len=7)
    key = d.item_sort_rank
    ties = 0
    for r in range(d.nnz):
        u, t = d.user_index[r], d.timestamps[r]
        mask = (d.user_index == u) & pos & (d.timestamps < t)
        ties += int(((d.user_index == u) & (d.timestamps == t)).sum() > 1)
        idx = np.flatnonzero(mask)
        idx = idx[np.lexsort((key[d.item_index[idx]], d.timestamps[idx]))][-7:]
        np.testing.assert_array_equal(store.items[end[r] - length[r] : end[r]], d.item_index[idx])
        assert (store.timestamps[end[r] - length[r] : end[r]] < t).all()
    assert ties > 100  # the data really has same-second rows


def test_lookup_without_time_is_the_whole_history_and_with_unseen_times_works() -> None:
    store = HistoryStore(np.array([0, 3, 3]), np.array([7, 8, 9], np.int32), np.array([10, 20, 20]))
    end, length = store.lookup(np.array([0, 1]), None, max_len=50)
    np.testing.assert_array_equal(end, [3, 3])
    np.testing.assert_array_equal(length, [3, 0])
    end, length = store.lookup(np.array([0, 0, 1]), np.array([15.5, 1e9, 30]), max_len=50)
    np.testing.assert_array_equal(length, [1, 3, 0])


def _sampler_data() -> Interactions:
    return synthetic(n_users=50, n_items=80, n_interactions=1200, seed=1)


def test_negatives_are_never_seen_items_and_never_cold_items() -> None:
    d = _sampler_data()
    s = NegativeSampler(d, "uniform")
    users = np.repeat(np.arange(d.n_users), 40)
    items, kept = s.sample(users, np.random.default_rng(0))
    seen = d.matrix().toarray() > 0
    assert kept.mean() > 0.99
    assert not seen[users[kept], items[kept]].any()
    assert (d.item_counts[items] > 0).all()


def test_popularity_sampling_follows_count_to_the_075() -> None:
    d = synthetic(n_users=2000, n_items=50, n_interactions=4000, seed=2)
    s = NegativeSampler(d, "popularity", rounds=0)
    items = s._draw(400_000, np.random.default_rng(0))
    freq = np.bincount(items, minlength=d.n_items) / len(items)
    w = d.item_counts.astype(float) ** 0.75
    np.testing.assert_allclose(freq, w / w.sum(), atol=3e-3)


def test_implicit_negatives_are_resampled_every_epoch_with_the_configured_ratio() -> None:
    d = _sampler_data()
    rows = base_rows(d, np.ones(d.nnz, np.float32), None, 0)
    src = _base._Source(rows, NegativeSampler(d, "uniform"), 3, seed=0, names=("user", "item"))
    e0, e1, again = src.epoch(0), src.epoch(1), src.epoch(0)
    n_neg = int((e0["label"] == 0).sum())
    assert d.nnz * 3 * 0.99 <= n_neg <= d.nnz * 3 and int((e0["label"] == 1).sum()) == d.nnz
    assert not np.array_equal(e0["item"], e1["item"])  # fresh negatives
    np.testing.assert_array_equal(e0["item"], again["item"])  # but seeded
