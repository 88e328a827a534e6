"""A failed fit changes nothing; bad arguments and empty histories get clear errors or the fallback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from recsys import Interactions
from recsys.errors import DataError, NotFittedError, ParameterError, UnknownIdError
from recsys.models import ALS, EASE, ItemKNN, Popular, UserKNN
from recsys.models.base import Recommender
from recsys.testing import tiny_interactions

ONE_USER = Interactions.from_arrays(["ann", "ann", "ann"], ["x", "y", "z"])


def _recs(model: Recommender) -> pd.DataFrame:
    return model.recommend(list(range(20)), k=5)


# -- a failed fit changes nothing --------------------------------------------------------------


def test_the_reported_itemknn_case_keeps_the_previous_model(tmp_path: Path) -> None:
    # fit good data, then a fit that raises (single-user data): the model still answers as before
    model = ItemKNN(k=10).fit(tiny_interactions())
    before = _recs(model)
    with pytest.raises(DataError, match="every item profile is 0"):
        model.fit(ONE_USER)
    assert model.is_fitted
    pd.testing.assert_frame_equal(_recs(model), before)
    assert model.users_.ids.tolist() == list(range(20))
    loaded = ItemKNN.load(model.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(_recs(loaded), before)


def test_a_failed_first_fit_leaves_the_model_unfitted() -> None:
    model = ItemKNN(k=10)
    attributes = dict(vars(model))
    with pytest.raises(DataError):
        model.fit(ONE_USER)
    assert not model.is_fitted and vars(model) == attributes
    with pytest.raises(NotFittedError, match="This ItemKNN is not fitted yet"):
        model.recommend(["ann"])


class _Interrupted(EASE):
    """EASE whose fit is interrupted after it has learned everything."""

    def _fit(self, data: Interactions) -> None:
        super()._fit(data)
        raise KeyboardInterrupt


def test_keyboard_interrupt_after_the_work_is_undone() -> None:
    model = EASE(reg=10.0).fit(tiny_interactions())
    before = _recs(model)
    weights = model.weights_
    model.__class__ = _Interrupted
    with pytest.raises(KeyboardInterrupt):
        model.fit(tiny_interactions(n_users=8, n_items=12, seed=3))
    model.__class__ = EASE
    assert model.weights_ is weights and model.n_items_ == 32
    pd.testing.assert_frame_equal(_recs(model), before)


class _CountingPartial(Popular):
    """A third-party model with an online update of its own: wrapped as a transaction too."""

    def partial_fit_boost(self, item_idx: int) -> _CountingPartial:
        pop = self.item_popularity_.copy()
        pop[item_idx] += 100.0
        self.item_popularity_ = pop
        raise RuntimeError("the update failed after changing the popularity")


def test_partial_fit_methods_of_any_subclass_are_transactions() -> None:
    model = _CountingPartial().fit(tiny_interactions())
    pop = model.item_popularity_.copy()
    with pytest.raises(RuntimeError):
        model.partial_fit_boost(3)
    np.testing.assert_array_equal(model.item_popularity_, pop)


def test_als_partial_fit_that_fails_midway_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_interactions()
    model = ALS(n_factors=4, reg=1.0, num_threads=1, show_progress=False).fit(data)
    before, idf, users = _recs(model), model.idf_, model.users_
    new = Interactions.from_frame(pd.DataFrame({"user": [0, 1], "item": ["new", "new"]}))

    def boom(*args: Any, **kwargs: Any) -> NDArray[np.float32]:
        raise MemoryError("solver ran out of memory")

    # partial_fit_items extends idf_ before solving: the failure comes after that
    monkeypatch.setattr(model, "_solve_items", boom)
    with pytest.raises(MemoryError):
        model.partial_fit_items(new)
    assert model.idf_ is idf and model.users_ is users and model.n_items_ == 32
    pd.testing.assert_frame_equal(_recs(model), before)
    monkeypatch.undo()
    # and the model still takes the update afterwards: the new item gets an index and a vector
    model.partial_fit_items(new)
    assert model.n_items_ == 33 and model.items_.ids[-1] == "new"


def test_partial_fit_items_with_cold_catalogue_items_rebuilds_the_index() -> None:
    # tiny_interactions has two catalogue items without interactions (1000, 1001); before the
    # fix the index was built with the old cold-item mask: "the index holds 30 items; expected 31"
    model = ALS(n_factors=4, reg=1.0, num_threads=1, show_progress=False).fit(tiny_interactions())
    model.partial_fit_items(Interactions.from_frame(pd.DataFrame({"user": [0, 1, 2], "item": ["new"] * 3})))
    assert model.index_.n_items == 31  # 30 warm + the new one; 1000 and 1001 stay cold
    ids, _ = model.recommend_one(1, k=31, exclude_seen=False)
    assert "new" in ids.tolist() and 1000 not in ids.tolist()


# -- recommend_one refuses a bad on_unknown like recommend ------------------------------------


def test_recommend_one_refuses_a_bad_on_unknown_for_known_users_too() -> None:
    model = Popular().fit(tiny_interactions())
    message = "The 'on_unknown' parameter of recommend{} must be one of 'error', 'skip', 'popular'. Got 'bogus' instead."
    with pytest.raises(ParameterError, match=re.escape(message.format(""))):
        model.recommend([0], on_unknown="bogus")  # type: ignore[arg-type]
    for user in (0, "nobody"):
        with pytest.raises(ParameterError, match=re.escape(message.format("_one"))):
            model.recommend_one(user, on_unknown="bogus")  # type: ignore[arg-type]


# -- KNN advice on degenerate data works ---------------------------------------------------------


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize(
    "data",
    [ONE_USER, Interactions.from_arrays(["a", "b", "c"], ["x", "x", "x"])],
    ids=["one user", "one item"],
)
def test_knn_error_on_single_user_or_item_data_gives_advice_that_works(cls: type[Recommender], data: Interactions) -> None:
    with pytest.raises(DataError) as info:
        cls().fit(data)
    message = str(info.value)
    assert "idf = log(n/n) = 0" in message
    advice = re.search(r"Use \w+KNN\((\w+)='(\w+)'\)", message)
    assert advice is not None and advice.groups() == ("weighting", "none")
    model = cls(weighting="none").fit(data)
    recs = model.recommend(data.users.ids, k=3, exclude_seen=False)
    assert len(recs) > 0


def test_knn_error_when_every_weight_is_zero_says_so() -> None:
    zero = Interactions.from_arrays([1, 2, 1], ["x", "y", "y"], weights=[0.0, 0.0, 0.0])
    with pytest.raises(DataError, match="every interaction weight is 0; give interactions non-zero weights"):
        ItemKNN(weighting="none").fit(zero)


# -- histories with nothing to fold in ----------------------------------------------------------


@pytest.fixture(scope="module")
def knn() -> ItemKNN:
    return ItemKNN(k=10).fit(tiny_interactions())


def _popular(data: Interactions, k: int) -> tuple[list[Any], list[float]]:
    # the most interacted-with items, ties to the lower index, counted by hand from the data
    counts = pd.Series(data.item_counts, index=data.items.ids)
    top = counts.sort_values(ascending=False, kind="stable").head(k)
    return top.index.tolist(), top.astype(float).tolist()


@pytest.mark.parametrize(
    ("history", "what"),
    [
        ([], "the history is empty"),
        (["nope", "never"], "none of the history's 2 items is known to the model (all skipped)"),
        ([1000, 1001], "the history's 2 known items have no train interactions"),
    ],
)
def test_a_history_with_nothing_to_fold_in_gets_popular_items_or_a_clear_error(
    knn: ItemKNN, history: list[Any], what: str
) -> None:
    data = tiny_interactions()
    ids, scores = knn.recommend_history(history, k=4, on_unknown_items="popular")
    items, counts = _popular(data, 4)
    assert ids.tolist() == items and scores.tolist() == counts
    for mode in ("skip", "error") if history and history[0] != "nope" else ("skip",):
        with pytest.raises(DataError, match=re.escape(f"recommend_history: {what}, so nothing can be folded in; pass on_unknown_items='popular'")):
            knn.recommend_history(history, k=4, on_unknown_items=mode)  # type: ignore[arg-type]
    if history and history[0] == "nope":
        with pytest.raises(UnknownIdError):
            knn.recommend_history(history, k=4)


def test_the_popular_fallback_of_a_history_respects_candidates_and_exclusions(knn: ItemKNN) -> None:
    items, _ = _popular(tiny_interactions(), 6)
    ids, _ = knn.recommend_history([], k=3, on_unknown_items="popular", exclude_items=items[:2])
    assert ids.tolist() == items[2:5]
    ids, _ = knn.recommend_history(["nope"], k=2, on_unknown_items="popular", candidates=items[3:6])
    assert ids.tolist() == items[3:5]


def test_a_history_with_some_known_items_folds_them_in(knn: ItemKNN) -> None:
    a = knn.recommend_history(["nope", 0, 2], k=5, on_unknown_items="skip")
    b = knn.recommend_history([0, 2], k=5)
    c = knn.recommend_history(["nope", 0, 2], k=5, on_unknown_items="popular")
    for x, y in ((a, b), (c, b)):
        assert x[0].tolist() == y[0].tolist()
        np.testing.assert_array_equal(x[1], y[1])
    assert b[1][0] > 0


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ([4.0, 1e39], "column 'ratings' must be finite; got 1e+39 at row 1, which overflows float32"),
        ([4.0, float("nan")], "column 'ratings' must be finite; got nan at row 1"),
        (["4", "5"], "column 'ratings' must be numeric"),
        ([4.0], "ratings must align with items: expected 2 values, got shape (1,)"),
    ],
)
def test_history_ratings_are_checked_as_stored(ratings: list[Any], message: str) -> None:
    model = ItemKNN(k=10, feedback="explicit").fit(tiny_interactions())
    with pytest.raises(DataError, match=re.escape(message)):
        model.recommend_history([0, 2], k=3, ratings=ratings)


def test_als_fold_in_needs_no_scores_of_zero_for_unknown_histories() -> None:
    model = ALS(n_factors=4, reg=1.0, num_threads=1, show_progress=False).fit(tiny_interactions())
    ids, scores = model.recommend_history(["nope"], k=3, on_unknown_items="popular")
    items, counts = _popular(tiny_interactions(), 3)
    assert ids.tolist() == items and scores.tolist() == counts


@pytest.mark.parametrize(
    ("timestamps", "message"),
    [
        ([1.0, float("nan")], "column 'timestamps' has a null or infinite timestamp at row 1"),
        (["881250949", "tomorrow"], "column 'timestamps': cannot parse timestamp 'tomorrow' at row 1"),
        (["881250949", "2020-01-01"], "column 'timestamps' mixes numbers and dates"),
    ],
)
def test_history_timestamps_are_checked_as_training_timestamps(timestamps: list[Any], message: str) -> None:
    from recsys.content import HashingEncoder
    from recsys.models import ContentBased

    model = ContentBased(encoder=HashingEncoder(dim=64), half_life=10.0).fit(tiny_interactions())
    with pytest.raises(DataError, match=re.escape(message)):
        model.recommend_history([0, 2], k=3, timestamps=timestamps)
    # numeric strings are the numbers themselves: 10 time units apart halve the older item's weight
    a = model.recommend_history([0, 2], k=3, timestamps=["100", "110"])
    b = model.recommend_history([0, 2], k=3, timestamps=[100, 110])
    assert a[0].tolist() == b[0].tolist()
    np.testing.assert_array_equal(a[1], b[1])
