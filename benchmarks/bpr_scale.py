"""BPR time per epoch at MovieLens sizes: recsys's BPR next to implicit's and Cornac's in the same process.

On ``recsys.datasets.synthetic`` data of a MovieLens size (``--sizes``), each
library fits BPR with 64 factors with its defaults for threads (recsys: one
torch thread for the steps, a second drawing the next epoch's samples
meanwhile; implicit: all cores; Cornac: one thread, as it runs whenever it
is seeded). Each is fitted twice, for 1 epoch and for ``--epochs`` epochs:
the time per epoch is the
difference over the extra epochs (the steady rate), the set-up what the
1-epoch fit took beyond one epoch (converting the data, initial vectors, and
for recsys the first epoch's samples). CPU time is the process's, all
threads, over the longer fit, per epoch; peak RSS is the process's peak
during the longer fit, above its RSS at the start, and the process's peak
itself. Ratios are recsys's time per epoch over the other's; only the
ratios of one run compare.

The three solve the same problem differently: recsys and Cornac draw
negatives uniformly among the items (recsys skips a pair whose negative the
user has seen, Cornac too), implicit in proportion to item popularity;
implicit runs lock-free (Hogwild) SGD over its threads, Cornac single-sample
SGD, recsys mini-batches of summed SGD steps.

Run: ``python -m benchmarks.bpr_scale --sizes ml10m`` (``--sizes`` a comma
list of ml1m, ml10m, ml20m, ml25m; ``--epochs``; ``--peers``; ``--out``).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import PeakMemory, header, section, sizes, write_results
from recsys import Interactions
from recsys._peers import ImplicitBPR
from recsys.datasets.synthetic import synthetic
from recsys.models import BPR

RESULTS = Path(__file__).parent / "results" / "bpr_scale.md"
SIZES = sizes()
FACTORS = 64


def fit_cornac(data: Interactions, epochs: int) -> Any:
    """Cornac's BPR (``k`` = FACTORS, seeded: one thread) on the data, its Dataset built from arrays.

    (``recsys._peers.CornacBPR`` builds it from string triples, which at 20M
    interactions costs more than the fit.)
    """
    from cornac.data import Dataset
    from cornac.models import BPR as CornacBPR

    u = np.asarray(data.user_index, dtype=np.int64)
    i = np.asarray(data.item_index, dtype=np.int64)
    ds = Dataset(
        data.n_users,
        data.n_items,
        {str(x): x for x in range(data.n_users)},
        {str(x): x for x in range(data.n_items)},
        (u, i, np.ones(len(u), dtype=np.float32)),
        seed=0,
    )
    return CornacBPR(k=FACTORS, max_iter=epochs, seed=0, verbose=False).fit(ds)


def timed(what: str, fn: Any) -> tuple[float, float, float, float]:
    """Wall seconds, CPU seconds (all threads), peak RSS above the start and the process's peak RSS (MiB)
    of ``fn()``; prints a progress line."""
    gc.collect()
    print(f"  {what} ...", flush=True)
    with PeakMemory() as pm:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    above, peak = pm.above_start / 2**20, pm.peak / 2**20
    print(
        f"  {what}: {secs:.1f} s ({cpu:.1f} s CPU), peak {above:.0f} MiB above start ({peak:.0f} MiB process)",
        flush=True,
    )
    return secs, cpu, above, peak


def one_size(size: str, epochs: int, peers: list[str]) -> list[str]:
    n_users, n_items, n = SIZES[size]
    t0 = time.perf_counter()
    data = synthetic(n_users, n_items, n, seed=1)
    lines = section(
        "",
        f"## {size} size: `synthetic({n_users:_}, {n_items:_}, {n:_}, seed=1)`",
        "",
        f"{data.n_users:,} users x {data.n_items:,} items, {data.nnz:,} interactions (built in "
        f"{time.perf_counter() - t0:.0f} s); {FACTORS} factors, fits of 1 and {epochs} epochs.",
        "",
        "| model | threads | fit s | s / epoch | set-up s | CPU s / epoch | fit peak RSS MiB above start"
        " | process peak RSS MiB | recsys s/epoch / this |",
        "|---|---|---|---|---|---|---|---|---|",
    )
    res: dict[str, tuple[str, str, float, float, float, float, float, float]] = {}
    contestants: list[tuple[str, str, str, Callable[[int], Any]]] = [
        (
            "recsys",
            "recsys BPR()",
            "1 torch thread (+1 sampling the next epoch)",
            lambda e: BPR(n_factors=FACTORS, n_epochs=e, seed=0, show_progress=False).fit(data),
        ),
        (
            "implicit",
            "implicit BayesianPersonalizedRanking",
            "all cores (its default)",
            lambda e: ImplicitBPR({"factors": FACTORS, "iterations": e}, seed=0).fit(data),
        ),
        ("cornac", "Cornac BPR (seeded)", "1 (Cornac's when seeded)", lambda e: fit_cornac(data, e)),
    ]
    for key, label, threads, fit in contestants:
        if key != "recsys" and key not in peers:
            continue
        if importlib.util.find_spec(key) is None:
            lines += section("", f"{label}: not installed (pip install {key})")
            continue
        one, _, _, _ = timed(f"{label}, 1 epoch", lambda: fit(1))
        s, cpu, above, peak = timed(f"{label}, {epochs} epochs", lambda: fit(epochs))
        per = (s - one) / (epochs - 1)
        res[key] = (label, threads, s, per, one - per, cpu / epochs, above, peak)
    ours_epoch = res["recsys"][3]
    rows = []
    for label, threads, s, per, setup, cpu, above, peak in res.values():
        rows.append(
            f"| {label} | {threads} | {s:.1f} | {per:.2f} | {setup:.1f} | {cpu:.2f} | {above:.0f} | {peak:.0f} | {ours_epoch / per:.2f} |"
        )
    return lines + section(*rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="ml10m", help="comma list of " + ", ".join(sorted(SIZES)))
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the longer fit (>= 2)")
    ap.add_argument("--peers", default="implicit,cornac", help="comma list of implicit, cornac (or '')")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results file ('-' to write none)")
    args = ap.parse_args()
    sizes = [s for s in args.sizes.split(",") if s]
    for s in sizes:
        if s not in SIZES:
            ap.error(f"--sizes: unknown size {s!r}; expected a comma list of {', '.join(sorted(SIZES))}")
    if args.epochs < 2:
        ap.error(f"--epochs: expected at least 2 (the time per epoch is the difference to a 1-epoch fit), got {args.epochs}")
    peers = [p for p in args.peers.split(",") if p]
    lines = header("BPR time per epoch at MovieLens sizes: recsys vs implicit and Cornac")
    for size in sizes:
        lines += one_size(size, args.epochs, peers)
    lines += [
        "",
        f"Command: `python -m benchmarks.bpr_scale --sizes {args.sizes} --epochs {args.epochs} --peers {args.peers}`",
    ]
    if str(args.out) != "-":
        write_results(args.out, lines)


if __name__ == "__main__":
    main()
