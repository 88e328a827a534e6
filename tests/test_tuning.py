"""recsys.tuning: every trial's score checked against an independent fit + Evaluator run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.content import HashingEncoder
from recsys.datasets import synthetic
from recsys.errors import ParameterError, RecsysError
from recsys.evaluation import Evaluator
from recsys.models import EASE, ContentBased, Hybrid, ItemKNN, Popular
from recsys.split import stratified_split, train_validation_split
from recsys.testing import assert_recommendations_equal, tiny_interactions
from recsys.tuning import Float, Int, TuningResult, apply_params, search
from tests.conftest import require


@pytest.fixture(scope="module")
def train():
    data = synthetic(n_users=300, n_items=150, n_interactions=6000, seed=3)
    return stratified_split(data, ratio=0.75, seed=42)[0]


def _valid_score(model, train, metric="ndcg", k=10, seed=1234):
    fit, valid = train_validation_split(train, seed=seed)
    return Evaluator(fit, valid, k=k, metrics=[metric]).evaluate(model.fit(fit)).summary[f"{metric}@{k}"]


def test_grid_scores_every_setting_in_order_and_refits_the_best(train):
    regs = [1.0, 50.0, 5000.0]
    res = search(EASE(), {"reg": regs}, train, show_progress=False)
    assert res.method == "grid"
    assert [t.params for t in res.trials] == [{"reg": r} for r in regs]
    expected = [_valid_score(EASE(reg=r), train) for r in regs]
    np.testing.assert_allclose([t.score for t in res.trials], expected, rtol=1e-6)
    assert res.best_params == {"reg": regs[int(np.argmax(expected))]}
    assert res.best_score == pytest.approx(max(expected))
    # the winner is refitted on ALL of train, not on the fit part
    assert res.model is not None and res.model.seen_.nnz == train.nnz
    ref = EASE(reg=res.best_params["reg"]).fit(train)
    users = train.users.ids[:20]
    assert_recommendations_equal(res.model.recommend(users, k=5), ref.recommend(users, k=5))
    assert res.validation["n_fit"] + res.validation["n_validation"] == train.nnz


def test_model_given_is_not_changed_and_class_means_defaults(train):
    model = ItemKNN(k=7)
    res = search(model, {"shrinkage": [0.0, 10.0]}, train, show_progress=False, refit=False)
    assert model.get_params()["shrinkage"] == ItemKNN().shrinkage and not model.is_fitted
    assert all(t.params.keys() == {"shrinkage"} for t in res.trials)
    assert res.best_config["params"]["k"] == 7  # fixed parameters kept
    assert res.model is None
    res2 = search(ItemKNN, {"k": [5]}, train, show_progress=False, refit=False)
    assert res2.base_config == ItemKNN().get_config()


def test_random_search_is_seeded_without_repeats_and_within_ranges(train):
    space = {"reg": Float(1.0, 1000.0, log=True), "max_items": Int(1000, 5000)}
    a = search(EASE(), space, train, method="random", n_trials=5, seed=7, show_progress=False, refit=False)
    b = search(EASE(), space, train, method="random", n_trials=5, seed=7, show_progress=False, refit=False)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert len({json.dumps(t.params, sort_keys=True) for t in a.trials}) == 5
    for t in a.trials:
        assert 1.0 <= t.params["reg"] <= 1000.0 and 1000 <= t.params["max_items"] <= 5000
        assert isinstance(t.params["max_items"], int)


def test_random_over_a_small_finite_space_runs_it_whole(train):
    res = search(EASE(), {"reg": [10.0, 20.0, 30.0]}, train, method="random", n_trials=10, show_progress=False, refit=False)
    assert sorted(t.params["reg"] for t in res.trials) == [10.0, 20.0, 30.0]
    res = search(EASE(), {"reg": [10.0, 20.0, 30.0, 40.0]}, train, method="random", n_trials=2, show_progress=False, refit=False)
    assert len(res.trials) == 2 and res.trials[0].params != res.trials[1].params


def test_auto_chooses_grid_only_when_it_fits(train):
    assert search(EASE(), {"reg": [1.0, 2.0]}, train, n_trials=5, show_progress=False, refit=False).method == "grid"
    res = search(EASE(), {"reg": [1.0, 2.0, 3.0]}, train, n_trials=2, show_progress=False, refit=False)
    assert res.method in ("random", "optuna") and len(res.trials) == 2


def test_failed_trials_are_recorded_and_all_failing_raises(train):
    res = search(EASE(), {"max_items": [1, 20_000]}, train, show_progress=False, refit=False)
    failed, ok = res.trials
    assert failed.status == "failed" and failed.score is None and "ParameterError" in failed.error
    assert ok.status == "ok" and res.best_params == {"max_items": 20_000} and res.n_failed == 1
    with pytest.raises(RecsysError, match="every trial .* failed.*ParameterError"):
        search(EASE(), {"max_items": [1, 2]}, train, show_progress=False)


def test_lower_is_better_metrics_are_minimised(train):
    res = search(ItemKNN(), {"k": [2, 50]}, train, metric="gini@10", show_progress=False, refit=False)
    assert res.direction == "minimize" and res.metric == "gini@10"
    assert res.best_score == min(t.score for t in res.trials)
    assert search(ItemKNN(), {"k": [2]}, train, metric="recall@5", show_progress=False, refit=False).metric == "recall@5"


def test_dotted_names_reach_nested_components():
    data = tiny_interactions()
    model = Hybrid(cf=ItemKNN(), content=ContentBased(encoder=HashingEncoder(dim=64)))
    res = search(model, {"cf.k": [3, 9], "content.encoder.dim": [32]}, data, k=3, show_progress=False)
    assert {t.params["cf.k"] for t in res.trials} == {3, 9}
    fitted = res.model
    assert fitted.cf_.k == res.best_params["cf.k"] and fitted.content_.item_embeddings_.shape[1] == 32
    cfg = apply_params(model.get_config(), {"weight": 0.2})
    assert cfg["params"]["weight"] == 0.2 and model.weight == 0.5


def test_bad_spaces_and_names_are_one_clear_error(train):
    with pytest.raises(ParameterError, match="EASE has no parameter 'lambda'.*valid parameters: reg"):
        search(EASE(), {"lambda": [1.0]}, train)
    with pytest.raises(ParameterError, match="grid search needs lists.*'reg' is a range"):
        search(EASE(), {"reg": Float(1, 2)}, train, method="grid")
    with pytest.raises(ParameterError, match="non-empty list"):
        search(EASE(), {"reg": []}, train)
    with pytest.raises(ParameterError, match="unknown metric 'ndgc'"):
        search(EASE(), {"reg": [1.0]}, train, metric="ndgc")
    with pytest.raises(ParameterError, match="cannot set 'cf.k'.*'cf' is None"):
        search(Hybrid(), {"cf.k": [1]}, train)
    with pytest.raises(ParameterError):
        Float(5.0, 1.0)
    with pytest.raises(ParameterError):
        Int(0, 10, log=True)


def test_timeout_stops_starting_trials(train):
    res = search(EASE(), {"reg": [1.0, 2.0, 3.0]}, train, timeout=1e-9, show_progress=False, refit=False)
    assert len(res.trials) == 1


def test_given_validation_split_is_used(train):
    fit, valid = stratified_split(train, ratio=0.5, seed=5)
    res = search(Popular(), {"half_life": [None]}, train, validation=(fit, valid), show_progress=False)
    assert res.validation["n_fit"] == fit.nnz and res.validation["split"] == "given"
    assert res.trials[0].score == pytest.approx(
        Evaluator(fit, valid, k=10, metrics=["ndcg"]).evaluate(Popular().fit(fit)).summary["ndcg@10"]
    )


def test_json_holds_space_trials_and_winner_and_loads_back(train, tmp_path):
    path = tmp_path / "s" / "ease.json"
    res = search(EASE(), {"reg": [10.0, 100.0], "max_items": Int(100, 20000)}, train, method="random", n_trials=3,
                 path=path, show_progress=False)  # fmt: skip
    d = json.loads(path.read_text())
    assert d["space"] == {"reg": [10.0, 100.0], "max_items": {"type": "int", "low": 100, "high": 20000, "log": False}}
    assert [t["score"] for t in d["trials"]] == [t.score for t in res.trials]
    assert d["best"]["params"] == res.best_params and d["metric"] == "ndcg@10"
    back = TuningResult.load(path)
    assert back.best_params == res.best_params and len(back.trials) == 3
    assert back.best_model().get_params() == res.model.get_params()


def test_optuna_search_is_seeded(train):
    require("optuna")
    space = {"reg": Float(1.0, 2000.0, log=True)}
    a = search(EASE(), space, train, method="optuna", n_trials=4, seed=3, show_progress=False, refit=False)
    b = search(EASE(), space, train, method="optuna", n_trials=4, seed=3, show_progress=False, refit=False)
    assert a.method == "optuna" and len(a.trials) == 4
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert a.trials[0].score == pytest.approx(_valid_score(EASE(reg=a.trials[0].params["reg"]), train, seed=3))


def test_save_replaces_only_a_tuning_result(train, tmp_path):
    data = tmp_path / "ratings.csv"
    data.write_text("user,item\n1,2\n")
    with pytest.raises(ParameterError, match="refusing to write the tuning result"):
        search(Popular(), {"half_life": [None]}, train, path=data, show_progress=False)
    assert data.read_text() == "user,item\n1,2\n"
    path = tmp_path / "s.json"
    res = search(Popular(), {"half_life": [None]}, train, path=path, refit=False, show_progress=False)
    res.save(path)  # its own result: replaced
    assert TuningResult.load(path).best_params == {"half_life": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.csv", "s.json"]
    with pytest.raises(ParameterError, match="not a tuning result"):
        res.save(data)
    assert data.read_text() == "user,item\n1,2\n"
