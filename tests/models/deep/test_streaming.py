"""Streamed training rows: an epoch is index arrays only, and the batches gathered from it are the
rows (and the order) that materialising the whole epoch gave."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from recsys import Interactions
from recsys.datasets import synthetic
from recsys.models.deep import _base
from recsys.models.deep._samples import EpochRows, HistoryStore, NegativeSampler, base_rows
from recsys.models.deep.trainer import TrainConfig, Trainer

NAMES = ("user", "item", "end", "length")


def _data() -> Interactions:
    d0 = synthetic(n_users=30, n_items=50, n_interactions=900, seed=3)
    f = d0.to_frame()
    f["timestamp"] = f["timestamp"] // 500_000  # same-second rows, so histories stop short of them
    return Interactions.from_frame(f, rating_col="rating", timestamp_col="timestamp")


def _reference(d: Interactions, labels: np.ndarray, max_len: int, sampler: NegativeSampler | None, ratio: int,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The whole epoch as the former code built it: positives, then per positive ``ratio`` negatives
    (same user and history), concatenated; histories by brute force over the raw rows."""
    assert d.timestamps is not None
    pos = labels > 0.5
    store_items = []
    key = d.item_sort_rank
    indptr = [0]
    for u in range(d.n_users):
        idx = np.flatnonzero((d.user_index == u) & pos)
        idx = idx[np.lexsort((key[d.item_index[idx]], d.timestamps[idx]))]
        store_items.append(d.item_index[idx])
        indptr.append(indptr[-1] + len(idx))
    end = np.zeros(d.nnz, np.int64)
    length = np.zeros(d.nnz, np.int64)
    for r in range(d.nnz):
        u, t = d.user_index[r], d.timestamps[r]
        before = int(((d.user_index == u) & pos & (d.timestamps < t)).sum())
        end[r] = indptr[u] + before
        length[r] = min(before, max_len)
    cols: dict[str, Any] = {
        "user": d.user_index.astype(np.int64), "item": d.item_index.astype(np.int64), "end": end, "length": length,
        "label": labels.astype(np.float32),
    }
    if sampler is not None:
        rep = np.repeat(np.arange(d.nnz), ratio)
        items, kept = sampler.sample(cols["user"][rep], rng)
        neg = {k: v[rep[kept]] for k, v in cols.items()}
        neg["item"] = items[kept]
        neg["label"] = np.zeros(int(kept.sum()), np.float32)
        cols = {k: np.concatenate([cols[k], neg[k]]) for k in cols}
    return cols


def _epoch(d: Interactions, labels: np.ndarray, max_len: int, sampler: NegativeSampler | None, ratio: int,
           seed: int, epoch: int) -> EpochRows:
    store = HistoryStore.from_interactions(d, labels > 0.5)
    src = _base._Source(base_rows(d, labels, store, max_len), sampler, ratio, seed, NAMES)
    return src.epoch(epoch)


@pytest.mark.parametrize("implicit", [False, True])
def test_gathered_batches_equal_the_materialised_epoch(implicit: bool) -> None:
    d = _data()
    assert d.ratings is not None
    labels = np.ones(d.nnz, np.float32) if implicit else (d.ratings >= 4).astype(np.float32)
    sampler = NegativeSampler(d, "popularity") if implicit else None
    ratio = 3 if implicit else 0
    rows = _epoch(d, labels, 4, sampler, ratio, seed=5, epoch=2)
    want = _reference(d, labels, 4, sampler, ratio, np.random.default_rng([5, 2, 1]))
    assert len(rows) == len(want["label"]) >= 0.99 * d.nnz * (1 + ratio)
    assert int(d.to_frame().duplicated(["user", "timestamp"]).sum()) > 50  # same-second rows of a user
    assert (want["length"] > 0).any() and (want["length"] == 4).any()  # histories and the cap both occur
    perm = np.random.default_rng(0).permutation(len(rows))
    for sel in (perm[:37], perm, np.array([len(rows) - 1, 0, 0])):
        got = rows.gather(sel)
        assert set(got) == set(want)
        for k, v in want.items():
            assert got[k].dtype == v.dtype, k
            np.testing.assert_array_equal(got[k], v[sel], err_msg=k)


