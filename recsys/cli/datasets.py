"""``recsys datasets``: list, download and describe the MovieLens releases (and synthetic data)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

from recsys._utils.jsonable import to_jsonable
from recsys.cli._data import DATASETS, data_options, load_data
from recsys.cli._errors import UsageError
from recsys.cli._output import console

HELP = "list, download or describe the MovieLens releases"

DESCRIPTION = """\
MovieLens releases are downloaded from GroupLens on first use (checked against
the published MD5) into $RECSYS_DATA_DIR, else ~/.cache/recsys. Their licence
forbids redistribution: keep them out of repositories.

examples:
  recsys datasets list
  recsys datasets download ml-100k
  recsys datasets describe ml-100k
  recsys datasets describe synthetic --synthetic-size 500,200,5000
"""


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    from recsys.cli import _Parser

    p = sub.add_parser("datasets", help=HELP, description=DESCRIPTION, parents=parents, formatter_class=argparse.RawDescriptionHelpFormatter)
    act = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    ls = act.add_parser("list", help="the releases, their size and whether they are here", parents=parents)
    ls.add_argument("--data-dir", metavar="DIR", help="where releases live (default: $RECSYS_DATA_DIR, else ~/.cache/recsys)")
    dl = act.add_parser("download", help="download a release (no-op when present)", parents=parents)
    dl.add_argument("name", help="release name")
    dl.add_argument("--data-dir", metavar="DIR")
    de = act.add_parser("describe", help="statistics of a release or of synthetic data", parents=parents)
    de.add_argument("name", help=f"one of {', '.join(DATASETS)}")
    de.add_argument("--data-dir", metavar="DIR")
    de.add_argument("--no-download", action="store_true", default=None, help="fail instead of downloading")
    de.add_argument("--synthetic-size", metavar="U,I,N", help="users, items and interactions of synthetic data")
    de.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def _root(data_dir: str | None) -> str:
    d = data_dir or os.environ.get("RECSYS_DATA_DIR") or os.path.join("~", ".cache", "recsys")
    return os.path.abspath(os.path.expanduser(d))


def run(args: argparse.Namespace) -> int:
    from recsys.datasets import RELEASES

    if args.action == "list":
        from rich.table import Table

        root = _root(args.data_dir)
        table = Table(title=f"MovieLens releases (data directory {root})")
        for c in ("name", "zip", "ratings", "users", "items", "tags", "here"):
            table.add_column(c, justify="left" if c in ("name", "here") else "right")
        for r in RELEASES.values():
            here = all(os.path.isfile(os.path.join(root, r.subdir, f)) for f in r.files)
            table.add_row(r.name, r.size, f"{r.n_ratings:,}", f"{r.n_users:,}", f"{r.n_items:,}", f"{r.n_tags:,}" if r.n_tags else "–", "yes" if here else "no")
        table.add_row("synthetic", "–", "any", "any", "any", "–", "generated")
        console().print(table)
        return 0
    if args.action == "download":
        from recsys.datasets import load_movielens

        if args.name not in RELEASES:
            raise UsageError(f"unknown release {args.name!r}; valid: {', '.join(RELEASES)}")
        ml = load_movielens(args.name, data_dir=args.data_dir, show_progress=None)
        print(f"{ml!r} at {ml.path}")
        return 0
    if args.name not in DATASETS:
        raise UsageError(f"unknown dataset {args.name!r}; valid: {', '.join(DATASETS)}")
    ns = argparse.Namespace(dataset=args.name, data=None, data_dir=args.data_dir, no_download=args.no_download, synthetic_size=args.synthetic_size)
    loaded = load_data(data_options(ns), quiet=args.json)
    stats = describe(loaded)
    if args.json:
        print(json.dumps(to_jsonable(stats), indent=2))
        return 0
    from rich.table import Table

    table = Table(title=f"{args.name}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for k, v in stats.items():
        table.add_row(k, v if isinstance(v, str) else json.dumps(to_jsonable(v)))
    console().print(table)
    if args.name in RELEASES:
        console().print(RELEASES[args.name].licence)
    return 0


def describe(loaded: Any) -> dict[str, Any]:
    """Counts, density, activity and popularity spread, ratings and time span of a dataset."""
    d = loaded.interactions
    uc = d.user_counts[d.user_counts > 0]
    ic = np.sort(d.item_counts)[::-1]
    top = max(1, int(round(0.01 * len(ic))))
    out: dict[str, Any] = {
        "source": loaded.source,
        "interactions": f"{d.nnz:,}",
        "users": f"{d.n_users:,}",
        "items": f"{d.n_items:,} ({int((d.item_counts == 0).sum()):,} without interactions)",
        "density": f"{d.nnz / max(1, d.n_users * d.n_items):.4%}",
        "interactions per user (min / median / mean / max)": f"{uc.min()} / {np.median(uc):.0f} / {uc.mean():.1f} / {uc.max()}",
        "share of interactions on the top 1% items": f"{ic[:top].sum() / max(1, ic.sum()):.1%}",
    }
    if d.ratings is not None:
        values, counts = np.unique(d.ratings, return_counts=True)
        if len(values) <= 12:
            out["ratings"] = ", ".join(f"{v:g}: {c:,}" for v, c in zip(values, counts))
        else:
            out["ratings"] = f"{d.ratings.min():g} .. {d.ratings.max():g}, mean {d.ratings.mean():.2f}"
    if d.timestamps is not None and d.timestamps.dtype.kind in "iu" and d.timestamp_unit in (None, "s"):
        import datetime as dt

        lo, hi = int(d.timestamps.min()), int(d.timestamps.max())
        if 0 < lo and hi < 4_102_444_800:  # plausible unix seconds
            fmt = "%Y-%m-%d"
            out["time span"] = f"{dt.datetime.fromtimestamp(lo, dt.UTC).strftime(fmt)} .. {dt.datetime.fromtimestamp(hi, dt.UTC).strftime(fmt)}"
    if d.item_features is not None:
        out["item features"] = ", ".join(map(str, d.item_features.columns))
    if d.user_features is not None:
        out["user features"] = ", ".join(map(str, d.user_features.columns))
    out["sha256 of parsed ratings"] = loaded.sha256
    return out
