"""DeepFM and DIN training throughput from ML-100K to ML-20M size, in one process.

Both models train from streamed mini-batches: an epoch is a few int32 index
arrays (rows -> user, item, label, history run), and each batch's inputs are
gathered from them on the fly. This script checks that the training speed
does not fall with the size of the data: samples/s on ML-20M-sized synthetic
data against samples/s on ML-100K, measured in the same process, the two
sizes interleaved (the machine is shared: only ratios within a run compare).

Protocol (both sizes): label = rating >= 4 (no sampled negatives, as in
``benchmarks/deep.py``), no validation split (``validation_fraction=0``, so
no refit), the same architecture on both: user id, item id, one categorical
user field, one categorical item field and the item's genre list
(ML-100K: ``user.occupation``, ``item.genres:first``, ``item.genres``;
synthetic: ``user.favourite_genre``, ``item.category``, ``item.genres``),
embedding 8, DNN (256, 128), batch 256, Adam 1e-3, ``--threads`` torch
threads (default 2), DIN with its defaults (50 history items), the models'
default ``lazy_embeddings`` (dense Adam for ML-100K's 2,700-row embedding
table, LazyAdam for ML-20M size's 165,000 rows). Each measurement trains for ``--budget``
seconds (``time_budget``; ``epochs`` large enough that the budget ends
training): on ML-100K that is several epochs, on ML-20M size a part of the
first epoch. "samples/s" is rows per second of the training loop without each
epoch's start (its index arrays and permutation: "epoch start s", reported
apart, since a time-budgeted part of an epoch would otherwise carry a whole
epoch's start); "preparation" is the rest of ``fit`` (field encoding, history
store, the rows' fixed index arrays); one epoch is projected as epoch start +
rows per epoch / samples/s. Peak RSS is the process' RSS above its value
before the fit. ML-100K is measured twice: with the default (dense Adam) and
with ``lazy_embeddings=True``, the update ML-20M size gets by default, so the
ratios separate the cost of data size from the cost of the optimiser.

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.deep_scale``
(``--large ml20m`` (default) or ml1m / ml10m, ``--budget`` seconds per
measurement, ``--rounds``, ``--threads``, ``--models DeepFM DIN``, ``--out``).
Writes ``benchmarks/results/deep_scale.md``. ``--profile`` instead prints where DIN's
training step spends its time (torch profiler, lazy updates, 1 thread) on ML-100K and on
``synthetic(6_925, 26_744, 1_000_000, seed=1)`` (ML-20M's catalogue and rows per user at a
twentieth of its users, which is quick to build), with the distinct items per batch.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks._common import PeakMemory, header, movielens, rss_bytes, section, sizes, write_results
from recsys import Interactions
from recsys.datasets.synthetic import synthetic
from recsys.models import DIN, DeepFM

RESULTS = Path(__file__).parent / "results" / "deep_scale.md"
SIZES = sizes("ml1m", "ml10m", "ml20m")
FEATURES = {
    "ml100k": ["user.occupation", "item.genres:first", "item.genres"],
    "synthetic": ["user.favourite_genre", "item.category", "item.genres"],
}
COMMON: dict[str, Any] = dict(
    label_threshold=4, embedding_dim=8, hidden_units=(256, 128), learning_rate=1e-3, batch_size=256,
    validation_fraction=0.0, epochs=1000, show_progress=False, device="cpu", seed=0,
)
MODELS = {"DeepFM": DeepFM, "DIN": DIN}


def measure(cls: type, data: Interactions, features: list[str], budget: float, threads: int, lazy: bool | None) -> dict[str, float]:
    """Train ``cls`` on ``data`` for ``budget`` seconds: samples/s, preparation, peak RSS."""
    gc.collect()
    model = cls(features=features, time_budget=budget, num_threads=threads, lazy_embeddings=lazy, **COMMON)
    with PeakMemory() as pm:
        t0 = time.perf_counter()
        model.fit(data)
        wall = time.perf_counter() - t0
    log = model.train_log_
    starts = [e["prepare_seconds"] for e in log["epochs"]]
    rate = log["train_samples"] / (log["train_seconds"] - sum(starts))
    return {
        "rate": rate,
        "start_s": starts[0],
        "samples": float(log["train_samples"]),
        "train_s": float(log["train_seconds"]),
        "prep_s": wall - float(log["train_seconds"]),
        "epochs": float(len(log["epochs"])),
        "epoch_s": starts[0] + data.nnz / rate,
        "peak_mib": pm.above_start / 2**20,
        "lazy": float(log["lazy_embeddings"]),
    }


def profile_din(budget: float) -> None:
    """Print DIN's time per training step by operator, and the distinct items per batch, at both catalogue sizes."""
    from torch.profiler import ProfilerActivity, profile

    from recsys.models.deep.din import DINNet

    distinct: list[int] = []
    original = DINNet.item_reps

    def counting(self: Any, items: Any) -> Any:
        if items is not None and self.training:
            distinct.append(len(items))
        return original(self, items)

    per_step: dict[str, dict[str, float]] = {}
    DINNet.item_reps = counting  # type: ignore[method-assign]
    try:
        for label, data, feats in (
            ("ml100k", movielens("ml-100k").interactions(), FEATURES["ml100k"]),
            ("26,744 items", synthetic(6_925, 26_744, 1_000_000, seed=1), FEATURES["synthetic"]),
        ):
            distinct.clear()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                m = measure(DIN, data, feats, budget, 1, True)
            steps = m["samples"] / COMMON["batch_size"]
            per_step[label] = ops = {e.key: e.self_cpu_time_total / steps / 1000 for e in prof.key_averages()}
            print(
                f"{label}: {m['rate']:,.0f} samples/s under the profiler, {sum(ops.values()):.1f} ms of operators per step,"
                f" {statistics.fmean(distinct):,.0f} distinct items per batch (targets + histories)",
                flush=True,
            )
    finally:
        DINNet.item_reps = original  # type: ignore[method-assign]
    small, large = per_step.values()
    print("operator: ms per step (ml100k -> 26,744 items), largest growth first")
    for k in sorted(large, key=lambda k: small.get(k, 0.0) - large[k])[:15]:
        print(f"  {k}: {small.get(k, 0.0):.2f} -> {large[k]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", choices=sorted(SIZES), default="ml20m")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of training per measurement")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved (small, large) rounds per model")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of every fit")
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["DeepFM", "DIN"])
    ap.add_argument("--out", type=Path, default=RESULTS, help="results file ('-' to write none)")
    ap.add_argument("--profile", action="store_true", help="print DIN's time per step by operator at both catalogue sizes (writes nothing)")
    args = ap.parse_args()
    if args.profile:
        profile_din(args.budget)
        return
    lines = header(f"DeepFM and DIN training throughput: ML-100K against {args.large} size")
    small = movielens("ml-100k").interactions()
    n_users, n_items, n = SIZES[args.large]
    t0 = time.perf_counter()
    large = synthetic(n_users, n_items, n, seed=1)
    built = time.perf_counter() - t0
    print(f"data built; RSS {rss_bytes() / 2**30:.1f} GiB", flush=True)
    lines += section(
        f"Small: ML-100K, {small.n_users:,} users x {small.n_items:,} items, {small.nnz:,} rows. "
        f"Large: `synthetic({n_users:_}, {n_items:_}, {n:_}, seed=1)` (int64 second timestamps, so DIN's histories "
        f"are built as on MovieLens), {large.n_users:,} users x {large.n_items:,} items, {large.nnz:,} rows "
        f"(built in {built:.0f} s). Training budget {args.budget:.0f} s per measurement, {args.rounds} rounds, "
        f"{args.threads} torch thread(s), "
        "small and large interleaved per model. The machine is shared with other jobs: the ratios of one run "
        "are what compare.",
        "",
        "| model | data | round | embedding updates | samples/s | trained rows (epochs begun) | preparation s | "
        "epoch start s | one epoch s (projected) | peak RSS above start MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    )
    summary = []
    runs = (
        ("ml100k", small, FEATURES["ml100k"], None),
        ("ml100k lazy", small, FEATURES["ml100k"], True),
        (args.large, large, FEATURES["synthetic"], None),
    )
    for name in args.models:
        rates: dict[str, list[float]] = {label: [] for label, *_ in runs}
        for r in range(args.rounds):
            for label, data, feats, lazy in runs:
                print(f"  {name} {label} round {r + 1} ...", flush=True)
                m = measure(MODELS[name], data, feats, args.budget, args.threads, lazy)
                rates[label].append(m["rate"])
                row = (
                    f"| {name} | {label} | {r + 1} | {'lazy' if m['lazy'] else 'dense'} | {m['rate']:,.0f} | {m['samples']:,.0f} ({m['epochs']:.0f}) | "
                    f"{m['prep_s']:.1f} | {m['start_s']:.2f} | {m['epoch_s']:,.0f} | {m['peak_mib']:,.0f} |"
                )
                print(row, flush=True)
                lines.append(row)
        b = statistics.fmean(rates[args.large])
        for ref in ("ml100k", "ml100k lazy"):
            ratios = [y / x for x, y in zip(rates[ref], rates[args.large])]
            s = statistics.fmean(rates[ref])
            verdict = "met" if b / s >= 0.8 else "not met"
            summary.append(
                f"- {name}: {args.large} / {ref} samples/s = {b / s:.2f} (ratio of the mean rates; per round "
                f"{', '.join(f'{x:.2f}' for x in ratios)}; target >= 0.80: {verdict})"
            )
        summary.append(
            f"- {name}: one epoch of {large.nnz:,} rows at {b:,.0f} samples/s (this run, shared machine): "
            f"{large.nnz / b / 60:.1f} min (projected)"
        )
        print(summary[-1], flush=True)
    lines += ["", *section(*summary)]
    cmd = f"python -m benchmarks.deep_scale --large {args.large} --budget {args.budget:g} --rounds {args.rounds} --threads {args.threads}"
    if args.models != ["DeepFM", "DIN"]:
        cmd += " --models " + " ".join(args.models)
    lines += ["", f"Command: `RECSYS_DATA_DIR=<datasets dir> nice -n 5 {cmd}`"]
    if str(args.out) != "-":
        write_results(args.out, lines)


if __name__ == "__main__":
    main()
