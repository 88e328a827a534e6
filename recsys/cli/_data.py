"""Data options and loading (``--dataset``/``--data`` and columns) and the train/test/validation splits."""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.cli._errors import CLIError, UsageError
from recsys.cli._output import eprint
from recsys.cli._parse import parse_size
from recsys.data import Interactions

DATASETS = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small", "synthetic")
SPLITS = ("stratified", "temporal", "none")


def option_getter(args: argparse.Namespace, config: dict[str, Any] | None) -> Callable[..., Any]:
    """``get(name, default=None)``: the flag ``name`` when given, else the config file's ``name``, else ``default``.

    Examples
    --------
    >>> get = option_getter(argparse.Namespace(k=None, seed=7), {"k": 20, "seed": 1})
    >>> get("k"), get("seed"), get("ratio", 0.75)
    (20, 7, 0.75)
    """
    cfg = config or {}

    def get(name: str, default: Any = None) -> Any:
        value = getattr(args, name, None)
        return value if value is not None else cfg.get(name, default)

    return get


def add_data_args(p: argparse.ArgumentParser, *, required: bool = False, split: bool = True) -> None:
    """``--dataset NAME`` or ``--data FILE`` with column options; and the split options."""
    g = p.add_argument_group("data")
    g.add_argument("--dataset", metavar="NAME", help=f"a MovieLens release or 'synthetic' ({', '.join(DATASETS)})")
    g.add_argument("--data", metavar="FILE", help="a CSV/TSV or Parquet file of interactions (one row each)")
    g.add_argument("--user-col", metavar="COL", help="user id column of --data (default: user)")
    g.add_argument("--item-col", metavar="COL", help="item id column of --data (default: item)")
    g.add_argument("--rating-col", metavar="COL", help="rating column of --data (optional)")
    g.add_argument("--timestamp-col", metavar="COL", help="timestamp column of --data (optional; needed by --split temporal)")
    g.add_argument("--weight-col", metavar="COL", help="interaction weight column of --data (optional; default 1 each)")
    g.add_argument("--sep", metavar="CHAR", help="CSV separator of --data (default ',', tab for .tsv)")
    g.add_argument("--item-features", metavar="FILE", help="CSV/Parquet of item features keyed by the item column (content models)")
    g.add_argument("--data-dir", metavar="DIR", help="MovieLens directory (default: $RECSYS_DATA_DIR, else ~/.cache/recsys)")
    g.add_argument("--no-download", action="store_true", default=None, help="fail instead of downloading a missing MovieLens release")
    g.add_argument(
        "--synthetic-size",
        metavar="U,I,N",
        help="users, items and interactions of --dataset synthetic (default 1000,500,20000)",
    )
    if split:
        s = p.add_argument_group("split")
        s.add_argument("--split", metavar="KIND", help="stratified (per-user random holdout), temporal (per-user last rows) or none; default stratified")
        s.add_argument("--ratio", type=float, metavar="R", help="train share of each user's rows for --split stratified (default 0.75)")
        s.add_argument("--test-fraction", type=float, metavar="F", help="test share of each user's rows for --split temporal (default 0.2)")
        s.add_argument("--seed", type=int, metavar="N", help="random seed of the split and of seeded models (default 42)")


@dataclass
class DataOptions:
    dataset: str | None = None
    data: str | None = None
    user_col: str = "user"
    item_col: str = "item"
    rating_col: str | None = None
    timestamp_col: str | None = None
    weight_col: str | None = None
    sep: str | None = None
    item_features: str | None = None
    data_dir: str | None = None
    download: bool = True
    synthetic_size: tuple[int, int, int] = (1000, 500, 20000)


def data_options(args: argparse.Namespace, config: dict[str, Any] | None = None) -> DataOptions:
    """Data options from flags, falling back to ``config`` (flags win)."""
    get = option_getter(args, config)
    opts = DataOptions(
        dataset=get("dataset"),
        data=get("data"),
        user_col=get("user_col", "user"),
        item_col=get("item_col", "item"),
        rating_col=get("rating_col"),
        timestamp_col=get("timestamp_col"),
        weight_col=get("weight_col"),
        sep=get("sep"),
        item_features=get("item_features"),
        data_dir=get("data_dir"),
        download=not bool(get("no_download", False)),
        synthetic_size=parse_size(get("synthetic_size", "1000,500,20000")),
    )
    if opts.dataset is None and opts.data is None:
        raise UsageError("give --dataset NAME or --data FILE")
    if opts.dataset is not None and opts.data is not None:
        raise UsageError("give either --dataset or --data, not both")
    if opts.dataset is not None and opts.dataset not in DATASETS:
        raise UsageError(f"unknown dataset {opts.dataset!r}; valid: {', '.join(DATASETS)} (or --data FILE)")
    return opts


