"""Tie-aware, tolerance-aware comparison of rankings, for tests of recommenders.

Two computations of the same scores (a model and an independent reference, a
batch and a single query, BLAS on two machines) agree only to within float
error, so two items whose scores are mathematically equal may come out in
either order, and an item tied with the k-th one may or may not make the cut.
Comparing item lists exactly then fails on one machine and passes on another.
These helpers compare what is actually guaranteed:

* scores agree position by position within ``rtol`` / ``atol``;
* items whose scores tie within the tolerance form a group compared as a set;
* at the cut (the group of the last position, when the list is a top-k of a
  longer ranking) the items may differ, as long as they are distinct and (with
  a full reference) their reference scores tie with the cut.

Everything that is not a tie is still compared exactly: a wrong item, a wrong
score or a misordered pair of clearly different scores fails.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "assert_rankings_equal",
    "assert_recommendations_equal",
    "assert_recommendations_match_scores",
    "assert_top_k",
    "tie_groups",
]


def _close(a: NDArray[np.float64], b: NDArray[np.float64], rtol: float, atol: float) -> NDArray[np.bool_]:
    """``|a - b| <= atol + rtol * max(|a|, |b|)``, symmetric; equal infinities count as close."""
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
        ok = diff <= atol + rtol * np.maximum(np.abs(a), np.abs(b))
    return ok | (a == b)


def tie_groups(scores: ArrayLike, *, rtol: float = 1e-5, atol: float = 1e-6) -> list[slice]:
    """Runs of consecutive positions of a sorted score list whose neighbours tie within the tolerance.

    Parameters
    ----------
    scores : array-like of float
        Scores in ranking order (non-increasing, up to the tolerance).
    rtol, atol : float
        Two neighbouring scores tie when ``|a - b| <= atol + rtol * max(|a|, |b|)``.

    Returns
    -------
    list of slice
        One slice per group, covering ``range(len(scores))`` in order.

    Examples
    --------
    >>> tie_groups([3.0, 2.0, 2.0 + 1e-9, 2.0, 1.0])
    [slice(0, 1, None), slice(1, 4, None), slice(4, 5, None)]
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(s) == 0:
        return []
    breaks = np.flatnonzero(~_close(s[:-1], s[1:], rtol, atol)) + 1
    edges = [0, *breaks.tolist(), len(s)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _as_list(items: ArrayLike | Sequence[Hashable]) -> list[Any]:
    return np.asarray(items).ravel().tolist()


def assert_rankings_equal(
    actual_items: ArrayLike | Sequence[Hashable],
    actual_scores: ArrayLike,
    expected_items: ArrayLike | Sequence[Hashable],
    expected_scores: ArrayLike,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    truncated: bool = True,
    err_msg: str = "",
) -> None:
    """Assert two rankings are equal up to ties and float error.

    Parameters
    ----------
    actual_items, actual_scores : array-like
        The ranking under test, best first, with its scores.
    expected_items, expected_scores : array-like
        The reference ranking, best first, with its scores (from an
        independent computation, or worked out by hand).
    rtol, atol : float
        Score tolerance; scores within it count as equal, and items whose
        scores tie within it may come in any order.
    truncated : bool
        The lists are the top of a longer ranking (a top-k). The group tied
        with the last position may then hold different items in the two lists
        (other items tied at the cut were left out); with ``truncated=False``
        the last group is compared as a set like every other.
    err_msg : str
        Prefixed to the failure message.

    Raises
    ------
    AssertionError
        Lengths differ, an item repeats, scores differ beyond the tolerance,
        a list is not sorted, or a group of tied items differs.

    Examples
    --------
    Two items tied within float error may swap, and the tie at the cut may
    hold another item:

    >>> assert_rankings_equal(["a", "c", "b", "x"], [0.9, 0.5, 0.5 + 1e-9, 0.1],
    ...                       ["a", "b", "c", "y"], [0.9, 0.5, 0.5, 0.1])

    A real difference fails:

    >>> assert_rankings_equal(["a", "b"], [0.9, 0.5], ["b", "a"], [0.9, 0.5])
    Traceback (most recent call last):
    ...
    AssertionError: ranks 1..1 (score 0.9): items ['a'] != expected ['b']
    """
    ai, ei = _as_list(actual_items), _as_list(expected_items)
    a = np.asarray(actual_scores, dtype=np.float64).ravel()
    e = np.asarray(expected_scores, dtype=np.float64).ravel()
    pre = f"{err_msg}: " if err_msg else ""
    if len(ai) != len(a) or len(ei) != len(e):
        raise AssertionError(f"{pre}items and scores differ in length ({len(ai)}/{len(a)}, {len(ei)}/{len(e)})")
    if len(ai) != len(ei):
        raise AssertionError(f"{pre}{len(ai)} items, expected {len(ei)}: {ai} != {ei}")
    if len(set(ai)) != len(ai):
        raise AssertionError(f"{pre}an item repeats: {ai}")
    for name, s in (("actual", a), ("expected", e)):
        up = np.flatnonzero((s[1:] > s[:-1]) & ~_close(s[:-1], s[1:], rtol, atol))
        if len(up):
            raise AssertionError(f"{pre}{name} scores not sorted best first at rank {up[0] + 2}: {s.tolist()}")
    bad = np.flatnonzero(~_close(a, e, rtol, atol))
    if len(bad):
        r = int(bad[0])
        raise AssertionError(
            f"{pre}score at rank {r + 1} is {float(a[r])!r}, expected {float(e[r])!r} (rtol={rtol}, atol={atol}); {ai} vs {ei}"
        )
    groups = tie_groups(e, rtol=rtol, atol=atol)
    for g in groups:
        if truncated and g.stop == len(ei):
            continue  # tied at the cut: either list may hold other items tied with it
        if set(ai[g]) != set(ei[g]):
            tail = f"ranks {g.start + 1}..{g.stop}" if g.stop - g.start > 1 else f"ranks {g.start + 1}..{g.start + 1}"
            raise AssertionError(f"{pre}{tail} (score {e[g.start]:.6g}): items {sorted(ai[g], key=str)} != expected {sorted(ei[g], key=str)}")


def assert_top_k(
    items: ArrayLike | Sequence[Hashable],
    scores: ArrayLike,
    reference: Mapping[Hashable, float],
    k: int,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    err_msg: str = "",
) -> None:
    """Assert ``items`` is a correct top-``k`` of every candidate's reference score, up to ties.

    Stronger than :func:`assert_rankings_equal` at the cut: with every
    candidate's score known, an item at the cut must tie with the best
    candidate left out.

    Parameters
    ----------
    items, scores : array-like
        The top-k under test, best first.
    reference : mapping
        Every eligible candidate's score from an independent computation (leave
        out excluded items; ``-inf`` entries count as not eligible).
    k : int
        The requested length: ``min(k, number of eligible candidates)`` items
        are expected.
    rtol, atol : float
        Score tolerance, as in :func:`assert_rankings_equal`.
    err_msg : str
        Prefixed to the failure message.

    Examples
    --------
    >>> ref = {"a": 0.9, "b": 0.5, "c": 0.5 + 1e-9, "d": 0.1}
    >>> assert_top_k(["a", "c"], [0.9, 0.5], ref, k=2)
    >>> assert_top_k(["a", "d"], [0.9, 0.1], ref, k=2)
    Traceback (most recent call last):
    ...
    AssertionError: 'c' (reference score 0.5) was left out of the top 2 for a lower-scored item (0.1)
    """
    ai = _as_list(items)
    a = np.asarray(scores, dtype=np.float64).ravel()
    pre = f"{err_msg}: " if err_msg else ""
    ref = {i: float(s) for i, s in reference.items() if float(s) > -np.inf}
    unknown = [i for i in ai if i not in ref]
    if unknown:
        raise AssertionError(f"{pre}items {unknown} are not eligible candidates")
    r = np.array([ref[i] for i in ai], dtype=np.float64)
    bad = np.flatnonzero(~_close(a, r, rtol, atol))
    if len(bad):
        j = int(bad[0])
        raise AssertionError(f"{pre}score of {ai[j]!r} is {float(a[j])!r}, reference {float(r[j])!r} (rtol={rtol}, atol={atol})")
    order = sorted(ref, key=lambda i: -ref[i])
    # the cut: every item returned scores at least as high as every item left out (up to the tolerance)
    chosen = set(ai)
    left = [i for i in order if i not in chosen]
    if left and ai:
        best_left, worst_in = left[0], min(ai, key=lambda i: ref[i])
        x, y = np.array([ref[best_left]]), np.array([ref[worst_in]])
        if ref[best_left] > ref[worst_in] and not _close(x, y, rtol, atol)[0]:
            raise AssertionError(
                f"{pre}{best_left!r} (reference score {ref[best_left]:.6g}) was left out of the top {k} "
                f"for a lower-scored item ({ref[worst_in]:.6g})"
            )
    expected = order[: min(k, len(order))]
    assert_rankings_equal(ai, a, expected, [ref[i] for i in expected], rtol=rtol, atol=atol, err_msg=err_msg)


def assert_recommendations_equal(
    actual: pd.DataFrame,
    expected: pd.DataFrame,
    *,
    user_col: str = "user",
    item_col: str = "item",
    score_col: str = "score",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    truncated: bool = True,
) -> None:
    """Assert two recommendation frames (one ranking per user) are equal up to ties and float error.

    Parameters
    ----------
    actual, expected : DataFrame
        Frames with user, item and score columns, each user's rows best first
        (as :meth:`Recommender.recommend` returns them).
    user_col, item_col, score_col : str
        Column names.
    rtol, atol, truncated
        As in :func:`assert_rankings_equal`, per user.

    Examples
    --------
    >>> a = pd.DataFrame({"user": [1, 1, 2], "item": [5, 6, 7], "score": [0.5, 0.5, 1.0]})
    >>> b = pd.DataFrame({"user": [1, 1, 2], "item": [6, 5, 7], "score": [0.5, 0.5, 1.0]})
    >>> assert_recommendations_equal(a, b, truncated=False)
    """
    au, eu = actual[user_col].unique().tolist(), expected[user_col].unique().tolist()
    if au != eu:
        raise AssertionError(f"users differ: {au} != {eu}")
    ga = {u: g for u, g in actual.groupby(user_col, sort=False)}
    ge = {u: g for u, g in expected.groupby(user_col, sort=False)}
    for u in au:
        assert_rankings_equal(
            ga[u][item_col].to_numpy(),
            ga[u][score_col].to_numpy(),
            ge[u][item_col].to_numpy(),
            ge[u][score_col].to_numpy(),
            rtol=rtol,
            atol=atol,
            truncated=truncated,
            err_msg=f"user {u!r}",
        )


def assert_recommendations_match_scores(
    recs: pd.DataFrame,
    scores: ArrayLike,
    users: ArrayLike | Sequence[Hashable],
    items: ArrayLike | Sequence[Hashable],
    k: int,
    *,
    user_col: str = "user",
    item_col: str = "item",
    score_col: str = "score",
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Assert a recommendation frame is each user's top-``k`` of a reference score matrix, up to ties.

    Parameters
    ----------
    recs : DataFrame
        Recommendations with user, item and score columns, each user's rows best first.
    scores : array-like of shape (len(users), len(items))
        Reference scores from an independent computation; ``-inf`` marks an
        excluded pair (seen, filtered, not a candidate).
    users, items : array-like
        Row and column labels of ``scores``.
    k : int
        The requested length.
    user_col, item_col, score_col, rtol, atol
        As in :func:`assert_top_k`.

    Examples
    --------
    >>> S = np.array([[0.2, 0.7, 0.7], [0.1, -np.inf, 0.3]])
    >>> recs = pd.DataFrame({"user": ["u", "v"], "item": ["c", "c"], "score": [0.7, 0.3]})
    >>> assert_recommendations_match_scores(recs, S, ["u", "v"], ["a", "b", "c"], k=1)
    """
    s = np.asarray(scores, dtype=np.float64)
    u_list, i_list = _as_list(users), _as_list(items)
    if s.shape != (len(u_list), len(i_list)):
        raise AssertionError(f"scores have shape {s.shape}, expected {(len(u_list), len(i_list))}")
    groups = {u: g for u, g in recs.groupby(user_col, sort=False)}
    for r, u in enumerate(u_list):
        g = groups.get(u, recs.iloc[:0])
        ref = {i: v for i, v in zip(i_list, s[r].tolist())}
        assert_top_k(g[item_col].to_numpy(), g[score_col].to_numpy(), ref, k, rtol=rtol, atol=atol, err_msg=f"user {u!r}")
    extra = set(groups) - set(u_list)
    if extra:
        raise AssertionError(f"recommendations for users without reference scores: {sorted(extra, key=str)}")
