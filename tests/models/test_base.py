"""The Recommender base class, checked against a model whose scores are known in closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.typing import NDArray

import recsys.models.base as base_mod
from recsys import Interactions
from recsys.content import HashingEncoder
from recsys.errors import (
    DataError,
    DataTypeError,
    NotFittedError,
    NotSupportedError,
    ParameterError,
    RecsysError,
    UnknownIdError,
)
from recsys.models import EASE, ContentBased, ItemKNN, Popular, Recommender, UserKNN
from recsys.models.base import merged_csr
from recsys.testing import assert_rankings_equal, assert_top_k, tiny_interactions


class Formula(Recommender):
    """score(u, i) = (7 i + 3 u) mod 5: many ties, known without running any model code."""

    def __init__(self, nan: bool = False) -> None:
        self.nan = nan

    def _fit(self, data: Interactions) -> None:
        self.n_users_ = data.n_users

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        items = np.arange(self.n_items_) if item_idx is None else item_idx
        s = ((7 * items[None, :] + 3 * user_idx[:, None]) % 5).astype(np.float32)
        if self.nan:
            s[:, 0] = np.nan
        return s


class Infinite(Formula):
    """Formula with item 0 at +inf and item 1 at -inf: a block's sum is NaN, its scores are not."""

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        s = super()._score(user_idx, None)
        s[:, 0], s[:, 1] = np.inf, -np.inf
        return s if item_idx is None else s[:, item_idx]


def formula_expected(u: int, n_items: int, k: int, banned: set[int]) -> list[int]:
    cands = [i for i in range(n_items) if i not in banned]
    return sorted(cands, key=lambda i: (-((7 * i + 3 * u) % 5), i))[:k]


@pytest.fixture
def data() -> Interactions:
    # users 0..5 (ids "u0".."u5"), items 0..11 (ids 100..111); item 111 only in the catalogue
    rng = np.random.default_rng(1)
    rows = [(u, i) for u in range(6) for i in range(11) if rng.random() < 0.3]
    rows += [(u, u) for u in range(6) if (u, u) not in rows]
    df = pd.DataFrame(rows, columns=["u", "i"]).sort_values(["u", "i"])
    feats = pd.DataFrame({"item": np.arange(100, 112), "x": np.arange(12.0)})
    return Interactions.from_frame(
        pd.DataFrame({"user": "u" + df["u"].astype(str), "item": df["i"] + 100}), item_features=feats
    )


def test_recommend_matches_independent_sort(data: Interactions) -> None:
    m = Formula().fit(data)
    recs = m.recommend(data.users.ids, k=4)
    csr = data.matrix()
    for u in range(data.n_users):
        seen = set(csr.indices[csr.indptr[u] : csr.indptr[u + 1]].tolist())
        cold = set(np.flatnonzero(data.item_counts == 0).tolist())
        want = formula_expected(u, data.n_items, 4, seen | cold)
        got = recs[recs["user"] == data.users.ids[u]]
        assert data.items.to_index(got["item"].to_numpy()).tolist() == want
        assert got["rank"].tolist() == list(range(1, len(want) + 1))


def test_catalogue_only_items_are_never_recommended(data: Interactions) -> None:
    recs = Formula().fit(data).recommend(data.users.ids, k=20, exclude_seen=False)
    assert 111 not in set(recs["item"])
    assert len(recs) == data.n_users * 11


def test_block_size_does_not_change_results(data: Interactions, monkeypatch: pytest.MonkeyPatch) -> None:
    m = Formula().fit(data)
    full = m.recommend(data.users.ids, k=5)
    monkeypatch.setattr(base_mod, "_BLOCK_ENTRIES", 13)  # one user per block
    pd.testing.assert_frame_equal(full, m.recommend(data.users.ids, k=5))


