"""One place that decides how long-running work shows progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled(show: bool | None) -> bool:
    """``show`` if given, else on unless RECSYS_PROGRESS=0 or stderr is not a terminal."""
    if show is not None:
        return show
    env = os.environ.get("RECSYS_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "")
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, show: bool | None = None, **kw: Any) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar when enabled (see :func:`progress_enabled`).

    Examples
    --------
    >>> list(progress(range(3), desc="demo", show=False))
    [0, 1, 2]
    """
    if not progress_enabled(show):
        yield from iterable
        return
    yield from tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True, **kw)


def progress_bar(*, desc: str, total: int | None = None, show: bool | None = None, **kw: Any) -> tqdm:
    """A manual progress bar (``update(n)``, ``set_postfix``), disabled when progress is off."""
    return tqdm(desc=desc, total=total, leave=False, dynamic_ncols=True, disable=not progress_enabled(show), **kw)
