"""``topk`` and ``kth_largest`` against a full sort of every row (an independent reference)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys._utils.topk import kth_largest, topk


def reference(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    cols = np.full((n_rows, kk), -1, dtype=np.int64)
    vals = np.full((n_rows, kk), -np.inf, dtype=np.float32)
    for r in range(n_rows):
        order = sorted((c for c in range(n_cols) if scores[r, c] > -np.inf), key=lambda c: (-scores[r, c], c))[:kk]
        cols[r, : len(order)] = order
        vals[r, : len(order)] = scores[r, order]
    return cols, vals


def matrices(rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for n_cols in (1, 7, 40, 130, 1000):
        x = rng.random((6, n_cols)).astype(np.float32)
        out.append(x)
        out.append(rng.integers(0, 3, (6, n_cols)).astype(np.float32))  # many ties
        y = x.copy()
        y[rng.random(y.shape) < 0.8] = -np.inf
        y[0] = -np.inf  # a row with nothing to return
        out.append(y)
        out.append(np.sort(x, axis=1))  # ascending rows: the strided sample holds the row's smallest values
        out.append(np.sort(x, axis=1)[:, ::-1].copy())
        z = np.zeros((6, n_cols), np.float32)
        z[:, -1] = 1.0  # one positive per row and zeros tied everywhere else
        out.append(z)
    return out


@pytest.mark.parametrize("k", [1, 3, 10, 60])
def test_topk_equals_a_full_sort_with_ties_to_the_lower_column(k: int) -> None:
    for scores in matrices(np.random.default_rng(k)):
        cols, vals = topk(scores, k)
        ref_cols, ref_vals = reference(scores, k)
        np.testing.assert_array_equal(cols, ref_cols)
        np.testing.assert_array_equal(vals, ref_vals)


def test_topk_of_a_non_contiguous_view() -> None:
    scores = np.random.default_rng(0).random((8, 600)).astype(np.float32)
    view = scores[::2, ::3]
    np.testing.assert_array_equal(topk(view, 5)[0], reference(np.ascontiguousarray(view), 5)[0])


@pytest.mark.parametrize("k", [1, 10, 20])
def test_topk_of_wide_sparse_rows(k: int) -> None:
    # rows wide enough for the chunk-maxima bound (with a remainder of one-column chunks): mostly zeros
    # like sparse scores, the largest entries adjacent, in the remainder, tied, or nothing but -inf
    rng = np.random.default_rng(k)
    n_cols = 3_001 + 37 * k
    x = np.zeros((8, n_cols), np.float32)
    hit = rng.random(x.shape) < 0.03
    x[hit] = rng.integers(1, 5, hit.sum())  # few distinct values: ties among the positives too
    x[1, 100 : 100 + 3 * k] = 9.0  # the top entries in adjacent columns (one chunk-row apart at most)
    x[2, -5:] = 7.0  # in the remainder
    x[3] = 0.0  # all tied
    x[4] = -np.inf
    x[5, rng.random(n_cols) < 0.5] = -np.inf
    x[6, :k] = -1.0  # negatives and zeros only
    x[6, k:] = -2.0
    cols, vals = topk(x, k)
    ref_cols, ref_vals = reference(x, k)
    np.testing.assert_array_equal(cols, ref_cols)
    np.testing.assert_array_equal(vals, ref_vals)


@pytest.mark.parametrize("n_cols", [5, 60, 900, 5_000])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_kth_largest_is_the_kth_of_the_sorted_row(n_cols: int, k: int) -> None:
    """Each row's k-th largest entry (sorted rows as the reference), narrow and wide rows, rows of ties
    (zeros), rows with the largest values side by side and rows with -inf entries included."""
    rng = np.random.default_rng(n_cols * 31 + k)
    s = rng.standard_normal((6, n_cols)).astype(np.float32)
    s[1] = 0.0
    s[2, : n_cols // 2] = 0.0
    s[3] = np.sort(s[3])  # the largest entries in adjacent columns
    s[4, rng.integers(0, n_cols, n_cols // 3)] = -np.inf
    # fewer than k entries: no k-th, -inf
    exact = -np.sort(-s, axis=1)[:, k - 1] if k <= n_cols else np.full(6, -np.inf, dtype=np.float32)
    np.testing.assert_array_equal(kth_largest(s, k), exact)
    # positive_only: exact where the k-th is positive, some value <= 0 elsewhere
    pos = kth_largest(s, k, positive_only=True)
    np.testing.assert_array_equal(pos[exact > 0], exact[exact > 0])
    assert (pos[~(exact > 0)] <= 0).all()
    assert (kth_largest(s[:, :2], 3) == -np.inf).all()
