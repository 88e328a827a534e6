"""Evaluation of partitioned recommendations: per-partition sums and counts, merged exactly."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.distributed._engine import Engine, check_engine, import_ray, probe_address, ray_session, worker_error
from recsys.distributed._recommend import PartitionedRecommendations
from recsys.errors import DataError, NotSupportedError
from recsys.evaluation import Evaluator
from recsys.evaluation import metrics as M
from recsys.evaluation._definitions import KIND, METRICS, RATING_METRICS
from recsys.evaluation._frames import RecommendationReader
from recsys.types import FrameLike, InteractionsLike

__all__ = ["evaluate_distributed"]


@dataclass
class _Sums:
    """What one partition contributes: sums and counts that add up across partitions."""

    eval_pos: NDArray[np.int64]  # positions in U of the users with a list here (checked disjoint)
    test_pos: NDArray[np.int64]  # positions among the test users of the users with a list here
    sums: dict[str, float] = field(default_factory=dict)  # numerators of mean and ratio metrics
    counts: dict[str, float] = field(default_factory=dict)  # their denominators (a mean's are U, not these users)
    slots: dict[int, NDArray[np.int64]] = field(default_factory=dict)  # per-item slot counts per k
    unknown_slots: dict[int, pd.Series] = field(default_factory=dict)  # the same for items the evaluator does not know


def _partition_sums(ev: Evaluator, frame: pd.DataFrame, wanted: list[str]) -> _Sums:
    """The sums, counts and slot counts of one partition's lists (users wholly inside it)."""
    users = frame["user"].to_numpy() if "user" in frame.columns else np.empty(0)
    uidx = ev._user_lookup(pd.unique(users)) if len(users) else np.empty(0, dtype=np.int64)
    uidx = uidx[uidx >= 0]
    shard_pos = np.unique(ev.user_pos[uidx])
    shard_pos = shard_pos[shard_pos >= 0]
    # A reader whose rows are this partition's users of U only, so memory is O(partition), not O(|U|).
    local = np.full(len(ev.user_pos), -1, dtype=np.int64)
    local[ev.eval_users[shard_pos]] = np.arange(len(shard_pos))
    reader = RecommendationReader(
        ev.user_map, ev.item_map, ev._user_lookup, ev._item_lookup, ev.is_test_user, local, ev.kmax
    )
    recs, has_list = reader.read(frame)
    out = _Sums(eval_pos=shard_pos, test_pos=np.flatnonzero(has_list))
    lists = ev._list_parts(recs, wanted, rows=shard_pos)
    for key, (num, den) in lists.totals().items():
        out.sums[key], out.counts[key] = num, den
    n_known, n_all = len(ev.item_map), len(lists.in_train)
    if lists.slots:
        unknown_ids = _unknown_item_ids(ev, frame) if n_all > n_known else np.empty(0, dtype=object)
        for k, c in lists.slots.items():
            out.slots[k] = c[:n_known]
            extra = c[n_known:]
            out.unknown_slots[k] = pd.Series(extra[extra > 0], index=unknown_ids[extra > 0], dtype=np.int64)
    return out


def _unknown_item_ids(ev: Evaluator, frame: pd.DataFrame) -> NDArray[Any]:
    """External ids of the items the evaluator does not know, in the order the reader numbers them
    (first appearance among the rows of test users)."""
    uidx = ev._user_lookup(frame["user"].to_numpy())
    keep = uidx >= 0
    keep[keep] = ev.is_test_user[uidx[keep]]
    items = frame["item"].to_numpy()[keep]
    return np.asarray(pd.unique(items[ev._item_lookup(items) < 0]), dtype=object)


def _wanted(metrics: Sequence[str] | None) -> list[str]:
    names = [m for m in METRICS if m not in RATING_METRICS] if metrics is None else list(metrics)
    rating = [m for m in names if m in RATING_METRICS]
    if rating:
        raise NotSupportedError(
            f"evaluate_distributed cannot compute {', '.join(rating)}: they need a model's predictions, and "
            "the input is recommendation lists"
        )
    return names


