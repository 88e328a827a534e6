"""Contract cases of the built-in models: small, fast, seeded, single-threaded settings.

Every model exported from :mod:`recsys.models` must have an entry here (a test checks it).
"""

from __future__ import annotations

from recsys.models import Popular
from recsys.testing.contract import ContractCase

CONTRACT_CASES: dict[str, ContractCase] = {
    "Popular": ContractCase(Popular, learns_preferences=False),
}
