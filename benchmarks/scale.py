"""Every model from ML-1M to ML-25M size: fit time, top-10-for-all-users time, peak RSS, growth, peers alongside.

Data: ``recsys.datasets.synthetic`` at the sizes of MovieLens 1M, 10M, 20M and
25M (users, items and interactions as in the real releases; seed 1). The data
of a size is generated once in the parent process; each model then runs in a
forked child, so its peak RSS is its own (data included: the child inherits
the data's pages) and a model that runs out of time is killed without
disturbing the others. In the child:

* ``fit`` on all interactions, timed, with the process's peak RSS (the kernel's high-water mark);
* ``recommend`` of the top-10 for every user (train items excluded), timed.

Rows:

* every registry model (``recsys.models._registry``) with the library's
  defaults, by its registry name;
* pairs "same settings" against a peer in the same run (the two sides alternate,
  ``--repeats`` times each; each side's fit and top-10 show their fastest run): ALS (64 factors, 15
  iterations) and BPR (64 factors; per epoch) against implicit, ItemKNN with
  bm25 / cosine weighting and ``k=100`` against implicit's BM25 / cosine
  item-item models, in the default ``neighbours_of="candidate"`` mode and (``-history`` rows) in
  implicit's own scoring rule, ``neighbours_of="history"``.

A model gets ``--budget`` minutes (default 30) for fit and top-10 together;
past it the row says so. A model that refuses the data (EASE above its
``max_items``) shows its message. The growth exponent between two sizes is
``log(t2 / t1) / log(n2 / n1)`` with ``n`` the interactions (1: linear).

Results are kept per (size, row) in ``benchmarks/results/scale.json`` so the
table can be built over several runs (a later run of a row replaces it); the
markdown ``benchmarks/results/scale.md`` is rendered from that file, with the
date and machine line of each run. The machine was shared with other jobs
while some runs ran: compare a model with its peer only inside one size's
run (they ran minutes apart in the same parent).

Run::

    python -m benchmarks.scale --sizes ml1m,ml10m --models all
    python -m benchmarks.scale --sizes ml20m --models popular,itemknn,pair-als
    python -m benchmarks.scale --render        # rewrite scale.md from scale.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing as mp
import os
import time
import traceback
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from benchmarks._common import PeakMemory, machine, sizes, write_results
from recsys._utils.progress import progress

RESULTS_JSON = Path(__file__).parent / "results" / "scale.json"
RESULTS_MD = Path(__file__).parent / "results" / "scale.md"

SIZES = sizes()

# (row name, what it is, how to build it) for the peer pairs; "ours"/"peer" rows are timed one after the other
PAIRS: dict[str, tuple[str, str]] = {
    "pair-als": (
        "ALS 64 factors, 15 iterations, no weighting, alpha 0 (confidence 1)",
        "implicit AlternatingLeastSquares, same settings (its alpha 1: confidence 1)",
    ),
    "pair-bpr": ("BPR 64 factors, 5 epochs", "implicit BayesianPersonalizedRanking, 64 factors, 5 epochs"),
    "pair-bm25": ("ItemKNN bm25, k=100", "implicit BM25Recommender(K=100)"),
    "pair-cosine": ("ItemKNN cosine, no shrinkage, k=100", "implicit CosineRecommender(K=100)"),
    # implicit's own scoring rule: each history item passes its similarity to its k neighbours
    "pair-bm25-history": ("ItemKNN bm25, k=100, neighbours_of='history'", "implicit BM25Recommender(K=100)"),
    "pair-cosine-history": (
        "ItemKNN cosine, no shrinkage, k=100, neighbours_of='history'",
        "implicit CosineRecommender(K=100)",
    ),
}
PAIR_EPOCHS = 5


def _registry_names() -> list[str]:
    from recsys.models._registry import MODELS

    return [*MODELS, "evaluator"]


def _build(row: str, side: str, n_items: int) -> Any:
    """The model of ``row``: a registry name, or one side ('ours' / 'peer') of a pair."""
    from recsys._peers import ImplicitALS, ImplicitBM25, ImplicitBPR, ImplicitCosine
    from recsys.models import ALS, BPR, ItemKNN
    from recsys.models._registry import build

    if row == "pair-als":
        if side == "ours":
            # implicit's confidence is alpha * w, ours 1 + alpha * w: alpha 0 here is implicit's alpha 1 on
            # binary data (c = 1), the same problem (with alpha=1 here c = 2: its solver took 1.3x as long)
            return ALS(n_factors=64, n_iterations=15, reg=0.01, alpha=0.0, weighting="none", seed=0)
        return ImplicitALS({"factors": 64, "iterations": 15, "regularization": 0.01, "alpha": 1.0}, 0)
    if row == "pair-bpr":
        if side == "ours":
            return BPR(n_factors=64, n_epochs=PAIR_EPOCHS, seed=0)
        return ImplicitBPR({"factors": 64, "iterations": PAIR_EPOCHS}, 0)
    history = row.endswith("-history")
    mode: Literal["candidate", "history"] = "history" if history else "candidate"
    if row in ("pair-bm25", "pair-bm25-history"):
        return ItemKNN(weighting="bm25", k=100, neighbours_of=mode) if side == "ours" else ImplicitBM25({"K": 100}, 0)
    if row in ("pair-cosine", "pair-cosine-history"):
        if side == "ours":
            return ItemKNN(weighting="none", similarity="cosine", shrinkage=0.0, k=100, neighbours_of=mode)
        return ImplicitCosine({"K": 100}, 0)
    return build(row, n_items)


def _child(row: str, side: str, data: Any, conn: Any) -> None:
    """Fit and top-10-for-all in this (forked) process; send a dict back."""
    out: dict[str, Any] = {"status": "ok"}
    try:
        from recsys._utils.threads import limit_threads
        from recsys.models._registry import Skip

        if row == "evaluator":
            _evaluator(data, out)
            conn.send(out)
            return
        try:
            model = _build(row, side, data.n_items)
        except Skip as e:
            conn.send({"status": "skipped", "message": str(e)})
            return
        gc.collect()
        with PeakMemory() as pm:
            t0 = time.perf_counter()
            try:
                # implicit asks for a single-threaded BLAS under its own threads (our ALS sets the same)
                with limit_threads(1, blas=True) if side == "peer" else contextlib.nullcontext():
                    model.fit(data)
            except Exception as e:  # a refusal (EASE's memory check) is a result, not a crash
                out.update(status="refused", message=f"{type(e).__name__}: {e}")
                out["fit_s"] = time.perf_counter() - t0
                conn.send(out)
                return
            out["fit_s"] = time.perf_counter() - t0
        out["fit_peak_mb"] = pm.peak / 2**20
        conn.send({"status": "fitted", "fit_s": out["fit_s"]})  # so a timeout in recommend keeps the fit time
        gc.collect()
        with PeakMemory() as pm:
            t0 = time.perf_counter()
            recs = model.recommend(data.users.ids, k=10)
            out["rec_s"] = time.perf_counter() - t0
        out["rec_peak_mb"] = pm.peak / 2**20
        out["rows"] = int(len(recs))
    except BaseException as e:  # report, never hang the parent
        out.update(status="error", message=f"{type(e).__name__}: {e}", trace=traceback.format_exc()[-2000:])
    conn.send(out)


def _evaluator(data: Any, out: dict[str, Any]) -> None:
    """The evaluator's row: a per-user 80/20 split, Popular's top-10 for every test user (untimed), then
    ``Evaluator(train, test, item_features=...)`` ("fit") and ``evaluate`` with every metric ("top-10")."""
    from recsys.evaluation import Evaluator
    from recsys.models import Popular
    from recsys.split import stratified_split

    train, test = stratified_split(data, ratio=0.8, seed=1)
    recs = Popular().fit(train).recommend(test.users.ids, k=10)
    # one-hot categories: the feature vectors of intra-list diversity
    feats = pd.get_dummies(data.item_features["category"], dtype=np.float64)
    feats.insert(0, "item", data.items.ids)
    gc.collect()
    with PeakMemory() as pm:
        t0 = time.perf_counter()
        ev = Evaluator(train, test, k=10, item_features=feats)
        out["fit_s"] = time.perf_counter() - t0
    out["fit_peak_mb"] = pm.peak / 2**20
    with PeakMemory() as pm:
        t0 = time.perf_counter()
        res = ev.evaluate(recs)
        out["rec_s"] = time.perf_counter() - t0
    out["rec_peak_mb"] = pm.peak / 2**20
    out["rows"] = int(len(recs))
    out["metrics"] = sorted(res.metrics) if hasattr(res, "metrics") else []
    out["users"] = int(test.n_users)


def _run(row: str, side: str, data: Any, budget_s: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")  # the child shares the parent's data pages
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(row, side, data, child))
    t0 = time.perf_counter()
    proc.start()
    child.close()
    result: dict[str, Any] = {}
    while True:
        left = budget_s - (time.perf_counter() - t0)
        if left <= 0 or not parent.poll(min(left, 5.0)):
            if left <= 0:
                proc.kill()
                proc.join()
                result.update(status="timeout", message=f"did not finish within {budget_s / 60:.0f} min")
                return result
            if not proc.is_alive() and not parent.poll(0):
                result.update(status="error", message=f"child exited with code {proc.exitcode}")
                return result
            continue
        msg = parent.recv()
        result.update(msg)
        if msg["status"] != "fitted":
            proc.join()
            return result


def _load(path: Path = RESULTS_JSON) -> dict[str, Any]:
    if path.exists():
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    return {"runs": {}, "rows": {}}


def _save(store: dict[str, Any], path: Path = RESULTS_JSON) -> None:
    """Write ``store`` over what the file holds now (another run may have added rows meanwhile)."""
    merged = _load(path)
    for part in ("runs", "rows"):
        merged.setdefault(part, {}).update(store.get(part, {}))
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _best(r: dict[str, Any], key: str) -> float:
    """A pair side's fastest fit / top-10 over its runs (each kept separately)."""
    col = {"fit_s": 0, "rec_s": 1}[key]
    times = [run[col] for run in r.get("runs", []) if run[col] is not None]
    return float(min(times)) if times else float(r[key])


