"""Quick start: load MovieLens 100K, split it, fit a few models, evaluate them.

Run with ``python -m benchmarks.quickstart`` (downloads ML-100K on first use
unless RECSYS_DATA_DIR points at a local copy).
"""

from __future__ import annotations

import time

from recsys.datasets.movielens import load_movielens
from recsys.evaluation import Evaluator
from recsys.models import Popular, Recommender
from recsys.split import stratified_split


def candidates() -> list[Recommender]:
    import recsys.models as models

    out: list[Recommender] = [Popular()]
    for name in ("ItemKNN", "UserKNN", "EASE", "ALS", "BPR"):
        cls = getattr(models, name, None)
        if cls is not None:
            out.append(cls())
    return out


def main() -> None:
    ml = load_movielens("ml-100k")
    data = ml.interactions()
    print(data)
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    print(f"train {train.nnz} rows, test {test.nnz} rows")
    evaluator = Evaluator(train, test, k=10, metrics=["precision", "recall", "ndcg", "coverage"])
    print(f"{'model':<10} {'ndcg@10':>8} {'p@10':>7} {'r@10':>7} {'cov@10':>7} {'fit s':>6}")
    for model in candidates():
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        s = evaluator.evaluate(model).summary
        print(
            f"{type(model).__name__:<10} {s['ndcg@10']:8.4f} {s['precision@10']:7.4f} "
            f"{s['recall@10']:7.4f} {s['coverage@10']:7.4f} {fit_s:6.2f}"
        )
    user = data.users.ids[0]
    ids, scores = candidates()[-1].fit(train).recommend_one(user, k=5)
    titles = ml.items.set_index("item").loc[ids, "title"].tolist()
    print(f"top 5 for user {user}: {titles}")


if __name__ == "__main__":
    main()
