"""What the benchmark scripts share: MovieLens loading, timing and memory measurement, the machine line.

Data come from :func:`recsys.datasets.movielens.load_movielens`, so from
``$RECSYS_DATA_DIR`` (``<dir>/ml-100k/u.data`` ...) or, when it is unset, the
library's download cache; no script names a directory of its own. The peer
libraries (implicit, Surprise, Cornac) are wrapped once, in
:mod:`recsys._peers`, for the CLI and the benchmarks alike.
"""

from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys._utils.measure import PeakMemory as _PeakMemory
from recsys._utils.measure import machine as _machine
from recsys._utils.measure import rss

if TYPE_CHECKING:
    import pandas as pd

    from recsys import Interactions
    from recsys.datasets.movielens import MovieLens
    from recsys.models.base import Recommender


# users, items and interactions of the MovieLens releases, for synthetic data of their sizes
MOVIELENS_SIZES: dict[str, tuple[int, int, int]] = {
    "ml1m": (6_040, 3_706, 1_000_209),
    "ml10m": (69_878, 10_677, 10_000_054),
    "ml20m": (138_493, 26_744, 20_000_263),
    "ml25m": (162_541, 59_047, 25_000_095),
}


def sizes(*names: str) -> dict[str, tuple[int, int, int]]:
    """The MovieLens sizes ``names`` (all of them when none is given), for a script's ``--size`` choices."""
    return {n: MOVIELENS_SIZES[n] for n in (names or MOVIELENS_SIZES)}


def movielens(name: str = "ml-100k") -> MovieLens:
    """The MovieLens dataset ``name`` (ratings, users, items) from ``$RECSYS_DATA_DIR``."""
    from recsys.datasets.movielens import load_movielens

    return load_movielens(name)


def ratings(name: str = "ml-100k") -> pd.DataFrame:
    """The ratings frame of MovieLens ``name``: columns user, item, rating, timestamp."""
    return movielens(name).ratings


def ml100k(*, timestamps: bool = False, with_ratings: bool = False) -> Interactions:
    """ML-100K with every rating an interaction of weight 1 (the benchmarks' protocol).

    ``timestamps=True`` keeps the rating times as side information (for the
    session models); ``with_ratings=True`` keeps the ratings (for the rating
    models: SVD++ and its peers).
    """
    from recsys import Interactions

    frame = ratings("ml-100k")
    if with_ratings:
        return Interactions.from_frame(frame[["user", "item", "rating"]], rating_col="rating")
    if timestamps:
        return Interactions.from_frame(frame[["user", "item", "timestamp"]], timestamp_col="timestamp")
    return Interactions.from_frame(frame[["user", "item"]])


def rss_bytes() -> int:
    """Current resident set size of this process."""
    return rss() or 0


class PeakMemory(_PeakMemory):
    """:class:`recsys._utils.measure.PeakMemory` (example there) with ``peak_above_start``, the name benchmarks use.

    The kernel's high-water mark where it can be reset, else RSS sampled every ``interval`` s.
    """

    def __init__(self, interval: float = 0.002) -> None:
        super().__init__(interval)

    @property
    def peak_above_start(self) -> int:
        return self.above_start


@dataclass
class Timing:
    """Seconds of repeated runs after warm-up."""

    runs: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.runs)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.runs) if len(self.runs) > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:.3f}s ±{self.std:.3f}"


