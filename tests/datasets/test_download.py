"""The real download path: zips and checksums served by a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recsys.datasets import _download
from recsys.datasets._download import download_and_extract, parse_md5
from recsys.datasets.movielens import load_movielens
from recsys.errors import DatasetError, DownloadError
from tests.datasets._ml_fixtures import _Server, make_zip, md5_bsd, md5_gnu, ml100k_files, serve

ZIP = make_zip(ml100k_files())


@pytest.fixture
def server() -> Iterator[_Server]:
    with serve() as s:
        yield s


def _publish(server: _Server, body: bytes, md5: bytes | None = None, *, mode: str = "ok", name: str = "ml-100k") -> None:
    server.routes[f"/movielens/{name}.zip"] = (mode, body)
    server.routes[f"/movielens/{name}.zip.md5"] = ("ok", md5 if md5 is not None else md5_bsd(f"{name}.zip", body))


def _load(server: _Server, data_dir: Path, **kw: Any) -> Any:
    return load_movielens("ml-100k", data_dir=data_dir, base_url=server.url + "/movielens/", show_progress=False, **kw)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- good downloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("checksum", [md5_bsd, md5_gnu], ids=["bsd", "md5sum"])
def test_good_zip_is_verified_extracted_and_cached(server: _Server, tmp_path: Path, checksum: Any) -> None:
    _publish(server, ZIP, checksum("ml-100k.zip", ZIP))
    data_dir = tmp_path / "cache"  # created on demand
    ml = _load(server, data_dir)
    assert len(ml.ratings) == 4 and ml.items["title"].tolist()[0] == "Misérables, Les (1995)"
    assert server.requests == ["/movielens/ml-100k.zip.md5", "/movielens/ml-100k.zip"]
    # only the release directory, with the archive's files; no zip, no temporaries
    assert os.listdir(data_dir) == ["ml-100k"]
    assert sorted(os.listdir(data_dir / "ml-100k")) == ["README", "u.data", "u.item", "u.user"]
    assert (data_dir / "ml-100k" / "u.item").read_bytes() == ml100k_files()["ml-100k/u.item"]
    # second load: from disk, no request
    again = _load(server, data_dir)
    assert len(server.requests) == 2 and again.ratings.equals(ml.ratings)


def test_base_url_from_environment(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _publish(server, ZIP)
    monkeypatch.setenv("RECSYS_MOVIELENS_URL", server.url + "/movielens")
    ml = load_movielens("ml-100k", data_dir=tmp_path, show_progress=False)
    assert len(ml.ratings) == 4 and server.requests[-1] == "/movielens/ml-100k.zip"


def test_empty_release_directory_is_filled(server: _Server, tmp_path: Path) -> None:
    (tmp_path / "ml-100k").mkdir()
    _publish(server, ZIP)
    assert len(_load(server, tmp_path).ratings) == 4
    assert os.listdir(tmp_path) == ["ml-100k"]


def test_progress_bar_counts_every_byte(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {"n": 0}

    class Bar:
        def __init__(self, **kw: Any) -> None:
            seen["total"] = kw["total"]
            seen["show"] = kw["show"]

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: Any) -> None:
            pass

        def update(self, n: int) -> None:
            seen["n"] += n

    monkeypatch.setattr(_download, "progress_bar", Bar)
    _publish(server, ZIP)
    _load(server, tmp_path)
    assert seen == {"n": len(ZIP), "total": len(ZIP), "show": False}


# -- failures leave nothing behind ------------------------------------------------------------------


def test_corrupted_zip(server: _Server, tmp_path: Path) -> None:
    bad = bytearray(ZIP)
    bad[40:200] = b"\x00" * 160  # damage the first member's compressed data
    bad = bytes(bad)
    _publish(server, bad)  # the published checksum matches the damaged bytes
    with pytest.raises(DownloadError, match=r"archive is corrupt"):
        _load(server, tmp_path)
    assert os.listdir(tmp_path) == []


def test_not_a_zip(server: _Server, tmp_path: Path) -> None:
    _publish(server, b"<html>not a zip</html>")
    with pytest.raises(DownloadError, match=r"archive is corrupt"):
        _load(server, tmp_path)
    assert os.listdir(tmp_path) == []


def test_md5_mismatch(server: _Server, tmp_path: Path) -> None:
    _publish(server, ZIP, md5_bsd("ml-100k.zip", ZIP + b"x"))
    expected = hashlib.md5(ZIP + b"x").hexdigest()
    with pytest.raises(DownloadError, match=rf"MD5 checksum of .*ml-100k\.zip does not match: expected {expected}.*got {hashlib.md5(ZIP).hexdigest()}"):
        _load(server, tmp_path)
    assert os.listdir(tmp_path) == []


def test_interrupted_transfer(server: _Server, tmp_path: Path) -> None:
    _publish(server, ZIP, mode="truncate")
    with pytest.raises(DownloadError, match=rf"truncated: received {len(ZIP) // 2} of the {len(ZIP) + 4096} bytes announced") as info:
        _load(server, tmp_path)
    assert str(tmp_path / "ml-100k" / "u.data") in str(info.value)
    assert os.listdir(tmp_path) == []


def test_interrupt_by_user_mid_download(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Bar:
        def __init__(self, **kw: Any) -> None:
            pass

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: Any) -> None:
            pass

        def update(self, n: int) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(_download, "progress_bar", Bar)
    _publish(server, ZIP)
    with pytest.raises(KeyboardInterrupt):
        _load(server, tmp_path)
    assert os.listdir(tmp_path) == []


def test_archive_without_the_release_files(server: _Server, tmp_path: Path) -> None:
    files = ml100k_files()
    del files["ml-100k/u.item"]
    body = make_zip(files)
    _publish(server, body)
    with pytest.raises(DownloadError, match=r"does not contain ml-100k/u\.item"):
        _load(server, tmp_path)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("missing", ["zip", "md5"])
def test_http_404(server: _Server, tmp_path: Path, missing: str) -> None:
    _publish(server, ZIP)
    del server.routes["/movielens/ml-100k.zip" + (".md5" if missing == "md5" else "")]
    with pytest.raises(DownloadError, match=r"answered HTTP 404"):
        _load(server, tmp_path)
    assert os.listdir(tmp_path) == []


def test_garbage_checksum_file(server: _Server, tmp_path: Path) -> None:
    _publish(server, ZIP, b"<html>moved</html>")
    with pytest.raises(DownloadError, match=r"could not find an MD5 digest for 'ml-100k.zip'"):
        _load(server, tmp_path)
    assert server.requests == ["/movielens/ml-100k.zip.md5"]  # the zip was never fetched
    assert os.listdir(tmp_path) == []


def test_unreachable_server_names_the_missing_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(DatasetError, match=r"could not reach http://127\.0\.0\.1:\d+/ml-100k\.zip\.md5") as info:
        load_movielens("ml-100k", data_dir=tmp_path, base_url=url, show_progress=False)
    assert isinstance(info.value, DownloadError)
    msg = str(info.value)
    assert f"{tmp_path / 'ml-100k' / 'u.data'} does not exist" in msg and "RECSYS_DATA_DIR" in msg
    assert os.listdir(tmp_path) == []


def test_stalled_server_times_out(server: _Server, tmp_path: Path) -> None:
    _publish(server, ZIP, mode="stall")
    with pytest.raises(DownloadError, match=r"timed out"):
        download_and_extract(
            server.url + "/movielens/ml-100k.zip",
            md5_url=server.url + "/movielens/ml-100k.zip.md5",
            data_dir=str(tmp_path),
            subdir="ml-100k",
            required=["u.data"],
            show_progress=False,
            timeout=0.2,
        )
    assert os.listdir(tmp_path) == []


def test_concurrent_winner_is_kept(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If another process completes the release while we download, its copy is used and ours discarded."""
    real = _download._extract

    def extract_then_race(archive: str, into: str) -> None:
        real(archive, into)
        d = tmp_path / "ml-100k"
        d.mkdir()
        for f in ("u.data", "u.item", "u.user", "other"):
            (d / f).write_bytes(b"winner")

    monkeypatch.setattr(_download, "_extract", extract_then_race)
    _publish(server, ZIP)
    out = download_and_extract(
        server.url + "/movielens/ml-100k.zip",
        md5_url=server.url + "/movielens/ml-100k.zip.md5",
        data_dir=str(tmp_path),
        subdir="ml-100k",
        required=["u.data", "u.item", "u.user"],
        show_progress=False,
    )
    assert out == str(tmp_path / "ml-100k")
    assert os.listdir(tmp_path) == ["ml-100k"] and (tmp_path / "ml-100k" / "u.data").read_bytes() == b"winner"