def test_candidate_restriction_both_paths_agree(data: Interactions) -> None:
    m = Formula().fit(data)
    few = [100, 103, 104]  # fewer than half the items: scored on the subset
    many = list(range(100, 110))  # most items: scored in full then masked
    for allowed in (few, many):
        recs = m.recommend(data.users.ids, k=3, items=allowed, exclude_seen=False)
        for u in range(data.n_users):
            banned = set(range(12)) - set(data.items.to_index(allowed).tolist())
            want = formula_expected(u, 12, 3, banned)
            got = data.items.to_index(recs[recs["user"] == data.users.ids[u]]["item"].to_numpy())
            assert got.tolist() == want


def test_exclude_items_ignores_unknown_but_items_rejects_unknown(data: Interactions) -> None:
    m = Formula().fit(data)
    r = m.recommend(["u0"], k=3, exclude_items=[999, 100], exclude_seen=False)
    assert 100 not in r["item"].tolist()
    with pytest.raises(UnknownIdError, match="1 item id not in the training data"):
        m.recommend(["u0"], items=[100, 999])


def test_k_larger_than_catalogue_gives_shorter_lists(data: Interactions) -> None:
    ids, scores = Formula().fit(data).recommend_one("u0", k=100)
    seen0 = data.matrix()[0].nnz
    assert len(ids) == len(scores) == 11 - seen0


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True, None])
def test_bad_k(data: Interactions, k: object) -> None:
    m = Formula().fit(data)
    with pytest.raises(ParameterError, match="The 'k' parameter of recommend must be an int >= 1"):
        m.recommend(["u0"], k=k)  # type: ignore[arg-type]


def test_bad_arguments(data: Interactions) -> None:
    m = Formula().fit(data)
    with pytest.raises(ParameterError, match="'on_unknown' parameter of recommend"):
        m.recommend(["u0"], on_unknown="ignore")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="'u0' appears more than once"):
        m.recommend(["u0", "u1", "u0"])
    with pytest.raises(DataError, match="same length; got 2 and 1"):
        m.score(["u0", "u1"], [100])
    with pytest.raises(DataTypeError, match="expects recsys.Interactions; got DataFrame"):
        Formula().fit(data.to_frame())  # type: ignore[arg-type]


def test_unknown_users(data: Interactions) -> None:
    m = Formula().fit(data)
    with pytest.raises(UnknownIdError, match=r"2 user ids not in the training data \(first: 'x', 'y'\)"):
        m.recommend(["u0", "x", "y"])
    assert set(m.recommend(["u0", "x"], on_unknown="skip")["user"]) == {"u0"}
    pop = m.recommend(["x"], k=2, on_unknown="popular")
    counts = pd.Series(data.item_counts, index=data.items.ids).sort_values(ascending=False, kind="stable")
    assert pop["item"].tolist() == counts.index[:2].tolist()
    assert pop["score"].tolist() == counts.iloc[:2].astype(float).tolist()
    with pytest.raises(UnknownIdError):
        m.recommend_one("x")


def test_nan_scores_are_an_error(data: Interactions) -> None:
    with pytest.raises(RecsysError, match="NaN scores"):
        Formula(nan=True).fit(data).recommend(["u0"])
    with pytest.raises(RecsysError, match="NaN scores"):
        Formula(nan=True).fit(data).recommend(list(data.users.ids))


def test_infinite_scores_are_not_mistaken_for_nan(data: Interactions) -> None:
    m = Infinite().fit(data)
    rec = m.recommend(list(data.users.ids), k=3, exclude_seen=False)
    first = rec[rec["rank"] == 1]
    assert (first["item"] == data.items.ids[0]).all() and np.isinf(first["score"]).all()
    assert data.items.ids[1] not in set(rec["item"])  # -inf is never recommended


def test_not_fitted_and_not_supported(data: Interactions) -> None:
    with pytest.raises(NotFittedError, match="This Formula is not fitted yet"):
        Formula().recommend_one("u0")
    m = Formula().fit(data)
    with pytest.raises(NotSupportedError, match="Formula cannot recommend from a history"):
        m.recommend_history([100])
    with pytest.raises(NotSupportedError, match="Formula has no item similarity"):
        m.similar_items([100])


