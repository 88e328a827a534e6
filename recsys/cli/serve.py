"""``recsys serve``: the HTTP service of :mod:`recsys.serving` over a saved model."""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

from recsys.cli._errors import CLIError, UsageError

HELP = "serve a saved model over HTTP (FastAPI on uvicorn; pip install 'recsys[serve]')"

DESCRIPTION = """\
Start the recsys HTTP service on a model artifact directory (written by
'recsys fit' or Recommender.save): GET /recommend, POST /recommend for a
history, GET /similar, /health, /ready, /model, the OpenAPI docs at /docs,
and the explorer page at /explore (see 'recsys explore').

example:
  recsys serve --model models/itemknn --host 127.0.0.1 --port 8000 --workers 2
"""


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help=HELP, description=DESCRIPTION, parents=parents, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="DIR", help="model artifact directory")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port must be in 0..65535 (0: any free port); got {args.port}")
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1; got {args.workers}")
    if not os.path.isdir(args.model):
        raise CLIError(f"model directory not found: {args.model}")
    try:
        serving = importlib.import_module("recsys.serving")
    except ModuleNotFoundError as e:
        raise CLIError(f"the HTTP service needs {e.name}: pip install 'recsys[serve]'") from None
    serving.run(args.model, host=args.host, port=args.port, workers=args.workers)
    return 0
