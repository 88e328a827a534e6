"""Headline search on ML-100K: SessionEASE vs EASE, chosen on validation only, test once.

Protocol (Microsoft Recommenders' MovieLens benchmark, as in benchmarks/ml-100k.toml):
ML-100K, every rating an interaction of weight 1 (the timestamps are kept as side information), ``stratified_split(ratio=0.75,
by="user", seed=42)``, k=10, seen items excluded, every test interaction
relevant, metrics from ``Evaluator``. Both grids are scored by NDCG@10 on two
validation splits carved out of train (``train_validation_split``, seeds 1234
and 7) and the winner is the best mean of the two; test is not looked at while
choosing. The two winners are then refit on all of train and evaluated on test
once: NDCG@10 / P@10 / R@10 / F1@10 with bootstrap 95% CIs (users resampled) and the
paired comparison ``recsys.evaluation.compare`` (SessionEASE - EASE).

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.headline``
(writes ``benchmarks/results/headline.md``; about two minutes on 2 cores).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from benchmarks._common import machine, ml100k
from recsys import Interactions
from recsys._utils.progress import progress
from recsys.datasets.synthetic import synthetic
from recsys.evaluation import Evaluator, compare
from recsys.models import EASE, SessionEASE
from recsys.models.base import Recommender
from recsys.split import stratified_split, train_validation_split

RESULTS = Path(__file__).parent / "results" / "headline.md"
VALIDATION_SEEDS = (1234, 7)
GRIDS: dict[str, tuple[type[Recommender], dict[str, list[Any]]]] = {
    "EASE": (EASE, {"reg": [100.0, 200.0, 300.0, 400.0, 500.0, 750.0]}),
    "SessionEASE": (
        SessionEASE,
        {
            "session_gap": [0.0, 10.0, 30.0, 60.0, 300.0],
            "session_weight": [1.0, 2.0, 4.0],
            "reg": [300.0, 500.0, 800.0],
        },
    ),
}
TARGET = 0.50


def ndcg(model: Recommender, fit: Interactions, valid: Interactions) -> float:
    model.fit(fit)
    return float(Evaluator(fit, valid, k=10, metrics=["ndcg"]).evaluate(model).summary["ndcg@10"])


def search(name: str, folds: list[tuple[Interactions, Interactions]]) -> list[tuple[dict[str, Any], list[float]]]:
    cls, grid = GRIDS[name]
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    return [(p, [ndcg(cls(**p), f, v) for f, v in folds]) for p in progress(combos, desc=f"{name} grid", total=len(combos))]


def main() -> None:
    lines = [
        "# Headline search on ML-100K: SessionEASE vs EASE",
        "",
        f"Machine: {machine()}",
        "",
        "ML-100K, every rating an interaction of weight 1 (timestamps kept as side information);"
        " stratified_split(0.75, by=user, seed=42); k=10, seen items excluded, every test interaction relevant."
        f" Grids scored by NDCG@10 on train_validation_split(train, 0.75) with seeds {VALIDATION_SEEDS};"
        " winner = best mean; refit on all of train; test evaluated once per model."
        " Fit seconds are from a 2-core machine shared with other jobs (indicative only).",
        "",
    ]
    print(lines[2], flush=True)
    data = ml100k(timestamps=True)  # the timestamp rides along for the sessions
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    folds = [train_validation_split(train, ratio=0.75, seed=s) for s in VALIDATION_SEEDS]
    t0 = time.perf_counter()
    best: dict[str, tuple[dict[str, Any], float]] = {}
    tables: list[str] = []
    for name in GRIDS:
        rows = sorted(search(name, folds), key=lambda r: -sum(r[1]))
        best[name] = (rows[0][0], sum(rows[0][1]) / len(folds))
        keys = list(rows[0][0])
        tables += [
            f"### {name} grid (validation NDCG@10, best first)",
            "",
            "| " + " | ".join(keys) + " | " + " | ".join(f"val seed {s}" for s in VALIDATION_SEEDS) + " | mean |",
            "|" + "---|" * (len(keys) + len(folds) + 1),
        ]
        for params, scores in rows:
            tables.append(
                "| " + " | ".join(str(params[k]) for k in keys) + " | "
                + " | ".join(f"{s:.4f}" for s in scores) + f" | {sum(scores) / len(scores):.4f} |"
            )
        tables.append("")
        print(f"{name}: best {rows[0][0]} validation {rows[0][1]}", flush=True)
    search_s = time.perf_counter() - t0

    ev = Evaluator(train, test, k=10, metrics=["ndcg", "precision", "recall", "f1"])
    results = {}
    fit_s = {}
    for name, (params, _) in best.items():
        model = GRIDS[name][0](**params)
        t = time.perf_counter()
        model.fit(train)
        fit_s[name] = time.perf_counter() - t
        results[name] = ev.evaluate(model)
    cmp = compare(results["SessionEASE"], results["EASE"], n_boot=1000, seed=0)
    lines += [
        "## Test (evaluated once, after selection)",
        "",
        "| model | chosen on validation | val NDCG@10 (mean) | NDCG@10 [95% CI] | P@10 | R@10 | F1@10 | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        ci = res.ci
        cells = []
        for m in ("ndcg@10", "precision@10", "recall@10", "f1@10"):
            lo, hi = ci[m] or (float("nan"), float("nan"))
            cells.append(f"{res.summary[m]:.4f} [{lo:.4f}, {hi:.4f}]")
        lines.append(
            f"| {name} | {best[name][0]} | {best[name][1]:.4f} | " + " | ".join(cells) + f" | {fit_s[name]:.2f} |"
        )
    lines += [
        "| RecTools EASE (published, same protocol) | lambda 500 | | 0.480 | 0.421 | 0.222 | | 0.30 |",
        "",
        "Paired comparison, SessionEASE - EASE (recsys.evaluation.compare, users resampled jointly):",
        "",
        "| metric | SessionEASE | EASE | diff [95% CI] | p (paired t) | p (Wilcoxon) | users |",
        "|---|---|---|---|---|---|---|",
    ]
    for metric, r in cmp.iterrows():
        lines.append(
            f"| {metric} | {r['a']:.4f} | {r['b']:.4f} | {r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] "
            f"| {r['p_ttest']:.4f} | {r['p_wilcoxon']:.4f} | {int(r['n_users'])} |"
        )
    # The defaults must not hurt where there is no session structure: synthetic data (one interaction
    # per sitting, so every session is a single item) as in benchmarks/tune_neighbourhood.py.
    syn = synthetic(n_users=3000, n_items=1500, n_interactions=120_000, seed=7)
    syn_fit, syn_valid = train_validation_split(stratified_split(syn, ratio=0.75, by="user", seed=42)[0])
    syn_scores = {str(m): ndcg(m, syn_fit, syn_valid) for m in (EASE(), EASE(**best["EASE"][0]), SessionEASE())}
    lines += [
        "",
        "Defaults on synthetic data (3000 users x 1500 items, 120k interactions, no session structure), validation NDCG@10: "
        + ", ".join(f"{k} {v:.4f}" for k, v in syn_scores.items())
        + ".",
    ]
    winner = results["SessionEASE"].summary["ndcg@10"]
    lines += [
        "",
        f"Headline target NDCG@10 >= {TARGET:.2f}: {'reached' if winner >= TARGET else 'NOT reached'}"
        f" (best {winner:.4f}, gap {TARGET - winner:+.4f}).",
        "",
        f"Search {search_s:.0f} s for {sum(len(list(itertools.product(*g.values()))) for _, g in GRIDS.values())}"
        f" settings x {len(folds)} validation splits.",
        "",
        "## Searches",
        "",
        *tables,
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if RESULTS.exists():  # keep the hand-written "what else was tried" section below the generated part
        old = RESULTS.read_text()
        marker = "\n## What else was tried"
        if marker in old:
            text += old[old.index(marker) :]
    RESULTS.write_text(text)
    print("\n".join(lines[: lines.index("## Searches")]))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
