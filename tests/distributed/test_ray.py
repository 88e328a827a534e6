"""The Ray engine: the same partitions as the local engine, byte for byte in content, and the same metrics."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys.distributed import evaluate_distributed, recommend_all
from recsys.distributed._recommend import _BlockWriter
from tests.conftest import require
from tests.distributed.conftest import MODELS


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """One local two-CPU cluster for the module (start-up costs seconds), shut down at the end."""
    ray = require("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("name", list(MODELS))
def test_ray_output_equals_local(name: str, ray_cluster: Any, artifacts: dict[str, Path], tmp_path: Path) -> None:
    local = recommend_all(artifacts[name], k=6, out=tmp_path / "local", block_size=25, progress=False)
    remote = recommend_all(artifacts[name], k=6, out=tmp_path / "ray", block_size=25, engine="ray", progress=False)
    assert remote.manifest["complete"] and remote.n_blocks == local.n_blocks == 5
    for b in range(5):
        pd.testing.assert_frame_equal(
            pd.read_parquet(remote.partition(b)), pd.read_parquet(local.partition(b)), check_exact=True
        )
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in (tmp_path / "local").iterdir())


def test_ray_evaluate_equals_evaluator(ray_cluster: Any, artifacts: dict[str, Path], split: tuple, tmp_path: Path) -> None:
    from recsys.evaluation import Evaluator

    train, test = split
    recs = recommend_all(artifacts["ease"], k=10, out=tmp_path / "recs", block_size=30, progress=False)
    expected = Evaluator(train, test, k=[5, 10]).evaluate(recs.read()).summary
    got = evaluate_distributed(tmp_path / "recs", test, k=[5, 10], train=train, engine="ray")
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=0, abs=1e-12), key


class _DyingWriter(_BlockWriter):
    """Kills its worker process once, on block 2, after leaving a half-written temporary file."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        marker = self.out.parent / "killed-once"
        if 2 in batch["block"] and not marker.exists():
            marker.write_text("")
            (self.out / ".part-00002.parquet.0badc0de.tmp").write_bytes(b"PAR1 half")
            os._exit(1)
        return super().__call__(batch)


def test_killed_worker_leaves_complete_duplicate_free_output(
    ray_cluster: Any, artifacts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.distributed._recommend as R

    local = recommend_all(artifacts["als"], k=5, out=tmp_path / "local", block_size=30, progress=False)
    monkeypatch.setattr(R, "_BlockWriter", _DyingWriter)
    got = recommend_all(artifacts["als"], k=5, out=tmp_path / "ray", block_size=30, engine="ray", progress=False)
    assert (tmp_path / "killed-once").exists()  # the worker did die
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == [
        "_recsys_recommendations.json", *[f"part-{b:05d}.parquet" for b in range(4)]
    ]
    frame = got.read()
    assert not frame.duplicated(["user", "item"]).any()
    pd.testing.assert_frame_equal(frame, local.read(), check_exact=True)
