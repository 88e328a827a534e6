"""Test helpers shipped with recsys: tiny data, the contract every recommender passes, and tie-aware ranking asserts."""

from recsys.testing._data import tiny_frames, tiny_interactions
from recsys.testing.contract import CHECKS, ContractCase, check_recommender
from recsys.testing.ranking import (
    assert_rankings_equal,
    assert_recommendations_equal,
    assert_recommendations_match_scores,
    assert_top_k,
    tie_groups,
)

__all__ = [
    "CHECKS",
    "CONTRACT_CASES",
    "ContractCase",
    "assert_rankings_equal",
    "assert_recommendations_equal",
    "assert_recommendations_match_scores",
    "assert_top_k",
    "check_recommender",
    "tie_groups",
    "tiny_frames",
    "tiny_interactions",
]


def __getattr__(name: str) -> object:
    # Imported lazily: the cases import every model, which may pull optional extras.
    if name == "CONTRACT_CASES":
        from recsys.testing._cases import CONTRACT_CASES

        return CONTRACT_CASES
    raise AttributeError(name)
