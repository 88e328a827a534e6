"""The names the evaluator reports and how each metric aggregates over users."""

from __future__ import annotations

from typing import Literal

__all__ = ["DEFINITIONS_VERSION", "KIND", "METRICS", "RATING_METRICS"]

#: Bumped whenever a metric definition changes, so stored results say which definitions they used.
DEFINITIONS_VERSION = "1"

#: Every metric name the evaluator knows, in reporting order.
METRICS = (
    "precision",
    "recall",
    "f1",
    "hit_rate",
    "mrr",
    "ndcg",
    "map",
    "coverage",
    "distributional_coverage",
    "novelty",
    "diversity",
    "user_coverage",
    "gini",
    "serendipity",
    "rmse",
    "mae",
)

# How each metric aggregates, which decides its confidence interval and compare() test:
# "mean": mean over U of a per-user value; "ratio": sum of per-user numerators over sum of
# denominators (novelty: slots; diversity: users with >= 2 items; rmse/mae: rated test rows);
# "set": a property of the whole list set, no per-user decomposition.
KIND: dict[str, Literal["mean", "ratio", "set"]] = {
    "precision": "mean",
    "recall": "mean",
    "f1": "mean",
    "hit_rate": "mean",
    "mrr": "mean",
    "ndcg": "mean",
    "map": "mean",
    "serendipity": "mean",
    "novelty": "ratio",
    "diversity": "ratio",
    "rmse": "ratio",
    "mae": "ratio",
    "coverage": "set",
    "distributional_coverage": "set",
    "gini": "set",
    "user_coverage": "set",
}

#: Metrics of predicted ratings (no cut-off k).
RATING_METRICS = ("rmse", "mae")
