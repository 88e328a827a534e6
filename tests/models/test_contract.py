"""Every exported model passes every contract check."""

from __future__ import annotations

import inspect

import pytest

import recsys.models
from recsys.models import Recommender
from recsys.testing import CHECKS, CONTRACT_CASES


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
    CHECKS[check](CONTRACT_CASES[model])
