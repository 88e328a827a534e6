"""Contract cases of the built-in models: small, fast, seeded, single-threaded settings.

Every model exported from :mod:`recsys.models` must have an entry here (a test checks it).
``fold_in_reproduces_fit`` is set where a user's scores are a function of their history alone
(popularity, item neighbourhoods, EASE, content profiles and their hybrid); not for factor models
(ALS, BPR, SVD++, Blend with ALS: the fitted user vector comes from training, a fold-in solves
its own problem), UserKNN (a training user is its own nearest neighbour) or models without fold-in.
"""

from __future__ import annotations

import numpy as np

from recsys.content import HashingEncoder
from recsys.data import Interactions
from recsys.models import (
    ALS,
    BPR,
    DIN,
    EASE,
    ESMM,
    PLE,
    Blend,
    ContentBased,
    DeepFM,
    GRU4Rec,
    Hybrid,
    ItemKNN,
    MMoE,
    Pipeline,
    Popular,
    SASRec,
    SessionEASE,
    SharedBottom,
    SparseEASE,
    SVDpp,
    UserKNN,
)
from recsys.testing._data import tiny_frames
from recsys.testing.contract import ContractCase

# Deep models: small networks, fixed epochs (no validation split), one thread: fast and deterministic.
_DEEP = dict(hidden_units=[32], epochs=30, learning_rate=0.01, validation_fraction=0.0, num_threads=1, show_progress=False)

# Sequential models: small networks, fixed epochs (no validation users), one thread.
_SEQ = dict(max_len=16, dim=16, epochs=100, batch_size=20, learning_rate=0.006, dropout=0.5, validation_users=0, num_threads=1, show_progress=False)


def _shuffled_time_interactions() -> Interactions:
    """tiny_interactions with each user's timestamps shuffled: tiny_frames orders a user's items by id
    in time, a sequence a history model (DIN) learns instead of the two groups."""
    df, items, users = tiny_frames()
    rng = np.random.default_rng(0)
    df["timestamp"] = df.groupby("user")["timestamp"].transform(lambda s: rng.permutation(s.to_numpy()))
    return Interactions.from_frame(df, rating_col="rating", timestamp_col="timestamp", item_features=items, user_features=users)


CONTRACT_CASES: dict[str, ContractCase] = {
    "Popular": ContractCase(Popular, learns_preferences=False, fold_in_reproduces_fit=True),
    "ItemKNN": ContractCase(lambda: ItemKNN(k=10), fold_in_reproduces_fit=True),
    "UserKNN": ContractCase(lambda: UserKNN(k=5)),
    "EASE": ContractCase(lambda: EASE(reg=10.0), fold_in_reproduces_fit=True),
    "SessionEASE": ContractCase(lambda: SessionEASE(reg=10.0), fold_in_reproduces_fit=True),
    "SparseEASE": ContractCase(lambda: SparseEASE(n_neighbours=8, reg=10.0), fold_in_reproduces_fit=True),
    "ContentBased": ContractCase(lambda: ContentBased(encoder=HashingEncoder(dim=256)), fold_in_reproduces_fit=True),
    "Hybrid": ContractCase(
        lambda: Hybrid(cf=ItemKNN(k=10), content=ContentBased(encoder=HashingEncoder(dim=256))), fold_in_reproduces_fit=True
    ),
    "DeepFM": ContractCase(lambda: DeepFM(**_DEEP)),  # type: ignore[arg-type]
    "DIN": ContractCase(lambda: DIN(attention_units=[16], **_DEEP), data=_shuffled_time_interactions),  # type: ignore[arg-type]
    # multi-task rankers (click + like, ranked by their product); MMoE over DIN's bottom
    "SharedBottom": ContractCase(lambda: SharedBottom(tower_units=[8], **_DEEP)),  # type: ignore[arg-type]
    "MMoE": ContractCase(
        lambda: MMoE(bottom="din", attention_units=[16], n_experts=2, tower_units=[8], **_DEEP),  # type: ignore[arg-type]
        data=_shuffled_time_interactions,
    ),
    "PLE": ContractCase(lambda: PLE(tower_units=[8], **_DEEP)),  # type: ignore[arg-type]
    "ESMM": ContractCase(lambda: ESMM(tower_units=[8], **_DEEP)),  # type: ignore[arg-type]
    # five cross-fitting folds give the ranker five candidate lists per user: a fifth of the epochs
    "Pipeline": ContractCase(
        lambda: Pipeline(retriever=ItemKNN(k=10), ranker=DeepFM(**{**_DEEP, "epochs": 6}), n_candidates=10)  # type: ignore[arg-type]
    ),
    "ALS": ContractCase(lambda: ALS(n_factors=4, reg=1.0, num_threads=1, show_progress=False)),
    "BPR": ContractCase(lambda: BPR(n_factors=8, n_epochs=40, lr=0.1, num_threads=1, show_progress=False)),
    "Blend": ContractCase(
        lambda: Blend([ALS(n_factors=4, reg=1.0, num_threads=1, show_progress=False), EASE(reg=10.0)], weights=[0.6, 0.4])
    ),
    # sequential models, as DIN: in id order the next item is the next id, whatever the group
    "SASRec": ContractCase(lambda: SASRec(**_SEQ), data=_shuffled_time_interactions, fold_in_reproduces_fit=True),  # type: ignore[arg-type]
    "GRU4Rec": ContractCase(lambda: GRU4Rec(**_SEQ), data=_shuffled_time_interactions, fold_in_reproduces_fit=True),  # type: ignore[arg-type]
    "SVDpp": ContractCase(lambda: SVDpp(n_factors=4, n_epochs=30, batch_size=32, lr_item=0.05, show_progress=False)),
}
