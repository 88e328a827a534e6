"""Speed of ``recsys.evaluation.Evaluator`` against a pandas merge-and-groupby baseline.

Run from the repository root::

    python -m benchmarks.evaluation [--users 100000] [--runs 3]

Synthetic input (the issue's size): 100,000 users with 20 train and 5 test
interactions each over a 20,000-item catalogue whose popularity follows a
Zipf-like law, and a top-10 list per user (about a third of users get one of
their test items in it). In the same run it times:

* ``Evaluator(train, test)`` construction from DataFrames (once per split);
* ``evaluate(recs)`` with every metric (diversity by train co-occurrence
  included) — target under 10 s on 2 cores;
* ``evaluate(recs)`` with precision, recall and NDCG only, against
  ``benchmarks.pandas_metrics.ms_style_precision_recall_ndcg`` (Microsoft
  Recommenders' ``python_evaluation`` way: top-k by sort + groupby head from
  scored predictions, merges, groupbys) on the same scored frame — target at
  least 20x faster; also on the same frame shuffled (forces our sort);
* the same three metrics against a leaner pandas version given lists already
  ranked and cut (``pandas_precision_recall_ndcg``), for an honest lower bound;
* the 1000-resample bootstrap confidence intervals (computed on demand).

Both implementations' numbers are checked equal before timing. The table is
also written to ``benchmarks/results/evaluation.md``.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np
import pandas as pd

from benchmarks._common import PeakMemory, machine, repeat
from benchmarks.pandas_metrics import ms_style_precision_recall_ndcg, pandas_precision_recall_ndcg
from recsys._utils.progress import progress
from recsys.evaluation import Evaluator

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "evaluation.md")
N_ITEMS = 20_000
N_TRAIN, N_TEST, K = 20, 5, 10


def _distinct_rows(rng: np.random.Generator, n: int, m: int, cdf: np.ndarray) -> np.ndarray:
    """``n`` rows of ``m`` distinct items drawn by popularity (first occurrences of oversampled draws)."""
    out = np.empty((n, m), dtype=np.int64)
    todo = np.arange(n)
    while len(todo):
        draws = np.searchsorted(cdf, rng.random((len(todo), 3 * m)))
        order = np.argsort(draws, axis=1, kind="stable")
        srt = np.take_along_axis(draws, order, axis=1)
        dup_sorted = np.zeros_like(srt, dtype=bool)
        dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
        dup = np.zeros_like(dup_sorted)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        keep = ~dup
        ok = keep.sum(axis=1) >= m
        rows = np.flatnonzero(ok)
        # First m distinct draws of each good row, in draw order.
        pos = np.cumsum(keep[rows], axis=1) - 1
        sel = keep[rows] & (pos < m)
        out[todo[rows][np.nonzero(sel)[0]], pos[sel]] = draws[rows][sel]
        todo = todo[~ok]
    return out


def make_data(n_users: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    perm = rng.permutation(N_ITEMS)  # popular items are not the low ids
    items = perm[_distinct_rows(rng, n_users, N_TRAIN + N_TEST, cdf)]
    user_ids = 1_000_000 + rng.permutation(n_users)  # sparse ids, not positions
    train = pd.DataFrame({"user": np.repeat(user_ids, N_TRAIN), "item": items[:, :N_TRAIN].ravel()})
    test = pd.DataFrame({"user": np.repeat(user_ids, N_TEST), "item": items[:, N_TRAIN:].ravel()})
    cand = perm[_distinct_rows(rng, n_users, K, cdf)]
    # A third of users get one test item at a random position (if not already listed).
    lucky = rng.random(n_users) < 0.35
    slot = rng.integers(0, K, n_users)
    test_item = items[:, N_TRAIN]
    listed = (cand == test_item[:, None]).any(axis=1)
    put = lucky & ~listed
    cand[np.flatnonzero(put), slot[put]] = test_item[put]
    recs = pd.DataFrame({
        "user": np.repeat(user_ids, K),
        "item": cand.ravel(),
        "score": np.tile(np.arange(K, 0, -1, dtype=np.float32), n_users),
        "rank": np.tile(np.arange(1, K + 1), n_users),
    })
    return train, test, recs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(machine())
    t0 = time.perf_counter()
    train, test, recs = make_data(args.users)
    print(f"data: {args.users:,} users, {len(train):,} train / {len(test):,} test rows, {N_ITEMS:,} items, "
          f"{len(recs):,} recommendation rows (generated in {time.perf_counter() - t0:.1f}s)")

    lines: list[str] = []
    steps = progress(range(7), desc="evaluation benchmark", total=7)

    def step(label: str) -> None:
        next(steps, None)
        print(f"... {label}", flush=True)

    step("construction")
    t_build = repeat(lambda: Evaluator(train, test, k=K), runs=args.runs, warmup=0)
    ev_all = Evaluator(train, test, k=K)
    ev_acc = Evaluator(train, test, k=K, metrics=["precision", "recall", "ndcg"])

    step("correctness check")
    scored = recs[["user", "item", "score"]]
    shuffled = scored.sample(frac=1.0, random_state=0)
    ours = ev_acc.evaluate(scored).summary
    for name, base in (
        ("ms-style", ms_style_precision_recall_ndcg(test, scored, K)),
        ("lean", pandas_precision_recall_ndcg(test, recs, K)),
        ("shuffled", ev_acc.evaluate(shuffled).summary),
    ):
        diff = max(abs(ours[m] - base[m]) for m in base)
        assert diff < 1e-9, (name, ours, base)
    print(f"precision/recall/ndcg@{K} equal across implementations (max |diff| < 1e-9): "
          + ", ".join(f"{m}={v:.6f}" for m, v in ours.items()))

    step("all metrics")
    gc.collect()
    with PeakMemory() as pm:
        res = ev_all.evaluate(recs)
    t_all = repeat(lambda: ev_all.evaluate(recs), runs=args.runs, warmup=0)
    step("precision, recall, ndcg")
    t_acc = repeat(lambda: ev_acc.evaluate(scored), runs=args.runs, warmup=1)
    t_acc_shuf = repeat(lambda: ev_acc.evaluate(shuffled), runs=args.runs, warmup=1)
    t_acc_rank = repeat(lambda: ev_acc.evaluate(recs), runs=args.runs, warmup=1)
    step("pandas baselines")
    t_ms = repeat(lambda: ms_style_precision_recall_ndcg(test, scored, K), runs=args.runs, warmup=1)
    t_lean = repeat(lambda: pandas_precision_recall_ndcg(test, recs, K), runs=args.runs, warmup=1)
    step("bootstrap intervals")
    t_ci = repeat(lambda: res.confidence_intervals(n_boot=1000, seed=int(time.time())), runs=1, warmup=0)
    next(steps, None)

    load = os.getloadavg()[0]
    lines.append(f"# Evaluator benchmark\n\n{machine()}; load average at the end {load:.1f}\n")
    lines.append(f"{args.users:,} users x ({N_TRAIN} train + {N_TEST} test) interactions, {N_ITEMS:,} items, "
                 f"top-{K} lists; {args.runs} timed runs, mean ± std.\n")
    lines.append("| step | time | ratio |")
    lines.append("| --- | --- | --- |")
    lines.append(f"| Evaluator(train, test) from DataFrames (once per split) | {t_build} | |")
    lines.append(f"| evaluate, all {len(res.summary)} metrics incl. diversity "
                 f"(peak +{pm.peak_above_start / 2**20:.0f} MiB) | {t_all} | |")
    total = t_build.mean + t_all.mean
    lines.append(f"| construction + evaluate, all metrics | {total:.3f}s | "
                 f"target < 10 s: {'met' if total < 10 else 'MISSED'} |")
    lines.append(f"| MS-Recommenders-style pandas precision, recall, ndcg from scores (baseline) | {t_ms} | 1.0x |")
    r = t_ms.mean / t_acc.mean
    lines.append(f"| evaluate precision, recall, ndcg, same scored frame | {t_acc} | {r:.1f}x faster "
                 f"(target >= 20x: {'met' if r >= 20 else 'MISSED'}) |")
    lines.append(f"| evaluate precision, recall, ndcg, scored frame shuffled (general path + sort) | {t_acc_shuf} | "
                 f"{t_ms.mean / t_acc_shuf.mean:.1f}x faster |")
    lines.append(f"| construction + evaluate precision, recall, ndcg | {t_build.mean + t_acc.mean:.3f}s | "
                 f"{t_ms.mean / (t_build.mean + t_acc.mean):.1f}x faster |")
    lines.append(f"| lean pandas on lists already ranked and cut (second baseline) | {t_lean} | 1.0x |")
    lines.append(f"| evaluate precision, recall, ndcg, same ranked frame | {t_acc_rank} | "
                 f"{t_lean.mean / t_acc_rank.mean:.1f}x faster |")
    lines.append(f"| confidence_intervals(n_boot=1000), all metrics | {t_ci.mean:.3f}s | |")
    lines.append("")
    lines.append("Summary of the all-metrics run: " + ", ".join(f"{k}={v:.4f}" for k, v in res.summary.items()))
    table = "\n".join(lines)
    print()
    print(table)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        f.write(table + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