# -- checksum files -------------------------------------------------------------------------------

H = "0e33842e24a9c977be4e0107933c0723"


@pytest.mark.parametrize(
    "text",
    [
        f"MD5 (ml-100k.zip) = {H}\n",
        f"MD5 (ml-100k.zip) = {H.upper()}",
        f"{H}  ml-100k.zip\n",
        f"{H} *ml-100k.zip\n",
        f"{H}\n",
        f"  MD5 (/home/x/ml-100k.zip) = {H}  \r\n",
        f"MD5 (ml-10M100K.zip) = {H}\n",  # a single entry belongs to the zip it sits beside
        f"{'1' * 32}  ml-1m.zip\n{H}  ml-100k.zip\n",
    ],
)
def test_parse_md5_forms(text: str) -> None:
    assert parse_md5(text, "ml-100k.zip") == H


@pytest.mark.parametrize(
    "text",
    ["", "<html>404</html>", "MD5 (ml-100k.zip) = 0e33842e", f"{'1' * 32}  ml-1m.zip\n{'2' * 32}  ml-20m.zip\n"],
)
def test_parse_md5_rejects(text: str) -> None:
    with pytest.raises(DownloadError, match=r"could not find an MD5 digest for 'ml-100k.zip'"):
        parse_md5(text, "ml-100k.zip")
