"""``recsys tune``: hyper-parameter search on a validation split carved out of train (recsys.tuning)."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from recsys.cli._data import add_data_args, data_options, load_data, make_split, split_options, validation_split
from recsys.cli._errors import UsageError
from recsys.cli._models import add_model_args, build_model
from recsys.cli._output import check_json_target, console, eprint, write_json
from recsys.cli._parse import parse_params, parse_value

HELP = "search a model's hyper-parameters on a validation split of train; save the search as JSON"

DESCRIPTION = """\
Split the data (--split, as 'recsys benchmark' does), carve a validation split
out of train, try settings of the model's hyper-parameters (each fitted on the
rest of train and scored on validation), pick the best, refit it on all of
train and score it on test once. Every trial's validation score, the space,
the winner and the test score are written to --out as JSON; --save-model
writes the refitted model. With --split none the search uses all the data
(validation carved out of it) and nothing is scored on a test split.

Spaces: --space NAME=v1,v2,... (a list), NAME=int:LOW:HIGH[:log] or
NAME=float:LOW:HIGH[:log] (ranges, for --method random/optuna). Without
--space the model's small default space (the one 'benchmark --tune' uses).

examples:
  recsys tune --model itemknn --dataset ml-100k --out itemknn-search.json
  recsys tune --model ease --space reg=float:50:2000:log --method random --trials 15 --dataset ml-100k --out ease.json
"""


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tune", help=HELP, description=DESCRIPTION, parents=parents, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    add_data_args(p)
    s = p.add_argument_group("search")
    s.add_argument("--space", action="append", metavar="NAME=VALUES", help="a dimension of the search space (repeatable)")
    s.add_argument("--method", default="auto", choices=("auto", "grid", "random", "optuna"), help="search method (default auto: grid when it fits, else optuna if installed, else random)")
    s.add_argument("--trials", type=int, metavar="N", help="settings to try (random/optuna default 20; grid: all)")
    s.add_argument("--timeout", type=float, metavar="SECONDS", help="start no new trial after this")
    s.add_argument("--metric", default=None, metavar="METRIC", help="validation metric, e.g. ndcg@10 (default), recall@20, rmse")
    s.add_argument("--k", type=int, default=10, metavar="K", help="cut-off when --metric has no @k (default 10)")
    p.add_argument("--out", required=True, metavar="FILE", help="JSON file for the search (replaces only a JSON result recsys wrote, never another file)")
    p.add_argument("--save-model", metavar="DIR", help="also save the refitted winner as an artifact")
    p.set_defaults(run=run)


def parse_space(items: list[str]) -> dict[str, Any]:
    from recsys.tuning import Float, Int

    space: dict[str, Any] = {}
    for item in items:
        name, eq, spec = item.partition("=")
        name = name.strip()
        if not eq or not name or not spec.strip():
            raise UsageError(f"--space expects NAME=v1,v2 or NAME=int:LOW:HIGH[:log]; got {item!r}")
        head = spec.split(":")
        if head[0] in ("int", "float") and len(head) in (3, 4):
            if len(head) == 4 and head[3] != "log":
                raise UsageError(f"--space {item!r}: the optional 4th field must be 'log'")
            try:
                lo, hi = (int(head[1]), int(head[2])) if head[0] == "int" else (float(head[1]), float(head[2]))
            except ValueError:
                raise UsageError(f"--space {item!r}: LOW and HIGH must be {head[0]}s") from None
            space[name] = (Int if head[0] == "int" else Float)(lo, hi, log=len(head) == 4)  # type: ignore[arg-type]
        else:
            space[name] = [parse_value(v) for v in spec.split(",") if v.strip()]
    return space


def run(args: argparse.Namespace) -> int:
    from recsys.evaluation import Evaluator
    from recsys.models import _registry
    from recsys.tuning import search

    opts = data_options(args)
    split = split_options(args)
    check_json_target(args.out, "--out")  # before the search, not after it
    loaded = load_data(opts, seed=split.seed)
    data = loaded.interactions
    fixed = parse_params(args.param)
    model = build_model(args.model, fixed, data.n_items)
    if args.space:
        space = parse_space(args.space)
    else:
        space, _ = _registry.tune_space(args.model, model)
        for p in fixed:
            space.pop(p, None)
        if not space:
            raise UsageError(f"{args.model} has no default search space here; give --space NAME=VALUES")
    metric = args.metric or f"ndcg@{args.k}"
    if split.kind == "none":
        train, test = data, None
    else:
        train, test = make_split(data, split)
    validation = validation_split(train, split)
    eprint(f"tuning {type(model).__name__} on {loaded.name}: {train.nnz:,} train rows; space {space}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = search(
            model, space, train, method=args.method, n_trials=args.trials, metric=metric, k=args.k,
            validation=validation, timeout=args.timeout, seed=split.seed, refit=True,
        )  # fmt: skip
    payload = res.to_dict()
    payload["data"] = loaded.describe()
    payload["split"] = split.describe()
    best = res.model
    assert best is not None
    if test is not None:
        name, _, at = res.metric.partition("@")
        ev = Evaluator(train, test, k=int(at) if at else args.k, metrics=[name])
        test_score = ev.evaluate(best, on_unknown="skip").summary[res.metric]
        payload["test"] = {"metric": res.metric, "score": test_score, "note": "scored once, after selection"}
    write_json(args.out, payload)
    _print_trials(res, payload.get("test"))
    if args.save_model:
        best.save(args.save_model)
        eprint(f"saved the refitted winner to {args.save_model}")
    eprint(f"wrote {args.out}")
    return 0


def _print_trials(res: Any, test: dict[str, Any] | None) -> None:
    from rich.table import Table

    table = Table(title=f"{res.model_class.rsplit('.', 1)[-1]}: {res.method} search, validation {res.metric} ({res.direction})")
    names = list(res.space)
    for h in ["#"] + names + [res.metric, "fit s", "status"]:
        table.add_column(h, justify="right")
    for t in res.trials:
        if t.status == "ok":
            mark = "best" if t.params == res.best_params else "ok"
        else:
            mark = (t.error or "failed")[:60]
        score = "–" if t.score is None else f"{t.score:.4f}"
        table.add_row(str(t.number), *[repr(t.params.get(n)) for n in names], score, f"{t.fit_seconds:.2f}", mark)
    con = console()
    con.print(table)
    line = f"best {res.best_params}: validation {res.metric} {res.best_score:.4f}"
    if test is not None:
        line += f"; refit on train, test {res.metric} {test['score']:.4f} (evaluated once)"
    con.print(line)
