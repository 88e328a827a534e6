"""Saving never deletes what it did not write; replacing an artifact is atomic for readers and survives kill -9."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions, load_model, persistence
from recsys.cli import main as cli_main
from recsys.errors import ArtifactError
from recsys.models import Popular
from recsys.persistence import ArtifactDir, check_save_target
from recsys.serving import publish


@pytest.fixture
def old() -> Popular:
    return Popular().fit(Interactions.from_arrays(["ann", "bob", "bob"], ["x", "x", "y"]))


@pytest.fixture
def new() -> Popular:
    return Popular().fit(Interactions.from_arrays(["cy", "dee"], ["p", "q"]))


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` with its bytes (files) or link target: a snapshot to compare."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            out[rel] = ("-> " + os.readlink(p)) if p.is_symlink() else (p.read_bytes() if p.is_file() else "dir")
    return out


def _items(path: Path) -> list[str]:
    return load_model(path).items_.ids.tolist()  # type: ignore[no-any-return]


# -- what a save may replace --------------------------------------------------------


def test_save_creates_missing_and_fills_empty_directory(old: Popular, tmp_path: Path) -> None:
    assert old.save(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    (tmp_path / "empty").mkdir()
    old.save(tmp_path / "empty")
    assert _items(tmp_path / "a" / "b") == _items(tmp_path / "empty") == ["x", "y"]


def test_save_replaces_an_artifact_unless_overwrite_is_false(old: Popular, new: Popular, tmp_path: Path) -> None:
    old.save(tmp_path / "m")
    with pytest.raises(ArtifactError, match=r"already holds a recsys model artifact and overwrite=False"):
        new.save(tmp_path / "m", overwrite=False)
    assert _items(tmp_path / "m") == ["x", "y"]
    new.save(tmp_path / "m")
    assert _items(tmp_path / "m") == ["p", "q"]
    assert sorted(os.listdir(tmp_path)) == ["m"]  # the old directory and the temporary are gone


def _file(p: Path) -> None:
    p.write_text("user,item\n1,2\n")


def _dir_with_data(p: Path) -> None:
    p.mkdir()
    (p / "ratings.csv").write_text("user,item\n1,2\n")
    (p / "notes.txt").write_text("mine")


def _artifact_plus_file(p: Path) -> None:
    Popular().fit(Interactions.from_arrays(["a"], ["b"])).save(p)
    (p / "arrays" / "my_notes.txt").write_text("mine")


def _symlink_to_artifact(p: Path) -> None:
    Popular().fit(Interactions.from_arrays(["a"], ["b"])).save(p.parent / "real")
    os.symlink("real", p)


def _foreign_manifest(p: Path) -> None:
    p.mkdir()
    (p / "manifest.json").write_text('{"format": "somebody-elses-model", "files": {}}')


@pytest.mark.parametrize(
    "make, expected",
    [
        (_file, r"refusing to save to .*target: it is a file \(14 bytes\), not a model artifact"),
        (_dir_with_data, r"refusing to save to .*target/: it is a directory holding files that are not a recsys model artifact \(notes.txt, ratings.csv\)"),
        (_artifact_plus_file, r"target/: it holds a recsys artifact plus entries its manifest does not list \(arrays/my_notes.txt\)"),
        (_symlink_to_artifact, r"target: it is a symbolic link \(to 'real'\)"),
        (_foreign_manifest, r"target/: it is a directory holding files that are not a recsys model artifact \(manifest.json\)"),
    ],
)
@pytest.mark.parametrize("overwrite", [True, False])
def test_anything_but_an_artifact_is_refused_and_untouched(
    old: Popular, tmp_path: Path, make, expected: str, overwrite: bool  # type: ignore[no-untyped-def]
) -> None:
    target = tmp_path / "target"
    make(target)
    before = _tree(tmp_path)
    with pytest.raises(ArtifactError, match=expected):
        old.save(target, overwrite=overwrite)
    with pytest.raises(ArtifactError, match=expected):
        check_save_target(target, overwrite=overwrite)
    assert _tree(tmp_path) == before  # nothing deleted, nothing added (no temporary left either)


def test_served_root_current_is_refused_pointing_at_publish(old: Popular, new: Popular, tmp_path: Path) -> None:
    publish(old, tmp_path, version="v1")
    before = _tree(tmp_path)
    with pytest.raises(ArtifactError, match=r"'current' link of a served model root; .*recsys.serving.publish\(model, "):
        new.save(tmp_path / "current")
    with pytest.raises(ArtifactError, match=r"it is a served model root .*publish"):
        new.save(tmp_path)
    with pytest.raises(ArtifactError, match=r"published version of a served model root.*never replaced.*publish"):
        new.save(tmp_path / "versions" / "v1")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("umask, dirs, files", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600), (0o002, 0o775, 0o664)])
def test_artifact_permissions_follow_the_umask(old: Popular, new: Popular, tmp_path: Path, umask: int, dirs: int, files: int) -> None:
    prev = os.umask(umask)
    try:
        for m in (old, new):  # a fresh save, then a replacement
            p = m.save(tmp_path / "m")
            modes = {(q.is_dir(), q.stat().st_mode & 0o777) for q in [p, *p.rglob("*")]}
            assert modes == {(True, dirs), (False, files)}
    finally:
        os.umask(prev)


# -- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pd.DataFrame({"user": [1, 1, 2, 3], "item": [10, 11, 10, 12]}).to_csv(tmp_path / "ratings.csv", index=False)
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.txt").write_text("and me")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("out, what", [(".", "a directory holding files that are not a recsys model artifact (notes.txt, ratings.csv, sub)"),
                                       ("ratings.csv", "a file (")])
def test_cli_fit_out_refuses_user_files_with_exit_2(user_dir: Path, capsys: pytest.CaptureFixture[str], out: str, what: str) -> None:
    before = _tree(user_dir)
    code = cli_main(["fit", "--model", "popular", "--data", "ratings.csv", "--out", out])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("recsys fit: error: --out: refusing to save to ")
    assert str((user_dir / out).absolute()).rstrip(".").rstrip("/") in err and what in err
    assert _tree(user_dir) == before  # ratings.csv and every other file intact, nothing added


def test_cli_fit_out_writes_new_and_replaces_its_own_artifact(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["fit", "--model", "popular", "--data", "ratings.csv", "--out", "models/pop"]) == 0
    assert cli_main(["fit", "--model", "popular", "--data", "ratings.csv", "--out", "models/pop"]) == 0
    assert sorted(_items(user_dir / "models" / "pop")) == [10, 11, 12]
    assert sorted(os.listdir(user_dir / "models")) == ["pop"]


# -- atomic replacement -----------------------------------------------------------------


def test_a_load_whose_directory_is_replaced_mid_load_reads_one_whole_model(
    old: Popular, new: Popular, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save lands in the middle of one load: the load returns the old or the new model whole, never a mix."""
    p = old.save(tmp_path / "m")
    real_load, real_open = ArtifactDir.load_array, ArtifactDir._open_fd
    calls = {"load": 0, "open": 0}

    def save_at_second_array(self: ArtifactDir, rel: str, mmap: bool):  # type: ignore[no-untyped-def]
        calls["load"] += 1
        if calls["load"] == 2:
            new.save(p)  # swapped in, and the old directory deleted, while this load reads it
        return real_load(self, rel, mmap)

    monkeypatch.setattr(ArtifactDir, "load_array", save_at_second_array)
    got = load_model(p, mmap=True)
    assert calls["load"] > 2
    assert got.items_.ids.tolist() == ["x", "y"] and got.users_.ids.tolist() == ["ann", "bob"]  # the old one, whole
    np.testing.assert_array_equal(got.popularity_, old.popularity_)  # mapped files outlive their deletion
    assert _items(p) == ["p", "q"]

    # The save lands while the load is still opening the files: that attempt fails, and the load reads the new one.
    p2 = old.save(tmp_path / "m2")
    monkeypatch.setattr(ArtifactDir, "load_array", real_load)

    def save_at_third_open(self: ArtifactDir, rel: str) -> int:
        calls["open"] += 1
        if calls["open"] == 3:
            new.save(p2)
        return real_open(self, rel)

    monkeypatch.setattr(ArtifactDir, "_open_fd", save_at_third_open)
    got = load_model(p2)
    assert got.items_.ids.tolist() == ["p", "q"] and got.users_.ids.tolist() == ["cy", "dee"]
    np.testing.assert_array_equal(got.popularity_, new.popularity_)


