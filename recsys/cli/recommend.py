"""``recsys recommend``: top-k lists from a saved model, for known users or for a history."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import pandas as pd

from recsys.cli._errors import CLIError, UsageError
from recsys.cli._output import console
from recsys.cli._parse import parse_list
from recsys.data import IdParser
from recsys.errors import DataError

HELP = "print recommendations of a saved model for users or for an item history"

DESCRIPTION = """\
Load a model artifact (written by 'recsys fit' or Recommender.save) and print
the top-k items for the given users, or for a new user known only by the
items of their history (fold-in; models that support it).

examples:
  recsys recommend --model models/itemknn --users 1,2,3 --k 5
  recsys recommend --model models/itemknn --history 50,172,133 --k 10 --format json
  recsys recommend --model models/ease --users-file users.txt --format csv > recs.csv
  recsys recommend --model models/ease --all-users --k 10 --out recs/
  recsys recommend --model models/ease --all-users --engine ray --address auto --out recs/

With --out, the lists are written as partitioned Parquet (one file per block of
users, resumable: rerunning the same command skips the finished partitions),
in this process or on a Ray cluster (--engine ray, extra recsys[ray]).
"""


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recommend", help=HELP, description=DESCRIPTION, parents=parents, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="DIR", help="model artifact directory")
    who = p.add_argument_group("who (one of)")
    who.add_argument("--users", metavar="IDS", help="comma-separated user ids known to the model")
    who.add_argument("--users-file", metavar="FILE", help="a file with one user id per line")
    who.add_argument("--all-users", action="store_true", help="every user the model knows (needs --out)")
    who.add_argument("--history", metavar="IDS", help="comma-separated item ids of a new user's history")
    who.add_argument("--ratings", metavar="VALUES", help="ratings aligned with --history (models that use them)")
    p.add_argument("--k", type=int, default=10, help="list length (default 10)")
    p.add_argument("--include-seen", action="store_true", help="allow items the user already interacted with")
    p.add_argument("--on-unknown", default="error", choices=("error", "skip", "popular"), help="users the model does not know (default error)")
    p.add_argument("--items", metavar="IDS", help="restrict candidates to these items")
    p.add_argument("--exclude-items", metavar="IDS", help="never recommend these items")
    batch = p.add_argument_group("batch output (partitioned Parquet)")
    batch.add_argument("--out", metavar="DIR", help="write the lists to this directory instead of printing them")
    batch.add_argument("--engine", default="local", choices=("local", "ray"), help="where to compute them (default local)")
    batch.add_argument("--address", metavar="ADDR", help="Ray cluster address, e.g. auto or host:6379 (default: a local cluster)")
    batch.add_argument("--block-size", type=int, metavar="N", help="users per partition (default 50000)")
    batch.add_argument("--workers", type=int, metavar="N", help="Ray workers (default 2)")
    p.add_argument("--format", default="table", choices=("table", "csv", "json"), help="output format (default table)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recsys.persistence import load_model

    chosen = [x for x in (args.users, args.users_file, args.history, args.all_users) if x]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --users, --users-file, --history or --all-users")
    if args.out is None and (args.all_users or args.engine != "local" or args.address or args.block_size or args.workers):
        raise UsageError("--all-users, --engine, --address, --block-size and --workers go with --out DIR")
    if args.out is not None and (args.history or args.items or args.exclude_items or args.on_unknown != "error"):
        raise UsageError("--out writes lists of known users: it does not take --history, --items, --exclude-items or --on-unknown")
    if args.k < 1:
        raise UsageError(f"--k must be >= 1; got {args.k}")
    if args.ratings and not args.history:
        raise UsageError("--ratings goes with --history")
    if not os.path.isdir(args.model):
        raise CLIError(f"model directory not found: {args.model}")
    model = load_model(args.model)
    item_ids = IdParser(model.items_)
    items = _ids(item_ids, parse_list(args.items, "--items")) if args.items else None
    exclude = _ids(item_ids, parse_list(args.exclude_items, "--exclude-items")) if args.exclude_items else None
    if args.history:
        hist = _ids(item_ids, parse_list(args.history, "--history"))
        ratings = None
        if args.ratings:
            try:
                ratings = [float(x) for x in parse_list(args.ratings, "--ratings")]
            except ValueError:
                raise UsageError("--ratings must be numbers") from None
            if len(ratings) != len(hist):
                raise UsageError(f"--ratings has {len(ratings)} values for {len(hist)} --history items")
        ids, scores = model.recommend_history(
            hist, k=args.k, ratings=ratings, exclude_seen=not args.include_seen, candidates=items, exclude_items=exclude
        )
        frame = pd.DataFrame({"user": "(history)", "item": ids, "score": scores, "rank": range(1, len(ids) + 1)})
    else:
        if args.users_file:
            if not os.path.isfile(args.users_file):
                raise CLIError(f"users file not found: {args.users_file}")
            with open(args.users_file, encoding="utf-8") as f:
                tokens = [ln.strip() for ln in f if ln.strip()]
            if not tokens:
                raise CLIError(f"{args.users_file} lists no user")
        elif args.users:
            tokens = parse_list(args.users, "--users")
        users = None if args.all_users else _ids(IdParser(model.users_), tokens)
        if args.out is not None:
            return _batch(args, users)
        frame = model.recommend(
            users, k=args.k, exclude_seen=not args.include_seen, items=items, exclude_items=exclude, on_unknown=args.on_unknown
        )
    _emit(frame, args.format, type(model).__name__)
    return 0


def _batch(args: argparse.Namespace, users: list[Any] | None) -> int:
    """Write the lists as partitioned Parquet (recsys.distributed.recommend_all)."""
    from recsys.cli._output import eprint
    from recsys.distributed import recommend_all

    out = recommend_all(
        args.model,
        users,
        k=args.k,
        out=args.out,
        engine=args.engine,
        block_size=args.block_size,
        exclude_seen=not args.include_seen,
        address=args.address,
        num_workers=args.workers,
    )
    eprint(f"wrote {out.manifest['n_users']:,} users' top-{args.k} in {out.n_blocks} partitions to {args.out}")
    return 0


def _ids(parser: IdParser, tokens: list[str]) -> list[Any]:
    """Command-line tokens as the model's ids; text on an integer id map is a one-line CLI error."""
    try:
        return parser.many(tokens, strict=True)
    except DataError as e:
        raise CLIError(str(e)) from None


def _emit(frame: pd.DataFrame, fmt: str, model_name: str) -> None:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        out: dict[str, list[dict[str, Any]]] = {}
        for row in frame.itertuples(index=False):
            out.setdefault(str(row.user), []).append({"item": _py(row.item), "score": float(row.score), "rank": int(row.rank)})
        print(json.dumps(out, indent=1))
    else:
        from rich.table import Table

        table = Table(title=f"{model_name}: top {frame['rank'].max() if len(frame) else 0}")
        for c in ("user", "rank", "item", "score"):
            table.add_column(c, justify="right")
        for row in frame.itertuples(index=False):
            table.add_row(str(row.user), str(row.rank), str(row.item), f"{row.score:.4f}")
        console().print(table)


def _py(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x