def repeat(fn: Callable[[], Any], *, runs: int = 3, warmup: int = 1) -> Timing:
    """Time ``fn`` ``runs`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    t = Timing()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.runs.append(time.perf_counter() - t0)
    return t


def latency_percentiles(fn: Callable[[Any], Any], args: list[Any]) -> tuple[float, float]:
    """p50 and p99 latency in milliseconds of ``fn(a)`` for each ``a``."""
    times = []
    for a in args:
        t0 = time.perf_counter()
        fn(a)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def machine() -> str:
    """One line describing the machine, printed by every benchmark."""
    m = _machine()
    gpu = m["gpu"] or "no GPU"
    return f"{platform.machine()}, {m['cores']} cores, {m['memory_gib'] or 0:.0f} GiB, {gpu}, Python {m['python']}"


def grid_scores(
    model: Recommender | type[Recommender],
    grid: dict[str, list[Any]],
    fit: Interactions,
    valid: Interactions,
    *,
    metric: str = "ndcg@10",
) -> list[tuple[dict[str, Any], float]]:
    """Every setting of ``grid`` with its validation score, in grid order, by :func:`recsys.tuning.search`.

    ``model`` gives the fixed parameters the grid is applied to. The search
    fits on ``fit`` and scores on ``valid``; nothing is refitted. A failed
    setting stops the benchmark (its tables would have a hole).
    """
    from recsys.tuning import search

    result = search(model, grid, fit, method="grid", metric=metric, validation=(fit, valid), refit=False, show_progress=True)
    failed = [t for t in result.trials if t.score is None]
    if failed:
        raise RuntimeError(f"{len(failed)} setting(s) failed, first {failed[0].params}: {failed[0].error}")
    return [(t.params, float(t.score)) for t in result.trials if t.score is not None]


def grid_table(rows: list[tuple[dict[str, Any], float]], synthetic: dict[tuple[Any, ...], float]) -> list[str]:
    """Markdown rows of a grid searched on ML-100K and on synthetic data: the parameters, then both scores."""
    names = list(rows[0][0])
    out = ["| " + " | ".join(names) + " | validation NDCG@10 | synthetic validation NDCG@10 |", "|" + "---|" * (len(names) + 2)]
    for params, score in rows:
        out.append("| " + " | ".join(str(v) for v in params.values()) + f" | {score:.4f} | {synthetic[tuple(params.items())]:.4f} |")
    return out


def section(*lines: str) -> list[str]:
    """``lines`` printed now (a long run shows how far it is) and returned for the results file."""
    print("\n".join(lines), flush=True)
    return list(lines)


def write_results(path: str | os.PathLike[str], lines: list[str]) -> None:
    """Write the results file (its folder created when missing) and say where."""
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM a server the benchmark started, SIGKILL it when it has not exited after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class QualityTable:
    """Rows of a top-10 table on one split: NDCG / P / R@10 of a model, its fit and its recommend-for-all time.

    Ours are timed on ``recommend`` (ids in, frame out), a peer on
    ``top_indices`` (indices in, arrays out: what its library returns).
    """

    def __init__(self, train: Interactions, test: Interactions) -> None:
        from recsys.evaluation import Evaluator

        self.train = train
        self.evaluator = Evaluator(train, test, k=10, metrics=["ndcg", "precision", "recall"])
        self.users = np.unique(test.user_index).astype(np.int32)
        self.user_ids = train.users.ids[self.users]
        self.rows: list[dict[str, Any]] = []

    def add(self, name: str, model: Any, *, fit_runs: int, rec_runs: int, warmup: int = 1, peer: bool = False) -> None:
        """Time ``model``'s fit on train and its recommend for every test user, then score it."""
        fit_t = repeat(lambda: model.fit(self.train), runs=fit_runs, warmup=warmup)
        if peer:
            rec_t = repeat(lambda: model.top_indices(self.users, 10), runs=rec_runs)
        else:
            rec_t = repeat(lambda: model.recommend(self.user_ids, k=10), runs=rec_runs)
        s = self.evaluator.evaluate(model).summary
        self.rows.append(
            {"model": name, "ndcg": s["ndcg@10"], "p": s["precision@10"], "r": s["recall@10"], "fit": fit_t, "rec": rec_t}
        )


def ml100k_split() -> tuple[Interactions, Interactions]:
    """Train and test of the benchmarks' protocol: ML-100K, ``stratified_split(0.75, by="user", seed=42)``."""
    from recsys.split import stratified_split

    return stratified_split(ml100k(), ratio=0.75, by="user", seed=42)


def header(title: str) -> list[str]:
    """The first lines of a results file: its title and the machine (printed at once)."""
    print(f"Machine: {machine()}", flush=True)
    return [f"# {title}", "", f"Machine: {machine()}", ""]
