"""Every exported model passes every contract check."""

from __future__ import annotations

import inspect
import unittest

import pytest

import recsys.models
from recsys.models import DeepFM, ItemKNN, Popular, Recommender, UserKNN
from recsys.testing import CHECKS, CONTRACT_CASES, ContractCase
from recsys.testing.contract import check_fold_in, check_learns_preferences, check_predict


def test_every_exported_model_has_a_contract_case() -> None:
    exported = {
        name
        for name in recsys.models.__all__
        if inspect.isclass(getattr(recsys.models, name))
        and issubclass(getattr(recsys.models, name), Recommender)
        and not inspect.isabstract(getattr(recsys.models, name))
    }
    assert exported, "recsys.models exports no model"
    missing = exported - set(CONTRACT_CASES)
    assert not missing, f"models without a contract case in recsys/testing/_cases.py: {sorted(missing)}"


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("model", sorted(CONTRACT_CASES))
def test_contract(model: str, check: str) -> None:
    try:
        CHECKS[check](CONTRACT_CASES[model])
    except unittest.SkipTest as e:  # a check that does not apply to this model: reported, with its reason
        pytest.skip(str(e))


def test_checks_that_do_not_apply_are_skipped_with_a_reason_and_wrong_claims_fail() -> None:
    with pytest.raises(unittest.SkipTest, match="DeepFM does not recommend from a history"):
        check_fold_in(ContractCase(lambda: DeepFM(epochs=1, hidden_units=[4], validation_fraction=0.0, num_threads=1, show_progress=False)))
    with pytest.raises(unittest.SkipTest, match="UserKNN is not expected to learn preferences"):
        check_learns_preferences(ContractCase(lambda: UserKNN(k=5), learns_preferences=False))
    # UserKNN's fold-in is checked for values, but it does not reproduce a training user's scores
    # (the user is its own nearest neighbour): claiming it must fail
    check_fold_in(ContractCase(lambda: UserKNN(k=5)))
    with pytest.raises(AssertionError, match="fold-in of user"):
        check_fold_in(ContractCase(lambda: UserKNN(k=5), fold_in_reproduces_fit=True))


def test_predict_check_covers_the_explicit_neighbourhood_models_and_skips_the_others() -> None:
    check_predict(ContractCase(lambda: ItemKNN(k=10, feedback="explicit")))
    check_predict(ContractCase(lambda: UserKNN(k=5, feedback="explicit")))
    with pytest.raises(unittest.SkipTest, match="Popular has no predict"):
        check_predict(ContractCase(Popular))
    with pytest.raises(unittest.SkipTest, match="ItemKNN cannot predict in this configuration: .*feedback='explicit'"):
        check_predict(ContractCase(lambda: ItemKNN(k=10)))
