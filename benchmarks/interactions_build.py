"""Build time and peak memory of ``Interactions.from_frame`` on a large frame.

Run from the repository root::

    python -m benchmarks.interactions_build [--rows 20000000] [--runs 3]

For int64 ids and, separately, string ids ("u123456") it times, in the same
run and on the same frame:

* baseline: ``pd.factorize(users)``, ``pd.factorize(items)`` and
  ``scipy.sparse.csr_matrix((ratings, (user_codes, item_codes)))``;
* ours: ``Interactions.from_frame(df, rating_col="rating")``, which also
  validates every column, keeps the per-row arrays and id maps.

Peak memory is the peak resident set size (sampled every 2 ms) above the RSS
measured right before the call, after a ``gc.collect()``; it includes the
object the call returns (still alive when the peak is read). It is compared
with the bytes of the raw columns (ids + ratings, pandas
``memory_usage(deep=True)``: for string ids the object pointers plus the
string objects).

Targets: time ratio ours / baseline <= 1.5 and peak memory <= 3x the raw
columns. The table is also written to ``benchmarks/results/interactions_build.md``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks._common import PeakMemory, Timing, machine
from recsys import Interactions
from recsys._utils.progress import progress

N_USERS = 160_000
N_ITEMS = 60_000
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "interactions_build.md")


def make_frame(rows: int, id_kind: str, seed: int = 0) -> pd.DataFrame:
    """``rows`` distinct (user, item) pairs in random order, shaped like real logs.

    Item popularity follows a Zipf-like law (exponent 1), user activity a
    milder one; ids are sparse random integers (or ``"u<digits>"`` /
    ``"i<digits>"`` strings) so no code path can treat them as positions.
    """
    rng = np.random.default_rng(seed)
    n_users = max(10, min(N_USERS, rows // 20))
    n_items = max(10, min(N_ITEMS, rows // 50))
    item_p = 1.0 / np.arange(1, n_items + 1) ** 1.0
    item_p /= item_p.sum()
    user_p = 1.0 / np.arange(1, n_users + 1) ** 0.6
    user_p /= user_p.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < rows:
        need = int((rows - len(keys)) * 1.15) + 1000
        u = rng.choice(n_users, size=need, p=user_p)
        i = rng.choice(n_items, size=need, p=item_p)
        keys = np.concatenate([keys, u.astype(np.int64) * n_items + i])
        keys = keys[~pd.Series(keys).duplicated().to_numpy()]
    keys = keys[:rows]
    keys = keys[rng.permutation(rows)]
    u_pos, i_pos = np.divmod(keys, n_items)
    del keys
    user_ids = rng.choice(10**9, size=n_users, replace=False).astype(np.int64)
    item_ids = rng.choice(10**9, size=n_items, replace=False).astype(np.int64)
    ratings = rng.integers(1, 11, size=rows).astype(np.float32) / 2
    if id_kind == "int64":
        users: Any = user_ids[u_pos]
        items: Any = item_ids[i_pos]
    else:
        # one str object per row (as when ids are read from a file), not shared references
        user_names = np.array([f"u{x}" for x in user_ids])
        item_names = np.array([f"i{x}" for x in item_ids])
        users = user_names[u_pos].astype(object)
        items = item_names[i_pos].astype(object)
    return pd.DataFrame({"user": users, "item": items, "rating": ratings})


def baseline(df: pd.DataFrame) -> sp.csr_matrix:
    ucodes, _ = pd.factorize(df["user"])
    icodes, _ = pd.factorize(df["item"])
    return sp.csr_matrix((df["rating"].to_numpy(), (ucodes, icodes)))


def ours(df: pd.DataFrame) -> Interactions:
    return Interactions.from_frame(df, rating_col="rating")


def interleaved(a: Callable[[], Any], b: Callable[[], Any], *, runs: int, warmup: int = 1) -> tuple[Timing, Timing]:
    """Time ``a`` and ``b`` in alternating order (a b, b a, ...) so load from other
    processes and drift hit both alike; ``warmup`` untimed rounds first."""
    ta, tb = Timing(), Timing()
    for k in range(warmup + runs):
        order = [(a, ta), (b, tb)] if k % 2 == 0 else [(b, tb), (a, ta)]
        for fn, timing in order:
            gc.collect()
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
            del result
            if k >= warmup:
                timing.runs.append(elapsed)
    return ta, tb


def _release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS.

    Without this, memory freed by earlier steps stays in the allocator and is
    reused silently, which would make a peak look smaller than it is.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak RSS above the RSS right before ``fn()``, the returned object still alive."""
    _release_free_memory()
    with PeakMemory() as pm:
        result = fn()
    del result
    _release_free_memory()
    return pm.peak_above_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not write the results table")
    args = parser.parse_args()

    lines = [
        f"machine: {machine()}",
        f"rows: {args.rows:,}; timings: mean ± std of {args.runs} runs after 1 warm-up, "
        "baseline and ours alternating",
        "peak memory: peak RSS above the RSS right before the call (returned object included)",
        "",
        "| ids | users | items | raw columns | baseline time | ours time | time ratio ours/baseline (<=1.5) "
        "| ours rows/s | baseline peak | ours peak | ours peak / raw (<=3) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines[:3]), flush=True)
    rows_out = []
    for id_kind in progress(["int64", "str"], desc="id kinds"):
        t0 = time.perf_counter()
        df = make_frame(args.rows, id_kind)
        raw = int(df.memory_usage(deep=True, index=False).sum())
        print(
            f"[{id_kind}] frame built in {time.perf_counter() - t0:.1f}s; dtypes "
            f"{dict(df.dtypes.astype(str))}; raw columns {raw / 2**20:.0f} MiB",
            flush=True,
        )
        mem_base = peak_memory(lambda: baseline(df))  # noqa: F821 (df is deleted after this iteration's use)
        mem_ours = peak_memory(lambda: ours(df))  # noqa: F821
        t_base, t_ours = interleaved(lambda: baseline(df), lambda: ours(df), runs=args.runs)  # noqa: F821
        data = ours(df)
        row = (
            f"| {id_kind} | {data.n_users:,} | {data.n_items:,} | {raw / 2**20:.0f} MiB "
            f"| {t_base} (best {t_base.best:.3f}s) | {t_ours} (best {t_ours.best:.3f}s) "
            f"| {t_ours.mean / t_base.mean:.2f}x (best {t_ours.best / t_base.best:.2f}x) "
            f"| {args.rows / t_ours.mean / 1e6:.2f} M "
            f"| {mem_base / 2**20:.0f} MiB | {mem_ours / 2**20:.0f} MiB | {mem_ours / raw:.2f}x |"
        )
        del data, df
        gc.collect()
        print(row, flush=True)
        rows_out.append(row)
    table = "\n".join(lines[3:] + rows_out)
    print()
    print(table)
    if not args.no_write:
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            f.write("# Interactions build\n\n`python -m benchmarks.interactions_build")
            f.write(f"{'' if args.rows == 20_000_000 else f' --rows {args.rows}'}`\n\n")
            f.write("\n".join(f"{line}  " for line in lines[:3]) + "\n\n" + table + "\n")


if __name__ == "__main__":
    main()