def test_score_pairs_match_formula(data: Interactions) -> None:
    m = Formula().fit(data)
    users, items = ["u1", "u3", "u1"], [105, 100, 110]
    u, i = data.users.to_index(users), data.items.to_index(items)
    assert m.score(users, items).tolist() == ((7 * i + 3 * u) % 5).astype(float).tolist()


class Predicting(Formula):
    """predict(u, i) = 100 u + i on internal indices; unknown ids (-1) allowed when the class says so."""

    def _predict_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return (100 * user_idx + item_idx).astype(np.float32)


class PredictingUnknown(Predicting):
    predicts_unknown_ids = True


class BrokenPredict(Formula):
    def _predict_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return np.zeros(len(user_idx) + 1, dtype=np.float32)


def test_predict_is_the_base_mapping_around_the_hook(data: Interactions) -> None:
    assert not hasattr(Formula().fit(data), "predict") and not hasattr(Formula(), "partial_fit_users")
    m = Predicting().fit(data)
    users, items = ["u1", "u3", "u1"], [105, 100, 110]
    u, i = data.users.to_index(users), data.items.to_index(items)
    got = m.predict(users, items)
    assert got.dtype == np.float32 and got.tolist() == (100 * u + i).astype(float).tolist()
    assert m.predict("u2", 101).tolist() == [100 * data.users.index_of("u2") + data.items.index_of(101)]
    with pytest.raises(DataError, match="same length; got 2 and 1"):
        m.predict(["u1", "u2"], [100])
    with pytest.raises(UnknownIdError, match="nobody"):
        m.predict(["u1", "nobody"], [100, 100])
    with pytest.raises(UnknownIdError, match="999"):
        m.predict(["u1"], [999])
    with pytest.raises(NotFittedError):
        Predicting().predict(["u1"], [100])
    # unknown ids reach the hook as -1 when the model accepts them
    assert PredictingUnknown().fit(data).predict(["nobody", "u0"], [100, 999]).tolist() == [
        -100 + data.items.index_of(100),
        100 * data.users.index_of("u0") - 1,
    ]
    with pytest.raises(RecsysError, match="_predict_pairs returned shape"):
        BrokenPredict().fit(data).predict(["u1"], [100])


def test_params_and_config() -> None:
    m = Formula(nan=True)
    assert m.get_params() == {"nan": True}
    assert m.set_params(nan=False).nan is False
    with pytest.raises(ParameterError, match="Formula has no parameter 'alpha'; valid parameters: nan"):
        m.set_params(alpha=1)
    again = Recommender.from_config(m.get_config())
    assert isinstance(again, Formula) and again.get_params() == {"nan": False}
    with pytest.raises(ParameterError, match="unknown class 'os.system'"):
        Recommender.from_config({"class": "os.system", "params": {}})
    assert repr(m) == "Formula(nan=False)"


def test_refit_forgets_previous_state(data: Interactions) -> None:
    m = Popular().fit(data)
    small = data.subset(users=["u0"])
    m.fit(Interactions.from_frame(small.to_frame()))
    assert m.n_items_ == len(set(small.to_frame()["item"]))


# -- ``items=`` with fewer candidates than ``k`` -----------------------------------------------------
# Lists are the allowed unseen candidates, best first, never an error (the service once hit a
# broadcast error here with ``GET /recommend?user=3&items=1,3,5,7`` and the default k=10).

FEW_CANDIDATE_MODELS = {
    "Popular": lambda: Popular(),
    "ItemKNN": lambda: ItemKNN(k=10),
    "UserKNN": lambda: UserKNN(k=5),
    "EASE": lambda: EASE(reg=10.0),
    "ContentBased": lambda: ContentBased(encoder=HashingEncoder(dim=256)),
}


