"""``recsys evaluate``: metrics with confidence intervals for a saved model (or a recommendation file)."""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import numpy as np

from recsys.cli._data import _read_table, add_data_args, data_options, load_data, make_split, split_options
from recsys.cli._errors import CLIError, UsageError
from recsys.cli._models import TimedModel
from recsys.cli._output import check_json_target, console, eprint, write_json
from recsys.cli._parse import parse_ks, parse_list

HELP = "evaluate a saved model (or a recommendations file) on the test side of a split"

DESCRIPTION = """\
Split the data as 'recsys benchmark' and 'recsys fit --split' do, ask the model
for every test user's top-k (train items excluded) and print every metric of
recsys's Evaluator with a 95% bootstrap confidence interval. The model must
have been fitted on the train side of the same split ('recsys fit --split
stratified --seed 42 ...'); evaluate warns when it saw test interactions.

examples:
  recsys fit --model ease --dataset ml-100k --split stratified --out models/ease
  recsys evaluate --model models/ease --dataset ml-100k --split stratified --k 10
  recsys evaluate --recommendations recs.csv --data ratings.csv --k 10 --metrics ndcg,recall
  recsys evaluate --recommendations recs/ --dataset ml-100k --split stratified --engine ray

A directory written by 'recsys recommend --out' is evaluated partition by
partition (locally or on Ray, --engine), every metric merged exactly from
per-partition sums and counts; it reports no confidence intervals and no
rmse/mae (they need per-user values and predictions).
"""


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=DESCRIPTION, parents=parents, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("what to evaluate (one of)")
    src.add_argument("--model", metavar="DIR", help="model artifact directory")
    src.add_argument("--recommendations", metavar="FILE", help="CSV/Parquet with user, item and rank (or score) columns, or a 'recsys recommend --out' directory")
    add_data_args(p)
    p.add_argument("--k", default="10", metavar="K", help="cut-off(s), e.g. 10 or 5,10 (default 10)")
    p.add_argument("--metrics", metavar="LIST", help="metric names (default: all)")
    p.add_argument("--n-boot", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--engine", default="local", choices=("local", "ray"), help="for a recommendations directory: where to evaluate it (default local)")
    p.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: a local cluster)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON (replaces only a JSON result recsys wrote, never another file)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recsys.evaluation import Evaluator

    if bool(args.model) == bool(args.recommendations):
        raise UsageError("give exactly one of --model or --recommendations")
    ks = parse_ks(args.k)
    if args.json:
        check_json_target(args.json, "--json")  # before the work, not after it
    metrics = parse_list(args.metrics, "--metrics") if args.metrics else None
    opts = data_options(args)
    split = split_options(args)
    if split.kind == "none":
        raise UsageError("evaluate needs a train/test split: --split stratified or temporal")
    partitioned = bool(args.recommendations) and os.path.isdir(args.recommendations)
    if not partitioned and (args.engine != "local" or args.address):
        raise UsageError("--engine and --address go with --recommendations DIR (a 'recsys recommend --out' directory)")
    loaded = load_data(opts, seed=split.seed)
    train, test = make_split(loaded.interactions, split)
    if partitioned:
        return _run_partitioned(args, train, test, ks, metrics, loaded.name, split.kind)
    evaluator = Evaluator(train, test, k=ks, metrics=metrics)
    t0 = time.perf_counter()
    if args.model:
        from recsys.persistence import load_model

        if not os.path.isdir(args.model):
            raise CLIError(f"model directory not found: {args.model}")
        model = load_model(args.model)
        _check_leak(model, test)
        what = type(model).__name__
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = evaluator.evaluate(TimedModel(model, train), on_unknown="skip")
    else:
        frame = _read_table(args.recommendations, None, "recommendations")
        what = os.path.basename(args.recommendations)
        result = evaluator.evaluate(frame)
    seconds = time.perf_counter() - t0
    d = result.to_dict(n_boot=args.n_boot)
    from rich.table import Table

    table = Table(title=f"{what} on {loaded.name} ({split.kind} split): {result.n_users_evaluated:,} users evaluated")
    for c in ("metric", "value", "95% CI"):
        table.add_column(c, justify="right")
    for key, value in d["summary"].items():
        ci = d["confidence_intervals"].get(key)
        table.add_row(key, "–" if value is None else f"{value:.4f}", f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
    con = console()
    con.print(table)
    for note in d["notes"]:
        con.print(note)
    con.print(f"evaluated in {seconds:.2f} s")
    if args.json:
        write_json(args.json, {"format": "recsys-evaluation", "what": what, "data": loaded.describe(), "split": split.describe(), **d}, "--json")
        eprint(f"wrote {args.json}")
    return 0


def _run_partitioned(
    args: argparse.Namespace, train: Any, test: Any, ks: list[int], metrics: list[str] | None, data_name: str, split_kind: str
) -> int:
    """Evaluate a recommend_all directory with recsys.distributed.evaluate_distributed."""
    from rich.table import Table

    from recsys.distributed import evaluate_distributed

    t0 = time.perf_counter()
    summary = evaluate_distributed(
        args.recommendations, test, k=ks, train=train, metrics=metrics, engine=args.engine, address=args.address
    )
    seconds = time.perf_counter() - t0
    what = os.path.basename(os.path.normpath(args.recommendations))
    table = Table(title=f"{what} on {data_name} ({split_kind} split), {args.engine} engine")
    for c in ("metric", "value"):
        table.add_column(c, justify="right")
    for key, value in summary.items():
        table.add_row(key, "–" if np.isnan(value) else f"{value:.4f}")
    con = console()
    con.print(table)
    con.print(f"evaluated in {seconds:.2f} s")
    if args.json:
        clean = {key: None if np.isnan(v) else v for key, v in summary.items()}
        write_json(args.json, {"format": "recsys-evaluation", "what": what, "engine": args.engine, "summary": clean}, "--json")
        eprint(f"wrote {args.json}")
    return 0


def _check_leak(model: Any, test: Any) -> None:
    """Warn when the model was fitted on test interactions (not on this split's train side)."""
    frame = test.to_frame()
    u = model.users_.to_index(frame["user"].to_numpy(), missing="negative")
    i = model.items_.to_index(frame["item"].to_numpy(), missing="negative")
    ok = (u >= 0) & (i >= 0)
    if not ok.any():
        return
    seen = np.asarray(model.seen_[u[ok], i[ok]]).ravel() != 0
    n = int(seen.sum())
    if n:
        eprint(
            f"warning: the model saw {n:,} of {len(frame):,} test interactions when it was fitted, so these metrics "
            "are optimistic; fit it on the train side of the same split (recsys fit --split ... --seed ...)"
        )
