"""Paired comparison of two evaluation results: differences, bootstrap intervals, paired tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.errors import DataTypeError, ParameterError
from recsys.evaluation import metrics as M
from recsys.evaluation._result import EvaluationResult, percentiles

__all__ = ["compare"]


def compare(
    a: EvaluationResult, b: EvaluationResult, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Paired per-metric difference ``a − b`` with a bootstrap CI and paired significance tests.

    Both results must come from the same evaluation setup (same evaluated
    users, same k list, same relevance threshold). Users are resampled
    jointly, so the interval is that of the paired difference.

    - Per-user means (precision, recall, f1, hit_rate, mrr, ndcg, map,
      serendipity): ``p_ttest`` is :func:`scipy.stats.ttest_rel` and
      ``p_wilcoxon`` :func:`scipy.stats.wilcoxon` on the per-user values
      (1.0 when every paired difference is 0).
    - Ratio metrics (novelty, diversity, rmse, mae): the difference of the
      two ratio estimates and its paired bootstrap interval; the tests are
      run on the per-user values (user's mean slot novelty, user's diversity,
      user's mean squared / absolute error) of users defined in both.
    - Set-level metrics (coverage, distributional_coverage, gini,
      user_coverage): the difference only.

    Returns
    -------
    pandas.DataFrame
        Indexed by metric name, columns ``a``, ``b``, ``diff``, ``ci_low``,
        ``ci_high``, ``p_ttest``, ``p_wilcoxon``, ``n_users``.

    Raises
    ------
    ParameterError
        The results have different users, k lists, thresholds or no metric in common.

    Examples
    --------
    >>> from recsys.evaluation import Evaluator
    >>> ev = Evaluator(pd.DataFrame({"user": [1, 2, 3], "item": [9, 9, 9]}),
    ...                pd.DataFrame({"user": [1, 2, 3], "item": [1, 2, 3]}), k=1, metrics=["hit_rate"])
    >>> good = ev.evaluate(pd.DataFrame({"user": [1, 2, 3], "item": [1, 2, 4], "rank": 1}))
    >>> bad = ev.evaluate(pd.DataFrame({"user": [1, 2, 3], "item": [5, 5, 5], "rank": 1}))
    >>> row = compare(good, bad).loc["hit_rate@1"]
    >>> round(float(row["diff"]), 4), int(row["n_users"])
    (0.6667, 3)
    """
    if not (isinstance(a, EvaluationResult) and isinstance(b, EvaluationResult)):
        raise DataTypeError("compare() takes two EvaluationResult objects")
    if a.ks != b.ks:
        raise ParameterError(f"compare() needs results at the same k; got {a.ks} and {b.ks}")
    if a.relevance_threshold != b.relevance_threshold:
        raise ParameterError(
            f"compare() needs results with the same relevance_threshold; got {a.relevance_threshold} and "
            f"{b.relevance_threshold}"
        )
    ua, ub = a.users, b.users
    if len(ua) != len(ub) or not np.array_equal(ua, ub):
        raise ParameterError(
            f"compare() needs results over the same evaluated users; got {len(ua)} and {len(ub)} users "
            "(evaluate both with the same Evaluator)"
        )
    names = [n for n in a.summary if n in b.summary]
    if not names:
        raise ParameterError("compare(): the two results have no metric in common")
    if ("rmse" in names or "mae" in names) and not (
        a.rated_users is not None
        and b.rated_users is not None
        and np.array_equal(a.rated_users, b.rated_users)
    ):
        raise ParameterError("compare(): rmse/mae were computed over different test ratings")
    from scipy import stats

    pa, pb = a.metric_parts, b.metric_parts
    rows: dict[str, dict[str, float]] = {}
    boot: dict[str, tuple[float, float] | None] = {}
    for pop in ("U", "rated"):
        group = [n for n in names if n in pa and n in pb and pa[n].population == pop]
        if not group:
            continue
        num = np.stack([pa[n].numerators for n in group] + [pb[n].numerators for n in group], axis=1)
        den = np.stack([pa[n].denominators for n in group] + [pb[n].denominators for n in group], axis=1)
        est = M.bootstrap_estimates(num, den, n_boot, seed)
        m = len(group)
        for j, name in enumerate(group):
            ea, eb = est[:, j], est[:, m + j]
            if name == "rmse":
                ea, eb = np.sqrt(ea), np.sqrt(eb)
            boot[name] = percentiles(ea - eb, level)
    for name in names:
        va, vb = a.summary[name], b.summary[name]
        ci = boot.get(name)
        p_t = p_w = float("nan")
        n_users = float("nan")
        if name in pa and name in pb:
            _, na, da = pa[name]
            _, nb, db = pb[name]
            ok = (da > 0) & (db > 0)
            xa, xb = na[ok] / da[ok], nb[ok] / db[ok]
            n_users = float(ok.sum())
            p_t, p_w = _paired_tests(xa, xb, stats)
        rows[name] = {
            "a": va,
            "b": vb,
            "diff": va - vb,
            "ci_low": ci[0] if ci else float("nan"),
            "ci_high": ci[1] if ci else float("nan"),
            "p_ttest": p_t,
            "p_wilcoxon": p_w,
            "n_users": n_users,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _paired_tests(xa: NDArray[np.float64], xb: NDArray[np.float64], stats: Any) -> tuple[float, float]:
    d = xa - xb
    if len(d) == 0:
        return float("nan"), float("nan")
    if np.all(d == 0):
        return 1.0, 1.0
    if len(d) < 2:
        return float("nan"), float("nan")
    with np.errstate(all="ignore"):
        p_t = float(stats.ttest_rel(xa, xb).pvalue)
        try:
            p_w = float(stats.wilcoxon(d).pvalue)
        except ValueError:
            p_w = float("nan")
    return p_t, p_w
