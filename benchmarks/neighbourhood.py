"""ItemKNN, UserKNN and EASE on ML-100K against implicit's item-item recommenders, plus scaling.

1. Quality and speed on ML-100K (Microsoft Recommenders' protocol: every rating
   an interaction of weight 1, ``stratified_split(0.75, by="user", seed=42)``,
   k=10, train items excluded, metrics from ``Evaluator``). implicit's
   ``BM25Recommender(K=200)`` and ``CosineRecommender(K=20)`` run in the same
   process on the same CSR matrix and are scored through the same Evaluator;
   ratios are ours / theirs (best of the timed runs).
2. Single-user ``recommend_one`` latency (p50 / p99) on ML-100K.
3. Scaling on ``recsys.datasets.synthetic``: fit time and peak RSS at n and 2n
   interactions (users doubled, catalogue fixed).

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.neighbourhood``
(``--quick`` skips the scaling runs; ``--item-sizes`` / ``--user-sizes`` set them).
Writes ``benchmarks/results/neighbourhood.md``.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import PeakMemory, QualityTable, latency_percentiles, machine, ml100k, section, write_results
from recsys import Interactions
from recsys._peers import ImplicitBM25, ImplicitCosine
from recsys.datasets.synthetic import synthetic
from recsys.models import EASE, ItemKNN, Popular, UserKNN
from recsys.split import stratified_split

RESULTS = Path(__file__).parent / "results" / "neighbourhood.md"
SCALING_HEAD = (
    "",
    "Scaling on synthetic data (each group doubles the interactions; \"vs first\" is against the group's first row);"
    " peak RSS above the start of fit:",
    "",
    "| model | users x items | interactions | fit s | vs first | peak MiB | graph MiB |",
    "|---|---|---|---|---|---|---|",
)
RUNS = 5


def quality_table(train: Interactions, test: Interactions) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    table = QualityTable(train, test)
    ours: dict[str, Any] = {}
    peers = {
        "implicit BM25Recommender(K=200)": ImplicitBM25({"K": 200}, seed=0),
        "implicit CosineRecommender(K=20)": ImplicitCosine({"K": 20}, seed=0),
    }
    for name, peer in peers.items():
        table.add(name, peer, fit_runs=RUNS, rec_runs=RUNS, peer=True)
    models: dict[str, Callable[[], Any]] = {
        "ItemKNN()": ItemKNN,
        # like-for-like with the two implicit rows: same neighbourhood size and weighting
        "ItemKNN(k=200, weighting='bm25', shrinkage=0)": lambda: ItemKNN(k=200, weighting="bm25", shrinkage=0.0),
        "ItemKNN(k=20, weighting='none', shrinkage=0)": lambda: ItemKNN(k=20, weighting="none", shrinkage=0.0),
        "UserKNN()": UserKNN,
        "EASE()": EASE,
        "Popular()": Popular,
    }
    for name, factory in models.items():
        model = factory()
        table.add(name, model, fit_runs=RUNS, rec_runs=RUNS)
        ours[name] = model
    return table.rows, ours


def latency_table(models: dict[str, Any], train: Interactions) -> list[str]:
    users = list(train.users.ids)
    out = ["| model | recommend_one p50 ms | p99 ms |", "|---|---|---|"]
    for name in ("ItemKNN()", "UserKNN()", "EASE()"):
        m = models[name]
        for u in users[:50]:
            m.recommend_one(u, k=10)
        p50, p99 = latency_percentiles(lambda u, m=m: m.recommend_one(u, k=10), users * 3)
        out.append(f"| {name} | {p50:.3f} | {p99:.3f} |")
    peer = ImplicitBM25({"K": 200}, seed=0).fit(train)
    x = peer.seen_
    p50, p99 = latency_percentiles(
        lambda u: peer.model.recommend(u, x[u], N=10, filter_already_liked_items=True), list(range(train.n_users)) * 3
    )
    out.append(f"| implicit BM25Recommender(K=200), one user | {p50:.3f} | {p99:.3f} |")
    return out


def scaling(cls: type, sizes: list[tuple[int, int, int]]) -> list[str]:
    out = []
    times = []
    for n_users, n_items, nnz in sizes:
        data = synthetic(n_users=n_users, n_items=n_items, n_interactions=nnz, seed=42)
        data = Interactions.from_arrays(data.user_index, data.item_index)  # weights only: drop features
        data.matrix("csr", "weight")  # build the cached matrix outside the measurement
        gc.collect()
        with PeakMemory() as pm:
            t0 = time.perf_counter()
            model = cls().fit(data)
            fit_s = time.perf_counter() - t0
        graph_mb = sum(a.nbytes for a in (model.neighbours_.data, model.neighbours_.indices, model.neighbours_.indptr)) / 2**20
        times.append(fit_s)
        ratio = "" if len(times) == 1 else f"{fit_s / times[0]:.2f}x"
        out.append(
            f"| {cls.__name__}() | {n_users:,} x {n_items:,} | {nnz:,} | {fit_s:.1f} | {ratio} | "
            f"{pm.peak_above_start / 2**20:.0f} | {graph_mb:.0f} |"
        )
        print(out[-1], flush=True)
        del model, data
        gc.collect()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the synthetic scaling runs")
    parser.add_argument("--item-sizes", default="70000x10000x5000000,140000x10000x10000000")
    # UserKNN's cost grows with the co-occurring user pairs: doubling the users quadruples them, doubling
    # each user's history (a larger catalogue) doubles them; both groups are run (';' separates groups)
    parser.add_argument("--user-sizes", default="70000x10000x5000000,70000x20000x10000000;14000x10000x1000000,28000x10000x2000000")
    args = parser.parse_args()
    lines = ["# Neighbourhood models vs implicit", "", f"Machine: {machine()}", ""]
    print(lines[2], flush=True)
    data = ml100k()
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    rows, models = quality_table(train, test)
    bm25, cos = rows[0], rows[1]
    lines += [
        f"ML-100K, MS Recommenders protocol; {RUNS} timed runs after one warm-up (mean ± std); ratios use the best run.",
        "",
        "| model | NDCG@10 | P@10 | R@10 | fit s | recommend all s | fit / BM25 | rec / BM25 | fit / Cosine | rec / Cosine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ndcg']:.4f} | {r['p']:.4f} | {r['r']:.4f} | {r['fit']} | {r['rec']} | "
            f"{r['fit'].best / bm25['fit'].best:.2f} | {r['rec'].best / bm25['rec'].best:.2f} | "
            f"{r['fit'].best / cos['fit'].best:.2f} | {r['rec'].best / cos['rec'].best:.2f} |"
        )
    print("\n".join(lines[4:]), flush=True)
    lines += ["", "Single-user latency on ML-100K (every user three times, after warm-up):", ""]
    lines += section(*latency_table(models, train))
    if not args.quick:
        lines += section(*SCALING_HEAD)
        for cls, spec in ((ItemKNN, args.item_sizes), (UserKNN, args.user_sizes)):
            for group in spec.split(";"):
                sizes = [tuple(int(v) for v in s.split("x")) for s in group.split(",")]
                lines += scaling(cls, sizes)  # type: ignore[arg-type]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