@dataclass
class LoadedData:
    name: str
    source: str
    interactions: Interactions
    sha256: str
    columns: list[str]
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        d = self.interactions
        return {
            "name": self.name,
            "source": self.source,
            "n_users": int(d.n_users),
            "n_items": int(d.n_items),
            "n_interactions": int(d.nnz),
            "density": float(d.nnz / max(1, d.n_users * d.n_items)),
            "has_ratings": d.ratings is not None,
            "has_timestamps": d.timestamps is not None,
            "item_features": [] if d.item_features is None else [str(c) for c in d.item_features.columns],
            "user_features": [] if d.user_features is None else [str(c) for c in d.user_features.columns],
            "ratings_sha256": self.sha256,
            "hashed_columns": self.columns,
            "load_seconds": round(self.seconds, 3),
            **self.info,
        }


def frame_sha256(frame: pd.DataFrame, columns: list[str]) -> str:
    """SHA-256 of the parsed columns (name, dtype and values, in row order): equal data, equal hash.

    Examples
    --------
    >>> df = pd.DataFrame({"user": [1, 2], "item": ["a", "b"]})
    >>> frame_sha256(df, ["user", "item"]) == frame_sha256(df.copy(), ["user", "item"])
    True
    """
    h = hashlib.sha256()
    h.update(f"rows={len(frame)}".encode())
    for c in columns:
        col = frame[c]
        values = col.to_numpy()
        if values.dtype.kind in "biuf":
            arr = np.ascontiguousarray(values)
            h.update(f"|{c}:{arr.dtype.str}|".encode())
            h.update(arr.tobytes())
        else:
            h.update(f"|{c}:str|".encode())
            h.update("\x1f".join(map(str, values.tolist())).encode("utf-8"))
    return h.hexdigest()


def _read_table(path: str, sep: str | None, what: str) -> pd.DataFrame:
    import polars as pl

    if not os.path.exists(path):
        raise CLIError(f"{what} file not found: {path}")
    lower = path.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            frame = pl.read_parquet(path)
        elif lower.endswith((".csv", ".tsv", ".txt", ".csv.gz", ".dat")):
            frame = pl.read_csv(path, separator=sep or ("\t" if lower.endswith(".tsv") else ","), infer_schema_length=10000)
        else:
            raise CLIError(f"cannot tell the format of {path!r}: expected .csv, .tsv or .parquet")
    except pl.exceptions.PolarsError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CLIError(f"cannot read {what} file {path}: {first}") from None
    if frame.height == 0:
        raise CLIError(f"{what} file {path} has no rows")
    out: dict[str, Any] = {}
    for name in frame.columns:
        s = frame.get_column(name)
        out[name] = s.to_list() if str(s.dtype).startswith(("List", "Array")) else s.to_numpy()
    return pd.DataFrame(out)


