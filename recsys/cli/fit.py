"""``recsys fit``: fit a model on interactions and save the artifact."""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

from recsys.cli._data import add_data_args, data_options, load_data, make_split, split_options
from recsys.cli._errors import CLIError, UsageError
from recsys.cli._models import add_model_args, build_model
from recsys.cli._output import eprint
from recsys.cli._parse import parse_params

HELP = "fit a model on a CSV/Parquet of interactions or a MovieLens release and save it"

DESCRIPTION = """\
Fit one model and save it as an artifact directory (JSON + .npy, hashed, no
pickle) that 'recsys recommend', 'recsys evaluate', 'recsys serve' and
recsys.load_model read. By default the model learns from all interactions;
with --split it learns from the train side only, so that 'recsys evaluate'
with the same split options scores it on unseen test rows.

examples:
  recsys fit --model itemknn --dataset ml-100k --out models/itemknn
  recsys fit --model ease --param reg=500 --data ratings.parquet --out models/ease
  recsys fit --model itemknn --params-from search.json --dataset ml-100k --split stratified --out models/knn
"""


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fit", help=HELP, description=DESCRIPTION, parents=parents, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--params-from", metavar="FILE", help="use the best setting of a search written by 'recsys tune' / recsys.tuning")
    add_data_args(p)
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="artifact directory to write: a new path, an empty directory, or an existing recsys artifact (replaced); "
        "anything else is refused",
    )
    p.add_argument(
        "--no-explorer-data",
        action="store_true",
        help="do not keep item titles/genres and interaction times with the artifact (kept by default when the data "
        "has them, for the explorer page of 'recsys serve' / 'recsys explore'; never used for scoring)",
    )
    p.set_defaults(run=run)


def _check_out(out: str) -> None:
    from recsys.errors import ArtifactError
    from recsys.persistence import check_save_target

    try:
        check_save_target(out)
    except ArtifactError as e:  # bad usage: exit 2, and nothing at --out is touched
        raise UsageError(f"--out: {e}") from None


def run(args: argparse.Namespace) -> int:
    from recsys.models.base import Recommender
    from recsys.tuning import TuningResult

    _check_out(args.out)  # before loading and fitting: a refused path costs nothing
    opts = data_options(args)
    split = split_options(args, default="none")
    loaded = load_data(opts, seed=split.seed)
    data = loaded.interactions
    if split.kind != "none":
        data, _ = make_split(data, split)
    params = parse_params(args.param)
    model = build_model(args.model, params, loaded.interactions.n_items)
    if args.params_from:
        tuned = TuningResult.load(args.params_from)
        if tuned.model_class != model.get_config()["class"]:
            raise CLIError(f"{args.params_from} tuned {tuned.model_class}, not {model.get_config()['class']}")
        model = Recommender.from_config(tuned.best_config)
        if params:
            from recsys.tuning import apply_params

            model = Recommender.from_config(apply_params(model.get_config(), params))
    eprint(f"fitting {model!r} on {data.nnz:,} interactions ({data.n_users:,} users x {data.n_items:,} items) ...")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data)
    fit_s = time.perf_counter() - t0
    if not args.no_explorer_data:
        from recsys.serving._catalog import keep_explorer_data

        keep_explorer_data(model, data)  # titles, genres, times: what the explorer page shows
    _check_out(args.out)  # again: the path may have changed during the fit
    path = model.save(args.out)
    print(f"fitted {type(model).__name__} in {fit_s:.2f} s on {loaded.name} ({split.kind} split: {'train side' if split.kind != 'none' else 'all rows'}); saved to {path}")
    return 0
