"""SparseEASE against exact EASE: accuracy where both fit, time and memory where only SparseEASE does.

1. ``--part quality``: NDCG@10 of exact EASE and SparseEASE on ML-100K and on synthetic data the size of
   ml-latest-small (``synthetic(610, 9_742, 100_836, seed=1)``), under the protocol of
   ``benchmarks/tune_neighbourhood.py`` (every rating an interaction of weight 1,
   ``stratified_split(0.75, by="user", seed=42)``; choices made on ``train_validation_split(train)``,
   seed 1234, NDCG@10 on validation; test scored once). Exact EASE runs with its defaults (``EASE()``,
   ``reg="auto"``); SparseEASE's ``n_neighbours`` / ``reg`` (the ``"auto"`` rule among fixed values) /
   ``selection`` are chosen on validation from a small grid, and its defaults are scored too.
2. ``--part scale``: fit time and peak RSS of ``SparseEASE()`` on synthetic data of ML-20M size
   (26,744 items) and ML-25M size (59,047 items), with ItemKNN's fit (``ItemKNN()``) timed in the same
   process as the reference for the times, a top-10 pass over 10,000 users, and exact EASE's answer at
   ML-20M size (it refuses above ``max_items``; its refusal is recorded).

Run (each part rewrites only its own section of ``benchmarks/results/ease_scale.md``):

    RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.ease_scale --part quality
    nice -n 5 python -m benchmarks.ease_scale --part scale --size ml20m
    nice -n 5 python -m benchmarks.ease_scale --part scale --size ml25m
"""

from __future__ import annotations

import argparse
import gc
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import PeakMemory, grid_scores, machine, ml100k, rss_bytes, sizes
from recsys import Interactions
from recsys.datasets.synthetic import synthetic
from recsys.errors import ParameterError
from recsys.evaluation import Evaluator
from recsys.models import EASE, ItemKNN, SparseEASE
from recsys.models.base import Recommender
from recsys.split import stratified_split, train_validation_split

RESULTS = Path(__file__).parent / "results" / "ease_scale.md"

GRID: dict[str, list[Any]] = {
    "selection": ["cooccurrence", "cosine"],
    "n_neighbours": [128, 256, 512],
    "reg": [150.0, 300.0, 600.0, "auto"],
}
SIZES = sizes("ml1m", "ml20m", "ml25m")
SCORED_USERS = 10_000
LABELS = {"ml1m": "ML-1M", "ml20m": "ML-20M", "ml25m": "ML-25M"}


def ndcg(model: Recommender, train: Interactions, test: Interactions) -> float:
    return float(Evaluator(train, test, k=10, metrics=["ndcg"]).evaluate(model).summary["ndcg@10"])


def quality(name: str, data: Interactions) -> list[str]:
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    fit, valid = train_validation_split(train)
    t0 = time.perf_counter()
    ease = EASE().fit(train)
    ease_s = time.perf_counter() - t0
    ease_test = ndcg(ease, train, test)
    ease_reg = ease.reg_
    ease_valid = ndcg(EASE().fit(fit), fit, valid)
    del ease
    rows = grid_scores(SparseEASE, GRID, fit, valid)
    best, best_valid = max(rows, key=lambda r: r[1])
    t0 = time.perf_counter()
    chosen = SparseEASE(**best).fit(train)
    chosen_s = time.perf_counter() - t0
    chosen_test = ndcg(chosen, train, test)
    default = SparseEASE().fit(train)
    default_test = ndcg(default, train, test)
    lines = [
        f"### {name}: {data.n_users:,} users x {data.n_items:,} items, {data.nnz:,} interactions",
        "",
        "| model | validation NDCG@10 | test NDCG@10 | vs exact EASE | fit s (train) | fit / EASE's |",
        "|---|---|---|---|---|---|",
        f"| EASE() (reg=\"auto\": {ease_reg:.0f} on train) | {ease_valid:.4f} | {ease_test:.4f} | | {ease_s:.1f} | 1.00 |",
        f"| SparseEASE({_args(best)}), chosen on validation | {best_valid:.4f} | {chosen_test:.4f} | "
        f"{(chosen_test / ease_test - 1) * 100:+.2f}% | {chosen_s:.1f} | {chosen_s / ease_s:.2f} |",
        f"| SparseEASE() (defaults) | {_valid_of(rows, SparseEASE().get_params()):.4f} | {default_test:.4f} | "
        f"{(default_test / ease_test - 1) * 100:+.2f}% | | |",
        "",
        "The grid (validation NDCG@10; exact EASE on the same split: " f"{ease_valid:.4f}):",
        "",
        "| selection | n_neighbours | reg | validation NDCG@10 | vs exact EASE |",
        "|---|---|---|---|---|",
    ]
    for params, score in rows:
        lines.append(
            f"| {params['selection']} | {params['n_neighbours']} | {params['reg']} | {score:.4f} | "
            f"{(score / ease_valid - 1) * 100:+.2f}% |"
        )
    print("\n".join(lines), flush=True)
    return lines + [""]


