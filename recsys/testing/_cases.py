"""Contract cases of the built-in models: small, fast, seeded, single-threaded settings.

Every model exported from :mod:`recsys.models` must have an entry here (a test checks it).
"""

from __future__ import annotations

from recsys.content import HashingEncoder
from recsys.models import ALS, BPR, EASE, ContentBased, Hybrid, ItemKNN, Popular, UserKNN
from recsys.testing.contract import ContractCase

CONTRACT_CASES: dict[str, ContractCase] = {
    "Popular": ContractCase(Popular, learns_preferences=False),
    "ItemKNN": ContractCase(lambda: ItemKNN(k=10)),
    "UserKNN": ContractCase(lambda: UserKNN(k=5)),
    "EASE": ContractCase(lambda: EASE(reg=10.0)),
    "ContentBased": ContractCase(lambda: ContentBased(encoder=HashingEncoder(dim=256))),
    "Hybrid": ContractCase(lambda: Hybrid(cf=ItemKNN(k=10), content=ContentBased(encoder=HashingEncoder(dim=256)))),
    "ALS": ContractCase(lambda: ALS(n_factors=4, num_threads=1, show_progress=False)),
    "BPR": ContractCase(lambda: BPR(n_factors=8, n_epochs=40, lr=0.1, num_threads=1, show_progress=False)),
}