def evaluate_distributed(
    recommendations: str | os.PathLike[str],
    test: InteractionsLike,
    k: int | Sequence[int] = 10,
    *,
    train: InteractionsLike,
    metrics: Sequence[str] | None = None,
    relevance_threshold: float | None = None,
    item_features: FrameLike | None = None,
    engine: Engine = "local",
    address: str | None = None,
) -> dict[str, float]:
    """Evaluate a :func:`recommend_all` output partition by partition, merging exact sums and counts.

    Each partition yields, for its users, the sum of every per-user metric
    (precision ... map, serendipity), the numerator and denominator of the
    ratio metrics (novelty: slot novelties and slots; diversity: per-user
    values and users with two items or more), per-item slot counts (coverage,
    distributional coverage, Gini) and the users that have a list
    (user coverage); these add up across partitions, so every number equals
    :class:`~recsys.evaluation.Evaluator` on the concatenated lists (up to
    the order of floating-point additions, far below 1e-12). rmse and mae
    are not available: they need predictions, not lists.

    Parameters
    ----------
    recommendations : path-like
        A complete :func:`recommend_all` output directory.
    test, k, train, metrics, relevance_threshold, item_features
        As for :class:`~recsys.evaluation.Evaluator`.
    engine : {"local", "ray"}
        ``"ray"``: one Ray task per partition, the evaluator's state shared
        through the object store.
    address : str, optional
        Ray cluster address (see :func:`recommend_all`).

    Returns
    -------
    dict
        ``"ndcg@10"`` -> value, in the order of ``Evaluator(...).evaluate(...).summary``.

    Raises
    ------
    DataError
        The directory is not a complete recommend_all output, or a user's list
        is in two partitions.
    NotSupportedError
        rmse or mae was requested.

    Examples
    --------
    >>> import tempfile
    >>> from recsys.distributed import recommend_all
    >>> from recsys.models import Popular
    >>> from recsys.split import stratified_split
    >>> from recsys.testing import tiny_interactions
    >>> train, test = stratified_split(tiny_interactions(), ratio=0.7, seed=0)
    >>> tmp = tempfile.mkdtemp()
    >>> _ = Popular().fit(train).save(f"{tmp}/model")
    >>> _ = recommend_all(f"{tmp}/model", k=5, out=f"{tmp}/recs", block_size=8, progress=False)
    >>> res = evaluate_distributed(f"{tmp}/recs", test, k=5, train=train, metrics=["recall"])
    >>> list(res)
    ['recall@5']
    """
    engine = check_engine("evaluate_distributed", engine)
    wanted = _wanted(metrics)
    if engine == "ray":
        import_ray()
        probe_address(address)
    parts = PartitionedRecommendations(recommendations).complete_partitions()
    ev = Evaluator(train, test, k=k, metrics=wanted, relevance_threshold=relevance_threshold, item_features=item_features)
    wanted = list(ev.requested or wanted)
    if engine == "local":
        shards = [_partition_sums(ev, pd.read_parquet(p), wanted) for p in parts]
    else:
        with ray_session(address) as ray:
            task = ray.remote(_read_and_sum)
            ev_ref = ray.put(ev)
            try:
                shards = ray.get([task.remote(ev_ref, str(p.resolve()), wanted) for p in parts])
            except ray.exceptions.RayError as e:
                raise worker_error(e) from e
    return _merge(ev, shards, wanted)


def _read_and_sum(ev: Evaluator, path: str, wanted: list[str]) -> _Sums:
    return _partition_sums(ev, pd.read_parquet(path), wanted)


def _merge(ev: Evaluator, shards: list[_Sums], wanted: list[str]) -> dict[str, float]:
    n_u = len(ev.eval_users)
    for name, n, attr in (("evaluated", n_u, "eval_pos"), ("test", ev.n_test_users, "test_pos")):
        seen = np.zeros(n, dtype=np.int64)
        for s in shards:
            seen[getattr(s, attr)] += 1
        if (seen > 1).any():
            users = ev.eval_users if name == "evaluated" else np.flatnonzero(ev.is_test_user)
            bad = ev.user_map.to_ids(users[np.flatnonzero(seen > 1)[:1]])[0]
            raise DataError(f"recommendations: user {bad!r} has a list in more than one partition")
    has_list = sum(len(s.test_pos) for s in shards)
    in_train = ev.item_train_counts > 0
    summary: dict[str, float] = {}
    for name in wanted:
        for k in ev.ks:
            key = f"{name}@{k}"
            if KIND[name] == "mean":
                summary[key] = sum(s.sums[key] for s in shards) / n_u
            elif KIND[name] == "ratio":
                den = sum(s.counts[key] for s in shards)
                summary[key] = sum(s.sums[key] for s in shards) / den if den > 0 else float("nan")
            elif name == "user_coverage":
                summary[key] = float(has_list) / ev.n_test_users
            else:
                known = np.zeros(len(ev.item_map), dtype=np.int64)
                for s in shards:
                    known += s.slots[k]
                unknown = [s.unknown_slots[k] for s in shards if len(s.unknown_slots[k])]
                extra = pd.concat(unknown).groupby(level=0, sort=False).sum().to_numpy() if unknown else np.empty(0, dtype=np.int64)
                counts = np.concatenate([known, extra.astype(np.int64)])
                flags = np.concatenate([in_train, np.zeros(len(extra), dtype=bool)])
                summary[key] = M.set_metrics(counts, flags)[name]
    order = [f"{m}@{k}" for m in METRICS for k in ev.ks]
    return {key: summary[key] for key in order if key in summary}
