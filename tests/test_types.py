"""The named types of the public API: what they admit, and that the public signatures use them."""

from __future__ import annotations

import typing

import pandas as pd
import polars as pl
import pytest

from recsys import Interactions
from recsys.evaluation import Evaluator
from recsys.models.base import Recommender
from recsys.types import FrameLike, Id, Ids, IdSequence, InteractionsLike


def _members(alias: object) -> set[object]:
    """The members of a union, its forward references (polars, Interactions) resolved."""

    def holder() -> None: ...

    holder.__annotations__ = {"x": alias}
    return set(typing.get_args(typing.get_type_hints(holder)["x"]))


def test_the_aliases_name_what_the_data_layer_accepts() -> None:
    assert {int, str} <= _members(Id) and not ({float, bool} & _members(Id) - {int})
    assert {pd.Series, pd.Index, pl.Series} <= _members(typing.get_type_hints(Recommender.recommend)["users"])
    assert _members(FrameLike) == {pd.DataFrame, pl.DataFrame, pl.LazyFrame}
    assert _members(Ids) == _members(Id) | _members(IdSequence)


@pytest.mark.parametrize(
    ("function", "argument", "alias"),
    [
        (Recommender.recommend, "users", Ids),
        (Recommender.recommend_one, "user", Id),
        (Recommender.similar_items, "items", Ids),
        (Interactions.from_frame, "df", FrameLike),
        (Interactions.from_frame, "item_features", FrameLike | None),
        (Interactions.from_arrays, "user_features", FrameLike | None),
        (Evaluator.__init__, "train", InteractionsLike),
        (Evaluator.__init__, "test", InteractionsLike),
        (Evaluator.__init__, "item_features", FrameLike | None),
    ],
)
def test_public_signatures_use_the_named_types(function: typing.Any, argument: str, alias: object) -> None:
    hint = typing.get_type_hints(function)[argument]
    assert _members(hint) == _members(alias)