def _args(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _valid_of(rows: list[tuple[dict[str, Any], float]], params: dict[str, Any]) -> float:
    for p, s in rows:
        if all(params[k] == v for k, v in p.items()):
            return s
    return float("nan")


def timed(what: str, fn: Any) -> tuple[float, PeakMemory, Any]:
    gc.collect()
    with PeakMemory() as pm:
        t0 = time.perf_counter()
        out = fn()
        secs = time.perf_counter() - t0
    print(f"  {what}: {secs:.1f} s, peak RSS {pm.peak / 2**30:.2f} GiB ({pm.above_start / 2**30:.2f} GiB above start)", flush=True)
    return secs, pm, out


def scale(size: str) -> list[str]:
    n_users, n_items, nnz = SIZES[size]
    print(f"generating synthetic({n_users:,}, {n_items:,}, {nnz:,}, seed=1)", flush=True)
    data = synthetic(n_users, n_items, nnz, seed=1)
    data = Interactions.from_arrays(data.user_index, data.item_index)  # weights only: drop the features
    data.matrix("csr", "weight")  # the cached matrix is built outside the measurements
    gc.collect()
    start_rss = rss_bytes()
    n_scored = min(SCORED_USERS, data.n_users)
    users = data.users.ids[np.random.default_rng(0).choice(data.n_users, n_scored, replace=False)]
    ease_row = "| EASE() fit | refused | - | - | - |"
    try:
        ease_s, ease_pm, _ = timed("EASE() fit", lambda: EASE().fit(data))
        refusal = "fitted (no refusal)"
        ease_row = f"| EASE() fit | {ease_s:.1f} | | {ease_pm.peak / 2**30:.2f} | {ease_pm.above_start / 2**30:.2f} |"
    except ParameterError as e:
        refusal = f'refused at once: "{e}"'
    print(f"  EASE(): {refusal}", flush=True)
    fit_s, fit_pm, model = timed("SparseEASE() fit", lambda: SparseEASE().fit(data))
    union = int(np.count_nonzero(np.diff(model.weights_.indptr)))  # items with a weight: every neighbourhood's union
    rec_s, rec_pm, _ = timed(f"SparseEASE top-10 for {n_scored:,} users", lambda: model.recommend(users, k=10))
    weights_mib = sum(a.nbytes for a in (model.weights_.data, model.weights_.indices, model.weights_.indptr)) / 2**20
    model = None  # freed before the next fit
    knn_s, knn_pm, knn = timed("ItemKNN() fit", lambda: ItemKNN().fit(data))
    knn_rec_s, _, _ = timed(f"ItemKNN top-10 for {n_scored:,} users", lambda: knn.recommend(users, k=10))
    knn = None
    lines = [
        f"### {LABELS[size]} size: synthetic({n_users:,}, {n_items:,}, {nnz:,}, seed=1)",
        "",
        f"RSS with the data loaded (before any fit): {start_rss / 2**30:.2f} GiB.",
        "",
        "| step | s | vs ItemKNN() same run | peak RSS GiB (process) | above start GiB |",
        "|---|---|---|---|---|",
        ease_row,
        f"| SparseEASE() fit | {fit_s:.1f} | {fit_s / knn_s:.2f}x | {fit_pm.peak / 2**30:.2f} | {fit_pm.above_start / 2**30:.2f} |",
        f"| SparseEASE() top-10, {n_scored:,} users | {rec_s:.1f} | {rec_s / knn_rec_s:.2f}x | {rec_pm.peak / 2**30:.2f} | {rec_pm.above_start / 2**30:.2f} |",
        f"| ItemKNN() fit | {knn_s:.1f} | 1.00x | {knn_pm.peak / 2**30:.2f} | {knn_pm.above_start / 2**30:.2f} |",
        "",
        f"EASE(): {refusal}",
        "",
        f"SparseEASE's weights: {weights_mib:.0f} MiB; the union of the neighbourhoods (the dense G[U, U]) held {union:,} items (cold items and zero weights aside).",
        "",
    ]
    return lines


def replace_section(text: str, part: str, lines: list[str]) -> str:
    """``text`` with the section between ``<!-- part -->`` markers replaced (appended when absent)."""
    begin, end = f"<!-- {part}: begin -->", f"<!-- {part}: end -->"
    body = "\n".join([begin, *lines, end])
    if begin in text:
        return re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: body, text, flags=re.S)
    return text.rstrip("\n") + "\n\n" + body + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["quality", "scale"], required=True)
    parser.add_argument("--size", choices=sorted(SIZES), default="ml20m", help="the synthetic size of --part scale")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file (its other sections are kept)")
    args = parser.parse_args()
    print(f"Machine: {machine()}", flush=True)
    if args.part == "quality":
        lines = [
            "## Accuracy against exact EASE",
            "",
            "Command: `RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.ease_scale --part quality`",
            f"Machine: {machine()} (shared with other jobs: times are indicative, ratios are within this run).",
            "",
            *quality("ML-100K", ml100k()),
            *quality("ml-latest-small size, synthetic(610, 9_742, 100_836, seed=1)", synthetic(610, 9_742, 100_836, seed=1)),
        ]
        part = "quality"
    else:
        lines = [
            f"## Scale: {LABELS[args.size]} size",
            "",
            f"Command: `nice -n 5 python -m benchmarks.ease_scale --part scale --size {args.size}`",
            f"Machine: {machine()}, shared with other jobs (load above the 2 cores during the run): the seconds are "
            "indicative, the ratios compare steps timed in the same process.",
            "",
            *scale(args.size),
        ]
        part = f"scale-{args.size}"
    out: Path = args.out
    text = out.read_text() if out.exists() else "# SparseEASE: exact EASE's accuracy beyond its size limit\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(replace_section(text, part, lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