def _cell(r: dict[str, Any] | None) -> tuple[str, str, str]:
    """(fit, top-10, peak RSS) cells of one result."""
    if r is None:
        return "not run", "", ""
    st = r["status"]
    if st == "ok":
        peak = max(r.get("fit_peak_mb", 0.0), r.get("rec_peak_mb", 0.0))
        return _fmt_s(_best(r, "fit_s")), _fmt_s(_best(r, "rec_s")), f"{peak / 1024:.1f}"
    msg = r.get("message", st).replace("|", "/").replace("\n", " ")
    if len(msg) > 160:
        msg = msg[:157] + "..."
    fit = _fmt_s(r.get("fit_s")) if "fit_s" in r else ""
    return (f"{fit} ({st}: {msg})" if fit else f"{st}: {msg}"), "", ""


def _exponent(store: dict[str, Any], row: str, key: str, a: str, b: str) -> str:
    ra, rb = store["rows"].get(f"{a}/{row}"), store["rows"].get(f"{b}/{row}")
    if not ra or not rb or ra.get("status") != "ok" or rb.get("status") != "ok":
        return "-"
    na, nb = SIZES[a][2], SIZES[b][2]
    ta, tb = _best(ra, key), _best(rb, key)
    if not ta or not tb:
        return "-"
    return f"{math.log(tb / ta) / math.log(nb / na):.2f}"


