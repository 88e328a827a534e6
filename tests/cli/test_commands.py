"""fit -> recommend / evaluate round trips on a tiny CSV; tune, datasets and serve."""

from __future__ import annotations

import importlib
import json
import sys
import types

import pandas as pd
import pytest

from recsys import load_model
from recsys.data import Interactions
from recsys.models import ItemKNN
from recsys.testing import assert_rankings_equal, assert_recommendations_equal
from tests.cli.conftest import SYN

COLS = ("--user-col", "uid", "--item-col", "iid", "--rating-col", "stars", "--timestamp-col", "ts")


def test_fit_saves_an_artifact_equal_to_the_api(cli, tmp_path, ratings_csv):
    code, out, err = cli("fit", "--model", "itemknn", "--param", "k=5", "--data", ratings_csv, *COLS, "--out", tmp_path / "m")
    assert code == 0, err
    assert "saved to" in out
    model = load_model(tmp_path / "m")
    data = Interactions.from_frame(pd.read_csv(ratings_csv), user_col="uid", item_col="iid", rating_col="stars", timestamp_col="ts")
    ref = ItemKNN(k=5).fit(data)
    assert model.get_params() == ref.get_params()
    assert_recommendations_equal(model.recommend(["u0", "u1"], k=4), ref.recommend(["u0", "u1"], k=4))


def test_recommend_users_history_and_formats(cli, tmp_path, ratings_csv):
    cli("fit", "--model", "itemknn", "--data", ratings_csv, *COLS, "--out", tmp_path / "m")
    model = load_model(tmp_path / "m")
    code, out, _ = cli("recommend", "--model", tmp_path / "m", "--users", "u0,u3", "--k", "3", "--format", "json")
    assert code == 0
    got = json.loads(out)
    ref = model.recommend(["u0", "u3"], k=3)
    mine = ref[ref.user == "u0"]
    assert_rankings_equal([r["item"] for r in got["u0"]], [r["score"] for r in got["u0"]], mine["item"], mine["score"])
    assert all(r["item"] % 2 == 0 for r in got["u0"]) and all(r["item"] % 2 == 1 for r in got["u3"])  # own taste group
    code, out, _ = cli("recommend", "--model", tmp_path / "m", "--history", "0,2,4", "--k", "5", "--format", "csv")
    frame = pd.read_csv(pd.io.common.StringIO(out))
    ids, scores = model.recommend_history([0, 2, 4], k=5)
    assert_rankings_equal(frame["item"], frame["score"], ids, scores)
    assert not {0, 2, 4} & set(frame["item"])
    code, out, _ = cli("recommend", "--model", tmp_path / "m", "--users", "u1", "--k", "2")
    assert code == 0 and "u1" in out and "score" in out
    code, _, err = cli("recommend", "--model", tmp_path / "m", "--users", "nobody")
    assert code == 1 and "nobody" in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli("recommend", "--model", tmp_path / "m", "--users", "nobody", "--on-unknown", "popular", "--format", "json")
    assert code == 0 and len(json.loads(out)["nobody"]) == 10
    code, _, err = cli("recommend", "--model", tmp_path / "m", "--users", "u1", "--history", "1")
    assert code == 2 and "exactly one of" in err


def test_evaluate_on_the_split_the_model_was_fitted_on(cli, tmp_path, ratings_csv):
    split = ("--split", "stratified", "--seed", "3")
    cli("fit", "--model", "itemknn", "--data", ratings_csv, *COLS, *split, "--out", tmp_path / "m")
    code, out, err = cli("evaluate", "--model", tmp_path / "m", "--data", ratings_csv, *COLS, *split, "--k", "5",
                         "--json", tmp_path / "e.json")  # fmt: skip
    assert code == 0, err
    assert "ndcg@5" in out and "warning" not in err
    d = json.loads((tmp_path / "e.json").read_text())
    from recsys.evaluation import Evaluator
    from recsys.split import stratified_split

    data = Interactions.from_frame(pd.read_csv(ratings_csv), user_col="uid", item_col="iid", rating_col="stars", timestamp_col="ts")
    train, test = stratified_split(data, seed=3)
    ref = Evaluator(train, test, k=5, metrics=["ndcg"]).evaluate(ItemKNN().fit(train))
    assert d["summary"]["ndcg@5"] == pytest.approx(ref.summary["ndcg@5"])
    # a model fitted on all rows has seen the test rows: warned
    cli("fit", "--model", "itemknn", "--data", ratings_csv, *COLS, "--out", tmp_path / "all")
    code, _, err = cli("evaluate", "--model", tmp_path / "all", "--data", ratings_csv, *COLS, *split)
    assert code == 0 and "warning: the model saw" in err


