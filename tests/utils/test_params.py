"""The one home of hyper-parameter checks: every message names the owner, the parameter, the rule and the value."""

from __future__ import annotations

import numpy as np
import pytest

from recsys._utils.params import check_choice, check_float, check_int, check_seed
from recsys.errors import ParameterError


def test_check_int_accepts_ints_and_numpy_ints() -> None:
    assert check_int("M", "k", 3, low=1) == 3
    out = check_int("M", "k", np.int64(7), low=1, high=7)
    assert out == 7 and type(out) is int


@pytest.mark.parametrize(
    "value,low,high,rule",
    [
        (0, 1, None, "an int >= 1"),
        (6, None, 5, "an int <= 5"),
        (51, 1, 50, r"an int in \[1, 50\]"),
        (True, 0, None, "an int >= 0"),
        (np.bool_(True), 0, None, "an int >= 0"),
        (2.0, 1, None, "an int >= 1"),
        ("3", 1, None, "an int >= 1"),
    ],
)
def test_check_int_message(value: object, low: int | None, high: int | None, rule: str) -> None:
    with pytest.raises(ParameterError, match=rf"^The 'k' parameter of Owner\.m must be {rule}\. Got {value!r} instead\.$"):
        check_int("Owner.m", "k", value, low=low, high=high)


def test_check_float_ranges() -> None:
    assert check_float("M", "x", 1, low=0.0) == 1.0
    assert check_float("M", "x", 0.0, low=0.0) == 0.0
    with pytest.raises(ParameterError, match=r"^The 'x' parameter of M must be a float > 0\.0 and < 1\.0\. Got 1\.0 instead\.$"):
        check_float("M", "x", 1.0, low=0.0, high=1.0, low_open=True, high_open=True)
    with pytest.raises(ParameterError, match=r"must be a float > 0\.0\. Got 0\.0 instead"):
        check_float("M", "x", 0.0, low=0.0, low_open=True)
    # a non-finite value is told the rule includes finiteness
    with pytest.raises(ParameterError, match=r"must be a finite float >= 0\.0\. Got inf instead"):
        check_float("M", "x", float("inf"), low=0.0)
    with pytest.raises(ParameterError, match=r"must be a float\. Got 'a' instead"):
        check_float("M", "x", "a")
    with pytest.raises(ParameterError, match=r"Got True instead"):
        check_float("M", "x", True)


def test_check_choice() -> None:
    assert check_choice("M", "by", "user", ("user", "item")) == "user"
    with pytest.raises(ParameterError, match=r"^The 'by' parameter of M must be one of 'user', 'item'\. Got 'row' instead\.$"):
        check_choice("M", "by", "row", ("user", "item"))
    # values that cannot be compared with ==, e.g. arrays, are refused with the same message
    with pytest.raises(ParameterError, match="must be one of 'user', 'item'"):
        check_choice("M", "by", np.array(["user", "item"]), ("user", "item"))
    with pytest.raises(ParameterError, match="must be one of"):
        check_choice("M", "by", ["user"], ("user", "item"))


def test_check_seed() -> None:
    assert check_seed("M", "seed", None) is None
    assert check_seed("M", "seed", 0) == 0
    with pytest.raises(ParameterError, match=r"'seed' parameter of M must be an int >= 0\. Got -1"):
        check_seed("M", "seed", -1)


# -- the parameter mixin of models and encoders ----------------------------------------------

from recsys._utils.params import ParamsMixin  # noqa: E402
from recsys.content import HashingEncoder, TextEncoder  # noqa: E402
from recsys.models import EASE, Recommender  # noqa: E402


def test_models_and_encoders_share_one_mixin() -> None:
    assert issubclass(Recommender, ParamsMixin) and issubclass(TextEncoder, ParamsMixin)
    for name in ("_param_names", "get_params", "set_params", "get_config", "__repr__"):
        assert name not in vars(Recommender) and name not in vars(TextEncoder), name


def test_params_repr_and_set_params_on_both() -> None:
    model, enc = EASE(reg=10.0), HashingEncoder(dim=8)
    assert model.get_params() == {"reg": 10.0, "max_items": 20000}
    assert repr(model) == "EASE(reg=10.0, max_items=20000)"
    assert repr(enc) == "HashingEncoder(dim=8, idf=True, ngrams=1)"
    assert enc.set_params(dim=4) is enc and enc.dim == 4
    with pytest.raises(ParameterError, match="HashingEncoder has no parameter 'size'; valid parameters: dim, idf, ngrams"):
        enc.set_params(size=3)
    with pytest.raises(ParameterError, match="EASE has no parameter 'k'"):
        model.set_params(k=3)


def test_configs_round_trip_and_check_the_class() -> None:
    enc = HashingEncoder(dim=8, ngrams=2)
    assert TextEncoder.from_config(enc.get_config()) == enc
    assert Recommender.from_config(EASE(reg=3.0).get_config()).get_params() == EASE(reg=3.0).get_params()
    with pytest.raises(ParameterError, match="a model config needs a 'class' entry"):
        Recommender.from_config({"params": {}})
    with pytest.raises(ParameterError, match="an encoder config needs a 'class' entry"):
        TextEncoder.from_config([])  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="is not a Recommender"):
        Recommender.from_config(enc.get_config())
    with pytest.raises(ParameterError, match="is not a TextEncoder"):
        TextEncoder.from_config(EASE().get_config())
    with pytest.raises(ParameterError, match="config for EASE does not match its parameters"):
        Recommender.from_config({"class": "EASE", "params": {"nope": 1}})


def test_upgrade_params_is_applied_to_configs() -> None:
    class Renamed(ParamsMixin):
        def __init__(self, size: int = 1) -> None:
            self.size = size

        @classmethod
        def _upgrade_params(cls, params: dict[str, object]) -> dict[str, object]:
            return {"size": params["old_size"]} if "old_size" in params else params

    from recsys._utils.registry import class_path, register_component

    register_component(Renamed)
    built = ParamsMixin._build_from_config({"class": class_path(Renamed), "params": {"old_size": 5}}, Renamed, "a")
    assert isinstance(built, Renamed) and built.size == 5


def test_former_inline_checks_give_the_shared_message(tmp_path: object) -> None:
    import pandas as pd

    from recsys.evaluation import Evaluator
    from recsys.serving import ModelStore

    ev = Evaluator(pd.DataFrame({"user": [1, 2], "item": [1, 2]}), pd.DataFrame({"user": [1, 2], "item": [2, 1]}), k=1, metrics=["hit_rate"])
    res = ev.evaluate(pd.DataFrame({"user": [1, 2], "item": [2, 2], "rank": [1, 1]}))
    with pytest.raises(ParameterError, match=r"^The 'n_boot' parameter of confidence_intervals must be an int >= 2\. Got 1 instead\.$"):
        res.confidence_intervals(n_boot=1)
    with pytest.raises(ParameterError, match=r"'level' parameter of confidence_intervals must be a float > 0\.0 and < 1\.0\. Got 1\.5"):
        res.confidence_intervals(level=1.5)
    with pytest.raises(ParameterError, match=r"'poll_interval' parameter of ModelStore must be a float >= 0\.0\. Got -1"):
        ModelStore(tmp_path, poll_interval=-1)  # type: ignore[arg-type]
