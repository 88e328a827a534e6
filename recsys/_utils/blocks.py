"""Independent blocks of work run on a few threads (numpy and scipy's sparse kernels release the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from recsys._utils.threads import block_threads

T = TypeVar("T")
R = TypeVar("R")


def map_blocks(fn: Callable[[T], R], blocks: Iterable[T], threads: int | None = None) -> Iterator[R]:
    """``fn`` of every block, results in the blocks' order, on ``threads`` threads (default :func:`block_threads`).

    At most ``threads`` blocks are in work at once, so memory is that many blocks' worth.
    ``fn`` must not share mutable state between blocks (writing disjoint slices of one array is fine).

    Examples
    --------
    >>> list(map_blocks(lambda b: b * b, range(5), threads=2))
    [0, 1, 4, 9, 16]
    """
    n = block_threads() if threads is None else threads
    if n <= 1:
        yield from map(fn, blocks)
        return
    with ThreadPoolExecutor(n) as ex:
        pending = []
        for b in blocks:
            pending.append(ex.submit(fn, b))
            if len(pending) >= n:
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()
