"""``recsys benchmark``: every model under one protocol, side by side, with a leaderboard, JSON and plots."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import textwrap
import time
import tomllib
import warnings
from collections.abc import Callable
from typing import Any

from recsys._utils.jsonable import to_jsonable
from recsys._utils.measure import PeakMemory, machine, machine_line
from recsys.cli._data import (
    add_data_args,
    data_options,
    load_data,
    make_split,
    option_getter,
    split_options,
    validation_split,
)
from recsys.cli._errors import CLIError, UsageError
from recsys.cli._models import TimedModel
from recsys.cli._output import check_json_target, console, eprint, versions, write_json
from recsys.cli._parse import parse_ks, parse_list, parse_params

HELP = "run models on one dataset under one protocol; write a leaderboard, results.json and plots"

DESCRIPTION = """\
Fit every requested model on the train split, recommend the top-k for every
test user (train items excluded), and score the lists with recsys's Evaluator:
every metric with a 95% bootstrap confidence interval, fit and recommend
seconds, peak memory, the hyper-parameters and how they were chosen. Writes
results.json, results.md (the leaderboard) and PNG plots to --out, and prints
the leaderboard.

{models}
A model needing an extra that is not installed (doc2vec, bert and hybrid need
recsys[content]) is skipped with a note.

examples:
  recsys benchmark --dataset ml-100k --out results/ml-100k
  recsys benchmark --dataset ml-100k --models itemknn,ease --k 10 --tune
  recsys benchmark --config benchmarks/ml-100k.toml
  recsys benchmark --data ratings.csv --user-col uid --item-col iid --timestamp-col ts --split temporal
