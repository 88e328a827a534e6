"""Multi-task rankers (SharedBottom, MMoE, PLE, ESMM) on ML-100K and on synthetic data: each task's
metric against the single-task models of the same run, speed, and as the ranker of a Pipeline.

1. ML-100K, the CTR protocol of ``benchmarks.deep`` (per-user temporal split 80/20; the DIN
   benchmark's fields; like = rating >= 4; seeds 42, 43, 44; early stopping on each user's latest 10%
   of train, then refit). Tasks click (interacted vs sampled, ``negative_ratio`` negatives per
   interaction re-drawn each epoch), like (masked on sampled negatives; ESMM: over the entire space as
   pCTR x pCVR) and rating (MSE, masked on negatives); early stopping follows the like AUC.

   - ``like`` AUC on the test rows (the rows and labels of the DIN benchmark): the conditional
     like head (ESMM: its pCVR head; its pCTCVR is reported beside), against single-task DIN fitted
     in the same run with the deep benchmark's settings; paired difference per seed.
   - ``rating`` RMSE on the test rows against ``SVDpp`` fitted on the same train split.
   - ``click`` AUC on the test rows against one sampled negative each (an item the user has no train or
     test interaction with; fixed seed), against single-task DeepFM in implicit mode (the same negatives).
   - training samples/s (the trainer's rows per second of its training loop, refit included) and
     inference rows/s (all heads of every test row, 2 threads).
   - torch-rechub's MMoE / PLE on the same split, when importable (``--rechub-site``).
2. The same table on synthetic data the defaults were not tuned on (``recsys.datasets.synthetic``).
3. ``Pipeline(EASE, ranker)`` against EASE alone on the neighbourhood protocol (stratified 75/25 by
   user, seed 42, k=10), ``Evaluator.compare``: MMoE ranking by pCTR x pLike or by its click head (DeepFM
   or DIN bottom), and DeepFM, each with 1 holdout fold and with 5 cross-fitted folds (``--folds``);
   ``--rankers`` picks among them and single-task DIN with the settings of deep.md's two-stage table.
5. ``--text-embeddings``: the best multi-task configuration of section 1 (MMoE, DIN bottom) on the
   section-1 split with and without one more item field, the BERT (all-MiniLM-L6-v2) embedding of
   each movie's title as a vector field (``"item.title_emb"``); paired by seed. Runs only this
   section and writes it into the results file, leaving the others as they are.

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.multitask`` (``--seeds 42 43 44``,
``--skip-ml100k``, ``--skip-synthetic``, ``--skip-pipeline``, ``--rechub-site <site-packages of a
venv with torch-rechub>``, ``--text-embeddings``, the budget ``--epochs 15 --patience 3`` and
``--no-refit``). Writes ``benchmarks/results/multitask.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import machine
from benchmarks.deep import COMMON, FEATURES, THREADS, _sections, ml100k
from recsys import Interactions
from recsys.datasets import synthetic
from recsys.evaluation import Evaluator, compare
from recsys.models import DIN, EASE, ESMM, PLE, DeepFM, MMoE, Pipeline, SharedBottom, SVDpp
from recsys.models.deep.trainer import roc_auc
from recsys.split import stratified_split, temporal_split

RESULTS = Path(__file__).parent / "results" / "multitask.md"
TASKS = {"click": "binary", "like": "binary", "rating": "regression"}
# One sampled negative per interaction; the training budget (``--epochs``, ``--patience``, ``--no-refit``) is the
# same for the single-task models of the run. The defaults are the deep benchmark's: early stopping on each
# user's latest 10% of train, then a refit on all of train for the chosen number of epochs.
NEG = 1
BUDGET: dict[str, Any] = dict(epochs=15, patience=3, refit=True)
MT: dict[str, Any] = dict(
    tasks=TASKS, label_threshold=4, negative_ratio=NEG, embedding_dim=8, learning_rate=1e-3,
    batch_size=256, num_threads=THREADS, show_progress=False, device="cpu", **BUDGET,
)
MODELS: dict[str, Callable[..., Any]] = {
    "SharedBottom": lambda **kw: SharedBottom(**MT, **kw),
    "MMoE": lambda **kw: MMoE(**MT, **kw),
    "PLE": lambda **kw: PLE(**MT, **kw),
    "ESMM": lambda **kw: ESMM(**MT, **kw),
    "MMoE (DIN bottom)": lambda **kw: MMoE(**MT, bottom="din", **kw),
}


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def click_rows(train: Interactions, test: Interactions, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test rows (label 1) and one sampled item per test row that the user has no train or test
    interaction with (label 0): internal user / item indices and labels."""
    seen = set(zip(train.user_index.tolist(), train.item_index.tolist())) | set(zip(test.user_index.tolist(), test.item_index.tolist()))
    pool = np.flatnonzero(train.item_counts > 0)
    rng = np.random.default_rng(seed)
    neg = pool[rng.integers(0, len(pool), size=test.nnz)]
    for r in range(test.nnz):  # re-draw the rare collisions (a python loop over ~20,000 rows: fine here)
        while (int(test.user_index[r]), int(neg[r])) in seen:
            neg[r] = pool[rng.integers(0, len(pool))]
    users = np.r_[test.user_index, test.user_index]
    items = np.r_[test.item_index, neg]
    return users, items, np.r_[np.ones(test.nnz), np.zeros(test.nnz)]


