"""SVDpp against Surprise's SVDpp: RMSE, fit time, scaling and top-N, side by side in one run.

1. ML-100K ratings, ``stratified_split(ratio=0.75, by="user", seed=42)``: RMSE
   on every test rating (each library predicts its own way for items absent
   from train), fit time of ``SVDpp()`` (defaults, chosen by
   ``benchmarks/tune_svdpp.py`` on a validation split of train) against
   Surprise's ``SVDpp(cache_ratings=True)`` (its defaults otherwise) on the
   same training ratings. Ours is timed ``--runs`` times after a warm-up,
   Surprise once (it is slow, and the cores are shared); the ratio is
   Surprise's time over our mean. Wall and CPU seconds are both printed: CPU
   time is less sensitive to other jobs on the machine.
2. Surprise's own protocol: 5-fold CV over all ML-100K ratings
   (``recsys.split.k_fold``, seed 42), RMSE per fold. Surprise runs on the
   first ``--surprise-folds`` folds only (default 2, to spare the shared
   cores); its published 5-fold figure is 0.919.
3. Scaling on ``recsys.datasets.synthetic`` ratings: fit time at n ratings and
   at 2n (same users and items, twice the ratings per user: the case where a
   per-rating implicit sum, as Surprise's, costs 4x).
4. Top-N on the ML-100K split of (1) with ``Evaluator`` (every test
   interaction relevant, k=10, train items excluded) beside Popular and
   ItemKNN (fit on the same split, every rating an interaction of weight 1,
   as ``benchmarks/neighbourhood.py``) and Surprise's SVD++ (its learned
   parameters scored for every unseen item, unclipped).

Fits run on one thread (numpy; Surprise is single-threaded Cython); BLAS and
OpenMP are limited to 2 threads.

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.svdpp``
(``pip install scikit-surprise`` for the peer; without it only our side runs).
Writes ``benchmarks/results/svdpp.md``.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks._common import machine, movielens  # noqa: E402
from recsys import Interactions  # noqa: E402
from recsys._peers.surprise import SurpriseSVDpp  # noqa: E402
from recsys.datasets.synthetic import synthetic  # noqa: E402
from recsys.evaluation import Evaluator  # noqa: E402
from recsys.models import ItemKNN, Popular, SVDpp  # noqa: E402
from recsys.split import k_fold, stratified_split  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "svdpp.md"
METRICS = ["ndcg", "precision", "recall", "map"]


@dataclass
class Times:
    """Wall and CPU seconds of repeated calls."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, fn: Callable[[], Any]) -> Any:
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        self.wall.append(time.perf_counter() - w0)
        self.cpu.append(time.process_time() - c0)
        return out

    @property
    def mean(self) -> float:
        return statistics.fmean(self.wall)

    @property
    def cpu_mean(self) -> float:
        return statistics.fmean(self.cpu)

    def __str__(self) -> str:
        spread = f" ±{statistics.pstdev(self.wall):.3f}" if len(self.wall) > 1 else ""
        return f"{self.mean:.3f}{spread} (cpu {self.cpu_mean:.3f})"


def ml100k_frame() -> pd.DataFrame:
    return movielens("ml-100k").ratings[["user", "item", "rating"]]


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - truth) ** 2)))


def surprise_module() -> Any:
    try:
        import surprise
    except ImportError:
        print("scikit-surprise is not installed (pip install scikit-surprise): Surprise columns are skipped")
        return None
    return surprise


