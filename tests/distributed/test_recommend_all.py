"""recommend_all (local engine): equal to recommend, resumable, refusing what it must."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import load_model
from recsys.distributed import PartitionedRecommendations, RayConnectionError, evaluate_distributed, recommend_all
from recsys.errors import DataError, NotSupportedError, ParameterError, UnknownIdError
from tests.conftest import require
from tests.distributed.conftest import MODELS


@pytest.mark.parametrize("name", list(MODELS))
def test_local_output_equals_recommend(name: str, artifacts: dict[str, Path], tmp_path: Path) -> None:
    out = recommend_all(artifacts[name], k=7, out=tmp_path / "recs", block_size=37, progress=False)
    model = load_model(artifacts[name])
    users = model.users_.ids
    expected = model.recommend(users, k=7)
    assert out.n_blocks == 4  # 120 users in blocks of 37
    parts = sorted(p.name for p in (tmp_path / "recs").glob("part-*.parquet"))
    assert parts == [f"part-{b:05d}.parquet" for b in range(4)]
    # each partition holds exactly its block of users, in order
    first = pd.read_parquet(tmp_path / "recs" / "part-00001.parquet")
    assert first["user"].unique().tolist() == list(users[37:74])
    got = out.read()
    assert list(got.columns) == ["user", "item", "score", "rank"]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_given_users_and_options(artifacts: dict[str, Path], tmp_path: Path) -> None:
    model = load_model(artifacts["ease"])
    users = model.users_.ids[[5, 3, 80, 11]]
    got = recommend_all(artifacts["ease"], users, k=3, out=tmp_path / "r", block_size=3, exclude_seen=False, progress=False)
    expected = model.recommend(users, k=3, exclude_seen=False)
    pd.testing.assert_frame_equal(got.read(), expected, check_exact=True)
    assert got.n_blocks == 2


def test_resume_skips_complete_partitions(artifacts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "recs"
    first = recommend_all(artifacts["als"], k=5, out=out, block_size=50, progress=False).read()
    # an interrupted run: one partition missing, a stale temporary file, the manifest not yet complete
    (out / "part-00001.parquet").unlink()
    (out / ".part-00001.parquet.abc123.tmp").write_bytes(b"half")
    manifest = json.loads((out / "_recsys_recommendations.json").read_text())
    (out / "_recsys_recommendations.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(DataError, match="unfinished recommend_all output \\(2 of 3 partitions"):
        PartitionedRecommendations(out).read()
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    again = recommend_all(artifacts["als"], k=5, out=out, block_size=50, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet") if p.name in kept} == kept
    assert sorted(p.name for p in out.iterdir()) == [
        "_recsys_recommendations.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"
    ]
    pd.testing.assert_frame_equal(again.read(), first, check_exact=True)


def test_refuses_foreign_output_directory(artifacts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match=f"{out}.*notes.txt"):
        recommend_all(artifacts["ease"], out=out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="is a file"):
        recommend_all(artifacts["ease"], out=tmp_path / "file", progress=False)


def test_refuses_output_of_a_different_run(artifacts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "recs"
    recommend_all(artifacts["ease"], k=5, out=out, block_size=50, progress=False)
    with pytest.raises(ParameterError, match="different run \\(it differs in k\\)"):
        recommend_all(artifacts["ease"], k=6, out=out, block_size=50, progress=False)
    with pytest.raises(ParameterError, match="differs in artifact_sha256"):
        recommend_all(artifacts["als"], k=5, out=out, block_size=50, progress=False)
    (out / "extra.parquet").write_bytes(b"")
    with pytest.raises(ParameterError, match="did not write \\(extra.parquet\\)"):
        recommend_all(artifacts["ease"], k=5, out=out, block_size=50, progress=False)


def test_refuses_unknown_and_repeated_users(artifacts: dict[str, Path], tmp_path: Path) -> None:
    known = load_model(artifacts["ease"]).users_.ids[:2].tolist()
    with pytest.raises(UnknownIdError, match="2 user ids not in the training data \\(first: 99999, 88888\\)"):
        recommend_all(artifacts["ease"], known + [99999, 88888], out=tmp_path / "r", progress=False)
    with pytest.raises(DataError, match="appears more than once"):
        recommend_all(artifacts["ease"], known + known[:1], out=tmp_path / "r", progress=False)
    with pytest.raises(DataError, match="users is empty"):
        recommend_all(artifacts["ease"], [], out=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()  # nothing written before the users were checked


def test_unreachable_ray_address_fails_fast_without_output(artifacts: dict[str, Path], tmp_path: Path) -> None:
    require("ray")
    with pytest.raises(RayConnectionError, match="cannot reach the Ray cluster at '127.0.0.1:1'"):
        recommend_all(artifacts["ease"], out=tmp_path / "r", engine="ray", address="127.0.0.1:1", progress=False)
    with pytest.raises(ParameterError, match="'address' parameter must be a non-empty string"):
        recommend_all(artifacts["ease"], out=tmp_path / "r", engine="ray", address="", progress=False)
    assert not (tmp_path / "r").exists()


def test_evaluate_refuses_a_foreign_directory_and_rating_metrics(split: tuple, tmp_path: Path) -> None:
    train, test = split
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="holds no recommend_all output"):
        evaluate_distributed(tmp_path / "x", test, train=train)
    with pytest.raises(NotSupportedError, match="cannot compute rmse: they need a model's predictions"):
        evaluate_distributed(tmp_path / "x", test, train=train, metrics=["ndcg", "rmse"])


@pytest.mark.parametrize("name", ["itemknn", "als"])
def test_evaluate_distributed_equals_evaluator(name: str, artifacts: dict[str, Path], split: tuple, tmp_path: Path) -> None:
    from recsys.evaluation import Evaluator

    train, test = split
    recs = recommend_all(artifacts[name], k=10, out=tmp_path / "recs", block_size=23, progress=False)
    expected = Evaluator(train, test, k=[3, 10]).evaluate(recs.read()).summary
    got = evaluate_distributed(tmp_path / "recs", test, k=[3, 10], train=train)
    assert list(got) == list(expected)  # every metric Evaluator reports on lists, in its order
    assert len(got) == 2 * 14  # 16 metrics less rmse and mae
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=0, abs=1e-12), key
    assert got["precision@10"] > 0


def test_evaluate_distributed_counts_unknown_items_and_threshold(split: tuple, tmp_path: Path) -> None:
    """Lists holding items the evaluator never saw, spread over partitions: set metrics still merge exactly."""
    from recsys.evaluation import Evaluator

    train, test = split
    # a hand-made recommend_all output: two partitions of a frame with foreign items
    rng = np.random.default_rng(0)
    users = np.unique(test.users.ids)[:40]
    items = np.concatenate([train.items.ids[:30], np.array([10_001, 10_002, 10_003])])
    rows = [(u, it, r + 1) for u in users for r, it in enumerate(rng.choice(items, 6, replace=False))]
    frame = pd.DataFrame(rows, columns=["user", "item", "rank"])
    out = tmp_path / "recs"
    out.mkdir()
    frame.iloc[:120].to_parquet(out / "part-00000.parquet", index=False)
    frame.iloc[120:].to_parquet(out / "part-00001.parquet", index=False)
    (out / "_recsys_recommendations.json").write_text(
        json.dumps({"format": "recsys-recommendations", "n_blocks": 2, "complete": True})
    )
    expected = Evaluator(train, test, k=[2, 6]).evaluate(frame).summary
    got = evaluate_distributed(out, test, k=[2, 6], train=train)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=0, abs=1e-12, nan_ok=True), key
    assert 0 < got["coverage@6"] < 1
    # relevance threshold and feature-based diversity (items without a vector included)
    feats = pd.DataFrame({"item": train.items.ids[:40], "a": rng.random(40), "b": rng.random(40)})
    options = {"relevance_threshold": 4.0, "item_features": feats}
    expected = Evaluator(train, test, k=[2, 6], **options).evaluate(frame).summary
    got = evaluate_distributed(out, test, k=[2, 6], train=train, **options)
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=0, abs=1e-12, nan_ok=True), key
    # a user split over two partitions is refused
    frame.iloc[:123].to_parquet(out / "part-00000.parquet", index=False)
    with pytest.raises(DataError, match="more than one partition"):
        evaluate_distributed(out, test, k=6, train=train)