def test_an_epoch_holds_only_small_integer_index_arrays() -> None:
    d = _data()
    rows = _epoch(d, np.ones(d.nnz, np.float32), 4, NegativeSampler(d, "uniform"), 4, seed=0, epoch=0)
    arrays = {f"base.{k}": v for k, v in vars(rows.base).items() if isinstance(v, np.ndarray)}
    arrays.update(neg_parent=rows.neg_parent, neg_items=rows.neg_items)
    assert len(arrays) == 7  # users, items, labels, end, length; the negatives' parent row and item
    for name, a in arrays.items():
        assert a.ndim == 1 and a.dtype.kind == "i" and a.dtype.itemsize <= 4, (name, a.dtype, a.shape)
    assert rows.base.prior is None
    n_rows = len(rows)
    assert n_rows == d.nnz + len(rows.neg_parent) and len(rows.neg_parent) > 3.9 * d.nnz
    total = sum(a.nbytes for a in arrays.values())
    assert total <= 4 * 4 * d.nnz + d.nnz + 8 * (n_rows - d.nnz)  # 17 bytes per positive, 8 per negative


class _Record(torch.nn.Module):
    """Logistic regression on the user id that records every training batch it is given."""

    def __init__(self, n_users: int) -> None:
        super().__init__()
        self.w = torch.nn.Embedding(n_users, 1)
        self.seen: list[dict[str, np.ndarray]] = []

    def forward(self, user: torch.Tensor, item: torch.Tensor, end: torch.Tensor, length: torch.Tensor) -> Any:
        if self.training:
            self.seen.append({"user": user.numpy().copy(), "item": item.numpy().copy(),
                              "end": end.numpy().copy(), "length": length.numpy().copy()})
        return self.w(user).squeeze(-1), torch.zeros(())


def test_trainer_feeds_the_batches_of_the_former_shuffled_epoch() -> None:
    """Batch k of epoch e holds rows permutation(n)[k*B:(k+1)*B] of the epoch (permutation seeded by
    (seed, e, 7)): the order the former whole-epoch shuffle gave, so fits are unchanged."""
    d = _data()
    labels = np.ones(d.nnz, np.float32)
    sampler = NegativeSampler(d, "uniform")
    store = HistoryStore.from_interactions(d, labels > 0.5)
    src = _base._Source(base_rows(d, labels, store, 4), sampler, 2, 9, NAMES)
    module = _Record(d.n_users)
    cfg = TrainConfig(max_epochs=2, batch_size=100, seed=9, device="cpu", num_threads=1, show_progress=False)
    Trainer(cfg).fit(module, src)
    i = 0
    for epoch in range(2):
        want = _reference(d, labels, 4, sampler, 2, np.random.default_rng([9, epoch, 1]))
        perm = np.random.default_rng([9, epoch, 7]).permutation(len(want["user"]))
        for s in range(0, len(perm), 100):
            for k in NAMES:
                np.testing.assert_array_equal(module.seen[i][k], want[k][perm[s : s + 100]], err_msg=f"{epoch} {s} {k}")
            i += 1
    assert i == len(module.seen)


def test_candidate_rows_keep_float_priors_and_labels() -> None:
    """Ranker rows (a retriever's candidates) carry the retriever's score; labels stay exact."""
    from recsys.models.deep._samples import Rows, sample_negatives

    users = np.array([0, 1, 2])
    items = np.array([3, 4, 5])
    rows = Rows(users, items, np.array([1.0, 0.0, 1.0], np.float32), np.zeros(3), np.zeros(3),
                prior=np.array([0.5, -1.0, 2.0], np.float32))
    e = sample_negatives(rows, None, 0, np.random.default_rng(0), ("user", "item", "prior"))
    got = e.gather(np.array([2, 1]))
    np.testing.assert_array_equal(got["prior"], [2.0, -1.0])
    np.testing.assert_array_equal(got["label"], [1.0, 0.0])
    soft = Rows(users, items, np.array([0.25, 0.0, 1.0]), np.zeros(3), np.zeros(3))
    assert soft.labels.dtype == np.float32  # non-0/1 labels are not rounded into int8
    np.testing.assert_array_equal(sample_negatives(soft, None, 0, np.random.default_rng(0), ("user",)).gather(np.arange(3))["label"],
                                  [0.25, 0.0, 1.0])


def test_negative_sampling_in_chunks_draws_the_same_negatives(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampler's membership test runs in chunks to bound its temporaries; the draws do not change."""
    from recsys.models.deep import _samples

    d = _data()
    users = np.repeat(np.arange(d.n_users, dtype=np.int32), 40)
    sampler = NegativeSampler(d, "uniform")
    items, kept = sampler.sample(users, np.random.default_rng(4))
    monkeypatch.setattr(_samples, "_CHUNK", 7)
    items7, kept7 = sampler.sample(users, np.random.default_rng(4))
    np.testing.assert_array_equal(items7, items)
    np.testing.assert_array_equal(kept7, kept)
    seen = d.matrix().toarray() > 0
    assert kept.mean() > 0.95 and not seen[users[kept], items[kept]].any()