"""

DEFAULT_PEERS = "implicit-als,implicit-bpr,implicit-bm25,implicit-cosine,surprise-svd,cornac-bpr,cornac-ease"

# Keys a --config TOML file may hold: the long flags with '_' for '-', and [params.<model>] tables.
CONFIG_KEYS = (
    "dataset", "data", "user_col", "item_col", "rating_col", "timestamp_col", "weight_col", "sep", "item_features",
    "data_dir", "no_download", "synthetic_size", "split", "ratio", "test_fraction", "seed", "models", "k", "out",
    "tune", "tune_metric", "tune_trials", "tune_timeout", "tune_sample", "compare_peers", "peers", "n_boot", "no_plots", "params",
)  # fmt: skip


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    from recsys.models._registry import DEFAULT_MODELS, MODELS

    models = ", ".join(MODELS)
    defaults = ",".join(DEFAULT_MODELS)
    p = sub.add_parser(
        "benchmark",
        help=HELP,
        description=DESCRIPTION.format(models=textwrap.fill(f"Models: {models}.", 78)),
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="a TOML file with the same options (flags given too take precedence)")
    add_data_args(p)
    m = p.add_argument_group("models and metrics")
    m.add_argument("--models", metavar="LIST", help=f"comma-separated model names (default: all but the sequential ones: {defaults})")
    m.add_argument("--k", metavar="K", help="cut-off(s), e.g. 10 or 5,10,20; the first one sorts the leaderboard (default 10)")
    m.add_argument("--param", action="append", metavar="MODEL.NAME=VALUE", help="override a model's hyper-parameter, e.g. itemknn.k=100 or hybrid.cf.k=50 (repeatable)")
    m.add_argument("--n-boot", type=int, metavar="N", help="bootstrap resamples of the confidence intervals (default 1000)")
    t = p.add_argument_group("tuning")
    t.add_argument("--tune", action="store_true", default=None, help="tune each model on a validation split carved out of train (recsys.tuning), then refit on train; test is evaluated once")
    t.add_argument("--tune-metric", metavar="METRIC", help="validation metric to optimise (default: ndcg at the first --k)")
    t.add_argument("--tune-trials", type=int, metavar="N", help="at most N settings per model (default: each model's small grid)")
    t.add_argument("--tune-timeout", type=float, metavar="SECONDS", help="no new trial of a model starts after this (default 300)")
    t.add_argument("--tune-sample", metavar="N", help="tune on the train interactions of N random users (or a fraction, e.g. 0.1), then refit the winner on all of train (default: all users)")
    c = p.add_argument_group("peers")
    c.add_argument("--compare-peers", action="store_true", default=None, help="also run implicit, Surprise and Cornac (those installed) under the same protocol")
    c.add_argument("--peers", metavar="LIST", help=f"which peers (default: all: {DEFAULT_PEERS})")
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="DIR", help="directory for results.json, results.md, plots and searches (default: benchmark-results/<dataset>)")
    o.add_argument("--no-plots", action="store_true", default=None, help="do not write PNG plots")
    p.set_defaults(run=run)


def read_config(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise CLIError(f"config file not found: {path}")
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from None
    unknown = [k for k in cfg if k not in CONFIG_KEYS]
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r}; valid keys: {', '.join(CONFIG_KEYS)}")
    params = cfg.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise UsageError(f"{path}: [params.<model>] must be tables of hyper-parameters, e.g. [params.itemknn] k = 100")
    return cfg


class Options:
    """The benchmark's options, from flags over the config file over the defaults."""

    def __init__(self, args: argparse.Namespace) -> None:
        from recsys._peers import PEERS
        from recsys.models._registry import DEFAULT_MODELS, MODELS

        cfg = read_config(args.config) if args.config else {}
        self.config_file = args.config

        get = option_getter(args, cfg)
        self.data = data_options(args, cfg)
        self.split = split_options(args, cfg)
        if self.split.kind == "none":
            raise UsageError("benchmark needs a train/test split: --split stratified or temporal")
        self.models = parse_list(get("models", ",".join(DEFAULT_MODELS)), "--models")
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise UsageError(f"unknown model {unknown[0]!r}; valid: {', '.join(MODELS)}")
        if len(set(self.models)) != len(self.models):
            raise UsageError("--models lists a model twice")
        self.ks = parse_ks(get("k", 10))
        self.n_boot = int(get("n_boot", 1000))
        if self.n_boot < 2:
            raise UsageError(f"--n-boot must be >= 2; got {self.n_boot}")
        self.tune = bool(get("tune", False))
        self.tune_metric = get("tune_metric") or f"ndcg@{self.ks[0]}"
        self.tune_trials = get("tune_trials")
        self.tune_timeout = float(get("tune_timeout", 300.0))
        self.tune_sample = parse_sample(get("tune_sample"))
        if self.tune_sample is not None and not self.tune:
            raise UsageError("--tune-sample needs --tune (it says which users the search sees)")
        self.compare_peers = bool(get("compare_peers", False))
        self.peers = parse_list(get("peers", DEFAULT_PEERS), "--peers")
        unknown = [pe for pe in self.peers if pe not in PEERS]
        if unknown:
            raise UsageError(f"unknown peer {unknown[0]!r}; valid: {', '.join(PEERS)}")
        self.no_plots = bool(get("no_plots", False))
        name = self.data.dataset or os.path.splitext(os.path.basename(self.data.data or "data"))[0]
        self.out = get("out") or os.path.join("benchmark-results", name)
        # per-model parameter overrides: config tables, then --param MODEL.NAME=VALUE
        self.params: dict[str, dict[str, Any]] = {m: dict(v) for m, v in cfg.get("params", {}).items()}
        for dotted, value in parse_params(getattr(args, "param", None)).items():
            model, _, pname = dotted.partition(".")
            if not pname:
                raise UsageError(f"--param expects MODEL.NAME=VALUE (e.g. itemknn.k=100); got {dotted!r}")
            self.params.setdefault(model, {})[pname] = value
        for model in self.params:
            if model not in MODELS:
                raise UsageError(f"parameters given for unknown model {model!r}; valid: {', '.join(MODELS)}")

    def resolved(self) -> dict[str, Any]:
        """The options as run (recorded in results.json)."""
        d = self.data
        return {
            "config_file": self.config_file,
            "dataset": d.dataset,
            "data": d.data,
            "columns": {"user": d.user_col, "item": d.item_col, "rating": d.rating_col, "timestamp": d.timestamp_col, "weight": d.weight_col} if d.data else None,
            "synthetic_size": list(d.synthetic_size) if d.dataset == "synthetic" else None,
            "split": self.split.describe(),
            "models": self.models,
            "k": self.ks,
            "params": self.params,
            "tune": self.tune,
            "tune_metric": self.tune_metric if self.tune else None,
            "tune_trials": self.tune_trials if self.tune else None,
            "tune_timeout": self.tune_timeout if self.tune else None,
            "tune_sample": self.tune_sample,
            "compare_peers": self.compare_peers,
            "peers": self.peers if self.compare_peers else [],
            "n_boot": self.n_boot,
        }


