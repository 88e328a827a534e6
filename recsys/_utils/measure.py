"""The machine a measurement ran on, and the peak memory of a block: shared by the CLI's benchmark and benchmarks/."""

from __future__ import annotations

import os
import platform
import sys
import threading
from typing import Any


def machine() -> dict[str, Any]:
    """Cores, memory, GPU (if any), OS and Python of this machine."""
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpu: str | None = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": cores,
        "usable_cores": usable,
        "memory_gib": mem_gib,
        "gpu": gpu,
        "torch_threads": torch_threads,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def machine_line(m: dict[str, Any]) -> str:
    """One line of :func:`machine`'s description, for reports."""
    gpu = m["gpu"] or "no GPU"
    return f"{m['cpu']}, {m['usable_cores']} cores, {m['memory_gib']} GiB, {gpu}, Python {m['python']}"


def rss() -> int | None:
    """Resident set size of this process in bytes (Linux), None where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _maxrss() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _hwm() -> int | None:
    """The kernel's peak RSS of this process since the last reset (VmHWM, bytes), None where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: ``5`` to /proc/self/clear_refs); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# blocks being measured by the kernel's high-water mark: an inner block's reset must not lose an outer's peak
_OPEN: list[PeakMemory] = []


class PeakMemory:
    """Peak resident memory while the block runs.

    On Linux the kernel keeps the exact peak (VmHWM, reset on entry), so
    nothing runs alongside the measured code; where that reset is not allowed,
    a thread samples the RSS every ``interval`` seconds; elsewhere
    ``ru_maxrss``. A sampling thread wakes up for the GIL hundreds of times a
    second and slowed a Python loop of small torch ops (BPR's fit) by half at
    2 ms, hence the kernel's figure first.

    ``peak`` is the process's peak RSS in the block, ``above_start`` the part above the RSS at entry.

    Examples
    --------
    >>> import mmap
    >>> with PeakMemory() as pm:  # fresh pages (a reused heap would not raise the RSS)
    ...     m = mmap.mmap(-1, 50_000_000)
    ...     m.write(b"x" * 50_000_000)
    ...     m.close()
    50000000
    >>> pm.above_start > 40_000_000
    True
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._kernel = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            r = rss()
            if r is not None and r > self.peak:
                self.peak = r

    def __enter__(self) -> PeakMemory:
        r = rss()
        self.start = r if r is not None else _maxrss()
        self.peak = self.start
        before = _hwm()
        if r is not None and before is not None and _reset_hwm():
            for outer in _OPEN:  # their peak so far, before the reset forgets it
                outer.peak = max(outer.peak, before)
            self._kernel = True
            _OPEN.append(self)
        elif r is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._kernel:
            self.peak = max(self.peak, _hwm() or 0)
            if self in _OPEN:
                _OPEN.remove(self)
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            r = rss()
            self.peak = max(self.peak, r or 0)
        else:
            self.peak = max(self.peak, _maxrss())

    @property
    def above_start(self) -> int:
        return max(0, self.peak - self.start)
