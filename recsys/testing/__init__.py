"""Test helpers shipped with recsys: tiny data and the contract every recommender passes."""

from recsys.testing._data import tiny_frames, tiny_interactions
from recsys.testing.contract import CHECKS, ContractCase, check_recommender

__all__ = ["CHECKS", "CONTRACT_CASES", "ContractCase", "check_recommender", "tiny_frames", "tiny_interactions"]


def __getattr__(name: str) -> object:
    # Imported lazily: the cases import every model, which may pull optional extras.
    if name == "CONTRACT_CASES":
        from recsys.testing._cases import CONTRACT_CASES

        return CONTRACT_CASES
    raise AttributeError(name)
