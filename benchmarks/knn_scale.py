"""ItemKNN and UserKNN at MovieLens sizes, next to implicit's item-item recommenders in the same process.

On ``recsys.datasets.synthetic`` data of a MovieLens size (``--size``), every
row is timed in this one process with the library defaults for threads:

* ``ItemKNN(weighting='bm25', k=K)`` against implicit's ``BM25Recommender(K=K)``;
* ``ItemKNN(weighting='none', similarity='cosine', shrinkage=0, k=K)`` against
  implicit's ``CosineRecommender(K=K)``;
* ``UserKNN()`` (defaults): fit, then top-10 for all users (no peer: implicit
  has no user-user model), against the 5-minute target for the two together;
  with ``--userknn-exact`` also ``UserKNN(max_candidates=None)`` (every pair of
  co-raters compared, the behaviour below the default's data-size threshold),
  timed in the same process.

"top-10" is ``recommend`` for every user (train items excluded), a frame out
of both libraries (implicit through :mod:`recsys._peers`). Ratios are ours /
implicit's; the machine is shared, so only the ratios of one run compare.

Run: ``python -m benchmarks.knn_scale --size ml10m`` (``--size`` one of
ml1m, ml10m, ml20m; ``--k``, ``--skip-userknn``, ``--skip-itemknn``,
``--userknn-exact``, ``--out``).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import PeakMemory, header, section, write_results
from recsys import Interactions
from recsys._peers import ImplicitBM25, ImplicitCosine
from recsys.datasets.synthetic import synthetic
from recsys.models import ItemKNN, UserKNN

RESULTS = Path(__file__).parent / "results" / "knn_scale.md"
SIZES = {
    "ml1m": (6_040, 3_706, 1_000_209),
    "ml10m": (69_878, 10_677, 10_000_054),
    "ml20m": (138_493, 26_744, 20_000_263),
}


def timed(what: str, fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Seconds and peak RSS (MiB above the start) of ``fn()``, with its result; prints a progress line."""
    gc.collect()
    print(f"  {what} ...", flush=True)
    with PeakMemory() as pm:
        t0 = time.perf_counter()
        out = fn()
        secs = time.perf_counter() - t0
    print(f"  {what}: {secs:.1f} s, peak {pm.peak_above_start / 2**20:.0f} MiB", flush=True)
    return secs, pm.peak_above_start / 2**20, out


def pair(data: Interactions, name: str, ours: Any, peer_name: str, peer: Any) -> list[str]:
    """Fit and top-10-for-all of ``ours`` and ``peer``: one table row each and the ratio row."""
    users = data.users.ids
    rows = []
    res: dict[str, tuple[float, float, float, float]] = {}
    for label, model in ((peer_name, peer), (name, ours)):
        fit_s, fit_mb, _ = timed(f"{label} fit", lambda m=model: m.fit(data))
        rec_s, rec_mb, _ = timed(f"{label} top-10 for all", lambda m=model: m.recommend(users, k=10))
        res[label] = (fit_s, fit_mb, rec_s, rec_mb)
        rows.append(f"| {label} | {fit_s:.1f} | {fit_mb:.0f} | {rec_s:.1f} | {rec_mb:.0f} |")
        del model
    o, p = res[name], res[peer_name]
    rows.append(f"| ratio ours / implicit | {o[0] / p[0]:.2f}x | | {o[2] / p[2]:.2f}x | |")
    return section(*rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="ml10m")
    ap.add_argument("--k", type=int, default=100, help="neighbours per item, ours and implicit's")
    ap.add_argument("--skip-userknn", action="store_true")
    ap.add_argument("--skip-itemknn", action="store_true")
    ap.add_argument("--userknn-exact", action="store_true", help="also UserKNN(max_candidates=None)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results file ('-' to write none)")
    args = ap.parse_args()
    n_users, n_items, n = SIZES[args.size]
    lines = header(f"ItemKNN / UserKNN at {args.size} size against implicit")
    t0 = time.perf_counter()
    data = synthetic(n_users, n_items, n, seed=1)
    lines += section(
        f"Data: `synthetic({n_users:_}, {n_items:_}, {n:_}, seed=1)`: {data.n_users:,} users x {data.n_items:,} items, "
        f"{data.nnz:,} interactions (built in {time.perf_counter() - t0:.0f} s). K = {args.k}.",
        "",
        "| model | fit s | fit peak MiB | top-10 all users s | top-10 peak MiB |",
        "|---|---|---|---|---|",
    )
    k = args.k
    if not args.skip_itemknn:
        lines += pair(
            data,
            f"ItemKNN(weighting='bm25', k={k})",
            ItemKNN(weighting="bm25", k=k),
            f"implicit BM25Recommender(K={k})",
            ImplicitBM25({"K": k}, seed=0),
        )
        lines += pair(
            data,
            f"ItemKNN(weighting='none', shrinkage=0, k={k})",
            ItemKNN(weighting="none", similarity="cosine", shrinkage=0.0, k=k),
            f"implicit CosineRecommender(K={k})",
            ImplicitCosine({"K": k}, seed=0),
        )
    if not args.skip_userknn:
        users = data.users.ids
        variants: list[tuple[str, Callable[[], UserKNN]]] = [("UserKNN()", UserKNN)]
        if args.userknn_exact:
            variants.append(("UserKNN(max_candidates=None)", lambda: UserKNN(max_candidates=None)))
        for label, make in variants:
            model = make()  # one fitted model in memory at a time
            fit_s, fit_mb, _ = timed(f"{label} fit", lambda m=model: m.fit(data))
            rec_s, rec_mb, _ = timed(f"{label} top-10 for all", lambda m=model: m.recommend(users, k=10))
            total = fit_s + rec_s
            lines += section(
                f"| {label} | {fit_s:.1f} | {fit_mb:.0f} | {rec_s:.1f} | {rec_mb:.0f} |",
                f"| {label} fit + top-10 for all | {total:.1f} s ({total / 300:.2f}x the 300 s target) | | | |",
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
