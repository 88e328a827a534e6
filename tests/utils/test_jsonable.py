"""to_jsonable / from_jsonable / json_float: one converter for configs, results and reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import recsys.cli._common
import recsys.evaluation.evaluator
from recsys._utils.jsonable import from_jsonable, json_float, to_jsonable
from recsys.content import HashingEncoder
from recsys.errors import ParameterError
from recsys.models import EASE, ItemKNN, Popular


def test_plain_json_values_pass_unchanged() -> None:
    value = {"a": [1, 2.5, "x", None, True, False], "b": {"c": -3}}
    out = to_jsonable(value)
    assert out == value and json.loads(json.dumps(out)) == value


def test_numpy_scalars_become_python_scalars() -> None:
    out = to_jsonable([np.int32(4), np.float32(0.5), np.bool_(True), np.int64(-2), np.float64(1e-3)])
    assert out == [4, 0.5, True, -2, 1e-3]
    assert [type(v) for v in out] == [int, float, bool, int, float]


def test_numpy_arrays_become_nested_lists() -> None:
    out = to_jsonable({"m": np.arange(6, dtype=np.int16).reshape(2, 3), "v": np.array([0.5, np.nan])})
    assert out == {"m": [[0, 1, 2], [3, 4, 5]], "v": [0.5, None]}
    assert type(out["m"][0][0]) is int


def test_tuples_become_lists_and_keys_strings() -> None:
    assert to_jsonable({1: (2, (3, 4)), None: ()}) == {"1": [2, [3, 4]], "None": []}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float32("nan"), np.float64("-inf")])
def test_non_finite_floats_are_null_or_kept(bad: float) -> None:
    assert to_jsonable({"x": [bad]}) == {"x": [None]}
    kept = to_jsonable(bad, nonfinite="keep")
    assert type(kept) is float and (math.isnan(kept) if math.isnan(bad) else kept == float(bad))
    assert json_float(bad) is None


def test_json_float() -> None:
    assert json_float(None) is None
    assert json_float(0.25) == 0.25 and type(json_float(np.float32(0.25))) is float  # type: ignore[arg-type]


def test_components_round_trip_through_config() -> None:
    enc = HashingEncoder(dim=16)
    model = ItemKNN(k=7)
    out = to_jsonable({"encoder": enc, "models": [model, Popular()]})
    assert out["encoder"] == {"__config__": enc.get_config()}
    text = json.dumps(out)
    back = from_jsonable(json.loads(text))
    assert back["encoder"] == enc
    assert isinstance(back["models"][0], ItemKNN) and back["models"][0].get_params() == model.get_params()
    assert isinstance(back["models"][1], Popular)


def test_from_jsonable_leaves_plain_values() -> None:
    assert from_jsonable({"a": [1, {"b": None}], "c": "x"}) == {"a": [1, {"b": None}], "c": "x"}


def test_values_without_a_json_form_are_refused_with_the_name() -> None:
    with pytest.raises(ParameterError, match=r"the thing \{1, 2\} cannot be written to JSON \(set\)"):
        to_jsonable({"s": {1, 2}}, what="the thing")
    with pytest.raises(ParameterError, match="cannot be written to JSON"):
        to_jsonable(EASE)  # a class, not a component instance


def test_every_former_copy_is_this_one() -> None:
    assert recsys.cli._common.clean_json is to_jsonable
    assert recsys.evaluation.evaluator._json_float is json_float
    # a model's config keeps an infinite parameter (Python's json writes it) and numpy values as Python ones
    cfg = EASE(reg=np.float64(250.0)).get_config()  # type: ignore[arg-type]
    assert type(cfg["params"]["reg"]) is float and cfg["params"]["reg"] == 250.0