def test_the_artifact_dir_follows_no_link_inside(old: Popular, tmp_path: Path) -> None:
    p = old.save(tmp_path / "m")
    outside = tmp_path / "outside.npy"
    np.save(outside, np.arange(3))
    victim = sorted((p / "arrays").iterdir())[0]
    victim.unlink()
    victim.symlink_to(outside)
    with ArtifactDir(p) as d:
        with pytest.raises(ArtifactError, match="symbolic link"):
            d.load_array(f"arrays/{victim.name}", mmap=True)
        with pytest.raises(ArtifactError, match="symbolic link"):
            d.files()
        with pytest.raises(ArtifactError, match="not a plain relative path"):
            d.open("../outside.npy")


def test_the_fallback_without_rename_exchange_replaces_too(old: Popular, new: Popular, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persistence, "_exchange", lambda a, b: False)
    old.save(tmp_path / "m")
    new.save(tmp_path / "m")
    assert _items(tmp_path / "m") == ["p", "q"] and sorted(os.listdir(tmp_path)) == ["m"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_next_save_removes_leftovers_of_killed_saves_only(old: Popular, new: Popular, tmp_path: Path) -> None:
    old.save(tmp_path / "m")
    dead = _dead_pid()
    (tmp_path / f".m.recsys-tmp-{dead}-0a1b2c3d" / "arrays").mkdir(parents=True)  # killed mid-write
    (tmp_path / ".m.recsys-tmp-1-0a1b2c3d").mkdir()  # pid 1 is alive: a save still running
    (tmp_path / f".other.recsys-tmp-{dead}-0a1b2c3d").mkdir()  # another artifact's: not this save's business
    (tmp_path / ".m.backup").mkdir()  # the user's
    # Killed between the fallback's two renames: the artifact is only in the "-old" directory.
    os.rename(tmp_path / "m", tmp_path / f".m.recsys-tmp-{dead}-feedbeef-old")
    assert _items(tmp_path / f".m.recsys-tmp-{dead}-feedbeef-old") == ["x", "y"]
    with pytest.raises(ArtifactError, match="not a model artifact directory"):
        load_model(tmp_path / "m")
    new.save(tmp_path / "m")
    assert _items(tmp_path / "m") == ["p", "q"]
    assert sorted(os.listdir(tmp_path)) == [".m.backup", ".m.recsys-tmp-1-0a1b2c3d", f".other.recsys-tmp-{dead}-0a1b2c3d", "m"]


def test_a_failed_save_leaves_the_old_artifact_and_no_temporary(old: Popular, tmp_path: Path) -> None:
    old.save(tmp_path / "m")
    bad = Popular().fit(Interactions.from_arrays(["a"], ["b"]))
    bad.extra_ = object()  # not saveable without pickle
    with pytest.raises(ArtifactError, match="cannot save attribute 'extra_'"):
        bad.save(tmp_path / "m")
    assert _items(tmp_path / "m") == ["x", "y"] and sorted(os.listdir(tmp_path)) == ["m"]


def test_small_kill_and_concurrent_read_drill(tmp_path: Path) -> None:
    """The drill of benchmarks/reliability_save.py at a small size: 5 kills, 200 loads."""
    from benchmarks import reliability_save as drill

    models = drill.make_variants(n_users=20, n_items=15)
    assert len({drill.fingerprint(m) for m in models}) == len(models)  # the check can tell the variants apart
    kills = drill.run_kills(tmp_path / "k" / "model", models, 5, random.Random(0))
    assert (kills.tried, kills.not_loadable, kills.half_written_visible, kills.leftovers_after_next_save) == (5, 0, 0, 0), kills.errors
    loads = drill.run_concurrent(tmp_path / "l" / "model", models, n_loads=200, n_saves=10, n_readers=2, max_seconds=60)
    assert loads.loads >= 200 and loads.saves >= 10, "the drill did not reach its counts in 60 s"
    assert (loads.failed, loads.wrong_model, loads.writer_errors) == (0, 0, 0), loads.errors


def test_the_artifact_dir_follows_no_linked_directory(old: Popular, tmp_path: Path) -> None:
    p = old.save(tmp_path / "m")
    os.rename(p / "arrays", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", p / "arrays")
    rel = "arrays/" + sorted(os.listdir(tmp_path / "elsewhere"))[0]
    with ArtifactDir(p) as d:
        with pytest.raises(ArtifactError, match="symbolic link on the way to arrays/"):
            d.read_bytes(rel)
        with pytest.raises(ArtifactError, match="symbolic link at arrays"):
            d.files()