def _ids(train: Interactions, uidx: np.ndarray, iidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return train.users.to_ids(uidx), train.items.to_ids(iidx)


def fit_multitask(make: Callable[..., Any], train: Interactions, test: Interactions, clicks: Any, seed: int, **kw: Any) -> dict[str, Any]:
    model = make(seed=seed, **kw)
    t0 = time.perf_counter()
    model.fit(train)
    wall = time.perf_counter() - t0
    users, items = _ids(train, test.user_index, test.item_index)
    like_head = "cvr" if isinstance(model, ESMM) else "like"
    model.predict_proba(users[:512], items[:512], test.timestamps[:512], task=like_head)  # warm-up (float64 twin)
    t0 = time.perf_counter()
    heads = model._head_logits(test.user_index, test.item_index, test.timestamps)  # every head, one pass
    infer = time.perf_counter() - t0
    y = test.ratings >= 4
    out = {
        "like_auc": roc_auc(y, model.predict_proba(users, items, test.timestamps, task=like_head)),
        "rmse": _rmse(model.predict(users, items, test.timestamps), test.ratings),
        "train_sps": model.train_log_["train_samples"] / model.train_log_["train_seconds"],
        "infer_rps": len(heads) / infer,
        "epochs": model.train_log_["best_epoch"],
        "fit_s": wall,
    }
    if isinstance(model, ESMM):
        out["ctcvr_auc"] = roc_auc(y, model.predict_proba(users, items, test.timestamps, task="like"))
    cu, ci = _ids(train, clicks[0], clicks[1])
    # the click rows have no timestamps of their own: each pair's history is the whole train history
    out["click_auc"] = roc_auc(clicks[2], model.predict_proba(cu, ci, task="click"))
    return out


def fit_single(train: Interactions, test: Interactions, clicks: Any, seed: int, din_features: list[str] | None) -> dict[str, dict[str, Any]]:
    """Single-task DIN (like), DeepFM in implicit mode (click), SVDpp (rating), same split."""
    out: dict[str, dict[str, Any]] = {}
    common = {**COMMON, "features": din_features, **BUDGET}
    din = DIN(label_threshold=4, seed=seed, **common)
    t0 = time.perf_counter()
    din.fit(train)
    wall = time.perf_counter() - t0
    users, items = _ids(train, test.user_index, test.item_index)
    din.predict_proba(users[:512], items[:512], test.timestamps[:512])
    t0 = time.perf_counter()
    p = din.predict_proba(users, items, test.timestamps)
    infer = time.perf_counter() - t0
    log = din.train_log_
    out["DIN (like)"] = {
        "like_auc": roc_auc(test.ratings >= 4, p), "train_sps": log["train_samples"] / log["train_seconds"],
        "infer_rps": len(p) / infer, "epochs": log["best_epoch"], "fit_s": wall,
    }
    click = DeepFM(seed=seed, negative_ratio=NEG, **common)
    t0 = time.perf_counter()
    click.fit(train)
    wall = time.perf_counter() - t0
    cu, ci = _ids(train, clicks[0], clicks[1])
    click.predict_proba(cu[:512], ci[:512])
    t0 = time.perf_counter()
    p = click.predict_proba(cu, ci)
    infer = time.perf_counter() - t0
    log = click.train_log_
    out["DeepFM (click)"] = {
        "click_auc": roc_auc(clicks[2], p), "train_sps": log["train_samples"] / log["train_seconds"],
        "infer_rps": len(p) / infer, "epochs": log["best_epoch"], "fit_s": wall,
    }
    svd = SVDpp(seed=seed, show_progress=False)
    t0 = time.perf_counter()
    svd.fit(train)
    wall = time.perf_counter() - t0
    out["SVDpp (rating)"] = {"rmse": _rmse(svd.predict(users, items), test.ratings), "fit_s": wall}
    return out


# -- torch-rechub ---------------------------------------------------------------------------------


def rechub_available(site: str | None) -> str | None:
    """None when torch-rechub imports (from ``site`` appended to sys.path: the main torch is used), else why not."""
    if site:
        sys.path.append(site)
    try:
        import torch_rechub  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure is the reason reported
        return f"torch-rechub not importable ({type(e).__name__}: {e})"
    return None


def _rechub_setup(kind: str, train: Interactions, seed: int) -> tuple[Any, Callable[[Interactions], dict[str, np.ndarray]], list[str]]:
    """torch-rechub's MMOE / PLE over the categorical fields of the CTR protocol (the genre list as a
    mean-pooled sequence feature), with the sizes of ours; its input builder; its task types."""
    from torch_rechub.basic.features import SequenceFeature, SparseFeature
    from torch_rechub.models.multi_task import MMOE
    from torch_rechub.models.multi_task import PLE as RPLE

    from recsys.models.deep.features import FieldSpec, encode_fields

    t = encode_fields(train, [FieldSpec.parse(f) for f in FEATURES])

    def inputs(part: Interactions) -> dict[str, np.ndarray]:
        x = {f"u{k}": t.user_cat[part.user_index, k] for k in range(t.user_cat.shape[1])}
        x |= {f"i{k}": t.item_cat[part.item_index, k] for k in range(t.item_cat.shape[1])}
        x["genres"] = t.item_multi[part.item_index]
        return x

    feats: list[Any] = [SparseFeature(f"u{k}", t.n_rows, 8) for k in range(t.user_cat.shape[1])]
    feats += [SparseFeature(f"i{k}", t.n_rows, 8) for k in range(t.item_cat.shape[1])]
    feats.append(SequenceFeature("genres", t.n_rows, 8, pooling="mean", padding_idx=0))
    types = ["classification", "regression"]
    towers = [{"dims": [32]}, {"dims": [32]}]
    torch.manual_seed(seed)
    model = MMOE(feats, types, 4, {"dims": [128, 64]}, towers) if kind == "mmoe" else RPLE(feats, types, 2, 1, 2, {"dims": [128, 64]}, towers)
    return model, inputs, types


def _rechub_labels(part: Interactions) -> np.ndarray:
    return np.c_[(part.ratings >= 4).astype(np.float32), part.ratings.astype(np.float32)]


def fit_rechub(kind: str, train: Interactions, test: Interactions, seed: int, epochs: int = 5) -> dict[str, Any]:
    """torch-rechub's MMOE / PLE network on the interacted train rows, tasks like and rating (it cannot
    mask a task on sampled negatives), trained by a plain loop (shuffled tensor batches of 256, Adam
    1e-3, its losses: BCE on its sigmoid output + MSE, averaged) for ``epochs`` epochs: its MTLTrainer's
    DataLoader of per-row dicts is too slow here for three seeds (see :func:`rechub_trainer_speed`)."""
    model, inputs, _ = _rechub_setup(kind, train, seed)
    x = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs(train).items()}
    y = torch.from_numpy(_rechub_labels(train))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for s in range(0, len(y), 256):
            idx = perm[s : s + 256]
            pred = model({k: v[idx] for k, v in x.items()})
            loss = (torch.nn.functional.binary_cross_entropy(pred[:, 0], y[idx, 0]) + torch.nn.functional.mse_loss(pred[:, 1], y[idx, 1])) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - t0
    xt = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs(test).items()}
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        pred = model(xt).numpy()
    infer = time.perf_counter() - t0
    return {
        "like_auc": roc_auc(test.ratings >= 4, pred[:, 0]), "rmse": _rmse(pred[:, 1], test.ratings),
        "train_sps": epochs * train.nnz / seconds, "infer_rps": len(pred) / infer, "epochs": epochs, "fit_s": seconds,
    }


