"""recsys benchmark on small synthetic data: results files, skipped models, config file, tuning, peers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.evaluation import Evaluator
from recsys.models import EASE
from recsys.split import stratified_split
from tests.cli.conftest import SYN
from tests.conftest import require


def _load(out):
    return json.loads((out / "results.json").read_text())


def _by_name(payload):
    return {r["name"]: r for r in payload["models"] + payload["peers"]}


def test_results_files_metrics_and_records(cli, tmp_path):
    require("matplotlib")
    out = tmp_path / "res"
    code, stdout, err = cli("benchmark", *SYN, "--models", "popular,ease", "--k", "10,5", "--n-boot", "50", "--out", out)
    assert code == 0, err
    for name in ("results.json", "results.md", "accuracy_vs_coverage_novelty.png", "fit_time.png", "ndcg_per_user.png"):
        assert (out / name).stat().st_size > 0
    p = _load(out)
    ease = _by_name(p)["ease"]
    # the numbers are the Evaluator's on the same split, computed independently here
    from recsys.datasets import synthetic

    data = synthetic(n_users=200, n_items=120, n_interactions=4000, seed=42)
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    ref = Evaluator(train, test, k=[5, 10]).evaluate(EASE().fit(train))
    for key, value in ref.summary.items():
        assert ease["metrics"][key] == pytest.approx(value, abs=1e-12), key
    lo, hi = ease["confidence_intervals"]["ndcg@10"]
    assert lo <= ease["metrics"]["ndcg@10"] <= hi
    assert ease["confidence_intervals"]["coverage@10"] is None  # set-level metric: no bootstrap CI
    for field in ("fit_seconds", "recommend_seconds", "peak_memory_mb"):
        assert ease[field] >= 0
    assert ease["params"] == EASE().get_params() and ease["params_source"] == "defaults"
    assert ease["class"] == "recsys.models.ease.EASE"
    assert p["dataset"]["n_interactions"] == 4000 and len(p["dataset"]["ratings_sha256"]) == 64
    assert p["protocol"]["n_train"] == train.nnz and p["protocol"]["k"] == [10, 5]
    assert p["machine"]["cores"] >= 1 and "gpu" in p["machine"] and p["versions"]["numpy"]
    assert p["comparisons"][0]["a"] == "ease" and p["comparisons"][0]["b"] == "popular"
    md = (out / "results.md").read_text()
    assert "| 1 | ease | defaults |" in md and "![fit_time](fit_time.png)" in md and p["dataset"]["ratings_sha256"] in md
    assert "ease" in stdout and "NDCG@10" in stdout  # the terminal table
    # The leaderboard shows f1 beside precision and recall.
    from recsys.cli._report import leaderboard

    header, rows = leaderboard(p)
    assert header[header.index("R@10") + 1] == "F1@10"
    ease_row = next(r for r in rows if r[1] == "ease")
    assert ease_row[header.index("F1@10")] == f"{ref.summary['f1@10']:.4f}" and "| F1@10 |" in md


def test_missing_extra_is_skipped(cli, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gensim" else real(name, *a))
    out = tmp_path / "res"
    code, stdout, err = cli("benchmark", *SYN, "--models", "doc2vec,popular", "--no-plots", "--n-boot", "20", "--out", out)
    assert code == 0
    note = "doc2vec needs gensim (pip install 'recsys[content]')"
    m = _by_name(_load(out))
    assert m["doc2vec"]["status"] == "skipped" and note in m["doc2vec"]["note"] and m["popular"]["status"] == "ok"
    assert f"skipped doc2vec: {note}" in err
    assert note in stdout and note in (out / "results.md").read_text()


def test_config_file_is_equivalent_to_flags(cli, tmp_path):
    flags = tmp_path / "flags"
    code, _, _ = cli("benchmark", *SYN, "--models", "popular,itemknn", "--k", "5,10", "--seed", "7", "--param", "itemknn.k=20",
                     "--n-boot", "30", "--no-plots", "--out", flags)  # fmt: skip
    assert code == 0
    toml = tmp_path / "b.toml"
    toml.write_text(
        'dataset = "synthetic"\nsynthetic_size = "200,120,4000"\nmodels = ["popular", "itemknn"]\nk = [5, 10]\nseed = 7\n'
        f'n_boot = 30\nno_plots = true\nout = "{tmp_path / "cfg"}"\n\n[params.itemknn]\nk = 20\n'
    )
    code, _, err = cli("benchmark", "--config", toml)
    assert code == 0, err
    a, b = _load(flags), _load(tmp_path / "cfg")
    assert a["dataset"]["ratings_sha256"] == b["dataset"]["ratings_sha256"]
    assert a["protocol"] == b["protocol"]
    for name in ("popular", "itemknn"):
        ra, rb = _by_name(a)[name], _by_name(b)[name]
        assert ra["metrics"] == rb["metrics"] and ra["confidence_intervals"] == rb["confidence_intervals"]
        assert ra["params"] == rb["params"]
    assert _by_name(a)["itemknn"]["params"]["k"] == 20 and _by_name(a)["itemknn"]["params_source"] == "config"
    # flags override the file
    code, _, _ = cli("benchmark", "--config", toml, "--models", "popular", "--out", tmp_path / "over")
    assert code == 0 and [r["name"] for r in _load(tmp_path / "over")["models"]] == ["popular"]


def test_bad_config_is_one_line(cli, tmp_path):
    toml = tmp_path / "b.toml"
    toml.write_text('dataset = "synthetic"\nmodles = ["ease"]\n')
    code, _, err = cli("benchmark", "--config", toml)
    assert code == 2 and "unknown key 'modles'" in err and len(err.strip().splitlines()) == 1
    toml.write_text('dataset = "synthetic\n')
    code, _, err = cli("benchmark", "--config", toml)
    assert code == 2 and "is not valid TOML" in err


def test_tune_selects_on_validation_and_evaluates_test_once(cli, tmp_path, monkeypatch):
    calls: list[int] = []
    real = Evaluator.evaluate

    def spy(self, obj, **kw):
        calls.append(self.train.nnz)
        return real(self, obj, **kw)

    monkeypatch.setattr(Evaluator, "evaluate", spy)
    out = tmp_path / "res"
    code, stdout, err = cli("benchmark", *SYN, "--models", "ease,popular", "--tune", "--n-boot", "20", "--no-plots", "--out", out)
    assert code == 0, err
    p = _load(out)
    ease = _by_name(p)["ease"]
    assert ease["params_source"] == "tuned" and ease["tuning"]["n_trials"] == 6
    search = json.loads((out / ease["tuning"]["file"]).read_text())
    assert ease["params"]["reg"] == search["best"]["params"]["reg"]
    assert len(search["trials"]) == 6 and all(t["score"] is not None for t in search["trials"])
    assert _by_name(p)["popular"]["params_source"] == "defaults (nothing to tune)"
    n_train = p["protocol"]["n_train"]
    assert calls.count(n_train) == 2  # the test split: once per model, after the search
    assert len(calls) == 2 + 6 and all(c < n_train for c in calls if c != n_train)
    assert "tuned (6 trials)" in stdout


def test_tune_sample_searches_on_a_user_sample_and_refits_on_all(cli, tmp_path, monkeypatch):
    seen: list[tuple[int, int]] = []  # (users with rows, interactions) of every evaluator's train
    real = Evaluator.evaluate

    def spy(self, obj, **kw):
        t = self.train
        seen.append((int(np.count_nonzero(np.bincount(t.user_index, minlength=t.n_users))), t.nnz))
        return real(self, obj, **kw)

    monkeypatch.setattr(Evaluator, "evaluate", spy)
    out = tmp_path / "res"
    code, stdout, err = cli(
        "benchmark", *SYN, "--models", "ease", "--tune", "--tune-sample", "50", "--n-boot", "20", "--no-plots", "--out", out
    )
    assert code == 0, err
    p = _load(out)
    n_train = p["protocol"]["n_train"]
    assert p["config"]["tune_sample"] == 50 and "tuning on 50 of 200 train users" in err
    searches, final = seen[:-1], seen[-1]
    assert final[1] == n_train  # the winner is refit on all of train and evaluated once on test
    # every validation fit saw the rows of at most the 50 sampled users
    assert len(searches) == 6 and all(users <= 50 and nnz < n_train / 3 for users, nnz in searches)
    assert "refit on all of train" in (out / "results.md").read_text() and "50 random train users" in (out / "results.md").read_text()


@pytest.mark.parametrize("bad", ["0", "-3", "1.5", "abc", "2.0"])
def test_tune_sample_refuses_bad_values(cli, tmp_path, bad):
    code, _, err = cli("benchmark", *SYN, "--models", "popular", "--tune", "--tune-sample", bad, "--out", tmp_path / "o")
    assert code == 2 and "--tune-sample must be" in err and repr(bad) in err


def test_tune_sample_needs_tune(cli, tmp_path):
    code, _, err = cli("benchmark", *SYN, "--models", "popular", "--tune-sample", "0.5", "--out", tmp_path / "o")
    assert code == 2 and "--tune-sample needs --tune" in err


def test_compare_peers(cli, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "surprise" else real(name, *a))
    out = tmp_path / "res"
    code, stdout, err = cli("benchmark", *SYN, "--models", "itemknn", "--compare-peers", "--peers", "implicit-bm25,surprise-svd",
                            "--n-boot", "20", "--no-plots", "--out", out)  # fmt: skip
    assert code == 0, err
    peers = _by_name(_load(out))
    assert peers["implicit-bm25"]["status"] == "ok" and peers["implicit-bm25"]["fit_seconds"] >= 0
    assert 0 < peers["implicit-bm25"]["metrics"]["ndcg@10"] <= 1
    assert peers["surprise-svd"]["status"] == "skipped" and "pip install scikit-surprise" in peers["surprise-svd"]["note"]
    assert "implicit-bm25" in stdout and "peer (implicit)" in stdout


def test_data_file_with_columns_and_temporal_split(cli, tmp_path, ratings_csv):
    out = tmp_path / "res"
    code, _, err = cli("benchmark", "--data", ratings_csv, "--user-col", "uid", "--item-col", "iid", "--rating-col", "stars",
                       "--timestamp-col", "ts", "--split", "temporal", "--models", "popular,itemknn", "--n-boot", "20",
                       "--no-plots", "--out", out)  # fmt: skip
    assert code == 0, err
    p = _load(out)
    assert p["dataset"]["n_users"] == 40 and p["protocol"]["split"] == "temporal"
    assert p["protocol"]["n_test"] == 40 * 2  # floor(0.2 * 10) per user
    assert _by_name(p)["itemknn"]["metrics"]["ndcg@10"] > _by_name(p)["popular"]["metrics"]["ndcg@10"]


def test_parquet_data(cli, tmp_path):
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"u": rng.integers(0, 50, 2000), "i": rng.integers(0, 80, 2000)}).unique(["u", "i"], maintain_order=True)
    frame.write_parquet(tmp_path / "r.parquet")
    out = tmp_path / "res"
    code, _, err = cli("benchmark", "--data", tmp_path / "r.parquet", "--user-col", "u", "--item-col", "i", "--models", "popular,ease",
                       "--no-plots", "--n-boot", "20", "--out", out)  # fmt: skip
    assert code == 0, err
    p = _load(out)
    assert p["dataset"]["n_interactions"] == frame.height and _by_name(p)["ease"]["status"] == "ok"
    assert p["dataset"]["hashed_columns"] == ["u", "i"]
