"""ALS and BPR on ML-100K against implicit and Cornac; fold-in, online updates and latency.

1. Quality and speed on ML-100K (the neighbourhood issue's protocol: every
   rating an interaction of weight 1, ``stratified_split(0.75, by="user",
   seed=42)``, k=10, train items excluded, metrics from ``Evaluator``), our
   models with their defaults next to implicit's ALS and BPR and Cornac's BPR
   (tuned values of the issue), on 2 threads (our BPR on 1 torch thread, see
   ``BPR_THREADS``), scored through the same Evaluator.
2. Wrapper overhead: ``ALS().fit(train)`` + ``recommend(all users)`` against
   implicit's ``AlternatingLeastSquares.fit`` on the same confidence matrix +
   ``recommend(all users, filter_already_liked_items=True)``, same
   hyper-parameters and threads; ratio of the best timed runs.
3. Latency on ML-100K (p50 / p99 over every user, after warm-up): fold-in of
   one user's history (``recommend_history``; implicit's
   ``recommend(recalculate_user=True)`` for ALS next to it) and
   ``recommend_one``.
4. Online updates on a synthetic dataset (50,000 users x 10,000 items, 1M
   interactions): ``partial_fit_users`` for 1,000 known users with 5 new
   interactions each, against a full refit on the updated data.

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.mf``
(``--quick`` skips the synthetic online-update runs). Writes ``benchmarks/results/mf.md``.
Cornac is optional (``pip install cornac``); its row is left out when missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    QualityTable,
    Timing,
    header,
    latency_percentiles,
    ml100k_split,
    repeat,
    section,
    write_results,
)
from recsys import Interactions
from recsys._peers import CornacBPR, ImplicitALS, ImplicitBPR, PeerModel
from recsys._utils.threads import limit_threads
from recsys.datasets.synthetic import synthetic
from recsys.models import ALS, BPR

RESULTS = Path(__file__).parent / "results" / "mf.md"
ONLINE_HEAD = (
    "",
    "Online updates on synthetic data: partial_fit_users (item vectors fixed) against a full refit on the"
    " updated data (ALS best of 3, BPR one run):",
    "",
    "| model | data | update | refit s | partial_fit_users s | speed-up |",
    "|---|---|---|---|---|---|",
)
THREADS = 2
# BPR's torch solves on one thread: on this shared, oversubscribed machine two torch (OpenMP) threads
# made every op 10-40x slower (measured); its SGD loop is single-threaded by design anyway.
BPR_THREADS = 1
RUNS = 5


def quality(train: Interactions, test: Interactions) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    table = QualityTable(train, test)
    models: dict[str, Any] = {}
    for name, factory in (("ALS()", lambda: ALS(num_threads=THREADS)), ("BPR()", lambda: BPR(num_threads=BPR_THREADS))):
        model = factory()
        table.add(name, model, fit_runs=RUNS if name == "ALS()" else 2, rec_runs=RUNS, warmup=1 if name == "ALS()" else 0)
        models[name] = model

    def peer_row(name: str, peer: PeerModel, runs: int) -> None:
        with limit_threads(1, blas=True):  # implicit's advice (its fit sets the same limit)
            table.add(name, peer, fit_runs=runs, rec_runs=RUNS, warmup=1 if runs > 2 else 0, peer=True)

    peer_row(
        "implicit ALS (32 f, reg 0.01, alpha 5, 15 it)",
        ImplicitALS({"factors": 32, "regularization": 0.01, "alpha": 5.0, "iterations": 15, "num_threads": THREADS}, seed=0),
        RUNS,
    )
    peer_row(
        "implicit BPR (128 f, lr 0.005, reg 0.01, 100 it)",
        ImplicitBPR(
            {"factors": 128, "learning_rate": 0.005, "regularization": 0.01, "iterations": 100, "num_threads": THREADS}, seed=0
        ),
        2,
    )
    if importlib.util.find_spec("cornac") is None:
        print("cornac not installed: its row is left out (pip install cornac)")
    else:
        peer_row(
            "Cornac BPR (k 200, lr 0.01, 100 epochs)",
            CornacBPR({"k": 200, "max_iter": 100, "learning_rate": 0.01, "lambda_reg": 0.01}, seed=0),
            2,
        )
    return table.rows, models


def overhead(train: Interactions) -> tuple[Timing, Timing, float]:
    """ALS().fit + recommend(all) against implicit on the same confidences, same parameters and threads."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = ALS(num_threads=THREADS)
    p = model.get_params()
    users = np.arange(train.n_users, dtype=np.int32)
    user_ids = train.users.ids
    binary = train.matrix("csr", "binary").astype(np.float32)
    model.fit(train)
    conf = model._confidence(model.user_items_)  # the same matrix implicit gets from us

    def ours() -> None:
        ALS(num_threads=THREADS).fit(train).recommend(user_ids, k=10)

    def theirs() -> None:
        with limit_threads(1, blas=True):
            m = AlternatingLeastSquares(
                factors=p["n_factors"], regularization=model.reg_, alpha=1.0, iterations=p["n_iterations"],
                num_threads=THREADS, random_state=p["seed"],
            )
            m.fit(conf, show_progress=False)
            m.recommend(users, binary, N=10, filter_already_liked_items=True)

    # interleaved, so both see the same load on a shared machine
    t_ours, t_theirs = Timing(), Timing()
    ours(), theirs()
    for _ in range(2 * RUNS):
        for fn, t in ((ours, t_ours), (theirs, t_theirs)):
            t0 = time.perf_counter()
            fn()
            t.runs.append(time.perf_counter() - t0)
    return t_ours, t_theirs, t_ours.best / t_theirs.best