def test_evaluate_a_recommendations_file(cli, tmp_path, ratings_csv):
    recs = tmp_path / "recs.csv"
    pd.DataFrame({"user": ["u0", "u0"], "item": [0, 2], "rank": [1, 2]}).to_csv(recs, index=False)
    code, out, err = cli("evaluate", "--recommendations", recs, "--data", ratings_csv, *COLS, "--metrics", "precision,recall")
    assert code == 0, err
    assert "precision@10" in out and "ndcg" not in out


def test_tune_command_writes_the_search_and_the_model(cli, tmp_path):
    code, out, err = cli("tune", "--model", "ease", *SYN, "--space", "reg=10,100,1000", "--out", tmp_path / "s.json",
                         "--save-model", tmp_path / "best")  # fmt: skip
    assert code == 0, err
    d = json.loads((tmp_path / "s.json").read_text())
    assert [t["params"]["reg"] for t in d["trials"]] == [10, 100, 1000]
    assert d["test"]["metric"] == "ndcg@10" and 0 < d["test"]["score"] < 1
    assert load_model(tmp_path / "best").reg == d["best"]["params"]["reg"]
    assert "best" in out
    code, out, _ = cli("fit", "--model", "ease", "--params-from", tmp_path / "s.json", *SYN, "--out", tmp_path / "m")
    assert code == 0 and load_model(tmp_path / "m").reg == d["best"]["params"]["reg"]
    code, _, err = cli("tune", "--model", "ease", *SYN, "--space", "reg=float:1:9:sqrt", "--out", tmp_path / "x.json")
    assert code == 2 and "must be 'log'" in err


def test_datasets_list_and_describe(cli, tmp_path):
    code, out, _ = cli("datasets", "list", "--data-dir", tmp_path)
    assert code == 0 and "ml-100k" in out and "ml-25m" in out and "synthetic" in out
    code, out, _ = cli("datasets", "describe", "synthetic", "--synthetic-size", "50,40,500", "--json")
    d = json.loads(out)
    assert d["interactions"] == "500" and d["users"] == "50"
    code, _, err = cli("datasets", "describe", "ml-100k", "--data-dir", tmp_path, "--no-download")
    error = [ln for ln in err.splitlines() if "error" in ln]
    assert code == 1 and len(error) == 1 and "not available locally" in error[0] and error[0].startswith("recsys datasets: error:")


def test_datasets_describe_ml100k(cli, ml100k_dir):
    code, out, err = cli("datasets", "describe", "ml-100k", "--data-dir", ml100k_dir, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["interactions"] == "100,000" and d["users"] == "943" and d["ratings"].startswith("1: 6,110")


def test_serve_calls_recsys_serving(cli, tmp_path, ratings_csv, monkeypatch):
    cli("fit", "--model", "popular", "--data", ratings_csv, *COLS, "--out", tmp_path / "m")
    calls = []
    fake = types.ModuleType("recsys.serving")
    fake.run = lambda model, **kw: calls.append((model, kw))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "recsys.serving", fake)
    code, _, _ = cli("serve", "--model", tmp_path / "m", "--port", "0", "--workers", "2")
    assert code == 0 and calls == [(str(tmp_path / "m"), {"host": "127.0.0.1", "port": 0, "workers": 2})]


def test_serve_without_the_serve_extra_is_one_line(cli, tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    real = importlib.import_module

    def missing(name, *a):
        if name == "recsys.serving":  # what importing it does when the extra is not installed
            raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")
        return real(name, *a)

    monkeypatch.setattr(importlib, "import_module", missing)
    code, _, err = cli("serve", "--model", tmp_path / "m")
    assert code == 1 and err.strip() == "recsys serve: error: the HTTP service needs fastapi: pip install 'recsys[serve]'"
