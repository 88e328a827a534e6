"""ItemKNN and UserKNN at MovieLens sizes, next to implicit's item-item recommenders in the same process.

On ``recsys.datasets.synthetic`` data of a MovieLens size (``--size``), every
row is timed in this one process with the library defaults for threads:

* ``ItemKNN(weighting='bm25', k=K)`` against implicit's ``BM25Recommender(K=K)``;
* ``ItemKNN(weighting='none', similarity='cosine', shrinkage=0, k=K)`` against
  implicit's ``CosineRecommender(K=K)``;
* each ItemKNN also with ``neighbours_of='history'`` (implicit's definition of
  the item-item score: every history item spreads its own ``K`` neighbours),
  against the same peer fit; and both modes' NDCG@10 on ML-100K next to
  implicit's BM25 (when ML-100K is under ``RECSYS_DATA_DIR``);
* ``UserKNN()`` (defaults): fit, then top-10 for all users (no peer: implicit
  has no user-user model), against the 5-minute target for the two together;
  with ``--userknn-exact`` also ``UserKNN(max_candidates=None)`` (every pair of
  co-raters compared, the behaviour below the default's data-size threshold),
  timed in the same process.

"top-10" is ``recommend`` for every user (train items excluded), a frame out
of both libraries (implicit through :mod:`recsys._peers`). Ratios are ours /
implicit's; the machine is shared, so only the ratios of one run compare.

``--accuracy`` instead measures what UserKNN's bounded neighbour search
(``max_candidates``) costs in accuracy: NDCG@10 of the default, the exact and
a bounded fit (``max_candidates=300``, forced) on ML-100K (when it is under
``RECSYS_DATA_DIR``) and on synthetic data of ML-1M size
(``stratified_split(0.75, by="user", seed=42)``), with the share of the exact
neighbours the bounded fit keeps; written to ``knn_scale_accuracy.md``.

Run: ``python -m benchmarks.knn_scale --size ml10m`` (``--size`` one of
ml1m, ml10m, ml20m; ``--k``, ``--skip-userknn``, ``--skip-itemknn``,
``--userknn-exact``, ``--out``); ``python -m benchmarks.knn_scale --accuracy``.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import PeakMemory, header, section, sizes, write_results
from recsys import Interactions
from recsys._peers import ImplicitBM25, ImplicitCosine
from recsys.datasets.synthetic import synthetic
from recsys.models import ItemKNN, UserKNN

RESULTS = Path(__file__).parent / "results" / "knn_scale.md"
ACCURACY = Path(__file__).parent / "results" / "knn_scale_accuracy.md"
SIZES = sizes("ml1m", "ml10m", "ml20m")


def timed(what: str, fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Seconds and peak RSS (MiB above the start) of ``fn()``, with its result; prints a progress line."""
    secs, _, mb, out = timed_cpu(what, fn)
    return secs, mb, out


