"""Where ALS's ``reg="auto"`` comes from: the best ``reg`` of each data set against the confidences' top singular value.

For each data set of ``benchmarks/defaults.py`` (the same split: the search
fits on ``train_validation_split`` of ``stratified_split(0.75)`` and scores
validation NDCG@10), ALS with tfidf confidences is scored over a reg grid
(10 to 2,000) at 16 and 64 factors, and ``σ₁``, the largest singular value of
the confidence matrix the fit solves with, is computed
(:func:`recsys.models.als.top_singular_value`). For each factor count the
script then finds the fraction ``a`` for which ``reg = a σ₁`` has the smallest
worst shortfall over the sets (NDCG@10 interpolated on log reg between grid
points) and prints, per set, the shortfall of ``reg="auto"`` (``a = 0.1``).

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.als_reg_rule [--sets ...]``
(writes ``benchmarks/results/als_reg_rule.md``; scores are kept in
``als_reg_rule.json`` and a rerun only fits what is missing).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import grid_scores, machine, write_results
from benchmarks.defaults import split

RESULTS = Path(__file__).parent / "results" / "als_reg_rule.md"
STORE = Path(__file__).parent / "results" / "als_reg_rule.json"
REGS = [10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0]
FACTORS = [16, 64]
DEFAULT_SETS = "ml100k,small-wide,ml1m-sparse,ml1m,ml1m-dense,mid,ml10m"


def _score_at(grid: dict[str, float], factors: int, reg: float) -> float:
    """Validation NDCG@10 at ``reg``, interpolated on log reg between the grid's points."""
    regs = np.array(REGS)
    scores = np.array([grid[f"{factors}/{r:g}"] for r in REGS])
    return float(np.interp(np.log(reg), np.log(regs), scores))


def _shortfalls(store: dict[str, Any], factors: int, fraction: float) -> dict[str, float]:
    out = {}
    for name, rec in store.items():
        best = max(rec["grid"][f"{factors}/{r:g}"] for r in REGS)
        out[name] = 1.0 - _score_at(rec["grid"], factors, fraction * rec["sigma"]) / best
    return out


def main() -> None:
    from recsys.models import ALS
    from recsys.models.als import AUTO_REG_FRACTION

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=DEFAULT_SETS)
    args = ap.parse_args()
    store: dict[str, Any] = json.loads(STORE.read_text()) if STORE.exists() else {}
    for name in args.sets.split(","):
        fit, valid = split(name)
        # reg="auto" is AUTO_REG_FRACTION * sigma_1 of the confidences every setting solves with
        sigma = ALS(show_progress=False).fit(fit).reg_ / AUTO_REG_FRACTION
        rec = store.setdefault(name, {"grid": {}})
        rec.update(sigma=sigma, users=fit.n_users, items=fit.n_items, interactions=fit.nnz)
        missing = [(f, r) for f in FACTORS for r in REGS if f"{f}/{r:g}" not in rec["grid"]]
        for f, r in missing:
            [(_, score)] = grid_scores(ALS(show_progress=False), {"n_factors": [f], "reg": [r]}, fit, valid)
            rec["grid"][f"{f}/{r:g}"] = score
        print(f"{name}: sigma_1 {sigma:.0f}, " + ", ".join(f"{k} {v:.4f}" for k, v in rec["grid"].items()), flush=True)
        STORE.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
    render(store, AUTO_REG_FRACTION)


def render(store: dict[str, Any], auto: float) -> None:
    lines = [
        "# ALS's reg=\"auto\": the best reg of each data set against the confidences' top singular value",
        "",
        f"Machine: {machine()}",
        "",
        "Command: `RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.als_reg_rule` (data sets and split of",
        "`benchmarks/defaults.py`; ALS defaults otherwise: tfidf, alpha 1, 15 iterations). Validation NDCG@10.",
        "",
        "| set | users x items, interactions (fit) | σ₁ | factors | best reg | best NDCG@10 | reg=\"auto\" | its NDCG@10 (interpolated) | shortfall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rec in store.items():
        for f in FACTORS:
            scores = {r: rec["grid"][f"{f}/{r:g}"] for r in REGS}
            best_reg = max(scores, key=lambda r: scores[r])
            reg = auto * rec["sigma"]
            at = _score_at(rec["grid"], f, reg)
            lines.append(
                f"| {name} | {rec['users']:,} x {rec['items']:,}, {rec['interactions']:,} | {rec['sigma']:.0f} | {f} | {best_reg:g} | "
                f"{scores[best_reg]:.4f} | {reg:.0f} | {at:.4f} | {1 - at / scores[best_reg]:.1%} |"
            )
    lines += ["", "The fraction with the smallest worst shortfall over these sets, per factor count:", ""]
    for f in FACTORS:
        fractions = np.exp(np.linspace(np.log(0.02), np.log(0.5), 400))
        worst = [max(_shortfalls(store, f, a).values()) for a in fractions]
        i = int(np.argmin(worst))
        at_auto = max(_shortfalls(store, f, auto).values())
        lines.append(f"- {f} factors: a = {fractions[i]:.3f} (worst shortfall {worst[i]:.1%}); a = {auto:g}, the rule: worst {at_auto:.1%}")
    lines += [
        "",
        "On every set NDCG@10 over reg rises to a plateau around a tenth of σ₁, then falls steeply once reg passes",
        "about a fifth to a third of σ₁ (directions whose singular value is below reg are switched off; at reg >= σ₁",
        "every factor is zero). With 64 factors the sparse sets want a larger fraction and ML-100K a smaller one,",
        "hence the factor count of the default stays 16 (defaults.md). At ML-20M size, not in this fit, σ₁ is 3,022:",
        "the rule gives reg 302, the best of defaults.md's grid there being 300.",
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
