"""File-system helpers shared by the artifact writer and the serving store."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries to disk, so a rename or a new file in it survives a crash.

    ``os.replace`` is atomic, but the new name only lasts once the directory
    holding it is synced as well (POSIX).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     fsync_dir(d)
    """
    fd = os.open(Path(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["fsync_dir"]
