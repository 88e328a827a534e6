"""PeakMemory: the kernel's high-water mark, nested blocks, and the sampling fallback."""

from __future__ import annotations

import mmap
import sys
import time

import numpy as np
import pytest

import recsys._utils.measure as measure
from recsys._utils.measure import PeakMemory

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self is Linux's")

MB = 2**20


def _touch(n_bytes: int) -> None:
    # fresh anonymous pages, written so resident, then unmapped: malloc's heap could reuse memory
    # already resident from earlier tests, and the RSS would not grow
    m = mmap.mmap(-1, n_bytes)
    np.frombuffer(m, dtype=np.uint8)[:] = 1
    m.close()


@linux
def test_peak_of_a_freed_allocation_is_seen_without_a_thread() -> None:
    with PeakMemory() as pm:
        _touch(200 * MB)  # freed before the block ends: only a peak measure sees it
    assert pm._thread is None and pm._kernel
    assert 180 * MB < pm.above_start < 320 * MB


@linux
def test_an_inner_block_does_not_hide_the_outer_peak() -> None:
    with PeakMemory() as outer:
        _touch(300 * MB)  # the outer block's peak comes before the inner block resets the mark
        with PeakMemory() as inner:
            _touch(100 * MB)
    assert 80 * MB < inner.above_start < 200 * MB
    assert outer.above_start > 280 * MB


@linux
def test_falls_back_to_sampling_when_the_mark_cannot_be_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure, "_reset_hwm", lambda: False)
    with PeakMemory(interval=0.001) as pm:
        m = mmap.mmap(-1, 200 * MB)
        a = np.frombuffer(m, dtype=np.uint8)
        a[:] = 1
        time.sleep(0.05)  # the sampler sees it
        del a
        m.close()
    assert pm._thread is not None and not pm._kernel
    assert pm.above_start > 180 * MB