@pytest.mark.parametrize("name", list(FEW_CANDIDATE_MODELS))
def test_fewer_candidates_than_k(name: str) -> None:
    data = tiny_interactions()
    model: Recommender = FEW_CANDIDATE_MODELS[name]().fit(data)
    user = 3
    seen = set(data.items.ids[data.matrix("csr").getrow(model.users_.index_of(user)).indices].tolist())
    candidates = [1, 2, 3, 5, 7, 9]
    want = [i for i in candidates if i not in seen]
    ids, scores = model.recommend_one(user, k=10, items=candidates)
    assert sorted(ids.tolist()) == sorted(want)  # every allowed unseen candidate, nothing else
    assert np.all(np.diff(scores) <= 0) and np.isfinite(scores).all()
    # the same list as the scores of those candidates ranked independently (score() sums in another
    # order: ties within float error may come either way)
    full = model.score([user] * len(want), want)
    assert_top_k(ids, scores, dict(zip(want, full.tolist())), k=10)
    frame = model.recommend([user, 4], k=10, items=candidates)
    assert_rankings_equal(frame[frame.user == user].item, frame[frame.user == user].score, ids, scores, truncated=False)
    ids_all, _ = model.recommend_one(user, k=10, items=candidates, exclude_seen=False)
    assert sorted(ids_all.tolist()) == sorted(candidates)


# -- the one CSR merge of partial fits -------------------------------------------------------------


def test_merged_sets_entries_and_copies_the_other_rows(rng: np.random.Generator) -> None:
    for trial in range(100):
        m = sp.random(int(rng.integers(1, 30)), int(rng.integers(1, 20)), density=float(rng.random()) * 0.5,
                      format="csr", dtype=np.float32, random_state=trial)
        shape = (m.shape[0] + int(rng.integers(0, 3)), m.shape[1] + int(rng.integers(0, 3)))
        k = int(rng.integers(0, 15))
        rows, cols = rng.integers(0, shape[0], k), rng.integers(0, shape[1], k)
        vals = (rng.random(k) + 1).astype(np.float32)
        got = merged_csr(m, rows.astype(np.int64), cols.astype(np.int64), vals, shape)
        want = np.zeros(shape, np.float32)
        want[: m.shape[0], : m.shape[1]] = m.toarray()
        for r, c, v in zip(rows, cols, vals):  # a later repeat of a pair wins
            want[r, c] = v
        np.testing.assert_array_equal(got.toarray(), want)
        assert got.nnz == np.count_nonzero(want) and got.has_sorted_indices


@pytest.mark.filterwarnings("ignore:merged .* duplicate")
def test_merged_equals_the_matrix_of_the_concatenated_frame(rng: np.random.Generator) -> None:
    """Merging new rows into a fitted user x item matrix, as ``partial_fit_users`` does, gives the
    matrix ``Interactions`` builds from the old and new rows concatenated (later rows win)."""
    for trial in range(20):
        n = int(rng.integers(5, 60))
        old = pd.DataFrame({"user": rng.integers(0, 8, n), "item": rng.integers(0, 10, n), "r": rng.integers(1, 6, n) * 1.0})
        old = old.drop_duplicates(["user", "item"], keep="last")
        m = int(rng.integers(1, 15))
        items = old["item"].unique()
        new = pd.DataFrame({"user": rng.integers(4, 12, m), "item": rng.choice(items, m), "r": rng.integers(1, 6, m) * 1.0})
        new = new.drop_duplicates(["user", "item"], keep="last")
        before = Interactions.from_frame(old, rating_col="r")
        users = before.users.extend(new["user"].to_numpy())
        got = merged_csr(
            before.matrix("csr", "rating"),
            users.to_index(new["user"].to_numpy()).astype(np.int64),
            before.items.to_index(new["item"].to_numpy()).astype(np.int64),
            new["r"].to_numpy(np.float32),
            (len(users), before.n_items),
        )
        both = Interactions.from_frame(pd.concat([old, new]), rating_col="r", duplicates="last")
        want = both.matrix("csr", "rating").tocoo()
        want_pairs = dict(zip(zip(both.users.to_ids(want.row).tolist(), both.items.to_ids(want.col).tolist()), want.data.tolist()))
        g = got.tocoo()
        got_pairs = dict(zip(zip(users.to_ids(g.row).tolist(), before.items.to_ids(g.col).tolist()), g.data.tolist()))
        assert got_pairs == want_pairs, f"trial {trial}"
        assert got.has_sorted_indices and got.nnz == len(want_pairs)