def render(store: dict[str, Any]) -> None:
    """Write scale.md from the stored results."""
    lines = [
        "# Every model from ML-1M to ML-25M size",
        "",
        "Command: `python -m benchmarks.scale --sizes SIZES --models ROWS` (see the script's docstring); this file is",
        "rendered from `scale.json` by `python -m benchmarks.scale --render`. Synthetic data of MovieLens sizes",
        "(`recsys.datasets.synthetic(users, items, interactions, seed=1)`); each row ran in its own forked process.",
        "Times in seconds, peak RSS in GiB of the whole process (the data set's own arrays included).",
        "",
        "Runs:",
        "",
    ]
    for size, run in sorted(store["runs"].items(), key=lambda kv: list(SIZES).index(kv[0])):
        lines.append(f"- {size} ({SIZES[size][0]:,} users, {SIZES[size][1]:,} items, {SIZES[size][2]:,} interactions): "
                     f"{run['date']}, data generated in {run['data_s']:.0f} s, data RSS {run['data_rss_gb']:.1f} GiB; {run['machine']}")
    sizes = [s for s in SIZES if s in store["runs"]]
    rows = sorted({k.split("/", 1)[1].split(":")[0] for k in store["rows"]}, key=_row_order)
    for size in sizes:
        lines += ["", f"## {size} size", "", "| row | fit s | top-10 all users s | peak RSS GiB |", "|---|---|---|---|"]
        for row in rows:
            if row.startswith("pair-"):
                for side in ("ours", "peer"):
                    r = store["rows"].get(f"{size}/{row}:{side}")
                    label = PAIRS[row][0 if side == "ours" else 1]
                    lines.append(f"| {label} | " + " | ".join(_cell(r)) + " |")
                ours, peer = store["rows"].get(f"{size}/{row}:ours"), store["rows"].get(f"{size}/{row}:peer")
                if ours and peer and ours["status"] == peer["status"] == "ok":
                    rss_ratio = max(ours["fit_peak_mb"], ours["rec_peak_mb"]) / max(peer["fit_peak_mb"], peer["rec_peak_mb"])
                    fit_ratio = _best(ours, "fit_s") / _best(peer, "fit_s")
                    rec_ratio = _best(ours, "rec_s") / _best(peer, "rec_s")
                    lines.append(f"| ratio ours / peer | {fit_ratio:.2f}x | {rec_ratio:.2f}x | {rss_ratio:.2f}x |")
            elif f"{size}/{row}" in store["rows"]:
                label = "evaluator: construct / evaluate, all metrics" if row == "evaluator" else row
                lines.append(f"| {label} | " + " | ".join(_cell(store["rows"][f"{size}/{row}"])) + " |")
    growth_rows = [r for r in rows if not r.startswith("pair-")] + [f"{r}:{s}" for r in rows if r.startswith("pair-") for s in ("ours", "peer")]
    pairs_of_sizes = list(zip(sizes, sizes[1:]))
    if pairs_of_sizes:
        head = " | ".join(f"{a}->{b} fit | {a}->{b} top-10" for a, b in pairs_of_sizes)
        lines += ["", "## Growth exponents (time ~ interactions^e)", "", f"| row | {head} |", "|---" * (1 + 2 * len(pairs_of_sizes)) + "|"]
        for row in growth_rows:
            cells = []
            for a, b in pairs_of_sizes:
                cells += [_exponent(store, row, "fit_s", a, b), _exponent(store, row, "rec_s", a, b)]
            if any(c != "-" for c in cells):
                lines.append(f"| {row} | " + " | ".join(cells) + " |")
    notes = store.get("notes", [])
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    write_results(RESULTS_MD, lines)


