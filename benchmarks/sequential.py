"""Next-item recommendation: SASRec and GRU4Rec against non-sequential models under leave-one-out.

Protocol (Kang & McAuley 2018; Klenitskiy & Vasilev 2023): users with at least
5 interactions (``Interactions.filter(min_user=5)``), ``leave_one_out``: each
user's last interaction is test, the one before validation, the rest train.
Full ranking over the whole catalogue (no sampled metrics), seen items
excluded, HR@10 and NDCG@10 from ``Evaluator``.

Tuning uses the validation position only. The non-sequential models search a
small grid (fit on train, NDCG@10 on validation), then are refit on train +
validation and evaluated on test once. The sequential models are fitted on
train + validation with every user's last item there (the validation
position) held out for early stopping on NDCG@10 (``validation_users`` covers
all users), and their small grid is scored the same way (the best validation
NDCG@10 reached); the held-out item still enters each user's sequence at test
time, as in SASRec's own protocol. Paired ``compare`` of SASRec against every
other model on the test users.

The peer, RecTools' SASRecModel, runs in its own Python environment (its pins
differ from ours): ``--rectools-python <python of that venv>``; it is given
the same train + validation rows, the same architecture and the number of
epochs our SASRec's early stopping chose, and its top-10 lists are scored by
the same ``Evaluator``. Epoch times of both are measured in the same run.

Synthetic table: the same protocol on ``synthetic(..., sequential=0.8)`` (a
per-category Markov chain) and on the same generator without the signal.

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.sequential [--rectools-python PY]``
(writes ``benchmarks/results/sequential.md``). ``--dataset ml-1m`` runs the
ML-1M protocol of Klenitskiy & Vasilev (max_len 200, published SASRec+
Recall@10 = HR@10 0.315); it was not measured on this machine (no ML-1M here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import grid_scores, header, movielens, section, write_results
from recsys import Interactions
from recsys.datasets import synthetic
from recsys.evaluation import EvaluationResult, Evaluator, compare
from recsys.models import ALS, EASE, GRU4Rec, ItemKNN, Popular, SASRec
from recsys.models.base import Recommender
from recsys.split import leave_last_n, leave_one_out

RESULTS = Path(__file__).parent / "results" / "sequential.md"
METRICS = ["ndcg", "hit_rate"]
MIN_USER = 5

GRIDS: dict[str, tuple[type[Recommender], dict[str, Any], dict[str, list[Any]]]] = {
    "Popular": (Popular, {}, {}),
    "ItemKNN": (ItemKNN, {}, {"k": [50, 100, 200], "weighting": ["tfidf", "bm25"]}),
    "EASE": (EASE, {}, {"reg": [100.0, 300.0, 500.0, 1000.0]}),
    "ALS": (ALS, {"num_threads": 1, "show_progress": False}, {"n_factors": [32, 64], "reg": [10.0, 30.0, 100.0]}),
}
SEQ: dict[str, tuple[type[Recommender], dict[str, list[Any]]]] = {
    "SASRec": (SASRec, {"dropout": [0.2, 0.5], "set_loss": [0.0, 1.0]}),
    "GRU4Rec": (GRU4Rec, {"dropout": [0.2, 0.5], "set_loss": [0.0, 1.0]}),
}

# Runs in the peer's own environment: argv[1] is a folder with rest.csv, users.csv and params.json.
PEER_CODE = r"""
import json, sys, time, pathlib
import pandas as pd, torch
d = pathlib.Path(sys.argv[1]); p = json.loads((d / "params.json").read_text())
torch.set_num_threads(p["threads"])
from rectools import Columns
from rectools.dataset import Dataset
from rectools.models import SASRecModel
rows = pd.read_csv(d / "rest.csv")
frame = pd.DataFrame({Columns.User: rows["user"], Columns.Item: rows["item"], Columns.Weight: 1.0,
                      Columns.Datetime: pd.to_datetime(rows["timestamp"], unit="s")})
dataset = Dataset.construct(frame)
model = SASRecModel(n_blocks=p["n_layers"], n_heads=p["n_heads"], n_factors=p["dim"], dropout_rate=p["dropout"],
                    session_max_len=p["max_len"], loss="softmax", lr=p["learning_rate"], batch_size=p["batch_size"],
                    epochs=p["epochs"], deterministic=True, verbose=0, recommend_n_threads=p["threads"])
