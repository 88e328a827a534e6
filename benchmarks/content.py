"""Content-based recommenders (Doc2Vec, BERT) and Hybrid on ML-100K: top-N, item cold start, encoding speed.

1. Top-N (the neighbourhood benchmark's protocol: every rating an interaction
   of weight 1, ``stratified_split(ratio=0.75, by="user", seed=42)``, k=10,
   train items excluded, every metric from ``Evaluator``): ``ContentBased``
   with ``Doc2VecEncoder`` and with ``BertEncoder`` (the bundled
   all-MiniLM-L6-v2), ``Hybrid(cf=ItemKNN(), content=<the BERT model>)``,
   ``Popular`` and ``ItemKNN``. Every choice (item-text template, centring,
   profile weighting, Doc2Vec mode / size / epochs, the Hybrid's weight,
   normalisation and cold-item rule) is made on a validation split carved
   from train (``train_validation_split``, seed 1234, NDCG@10), never on
   test; the chosen models are then refitted on the whole train split.
2. Item cold start: 10% of the items (``numpy.random.default_rng(42)``) are
   held out entirely: all their interactions are the test set, their feature
   rows stay in the catalogue, every other interaction is train. Every user
   with a test interaction is scored over all items they have not seen
   (held-out and warm alike); recall@10 counts hits on the held-out items'
   test interactions (``Evaluator`` with that test set). The choices for
   this task are made the same way inside train (10% of train's warm items
   made pseudo-cold, three draws averaged, recall@10). A random ranking of
   the same candidates (seed 42) runs in the same process, and its expected
   value (mean of 10 / |candidates|) is printed beside it. CF models cannot
   score an item without interactions, so they score zero by construction.
3. Encoding throughput (items/s) on 2 CPU threads (``torch.set_num_threads(2)``,
   Doc2Vec ``workers`` 1 and 2) over the 1,682 item texts, against the
   libraries called directly (``SentenceTransformer.encode``, gensim
   ``Doc2Vec`` / ``infer_vector``) in the same run, and two fits of a BERT
   ``ContentBased`` on a fresh embedding cache (the second reads every
   embedding from disk).

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.content``
(``--quick``: smaller tuning grids and one timed run). Writes
``benchmarks/results/content.md``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import Timing, machine, movielens
from recsys import Interactions
from recsys._utils.topk import topk
from recsys.content import BertEncoder, Doc2VecEncoder, item_texts, tokenize
from recsys.evaluation import Evaluator, compare
from recsys.models import ContentBased, Hybrid, ItemKNN, Popular, Recommender
from recsys.split import stratified_split, train_validation_split

RESULTS = Path(__file__).parent / "results" / "content.md"
K = 10
THREADS = 2
TOPN_METRICS = ["precision", "recall", "ndcg", "coverage", "novelty", "diversity"]
DAY = 86_400  # ML-100K timestamps are unix seconds


def ml100k() -> tuple[Interactions, pd.DataFrame]:
    """Every rating an interaction of weight 1 (ratings and timestamps kept for profile weighting), with item features."""
    ml = movielens("ml-100k")
    return ml.interactions(), ml.items


def genre_features(items: pd.DataFrame) -> pd.DataFrame:
    """Multi-hot genres, for a second, content-side diversity (cosine of genre vectors)."""
    genres = sorted({g for gs in items["genres"] for g in gs})
    onehot = np.array([[g in set(gs) for g in genres] for gs in items["genres"]], dtype=np.float64)
    return pd.concat([items[["item"]].reset_index(drop=True), pd.DataFrame(onehot, columns=genres)], axis=1)


# -- tuning on validation splits carved from train --------------------------------------------


Split = tuple[Interactions, Interactions]


class Tuner:
    """Grid search on validation splits: ``metric``@10 averaged over the ``(fit, valid)`` pairs.

    Every configuration tried is logged; a configuration met again in a later
    stage is not refitted. Ties keep the earlier configuration, so grids list
    the default first.
    """

    def __init__(self, splits: list[Split], metric: str) -> None:
        self.splits = splits
        self.metric = metric
        self.evaluators = [Evaluator(f, v, k=K, metrics=[metric]) for f, v in splits]
        self.log: list[str] = []
        self._seen: dict[str, float] = {}

    def best(self, label: str, grid: list[dict[str, Any]], make: Callable[..., Recommender]) -> dict[str, Any]:
        scored = []
        for params in grid:
            bound = inspect.signature(make).bind(**params)
            bound.apply_defaults()
            key = f"{make.__name__} {sorted(bound.arguments.items(), key=str)}"
            if key not in self._seen:
                t0 = time.perf_counter()
                values = [
                    float(ev.evaluate(make(**params).fit(f)).summary[f"{self.metric}@{K}"])
                    for (f, _), ev in zip(self.splits, self.evaluators)
                ]
                self._seen[key] = float(np.mean(values))
                per = f" (draws {', '.join(f'{v:.4f}' for v in values)})" if len(values) > 1 else ""
                line = f"{label} {params}: {self.metric}@10 {self._seen[key]:.4f}{per} [{time.perf_counter() - t0:.1f}s]"
                self.log.append(line)
                print("  " + line, flush=True)
            scored.append((self._seen[key], params))
        best = max(scored, key=lambda vp: vp[0])
        self.log.append(f"-> {label}: {best[1]}")
        return best[1]


def bert_model(cache_dir: str, **params: Any) -> ContentBased:
    return ContentBased(encoder=BertEncoder(cache_dir=cache_dir), **params)


def d2v_model(
    text: str | None = None,
    center: bool = True,
    mode: str = "dbow",
    vector_size: int = 64,
    epochs: int = 40,
    values: str = "weight",
    half_life: float | None = None,
) -> ContentBased:
    enc = Doc2VecEncoder(mode=mode, vector_size=vector_size, epochs=epochs)  # type: ignore[arg-type]
    return ContentBased(encoder=enc, text=text, center=center, values=values, half_life=half_life)  # type: ignore[arg-type]


def tune(splits: list[Split], metric: str, cache_dir: str, quick: bool) -> dict[str, Any]:
    """Staged grid search: item text and centring, then Doc2Vec's encoder, then profile weighting, then the Hybrid."""
    tuner = Tuner(splits, metric)
    # the default description ("Toy Story (1995). year: 1995. genres: ...") and title + genres. A genres-only
    # text is left out: items sharing a genre set get identical vectors, so its rankings are decided by tie-breaking.
    texts = [{"text": t, "center": c} for c in (True, False) for t in (None, "{title}. {genres}")]
    weightings: list[dict[str, Any]] = [
        {"values": "weight", "half_life": None},
        {"values": "rating", "half_life": None},
        {"values": "centered", "half_life": None},
        {"values": "weight", "half_life": 30.0 * DAY},
    ]
    if quick:
        weightings = weightings[:2]

    def bert(text: str | None = None, center: bool = True, values: str = "weight", half_life: float | None = None) -> Recommender:
        return bert_model(cache_dir, text=text, center=center, values=values, half_life=half_life)

    print(f"Tuning BERT ContentBased on validation {metric}@10", flush=True)
    b = tuner.best("BERT text", texts, bert)
    b = tuner.best("BERT weighting", [{**b, **w} for w in weightings], bert)

    print(f"Tuning Doc2Vec ContentBased on validation {metric}@10", flush=True)
    d = tuner.best("Doc2Vec text", texts, d2v_model)
    encoders = [("dbow", 64, 40), ("dbow", 128, 100)] + ([] if quick else [("dm", 64, 40), ("dm", 128, 100)])
    d = tuner.best("Doc2Vec encoder", [{**d, "mode": m, "vector_size": v, "epochs": e} for m, v, e in encoders], d2v_model)
    d = tuner.best("Doc2Vec weighting", [{**d, **w} for w in weightings], d2v_model)

    def hybrid(weight: float = 0.5, normalise: str = "minmax", cold: str = "content") -> Recommender:
        return Hybrid(cf=ItemKNN(), content=bert(**b), weight=weight, normalise=normalise, cold=cold)  # type: ignore[arg-type]

    print(f"Tuning Hybrid(ItemKNN + BERT ContentBased) on validation {metric}@10", flush=True)
    weights = [1.0, 0.9, 0.7, 0.5] if quick else [1.0, 0.99, 0.97, 0.95, 0.9, 0.8, 0.7, 0.5, 0.0]
    norms = ["minmax", "zscore"] if quick else ["minmax", "zscore", "rank"]
    grid = [{"weight": w, "normalise": n, "cold": c} for c in ("blend", "content") for n in norms for w in weights]
    h = tuner.best("Hybrid", grid, hybrid)
    return {"bert": b, "d2v": d, "hybrid": h, "log": tuner.log}


