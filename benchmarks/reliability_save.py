"""Save / kill / concurrent-read drill: saving over a model never loses it and never shows a reader half of it.

Three parts, all on one artifact path in a scratch directory:

1. Killed saves: a forked child saves models over the artifact in a loop and
   is SIGKILLed after a random delay (0 to 2x the time of one save, so the
   kill lands anywhere in a save: writing arrays, hashing, the manifest, the
   swap, the deletion of the old directory, the cleanup of older leftovers).
   After each kill the artifact must load (every hash checked) as one of the
   known models, and nothing but the artifact may be visible in its directory
   (temporary directories are hidden: ``.<name>.recsys-tmp-<pid>-...``).
2. Concurrent loads: reader processes call ``load_model`` in a loop (memory-
   mapped and not, alternately) while a writer process saves alternating
   models over the same path. Every load must succeed and return one complete
   known model: its item ids and its top-10 for a fixed user (ids and scores)
   must equal those of one of the saved models. The readers also count the
   loads during which the artifact was replaced (the race being tested).
3. Leftovers: after the last kill, one ordinary save; no temporary directory
   of any killed save may remain.

The models are ItemKNN fits (sparse similarity, id maps: about 15 files) on
three different synthetic data sets whose item ids carry the variant's name,
so a mix of two artifacts cannot pass for either.

Run: ``python -m benchmarks.reliability_save`` (defaults: 100 kills, 10,000
loads by 2 readers, at least 1,000 saves; about 1-3 minutes on 2 busy cores,
capped by ``--max-seconds``). Prints a Markdown block for
benchmarks/results/reliability.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

N_VARIANTS = 3
USER = "u0"


def make_variants(n_users: int = 60, n_items: int = 40, seed: int = 0) -> list[Any]:
    """``N_VARIANTS`` fitted ItemKNN models that differ in item ids and in recommendations."""
    from recsys import Interactions
    from recsys.models import ItemKNN

    out = []
    for v in range(N_VARIANTS):
        rng = np.random.default_rng(seed + v)
        n = n_users * 8
        users = np.array([f"u{u}" for u in rng.integers(0, n_users, n)] + [USER] * 3)
        items = np.array([f"v{v}:i{i}" for i in rng.zipf(1.3, n) % n_items] + [f"v{v}:i{i}" for i in (1, 2, 3)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the merged duplicate rows are intended
            data = Interactions.from_arrays(users, items, duplicates="sum")
        out.append(ItemKNN(k=20).fit(data))
    return out


def fingerprint(model: Any) -> tuple[Any, ...]:
    """What identifies one complete model: every item id, and a fixed user's top-10 ids and scores."""
    ids, scores = model.recommend_one(USER, k=10)
    return (tuple(model.items_.ids.tolist()), tuple(ids.tolist()), tuple(np.round(np.asarray(scores, float), 6).tolist()))


def _visible_strays(path: Path) -> list[str]:
    """Entries next to the artifact that a user would see (not hidden), other than the artifact."""
    return sorted(n for n in os.listdir(path.parent) if n != path.name and not n.startswith("."))


def _temp_dirs(path: Path) -> list[str]:
    return sorted(n for n in os.listdir(path.parent) if n.startswith(f".{path.name}.recsys-tmp-"))


def _check_artifact(path: Path, known: set[tuple[Any, ...]]) -> str | None:
    from recsys import load_model

    try:
        fp = fingerprint(load_model(path))
    except Exception as e:  # the drill counts every failure, whatever its type
        return f"{type(e).__name__}: {e}"
    return None if fp in known else "loaded a model that is none of the saved ones"


# -- 1. killed saves ------------------------------------------------------------


@dataclass
class KillResult:
    tried: int = 0
    not_loadable: int = 0
    half_written_visible: int = 0
    temp_dirs_seen: int = 0  # hidden temporaries left by killed saves before the next save removed them
    leftovers_after_next_save: int = 0
    save_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _saver_child(models: list[Any], path: Path, start: int) -> None:
    try:
        i = start
        while True:
            models[i % len(models)].save(path)
            i += 1
    finally:
        os._exit(0)


