"""limit_threads / set_process_threads: the one place that sets torch, BLAS and faiss thread counts."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import threadpoolctl
import torch

from recsys._utils.threads import limit_threads, set_process_threads, torch_threads


def _blas() -> list[int]:
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def _openmp() -> list[int]:
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]


@pytest.fixture()
def two_threads() -> None:
    """Start every test from 2 threads everywhere, so that a limit of 1 is visible."""
    np.ones(1) @ np.ones(1)  # numpy's BLAS is loaded
    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)
    threadpoolctl.threadpool_limits(2)
    assert _blas() and set(_blas()) == {2}, "threadpoolctl found no BLAS to limit"


def test_limit_threads_sets_and_restores_each_library(two_threads: None) -> None:
    with limit_threads(1, torch=True, blas=True, faiss=True):
        assert torch.get_num_threads() == 1
        assert set(_blas()) == {1}
        assert faiss.omp_get_max_threads() == 1
    assert torch.get_num_threads() == 2 and set(_blas()) == {2} and faiss.omp_get_max_threads() == 2


def test_only_the_chosen_libraries_change(two_threads: None) -> None:
    with limit_threads(1, blas=True):
        # (faiss' OpenBLAS is an OpenMP build: its count and OpenMP's move together, so they are not
        # asserted apart here)
        assert set(_blas()) == {1} and torch.get_num_threads() == 2
    assert set(_blas()) == {2} and faiss.omp_get_max_threads() == 2
    with torch_threads(1):
        assert torch.get_num_threads() == 1 and set(_blas()) == {2} and faiss.omp_get_max_threads() == 2
    with limit_threads(1, faiss=True):
        assert faiss.omp_get_max_threads() == 1 and torch.get_num_threads() == 2
    assert faiss.omp_get_max_threads() == 2 and set(_blas()) == {2}


def test_none_changes_nothing(two_threads: None) -> None:
    with limit_threads(None, torch=True, blas=True, faiss=True):
        assert torch.get_num_threads() == 2 and set(_blas()) == {2} and faiss.omp_get_max_threads() == 2


def test_counts_are_restored_when_the_block_raises(two_threads: None) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with limit_threads(1, torch=True, blas=True, faiss=True):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 2 and set(_blas()) == {2} and faiss.omp_get_max_threads() == 2


def test_set_process_threads_sets_blas_openmp_and_torch_for_good(two_threads: None) -> None:
    try:
        set_process_threads(1)
        assert torch.get_num_threads() == 1
        assert set(_blas()) == {1}
        assert set(_openmp()) <= {1}
        set_process_threads(None)  # no change
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(2)
        threadpoolctl.threadpool_limits(2)


def test_the_callers_use_it(two_threads: None) -> None:
    from recsys.index import ItemIndex
    from recsys.models.deep import trainer

    assert trainer.torch_threads is torch_threads
    idx = ItemIndex.build(np.eye(4, dtype=np.float32), threads=1)
    seen: list[tuple[int, int]] = []
    with idx._thread_limit():
        seen.append((faiss.omp_get_max_threads(), min(_blas())))
    assert seen == [(1, 1)] and faiss.omp_get_max_threads() == 2


def test_block_threads_follow_the_limits(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from recsys._utils.blocks import map_blocks
    from recsys._utils.threads import block_threads, limit_threads

    monkeypatch.delenv("RECSYS_BLOCK_THREADS", raising=False)
    cpus = block_threads()  # the CPUs, or less where an earlier test set the process's limit for good
    assert 1 <= cpus <= len(os.sched_getaffinity(0))
    with limit_threads(2, blocks=True):
        assert block_threads() == min(2, len(os.sched_getaffinity(0)))
    with limit_threads(1, blocks=True):
        assert block_threads() == 1
        seen = set()
        list(map_blocks(lambda b: seen.add(__import__("threading").get_ident()), range(8)))
        assert len(seen) == 1  # one thread: the caller's
    assert block_threads() == cpus
    monkeypatch.setenv("RECSYS_BLOCK_THREADS", "1")
    assert block_threads() == 1
