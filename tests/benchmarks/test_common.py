"""benchmarks._common: the grid search through recsys.tuning, the shared tables, and the relocated registry and peers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmarks._common import QualityTable, grid_scores, grid_table, stop_process
from recsys.datasets.synthetic import synthetic
from recsys.evaluation import Evaluator
from recsys.models import ItemKNN
from recsys.split import stratified_split, train_validation_split


@pytest.fixture(scope="module")
def split():
    data = synthetic(n_users=150, n_items=80, n_interactions=3000, seed=3)
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    return train, test


def test_grid_scores_is_the_hand_rolled_grid(split):
    """Same settings in the same order, each scored as a fit on `fit` and NDCG@10 on `valid` (the loop it replaced)."""
    train, _ = split
    fit, valid = train_validation_split(train)
    grid = {"k": [5, 20], "shrinkage": [0.0, 10.0]}
    rows = grid_scores(ItemKNN(weighting="none"), grid, fit, valid)
    expected = []
    for k, shrinkage in itertools.product(grid["k"], grid["shrinkage"]):
        model = ItemKNN(weighting="none", k=k, shrinkage=shrinkage).fit(fit)
        expected.append(({"k": k, "shrinkage": shrinkage}, Evaluator(fit, valid, k=10, metrics=["ndcg"]).evaluate(model).summary["ndcg@10"]))
    assert [p for p, _ in rows] == [p for p, _ in expected]
    assert [s for _, s in rows] == pytest.approx([s for _, s in expected], abs=0)
    assert len({s for _, s in rows}) > 1  # the grid is not flat, so the order check means something


def test_grid_table_rows():
    rows = [({"k": 5, "w": "a"}, 0.25), ({"k": 9, "w": "b"}, 0.125)]
    assert grid_table(rows, {(("k", 5), ("w", "a")): 0.5, (("k", 9), ("w", "b")): 0.75}) == [
        "| k | w | validation NDCG@10 | synthetic validation NDCG@10 |",
        "|---|---|---|---|",
        "| 5 | a | 0.2500 | 0.5000 |",
        "| 9 | b | 0.1250 | 0.7500 |",
    ]


def test_quality_table_peer_and_ours_agree_with_the_evaluator(split):
    pytest.importorskip("implicit")
    from recsys._peers import ImplicitCosine

    train, test = split
    table = QualityTable(train, test)
    table.add("ours", ItemKNN(), fit_runs=1, rec_runs=1, warmup=0)
    table.add("peer", ImplicitCosine({"K": 20}, seed=0), fit_runs=1, rec_runs=1, warmup=0, peer=True)
    ev = Evaluator(train, test, k=10, metrics=["ndcg", "precision", "recall"])
    ours = ev.evaluate(ItemKNN().fit(train)).summary
    assert table.rows[0]["ndcg"] == ours["ndcg@10"] and table.rows[0]["r"] == ours["recall@10"]
    assert 0 < table.rows[1]["ndcg"] <= 1 and len(table.rows[1]["fit"].runs) == 1


def test_peer_top_indices_exclude_train_items(split):
    pytest.importorskip("implicit")
    from recsys._peers import ImplicitBM25

    train, _ = split
    peer = ImplicitBM25({"K": 50}, seed=0).fit(train)
    users = np.arange(10, dtype=np.int32)
    ids, _ = peer.top_indices(users, 5)
    seen = train.matrix("csr", "binary")
    for u, row in zip(users, ids):
        assert not set(row[row >= 0]) & set(seen[u].indices)


def test_old_cli_paths_are_the_moved_modules():
    from recsys import _peers
    from recsys.cli import _peers as cli_peers
    from recsys.cli import _registry as cli_registry
    from recsys.models import _registry

    assert cli_registry.MODELS is _registry.MODELS and cli_registry.build is _registry.build
    assert cli_peers.PEERS is _peers.PEERS and cli_peers.build_peer is _peers.build_peer


def test_stop_process_ends_a_child():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_process(proc, timeout=10)
    assert proc.returncode is not None
