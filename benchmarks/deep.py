"""DeepFM and DIN on ML-100K: CTR quality and speed against DeepCTR-Torch and logistic regression,
then as the ranking stage of a two-stage top-N recommender.

1. CTR (the issue's protocol). label = rating >= 4. ``temporal_split(by="user",
   test_fraction=0.2)`` (80,367 train / 19,633 test rows). Fields: user id, item
   id, gender, age bucket (ML-1M's edges 18/25/35/45/50/56), occupation, zip's first
   character, first genre, genre list (multi-valued, mean-pooled). DIN history:
   the same user's train rows with label 1 strictly earlier than the row, the
   most recent 50. Embedding 8, DNN (256, 128), Adam 1e-3, batch 256, 2 threads.
   recsys' models stop early on a validation split carved out of train (each
   user's latest 10% of train rows), then refit on all of train for the chosen
   number of epochs; test is never looked at. DeepCTR-Torch DeepFM / DIN get
   exactly the same fields and histories and train 5 epochs (the issue's
   reference protocol), in the same process and the same seeds. The logistic
   regression (scikit-learn, one-hot fields + multi-hot genres) picks C on the
   same validation split. Training samples/s = rows processed per second of
   the training loop (recsys: including each epoch's data preparation and the
   refit, excluding validation scoring; DeepCTR-Torch: its ``fit``).
2. Two-stage top-N (the neighbourhood benchmark's protocol): every rating an
   interaction, ``stratified_split(0.75, by="user", seed=42)``, k=10, train items
   excluded. A retriever alone against ``Pipeline(retriever, ranker)`` on the
   same Evaluator; ``compare`` gives the paired difference and tests.

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.deep``
(``--seeds 42 43 44``, ``--skip-ctr``, ``--skip-pipeline``, ``--no-peer``).
Writes ``benchmarks/results/deep.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks._common import machine, movielens
from recsys import Interactions
from recsys._peers import deepctr as _deepctr
from recsys.evaluation import Evaluator, compare
from recsys.models import DIN, EASE, DeepFM, ItemKNN, Pipeline, Popular
from recsys.models.deep.features import FieldSpec, encode_fields
from recsys.models.deep.trainer import log_loss, roc_auc
from recsys.split import stratified_split, temporal_split

RESULTS = Path(__file__).parent / "results" / "deep.md"
THREADS = 2
FEATURES = [
    "user.gender",
    "user.age:bucket=18,25,35,45,50,56",
    "user.occupation",
    "user.zip:prefix=1",
    "item.genres:first",
    "item.genres",
]
COMMON: dict[str, Any] = dict(
    features=FEATURES, embedding_dim=8, hidden_units=(256, 128), learning_rate=1e-3, batch_size=256,
    num_threads=THREADS, show_progress=False, device="cpu",
)
PEER_EPOCHS = 5


def ml100k() -> Interactions:
    return movielens("ml-100k").interactions()


# -- 1. CTR ----------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def one_hot(train: Interactions, part: Interactions) -> sp.csr_matrix:
    """One column per categorical value and genre (the fields of the deep models), rows of ``part``."""
    t = encode_fields(train, [FieldSpec.parse(f) for f in FEATURES])
    idx = np.hstack([t.user_cat[part.user_index], t.item_cat[part.item_index], t.item_multi[part.item_index]])
    rows = np.repeat(np.arange(part.nnz), idx.shape[1])
    keep = idx.ravel() > 0
    return sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], idx.ravel()[keep])), shape=(part.nnz, t.n_rows))


def logistic_regression(train: Interactions, test: Interactions) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    assert train.ratings is not None and test.ratings is not None
    fit_part, valid = temporal_split(train, test_fraction=0.1, by="user")
    best = None
    for c in (0.03, 0.1, 0.3, 1.0):
        m = LogisticRegression(C=c, max_iter=2000).fit(one_hot(train, fit_part), fit_part.ratings >= 4)  # type: ignore[operator]
        auc = roc_auc(valid.ratings >= 4, m.decision_function(one_hot(train, valid)))  # type: ignore[operator]
        if best is None or auc > best[0]:
            best = (auc, c)
    assert best is not None
    m = LogisticRegression(C=best[1], max_iter=2000).fit(one_hot(train, train), train.ratings >= 4)
    z = m.decision_function(one_hot(train, test))
    y = test.ratings >= 4
    return {"auc": roc_auc(y, z), "logloss": log_loss(y, z), "C": best[1]}


def fit_ours(cls: type, train: Interactions, test: Interactions, seed: int, **extra: Any) -> dict[str, Any]:
    model = cls(label_threshold=4, seed=seed, **COMMON, **extra)
    t0 = time.perf_counter()
    model.fit(train)
    wall = time.perf_counter() - t0
    users, items = train.users.to_ids(test.user_index), train.items.to_ids(test.item_index)
    model.predict_proba(users[:512], items[:512], test.timestamps[:512])  # warm-up (float64 twin)
    t0 = time.perf_counter()
    p = model.predict_proba(users, items, test.timestamps)
    infer = time.perf_counter() - t0
    y = (test.ratings >= 4)  # type: ignore[operator]
    log = model.train_log_
    return {
        "auc": roc_auc(y, p),
        "logloss": log_loss(y, _logit(p)),
        "train_sps": log["train_samples"] / log["train_seconds"],
        "infer_rps": len(p) / infer,
        "epochs": log["best_epoch"],
        "fit_s": wall,
    }


def fit_peer(kind: str, data: _deepctr.DeepCTRData, train: Interactions, test: Interactions, seed: int) -> dict[str, Any]:
    history = kind == "din"
    x, xt = data.inputs(train, history=history), data.inputs(test, history=history)
    y = (train.ratings >= 4).astype(np.float32)  # type: ignore[operator]
    yt = test.ratings >= 4  # type: ignore[operator]
    torch.manual_seed(seed)
    model = _deepctr.build(kind, data, 8, (256, 128), seed)
    seconds = _deepctr.fit(model, x, y, PEER_EPOCHS)
    _deepctr.predict(model, {k: v[:512] for k, v in xt.items()})
    t0 = time.perf_counter()
    p = _deepctr.predict(model, xt)
    infer = time.perf_counter() - t0
    return {
        "auc": roc_auc(yt, p),
        "logloss": log_loss(yt, _logit(p)),
        "train_sps": PEER_EPOCHS * len(y) / seconds,
        "infer_rps": len(p) / infer,
        "epochs": PEER_EPOCHS,
        "fit_s": seconds,
    }


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}"


def ctr(seeds: list[int], peer: bool) -> list[str]:
    torch.set_num_threads(THREADS)
    data = ml100k()
    train, test = temporal_split(data, by="user", test_fraction=0.2)
    print(f"temporal split: {train.nnz:,} train / {test.nnz:,} test rows (expected: 80,367 / 19,633)", flush=True)
    why_not = _deepctr.available() if peer else "skipped (--no-peer)"
    peer_data = None if why_not else _deepctr.DeepCTRData(train, FEATURES, 50, 4)
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        jobs: list[tuple[str, Any]] = [
            ("recsys DeepFM", lambda: fit_ours(DeepFM, train, test, seed)),
            ("recsys DIN", lambda: fit_ours(DIN, train, test, seed)),
        ]
        if peer_data is not None:
            jobs += [
                ("DeepCTR-Torch DeepFM", lambda: fit_peer("deepfm", peer_data, train, test, seed)),
                ("DeepCTR-Torch DIN", lambda: fit_peer("din", peer_data, train, test, seed)),
            ]
        for name, job in jobs:
            r = job()
            runs.setdefault(name, []).append(r)
            print(
                f"seed {seed} {name:22s} AUC {r['auc']:.4f} LogLoss {r['logloss']:.4f} epochs {r['epochs']} "
                f"train {r['train_sps']:,.0f} samples/s infer {r['infer_rps']:,.0f} rows/s fit {r['fit_s']:.0f}s",
                flush=True,
            )
    lr = logistic_regression(train, test)
    print(f"logistic regression (C={lr['C']}) AUC {lr['auc']:.4f} LogLoss {lr['logloss']:.4f}", flush=True)

    lines = [
        "## 1. CTR on ML-100K (label = rating >= 4, per-user temporal split 80/20)",
        "",
        f"Command: `python -m benchmarks.deep --skip-pipeline --seeds {' '.join(map(str, seeds))}`; machine load at start: "
        f"{os.getloadavg()[0]:.1f}",
        "",
        f"{train.nnz:,} train / {test.nnz:,} test rows; seeds {', '.join(map(str, seeds))}; {THREADS} threads; "
        f"DeepCTR-Torch: {'same run, ' + str(PEER_EPOCHS) + ' epochs' if peer_data is not None else 'not run: ' + str(why_not)}.",
        "",
        "| model | test AUC mean ± sd | LogLoss | epochs | train samples/s | inference rows/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, rs in runs.items():
        lines.append(
            f"| {name} | {_mean_sd([r['auc'] for r in rs])} | {statistics.fmean(r['logloss'] for r in rs):.4f} | "
            f"{'/'.join(str(r['epochs']) for r in rs)} | {statistics.fmean(r['train_sps'] for r in rs):,.0f} | "
            f"{statistics.fmean(r['infer_rps'] for r in rs):,.0f} |"
        )
    lines.append(f"| scikit-learn logistic regression (one-hot, C={lr['C']}) | {lr['auc']:.4f} | {lr['logloss']:.4f} | — | — | — |")
    lines.append("")
    auc = {n: statistics.fmean(r["auc"] for r in rs) for n, rs in runs.items()}
    checks = [
        f"DeepFM mean AUC {auc['recsys DeepFM']:.4f} (target >= 0.790): {'met' if auc['recsys DeepFM'] >= 0.790 else 'NOT met'}",
        f"DIN mean AUC {auc['recsys DIN']:.4f} (target >= 0.795): {'met' if auc['recsys DIN'] >= 0.795 else 'NOT met'}",
        f"DIN above DeepFM ({auc['recsys DIN'] - auc['recsys DeepFM']:+.4f}) and above LR ({auc['recsys DIN'] - lr['auc']:+.4f}): "
        f"{'yes' if auc['recsys DIN'] > max(auc['recsys DeepFM'], lr['auc']) else 'NO'}",
    ]
    if peer_data is not None:
        for ours, theirs, target in (("recsys DeepFM", "DeepCTR-Torch DeepFM", 1.5), ("recsys DIN", "DeepCTR-Torch DIN", 3.0)):
            ratios = [a["train_sps"] / b["train_sps"] for a, b in zip(runs[ours], runs[theirs])]
            inf = [a["infer_rps"] / b["infer_rps"] for a, b in zip(runs[ours], runs[theirs])]
            line = (
                f"{ours} / {theirs} training throughput: {statistics.fmean(ratios):.2f}x "
                f"(per seed {', '.join(f'{r:.2f}' for r in ratios)}; target >= {target}x: "
                f"{'met' if statistics.fmean(ratios) >= target else 'NOT met'}); inference {statistics.fmean(inf):.2f}x"
            )
            checks.append(line)
    for c in checks:
        print(c, flush=True)
    return lines + [f"- {c}" for c in checks] + [""]


# -- 2. two-stage -------------------------------------------------------------------------


RANKERS: dict[str, Any] = {
    "DeepFM": lambda: DeepFM(seed=42, **COMMON),
    "DIN": lambda: DIN(seed=42, **COMMON),
}
RETRIEVERS: dict[str, Any] = {"Popular": Popular, "ItemKNN": ItemKNN, "EASE": EASE}


def two_stage(n_candidates: int, n_folds: int, retrievers: list[str]) -> list[str]:
    data = ml100k()
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    ev = Evaluator(train, test, k=10, metrics=["ndcg", "precision", "recall", "map"])
    lines = [
        "## 2. Two-stage top-N on ML-100K (stratified 75/25 by user, seed 42, k=10)",
        "",
        f"Command: `python -m benchmarks.deep --skip-ctr --candidates {n_candidates} --folds {n_folds} "
        f"--retrievers {' '.join(retrievers)}`",
        "",
        "Rankers trained on the retriever's candidates (`Pipeline(ranker_training=\"candidates\", "
        f"n_folds={n_folds})`): "
        + (f"the train rows are cut into {n_folds} folds; for each fold a copy of the retriever fitted on the other "
           "folds proposes candidates, labelled by the fold (cross-fitting: every train row labels once)"
           if n_folds > 1 else "a copy of the retriever fitted on 80% of each user's train rows proposes candidates, "
           "labelled by the other 20%")
        + "; the ranker sees the retriever's standardised score through a learned weight; the CTR section's fields "
        f"and settings (early stopping on 10% of the candidate rows); {n_candidates} candidates per user.",
        "",
        "| retriever | model | NDCG@10 | P@10 | R@10 | ΔNDCG@10 vs retriever [95% CI] | p (t-test) | p (Wilcoxon) | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rname in retrievers:
        make = RETRIEVERS[rname]
        t0 = time.perf_counter()
        base = ev.evaluate(make().fit(train))
        base_s = time.perf_counter() - t0
        s = base.summary
        lines.append(f"| {rname} | {rname} alone | {s['ndcg@10']:.4f} | {s['precision@10']:.4f} | {s['recall@10']:.4f} | — | — | — | {base_s:.1f} |")
        print(f"{rname} alone NDCG@10 {s['ndcg@10']:.4f}", flush=True)
        for kname, ranker in RANKERS.items():
            t0 = time.perf_counter()
            pipe = Pipeline(retriever=make(), ranker=ranker(), n_candidates=n_candidates, n_folds=n_folds).fit(train)
            fit_s = time.perf_counter() - t0
            res = ev.evaluate(pipe)
            row = compare(res, base).loc["ndcg@10"]
            s = res.summary
            lines.append(
                f"| {rname} | Pipeline({rname}, {kname}) | {s['ndcg@10']:.4f} | {s['precision@10']:.4f} | {s['recall@10']:.4f} | "
                f"{row['diff']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] | {row['p_ttest']:.2g} | {row['p_wilcoxon']:.2g} | {fit_s:.0f} |"
            )
            print(f"Pipeline({rname}, {kname}) NDCG@10 {s['ndcg@10']:.4f} diff {row['diff']:+.4f} p_t {row['p_ttest']:.2g} p_w {row['p_wilcoxon']:.2g}", flush=True)
    return lines + [""]


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    key = None
    for line in text.splitlines():
        if line.startswith("## "):
            key = line[3]
            out[key] = []
        if key is not None:
            out[key].append(line)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--skip-ctr", action="store_true")
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--no-peer", action="store_true", help="do not run DeepCTR-Torch")
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--retrievers", nargs="+", choices=list(RETRIEVERS), default=list(RETRIEVERS))
    ap.add_argument("--folds", type=int, default=5, help="Pipeline's n_folds (cross-fitting folds of the ranker's candidates)")
    args = ap.parse_args()
    print(machine(), flush=True)
    lines = ["# DeepFM and DIN vs DeepCTR-Torch and logistic regression; two-stage ranking", "", f"Machine: {machine()}", ""]
    old = _sections(RESULTS.read_text()) if RESULTS.exists() else {}
    # a skipped part keeps its section from the previous run (each section names its own command)
    one = ctr(args.seeds, not args.no_peer) if not args.skip_ctr else old.get("1", [])
    two = two_stage(args.candidates, args.folds, args.retrievers) if not args.skip_pipeline else old.get("2", [])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines + one + two) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
