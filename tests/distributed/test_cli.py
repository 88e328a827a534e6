"""recsys recommend --all-users --out and recsys evaluate --recommendations DIR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import load_model
from recsys.cli import main
from recsys.data import Interactions
from recsys.distributed import PartitionedRecommendations

COLS = ("--user-col", "uid", "--item-col", "iid", "--rating-col", "stars")
SPLIT = ("--split", "stratified", "--seed", "3")


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    rows = [(f"u{u}", int(i), float(rng.integers(1, 6))) for u in range(30) for i in rng.choice(25, 9, replace=False)]
    path = tmp_path / "ratings.csv"
    pd.DataFrame(rows, columns=["uid", "iid", "stars"]).to_csv(path, index=False)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_recommend_all_users_and_evaluate_the_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path, ratings_csv: Path) -> None:
    code, _, err = run(capsys, "fit", "--model", "ease", "--data", ratings_csv, *COLS, *SPLIT, "--out", tmp_path / "m")
    assert code == 0, err
    code, _, err = run(capsys, "recommend", "--model", tmp_path / "m", "--all-users", "--k", "4", "--block-size", "7",
                       "--out", tmp_path / "recs")  # fmt: skip
    assert code == 0, err
    assert "in 5 partitions" in err  # 30 train users in blocks of 7
    model = load_model(tmp_path / "m")
    got = PartitionedRecommendations(tmp_path / "recs").read()
    pd.testing.assert_frame_equal(got, model.recommend(model.users_.ids, k=4), check_exact=True)

    code, out, err = run(capsys, "evaluate", "--recommendations", tmp_path / "recs", "--data", ratings_csv, *COLS, *SPLIT,
                         "--k", "4", "--json", tmp_path / "e.json")  # fmt: skip
    assert code == 0, err
    assert "ndcg@4" in out and "local engine" in out
    from recsys.evaluation import Evaluator
    from recsys.split import stratified_split

    data = Interactions.from_frame(pd.read_csv(ratings_csv), user_col="uid", item_col="iid", rating_col="stars")
    train, test = stratified_split(data, seed=3)
    ref = Evaluator(train, test, k=4).evaluate(got).summary
    summary = json.loads((tmp_path / "e.json").read_text())["summary"]
    assert set(summary) == set(ref)
    for key, value in ref.items():
        assert summary[key] == pytest.approx(value, rel=0, abs=1e-12), key


def test_recommend_batch_refusals(capsys: pytest.CaptureFixture[str], tmp_path: Path, ratings_csv: Path) -> None:
    run(capsys, "fit", "--model", "itemknn", "--data", ratings_csv, *COLS, "--out", tmp_path / "m")
    users = tmp_path / "users.txt"
    users.write_text("u1\nnobody\nu2\n")
    code, _, err = run(capsys, "recommend", "--model", tmp_path / "m", "--users-file", users, "--out", tmp_path / "r")
    assert code != 0 and "nobody" in err
    assert not (tmp_path / "r").exists()
    code, _, err = run(capsys, "recommend", "--model", tmp_path / "m", "--all-users")
    assert code == 2 and "go with --out" in err
    code, _, err = run(capsys, "recommend", "--model", tmp_path / "m", "--all-users", "--out", tmp_path / "ratings.csv")
    assert code != 0 and "is a file" in err