def hybrid_model(cache_dir: str, bert: dict[str, Any], hybrid: dict[str, Any]) -> Hybrid:
    return Hybrid(cf=ItemKNN(), content=bert_model(cache_dir, **bert), **hybrid)


def fmt_row(name: str, s: dict[str, float], extra: str) -> str:
    return (
        f"| {name} | {s['precision@10']:.4f} | {s['recall@10']:.4f} | {s['ndcg@10']:.4f} | {s['coverage@10']:.4f} | "
        f"{s['novelty@10']:.2f} | {s['diversity@10']:.4f} | {extra} |"
    )


# -- 1. top-N -----------------------------------------------------------------------------


def topn_split(data: Interactions) -> Split:
    return stratified_split(data, ratio=0.75, by="user", seed=42)


def topn_tune(data: Interactions, cache_dir: str, quick: bool) -> dict[str, Any]:
    train, _ = topn_split(data)
    return tune([train_validation_split(train, ratio=0.75, by="user", seed=1234)], "ndcg", cache_dir, quick)


def topn(
    data: Interactions, items: pd.DataFrame, cache_dir: str, top: dict[str, Any], cold: dict[str, Any]
) -> tuple[list[str], dict[str, float]]:
    train, test = topn_split(data)
    b, d = top["bert"], top["d2v"]
    names = {
        "pop": "Popular()",
        "knn": "ItemKNN()",
        "d2v": f"ContentBased(Doc2Vec) {d}",
        "d2v_raw": "ContentBased(Doc2Vec) same, center=False",
        "bert": f"ContentBased(BERT MiniLM) {b}",
        "bert_raw": "ContentBased(BERT MiniLM) same, center=False",
        "hyb": f"Hybrid(ItemKNN + BERT) {top['hybrid']}",
        "hyb_cold": f"Hybrid(ItemKNN + BERT) as tuned for cold start {cold['hybrid']}",
    }
    made: dict[str, Recommender] = {
        "pop": Popular(),
        "knn": ItemKNN(),
        "d2v": d2v_model(**d),
        "d2v_raw": d2v_model(**{**d, "center": False}),
        "bert": bert_model(cache_dir, **b),
        "bert_raw": bert_model(cache_dir, **{**b, "center": False}),
        "hyb": hybrid_model(cache_dir, b, top["hybrid"]),
        "hyb_cold": hybrid_model(cache_dir, cold["bert"], cold["hybrid"]),
    }
    models = {names[key]: made[key] for key in names}
    hybrid_top = names["hyb"]
    evaluator = Evaluator(train, test, k=K, metrics=TOPN_METRICS)
    by_genre = Evaluator(train, test, k=K, metrics=["diversity"], item_features=genre_features(items))
    lines = [
        "| model (validated parameters) | P@10 | R@10 | NDCG@10 | coverage | novelty | diversity | genre diversity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    results = {}
    for name, model in models.items():
        model.fit(train)
        res = evaluator.evaluate(model)
        results[name] = res
        gd = by_genre.evaluate(model).summary["diversity@10"]
        lines.append(fmt_row(name, res.summary, f"{gd:.4f}"))
        print(lines[-1], flush=True)
    diff = compare(results[hybrid_top], results["ItemKNN()"]).loc["ndcg@10"]
    note = (
        f"Hybrid (top-N validated) − ItemKNN NDCG@10: {diff['diff']:+.4f} (95% CI {diff['ci_low']:+.4f} .. "
        f"{diff['ci_high']:+.4f}, paired t-test p = {diff['p_ttest']:.3g})."
    )
    print(note, flush=True)
    facts = {key: float(results[name].summary[f"ndcg@{K}"]) for key, name in names.items()}
    facts.update({"cov_" + key: float(results[name].summary[f"coverage@{K}"]) for key, name in names.items()})
    facts.update({"hyb_diff": float(diff["diff"]), "hyb_p": float(diff["p_ttest"])})
    log = ["", "Validation runs (NDCG@10 on the 75/25 split of train, seed 1234; a configuration scored in an earlier stage is not repeated):", "", "```", *top["log"], "```"]
    return lines + ["", note] + log, facts


# -- 2. item cold start -----------------------------------------------------------------------


def hold_out_items(data: Interactions, items: np.ndarray, fraction: float, seed: int) -> tuple[Split, np.ndarray]:
    """All interactions of ``fraction`` of ``items`` (drawn with ``seed``) form the test side."""
    held = np.sort(np.random.default_rng(seed).choice(items, size=round(fraction * len(items)), replace=False))
    in_test = np.isin(data.item_index, held)
    return (data.take(np.flatnonzero(~in_test)), data.take(np.flatnonzero(in_test))), held


def cold_split(data: Interactions) -> tuple[Interactions, Interactions, np.ndarray]:
    (train, test), held = hold_out_items(data, np.arange(data.n_items), 0.1, 42)
    return train, test, held


def cold_tune(data: Interactions, cache_dir: str, quick: bool) -> dict[str, Any]:
    """The same task inside train: 10% of train's warm items become pseudo-cold (three draws, averaged)."""
    train, _, _ = cold_split(data)
    warm = np.flatnonzero(train.item_counts > 0)
    seeds = (1234,) if quick else (1234, 1235, 1236)
    return tune([hold_out_items(train, warm, 0.1, s)[0] for s in seeds], "recall", cache_dir, quick)


def random_ranking(train: Interactions, users: np.ndarray, seed: int = 42) -> tuple[pd.DataFrame, float]:
    """Top-10 of a uniformly random order of each user's unseen items, and the expected recall (mean 10/|C_u|)."""
    rng = np.random.default_rng(seed)
    seen = train.matrix("csr", "binary")[users]
    s = rng.random((len(users), train.n_items)).astype(np.float32)
    s[np.repeat(np.arange(len(users)), np.diff(seen.indptr)), seen.indices] = -np.inf
    ids, _ = topk(s, K)
    n_cand = train.n_items - np.diff(seen.indptr)
    frame = pd.DataFrame(
        {
            "user": np.repeat(train.users.ids[users], K),
            "item": train.items.ids[ids.ravel()],
            "rank": np.tile(np.arange(1, K + 1), len(users)),
        }
    )
    return frame, float(np.mean(np.minimum(K, n_cand) / n_cand))


def cold_start(
    data: Interactions, cache_dir: str, top: dict[str, Any], cold: dict[str, Any]
) -> tuple[list[str], dict[str, float]]:
    train, test, held = cold_split(data)
    users = np.unique(test.user_index)
    evaluator = Evaluator(train, test, k=K, metrics=["recall", "precision", "ndcg"])
    head = (
        f"{len(held)} held-out items ({test.nnz:,} test interactions, {len(users)} users); "
        f"train {train.nnz:,} interactions on {int((train.item_counts > 0).sum())} items; "
        f"catalogue {train.n_items} items (held-out items have features, no interactions)."
    )
    print(head, flush=True)
    b, d = cold["bert"], cold["d2v"]
    bert_name = f"ContentBased(BERT MiniLM) {b}"
    models: dict[str, Recommender] = {
        bert_name: bert_model(cache_dir, **b),
        "ContentBased(BERT MiniLM), defaults": bert_model(cache_dir),
        "ContentBased(BERT MiniLM), defaults but center=False": bert_model(cache_dir, center=False),
        f"ContentBased(Doc2Vec) {d}": d2v_model(**d),
        f"Hybrid(ItemKNN + BERT) {cold['hybrid']}": hybrid_model(cache_dir, b, cold["hybrid"]),
        f"Hybrid(ItemKNN + BERT) as tuned for top-N {top['hybrid']}": hybrid_model(cache_dir, top["bert"], top["hybrid"]),
        "ItemKNN()": ItemKNN(),
        "Popular()": Popular(),
    }
    frame, expected = random_ranking(train, users)
    rnd = evaluator.evaluate(frame)
    r_rand = rnd.summary["recall@10"]
    lines = [head, "", "| model | recall@10 (95% CI) | P@10 | NDCG@10 | recall / random | p vs random |", "|---|---|---|---|---|---|"]
    print("\n".join(lines[2:]), flush=True)
    rows = []
    for name, model in models.items():
        rows.append((name, evaluator.evaluate(model.fit(train))))
    rows.append(("random ranking of the same candidates (seed 42)", rnd))
    for name, res in rows:
        s = res.summary
        lo, hi = res.ci["recall@10"] or (np.nan, np.nan)
        p = compare(res, rnd).loc["recall@10", "p_ttest"] if res is not rnd else np.nan
        lines.append(
            f"| {name} | {s['recall@10']:.4f} ({lo:.4f} .. {hi:.4f}) | {s['precision@10']:.4f} | {s['ndcg@10']:.4f} | "
            f"{s['recall@10'] / r_rand:.2f}x | {p:.2g} |"
        )
        print(lines[-1], flush=True)
    tail = f"Expected recall@10 of a random ranking (mean over users of 10 / |unseen items|): {expected:.4f}."
    bert_ratio = rows[0][1].summary["recall@10"] / r_rand
    verdict = f"Target BERT ContentBased >= 3x random: {bert_ratio:.2f}x ({'met' if bert_ratio >= 3 else 'MISSED'})."
    print(tail + "\n" + verdict, flush=True)
    ratios = [res.summary["recall@10"] / r_rand for _, res in rows]
    facts = {"bert": ratios[0], "bert_raw": ratios[2], "d2v": ratios[3], "hyb": ratios[4], "random": r_rand}
    return lines + [
        "",
        tail,
        verdict,
        "",
        "Validation runs (recall@10 on 10% of train's warm items held out as pseudo-cold; mean of the draws "
        "with seeds 1234, 1235, 1236; a configuration scored in an earlier stage is not repeated):",
        "",
        "```",
        *cold["log"],
        "```",
    ], facts


# -- 3. encoding throughput and the embedding cache ------------------------------------------------


def interleaved(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 0) -> dict[str, tuple[Timing, float]]:
    """Time each function ``runs`` times, alternating between them (shared-machine load hits both alike).

    Returns the wall-clock timings and the least process CPU seconds (all threads) of a run.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall = {name: Timing() for name in fns}
    cpu = {name: np.inf for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].runs.append(time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    return {name: (wall[name], cpu[name]) for name in fns}


def throughput(data: Interactions, train: Interactions, runs: int) -> list[str]:
    import torch
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument
    from sentence_transformers import SentenceTransformer

    from recsys.content._bert import _bundled_model_dir

    texts = item_texts(data)
    n = len(texts)
    lines = [
        f"{n:,} ML-100K item texts (default description, mean {np.mean([len(t) for t in texts]):.0f} characters); "
        f"torch threads {torch.get_num_threads()}; {runs} timed run(s) each, recsys and the library called directly "
        "alternating; items/s from the best wall-clock run, items/CPU-s from the least process CPU time of a run "
        "(all threads; less sensitive to other jobs on the shared cores).",
        "",
        "| encoder | work | recsys s | items/s | items/CPU-s | library called directly s | items/s | items/CPU-s "
        "| recsys / direct (time) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)

    def row(name: str, work: str, t: dict[str, tuple[Timing, float]]) -> None:
        (ours, our_cpu), (theirs, their_cpu) = t["ours"], t["theirs"]
        lines.append(
            f"| {name} | {work} | {ours} | {n / ours.best:,.0f} | {n / our_cpu:,.0f} | {theirs} | "
            f"{n / theirs.best:,.0f} | {n / their_cpu:,.0f} | {ours.best / theirs.best:.2f} |"
        )
        print(lines[-1], flush=True)

    enc = BertEncoder(cache=False, device="cpu")
    st = SentenceTransformer(str(_bundled_model_dir()), device="cpu", local_files_only=True)
    enc.encode(texts[:64])  # loads the model
    st.encode(texts[:64], batch_size=64)
    t = interleaved(
        {
            "ours": lambda: enc.encode(texts),
            "theirs": lambda: st.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True),
        },
        runs,
    )
    row("BertEncoder (all-MiniLM-L6-v2, batch 64, cache off)", "encode", t)

    docs = [TaggedDocument(tokenize(t), [i]) for i, t in enumerate(dict.fromkeys(texts))]
    for workers in (1, THREADS):
        d2v = Doc2VecEncoder(workers=workers)
        t = interleaved(
            {
                "ours": lambda d2v=d2v: d2v.fit(texts).encode(texts),  # type: ignore[misc]
                "theirs": lambda w=workers: Doc2Vec(
                    documents=docs, dm=0, vector_size=64, window=5, min_count=1, epochs=40, negative=5, hs=0,
                    dbow_words=1, sample=0.0, alpha=0.025, min_alpha=0.0001, seed=42, workers=w,
                ),  # fmt: skip
            },
            runs,
            warmup=1,
        )
        row(f"Doc2VecEncoder (PV-DBOW, 64 dims, 40 epochs, workers={workers})", "fit + encode the catalogue", t)

    d2v = Doc2VecEncoder().fit(texts)
    new = item_texts(data, "{title}. {genres}")  # not in the training corpus: inferred
    model = d2v._model
    words = [tokenize(t) for t in new]
    t = interleaved({"ours": lambda: d2v.encode(new), "theirs": lambda: [model.infer_vector(w) for w in words]}, runs)
    row("Doc2VecEncoder (same model; gensim infer_vector)", "infer unseen texts", t)

    fresh = tempfile.mkdtemp(prefix="recsys-bench-cache-")
    try:
        times, stats = [], []
        for _ in range(2):
            m = ContentBased(encoder=BertEncoder(cache_dir=fresh))
            t0 = time.perf_counter()
            m.fit(train)
            times.append(time.perf_counter() - t0)
            stats.append(dict(m._encoder.last_stats))
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    cache = [
        "",
        "Two fits of `ContentBased(encoder=BertEncoder(cache_dir=<fresh>))` on the cold-start train split "
        "(a new encoder each time, as a new process would have):",
        "",
        "| fit | seconds | texts encoded by the model | cache hits |",
        "|---|---|---|---|",
        f"| first (empty cache) | {times[0]:.2f} | {stats[0]['encoded']} | {stats[0]['cache_hits']} |",
        f"| second | {times[1]:.2f} | {stats[1]['encoded']} | {stats[1]['cache_hits']} |",
        "",
        f"Second fit {times[0] / times[1]:.1f}x faster than the first.",
    ]
    print("\n".join(cache), flush=True)
    return lines + cache


def reading(top: dict[str, float], cold: dict[str, float], top_params: dict[str, Any], cold_params: dict[str, Any], load: float) -> list[str]:
    """The findings, with this run's numbers."""
    h_top, h_cold = top_params["hybrid"], cold_params["hybrid"]
    return [
        "## Reading the results",
        "",
        f"- Item cold start: BERT `ContentBased` reaches {cold['bert']:.1f}x the recall@10 of a random ranking of the "
        f"same candidates (target 3x; Doc2Vec {cold['d2v']:.1f}x). CF models (ItemKNN, Popular) score 0 there by "
        "construction: they never rank an item without interactions.",
        f"- Centring the embeddings (`ContentBased(center=True)`, the default since this benchmark) is the largest "
        f"single gain: top-N NDCG@10 of BERT {top['bert']:.4f} vs {top['bert_raw']:.4f} uncentred, Doc2Vec "
        f"{top['d2v']:.4f} vs {top['d2v_raw']:.4f}; cold-start recall of BERT {cold['bert']:.1f}x vs "
        f"{cold['bert_raw']:.1f}x random uncentred. all-MiniLM-L6-v2 gives most pairs of movie descriptions a high "
        "cosine, so an uncentred profile mostly ranks items by how typical they are.",
        f"- On warm top-N, content alone stays far below CF (BERT NDCG@10 {top['bert']:.4f}, Popular {top['pop']:.4f}, "
        f"ItemKNN {top['knn']:.4f}): ML-100K texts are a title, a year and one to six genres (no plots; this "
        "release has no tags), and what people watch here is driven by popularity and co-watching. Content models "
        f"spread recommendations over far more of the catalogue (coverage {top['cov_bert']:.2f} for BERT vs "
        f"{top['cov_knn']:.2f} for ItemKNN) and recommend less popular items (novelty).",
        f"- `Hybrid` tuned on top-N validation ({h_top}) adds {top['hyb_diff']:+.4f} NDCG@10 over ItemKNN "
        f"(paired t-test p = {top['hyb_p']:.2g}): a small but consistent gain from the content side.",
        f"- The Hybrid's cold-item rule is a trade-off, and each task's validation picks a different one. "
        "`cold='blend'` gives a cold item the row's lowest CF score, so it ranks below any warm item with the same "
        "content score and in practice warm items fill the top 10 (0 cold-start recall); `cold='content'` scores a cold item by its normalised content score alone, which promotes new "
        f"items: tuned for cold start ({h_cold}) it reaches {cold['hyb']:.1f}x random there, but top-N NDCG@10 "
        f"drops to {top['hyb_cold']:.4f}. Unlike `ContentBased`, the Hybrid knows which items are cold, which is "
        "what lets it promote them.",
        "- Profile weighting: rating-centred weights (`values='centered'`) hurt in both tasks, because this "
        "protocol counts every rating, low ones included, as an interaction to predict; raw ratings as weights "
        "help top-N a little; a 30-day recency half-life did not help (slightly lower on both validations; with a "
        "random split, recency carries little signal).",
        f"- Speed: the 2 cores were shared with other jobs (load average {load:.1f} at the start), so wall-clock "
        "items/s are lower bounds; the ratio to the library called directly, alternating in the same run, and "
        "items per CPU-second are the comparable figures. The embedding cache turns a second BERT fit into a "
        "disk read.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small tuning grids, one timed run")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(THREADS)
    started = time.perf_counter()
    load = os.getloadavg()[0]
    head = [
        "# Content-based recommenders (Doc2Vec, BERT) and Hybrid on ML-100K",
        "",
        f"Machine: {machine()}; load average {load:.1f} at the start (the 2 cores are shared).",
        "",
    ]
    print(head[2], flush=True)
    data, items = ml100k()
    cache_dir = tempfile.mkdtemp(prefix="recsys-bench-emb-")
    try:
        print("\n## Tuning for top-N (validation split of the top-N train)", flush=True)
        top_params = topn_tune(data, cache_dir, args.quick)
        print("\n## Tuning for item cold start (pseudo-cold items inside the cold-start train)", flush=True)
        cold_params = cold_tune(data, cache_dir, args.quick)
        print("\n## 1. Top-N", flush=True)
        top, top_facts = topn(data, items, cache_dir, top_params, cold_params)
        print("\n## 2. Item cold start", flush=True)
        cold, cold_facts = cold_start(data, cache_dir, top_params, cold_params)
        print("\n## 3. Encoding throughput and the embedding cache", flush=True)
        speed = throughput(data, cold_split(data)[0], runs=1 if args.quick else 3)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    total = time.perf_counter() - started
    notes = reading(top_facts, cold_facts, top_params, cold_params, load)
    print("\n".join(notes), flush=True)
    lines = head + [
        *notes,
        "",
        "## 1. Top-N (stratified 75/25 by user, seed 42, k=10; every rating an interaction)",
        "",
        "Diversity is the Evaluator default (1 − mean co-occurrence cosine over train users); genre diversity uses "
        "the cosine of multi-hot genre vectors (Evaluator `item_features`). All parameters in brackets were chosen "
        "on validation (a 75/25 split of train, seed 1234), then the model was refitted on all of train; the "
        "`center=False` rows change only that parameter, and the last row is the Hybrid tuned for section 2.",
        "",
        *top,
        "",
        "## 2. Item cold start (10% of items held out entirely, seed 42)",
        "",
        *cold,
        "",
        "## 3. Encoding throughput on 2 CPU threads and the embedding cache",
        "",
        *speed,
        "",
        f"Total run time {total / 60:.1f} min{' (--quick)' if args.quick else ''}.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
