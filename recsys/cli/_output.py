"""What the subcommands print and write: stderr progress, rich tables, JSON result files, library versions."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from typing import Any

from recsys._utils.fs import read_json_file, write_text_atomic
from recsys._utils.jsonable import to_jsonable
from recsys.cli._errors import UsageError


def eprint(*parts: Any) -> None:
    """Progress and notes on stderr (stdout is for results), flushed at once."""
    print(*parts, file=sys.stderr, flush=True)


def console(stderr: bool = False) -> Any:
    """A rich Console (tables in the terminal; plain text when output is not a terminal)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # a terminal gets its own width; a file or pipe gets room for the whole table
    width = None if stream.isatty() else 200
    return Console(file=stream, highlight=False, soft_wrap=False, width=width)


_VERSIONED = (
    "recsys", "numpy", "scipy", "pandas", "polars", "torch", "implicit", "faiss-cpu", "tqdm",
    "gensim", "sentence-transformers", "optuna", "matplotlib", "rich", "scikit-surprise", "cornac",
)  # fmt: skip


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of recsys and the libraries a result depends on (and ``extra``), for results.json."""
    out: dict[str, str] = {}
    for name in _VERSIONED + extra:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    from recsys import __version__

    out["recsys"] = __version__
    return out


def _recsys_format(value: Any) -> str | None:
    """The ``format`` of a JSON document this library writes (``"recsys-..."``), else None."""
    fmt = value.get("format") if isinstance(value, dict) else None
    return fmt if isinstance(fmt, str) and fmt.startswith("recsys-") else None


def check_json_target(path: str, flag: str) -> None:
    """Refuse ``path`` unless it is missing or a JSON result recsys wrote (it would be replaced).

    Called before the work, so a long run does not end in a refused write. A
    recsys result is a JSON object whose ``format`` starts with ``recsys-``
    (every JSON file the command line writes carries one); anything else at the
    path (a data file, another program's JSON, a directory) is the user's and is
    never replaced.

    Raises
    ------
    UsageError
        Exit code 2; the message names ``flag``, the path and what is there.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_json_target(str(d / "new.json"), "--out")
    >>> _ = (d / "ratings.csv").write_text("user,item\\n1,2\\n")
    >>> check_json_target(str(d / "ratings.csv"), "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    recsys.cli._errors.UsageError: refusing to write --out .../ratings.csv: it exists and is not a JSON result written by recsys; ...
    """
    if not os.path.lexists(path):
        return
    head = f"refusing to write {flag} {path}"
    if os.path.islink(path) or not os.path.isfile(path):
        raise UsageError(f"{head}: it exists and is not a regular file; choose a new path")
    if _recsys_format(read_json_file(path)) is None:
        raise UsageError(
            f"{head}: it exists and is not a JSON result written by recsys; "
            "only such a result is replaced, so choose a new path or remove the file"
        )


def write_json(path: str, payload: dict[str, Any], flag: str = "--out") -> None:
    """Write ``payload`` as strict JSON (NaN and infinities as null) to ``path`` atomically.

    ``payload`` must carry a ``format`` starting with ``recsys-`` (how a later
    write knows the file is a result it may replace, see :func:`check_json_target`).
    The file is written beside ``path`` and renamed over it, so a reader never
    sees half a file and a failed write leaves the old one.
    """
    if _recsys_format(payload) is None:
        raise ValueError(f"a JSON result needs a 'format' starting with 'recsys-'; got {payload.get('format')!r}")
    check_json_target(path, flag)
    write_text_atomic(path, json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n")