def run_kills(path: Path, models: list[Any], n: int, rng: random.Random, progress: Any = None) -> KillResult:
    """``n`` saves SIGKILLed at random points; each time the artifact must load and nothing half-written be visible."""
    known = {fingerprint(m) for m in models}
    res = KillResult()
    models[0].save(path)
    t0 = time.perf_counter()
    for i in range(5):
        models[i % len(models)].save(path)
    res.save_seconds = (time.perf_counter() - t0) / 5
    for k in range(n):
        delay = rng.uniform(0, 2 * res.save_seconds)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _saver_child(models, path, k)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        res.tried += 1
        err = _check_artifact(path, known)
        if err is not None:
            res.not_loadable += 1
            res.errors.append(f"kill {k}: {err}")
        strays = _visible_strays(path)
        if strays:
            res.half_written_visible += 1
            res.errors.append(f"kill {k}: visible next to the artifact: {strays}")
            for s in strays:  # keep the next rounds independent
                shutil.rmtree(path.parent / s, ignore_errors=True)
        res.temp_dirs_seen += len(_temp_dirs(path))
        if progress is not None:
            progress.update(1)
    models[0].save(path)  # the next save cleans up after the killed ones
    res.leftovers_after_next_save = len(_temp_dirs(path))
    err = _check_artifact(path, known)
    if err is not None:
        res.not_loadable += 1
        res.errors.append(f"after the last save: {err}")
    return res


# -- 2. concurrent loads ----------------------------------------------------------


@dataclass
class LoadResult:
    loads: int = 0
    failed: int = 0
    wrong_model: int = 0
    replaced_during_load: int = 0
    saves: int = 0
    writer_errors: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _reader(path: Path, known: set[tuple[Any, ...]], counters: Any, stop: Any, errq: Any) -> None:
    from recsys import load_model

    loads = failed = wrong = replaced = 0
    mmap = True
    try:
        while not stop.is_set():
            before = os.stat(path).st_ino
            try:
                fp = fingerprint(load_model(path, mmap=mmap))
                if fp not in known:
                    wrong += 1
                    errq.put("loaded a model that is none of the saved ones")
            except Exception as e:  # counted, whatever its type
                failed += 1
                errq.put(f"{type(e).__name__}: {e}")
            if os.stat(path).st_ino != before:
                replaced += 1
            loads += 1
            mmap = not mmap
            if loads % 20 == 0:
                with counters.get_lock():
                    counters[0] += 20
    finally:
        with counters.get_lock():
            counters[0] += loads % 20
            counters[1] += failed
            counters[2] += wrong
            counters[3] += replaced


def _writer(models: list[Any], path: Path, counters: Any, stop: Any, errq: Any) -> None:
    i = 0
    while not stop.is_set():
        try:
            models[i % len(models)].save(path)
        except Exception as e:
            with counters.get_lock():
                counters[5] += 1
            errq.put(f"writer: {type(e).__name__}: {e}")
        i += 1
        with counters.get_lock():
            counters[4] += 1


def run_concurrent(
    path: Path, models: list[Any], n_loads: int, n_saves: int, n_readers: int, max_seconds: float, progress: Any = None
) -> LoadResult:
    """Readers load in a loop while a writer saves; runs until both counts are reached (or ``max_seconds``)."""
    known = {fingerprint(m) for m in models}
    models[0].save(path)
    ctx = mp.get_context("fork")
    counters = ctx.Array("q", 6)  # loads, failed, wrong, replaced-during-load, saves, writer errors
    stop = ctx.Event()
    errq = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(models, path, counters, stop, errq), daemon=True)]
    procs += [ctx.Process(target=_reader, args=(path, known, counters, stop, errq), daemon=True) for _ in range(n_readers)]
    t0 = time.perf_counter()
    res = LoadResult()
    try:
        for p in procs:
            p.start()
        shown = 0
        while time.perf_counter() - t0 < max_seconds:
            time.sleep(0.2)
            loads, saves = counters[0], counters[4]
            if progress is not None:
                progress.update(min(loads, n_loads) - shown)
                progress.set_postfix(saves=saves, refresh=False)
                shown = min(loads, n_loads)
            if loads >= n_loads and saves >= n_saves:
                break
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    res.seconds = time.perf_counter() - t0
    res.loads, res.failed, res.wrong_model, res.replaced_during_load, res.saves, res.writer_errors = list(counters)
    while not errq.empty() and len(res.errors) < 20:
        res.errors.append(errq.get_nowait())
    return res


