"""The ``recsys`` command line: benchmark, tune, fit, recommend, evaluate, datasets, serve, explore.

Each subcommand lives in its own module with ``add_parser`` and ``run``.
Errors are printed as one line (``recsys <command>: error: ...``) with exit
code 2 for bad usage and 1 for failures; ``--debug`` shows the traceback.

Examples
--------
>>> main(["--version"])  # doctest: +ELLIPSIS
recsys ...
0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["main"]

SUBCOMMANDS = ("benchmark", "tune", "fit", "recommend", "evaluate", "datasets", "serve", "explore")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) that point at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from recsys import __version__

    parser = _Parser(
        prog="recsys",
        description="recsys: classic and deep recommenders behind one API. Run 'recsys <command> --help' for details.",
        epilog="example: recsys benchmark --dataset ml-100k --out results/ml-100k",
    )
    parser.add_argument("--version", action="version", version=f"recsys {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"recsys.cli.{name}").add_parser(sub, [common])
    parser.set_defaults(_subparsers=sub.choices)
    return parser


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return " ".join(lines[:1]) if lines else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    from recsys.cli._errors import CLIError

    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(args_list)
        if extra:  # reported by the subcommand's parser, so the message names the subcommand
            owner = args._subparsers.get(args.command, parser) if args.command else parser
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else (0 if e.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    args.argv = args_list
    prog = f"recsys {args.command}"
    debug = bool(getattr(args, "debug", False))
    try:
        code: Any = args.run(args)
        return int(code or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except CLIError as e:
        if debug:
            raise
        print(f"{prog}: error: {_first_line(str(e))}", file=sys.stderr)
        return e.code
    except Exception as e:
        if debug:
            raise
        from recsys.errors import RecsysError

        kind = "" if isinstance(e, (RecsysError, OSError)) else f"{type(e).__name__}: "
        message = _first_line(str(e)) or type(e).__name__
        print(f"{prog}: error: {kind}{message} (run with --debug for the traceback)", file=sys.stderr)
        return 1