def timed_cpu(what: str, fn: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """Wall seconds, CPU seconds of this process (all its threads), peak RSS (MiB above the start) and result.

    On a shared machine the CPU seconds move far less than the wall time with the other jobs' load.
    """
    gc.collect()
    print(f"  {what} ...", flush=True)
    with PeakMemory() as pm:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  {what}: {secs:.1f} s (CPU {cpu:.1f} s), peak {pm.peak_above_start / 2**20:.0f} MiB", flush=True)
    return secs, cpu, pm.peak_above_start / 2**20, out


def pair(data: Interactions, ours: list[tuple[str, Any]], peer_name: str, peer: Any) -> list[str]:
    """Fit and top-10-for-all of the peer, then of each of ``ours``: one table row each and a ratio row per model."""
    users = data.users.ids
    rows = []
    res: dict[str, tuple[float, float, float, float]] = {}
    for label, model in [(peer_name, peer), *ours]:
        fit_s, fit_mb, _ = timed(f"{label} fit", lambda m=model: m.fit(data))
        rec_s, rec_mb, _ = timed(f"{label} top-10 for all", lambda m=model: m.recommend(users, k=10))
        res[label] = (fit_s, fit_mb, rec_s, rec_mb)
        rows.append(f"| {label} | {fit_s:.1f} | {fit_mb:.0f} | {rec_s:.1f} | {rec_mb:.0f} |")
        if label != peer_name:
            o, p = res[label], res[peer_name]
            rows.append(f"| ratio ours / implicit | {o[0] / p[0]:.2f}x | | {o[2] / p[2]:.2f}x | |")
    return section(*rows)


def modes_accuracy() -> list[str]:
    """NDCG@10 of both ``neighbours_of`` modes and implicit's BM25 on ML-100K (the neighbourhood protocol)."""
    from benchmarks._common import ml100k_split
    from recsys.evaluation import Evaluator

    try:
        train, test = ml100k_split()
    except Exception as e:  # noqa: BLE001 - the data set is optional
        return section(f"ML-100K accuracy of the two modes skipped: {e}")
    evaluator = Evaluator(train, test, k=10, metrics=["ndcg"])
    rows = ["| model (ML-100K, `stratified_split(0.75, by='user', seed=42)`) | NDCG@10 |", "|---|---|"]
    for label, model in (
        ("ItemKNN(weighting='bm25', k=200, shrinkage=0)", ItemKNN(weighting="bm25", k=200, shrinkage=0.0)),
        ("ItemKNN(weighting='bm25', k=200, shrinkage=0, neighbours_of='history')",
         ItemKNN(weighting="bm25", k=200, shrinkage=0.0, neighbours_of="history")),
        ("implicit BM25Recommender(K=200)", ImplicitBM25({"K": 200}, seed=0)),
    ):  # fmt: skip
        model.fit(train)
        rows.append(f"| {label} | {evaluator.evaluate(model).summary['ndcg@10']:.4f} |")
    return section(*rows)


def accuracy(out: Path | None) -> None:
    """NDCG@10 of UserKNN exact, bounded and default on ML-100K and ML-1M-sized data (see the module docstring)."""
    from benchmarks._common import ml100k_split
    from recsys.evaluation import Evaluator
    from recsys.split import stratified_split

    lines = header("UserKNN: accuracy of the bounded neighbour search (max_candidates)")
    lines += section(
        "Split: `stratified_split(0.75, by=\"user\", seed=42)`, k=10, train items excluded. \"exact neighbours kept\":"
        " share of the exact fit's (user, neighbour) pairs that the model's graph also holds.",
        "",
        "| data | model | candidates per user | NDCG@10 | exact neighbours kept | fit s |",
        "|---|---|---|---|---|---|",
    )
    sets: list[tuple[str, Callable[[], tuple[Interactions, Interactions]]]] = []
    try:
        sets.append(("ML-100K", ml100k_split))
        ml100k_split()
    except Exception as e:  # noqa: BLE001 - the data set is optional
        print(f"  ML-100K skipped: {e}")
        sets.pop()
    n_users, n_items, n = SIZES["ml1m"]
    sets.append(
        (f"synthetic({n_users:_}, {n_items:_}, {n:_}, seed=1)",
         lambda: stratified_split(synthetic(n_users, n_items, n, seed=1), ratio=0.75, by="user", seed=42))
    )  # fmt: skip
    for name, load in sets:
        train, test = load()
        evaluator = Evaluator(train, test, k=10, metrics=["ndcg"])
        exact_graph = None
        for label, params in (
            ("UserKNN(max_candidates=None)", {"max_candidates": None}),
            ("UserKNN()", {}),
            ("UserKNN(max_candidates=300)", {"max_candidates": 300}),
        ):
            model = UserKNN(**params)
            t0 = time.perf_counter()
            model.fit(train)
            fit_s = time.perf_counter() - t0
            if exact_graph is None:
                exact_graph = model.neighbours_
            kept = exact_graph.multiply(model.neighbours_ > 0).nnz / max(exact_graph.nnz, 1)
            c = model._n_candidates(model.profiles_)
            ndcg = evaluator.evaluate(model).summary["ndcg@10"]
            lines += section(
                f"| {name} | {label} | {'all (exact)' if c is None else c} | {ndcg:.4f} | {kept:.3f} | {fit_s:.1f} |"
            )
    lines += ["", "The machine was shared: fit times are indicative only.", "",
              "Command: `RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.knn_scale --accuracy`"]  # fmt: skip
    if out is not None:
        write_results(out, lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="ml10m")
    ap.add_argument("--k", type=int, default=100, help="neighbours per item, ours and implicit's")
    ap.add_argument("--skip-userknn", action="store_true")
    ap.add_argument("--skip-itemknn", action="store_true")
    ap.add_argument("--userknn-exact", action="store_true", help="also UserKNN(max_candidates=None)")
    ap.add_argument("--accuracy", action="store_true", help="UserKNN exact vs bounded NDCG@10 instead")
    ap.add_argument("--out", type=Path, default=None, help="results file ('-' to write none)")
    args = ap.parse_args()
    if args.accuracy:
        accuracy(None if str(args.out) == "-" else (args.out or ACCURACY))
        return
    args.out = args.out or RESULTS
    n_users, n_items, n = SIZES[args.size]
    lines = header(f"ItemKNN / UserKNN at {args.size} size against implicit")
    t0 = time.perf_counter()
    data = synthetic(n_users, n_items, n, seed=1)
    lines += section(
        f"Data: `synthetic({n_users:_}, {n_items:_}, {n:_}, seed=1)`: {data.n_users:,} users x {data.n_items:,} items, "
        f"{data.nnz:,} interactions (built in {time.perf_counter() - t0:.0f} s). K = {args.k}.",
    )
    k = args.k
    if not args.skip_itemknn:
        lines += section(
            "",
            "| model | fit s | fit peak MiB | top-10 all users s | top-10 peak MiB |",
            "|---|---|---|---|---|",
        )
        lines += pair(
            data,
            [
                (f"ItemKNN(weighting='bm25', k={k})", ItemKNN(weighting="bm25", k=k)),
                (f"ItemKNN(weighting='bm25', k={k}, neighbours_of='history')",
                 ItemKNN(weighting="bm25", k=k, neighbours_of="history")),
            ],  # fmt: skip
            f"implicit BM25Recommender(K={k})",
            ImplicitBM25({"K": k}, seed=0),
        )
        lines += pair(
            data,
            [
                (f"ItemKNN(weighting='none', shrinkage=0, k={k})",
                 ItemKNN(weighting="none", similarity="cosine", shrinkage=0.0, k=k)),
                (f"ItemKNN(weighting='none', shrinkage=0, k={k}, neighbours_of='history')",
                 ItemKNN(weighting="none", similarity="cosine", shrinkage=0.0, k=k, neighbours_of="history")),
            ],  # fmt: skip
            f"implicit CosineRecommender(K={k})",
            ImplicitCosine({"K": k}, seed=0),
        )
        lines += modes_accuracy()
    if not args.skip_userknn:
        users = data.users.ids
        variants: list[tuple[str, Callable[[], UserKNN]]] = [("UserKNN()", UserKNN)]
        if args.userknn_exact:
            variants.append(("UserKNN(max_candidates=None)", lambda: UserKNN(max_candidates=None)))
        lines += section(
            "",
            "UserKNN (no peer). CPU s: the process's CPU time over all its threads; load: the machine's 1-minute"
            " load average (2 cores) at the start and the end of the step.",
            "",
            "| model | fit s | fit CPU s | fit peak MiB | top-10 all users s | top-10 CPU s | top-10 peak MiB | load |",
            "|---|---|---|---|---|---|---|---|",
        )
        for label, make in variants:
            model = make()  # one fitted model in memory at a time
            load0 = os.getloadavg()[0]
            fit_s, fit_cpu, fit_mb, _ = timed_cpu(f"{label} fit", lambda m=model: m.fit(data))
            rec_s, rec_cpu, rec_mb, _ = timed_cpu(f"{label} top-10 for all", lambda m=model: m.recommend(users, k=10))
            total = fit_s + rec_s
            lines += section(
                f"| {label} | {fit_s:.1f} | {fit_cpu:.1f} | {fit_mb:.0f} | {rec_s:.1f} | {rec_cpu:.1f} | {rec_mb:.0f}"
                f" | {load0:.1f} -> {os.getloadavg()[0]:.1f} |",
                f"| {label} fit + top-10 for all | {total:.1f} s ({total / 300:.2f}x the 300 s target) |"
                f" {fit_cpu + rec_cpu:.1f} CPU s | | | | | |",
            )
            del model
    flags = "".join(
        f" --{f.replace('_', '-')}" for f in ("skip_userknn", "skip_itemknn", "userknn_exact") if getattr(args, f)
    )
    lines += ["", f"Command: `python -m benchmarks.knn_scale --size {args.size} --k {args.k}{flags}`"]
    if str(args.out) != "-":
        write_results(args.out, lines)


if __name__ == "__main__":
    main()