# -- report -----------------------------------------------------------------------


def _swap_mode(scratch: Path) -> str:
    from recsys import persistence

    a, b = scratch / ".probe-a", scratch / ".probe-b"
    a.mkdir()
    b.mkdir()
    try:
        ok = persistence._exchange(a, b)
    finally:
        shutil.rmtree(a)
        shutil.rmtree(b)
    return "renameat2(RENAME_EXCHANGE)" if ok else "two renames (fallback: no RENAME_EXCHANGE here)"


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    ap = argparse.ArgumentParser(prog="python -m benchmarks.reliability_save", description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--loads", type=int, default=10_000)
    ap.add_argument("--saves", type=int, default=1_000)
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=240.0, help="cap on the concurrent part")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a new temporary directory)")
    args = ap.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="recsys-save-drill-", dir=args.dir))
    t_all = time.perf_counter()
    try:
        models = make_variants(seed=args.seed)
        swap = _swap_mode(scratch)
        (scratch / "kill").mkdir()
        (scratch / "load").mkdir()
        t0 = time.perf_counter()
        with tqdm(total=args.kills, desc="killed saves", unit="kill", file=sys.stderr) as bar:
            kills = run_kills(scratch / "kill" / "model", models, args.kills, random.Random(args.seed), bar)
        kill_s = time.perf_counter() - t0
        with tqdm(total=args.loads, desc="concurrent loads", unit="load", file=sys.stderr) as bar:
            loads = run_concurrent(scratch / "load" / "model", models, args.loads, args.saves, args.readers, args.max_seconds, bar)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    total_s = time.perf_counter() - t_all

    reached = loads.loads >= args.loads and loads.saves >= args.saves
    print("## Save / kill / concurrent-read drill")
    print()
    extra = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"Command: `python -m benchmarks.reliability_save{' ' + extra if extra else ''}`")
    print(
        f"({platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"swap: {swap}; model: ItemKNN, {N_VARIANTS} variants; one save {kills.save_seconds * 1000:.1f} ms)"
    )
    print()
    print("| drill | cases | failures (target 0) |")
    print("|---|---:|---:|")
    print(f"| killed saves (SIGKILL after 0-2x a save's time): old or new model not loadable afterwards | {kills.tried:,} | {kills.not_loadable:,} |")
    print(f"| killed saves: half-written directory visible under the artifact's name | {kills.tried:,} | {kills.half_written_visible:,} |")
    print(f"| leftover temporary directories of killed saves after the next save | {kills.tried:,} | {kills.leftovers_after_next_save:,} |")
    print(
        f"| concurrent loads ({args.readers} reader processes) while one process saved {loads.saves:,} times: "
        f"load failed | {loads.loads:,} | {loads.failed:,} |"
    )
    print(f"| concurrent loads: returned a model that is neither the old nor the new | {loads.loads:,} | {loads.wrong_model:,} |")
    print(f"| saves that failed during the concurrent loads | {loads.saves:,} | {loads.writer_errors:,} |")
    print()
    print(
        f"Killed saves left {kills.temp_dirs_seen:,} hidden temporary directories in all before the next save removed them; "
        f"{loads.replaced_during_load:,} of the loads had the artifact replaced while they ran. "
        f"Time: killed saves {kill_s:.1f} s, concurrent part {loads.seconds:.1f} s, total {total_s:.1f} s."
        + ("" if reached else f" NOTE: stopped by --max-seconds before reaching {args.loads:,} loads and {args.saves:,} saves.")
    )
    for e in (kills.errors + loads.errors)[:20]:
        print(f"- {e}")
    bad = kills.not_loadable + kills.half_written_visible + kills.leftovers_after_next_save + loads.failed + loads.wrong_model
    bad += loads.writer_errors
    return 1 if bad or not reached else 0


if __name__ == "__main__":
    raise SystemExit(main())
