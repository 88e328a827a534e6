"""ItemIndex on 1,000,000 clustered items: exact vs numpy, and approximate recall / speed sweeps.

Data (fixed generator, seed 0): a mixture of 1,000 Gaussian clusters in dimension 64,
centres N(0, 1), points = centre + 0.3 N(0, 1); queries drawn the same way. Metric
``dot``, 2 threads (faiss OpenMP and BLAS, through ``ItemIndex(threads=2)``).

1. ``kind="exact"`` queries/s on all queries, and its ratio to numpy matmul +
   argpartition (the same top-10, chunked by 64 queries) timed in the same run. The
   numpy baseline is timed on the first ``--baseline-queries`` queries (its queries/s is
   per query, so the ratio is unaffected; it is ~10x slower and would dominate the run).
2. ``ivf``, ``hnsw`` and ``ivfpq``: build time, then recall@10 against the exact
   results and queries/s at several ``nprobe`` / ``ef_search`` values.
3. ``kind="auto"`` with its defaults (target: recall@10 >= 0.95 at >= 10x exact queries/s).

Run: ``python -m benchmarks.index`` (``--items``/``--queries`` to shrink it, ``--skip-hnsw``
to skip the slowest build). Writes ``benchmarks/results/index.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine, repeat
from recsys.index import ItemIndex

RESULTS = Path(__file__).parent / "results" / "index.md"
K = 10
THREADS = 2


def clustered(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    out = centres[rng.integers(0, centres.shape[0], n)]
    out += 0.3 * rng.standard_normal((n, dim), dtype=np.float32)
    return out


def numpy_topk(Q: np.ndarray, V: np.ndarray, k: int) -> np.ndarray:
    """The baseline: matmul then argpartition + sort of the k best, 64 queries at a time."""
    out = np.empty((Q.shape[0], k), dtype=np.int64)
    for s in range(0, Q.shape[0], 64):
        S = Q[s : s + 64] @ V.T
        part = np.argpartition(-S, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(S, part, axis=1), axis=1)
        out[s : s + 64] = np.take_along_axis(part, order, axis=1)
    return out


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    """Mean |found ∩ true top-k| / k, vectorised (ids are unique within a row)."""
    n = max(int(ids.max()), int(truth.max())) + 1
    rows = np.repeat(np.arange(ids.shape[0]), ids.shape[1])
    key_found = np.sort(rows * n + ids.ravel())
    key_true = rows * n + truth.ravel()
    at = np.minimum(np.searchsorted(key_found, key_true), key_found.size - 1)
    return float((key_found[at] == key_true).mean())


def timed_search(index: ItemIndex, Q: np.ndarray, runs: int) -> tuple[float, np.ndarray]:
    """Best-of-``runs`` queries/s and the ids of the last run."""
    holder: dict[str, Any] = {}

    def run() -> None:
        holder["ids"] = index.search(Q, K)[0]

    t = repeat(run, runs=runs, warmup=0)
    return Q.shape[0] / t.best, holder["ids"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--baseline-queries", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--skip-hnsw", action="store_true")
    args = ap.parse_args()

    print(machine())
    rng = np.random.default_rng(0)
    dim = 64
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    V = clustered(args.items, dim, rng, centres)
    Q = clustered(args.queries, dim, rng, centres)
    print(f"{args.items:,} items, {args.queries:,} queries, dim {dim}, metric dot, k={K}, {THREADS} threads")
    lines: list[str] = []
    rows: list[tuple[str, str, float, float, float, float]] = []  # kind, setting, build s, recall, q/s, x exact

    # 1. exact vs numpy
    exact = ItemIndex.build(V, metric="dot", kind="exact", threads=THREADS)
    exact.search(Q[:200], K)  # warm-up
    exact_qps, truth = timed_search(exact, Q, args.runs)
    nb = min(args.baseline_queries, args.queries)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(THREADS):
        t_np = repeat(lambda: numpy_topk(Q[:nb], V, K), runs=1, warmup=0)
        base_ids = numpy_topk(Q[:nb], V, K)
    np_qps = nb / t_np.best
    same = recall(truth[:nb], base_ids)
    print(f"exact: {exact_qps:,.0f} queries/s; numpy matmul+argpartition: {np_qps:,.1f} queries/s "
          f"(on {nb:,} queries) -> ratio {exact_qps / np_qps:.2f}x; top-10 overlap with numpy {same:.4f}")
    lines += [
        "| method | queries/s | ratio to numpy |",
        "| --- | ---: | ---: |",
        f"| numpy matmul + argpartition (first {nb:,} queries) | {np_qps:,.1f} | 1.00x |",
        f"| ItemIndex exact (all {args.queries:,} queries, best of {args.runs}) | {exact_qps:,.0f} | {exact_qps / np_qps:.2f}x |",
        "",
    ]
    del exact

    # 2. approximate kinds
    sweeps: list[tuple[str, dict[str, Any], str, list[int]]] = [
        ("ivf", {}, "nprobe", [1, 2, 4, 8, 16, 32, 64]),
        ("ivfpq", {}, "nprobe", [2, 4, 8, 16, 32]),
    ]
    if not args.skip_hnsw:
        sweeps.insert(1, ("hnsw", {}, "ef_search", [16, 32, 64, 128, 256]))
    auto_row: tuple[float, float, float, dict[str, int]] | None = None
    for kind, params, knob, values in sweeps:
        t0 = time.perf_counter()
        index = ItemIndex.build(V, metric="dot", kind="auto" if kind == "ivf" else kind, threads=THREADS, **params)
        build_s = time.perf_counter() - t0
        defaults = index.params
        print(f"{kind}: built in {build_s:.1f}s with {defaults}", flush=True)
        if kind == "ivf":  # kind="auto" on 1M items is ivf with its defaults
            assert index.kind == "ivf"
            qps, ids = timed_search(index, Q, args.runs)
            auto_row = (build_s, recall(ids, truth), qps, defaults)
            print(f"  auto defaults: recall@10 {auto_row[1]:.4f}, {qps:,.0f} queries/s, {qps / exact_qps:.1f}x exact")
        for v in values:
            if knob == "nprobe" and v > defaults["nlist"]:
                continue
            index.set_search_params(**{knob: v})
            qps, ids = timed_search(index, Q, args.runs)
            r = recall(ids, truth)
            rows.append((kind, f"{knob}={v}", build_s, r, qps, qps / exact_qps))
            print(f"  {knob}={v}: recall@10 {r:.4f}, {qps:,.0f} queries/s, {qps / exact_qps:.1f}x exact", flush=True)
        del index

    lines += [
        "| kind | setting | build s | recall@10 | queries/s | x exact |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {k} | {s} | {b:.0f} | {r:.4f} | {q:,.0f} | {x:.1f}x |" for k, s, b, r, q, x in rows]
    if auto_row is not None:
        b, r, q, p = auto_row
        ok = r >= 0.95 and q >= 10 * exact_qps
        lines += [
            "",
            f"`kind=\"auto\"` defaults ({', '.join(f'{k}={v}' for k, v in p.items())}): recall@10 {r:.4f}, "
            f"{q:,.0f} queries/s = {q / exact_qps:.1f}x exact, built in {b:.0f}s. "
            f"Target (recall >= 0.95 at >= 10x exact): {'met' if ok else 'NOT met'}.",
        ]
        print(lines[-1])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    header = [
        "# ItemIndex benchmark",
        "",
        f"`python -m benchmarks.index` on {machine()}.",
        f"{args.items:,} items, {args.queries:,} queries, mixture of 1,000 Gaussian clusters in dimension 64, "
        f"metric dot, k={K}, {THREADS} threads. Recall is against the exact index's top-10.",
        "",
    ]
    RESULTS.write_text("\n".join(header + lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