def split_section(surprise: Any, runs: int) -> tuple[list[str], dict[str, Any]]:
    frame = ml100k_frame()
    data = Interactions.from_frame(frame, rating_col="rating")
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    truth = test.ratings.astype(np.float64)
    tf = test.to_frame()
    cold_items = int((train.item_counts[test.item_index] == 0).sum())
    ours = Times()
    model = SVDpp(show_progress=False)
    model.fit(train)  # warm-up
    for _ in range(runs):
        ours.add(lambda: model.fit(train))
    ours_rmse = rmse(model.predict(tf["user"], tf["item"]), truth)
    print(f"SVDpp() fit {ours} s, test RMSE {ours_rmse:.4f}")
    out: dict[str, Any] = {"train": train, "test": test, "model": model}
    lines = [
        "## 1. ML-100K, stratified 75/25 by user (seed 42)",
        "",
        f"{train.nnz:,} train / {test.nnz:,} test ratings ({cold_items} test ratings of items absent from train). "
        f"RMSE over every test rating. Ours: mean of {runs} fits after a warm-up; Surprise: one fit.",
        "",
        "| model | test RMSE | fit s (wall) | fit s (CPU) | Surprise / ours (wall) | (CPU) |",
        "|---|---|---|---|---|---|",
        f"| recsys `SVDpp()` | {ours_rmse:.4f} | {ours.mean:.3f} ±{statistics.pstdev(ours.wall):.3f} | {ours.cpu_mean:.3f} | | |",
    ]
    if surprise is not None:
        peer = SurpriseSVDpp(surprise, train)
        theirs = Times()
        theirs.add(peer.fit)
        peer_rmse = peer.rmse(test)
        ratio, cpu_ratio = theirs.mean / ours.mean, theirs.cpu_mean / ours.cpu_mean
        print(f"Surprise SVDpp(cache_ratings=True) fit {theirs} s, test RMSE {peer_rmse:.4f}")
        print(f"fit speed-up: {ratio:.1f}x wall, {cpu_ratio:.1f}x CPU; RMSE ours - Surprise {ours_rmse - peer_rmse:+.4f}")
        lines.append(
            f"| Surprise `SVDpp(cache_ratings=True)` | {peer_rmse:.4f} | {theirs.mean:.3f} | {theirs.cpu_mean:.3f} |"
            f" **{ratio:.1f}x** | {cpu_ratio:.1f}x |"
        )
        out["peer"] = peer
        out["peer_rmse"] = peer_rmse
        out["ratio"] = ratio
    out["rmse"] = ours_rmse
    lines += ["", "Targets: RMSE <= 0.915 (Surprise 0.923 on this split), fit >= 20x faster at equal or better RMSE.", ""]
    return lines, out


def cv_section(surprise: Any, surprise_folds: int, summary: dict[str, Any]) -> list[str]:
    data = Interactions.from_frame(ml100k_frame(), rating_col="rating")
    lines = [
        "## 2. Surprise's protocol: 5-fold CV on all of ML-100K (k_fold, seed 42)",
        "",
        f"Surprise runs on the first {surprise_folds} of the 5 folds only (its fit is slow and the cores are shared).",
        "",
        "| fold | recsys RMSE | recsys fit s | Surprise RMSE | Surprise fit s |",
        "|---|---|---|---|---|",
    ]
    ours_all, theirs_all, ours_same = [], [], []
    for n, (train, test) in enumerate(k_fold(data, n_folds=5, seed=42)):
        tf = test.to_frame()
        t = Times()
        model = t.add(lambda: SVDpp(show_progress=False).fit(train))
        r = rmse(model.predict(tf["user"], tf["item"]), test.ratings.astype(np.float64))
        ours_all.append(r)
        peer_cells = "| | |"
        if surprise is not None and n < surprise_folds:
            peer = SurpriseSVDpp(surprise, train)
            pt = Times()
            pt.add(peer.fit)
            pr = peer.rmse(test)
            theirs_all.append(pr)
            ours_same.append(r)
            peer_cells = f"| {pr:.4f} | {pt.mean:.2f} |"
        print(f"fold {n}: recsys {r:.4f} ({t.mean:.2f} s) {peer_cells}")
        lines.append(f"| {n} | {r:.4f} | {t.mean:.2f} {peer_cells}")
    mean = statistics.fmean(ours_all)
    lines += ["", f"- recsys `SVDpp()`: mean RMSE over 5 folds **{mean:.4f}** (std {statistics.pstdev(ours_all):.4f}); target <= 0.915, Surprise publishes 0.919."]
    print(f"5-fold mean RMSE {mean:.4f}")
    summary["cv"] = mean
    summary["cv_peer"] = (statistics.fmean(ours_same), statistics.fmean(theirs_all)) if theirs_all else None
    if theirs_all:
        lines.append(
            f"- On the {len(theirs_all)} folds both ran: recsys {statistics.fmean(ours_same):.4f}, Surprise {statistics.fmean(theirs_all):.4f}."
        )
    return lines + [""]


