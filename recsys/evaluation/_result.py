"""The result of one evaluation: summary, per-user values, confidence intervals, JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys._utils.jsonable import json_float as _json_float
from recsys._utils.params import check_float, check_int
from recsys.evaluation import metrics as M
from recsys.evaluation._definitions import DEFINITIONS_VERSION

__all__ = ["EvaluationResult", "ListParts", "MetricParts", "percentiles"]


class MetricParts(NamedTuple):
    """Per-user parts of one metric: its value is ``numerators.sum() / denominators.sum()``.

    Attributes
    ----------
    population : {"U", "rated"}
        Whose parts they are: the evaluated users (in :attr:`EvaluationResult.per_user`
        order) or the users with rated test rows (:attr:`EvaluationResult.rated_users`).
    numerators, denominators : ndarray of float64
        One value per user of the population. A per-user mean has denominators 1;
        novelty has the user's slots, diversity 1 for users with two items or more
        (else 0), rmse/mae the user's rated test rows (rmse: squared errors, and
        the value is the square root of the ratio).

    Examples
    --------
    >>> import numpy as np
    >>> p = MetricParts("U", np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    >>> float(p.numerators.sum() / p.denominators.sum())
    0.5
    """

    population: Literal["U", "rated"]
    numerators: NDArray[np.float64]
    denominators: NDArray[np.float64]


@dataclass
class ListParts:
    """The list metrics of some evaluated users before any averaging: what
    :class:`~recsys.evaluation.Evaluator` reduces to its summary, and what
    :func:`~recsys.distributed.evaluate_distributed` sums across partitions.

    Attributes
    ----------
    per_user : dict
        ``"name@k"`` -> one value per row of the lists, for the per-user metrics
        (ranking metrics, serendipity, novelty, diversity).
    parts : dict
        ``"name@k"`` -> :class:`MetricParts` of every mean and ratio list metric.
    slots : dict
        ``k`` -> how often each item stands in the top ``k`` (items numbered as the
        evaluator numbers them, then unknown items); only when a set metric is wanted.
    in_train : ndarray of bool
        Per item (same numbering): it has train interactions.

    Examples
    --------
    >>> import numpy as np
    >>> lp = ListParts({}, {"recall@2": MetricParts("U", np.array([0.5, 1.0]), np.ones(2))}, {}, np.ones(3, bool))
    >>> lp.totals()
    {'recall@2': (1.5, 2.0)}
    """

    per_user: dict[str, NDArray[np.float64]]
    parts: dict[str, MetricParts]
    slots: dict[int, NDArray[np.int64]]
    in_train: NDArray[np.bool_]

    def totals(self) -> dict[str, tuple[float, float]]:
        """``"name@k"`` -> (sum of numerators, sum of denominators): they add up across disjoint sets of users."""
        return {key: (float(p.numerators.sum()), float(p.denominators.sum())) for key, p in self.parts.items()}


class EvaluationResult:
    """Metric values of one evaluation, per user and overall, with bootstrap confidence intervals.

    Attributes
    ----------
    summary : dict
        ``"ndcg@10"`` -> value (``"rmse"`` / ``"mae"`` have no ``@k``).
    per_user : pandas.DataFrame
        One row per evaluated user (``user`` column, external ids) with the
        per-user value of every per-user metric (``novelty@k``: the mean over
        the user's own slots; ``diversity@k``: NaN below 2 items), plus
        ``n_relevant`` and ``n_recommended``.
    ks : list of int
    n_users_evaluated, n_test_users, n_test_users_skipped : int
    n_rating_rows, n_rating_rows_skipped : int
        Test ratings used by rmse/mae and those skipped (user or item without
        train interactions); 0 when rmse/mae were not computed.
    notes : list of str
        Metrics that were left out and why.
    """

    def __init__(
        self,
        *,
        summary: dict[str, float],
        per_user: pd.DataFrame,
        ks: list[int],
        metrics: list[str],
        n_users_evaluated: int,
        n_test_users: int,
        relevance_threshold: float | None,
        parts: Mapping[str, MetricParts],
        rated_users: NDArray[Any] | None = None,
        n_rating_rows: int = 0,
        n_rating_rows_skipped: int = 0,
        notes: list[str] | None = None,
    ) -> None:
        self.summary = summary
        self.per_user = per_user
        self.ks = ks
        self.metrics = metrics
        self.n_users_evaluated = n_users_evaluated
        self.n_test_users = n_test_users
        self.n_test_users_skipped = n_test_users - n_users_evaluated
        self.relevance_threshold = relevance_threshold
        self.n_rating_rows = n_rating_rows
        self.n_rating_rows_skipped = n_rating_rows_skipped
        self.notes = list(notes or [])
        self._parts = {name: MetricParts(*p) for name, p in parts.items()}
        self._rated_users = rated_users
        self._ci_cache: dict[tuple[int, float, int], dict[str, tuple[float, float] | None]] = {}

    @property
    def users(self) -> NDArray[Any]:
        """External ids of the evaluated users U, in the row order of :attr:`per_user`."""
        return self.per_user["user"].to_numpy()  # type: ignore[no-any-return]

    @property
    def rated_users(self) -> NDArray[Any] | None:
        """External ids of the users with rated test rows that rmse/mae were computed over.

        In the order of the ``"rmse"``/``"mae"`` entries of :attr:`metric_parts`;
        None when rmse/mae were not computed.
        """
        return self._rated_users

    @property
    def metric_parts(self) -> dict[str, MetricParts]:
        """How each decomposable metric is built from per-user parts: name -> :class:`MetricParts`.

        Every per-user mean (``"ndcg@10"``...) and ratio metric (novelty,
        diversity, rmse, mae) is ``sum(numerators) / sum(denominators)``
        (rmse: its square root) over one population of users: ``"U"``, the
        evaluated users in the row order of :attr:`per_user`, or ``"rated"``,
        the users of :attr:`rated_users`. Set-level metrics (coverage,
        distributional_coverage, gini, user_coverage) have no entry. The
        bootstrap intervals and :func:`compare` resample these parts.

        Examples
        --------
        User 3 gets no list: recall 0 and no novelty slot.

        >>> from recsys.evaluation import Evaluator
        >>> train = pd.DataFrame({"user": [1, 2, 3], "item": [1, 1, 1]})
        >>> test = pd.DataFrame({"user": [1, 2, 3], "item": [2, 3, 2]})
        >>> recs = pd.DataFrame({"user": [1, 2], "item": [2, 4], "rank": [1, 1]})
        >>> res = Evaluator(train, test, k=2, metrics=["recall", "novelty"]).evaluate(recs)
        >>> res.metric_parts["recall@2"].numerators.tolist()
        [1.0, 0.0, 0.0]
        >>> p = res.metric_parts["novelty@2"]
        >>> p.population, p.denominators.tolist()
        ('U', [1.0, 1.0, 0.0])
        """
        return dict(self._parts)

    def confidence_intervals(
        self, n_boot: int = 1000, level: float = 0.95, seed: int = 0
    ) -> dict[str, tuple[float, float] | None]:
        """Percentile bootstrap intervals, resampling users (seeded, so reproducible).

        Per-user means and ratio metrics are re-estimated on ``n_boot``
        resamples of the users (rmse/mae: of the users with rated test rows).
        Set-level metrics (coverage, distributional_coverage, gini,
        user_coverage) get ``None``: they are not means over users, and their
        user-resampled replicates are biased (a resample has fewer distinct
        users), so a percentile interval would mislead.

        Examples
        --------
        >>> from recsys.evaluation import Evaluator
        >>> ev = Evaluator(pd.DataFrame({"user": [1, 2], "item": [1, 2]}),
        ...                pd.DataFrame({"user": [1, 2], "item": [2, 1]}), k=1, metrics=["hit_rate"])
        >>> res = ev.evaluate(pd.DataFrame({"user": [1, 2], "item": [2, 2], "rank": [1, 1]}))
        >>> res.confidence_intervals(n_boot=200)["hit_rate@1"]
        (0.0, 1.0)
        """
        check_int("confidence_intervals", "n_boot", n_boot, low=2)
        check_float("confidence_intervals", "level", level, low=0.0, high=1.0, low_open=True, high_open=True)
        key = (int(n_boot), float(level), int(seed))
        if key in self._ci_cache:
            return self._ci_cache[key]
        out: dict[str, tuple[float, float] | None] = {name: None for name in self.summary}
        for pop in ("U", "rated"):
            names = [n for n, p in self._parts.items() if p.population == pop]
            if not names:
                continue
            num = np.stack([self._parts[n].numerators for n in names], axis=1)
            den = np.stack([self._parts[n].denominators for n in names], axis=1)
            est = M.bootstrap_estimates(num, den, int(n_boot), int(seed))
            for j, name in enumerate(names):
                col = est[:, j]
                if name == "rmse":
                    col = np.sqrt(col)
                out[name] = percentiles(col, level)
        self._ci_cache[key] = out
        return out

    @property
    def ci(self) -> dict[str, tuple[float, float] | None]:
        """95% confidence intervals with the default 1000 resamples and seed 0."""
        return self.confidence_intervals()

    def to_dict(self, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
        """Everything as plain Python values (JSON-serialisable; NaN becomes None).

        Examples
        --------
        >>> from recsys.evaluation import Evaluator
        >>> ev = Evaluator(pd.DataFrame({"user": [1], "item": [1]}),
        ...                pd.DataFrame({"user": [1], "item": [2]}), k=2, metrics=["recall"])
        >>> d = ev.evaluate(pd.DataFrame({"user": [1, 1], "item": [3, 2], "rank": [1, 2]})).to_dict()
        >>> d["summary"], d["n_users_evaluated"], d["k"]
        ({'recall@2': 1.0}, 1, [2])
        """
        ci = self.confidence_intervals(n_boot=n_boot, seed=seed)
        return {
            "definitions_version": DEFINITIONS_VERSION,
            "k": list(self.ks),
            "metrics": list(self.metrics),
            "summary": {k: _json_float(v) for k, v in self.summary.items()},
            "confidence_intervals": {
                k: None if v is None else [_json_float(v[0]), _json_float(v[1])] for k, v in ci.items()
            },
            "confidence_level": 0.95,
            "n_bootstrap": int(n_boot),
            "bootstrap_seed": int(seed),
            "n_users_evaluated": int(self.n_users_evaluated),
            "n_test_users": int(self.n_test_users),
            "n_test_users_skipped": int(self.n_test_users_skipped),
            "n_rating_rows": int(self.n_rating_rows),
            "n_rating_rows_skipped": int(self.n_rating_rows_skipped),
            "relevance_threshold": self.relevance_threshold,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string (strict JSON: no NaN)."""
        return json.dumps(self.to_dict(**kwargs), indent=indent, allow_nan=False)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v:.4f}" for k, v in list(self.summary.items())[:8])
        more = ", ..." if len(self.summary) > 8 else ""
        return f"EvaluationResult({self.n_users_evaluated} users: {body}{more})"


def percentiles(samples: NDArray[np.float64], level: float) -> tuple[float, float] | None:
    ok = samples[np.isfinite(samples)]
    if len(ok) == 0:
        return None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ok, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
