"""Thread counts of the native libraries underneath: torch, BLAS/OpenMP (through threadpoolctl) and faiss.

One place sets them: :func:`limit_threads` for a block (restored after it),
:func:`set_process_threads` for a whole process (a serving worker).
"""

from __future__ import annotations

import contextlib
import logging
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


@contextlib.contextmanager
def limit_threads(n: int | None, *, torch: bool = False, blas: bool = False, faiss: bool = False) -> Iterator[None]:
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
        yield


def torch_threads(n: int | None) -> contextlib.AbstractContextManager[None]:
    """:func:`limit_threads` for torch alone: the block runs with ``n`` intra-op threads (None: unchanged)."""
    return limit_threads(n, torch=True)


def set_process_threads(n: int | None) -> None:
    """Limit this process's BLAS and OpenMP pools, and torch's threads if torch is loaded, to ``n`` for good.

    For a serving worker (several workers share the cores). BLAS limits are
    process-wide; OpenMP's apply to the calling thread and the threads it
    starts. A library threadpoolctl cannot drive is logged, not raised.
    None changes nothing.
    """
    if n is None:
        return
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


__all__ = ["limit_threads", "set_process_threads", "torch_threads"]