def scaling_section(n_users: int, n_items: int, n: int, runs: int, summary: dict[str, Any]) -> list[str]:
    lines = [
        "## 3. Fit time at 2x the ratings (synthetic ratings, same users and items)",
        "",
        "| ratings | ratings / user | fit s (wall) | fit s (CPU) | vs n |",
        "|---|---|---|---|---|",
    ]
    base: Times | None = None
    for nnz in (n, 2 * n):
        data = synthetic(n_users=n_users, n_items=n_items, n_interactions=nnz, seed=42)
        data = Interactions.from_arrays(data.user_index, data.item_index, ratings=data.ratings)
        t = Times()
        SVDpp(n_epochs=1, show_progress=False).fit(data)  # warm-up
        for _ in range(runs):
            t.add(lambda: SVDpp(show_progress=False).fit(data))
        ratio = "" if base is None else f"**{t.mean / base.mean:.2f}x** (CPU {t.cpu_mean / base.cpu_mean:.2f}x)"
        if base is not None:
            summary["scaling"] = (t.mean / base.mean, t.cpu_mean / base.cpu_mean)
        base = base or t
        print(f"synthetic {nnz:,} ratings: fit {t} s {ratio}")
        lines.append(f"| {nnz:,} | {nnz / n_users:.0f} | {t.mean:.2f} ±{statistics.pstdev(t.wall):.2f} | {t.cpu_mean:.2f} | {ratio} |")
    return lines + ["", f"{n_users:,} users x {n_items:,} items, seed 42, mean of {runs} fits each. Target: at most 2.5x.", ""]


