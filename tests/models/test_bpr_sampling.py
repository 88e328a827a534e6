"""BPR fit's sampling and update loop: the seen-check and the epoch samples against plain loops, and the
fit against the straightforward mini-batch loop (separate user / item tables, three scatter-adds), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import recsys.models._bpr_torch as bpr_torch
from recsys._utils.threads import torch_threads
from recsys.models._bpr_torch import epoch_triples, fit_bpr, unseen_mask


def _random_csr(
    rng: np.random.Generator, n_rows: int, n_cols: int, density: float, cold: int | None = None
) -> sp.csr_matrix:
    dense = rng.random((n_rows, n_cols)) < density
    dense[rng.integers(0, n_rows, 3)] = False  # some empty rows
    if cold is not None:
        dense[:, cold] = False
    m = sp.csr_matrix(dense.astype(np.float32))
    m.sort_indices()
    return m


def test_unseen_mask_by_hand() -> None:
    # rows {1, 3}, {}, {0, 2}: entries 0, 1 in row 0, entries 2, 3 in row 2
    indptr, indices = np.array([0, 2, 2, 4]), np.array([1, 3, 0, 2])
    assert unseen_mask(indptr, indices, np.array([3, 0, 2, 1])).tolist() == [False, True, False, True]


@pytest.mark.parametrize(("dense", "chunk"), [(1 << 20, 0), (25 * 16, 0), (25 * 17, 0), (0, 1), (0, 7), (0, 1 << 16)])
def test_unseen_mask_matches_a_loop(monkeypatch: pytest.MonkeyPatch, dense: int, chunk: int) -> None:
    # dense masks of all rows, of 16 and 17 rows at a time; sorted-key searches in chunks that split rows, and one chunk
    monkeypatch.setattr(bpr_torch, "_SEEN_DENSE", dense)
    monkeypatch.setattr(bpr_torch, "_SEEN_CHUNK", chunk)
    rng = np.random.default_rng(0)
    csr = _random_csr(rng, 40, 25, 0.3)
    cand = rng.integers(0, 25, csr.nnz)
    want = []
    for r in range(csr.shape[0]):
        row = set(csr.indices[csr.indptr[r] : csr.indptr[r + 1]].tolist())
        want += [int(c) not in row for c in cand[csr.indptr[r] : csr.indptr[r + 1]]]
    got = unseen_mask(csr.indptr, csr.indices, cand)
    assert got.tolist() == want
    assert 0 < got.sum() < csr.nnz  # both outcomes occur


def test_unseen_mask_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="candidates"):
        unseen_mask(np.array([0, 2]), np.array([0, 1]), np.array([1]))


def test_epoch_triples_match_a_loop() -> None:
    rng = np.random.default_rng(1)
    csr = _random_csr(rng, 30, 20, 0.4)
    rows = np.repeat(np.arange(30, dtype=np.int32), np.diff(csr.indptr))
    warm = torch.tensor([0, 2, 3, 5, 7, 11, 13, 17, 19], dtype=torch.int32)
    got = epoch_triples(csr.indptr, csr.indices.astype(np.int32), rows, warm, torch.Generator().manual_seed(5))
    # the same draws: a permutation of the entries, then one warm item per position
    gen = torch.Generator().manual_seed(5)
    order = torch.randperm(csr.nnz, generator=gen).tolist()
    neg = warm[torch.randint(0, len(warm), (csr.nnz,), generator=gen)].tolist()
    dense = csr.toarray() > 0
    want = [(rows[s], csr.indices[s], j) for s, j in zip(order, neg) if not dense[rows[s], j]]
    assert got.dtype == np.int32 and got.shape == (3, len(want))
    assert [tuple(int(v) for v in t) for t in got.T] == want
    assert len(want) < csr.nnz  # some negatives were seen and dropped


def _reference_fit(
    csr: sp.csr_matrix, k: int, lr0: float, reg: float, epochs: int, batch: int, std: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward mini-batch loop: separate user and item tables, a global seen-check, three index_adds."""
    n_users, n_items = csr.shape
    gen = torch.Generator().manual_seed(seed)
    U = torch.zeros(n_users, k + 1)
    U[:, :k] = torch.randn(n_users, k, generator=gen) * std
    U[:, k] = 1.0
    V = torch.zeros(n_items, k + 1)
    V[:, :k] = torch.randn(n_items, k, generator=gen) * std
    counts = np.diff(csr.indptr)
    users = torch.from_numpy(np.repeat(np.arange(n_users, dtype=np.int64), counts))
    items = torch.from_numpy(csr.indices.astype(np.int64))
    keys = users * n_items + items
    warm = torch.from_numpy(np.flatnonzero(np.bincount(csr.indices, minlength=n_items) > 0).astype(np.int64))
    nnz = len(items)
    free = torch.ones(k + 1)
    free[k] = 0.0
    for epoch in range(epochs):
        lr = lr0 * (1.0 - epoch / epochs)
        order = torch.randperm(nnz, generator=gen)
        neg = warm[torch.randint(0, len(warm), (nnz,), generator=gen)]
        u, i = users[order], items[order]
        q = u * n_items + neg
        ok = keys[torch.searchsorted(keys, q).clamp_max_(nnz - 1)] != q
        u, i, j = u[ok], i[ok], neg[ok]
        decay = lr * reg
        for s in range(0, len(u), batch):
            ub, ib, jb = u[s : s + batch], i[s : s + batch], j[s : s + batch]
            Uu, Vi, Vj = U[ub], V[ib], V[jb]
            d = Vi - Vj
            z = torch.sigmoid(-(Uu * d).sum(1)).mul_(lr).unsqueeze_(1)
            U.index_add_(0, ub, d.mul_(z).sub_(Uu, alpha=decay).mul_(free))
            zu = Uu.mul_(z)
            V.index_add_(0, ib, zu.sub(Vi, alpha=decay))
            V.index_add_(0, jb, zu.neg_().sub_(Vj, alpha=decay))
    U[torch.from_numpy(counts == 0), :k] = 0.0
    cold = torch.ones(n_items, dtype=torch.bool)
    cold[warm] = False
    V[cold] = 0.0
    return U.numpy(), V.numpy()


@pytest.mark.parametrize("batch", [7, 64, 1000])
def test_fit_equals_the_straightforward_loop_bit_for_bit(batch: int) -> None:
    """Repeated users and items within a batch (batch 64 and 1000) add in the same order as three index_adds."""
    rng = np.random.default_rng(2)
    csr = _random_csr(rng, 60, 35, 0.25, cold=34)
    with torch_threads(1):
        want = _reference_fit(csr, k=6, lr0=0.2, reg=0.05, epochs=3, batch=batch, std=0.1, seed=9)
        got = fit_bpr(
            csr, factors=6, learning_rate=0.2, regularization=0.05, epochs=3, batch_size=batch, init_std=0.1, seed=9
        )
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert not np.array_equal(got[1][:, :6], np.zeros_like(got[1][:, :6]))  # it moved
    assert np.all(got[1][34] == 0)
