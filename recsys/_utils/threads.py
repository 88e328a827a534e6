"""Thread counts of the native libraries underneath: torch, BLAS/OpenMP (through threadpoolctl) and faiss.

One place sets them: :func:`limit_threads` for a block (restored after it),
:func:`set_process_threads` for a whole process (a serving worker).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger("recsys")

_controller: Any = None


def _blas_controller() -> Any:
    """threadpoolctl's controller, built once (it inspects the loaded libraries: ~ms per build)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


# Cap of recsys's own block-parallel work (recsys._utils.blocks); None: the CPUs the process may use.
_block_cap: int | None = None


@contextlib.contextmanager
def limit_threads(
    n: int | None, *, torch: bool = False, blas: bool = False, faiss: bool = False, blocks: bool = False
) -> Iterator[None]:
    """Run the block with ``n`` threads in the chosen libraries, restoring their counts afterwards.

    Parameters
    ----------
    n : int or None
        Threads; None leaves every setting alone.
    torch : bool
        torch's intra-op threads (``torch.set_num_threads``).
    blas : bool
        The BLAS libraries threadpoolctl finds (numpy's and faiss' OpenBLAS,
        MKL...), e.g. single-threaded BLAS under a solver that runs its own
        threads (implicit), else the two oversubscribe the cores.
    faiss : bool
        faiss' OpenMP threads (``faiss.omp_set_num_threads``).
    blocks : bool
        recsys's own block-parallel work (:func:`block_threads`).

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with limit_threads(1, torch=True):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        if torch:
            import torch as _torch

            before_torch = _torch.get_num_threads()
            _torch.set_num_threads(n)
            stack.callback(_torch.set_num_threads, before_torch)
        if faiss:
            import faiss as _faiss

            before_omp = _faiss.omp_get_max_threads()
            _faiss.omp_set_num_threads(n)
            stack.callback(_faiss.omp_set_num_threads, before_omp)
        if blas:
            stack.enter_context(_blas_controller().limit(limits=n, user_api="blas"))
        if blocks:
            global _block_cap
            before_blocks = _block_cap
            _block_cap = n
            stack.callback(_set_block_cap, before_blocks)
        yield


def _set_block_cap(n: int | None) -> None:
    global _block_cap
    _block_cap = n


def block_threads() -> int:
    """Threads for recsys's block-parallel work: the CPUs this process may run on, capped by
    :func:`set_process_threads` / ``limit_threads(n, blocks=True)`` and by ``RECSYS_BLOCK_THREADS``.

    Examples
    --------
    >>> with limit_threads(1, blocks=True):
    ...     block_threads()
    1
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    env = os.environ.get("RECSYS_BLOCK_THREADS")
    if env:
        n = min(n, int(env)) if int(env) > 0 else n
    if _block_cap is not None:
        n = min(n, _block_cap)
    return max(1, n)


def torch_threads(n: int | None) -> contextlib.AbstractContextManager[None]:
    """:func:`limit_threads` for torch alone: the block runs with ``n`` intra-op threads (None: unchanged)."""
    return limit_threads(n, torch=True)


def set_process_threads(n: int | None) -> None:
    """Limit this process's BLAS and OpenMP pools, recsys's block threads, and torch's threads if torch is loaded, to ``n`` for good.

    For a serving worker (several workers share the cores). BLAS limits are
    process-wide; OpenMP's apply to the calling thread and the threads it
    starts. A library threadpoolctl cannot drive is logged, not raised.
    None changes nothing.
    """
    if n is None:
        return
    _set_block_cap(n)
    try:
        from threadpoolctl import threadpool_limits

        # a fresh look at the loaded libraries (torch's OpenMP may have come after the cached one);
        # not restored: the limit is the process's from now on
        threadpool_limits(limits=n)
    except Exception:  # pragma: no cover - a library threadpoolctl cannot drive
        logger.warning("could not limit BLAS/OpenMP threads to %s", n)
    if "torch" in sys.modules:
        import torch as _torch

        _torch.set_num_threads(n)


__all__ = ["block_threads", "limit_threads", "set_process_threads", "torch_threads"]