def load_data(opts: DataOptions, *, seed: int = 42, quiet: bool = False) -> LoadedData:
    """Interactions (ratings, timestamps, features where the source has them), with a hash of the parsed rows.

    MovieLens: every rating is an interaction of weight 1 (the rating is kept
    as ``ratings`` for models that use it).
    """
    t0 = time.perf_counter()
    if opts.dataset == "synthetic":
        from recsys.datasets import synthetic

        u, i, n = opts.synthetic_size
        syn = synthetic(n_users=u, n_items=i, n_interactions=n, seed=seed, return_frames=True)
        cols = ["user", "item", "rating", "timestamp"]
        return LoadedData(
            name="synthetic",
            source=f"recsys.datasets.synthetic(n_users={u}, n_items={i}, n_interactions={n}, seed={seed})",
            interactions=syn.interactions,
            sha256=frame_sha256(syn.frame, cols),
            columns=cols,
            seconds=time.perf_counter() - t0,
        )
    if opts.dataset is not None:
        from recsys.datasets import load_movielens

        if not quiet:
            eprint(f"loading MovieLens {opts.dataset} ...")
        ml = load_movielens(opts.dataset, data_dir=opts.data_dir, download=opts.download)
        cols = ["user", "item", "rating", "timestamp"]
        data = ml.interactions()
        return LoadedData(
            name=opts.dataset,
            source=f"MovieLens {opts.dataset} ({os.path.basename(ml.path or opts.dataset)})",  # no machine path in results
            interactions=data,
            sha256=frame_sha256(ml.ratings, cols),
            columns=cols,
            seconds=time.perf_counter() - t0,
            info={"weights": "every rating an interaction of weight 1; ratings kept"},
        )
    assert opts.data is not None
    frame = _read_table(opts.data, opts.sep, "interactions")
    named = {"--user-col": opts.user_col, "--item-col": opts.item_col, "--rating-col": opts.rating_col,
             "--timestamp-col": opts.timestamp_col, "--weight-col": opts.weight_col}  # fmt: skip
    for flag, col in named.items():
        if col is not None and col not in frame.columns:
            raise CLIError(
                f"{opts.data} has no column {col!r} ({flag}); columns: {', '.join(map(str, frame.columns[:12]))}"
            )
    item_features = None
    if opts.item_features is not None:
        item_features = _read_table(opts.item_features, None, "item features")
        if opts.item_col not in item_features.columns:
            raise CLIError(f"{opts.item_features} has no item id column {opts.item_col!r}")
    cols = [c for c in (opts.user_col, opts.item_col, opts.rating_col, opts.timestamp_col, opts.weight_col) if c]
    data = Interactions.from_frame(
        frame,
        user_col=opts.user_col,
        item_col=opts.item_col,
        rating_col=opts.rating_col,
        timestamp_col=opts.timestamp_col,
        weight_col=opts.weight_col,
        item_features=item_features,
    )
    return LoadedData(
        name=os.path.basename(opts.data),
        source=os.path.abspath(opts.data),
        interactions=data,
        sha256=frame_sha256(frame, cols),
        columns=cols,
        seconds=time.perf_counter() - t0,
    )


@dataclass(frozen=True)
class SplitOptions:
    kind: str = "stratified"
    ratio: float = 0.75
    test_fraction: float = 0.2
    seed: int = 42

    def describe(self) -> dict[str, Any]:
        if self.kind == "stratified":
            return {"split": "stratified", "function": "stratified_split", "ratio": self.ratio, "by": "user", "seed": self.seed}
        if self.kind == "temporal":
            return {"split": "temporal", "function": "temporal_split", "test_fraction": self.test_fraction, "by": "user"}
        return {"split": "none"}


def split_options(args: argparse.Namespace, config: dict[str, Any] | None = None, *, default: str = "stratified") -> SplitOptions:
    get = option_getter(args, config)
    kind = get("split", default)
    if kind not in SPLITS:
        raise UsageError(f"unknown split {kind!r}; valid: {', '.join(SPLITS)}")
    ratio = get("ratio", 0.75)
    frac = get("test_fraction", 0.2)
    seed = get("seed", 42)
    for name, v in (("ratio", ratio), ("test-fraction", frac)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < 1:
            raise UsageError(f"--{name} must be a number in (0, 1); got {v!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UsageError(f"--seed must be an int >= 0; got {seed!r}")
    return SplitOptions(kind, float(ratio), float(frac), int(seed))


def make_split(data: Interactions, opts: SplitOptions) -> tuple[Interactions, Interactions]:
    from recsys.split import stratified_split, temporal_split

    if opts.kind == "stratified":
        return stratified_split(data, ratio=opts.ratio, by="user", seed=opts.seed)
    if opts.kind == "temporal":
        if data.timestamps is None:
            raise CLIError("--split temporal needs timestamps (give --timestamp-col, or use --split stratified)")
        return temporal_split(data, test_fraction=opts.test_fraction, by="user")
    raise UsageError("this command needs a train/test split; --split none is not allowed here")


def validation_split(train: Interactions, opts: SplitOptions) -> tuple[Interactions, Interactions]:
    """Validation carved out of train the same way the test split was made (never touching test)."""
    from recsys.split import temporal_split, train_validation_split

    if opts.kind == "temporal":
        return temporal_split(train, test_fraction=opts.test_fraction, by="user")
    return train_validation_split(train, ratio=opts.ratio, by="user", seed=1234)
