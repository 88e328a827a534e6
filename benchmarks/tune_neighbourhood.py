"""Hyper-parameter search of ItemKNN, UserKNN and EASE on a validation split carved from train.

Protocol (Microsoft Recommenders' MovieLens benchmark): ML-100K, every rating an
interaction of weight 1, ``stratified_split(ratio=0.75, by="user", seed=42)``.
The search fits on ``train_validation_split(train)`` (seed 1234) and scores
NDCG@10 on the validation part (``recsys.tuning.search``, a grid); test is never looked at while choosing. The
chosen values (best validation NDCG@10) are then refit on all of train and
scored on test, once, for the record; they are the models' defaults.

To check that the defaults are not tuned to this one split, the same grid is
run on a synthetic dataset (``recsys.datasets.synthetic``) and the defaults'
validation NDCG@10 is printed next to that grid's best.

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.tune_neighbourhood``
(writes ``benchmarks/results/neighbourhood_tuning.md``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks._common import grid_scores, grid_table, machine, ml100k, write_results
from recsys import Interactions
from recsys.datasets.synthetic import synthetic
from recsys.evaluation import Evaluator
from recsys.models import EASE, ItemKNN, UserKNN
from recsys.models.base import Recommender
from recsys.split import stratified_split, train_validation_split

RESULTS = Path(__file__).parent / "results" / "neighbourhood_tuning.md"

GRIDS: dict[str, tuple[type[Recommender], dict[str, list[Any]]]] = {
    "ItemKNN": (
        ItemKNN,
        {"weighting": ["none", "tfidf", "bm25"], "k": [20, 50, 100, 200, 400], "shrinkage": [0.0, 10.0, 50.0]},
    ),
    "UserKNN": (
        UserKNN,
        {"weighting": ["none", "tfidf", "bm25"], "k": [20, 50, 100, 200], "shrinkage": [0.0, 10.0, 50.0]},
    ),
    "EASE": (EASE, {"reg": [100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0]}),
}


def ndcg(model: Recommender, fit: Interactions, valid: Interactions) -> float:
    model.fit(fit)
    return float(Evaluator(fit, valid, k=10, metrics=["ndcg"]).evaluate(model).summary["ndcg@10"])


def search(name: str, fit: Interactions, valid: Interactions) -> list[tuple[dict[str, Any], float]]:
    cls, grid = GRIDS[name]
    return grid_scores(cls, grid, fit, valid)


def main() -> None:
    lines = [
        "# Neighbourhood models: hyper-parameter search",
        "",
        f"Machine: {machine()}",
        "",
        "ML-100K, every rating an interaction of weight 1; stratified_split(0.75, by=user, seed=42);"
        " search on train_validation_split(train) (0.75, seed 1234), NDCG@10 on validation.",
        "",
    ]
    print(lines[2])
    data = ml100k()
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    fit, valid = train_validation_split(train)
    syn = synthetic(n_users=3000, n_items=1500, n_interactions=120_000, seed=7)
    syn_fit, syn_valid = train_validation_split(stratified_split(syn, ratio=0.75, by="user", seed=42)[0])
    t0 = time.perf_counter()
    for name, (cls, _) in GRIDS.items():
        rows = search(name, fit, valid)
        rows.sort(key=lambda r: -r[1])
        best, best_score = rows[0]
        default = cls()
        default_params = {k: default.get_params()[k] for k in best}
        test_score = ndcg(cls(**best), train, test)
        syn_rows = search(name, syn_fit, syn_valid)
        syn_best = max(s for _, s in syn_rows)
        syn_default = ndcg(cls(), syn_fit, syn_valid)
        lines += [
            f"## {name}",
            "",
            f"Best on validation: {best} (NDCG@10 {best_score:.4f}); refit on train, test NDCG@10 {test_score:.4f}.",
            f"Defaults: {default_params}. On synthetic data (3000 users x 1500 items, 120k interactions) the "
            f"defaults reach validation NDCG@10 {syn_default:.4f}; the best of the same grid there {syn_best:.4f}.",
            "",
            *grid_table(rows, {tuple(p.items()): s for p, s in syn_rows}),
            "",
        ]
        print("\n".join(lines[-len(rows) - 7 : -len(rows) - 1]), flush=True)
    lines.append(f"Total search time {time.perf_counter() - t0:.0f} s.")
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
