"""Evaluation of recommenders: exactly defined, independently checked, fast metrics.

:class:`Evaluator` computes accuracy (precision, recall, F1, hit rate, MRR,
NDCG, MAP), beyond-accuracy (coverage, distributional coverage, novelty,
diversity, user coverage, Gini, serendipity) and rating (RMSE, MAE) metrics
of top-k lists; :class:`EvaluationResult` holds them with per-user values
and bootstrap confidence intervals; :func:`compare` tests paired
differences between two results, reading each result's per-user parts
through :attr:`EvaluationResult.metric_parts` (:class:`MetricParts`). The exact definitions are in the
:class:`Evaluator` docstring. :mod:`recsys.evaluation.reference` is a
deliberately simple loop implementation of the same definitions that the
tests check the vectorised one against.

Relation to Microsoft Recommenders' ``python_evaluation``
---------------------------------------------------------
The definitions follow ``precision_at_k``, ``recall_at_k``, ``ndcg_at_k``,
``map_at_k``, ``catalog_coverage``, ``distributional_coverage``, ``novelty``
and ``diversity`` so numbers are comparable with their published tables
(binary relevance, ``log2`` discount, MAP@k normalised by ``min(|T_u|, k)``,
precision divided by k even for shorter lists). Deliberate differences:

- **Which users count.** They average over users present in both the test
  data and the recommendations, so a model that returns nothing for its
  hardest users scores higher. Here every user in U counts, a missing list
  as an empty one (0 hits).
- **NDCG with ratings.** Their ``ndcg_at_k`` sorts the ideal list by the
  rating column and, with ``score_type="raw"``/``"exp"``, uses ratings as
  gains; with the defaults (binary gains, natural-log discount) the log base
  cancels only because gains are binary. Here gains are binary relevance
  (``rating >= relevance_threshold`` when given) and the discount is
  ``log2(r + 1)``: the same numbers as their binary default.
- **MAP.** Their ``map`` (no ``@k``) divides by ``|T_u|`` even when
  ``|T_u| > k`` (their issues #1749 and #2309 are about MAP definitions).
  ``map@k`` here is their ``map_at_k``: divided by ``min(|T_u|, k)``.
- **Coverage.** Their ``catalog_coverage`` divides the distinct recommended
  items by the distinct *train* items, so it exceeds 1 when a model
  recommends items absent from train. The denominator here is
  ``I_train ∪ recommended``, equal to theirs whenever only train items are
  recommended.
- **Novelty.** Their ``novelty`` silently adds 0 for items absent from train
  (an inner merge drops them) while still counting their slots; here such an
  item counts as seen once, the most novel value.
- **Diversity.** Their co-occurrence similarity and the ``1 − mean pair
  similarity`` per user match; lists with fewer than two items are left out
  of the mean here (they have no pairs) instead of raising or adding NaN.

Beyond those: duplicate items in a user's list are an error (they silently
inflate hits elsewhere); score ties keep the frame's row order, so results
never depend on batch sizes or chunking (RecBole #1556).
"""

from recsys.evaluation.evaluator import (
    DEFINITIONS_VERSION,
    METRICS,
    EvaluationResult,
    Evaluator,
    MetricParts,
    compare,
)

__all__ = ["DEFINITIONS_VERSION", "METRICS", "EvaluationResult", "Evaluator", "MetricParts", "compare"]