def _row_order(row: str) -> tuple[int, str]:
    names = _registry_names()
    base = row.split(":")[0]
    return (names.index(base) if base in names else len(names) + list(PAIRS).index(base) if base in PAIRS else 99, row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="ml1m", help=f"comma-separated, of {','.join(SIZES)}")
    ap.add_argument("--models", default="all", help="comma-separated registry names and pair-* rows, or 'all'")
    ap.add_argument("--budget", type=float, default=30.0, help="minutes per model for fit and top-10 together")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each side of a pair (fastest kept)")
    ap.add_argument("--render", action="store_true", help="only rewrite scale.md from scale.json")
    ap.add_argument("--store", type=Path, default=RESULTS_JSON, help="the JSON file the rows accumulate in")
    args = ap.parse_args()
    store = _load(args.store)
    if args.render:
        render(store)
        return
    names = _registry_names() + list(PAIRS) if args.models == "all" else args.models.split(",")
    for n in names:
        if n not in PAIRS and n not in _registry_names():
            ap.error(f"--models: unknown row {n!r}; known: {', '.join(_registry_names() + list(PAIRS))}")
    from recsys._utils.measure import rss
    from recsys.datasets.synthetic import synthetic

    for size in args.sizes.split(","):
        if size not in SIZES:
            ap.error(f"--sizes: unknown size {size!r}; known: {', '.join(SIZES)}")
        print(f"== {size}: generating data", flush=True)
        t0 = time.perf_counter()
        data = synthetic(*SIZES[size], seed=1)
        data.matrix("csr", "binary")  # build the cached matrices before forking: every child shares them
        store["runs"][size] = {
            "date": time.strftime("%Y-%m-%d"),
            "data_s": time.perf_counter() - t0,
            "data_rss_gb": (rss() or 0) / 2**30,
            "machine": machine(),
        }
        # a pair's two sides alternate, --repeats times, and keep their fastest run: the machine may be shared
        jobs = [(n, s) for n in names for s in ((("ours", "peer") * args.repeats) if n in PAIRS else ("",))]
        best: dict[str, dict[str, Any]] = {}
        for row, side in progress(jobs, desc=size, total=len(jobs)):
            key = f"{size}/{row}:{side}" if side else f"{size}/{row}"
            print(f"-- {key}", flush=True)
            r = _run(row, side or "ours", data, args.budget * 60)
            print(f"   {r}", flush=True)
            if side:
                r["runs"] = best.get(key, {}).get("runs", []) + [[r.get("fit_s"), r.get("rec_s")]]
                old = best.get(key)
                if old is not None and old["status"] == "ok" and (r["status"] != "ok" or r["fit_s"] + r["rec_s"] > old["fit_s"] + old["rec_s"]):
                    r = {**old, "runs": r["runs"]}
                best[key] = r
            store["rows"][key] = r
            _save(store, args.store)
        del data
        gc.collect()
    render(_load(args.store))


if __name__ == "__main__":
    main()
