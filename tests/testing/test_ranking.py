"""The tie-aware ranking asserts: what they accept, and (as important) what they must reject."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.testing import (
    assert_rankings_equal,
    assert_recommendations_equal,
    assert_recommendations_match_scores,
    assert_top_k,
    tie_groups,
)


def test_tie_groups_chain_neighbours_within_tolerance() -> None:
    assert tie_groups([]) == []
    assert tie_groups([1.0]) == [slice(0, 1)]
    assert tie_groups([5.0, 4.0, 3.0]) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    # one float32 step apart is a tie; 1e-3 apart is not
    x = np.float32(0.7)
    assert tie_groups([x, np.nextafter(x, np.float32(0)), 0.699]) == [slice(0, 2), slice(2, 3)]
    assert tie_groups([-np.inf, -np.inf]) == [slice(0, 2)]


def test_identical_rankings_pass() -> None:
    assert_rankings_equal([1, 2, 3], [0.9, 0.5, 0.1], [1, 2, 3], [0.9, 0.5, 0.1])
    assert_rankings_equal([], [], [], [])


def test_tied_items_may_swap_and_scores_may_differ_within_tolerance() -> None:
    assert_rankings_equal([1, 3, 2, 4], [0.9, 0.5 + 1e-8, 0.5, 0.1], [1, 2, 3, 4], [0.9, 0.5, 0.5, 0.1])
    # the failing case of the issue: one float32 step between mathematically equal scores
    x = np.float32(0.4)
    assert_rankings_equal([10, 14], [x, np.nextafter(x, np.float32(0))], [14, 10], [x, x], truncated=False)


def test_items_tied_at_the_cut_may_differ() -> None:
    # a top-3 whose third score ties with a fourth item the other list kept
    assert_rankings_equal([1, 2, 7], [0.9, 0.5, 0.2], [1, 2, 8], [0.9, 0.5, 0.2])
    assert_rankings_equal([1, 7, 8], [0.9, 0.2, 0.2], [1, 8, 9], [0.9, 0.2, 0.2])


@pytest.mark.parametrize(
    ("actual", "a_scores", "expected", "e_scores", "message"),
    [
        ([2, 1, 3], [0.9, 0.5, 0.1], [1, 2, 3], [0.9, 0.5, 0.1], "ranks 1..1"),  # clear order swapped
        ([1, 2, 4], [0.9, 0.5, 0.5], [1, 2, 3], [0.9, 0.5, 0.1], "score at rank 3"),  # wrong score
        ([1, 2], [0.9, 0.5], [1, 2, 3], [0.9, 0.5, 0.1], "2 items, expected 3"),  # too short
        ([1, 1, 3], [0.9, 0.9, 0.1], [1, 2, 3], [0.9, 0.9, 0.1], "repeats"),  # duplicate
        ([1, 2, 3], [0.5, 0.9, 0.1], [1, 2, 3], [0.5, 0.9, 0.1], "not sorted"),  # unsorted
        ([1, 4, 3], [0.9, 0.5, 0.1], [1, 2, 3], [0.9, 0.5, 0.1], "ranks 2..2"),  # wrong item, right score
        ([1, 2, 9, 3], [0.9, 0.5, 0.5, 0.1], [1, 2, 8, 3], [0.9, 0.5, 0.5, 0.1], "ranks 2..3"),  # tie not at the cut
        ([1, 2], [0.9, 0.5 + 1e-3], [1, 2], [0.9, 0.5], "score at rank 2"),  # beyond the tolerance
    ],
)
def test_real_differences_fail(actual: list[int], a_scores: list[float], expected: list[int], e_scores: list[float], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_rankings_equal(actual, a_scores, expected, e_scores)


def test_the_cut_is_compared_as_a_set_when_the_lists_are_complete() -> None:
    with pytest.raises(AssertionError, match="ranks 2..3"):
        assert_rankings_equal([1, 7, 8], [0.9, 0.2, 0.2], [1, 8, 9], [0.9, 0.2, 0.2], truncated=False)
    # a wrong last item whose score differs is caught even when truncated
    with pytest.raises(AssertionError, match="score at rank 3"):
        assert_rankings_equal([1, 2, 7], [0.9, 0.5, 0.3], [1, 2, 8], [0.9, 0.5, 0.2])


def test_top_k_against_every_candidates_reference_score() -> None:
    ref = {"a": 0.9, "b": 0.5, "c": 0.5 + 1e-9, "d": 0.1, "x": -np.inf}
    assert_top_k(["a", "c"], [0.9, 0.5], ref, k=2)
    assert_top_k(["a", "b"], [0.9, 0.5], ref, k=2)
    assert_top_k(["a", "c", "b", "d"], [0.9, 0.5, 0.5, 0.1], ref, k=10)  # -inf is not eligible
    with pytest.raises(AssertionError, match="left out"):
        assert_top_k(["a", "d"], [0.9, 0.1], ref, k=2)  # the score is right but the item misses the cut
    with pytest.raises(AssertionError, match="not eligible"):
        assert_top_k(["a", "x"], [0.9, -np.inf], ref, k=2)
    with pytest.raises(AssertionError, match="expected 4"):
        assert_top_k(["a", "b", "c"], [0.9, 0.5, 0.5], ref, k=10)
    with pytest.raises(AssertionError, match="score of 'b' is 0.4"):
        assert_top_k(["a", "b"], [0.9, 0.4], ref, k=2)  # score off its reference


def test_recommendation_frames_per_user() -> None:
    a = pd.DataFrame({"user": ["u", "u", "v"], "item": [1, 2, 3], "score": [0.5, 0.5, 0.2]})
    b = pd.DataFrame({"user": ["u", "u", "v"], "item": [2, 1, 3], "score": [0.5, 0.5 + 1e-9, 0.2]})
    assert_recommendations_equal(a, b, truncated=False)
    with pytest.raises(AssertionError, match="user 'v'"):
        assert_recommendations_equal(a, b.assign(item=[2, 1, 4]), truncated=False)
    with pytest.raises(AssertionError, match="users differ"):
        assert_recommendations_equal(a, b[b["user"] == "u"])


def test_recommendations_against_a_reference_score_matrix() -> None:
    S = np.array([[0.2, 0.7, 0.7 - 1e-9, -np.inf], [0.1, -np.inf, 0.3, 0.3]])
    ok = pd.DataFrame({"user": ["u", "u", "v", "v"], "item": ["c", "b", "d", "c"], "score": [0.7, 0.7, 0.3, 0.3]})
    assert_recommendations_match_scores(ok, S, ["u", "v"], list("abcd"), k=2)
    with pytest.raises(AssertionError, match="user 'u'.*not eligible"):  # 'd' is excluded for u
        assert_recommendations_match_scores(ok.assign(item=["d", "b", "d", "c"]), S, ["u", "v"], list("abcd"), k=2)
    with pytest.raises(AssertionError, match="user 'v'.*expected 2"):  # a user short of k
        assert_recommendations_match_scores(ok.iloc[:3], S, ["u", "v"], list("abcd"), k=2)
    with pytest.raises(AssertionError, match="without reference"):
        assert_recommendations_match_scores(ok.assign(user=["u", "u", "w", "w"]), S[:1], ["u"], list("abcd"), k=2)
