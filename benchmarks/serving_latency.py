"""In-process serving latency on ML-100K: ``recommend_one`` p50 / p99 on a LOADED artifact, artifact load time.

What a backend service does: load a saved model (memory-mapped, every hash
checked), then answer one user at a time. For each model: fit, save, load
(timed with and without hash verification), then ``recommend_one`` for every
user three times after a warm-up, measuring wall time AND the calling thread's
CPU time per call: a call whose wall time far exceeds its CPU time was waiting
for a core (another process, or a thread pool spinning), not computing.
Also ``recommend_history`` (20-item histories) and the peer: implicit's
BM25 item-item model answering one user, timed in the same run.

Models: ItemKNN, EASE, Popular, ContentBased (HashingEncoder, 1024 dimensions, and BERT
MiniLM, 384, when the content extra is installed), ALS and BPR. Targets
(the service's latency budget): p50 < 1 ms, p99 < 5 ms on this 2-core machine.

Diagnosis section (why benchmarks/results/neighbourhood.md once showed a 12 ms
p99): the same ItemKNN loop with two CPU-bound competitor processes; with the
garbage collector disabled; and ContentBased with ItemIndex's former faiss-heap
selection for single queries (the OpenMP-after-OpenBLAS stall fixed in
recsys/index/_kernels.py).

Run: ``python -m benchmarks.serving_latency`` (about 1-2 minutes).
Writes the latency section of benchmarks/results/serving.md.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine, movielens
from recsys import Interactions, load_model
from recsys.serving import load_version

RESULTS = Path(__file__).parent / "results" / "serving.md"
SECTION = "latency"
TARGET_P50_MS, TARGET_P99_MS = 1.0, 5.0


def ml100k() -> Interactions:
    return movielens("ml-100k").interactions()  # with item features, for ContentBased


def model_factories() -> dict[str, Any]:
    import recsys.models as M
    from recsys.content import HashingEncoder

    out: dict[str, Any] = {
        "ItemKNN()": M.ItemKNN,
        "EASE()": M.EASE,
        "Popular()": M.Popular,
        "ContentBased(HashingEncoder())": lambda: M.ContentBased(encoder=HashingEncoder()),
    }
    try:  # the library's BERT content model (384 dimensions; embeddings cached on disk after the first fit)
        import sentence_transformers  # noqa: F401

        from recsys.content import BertEncoder

        out["ContentBased(BertEncoder())"] = lambda: M.ContentBased(encoder=BertEncoder())
    except ImportError:
        pass
    # Serving latency does not depend on how long a model trained: BPR gets 10 epochs
    # instead of 100 so the script stays a few minutes.
    out["ALS()"] = M.ALS
    out["BPR(n_epochs=10)"] = lambda: M.BPR(n_epochs=10)
    return out


class Latency:
    """Wall and thread-CPU milliseconds of repeated calls."""

    def __init__(self, fn: Any, args: list[Any]) -> None:
        wall, cpu = [], []
        for a in args:
            c0 = time.thread_time()
            t0 = time.perf_counter()
            fn(a)
            t1 = time.perf_counter()
            wall.append((t1 - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
        self.wall = np.array(wall)
        self.cpu = np.array(cpu)

    def p(self, q: float, cpu: bool = False) -> float:
        return float(np.percentile(self.cpu if cpu else self.wall, q))

    @property
    def waited(self) -> int:
        """Calls that waited over 1 ms for a core (wall - CPU > 1 ms)."""
        return int(((self.wall - self.cpu) > 1.0).sum())


def _busy(stop: Any) -> None:
    while not stop.is_set():
        pass


def single_user(model: Any, users: list[Any]) -> Latency:
    for u in users[:50]:
        model.recommend_one(u, k=10)
    return Latency(lambda u: model.recommend_one(u, k=10), users * 3)


def histories(model: Any, items: list[Any], n: int = 500) -> Latency | None:
    rng = np.random.default_rng(0)
    hists = [list(rng.choice(items, 20, replace=False)) for _ in range(n)]
    try:
        model.recommend_history(hists[0], k=10)
    except Exception:  # NotSupportedError: no fold-in
        return None
    for h in hists[:20]:
        model.recommend_history(h, k=10)
    return Latency(lambda h: model.recommend_history(h, k=10), hists)


def peer_latency(data: Interactions) -> Latency | None:
    try:
        from implicit.nearest_neighbours import BM25Recommender
    except ImportError:
        print("implicit not installed: no peer row")
        return None
    x = data.matrix("csr", "binary").astype(np.float32)
    peer = BM25Recommender(K=200)
    peer.fit(x, show_progress=False)
    users = list(range(data.n_users))
    for u in users[:50]:
        peer.recommend(u, x[u], N=10, filter_already_liked_items=True)
    return Latency(lambda u: peer.recommend(u, x[u], N=10, filter_already_liked_items=True), users * 3)


def load_note(start: float) -> str:
    """The machine is shared: the 1-minute load average at the start and end of the run."""
    return (
        f"Load average (1 min) {start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end of this run "
        "(2 cores shared with other jobs: wall-time tails include their share)."
    )


def _mark(p50: float, p99: float) -> str:
    return "yes" if p50 < TARGET_P50_MS and p99 < TARGET_P99_MS else "**no**"


def write_section(lines: list[str], section: str = SECTION) -> None:
    """Replace this script's section of serving.md (the load benchmark writes another one)."""
    start, end = f"<!-- {section} -->", f"<!-- /{section} -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Serving benchmarks\n"
    block = "\n".join([start, *lines, end])
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-diagnosis", action="store_true", help="skip the contention / GC / OpenMP runs")
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    print(f"Machine: {machine()}; load average {load0:.1f}", flush=True)
    data = ml100k()
    users = list(data.users.ids)
    items = list(data.items.ids)
    tmp = Path(tempfile.mkdtemp(prefix="serving-latency-"))
    peer = peer_latency(data)
    rows = []
    loaded_models: dict[str, Any] = {}
    try:
        for name, factory in model_factories().items():
            t0 = time.perf_counter()
            model = factory().fit(data)
            fit_s = time.perf_counter() - t0
            path = model.save(tmp / name.split("(")[0])
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
            del model
            gc.collect()
            t0 = time.perf_counter()
            load_model(path, verify=False)
            load_noverify = time.perf_counter() - t0
            loaded = load_version(path)  # what a worker does: verify every hash, mmap, warm up
            lat = single_user(loaded.model, users)
            hist = histories(loaded.model, items)
            loaded_models[name] = loaded.model
            rows.append((name, fit_s, size, loaded.load_seconds, load_noverify, lat, hist))
            print(
                f"{name}: fit {fit_s:.2f}s, artifact {size:.1f} MiB, load {loaded.load_seconds * 1000:.1f} ms "
                f"(no hash check {load_noverify * 1000:.1f} ms); recommend_one p50 {lat.p(50):.3f} ms "
                f"p99 {lat.p(99):.3f} ms max {lat.wall.max():.2f} ms (CPU p99 {lat.p(99, True):.3f} ms, "
                f"{lat.waited} calls waited > 1 ms)"
                + (f"; history p50 {hist.p(50):.3f} p99 {hist.p(99):.3f} ms" if hist else ""),
                flush=True,
            )
        lines = [
            "## In-process latency (`python -m benchmarks.serving_latency`)",
            "",
            f"Machine: {machine()}",
            "",
            f"ML-100K (943 users x 1682 items, 100,000 ratings as interactions). Each model fitted, saved, loaded "
            f"as a service loads it (memory-mapped, every SHA-256 checked, warmed up), then `recommend_one(user, k=10)` "
            f"for every user three times ({3 * len(users)} calls) after 50 warm-up calls; `recommend_history` for 500 "
            f"random 20-item histories. CPU p99 is the calling thread's CPU time: wall >> CPU means waiting for a core. "
            f"Target: p50 < {TARGET_P50_MS:g} ms and p99 < {TARGET_P99_MS:g} ms.",
            "",
            "| model | recommend_one p50 ms | p99 ms | max ms | CPU p99 ms | waited >1 ms | target met | "
            "history p50 ms | history p99 ms | p50 / peer | p99 / peer |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, _, _, _, _, lat, hist in rows:
            hp = f"{hist.p(50):.3f} | {hist.p(99):.3f}" if hist else "n/a | n/a"
            ratio = (
                f"{lat.p(50) / peer.p(50):.2f} | {lat.p(99) / peer.p(99):.2f}" if peer is not None else "n/a | n/a"
            )
            lines.append(
                f"| {name} | {lat.p(50):.3f} | {lat.p(99):.3f} | {lat.wall.max():.2f} | {lat.p(99, True):.3f} | "
                f"{lat.waited} | {_mark(lat.p(50), lat.p(99))} | {hp} | {ratio} |"
            )
        if peer is not None:
            lines.append(
                f"| peer: implicit BM25Recommender(K=200), one user | {peer.p(50):.3f} | {peer.p(99):.3f} | "
                f"{peer.wall.max():.2f} | {peer.p(99, True):.3f} | {peer.waited} | {_mark(peer.p(50), peer.p(99))} | "
                "n/a | n/a | 1.00 | 1.00 |"
            )
        lines += [
            "",
            "Artifact loading (the same artifacts):",
            "",
            "| model | fit s | artifact MiB | load + verify ms | load, no hash check ms |",
            "|---|---|---|---|---|",
        ]
        for name, fit_s, size, load_s, load_nv, _, _ in rows:
            lines.append(f"| {name} | {fit_s:.2f} | {size:.1f} | {load_s * 1000:.1f} | {load_nv * 1000:.1f} |")
        print("\n".join(lines[6:]), flush=True)
        if not args.no_diagnosis:
            lines += diagnosis(loaded_models, users)
        lines.insert(4, load_note(load0))
        lines.insert(5, "")
        write_section(lines)
        print(f"wrote {RESULTS}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def diagnosis(models: dict[str, Any], users: list[Any]) -> list[str]:
    """Why a p99 of ~12 ms was measured before: compare the causes in this run."""
    from recsys.index import _kernels

    knn = models["ItemKNN()"]
    out = [
        "",
        "### Where the earlier 12 ms p99 came from",
        "",
        "| ItemKNN recommend_one, every user x3 | p50 ms | p99 ms | CPU p99 ms | waited >1 ms |",
        "|---|---|---|---|---|",
    ]

    def row(label: str, lat: Latency) -> None:
        out.append(f"| {label} | {lat.p(50):.3f} | {lat.p(99):.3f} | {lat.p(99, True):.3f} | {lat.waited} |")
        print(out[-1], flush=True)

    row("this run, as above", single_user(knn, users))
    gc.disable()
    try:
        row("garbage collector disabled", single_user(knn, users))
    finally:
        gc.enable()
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    hogs = [ctx.Process(target=_busy, args=(stop,), daemon=True) for _ in range(2)]
    for h in hogs:
        h.start()
    try:
        row("two CPU-bound processes competing for the 2 cores", single_user(knn, users))
    finally:
        stop.set()
        for h in hogs:
            h.join()
    content = models.get("ContentBased(HashingEncoder())")
    if content is not None:
        out += [
            "",
            "| ContentBased recommend_one (ItemIndex exact search) | p50 ms | p99 ms | CPU p99 ms | waited >1 ms |",
            "|---|---|---|---|---|",
        ]
        row("numpy selection of small query blocks (now)", single_user(content, users[:300]))
        old = _kernels.NUMPY_SELECT_FLOATS
        _kernels.NUMPY_SELECT_FLOATS = 0  # the former path: faiss heaps (OpenMP) after an OpenBLAS product
        try:
            row("faiss heap selection (before)", single_user(content, users[:300]))
        finally:
            _kernels.NUMPY_SELECT_FLOATS = old
    out += [
        "",
        "Reading: the single-user path costs about 1 ms of CPU or less at p99 for every model (CPU p99 column), "
        "and disabling the garbage collector changes nothing measurable. The 12 ms p99 in neighbourhood.md came "
        "from other processes holding both cores (implicit's p99 was 8 ms in that run too): wall p99 grows with "
        "the machine's load while CPU p99 stays flat, and the calls that waited > 1 ms account for the tail. Embedding models had a real stall in the library: faiss' "
        "heap functions open an OpenMP region right after a threaded OpenBLAS product, and on 2 cores the OpenMP "
        "team waited for the still-spinning OpenBLAS threads (tens of ms per call, mostly spent waiting). Single "
        "queries now select with numpy (same results, tested). Services run one BLAS/OpenMP thread per worker "
        "(`threads=1`, the default of `recsys.serving.run`).",
    ]
    return out


if __name__ == "__main__":
    main()