t0 = time.perf_counter(); model.fit(dataset); fit = time.perf_counter() - t0
users = pd.read_csv(d / "users.csv")["user"].tolist()
recs = model.recommend(users=users, dataset=dataset, k=10, filter_viewed=True)
recs.rename(columns={Columns.User: "user", Columns.Item: "item"})[["user", "item", "rank"]].to_csv(d / "recs.csv", index=False)
import rectools
(d / "timing.json").write_text(json.dumps({"fit_seconds": fit, "epochs": p["epochs"], "version": rectools.__version__}))
"""


def load(dataset: str) -> Interactions:
    """MovieLens ``dataset``, users with at least ``MIN_USER`` ratings, every rating an interaction,
    ties in a user's timestamps broken at random (see :func:`untie`)."""
    frame = untie(movielens(dataset).ratings[["user", "item", "timestamp"]])
    data = Interactions.from_frame(frame, timestamp_col="timestamp")
    return data.filter(min_user=MIN_USER)


def untie(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Timestamps ``ts * m + r``: ``r`` a random (seeded) rank among the user's rows of the same second.

    MovieLens users rate many films in the same second (half of the consecutive pairs of an ML-100K
    user's history tie). ``leave_last_n`` would then take the tied film of the largest id as the test
    item and a model could learn the order of ids within a second; a random order within the second
    gives every model and the split one order, and one with nothing to learn from.
    """
    ts = frame["timestamp"].to_numpy(np.int64)
    users = frame["user"].to_numpy()
    order = np.lexsort((np.random.default_rng(seed).random(len(frame)), ts, users))
    u, t = users[order], ts[order]
    new = np.r_[True, (u[1:] != u[:-1]) | (t[1:] != t[:-1])]
    start = np.maximum.accumulate(np.where(new, np.arange(len(t)), 0))
    rank = np.empty(len(t), dtype=np.int64)
    rank[order] = np.arange(len(t)) - start
    m = int(rank.max()) + 1
    return frame.assign(timestamp=ts * m + rank)


def seq_params(args: argparse.Namespace, n_users: int) -> dict[str, Any]:
    return dict(
        max_len=args.max_len, dim=args.dim, n_layers=2, dropout=0.2, learning_rate=args.lr, batch_size=args.batch_size,
        epochs=args.epochs, patience=args.patience, validation_users=n_users, time_budget=args.time_budget,
        num_threads=args.threads, show_progress=False,
    )  # fmt: skip


def fit_seq(cls: type[Recommender], params: dict[str, Any], rest: Interactions) -> tuple[Recommender, float]:
    """Fit on train + validation with early stopping on the validation position; the fit's wall seconds."""
    t0 = time.perf_counter()
    model = cls(**params).fit(rest)
    return model, time.perf_counter() - t0


def run_table(
    name: str, data: Interactions, args: argparse.Namespace, *, peer: str | None = None, tune_sequential: bool = True
) -> list[str]:
    train, valid, test = leave_one_out(data)
    rest, _ = leave_last_n(data, 1)
    ev = Evaluator(rest, test, k=10, metrics=METRICS)
    lines = section(
        f"## {name}",
        "",
        f"{data.n_users} users (at least {MIN_USER} interactions each), {data.n_items} items, {data.nnz} interactions; "
        f"leave-one-out: {train.nnz} train, {valid.nnz} validation, {test.nnz} test rows; "
        f"{ev.n_users_evaluated} test users evaluated (full ranking over {rest.n_items} items, seen excluded).",
        "",
    )
    results: dict[str, EvaluationResult] = {}
    chosen: dict[str, str] = {}
    fit_seconds: dict[str, float] = {}
    epoch_info: dict[str, str] = {}
    sasrec_model: Any = None
    base = seq_params(args, data.n_users)
    for label, (cls, grid) in SEQ.items():
        best: tuple[float, dict[str, Any], Any, float] | None = None
        settings = [dict(zip(grid, v)) for v in _product(grid)] if tune_sequential else [{}]
        for setting in settings:
            extra = {"n_heads": args.n_heads} if cls is SASRec else {"n_layers": 1}
            params = {**base, **extra, **setting}
            model, secs = fit_seq(cls, params, rest)
            val = float(model.train_result_["best_val_ndcg@10"])  # type: ignore[attr-defined]
            print(f"{label} {setting}: validation NDCG@10 {val:.4f}, {secs:.0f} s", flush=True)
            if best is None or val > best[0]:
                best = (val, setting, model, secs)
        assert best is not None
        val, setting, model, secs = best
        results[label] = ev.evaluate(model)
        log = model.train_result_  # type: ignore[attr-defined]
        n_ep = len(log["epochs"])
        loop = float(np.mean([e["seconds"] for e in log["epochs"]]))
        fit_seconds[label] = secs
        epoch_info[label] = f"{loop:.2f} s training loop, {secs / n_ep:.2f} s whole fit / epoch ({n_ep} epochs, best {log['best_epoch']})"
        chosen[label] = f"{setting or 'fixed'} (validation NDCG@10 {val:.4f}; early stopping at epoch {log['best_epoch']})"
        if label == "SASRec":
            sasrec_model = model
    for label, (cls, fixed, grid) in GRIDS.items():
        if grid and not args.no_tune:
            rows = grid_scores(cls(**fixed), grid, train, valid)
            params, val = max(rows, key=lambda r: r[1])
            chosen[label] = f"{params} (validation NDCG@10 {val:.4f})"
        else:
            params = {}
            chosen[label] = "defaults"
        t0 = time.perf_counter()
        model = cls(**{**fixed, **params}).fit(rest)
        fit_seconds[label] = time.perf_counter() - t0
        results[label] = ev.evaluate(model)
    if peer is not None:
        peer_out = run_peer(peer, rest, test, sasrec_model, args)
        if isinstance(peer_out, str):
            lines += section(f"RecTools SASRec: not run ({peer_out}).", "")
        else:
            recs, timing = peer_out
            results["RecTools SASRec"] = ev.evaluate(recs)
            fit_seconds["RecTools SASRec"] = timing["fit_seconds"]
            epoch_info["RecTools SASRec"] = f"{timing['fit_seconds'] / timing['epochs']:.2f} s whole fit / epoch ({timing['epochs']} epochs, rectools {timing['version']})"
            chosen["RecTools SASRec"] = f"our SASRec's architecture and its {timing['epochs']} epochs"
    lines += section(
        "| model | NDCG@10 | HR@10 | fit (s) | chosen on validation |",
        "|---|---|---|---|---|",
        *[
            f"| {m} | {r.summary['ndcg@10']:.4f} | {r.summary['hit_rate@10']:.4f} | {fit_seconds[m]:.0f} | {chosen[m]} |"
            for m, r in sorted(results.items(), key=lambda kv: -kv[1].summary["ndcg@10"])
        ],
        "",
        "Paired comparison of SASRec against each (test users; bootstrap 95% CI of the difference, paired t-test):",
        "",
        "| SASRec vs | NDCG@10 diff | 95% CI | p (t-test) | HR@10 diff | p (t-test) |",
        "|---|---|---|---|---|---|",
    )
    for m, r in results.items():
        if m == "SASRec":
            continue
        c = compare(results["SASRec"], r)
        n, h = c.loc["ndcg@10"], c.loc["hit_rate@10"]
        lines += section(
            f"| {m} | {n['diff']:+.4f} | [{n['ci_low']:+.4f}, {n['ci_high']:+.4f}] | {n['p_ttest']:.2g} | {h['diff']:+.4f} | {h['p_ttest']:.2g} |"
        )
    lines += section("", "Time per epoch:", "", *[f"- {m}: {v}" for m, v in epoch_info.items()], "")
    if "RecTools SASRec" in results:
        ours, theirs = results["SASRec"].summary["ndcg@10"], results["RecTools SASRec"].summary["ndcg@10"]
        log = sasrec_model.train_result_
        ours_epoch = fit_seconds["SASRec"] / len(log["epochs"])
        peer_epoch = fit_seconds["RecTools SASRec"] / int(log["best_epoch"])
        lines += section(
            f"SASRec / RecTools SASRec: NDCG@10 ratio {ours / theirs:.3f}; whole-fit time per epoch ratio "
            f"{ours_epoch / peer_epoch:.2f} (ours includes its validation pass each epoch), "
            f"training-loop time per epoch ratio {float(np.mean([e['seconds'] for e in log['epochs']])) / peer_epoch:.2f}.",
            "",
        )
    return lines


def _product(grid: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    import itertools

    return list(itertools.product(*grid.values())) if grid else [()]


def run_peer(
    python: str, rest: Interactions, test: Interactions, sasrec: Any, args: argparse.Namespace
) -> tuple[pd.DataFrame, dict[str, Any]] | str:
    """RecTools' SASRec in its own interpreter on the same rows; its lists and timing, or why it did not run."""
    if not Path(python).exists():
        return "no interpreter at the given --rectools-python"
    params = sasrec.get_params()
    spec = {
        "n_layers": params["n_layers"], "n_heads": params["n_heads"], "dim": params["dim"], "dropout": params["dropout"],
        "max_len": params["max_len"], "learning_rate": params["learning_rate"], "batch_size": params["batch_size"],
        "epochs": int(sasrec.train_result_["best_epoch"]), "threads": args.threads,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rest.to_frame()[["user", "item", "timestamp"]].to_csv(d / "rest.csv", index=False)
        pd.DataFrame({"user": np.unique(test.to_frame()["user"])}).to_csv(d / "users.csv", index=False)
        (d / "params.json").write_text(json.dumps(spec))
        env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run([python, "-c", PEER_CODE, str(d)], capture_output=True, text=True, env=env, timeout=args.peer_timeout)
        if proc.returncode != 0:
            return "the peer failed: " + (proc.stderr.strip().splitlines() or ["no message"])[-1][:300]
        return pd.read_csv(d / "recs.csv"), json.loads((d / "timing.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--rectools-python", default=None, help="python of an environment with rectools[torch] installed")
    parser.add_argument("--max-len", type=int, default=None, help="default: 50 on ML-100K, 200 on ML-1M")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n-heads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--time-budget", type=float, default=None, help="seconds of training per sequential fit (default: 480 on ML-100K, none on ML-1M)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-tune", action="store_true", help="no grids: sequential models with dropout 0.2, the others with defaults")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--peer-timeout", type=float, default=3600.0)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.max_len is None:
        args.max_len = 200 if args.dataset == "ml-1m" else 50
    if args.time_budget is None and args.dataset == "ml-100k":
        args.time_budget = 480.0
    cmd = "python -m benchmarks.sequential" + ("" if args.dataset == "ml-100k" else f" --dataset {args.dataset}")
    lines = header("Next-item recommendation: SASRec and GRU4Rec under leave-one-out")
    lines += section(
        f"Command: `RECSYS_DATA_DIR=<datasets dir> {cmd} --rectools-python <python of a rectools[torch] venv>`",
        "",
        f"Sequential models: max_len {args.max_len}, dim {args.dim}, 2 layers (GRU4Rec 1), SASRec {args.n_heads} heads, "
        f"full softmax, history_mean on (the default; RecTools' SASRec has no such term), set_loss tuned with dropout, Adam lr {args.lr:g}, batch {args.batch_size}, at most {args.epochs} epochs, patience {args.patience}, "
        f"{'no time budget' if args.time_budget is None else f'at most {args.time_budget:.0f} s of training per fit'}, {args.threads} torch thread(s). The machine was shared with other jobs: seconds are indicative, the ratios "
        "come from the same run.",
        "",
    )
    t0 = time.perf_counter()
    lines += run_table(args.dataset.upper(), load(args.dataset), args, peer=args.rectools_python, tune_sequential=not args.no_tune)
    if not args.skip_synthetic:
        for strength in (0.8, 0.0):
            data = synthetic(1000, 400, 30000, seed=1, sequential=strength).filter(min_user=MIN_USER)
            what = f"sequential={strength}" + (" (per-category Markov chain)" if strength else " (no sequential signal)")
            # the same grids as on MovieLens, every model tuned on the validation position
            lines += run_table(f"Synthetic, synthetic(1000, 400, 30000, seed=1, {what})", data, args, tune_sequential=not args.no_tune)
    lines += section(f"Total {time.perf_counter() - t0:.0f} s.")
    write_results(args.out, lines)


if __name__ == "__main__":
    main()
