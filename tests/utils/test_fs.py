"""fsync_dir: the one directory flush of the artifact writer and the serving store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import recsys.persistence
import recsys.serving._layout
from recsys._utils import fs
from recsys._utils.fs import fsync_dir


def test_fsync_dir_syncs_the_directory_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    opened: dict[int, str] = {}
    real_open, real_fsync = os.open, os.fsync

    def spy_open(path: object, flags: int, *a: object) -> int:
        fd = real_open(path, flags, *a)  # type: ignore[arg-type]
        opened[fd] = str(path)
        return fd

    def spy_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(fs.os, "open", spy_open)
    monkeypatch.setattr(fs.os, "fsync", spy_fsync)
    fsync_dir(tmp_path)
    assert [opened[fd] for fd in synced] == [str(tmp_path)]
    with pytest.raises(OSError):  # the fd was closed afterwards
        os.fstat(synced[0])


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fsync_dir(tmp_path / "absent")


def test_persistence_and_serving_share_it() -> None:
    assert recsys.persistence._fsync_dir is fsync_dir
    assert recsys.serving._layout.fsync_dir is fsync_dir