def topn_section(split: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    train, test = split["train"], split["test"]
    implicit = Interactions.from_frame(train.to_frame()[["user", "item"]])  # every rating an interaction of weight 1
    evaluator = Evaluator(train, test, k=10, metrics=METRICS)
    rows: list[tuple[str, dict[str, float]]] = []
    for name, model in (("Popular()", Popular()), ("ItemKNN()", ItemKNN())):
        rows.append((name, evaluator.evaluate(model.fit(implicit)).summary))
    rows.append(("recsys SVDpp()", evaluator.evaluate(split["model"]).summary))
    if "peer" in split:
        users = np.unique(test.to_frame()["user"].to_numpy())
        rows.append(("Surprise SVDpp (cache_ratings=True)", evaluator.evaluate(split["peer"].recommendations(users, 10)).summary))
    lines = [
        "## 4. Top-N on the split of (1): every test rating relevant, k=10, train items excluded",
        "",
        "| model | NDCG@10 | Precision@10 | Recall@10 | MAP@10 |",
        "|---|---|---|---|---|",
    ]
    for name, s in rows:
        print(f"{name}: ndcg@10 {s['ndcg@10']:.4f} precision@10 {s['precision@10']:.4f} recall@10 {s['recall@10']:.4f}")
        lines.append(f"| {name} | {s['ndcg@10']:.4f} | {s['precision@10']:.4f} | {s['recall@10']:.4f} | {s['map@10']:.4f} |")
        summary[f"ndcg {name}"] = s["ndcg@10"]
    lines += [
        "",
        "Rating predictors rank poorly for top-N (the issue quotes NDCG@10 0.112 for Surprise's SVD++ on this"
        " protocol): a model of how much a user likes an item, trained only on the items they chose to rate, says"
        " little about which unseen items they will rate, and ranking by predicted rating favours rarely rated,"
        " highly rated items. Both SVD++ implementations land at about a quarter of ItemKNN's NDCG@10 and under"
        " Popular. For top-N, use an implicit model (ItemKNN, EASE, ALS).",
        "",
    ]
    return lines


def summary_lines(split: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """The issue's targets against this run's figures."""
    out = ["## Summary (targets of the issue)", "", "| target | this run | met |", "|---|---|---|"]

    def row(target: str, figure: str, ok: bool | None) -> None:
        out.append(f"| {target} | {figure} | {'-' if ok is None else ('yes' if ok else '**no**')} |")

    peer = split.get("peer_rmse")
    row("ML-100K split: RMSE <= 0.915", f"{split['rmse']:.4f}" + (f" (Surprise {peer:.4f})" if peer else ""), split["rmse"] <= 0.915)
    if "ratio" in split:
        row(
            "fit >= 20x faster than Surprise at equal or better RMSE",
            f"{split['ratio']:.1f}x, RMSE {split['rmse'] - peer:+.4f} vs Surprise",
            split["ratio"] >= 20 and split["rmse"] <= peer,
        )
    if "cv" in summary:
        cv_peer = summary["cv_peer"]
        extra = f" (on the folds Surprise ran: ours {cv_peer[0]:.4f}, Surprise {cv_peer[1]:.4f})" if cv_peer else ""
        row("5-fold CV: RMSE <= 0.915 (Surprise publishes 0.919)", f"{summary['cv']:.4f}{extra}", summary["cv"] <= 0.915)
    if "scaling" in summary:
        wall, cpu = summary["scaling"]
        row("fit at 2x the ratings <= 2.5x", f"{wall:.2f}x wall, {cpu:.2f}x CPU", wall <= 2.5)
    ours = summary.get("ndcg recsys SVDpp()")
    if ours is not None:
        theirs = summary.get("ndcg Surprise SVDpp (cache_ratings=True)")
        row(
            "top-N reported beside implicit models",
            f"NDCG@10 {ours:.4f} (Surprise {theirs:.4f}; ItemKNN {summary['ndcg ItemKNN()']:.4f})" if theirs else f"NDCG@10 {ours:.4f}",
            None,
        )
    return out + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed fits of ours per measurement")
    parser.add_argument("--surprise-folds", type=int, default=2, help="CV folds Surprise runs on (of 5)")
    parser.add_argument("--scale", type=int, default=250_000, help="ratings at 1x of the scaling runs")
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    surprise = surprise_module()
    header = [
        "# SVD++: recsys SVDpp vs Surprise SVDpp",
        "",
        f"Machine: {machine()}; BLAS/OpenMP limited to 2 threads, every fit runs on one.",
        "",
        "Run: `RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.svdpp`"
        + (f" (Surprise {surprise.__version__})" if surprise is not None else " (Surprise not installed)")
        + ". Defaults chosen on a validation split of train: `benchmarks/results/svdpp_tuning.md`.",
        "",
        f"recsys `SVDpp()` defaults: `{SVDpp().get_params()}`",
        "",
    ]
    print(header[2])
    summary: dict[str, Any] = {}
    lines, split = split_section(surprise, args.runs)
    body = lines
    if not args.skip_cv:
        body += cv_section(surprise, args.surprise_folds, summary)
    if not args.skip_scaling:
        body += scaling_section(5_000, 2_000, args.scale, max(2, args.runs // 2), summary)
    body += topn_section(split, summary)
    header += summary_lines(split, summary) + body + [
        "## Notes",
        "",
        "- Our fit time is the whole `fit()` (id maps, training, retrieval index). It trains on one thread"
        " (numpy mini-batches of whole users: each user's implicit sum once per epoch, so cost is linear in the"
        " ratings; Surprise recomputes it for every rating, a cost that grows with the square of history lengths).",
        "- Wall seconds depend on other jobs on this shared machine; CPU seconds much less so. Both fits of a"
        " comparison ran in the same process, one after the other.",
        "- Surprise predicts the global mean for a test item absent from train; ours predicts mean + user bias.",
        "- Surprise's top-N list scores every unseen item with its learned parameters (checked against its"
        " `estimate`), unclipped, as ours; `predict` would clip at 5 and create ties.",
        "- The scaling runs time only ours: Surprise at 2x the ratings per user would take about 4x as long.",
        "",
    ]
    RESULTS.write_text("\n".join(header))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