def parse_sample(value: Any) -> int | float | None:
    """``--tune-sample``: a number of users (int >= 1) or a fraction of them (0 < x < 1); None when not given."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number) and 0 < number < 1:
        return number
    if math.isfinite(number) and number >= 1 and number == int(number) and "." not in text:
        return int(number)
    raise UsageError(f"--tune-sample must be a number of users (e.g. 20000) or a fraction in (0, 1) (e.g. 0.1); got {value!r}")


def n_users_with_rows(data: Any) -> int:
    import numpy as np

    return int(np.count_nonzero(data.user_counts))


def sample_users(train: Any, size: int | float, seed: int) -> Any:
    """The train rows of a seeded random sample of the users who have some (all of them if fewer).

    The id maps stay those of ``train``, so a model tuned on the sample has the
    same users and items as the one refit on all of train.
    """
    import numpy as np

    users = np.flatnonzero(train.user_counts)
    n = int(round(size * len(users))) if isinstance(size, float) else int(size)
    n = max(1, min(n, len(users)))
    if n == len(users):
        return train
    chosen = np.random.default_rng(seed).choice(users, size=n, replace=False)
    keep = np.zeros(train.n_users, dtype=bool)
    keep[chosen] = True
    return train.take(keep[train.user_index])


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:400]


def run(args: argparse.Namespace) -> int:
    from recsys._peers import PEERS, PeerUnavailable, build_peer
    from recsys._utils.progress import progress_bar
    from recsys._utils.registry import class_path
    from recsys.cli._report import ok_records, print_table, write_markdown, write_plots
    from recsys.evaluation import DEFINITIONS_VERSION, Evaluator, compare
    from recsys.models import _registry
    from recsys.split import split_report
    from recsys.tuning import apply_params, search

    opts = Options(args)
    debug = bool(getattr(args, "debug", False))
    t_start = time.perf_counter()
    os.makedirs(opts.out, exist_ok=True)
    if not os.access(opts.out, os.W_OK):
        raise CLIError(f"cannot write to --out {opts.out}")
    check_json_target(os.path.join(opts.out, "results.json"), "--out")

    loaded = load_data(opts.data, seed=opts.split.seed)
    data = loaded.interactions
    train, test = make_split(data, opts.split)
    report = split_report(train, test)
    evaluator = Evaluator(train, test, k=opts.ks)
    k0 = opts.ks[0]
    main_metric = f"ndcg@{k0}"
    sp = opts.split
    if sp.kind == "stratified":
        desc = f"stratified_split(ratio={sp.ratio}, by='user', seed={sp.seed}), k={','.join(map(str, opts.ks))}"
    else:
        desc = f"temporal_split(test_fraction={sp.test_fraction}, by='user'), k={','.join(map(str, opts.ks))}"
    eprint(
        f"{loaded.name}: {data.n_users:,} users x {data.n_items:,} items, {data.nnz:,} interactions; "
        f"{train.nnz:,} train / {test.nnz:,} test; {evaluator.n_users_evaluated:,} users evaluated"
    )
    tune_data = train if opts.tune_sample is None else sample_users(train, opts.tune_sample, seed=sp.seed)
    validation = validation_split(tune_data, sp) if opts.tune else None
    if opts.tune_sample is not None:
        eprint(f"tuning on {n_users_with_rows(tune_data):,} of {n_users_with_rows(train):,} train users ({tune_data.nnz:,} interactions)")
    tuning_dir = os.path.join(opts.out, "tuning")

    records: list[dict[str, Any]] = []
    per_user: dict[str, Any] = {}
    results: dict[str, Any] = {}

    def evaluate(name: str, model: Any, rec: dict[str, Any], bar: Any) -> None:
        def recommended() -> None:
            bar.update(1)
            bar.set_postfix_str("evaluate")

        timed = TimedModel(model, train, recommended)
        bar.set_postfix_str("recommend")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = evaluator.evaluate(timed, on_unknown="skip")
        total = time.perf_counter() - t0
        bar.update(1)
        d = res.to_dict(n_boot=opts.n_boot)
        rec.update(
            {
                "status": "ok",
                "recommend_seconds": round(timed.seconds, 4),
                "evaluate_seconds": round(total - timed.seconds, 4),
                "metrics": d["summary"],
                "confidence_intervals": d["confidence_intervals"],
                "evaluation": {k: v for k, v in d.items() if k not in ("summary", "confidence_intervals")},
            }
        )
        per_user[name] = res.per_user[main_metric].to_numpy() if main_metric in res.per_user else None
        results[name] = res

    def measure(name: str, rec: dict[str, Any], bar: Any, prepare: Callable[[Any], Any]) -> None:
        """``prepare(bar)`` (the model: overrides and tuning applied), then fit and evaluate under one peak-memory probe.

        The outcome goes into ``rec``; a failure is recorded there and reported on
        stderr, never raised (unless --debug), so one model cannot end the run.
        """
        t_model = time.perf_counter()
        try:
            with PeakMemory() as mem:
                model = prepare(bar)
                bar.set_postfix_str("fit")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    model.fit(train)
                    rec["fit_seconds"] = round(time.perf_counter() - t0, 4)
                bar.update(1)
                if rec["kind"] == "recsys":  # a peer's parameters are its spec's, recorded already
                    rec["params"] = to_jsonable(model.get_config()["params"])
                evaluate(name, model, rec, bar)
            rec["peak_memory_mb"] = round(mem.peak / 2**20, 1)
            rec["peak_memory_above_start_mb"] = round(mem.above_start / 2**20, 1)
            if rec["kind"] == "recsys":
                rec["total_seconds"] = round(time.perf_counter() - t_model, 3)
        except KeyboardInterrupt:
            raise
        except PeerUnavailable as e:  # a peer library that imports but cannot run here
            rec.update({"status": "skipped", "note": str(e)})
        except Exception as e:
            if debug:
                raise
            rec.update({"status": "failed", "error": _one_line(e)})
            eprint(f"failed {name}: {_one_line(e)}")
        finally:
            bar.close()
        if rec["status"] == "ok":
            eprint(f"{name}: {main_metric} {rec['metrics'][main_metric]:.4f}, fit {rec['fit_seconds']:.2f} s, recommend {rec['recommend_seconds']:.2f} s")

    for name in opts.models:
        rec: dict[str, Any] = {"name": name, "kind": "recsys", "description": _registry.MODELS[name].description}
        records.append(rec)
        try:
            model = _registry.build(name, n_items=data.n_items)
        except _registry.Skip as e:
            rec.update({"status": "skipped", "note": str(e)})
            eprint(f"skipped {name}: {e}")
            continue
        except Exception as e:
            if debug:
                raise
            rec.update({"status": "skipped", "note": _one_line(e)})
            eprint(f"skipped {name}: {_one_line(e)}")
            continue
        rec["class"] = class_path(type(model))
        rec["params_source"] = "defaults"

        def prepare(bar: Any, model: Any = model) -> Any:  # called within this iteration, by measure
            overrides = opts.params.get(name, {})
            if overrides:
                model = type(model).from_config(apply_params(model.get_config(), overrides))
                rec["params_source"] = "config"
            if opts.tune:
                bar.set_postfix_str("tune")
                space, dropped = _registry.tune_space(name, model)
                for p in overrides:  # parameters fixed by the user are not searched
                    space.pop(p, None)
                if space:
                    spec = _registry.MODELS[name]
                    path = os.path.join(tuning_dir, f"{name}.json")
                    res = search(
                        model,
                        space,
                        train,
                        validation=validation,
                        metric=opts.tune_metric,
                        n_trials=opts.tune_trials or spec.n_trials,
                        timeout=opts.tune_timeout,
                        seed=sp.seed,
                        refit=False,
                        path=path,
                        show_progress=False,
                    )
                    model = res.best_model()
                    rec["params_source"] = "tuned"
                    rec["tuning"] = {
                        "file": os.path.relpath(path, opts.out),
                        "method": res.method,
                        "metric": res.metric,
                        "n_trials": len(res.trials),
                        "n_failed": res.n_failed,
                        "best_params": res.best_params,
                        "best_score": res.best_score,
                        "search_seconds": round(res.search_seconds, 3),
                        "dropped": dropped,
                    }
                else:
                    rec["params_source"] = "defaults (nothing to tune)" if not overrides else "config"
                bar.update(1)
            return model

        measure(name, rec, progress_bar(desc=f"{name:<8}", total=4 if opts.tune else 3), prepare)

    peers: list[dict[str, Any]] = []
    if opts.compare_peers:
        for pname in opts.peers:
            pspec = PEERS[pname]
            rec = {"name": pname, "kind": "peer", "library": pspec.pip, "params": pspec.params, "source": pspec.source}
            peers.append(rec)
            try:
                peer = build_peer(pname, sp.seed)
            except PeerUnavailable as e:
                rec.update({"status": "skipped", "note": str(e)})
                eprint(f"skipped {pname}: {e}")
                continue
            rec["note"] = peer.note
            measure(pname, rec, progress_bar(desc=f"{pname:<8}", total=3), lambda bar: peer)

    peer_versions = tuple(PEERS[p].pip for p in opts.peers) if opts.compare_peers else ()
    mach = machine()
    payload: dict[str, Any] = {
        "format": "recsys-benchmark",
        "format_version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "recsys " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:])),
        "config": opts.resolved(),
        "main_metric": main_metric,
        "dataset": loaded.describe(),
        "protocol": {
            **sp.describe(),
            "description": desc,
            "k": opts.ks,
            "n_train": int(train.nnz),
            "n_test": int(test.nnz),
            "n_users_evaluated": int(evaluator.n_users_evaluated),
            "n_test_users": int(evaluator.n_test_users),
            "cold_test_rows": {"user": int(report.cold_user_rows), "item": int(report.cold_item_rows)},
            "exclude_seen": True,
            "relevance": "every test interaction",
            "definitions_version": DEFINITIONS_VERSION,
            "n_bootstrap": opts.n_boot,
            "confidence_level": 0.95,
            "validation": (
                {"how": "train_validation_split(train, ratio, by='user', seed=1234)" if sp.kind == "stratified" else "temporal_split(train)"}
                if opts.tune
                else None
            ),
        },
        "machine": mach,
        "machine_line": machine_line(mach),
        "versions": versions(peer_versions),
        "models": records,
        "peers": peers,
        "comparisons": [],
    }

    # Paired comparison of the best model against EASE (or the runner-up) and the best peer.
    ranked = [r for r in ok_records(payload)]
    ours = [r for r in ranked if r["kind"] == "recsys"]
    if ours:
        best = ours[0]["name"]
        others = []
        ref = "ease" if "ease" in results and best != "ease" else (ours[1]["name"] if len(ours) > 1 else None)
        if ref:
            others.append(ref)
        theirs = [r for r in ranked if r["kind"] == "peer"]
        if theirs:
            others.append(theirs[0]["name"])
        for other in others:
            table = compare(results[best], results[other], n_boot=opts.n_boot)
            row = table.loc[main_metric]
            payload["comparisons"].append(
                to_jsonable(
                    {
                        "metric": main_metric,
                        "a": best,
                        "b": other,
                        "diff": float(row["diff"]),
                        "ci_low": float(row["ci_low"]),
                        "ci_high": float(row["ci_high"]),
                        "p_ttest": float(row["p_ttest"]),
                        "p_wilcoxon": float(row["p_wilcoxon"]),
                        "n_users": int(row["n_users"]),
                    }
                )
            )

    plots: list[str] = []
    if not opts.no_plots:
        plots, note = write_plots(opts.out, payload, {n: v for n, v in per_user.items() if v is not None})
        if note:
            eprint(note)
            payload["plots_note"] = note
    payload["plots"] = plots
    payload["total_seconds"] = round(time.perf_counter() - t_start, 2)
    payload = to_jsonable(payload)
    write_json(os.path.join(opts.out, "results.json"), payload)
    write_markdown(os.path.join(opts.out, "results.md"), payload, plots)
    print_table(payload, console())
    eprint(f"wrote {os.path.join(opts.out, 'results.json')}, results.md" + (f" and {len(plots)} plots" if plots else ""))
    return 0

