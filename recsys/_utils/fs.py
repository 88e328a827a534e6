"""File-system helpers shared by the artifact writer, the serving store and the JSON result writers."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


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


def write_text_atomic(path: str | os.PathLike[str], text: str | bytes) -> Path:
    """Write ``text`` (str as UTF-8, or bytes) to ``path`` through a temporary file in the same directory and ``os.replace``.

    A reader sees the old file or the new one, never half of one; a failed write
    leaves the old file and no temporary. Missing parent directories are created.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_text_atomic(pathlib.Path(tempfile.mkdtemp()) / "a" / "x.json", "{}\\n")
    >>> p.read_text(), [q.name for q in p.parent.iterdir()]
    ('{}\\n', ['x.json'])
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a result is an ordinary file
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def read_json_file(path: str | os.PathLike[str]) -> Any:
    """The JSON value in the regular file ``path``; None when it is not one (missing, a link, a directory, not JSON).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.json").write_text('{"format": "x"}'); _ = (d / "b.csv").write_text("u,i")
    >>> read_json_file(d / "a.json"), read_json_file(d / "b.csv"), read_json_file(d)
    ({'format': 'x'}, None, None)
    """
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return None
    try:
        with open(p, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


__all__ = ["fsync_dir", "read_json_file", "write_text_atomic"]
