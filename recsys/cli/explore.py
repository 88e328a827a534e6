"""``recsys explore``: the explorer page of ``recsys serve`` for a local artifact or model root."""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

from recsys.cli._data import add_data_args, data_options, load_data
from recsys.cli._errors import CLIError, UsageError
from recsys.cli._output import eprint

HELP = "open the explorer page (recommendations, explanations, versions) for a saved model"

DESCRIPTION = """\
Serve the explorer page for a model artifact or model root (the page 'recsys
serve' has at /explore): pick a user, read their history and recommendations,
ask why an item is recommended, try a history of your own, compare two
versions of a model root. Titles, genres and history times come from the
artifact ('recsys fit' keeps them) or, with --dataset/--data, from that data.
Needs the serve extra (pip install 'recsys[serve]').

examples:
  recsys explore --model models/itemknn
  recsys explore --model models/itemknn --dataset ml-100k --port 8001
"""


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("explore", help=HELP, description=DESCRIPTION, parents=parents, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="DIR", help="model artifact directory or model root")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    add_data_args(p, split=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port must be in 0..65535 (0: any free port); got {args.port}")
    if not os.path.isdir(args.model):
        raise CLIError(f"model directory not found: {args.model}")
    try:
        serving = importlib.import_module("recsys.serving")
        uvicorn = importlib.import_module("uvicorn")
    except ModuleNotFoundError as e:
        raise CLIError(f"the explorer needs {e.name}: pip install 'recsys[serve]'") from None
    data = None
    if args.dataset is not None or args.data is not None:
        data = load_data(data_options(args)).interactions
    app = serving.create_app(args.model)
    app.state.explorer.data = data  # titles and histories from this data rather than from the artifact
    eprint(f"explorer: http://{args.host}:{args.port}/explore (Ctrl+C to stop)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