def latency(models: dict[str, Any], train: Interactions) -> list[str]:
    from implicit.cpu.als import AlternatingLeastSquares

    csr = train.matrix("csr", "binary")
    users = list(range(train.n_users))
    hists = [train.items.ids[csr.indices[csr.indptr[u] : csr.indptr[u + 1]]] for u in users]
    out = ["| model | fold-in (recommend_history) p50 ms | p99 ms | recommend_one p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for name, m in models.items():
        for h in hists[:20]:
            m.recommend_history(h, k=10)
        f50, f99 = latency_percentiles(lambda h, m=m: m.recommend_history(h, k=10), hists)
        ids = list(train.users.ids)
        for u in ids[:50]:
            m.recommend_one(u, k=10)
        r50, r99 = latency_percentiles(lambda u, m=m: m.recommend_one(u, k=10), ids * 2)
        out.append(f"| {name} | {f50:.2f} | {f99:.2f} | {r50:.3f} | {r99:.3f} |")
    als = models["ALS()"]
    p = als.get_params()
    with limit_threads(1, blas=True):
        peer = AlternatingLeastSquares(
            factors=p["n_factors"], regularization=als.reg_, alpha=1.0, iterations=p["n_iterations"],
            num_threads=THREADS, random_state=p["seed"],
        )
        conf = als._confidence(als.user_items_)
        peer.fit(conf, show_progress=False)
        f50, f99 = latency_percentiles(
            lambda u: peer.recommend(u, conf[u], N=10, filter_already_liked_items=True, recalculate_user=True), users
        )
        r50, r99 = latency_percentiles(lambda u: peer.recommend(u, csr[u], N=10, filter_already_liked_items=True), users * 2)
    out.append(f"| implicit ALS, same parameters (recalculate_user=True / one user) | {f50:.2f} | {f99:.2f} | {r50:.3f} | {r99:.3f} |")
    return out


def online(n_users: int, n_items: int, nnz: int) -> list[str]:
    data = synthetic(n_users=n_users, n_items=n_items, n_interactions=nnz, seed=42)
    data = Interactions.from_arrays(data.users.ids[data.user_index], data.items.ids[data.item_index])
    rng = np.random.default_rng(0)
    chosen = rng.choice(data.n_users, 1000, replace=False)
    seen = data.matrix("csr", "binary")
    new_u, new_i = [], []
    for u in chosen:
        have = set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
        cand = [i for i in rng.choice(data.n_items, 20, replace=False).tolist() if i not in have][:5]
        new_u += [u] * len(cand)
        new_i += cand
    new = Interactions.from_arrays(data.users.ids[new_u], data.items.ids[new_i])
    updated = Interactions.from_arrays(
        np.concatenate([data.users.ids[data.user_index], data.users.ids[new_u]]),
        np.concatenate([data.items.ids[data.item_index], data.items.ids[new_i]]),
    )
    out = []
    for name, factory in (("ALS()", lambda: ALS(num_threads=THREADS)), ("BPR()", lambda: BPR(num_threads=BPR_THREADS))):
        model = factory().fit(data)
        runs = 3 if name == "ALS()" else 1
        refit = repeat(lambda: factory().fit(updated), runs=runs, warmup=0)
        partial = Timing()
        for _ in range(runs):
            m = factory().fit(data) if _ else model
            t0 = time.perf_counter()
            m.partial_fit_users(new)
            partial.runs.append(time.perf_counter() - t0)
        line = (
            f"| {name} | {n_users:,} x {n_items:,}, {nnz:,} | {len(new_u):,} new interactions of 1,000 users | "
            f"{refit.best:.2f} | {partial.best:.3f} | {refit.best / partial.best:.0f}x |"
        )
        print(line, flush=True)
        out.append(line)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the synthetic online-update runs")
    args = parser.parse_args()
    lines = header("ALS and BPR vs implicit and Cornac")
    train, test = ml100k_split()
    rows, models = quality(train, test)
    lines += [
        f"ML-100K, the neighbourhood issue's protocol; {THREADS} threads (BPR(): 1 torch thread, Cornac: its single"
        " thread); timings mean ± std of the timed"
        " runs (ALS and implicit ALS 5 after a warm-up, the BPRs 2); recommend = top-10 for every test user.",
        "",
        "| model | NDCG@10 | P@10 | R@10 | fit s | recommend all s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['ndcg']:.4f} | {r['p']:.4f} | {r['r']:.4f} | {r['fit']} | {r['rec']} |")
    print("\n".join(lines[-len(rows) - 2 :]), flush=True)
    ndcg = {r["model"]: r["ndcg"] for r in rows}
    ratios = [
        "",
        "NDCG@10 ratios (same run): "
        + ", ".join(
            f"{ours} / {peer} = {ndcg[ours] / ndcg[peer]:.3f}"
            for ours, peer in (
                ("ALS()", "implicit ALS (32 f, reg 0.01, alpha 5, 15 it)"),
                ("BPR()", "implicit BPR (128 f, lr 0.005, reg 0.01, 100 it)"),
                ("BPR()", "Cornac BPR (k 200, lr 0.01, 100 epochs)"),
            )
            if peer in ndcg
        ),
    ]
    lines += ratios
    print(ratios[-1], flush=True)
    t_ours, t_theirs, ratio = overhead(train)
    head = [
        "",
        "Wrapper overhead (fit + recommend for all users, interleaved runs; implicit gets our confidence matrix,"
        " the same hyper-parameters and threads):",
        "",
        "| ALS() fit + recommend s | implicit fit + recommend s | ratio (best / best) |",
        "|---|---|---|",
        f"| {t_ours} | {t_theirs} | {ratio:.3f} |",
    ]
    lines += section(*head)
    lines += ["", "Latency on ML-100K (every user, after warm-up; fold-in uses the user's train history):", ""]
    lines += section(*latency(models, train))
    if not args.quick:
        lines += section(*ONLINE_HEAD) + online(50_000, 10_000, 1_000_000)
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