def rechub_trainer_speed(train: Interactions, n_rows: int = 10_000) -> float:
    """Training rows per second of torch-rechub's own MTLTrainer (its DataLoader over per-row dicts),
    MMOE, one epoch on the first ``n_rows`` train rows (its fit also scores a validation loader: here 256 rows)."""
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    model, inputs, types = _rechub_setup("mmoe", train, 0)
    x = {k: v[:n_rows] for k, v in inputs(train).items()}
    y = _rechub_labels(train)[:n_rows]
    xv, yv = {k: v[:256] for k, v in x.items()}, y[:256]
    loader, vloader, _ = DataGenerator(x, y).generate_dataloader(x_val=xv, y_val=yv, x_test=xv, y_test=yv, batch_size=256)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = MTLTrainer(model, types, n_epoch=1, device="cpu", model_path=tmp)
        t0 = time.perf_counter()
        trainer.fit(loader, vloader)
        return n_rows / (time.perf_counter() - t0)


# -- tables ----------------------------------------------------------------------------------------


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "—"
    if len(values) == 1:  # one seed: no spread to show
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def _cell(rs: list[dict[str, Any]], key: str, fmt: str = "{:,.0f}") -> str:
    vals = [r[key] for r in rs if key in r]
    if not vals:
        return "—"
    return _mean_sd(vals) if fmt == "sd" else fmt.format(statistics.fmean(vals))


