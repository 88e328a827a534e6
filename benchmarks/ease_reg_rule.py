"""Where EASE's and SparseEASE's ``reg="auto"`` comes from: ``reg = c * sqrt(trace(X^T X))`` swept over ``c``.

For each data set of ``benchmarks/defaults.py`` (the same split: fit on
``train_validation_split`` of ``stratified_split(0.75)``, score validation
NDCG@10), EASE and SparseEASE are fitted with ``reg = c * ||X||_F`` for each
``c`` of the sweep, and with the rule this replaced, ``2 * sqrt(users * mean
interactions per item)``. Each score is set against the best of the model's
grid in ``defaults.json`` (run ``benchmarks.defaults`` first); the table gives
every shortfall and, per ``c``, the worst over the sets.

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.ease_reg_rule [--sets ...] [--models ...]``
(writes ``benchmarks/results/ease_reg_rule.md``; scores are kept in ``ease_reg_rule.json`` and a rerun
only fits what is missing). SparseEASE at ML-20M size (``--sets ml20m --models SparseEASE``) takes about
two minutes per fit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine, write_results
from benchmarks.defaults import STORE as DEFAULTS_STORE
from benchmarks.defaults import split

RESULTS = Path(__file__).parent / "results" / "ease_reg_rule.md"
STORE = Path(__file__).parent / "results" / "ease_reg_rule.json"
CS = [1.5, 2.0, 2.5, 3.0, 4.0]
FORMER = "users"  # the former rule's key
SETS = "ml100k,ml1m,ml1m-sparse,small-wide,ml1m-dense,mid"


def regs(fit: Any) -> dict[str, float]:
    """The reg of every rule on a fit set: ``c`` of the sweep, and the former rule."""
    x = fit.matrix("csr", "weight")
    diag = np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel()
    users = int(np.count_nonzero(np.diff(x.indptr)))
    out = {f"{c:g}": c * float(np.sqrt(diag.sum())) for c in CS}
    out[FORMER] = 2.0 * float(np.sqrt(users * diag[diag > 0].mean()))
    return out


def main() -> None:
    import recsys.models as models
    from recsys.evaluation import Evaluator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=SETS)
    ap.add_argument("--models", default="EASE,SparseEASE")
    args = ap.parse_args()
    store: dict[str, Any] = json.loads(STORE.read_text()) if STORE.exists() else {}
    for set_name in args.sets.split(","):
        fit, valid = split(set_name)
        ev = Evaluator(fit, valid, k=10, metrics=["ndcg"])
        for name in args.models.split(","):
            for rule, reg in regs(fit).items():
                key = f"{set_name}/{name}/{rule}"
                if key not in store:
                    score = float(ev.evaluate(getattr(models, name)(reg=reg).fit(fit)).summary["ndcg@10"])
                    store[key] = {"reg": reg, "ndcg": score}
                    print(f"{key}: reg {reg:.0f}, validation NDCG@10 {score:.4f}", flush=True)
                    STORE.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
    render(store)


def render(store: dict[str, Any]) -> None:
    best = json.loads(DEFAULTS_STORE.read_text())
    rules = [f"{c:g}" for c in CS] + [FORMER]
    head = " | ".join(f"c={r}" if r != FORMER else "former rule" for r in rules)
    lines = [
        "# EASE's and SparseEASE's reg=\"auto\": reg = c * sqrt(trace(X^T X)) against each set's best",
        "",
        f"Machine: {machine()}",
        "",
        "Command: `RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.ease_reg_rule` (see the script's docstring).",
        "Each cell: the reg of the rule on the set's fit split and the shortfall of its validation NDCG@10 against",
        "the best of the model's grid in `defaults.md` (negative: above that best). The former rule is",
        "2 sqrt(users x mean interactions per item).",
        "",
        f"| model | set | best of grid | {head} |",
        "|---|---|---|" + "---|" * len(rules),
    ]
    worst: dict[tuple[str, str], float] = {}
    for key in sorted({k.rsplit("/", 1)[0] for k in store}, key=lambda k: (k.split("/")[1], k)):
        set_name, name = key.split("/")
        ref = best.get(f"{set_name}/{name}")
        if ref is None:
            continue
        cells = []
        for rule in rules:
            r = store.get(f"{key}/{rule}")
            if r is None:
                cells.append("-")
                continue
            short = 1 - r["ndcg"] / ref["best"]
            worst[(name, rule)] = max(worst.get((name, rule), -1.0), short)
            cells.append(f"{r['reg']:,.0f}: {short:.1%}")
        lines.append(f"| {name} | {set_name} | {ref['best']:.4f} ({ref['best_params']['reg']:g}) | " + " | ".join(cells) + " |")
    lines += ["", "Worst shortfall over the sets, per rule:", ""]
    for name in sorted({n for n, _ in worst}):
        parts = [f"{'c=' + r if r != FORMER else 'former rule'} {worst[(name, r)]:.1%}" for r in rules if (name, r) in worst]
        lines.append(f"- {name}: " + ", ".join(parts))
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
