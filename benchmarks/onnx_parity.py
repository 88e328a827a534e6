"""ONNX export of DeepFM, DIN, SASRec and GRU4Rec on ML-100K: parity of the onnxruntime graph with torch, and speed.

The CTR protocol of ``benchmarks/deep.py`` (label = rating >= 4, per-user
temporal split 80/20, the DIN benchmark's features), trained for a couple of
epochs only: this measures the export, not the models. For every test row it
prints ``max |onnx - torch|`` of the logits against the float32 torch network
(what was exported) and against the public float64 inference path
(``predict_proba``'s logits); then inference rows/s on 2 threads: onnxruntime
on a prepared feed, onnxruntime with the feed built from the model's history
store, the float32 torch network as trained (DIN: its packed history store), and ``predict_proba``
(external ids, its own history lookup), with the ratios of the same run.
Timed runs alternate between the contenders (median of ``--runs``).

SASRec and GRU4Rec: the leave-one-out protocol of ``benchmarks/sequential.py``
(users with at least 5 ratings, ties in a user's timestamps broken at random,
the last item held out) with that benchmark's architecture (max_len 50, dim 64,
2 layers), trained for ``--epochs`` epochs. The graph scores the whole catalogue
for every user's leave-one-out history (all items before the held-out one, in
time order, right-aligned; the graph keeps the newest 50). Parity: ``max
|onnx - torch|`` over all scores against the float32 torch network fed the same
histories through the model's own truncation, and against the scores
``recommend`` ranks by (the float64 fold-in of the same histories). Speed: users
scored per second on 2 threads, onnxruntime (prepared feed, and with the
right-aligned feed built from the sequences) against the float32 torch network
(padding + network + scores) and the float64 fold-in path of
``recommend_history``, and onnxruntime against torch on 1 thread each, with the
ratios of the same run (to the 2-thread torch network).

Run: ``RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.onnx_parity [--epochs 2] [--runs 5]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import machine
from benchmarks.deep import COMMON, THREADS, ml100k
from benchmarks.sequential import load
from recsys.models import DIN, DeepFM, GRU4Rec, SASRec
from recsys.models.deep import _onnx
from recsys.models.deep._sequential import padded, user_sequences
from recsys.models.deep.trainer import torch_threads
from recsys.split import leave_last_n, temporal_split


def _median_times(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    for fn in fns.values():  # warm-up (the float64 twin, onnxruntime's first run)
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def run(cls: type, epochs: int, runs: int, out: Path) -> list[str]:
    data = ml100k()
    train, test = temporal_split(data, by="user", test_fraction=0.2)
    model = cls(label_threshold=4, seed=42, epochs=epochs, **COMMON).fit(train)
    name = cls.__name__
    graph, _ = model.export_onnx(out / f"{name}.onnx")
    users, items = test.user_index.astype(np.int64), test.item_index.astype(np.int64)
    ts = test.timestamps if model.uses_history else None

    def feed_of() -> dict[str, np.ndarray]:
        feed = {"user": users, "item": items}
        if model.uses_history:
            feed["history"], feed["history_length"] = _onnx.padded_history(model, users, ts)
        return feed

    feed = feed_of()
    sess = _onnx.session(graph, threads=THREADS)
    got = sess.run(["logit"], feed)[0]
    f64 = model._logits(users, items, ts)
    ext_u, ext_i = train.users.to_ids(test.user_index), train.items.to_ids(test.item_index)
    proba = model.predict_proba(ext_u, ext_i, ts)
    net = model.module_  # the float32 network as trained (DIN: packed histories in its own store)
    args = {"user": torch.from_numpy(users), "item": torch.from_numpy(items)}

    def torch32() -> np.ndarray:
        with torch_threads(THREADS), torch.inference_mode():
            if model.uses_history:
                end, length = model._history(users, ts)
                args["end"], args["length"] = torch.from_numpy(end), torch.from_numpy(length)
            return np.asarray(net(**args)[0].numpy())

    f32 = torch32()

    t = _median_times(
        {
            "onnxruntime": lambda: sess.run(["logit"], feed),
            "onnxruntime + feed": lambda: sess.run(["logit"], feed_of()),
            "torch float32 network (+ history lookup)": torch32,
            "predict_proba (float64)": lambda: model.predict_proba(ext_u, ext_i, ts),
        },
        runs,
    )
    n = len(users)
    base = t["predict_proba (float64)"]
    lines = [
        f"### {name} ({epochs} epochs, {n:,} test rows, graph {graph.stat().st_size / 1e6:.2f} MB)",
        "",
        f"max |onnx - torch float32 network| = {np.max(np.abs(got - f32)):.3g} (logits; max |logit| {np.max(np.abs(f32)):.2f})",
        f"max |onnx - predict_proba's float64 logits| = {np.max(np.abs(got - f64)):.3g}; "
        f"max |sigmoid(onnx) - predict_proba| = {np.max(np.abs(1 / (1 + np.exp(-got.astype(np.float64))) - proba)):.3g}",
        "",
        f"| inference, {THREADS} threads, all test rows in one call | rows/s | vs predict_proba |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {n / v:,.0f} | {base / v:.2f}x |" for k, v in t.items()]
    return lines + [""]


def run_sequential(cls: type, epochs: int, runs: int, out: Path) -> list[str]:
    rest, test = leave_last_n(load("ml-100k"), 1)
    model = cls(
        max_len=50, dim=64, n_layers=2, learning_rate=2e-3, batch_size=64, epochs=epochs, validation_users=0,
        seed=42, num_threads=THREADS, show_progress=False, device="cpu",
    ).fit(rest)  # fmt: skip
    name = cls.__name__
    graph, _ = model.export_onnx(out / f"{name}.onnx")
    indptr, items = user_sequences(rest, name)  # every user's leave-one-out history, in time order
    lengths = np.diff(indptr)
    users = np.arange(rest.n_users)

    def feed_of() -> dict[str, np.ndarray]:  # right-aligned, as long as the longest history: the graph truncates
        width = int(lengths.max())
        cols = np.arange(width)[None, :] - (width - lengths)[:, None]
        hist = np.where(cols >= 0, items[np.clip(indptr[:-1, None] + cols, 0, len(items) - 1)], 0)
        return {"history": hist.astype(np.int64), "history_length": lengths.astype(np.int64)}

    feed = feed_of()
    sess = _onnx.session(graph, threads=THREADS)
    got = sess.run(["scores"], feed)[0]
    net = model.module_  # the float32 network as trained

    def torch32(threads: int = THREADS) -> np.ndarray:
        with torch_threads(threads), torch.inference_mode():
            seq = torch.from_numpy(padded(items, indptr[1:], np.minimum(lengths, model.max_len), model.max_len))
            return np.asarray((net.last(seq) @ net.item_table()[1:].T).numpy())

    def fold_in() -> np.ndarray:  # recommend_history's float64 encoding, then the scores
        return model._encode(items, indptr[1:], np.minimum(lengths, model.max_len)) @ model._item_vectors().T

    f32 = torch32()
    f64 = model._score(users.astype(np.int32), None)  # what recommend ranks by: the fitted user vectors
    one = _onnx.session(graph, threads=1)
    t = _median_times(
        {
            "onnxruntime": lambda: sess.run(["scores"], feed),
            "onnxruntime + feed": lambda: sess.run(["scores"], feed_of()),
            "torch float32 network": torch32,
            "float64 fold-in (recommend_history's path)": fold_in,
            # one thread each: torch's recurrence waits at a thread barrier per step, which a loaded machine stalls
            "onnxruntime, 1 thread": lambda: one.run(["scores"], feed),
            "torch float32 network, 1 thread": lambda: torch32(1),
        },
        runs,
    )
    n = len(users)
    base = t["torch float32 network"]
    longer = int((lengths > model.max_len).sum())
    lines = [
        f"### {name} ({epochs} epochs, {n:,} leave-one-out histories ({longer} longer than max_len {model.max_len}), "
        f"{rest.n_items:,} items, graph {graph.stat().st_size / 1e6:.2f} MB)",
        "",
        f"max |onnx - torch float32 network| = {np.max(np.abs(got - f32)):.3g} (scores; max |score| {np.max(np.abs(f32)):.2f})",
        f"max |onnx - recommend's float64 scores| = {np.max(np.abs(got - f64)):.3g}",
        "",
        f"| inference, {THREADS} threads unless said, every user's whole-catalogue scores in one call | users/s | vs torch float32 |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {n / v:,.0f} | {base / v:.2f}x |" for k, v in t.items()]
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    lines = [f"Machine: {machine()}; load at start {os.getloadavg()[0]:.1f} (shared machine: only ratios are meaningful)", ""]
    with tempfile.TemporaryDirectory() as d:
        for cls in (DeepFM, DIN):
            lines += run(cls, opts.epochs, opts.runs, Path(d))
            print("\n".join(lines), flush=True)
            lines = []
        for cls in (SASRec, GRU4Rec):
            lines += run_sequential(cls, opts.epochs, opts.runs, Path(d))
            print("\n".join(lines), flush=True)
            lines = []


if __name__ == "__main__":
    main()