def table(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [
        "| model | like AUC (test rows) | rating RMSE | click AUC (vs sampled) | epochs | train samples/s | inference rows/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rs in runs.items():
        like = _cell(rs, "like_auc", "sd")
        if "ctcvr_auc" in rs[0]:
            like += f" (pCTCVR {_cell(rs, 'ctcvr_auc', '{:.4f}')})"
        epochs = "/".join(str(r["epochs"]) for r in rs if "epochs" in r) or "—"
        lines.append(
            f"| {name} | {like} | {_cell(rs, 'rmse', 'sd')} | {_cell(rs, 'click_auc', 'sd')} | {epochs} | "
            f"{_cell(rs, 'train_sps')} | {_cell(rs, 'infer_rps')} |"
        )
    return lines


def run_table(train: Interactions, test: Interactions, seeds: list[int], din_features: list[str] | None,
              mt_features: list[str] | None, rechub: str | None, models: list[str],
              rechub_epochs: int = 1, rechub_models: tuple[str, ...] = ("mmoe", "ple")) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    clicks = click_rows(train, test)
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        for name, r in fit_single(train, test, clicks, seed, din_features).items():
            runs.setdefault(name, []).append(r)
            print(f"seed {seed} {name:24s} {_fmt(r)}", flush=True)
        for name in models:
            make = MODELS[name]
            r = fit_multitask(make, train, test, clicks, seed, features=mt_features)
            runs.setdefault(name, []).append(r)
            print(f"seed {seed} {name:24s} {_fmt(r)}", flush=True)
        if rechub is None:
            for kind in rechub_models:
                name = f"torch-rechub {kind.upper()} (like + rating, interacted rows, plain loop)"
                r = fit_rechub(kind, train, test, seed, epochs=rechub_epochs)
                runs.setdefault(name, []).append(r)
                print(f"seed {seed} {name:24s} {_fmt(r)}", flush=True)
    notes = []
    din = runs["DIN (like)"]
    for name in models:
        diffs = [a["like_auc"] - b["like_auc"] for a, b in zip(runs[name], din)]
        sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        notes.append(
            f"{name} like AUC − single-task DIN, paired by seed: {statistics.fmean(diffs):+.4f} ± {sd:.4f} "
            f"(per seed {', '.join(f'{d:+.4f}' for d in diffs)})"
        )
    svd = statistics.fmean(r["rmse"] for r in runs["SVDpp (rating)"])
    for name in models:
        rm = statistics.fmean(r["rmse"] for r in runs[name])
        notes.append(f"{name} rating RMSE {rm:.4f} vs SVDpp {svd:.4f}: {'<=' if rm <= svd else '>'} SVDpp")
    if rechub is None:
        trainer_sps = rechub_trainer_speed(train)
        ours_sps = statistics.fmean(r["train_sps"] for r in runs["MMoE"])
        notes.append(
            f"torch-rechub's own MTLTrainer (DataLoader of per-row dicts), MMOE, 1 epoch of 10,000 rows: {trainer_sps:,.0f} samples/s; "
            f"our MMoE {ours_sps:,.0f} samples/s ({ours_sps / trainer_sps:.1f}x)"
        )
        for kind, ours in (("MMOE", "MMoE"), ("PLE", "PLE")):
            if ours not in runs or f"torch-rechub {kind} (like + rating, interacted rows, plain loop)" not in runs:
                continue
            theirs = runs[f"torch-rechub {kind} (like + rating, interacted rows, plain loop)"]
            auc = [a["like_auc"] / b["like_auc"] for a, b in zip(runs[ours], theirs)]
            sps = [a["train_sps"] / b["train_sps"] for a, b in zip(runs[ours], theirs)]
            notes.append(
                f"{ours} / torch-rechub {kind} (its network, plain loop): like AUC ratio {statistics.fmean(auc):.3f}, "
                f"training samples/s ratio {statistics.fmean(sps):.2f}x (per seed {', '.join(f'{v:.2f}' for v in sps)})"
            )
    for n in notes:
        print(n, flush=True)
    return runs, [f"- {n}" for n in notes]


def _fmt(r: dict[str, Any]) -> str:
    return " ".join(f"{k} {v:.4f}" if isinstance(v, float) and v < 100 else f"{k} {v:,.0f}" for k, v in r.items())


BY_CLICK: dict[str, Any] = dict(rank_by="click", monitor="click")
# Section 3's rankers: key (``--rankers``) -> (label, factory).
RANKERS: dict[str, tuple[str, Callable[[], Any]]] = {
    "mmoe": ("MMoE (pCTR x pLike)", lambda: MMoE(seed=42, **{**MT, "features": FEATURES})),
    "mmoe-click": ("MMoE (click head)", lambda: MMoE(seed=42, **{**MT, "features": FEATURES, **BY_CLICK})),
    "mmoe-din-click": (
        "MMoE, DIN bottom (click head)",
        lambda: MMoE(seed=42, **{**MT, "features": FEATURES, "bottom": "din", **BY_CLICK}),
    ),
    "deepfm": ("DeepFM (click logit)", lambda: DeepFM(seed=42, **COMMON, **BUDGET)),
    # the ranker of deep.md's two-stage table, as it is there (DIN's own epochs and early stopping)
    "din": ("DIN (click logit, deep.md's settings)", lambda: DIN(seed=42, **COMMON)),
}
DEFAULT_RANKERS = ["mmoe", "mmoe-click", "mmoe-din-click", "deepfm"]


def pipeline(n_candidates: int, flags: str = "", folds: tuple[int, ...] = (1, 5), keys: tuple[str, ...] = tuple(DEFAULT_RANKERS)) -> list[str]:
    data = ml100k()
    train, test = stratified_split(data, ratio=0.75, by="user", seed=42)
    ev = Evaluator(train, test, k=10, metrics=["ndcg", "precision", "recall"])
    t0 = time.perf_counter()
    # reg 300: EASE's default until reg="auto", with which multitask.md's Pipeline rows were measured
    base = ev.evaluate(EASE(reg=300.0).fit(train))
    base_s = time.perf_counter() - t0
    rows: list[tuple[str, str, Any, float, Any]] = [("EASE alone", "—", base, base_s, None)]
    rankers = [RANKERS[k] for k in keys]
    if list(keys) != DEFAULT_RANKERS:
        flags += f" --rankers {' '.join(keys)}"
    for n_folds in folds:
        for name, make in rankers:
            t0 = time.perf_counter()
            pipe = Pipeline(retriever=EASE(reg=300.0), ranker=make(), n_candidates=n_candidates, n_folds=n_folds).fit(train)
            fit_s = time.perf_counter() - t0
            res = ev.evaluate(pipe)
            rows.append((f"Pipeline(EASE, {name})", str(n_folds), res, fit_s, compare(res, base).loc["ndcg@10"]))
            print(rows[-1][0], n_folds, f"{res.summary['ndcg@10']:.4f}", flush=True)
    lines = [
        "## 3. Ranker of a Pipeline on ML-100K (stratified 75/25 by user, seed 42, k=10)",
        "",
        f"Command: `python -m benchmarks.multitask --skip-ml100k --skip-synthetic --candidates {n_candidates} --folds {' '.join(map(str, folds))}{flags}`",
        "",
        f"EASE (defaults) retrieves {n_candidates} candidates; the ranker is trained on the retriever's candidates, "
        "cross-fitted: with 1 fold, a copy of EASE fitted on 80% of each user's train rows proposes them and the other 20% "
        "label them (as the CLI registry); with 5 folds (Pipeline's default), 5 copies each fitted on 4 folds of the train "
        "rows, labelled by the fifth. Click = held-out interaction, like and rating from its rating. The MMoE rankers have "
        "the section-1 settings (tasks click + like + rating); they rank by pCTR x pLike, pLike = P(like | click) (the default "
        "combination, early stopping on the like AUC) or by the click head alone (`rank_by=\"click\"`, early stopping on "
        "the click AUC). DeepFM: the deep benchmark's DNN and the section-1 budget, ranking by its click logit.",
        "",
        "| model | folds | NDCG@10 | P@10 | R@10 | ΔNDCG@10 vs EASE [95% CI] | p (t-test) | p (Wilcoxon) | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, n_folds_s, res, secs, row in rows:
        s = res.summary
        delta = "— | — | —" if row is None else (
            f"{row['diff']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] | {row['p_ttest']:.2g} | {row['p_wilcoxon']:.2g}"
        )
        lines.append(
            f"| {name} | {n_folds_s} | {s['ndcg@10']:.4f} | {s['precision@10']:.4f} | {s['recall@10']:.4f} | {delta} | {secs:.0f} |"
        )
        print(lines[-1], flush=True)
    return lines + [""]


TEXT_MODEL = "MMoE (DIN bottom)"  # the best like AUC of section 1


def text_embeddings(seeds: list[int]) -> list[str]:
    """Section 5: the section-1 split, ``TEXT_MODEL`` with and without the BERT title embeddings as an item vector field."""
    from recsys.content import BertEncoder
    from recsys.models.deep.features import with_text_vectors

    data = ml100k()
    t0 = time.perf_counter()
    encoder = BertEncoder()
    data_t = with_text_vectors(data, encoder, text="{title}", column="title_emb", show_progress=False)
    enc_s = time.perf_counter() - t0
    train, test = temporal_split(data, by="user", test_fraction=0.2)
    train_t, test_t = temporal_split(data_t, by="user", test_fraction=0.2)
    assert np.array_equal(train.item_index, train_t.item_index) and np.array_equal(test.user_index, test_t.user_index)
    clicks = click_rows(train, test)
    load = os.getloadavg()[0]
    print(f"encoded {data.n_items} titles in {enc_s:.1f} s; machine load {load:.1f}", flush=True)
    variants = {
        "without (section-1 fields)": (train, test, FEATURES),
        "with BERT title embeddings": (train_t, test_t, [*FEATURES, "item.title_emb"]),
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    for seed in seeds:
        for name, (tr, te, feats) in variants.items():
            r = fit_multitask(MODELS[TEXT_MODEL], tr, te, clicks, seed, features=feats)
            runs[name].append(r)
            print(f"seed {seed} {name:28s} {_fmt(r)}", flush=True)
    return text_section(runs, seeds, load, enc_s, data.n_items)


def text_section(runs: dict[str, list[dict[str, Any]]], seeds: list[int], load: float, enc_s: float | None,
                 n_items: int, note: str = "") -> list[str]:
    """The lines of section 5 from its runs (variant -> one result per seed)."""
    a, b = runs["with BERT title embeddings"], runs["without (section-1 fields)"]
    notes = []
    for key, label in (("like_auc", "like AUC"), ("click_auc", "click AUC"), ("rmse", "rating RMSE")):
        diffs = [x[key] - y[key] for x, y in zip(a, b)]
        sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        notes.append(
            f"- {label}, with − without, paired by seed: {statistics.fmean(diffs):+.4f} ± {sd:.4f} "
            f"(per seed {', '.join(f'{d:+.4f}' for d in diffs)})"
        )
        print(notes[-1], flush=True)
    encoding = "" if enc_s is None else f" Encoding the {n_items:,} titles took {enc_s:.1f} s (the embedding cache may have held them)."
    return [
        "## 5. Item text embeddings as a vector field (ML-100K, the section-1 split)",
        "",
        f"Command: `python -m benchmarks.multitask --text-embeddings --seeds {' '.join(map(str, seeds))}`; "
        f"machine load at start: {load:.1f} (shared machine: compare speeds within this table only)",
        "",
        f"{TEXT_MODEL} with the section-1 settings and fields, with and without one more item field: the "
        "all-MiniLM-L6-v2 sentence embedding (384 dimensions, `BertEncoder()`, the bundled model, offline) of each "
        "movie's title (`with_text_vectors(data, BertEncoder(), text=\"{title}\", column=\"title_emb\")`, "
        "features `[..., \"item.title_emb\"]`: L2-normalised, projected to the 8-dimensional embedding by a learned "
        f"linear map, used for the target and the history items).{encoding} Seeds {', '.join(str(r) for r in seeds[: len(a)])}"
        + (" (1 seed only: the machine was shared and time was short)." if len(a) == 1 else ".")
        + note,
        "",
        *table(runs),
        "",
        *notes,
        "",
    ]


def write_section(key: str, lines: list[str]) -> None:
    """Replace (or add, before the hand-written notes) section ``key`` of the results file, keeping the others."""
    old = _sections(RESULTS.read_text()) if RESULTS.exists() else {}
    text = RESULTS.read_text().splitlines() if RESULTS.exists() else ["# Multi-task rankers: SharedBottom, MMoE, PLE, ESMM", ""]
    first = next((i for i, line in enumerate(text) if line.startswith("## ")), len(text))
    old[key] = lines
    numbered = sorted(k for k in old if k.isdigit())
    body = [line for k in numbered for line in old[k]] + [line for k in old if not k.isdigit() for line in old[k]]
    RESULTS.write_text("\n".join(text[:first] + body) + "\n")
    print(f"wrote section {key} of {RESULTS}", flush=True)


def write(one: list[str], two: list[str], three: list[str]) -> None:
    """The results file: sections 1-3, then any other section of the previous file (hand-written notes)."""
    head = ["# Multi-task rankers: SharedBottom, MMoE, PLE, ESMM", "", f"Machine: {machine()}", ""]
    old = _sections(RESULTS.read_text()) if RESULTS.exists() else {}
    notes = [line for key, lines in old.items() if key not in "123" for line in lines]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(head + one + two + three + notes) + "\n")
    print(f"wrote {RESULTS}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--synthetic-seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--skip-ml100k", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--folds", type=int, nargs="+", default=[1, 5], help="Pipeline's cross-fitting folds of section 3 (1: one holdout)")
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--rankers", nargs="+", choices=list(RANKERS), default=DEFAULT_RANKERS, help="section 3's rankers")
    ap.add_argument("--rechub-epochs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS, help="results file (default benchmarks/results/multitask.md)")
    ap.add_argument("--rechub-models", nargs="+", choices=["mmoe", "ple"], default=["mmoe", "ple"])
    ap.add_argument("--rechub-site", default=None, help="site-packages of a venv with torch-rechub (its own deps are the main venv's)")
    ap.add_argument("--text-embeddings", action="store_true", help="run only section 5 (BERT title embeddings as an item field)")
    ap.add_argument("--epochs", type=int, default=BUDGET["epochs"], help="at most this many epochs (every deep model of the run)")
    ap.add_argument("--patience", type=int, default=BUDGET["patience"], help="early-stopping patience in epochs")
    ap.add_argument("--no-refit", action="store_true", help="keep the early-stopped model (no refit on all of train)")
    args = ap.parse_args()
    default_budget = dict(BUDGET)
    BUDGET.update(epochs=args.epochs, patience=args.patience, refit=not args.no_refit)
    MT.update(BUDGET)
    budget_flags = "" if BUDGET == default_budget else (
        f" --epochs {args.epochs} --patience {args.patience}" + (" --no-refit" if args.no_refit else "")
    )
    refit = "no refit" if args.no_refit else "then refit on all of train for the chosen number of epochs"
    globals()["RESULTS"] = args.out  # write() and the previous sections read it
    torch.set_num_threads(THREADS)
    print(machine(), flush=True)
    if args.text_embeddings:
        write_section("5", text_embeddings(args.seeds))
        return
    old = _sections(RESULTS.read_text()) if RESULTS.exists() else {}
    rechub = rechub_available(args.rechub_site)
    settings = (
        f"Tasks click + like + rating; {NEG} sampled negative per interaction (re-drawn each epoch), at most {args.epochs} "
        f"epochs, patience {args.patience}, early stopping on the like AUC of each user's latest 10% of train, {refit}; "
        "embedding 8, experts / shared bottom (128, 64), "
        "towers (32,), MMoE 4 experts, PLE 2 levels of 2 shared + 1 per-task experts, Adam 1e-3, batch 256, "
        f"{THREADS} threads. Single-task DIN and DeepFM: the deep benchmark's settings (DNN (256, 128)) with the same "
        f"budget (at most {args.epochs} epochs, patience {args.patience}, {'no refit' if args.no_refit else 'refit'}); "
        f"DeepFM (click) in implicit mode with the same {NEG} negative per interaction. torch-rechub: "
        + (f"same run, its MMOE / PLE networks (same sizes) on the interacted rows (like + rating), {args.rechub_epochs} "
           "epoch(s) of a plain loop; its own MTLTrainer timed once."
           if rechub is None else f"not run: {rechub}.")
    )
    one = old.get("1", [])
    if not args.skip_ml100k:
        data = ml100k()
        train, test = temporal_split(data, by="user", test_fraction=0.2)
        load = os.getloadavg()[0]
        runs, notes = run_table(train, test, args.seeds, FEATURES, FEATURES, rechub, args.models, args.rechub_epochs, tuple(args.rechub_models))
        one = [
            "## 1. ML-100K (per-user temporal split 80/20, like = rating >= 4)",
            "",
            f"Command: `python -m benchmarks.multitask --skip-synthetic --skip-pipeline --seeds {' '.join(map(str, args.seeds))}{budget_flags}"
            + ("" if args.models == list(MODELS) else f" --models {' '.join(repr(m) for m in args.models)}")
            + (f" --rechub-site <venv site-packages> --rechub-models {' '.join(args.rechub_models)}`" if rechub is None else "`")
            + f"; machine load at start: {load:.1f} (shared machine: compare speeds within this table only)",
            "",
            f"{train.nnz:,} train / {test.nnz:,} test rows; seeds {', '.join(map(str, args.seeds))}. {settings}",
            "",
            *table(runs),
            "",
            *notes,
            "",
        ]
    two = old.get("2", [])
    if not args.skip_ml100k:
        write(one, two, old.get("3", []))  # each finished section is written at once
    if not args.skip_synthetic:
        data = synthetic(1_000, 600, 30_000, seed=1)
        train, test = temporal_split(data, by="user", test_fraction=0.2)
        load = os.getloadavg()[0]
        runs, notes = run_table(train, test, args.synthetic_seeds, None, None, "skipped", args.models)
        two = [
            "## 2. Synthetic data (recsys.datasets.synthetic(1000, 600, 30000, seed=1), per-user temporal split 80/20)",
            "",
            f"Command: `python -m benchmarks.multitask --skip-ml100k --skip-pipeline --synthetic-seeds "
            f"{' '.join(map(str, args.synthetic_seeds))}{budget_flags}"
            + ("" if args.models == list(MODELS) else f" --models {' '.join(repr(m) for m in args.models)}")
            + f"`; machine load at start: {load:.1f}",
            "",
            f"{train.nnz:,} train / {test.nnz:,} test rows; every non-text feature (user favourite genre, age; item "
            "category, genres); the section-1 settings (not tuned on these data); torch-rechub not run here.",
            "",
            *table(runs),
            "",
            *notes,
            "",
        ]
        write(one, two, old.get("3", []))
    three = old.get("3", []) if args.skip_pipeline else pipeline(args.candidates, budget_flags, tuple(args.folds), tuple(args.rankers))
    write(one, two, three)


if __name__ == "__main__":
    main()
