"""Checksummed, atomic download and extraction of dataset archives (stdlib only).

The archive is streamed to a temporary file inside the data directory, checked
against its published MD5, extracted into a temporary directory there and only
then moved into place with :func:`os.replace`. Whatever goes wrong (HTTP error,
truncated transfer, checksum mismatch, corrupt zip, Ctrl-C), the temporaries
are removed, so the cache never holds a half-written release.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from typing import IO

from recsys._utils.progress import progress_bar
from recsys._version import __version__
from recsys.errors import DownloadError

__all__ = ["DEFAULT_TIMEOUT", "download_and_extract", "fetch_text", "parse_md5"]

DEFAULT_TIMEOUT = 60.0  # seconds without data before a socket operation gives up
_CHUNK = 1 << 20
# "MD5 (ml-100k.zip) = 0e33..." (BSD md5) and "0e33...  ml-100k.zip" / "0e33... *ml-100k.zip" (md5sum)
_BSD = re.compile(r"^\s*MD5\s*\((?P<file>.+)\)\s*=\s*(?P<md5>[0-9a-fA-F]{32})\s*$")
_GNU = re.compile(r"^\s*(?P<md5>[0-9a-fA-F]{32})(?:\s+\*?(?P<file>.+?))?\s*$")


def parse_md5(text: str, filename: str | None = None) -> str:
    """The lower-case MD5 hex digest in a checksum file.

    Understands the BSD form ``MD5 (name) = <hash>``, the md5sum form
    ``<hash>  name`` (or ``<hash> *name``) and a bare hash. When the file lists
    several names, the line for ``filename`` is used.

    Parameters
    ----------
    text : str
        Contents of the checksum file.
    filename : str, optional
        Name of the archive the digest is wanted for.

    Returns
    -------
    str
        32 lower-case hex digits.

    Raises
    ------
    DownloadError
        No MD5 digest (for ``filename``) is found.

    Examples
    --------
    >>> parse_md5("MD5 (ml-100k.zip) = 0E33842E24A9C977BE4E0107933C0723")
    '0e33842e24a9c977be4e0107933c0723'
    >>> parse_md5("0e33842e24a9c977be4e0107933c0723  ml-100k.zip", "ml-100k.zip")
    '0e33842e24a9c977be4e0107933c0723'
    """
    found: list[tuple[str | None, str]] = []
    for line in text.splitlines():
        m = _BSD.match(line) or _GNU.match(line)
        if m:
            name = m.group("file")
            found.append((os.path.basename(name.strip()) if name else None, m.group("md5").lower()))
    if len(found) == 1:
        # the file sits beside its zip (<zip>.md5), so its one entry is the zip's even if named differently
        return found[0][1]
    named = [h for name, h in found if name == filename]
    if found and filename is None:
        return found[0][1]
    if named:
        return named[0]
    raise DownloadError(
        "could not find an MD5 digest"
        + (f" for {filename!r}" if filename else "")
        + " in the checksum file; expected 'MD5 (name) = <32 hex digits>' or '<32 hex digits>  name', "
        f"got {text.strip()[:200]!r}"
    )


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    req = urllib.request.Request(url, headers={"User-Agent": f"recsys/{__version__} (python urllib)"})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - the URL is the dataset's
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url} answered HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"could not reach {url}: {e.reason}") from e
    except (OSError, http.client.HTTPException) as e:  # timeouts, resets, malformed replies
        raise DownloadError(f"could not reach {url}: {e!r}") from e
    return resp  # type: ignore[no-any-return]


def fetch_text(url: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = 1 << 16) -> str:
    """The body of a small text resource (a checksum file).

    Parameters
    ----------
    url : str
        What to fetch.
    timeout : float
        Seconds a socket operation may wait.
    max_bytes : int
        Larger bodies are refused.

    Returns
    -------
    str
        The body decoded as UTF-8 (undecodable bytes replaced).

    Raises
    ------
    DownloadError
        The server is unreachable, answers an HTTP error, or sends more than
        ``max_bytes`` bytes.
    """
    with _open(url, timeout) as resp:
        try:
            body = resp.read(max_bytes + 1)
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(f"reading {url} failed: {e!r}") from e
    if len(body) > max_bytes:
        raise DownloadError(f"{url} is larger than {max_bytes} bytes; it does not look like a checksum file")
    return body.decode("utf-8", errors="replace")


def _stream(url: str, out: IO[bytes], *, desc: str, show_progress: bool | None, timeout: float) -> str:
    """Copy ``url`` into ``out``; return the MD5 of the bytes received."""
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    with _open(url, timeout) as resp:
        header = resp.headers.get("Content-Length")
        length = int(header) if header and header.strip().isdigit() else None
        with progress_bar(desc=desc, total=length, show=show_progress, unit="B", unit_scale=True, unit_divisor=1024) as bar:
            while True:
                try:
                    chunk = resp.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise DownloadError(f"the transfer of {url} broke off after {received} bytes: {e!r}") from e
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # http.client returns b"" when the connection closes early, so compare counts ourselves
    if length is not None and received != length:
        raise DownloadError(
            f"the download of {url} was truncated: received {received} of the {length} bytes announced "
            "(connection closed early); try again"
        )
    return digest.hexdigest()


def _extract(archive: str, into: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)  # sanitises absolute and '..' member names; checks each CRC
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        raise DownloadError(f"the downloaded archive is corrupt and cannot be extracted: {e}") from e


def _complete(directory: str, files: Sequence[str]) -> bool:
    return all(os.path.isfile(os.path.join(directory, f)) for f in files)


def _remove(path: str | None) -> None:
    if path is None:
        return
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def download_and_extract(
    url: str,
    *,
    md5_url: str | None,
    data_dir: str,
    subdir: str,
    required: Sequence[str],
    show_progress: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Download a zip, verify it and extract its ``subdir`` to ``data_dir/subdir``.

    Parameters
    ----------
    url : str
        The zip archive.
    md5_url : str or None
        The checksum file published beside it, fetched first; None skips the
        check (only for sources that publish none).
    data_dir : str
        Where the release directory goes; created if needed.
    subdir : str
        The top-level directory inside the archive (and the name it keeps).
    required : sequence of str
        Files (relative to ``subdir``) that must be in the archive.
    show_progress : bool, optional
        Progress bar; default decided by :func:`recsys._utils.progress.progress_enabled`.
    timeout : float
        Seconds a socket operation may wait for data.

    Returns
    -------
    str
        ``data_dir/subdir``.

    Raises
    ------
    DownloadError
        Unreachable server, HTTP error, truncated transfer, MD5 mismatch,
        corrupt archive, or an archive without the required files. Nothing is
        left behind in ``data_dir`` in any of these cases.
    """
    os.makedirs(data_dir, exist_ok=True)
    zip_name = url.rstrip("/").rsplit("/", 1)[-1]
    expected = parse_md5(fetch_text(md5_url, timeout=timeout), zip_name) if md5_url else None
    target = os.path.join(data_dir, subdir)
    tmp_zip: str | None = None
    tmp_dir: str | None = None
    try:
        fd, tmp_zip = tempfile.mkstemp(dir=data_dir, prefix=f".{subdir}-", suffix=".zip.part")
        with os.fdopen(fd, "wb") as out:
            actual = _stream(url, out, desc=f"download {zip_name}", show_progress=show_progress, timeout=timeout)
        if expected is not None and actual != expected:
            raise DownloadError(
                f"the MD5 checksum of {url} does not match: expected {expected} (from {md5_url}), "
                f"got {actual}; the file is damaged or has changed, so it was discarded"
            )
        tmp_dir = tempfile.mkdtemp(dir=data_dir, prefix=f".{subdir}-", suffix=".extract")
        _extract(tmp_zip, tmp_dir)
        _remove(tmp_zip)
        tmp_zip = None
        src = os.path.join(tmp_dir, subdir)
        missing = [f for f in required if not os.path.isfile(os.path.join(src, f))]
        if missing:
            raise DownloadError(
                f"the archive {url} does not contain {subdir}/{missing[0]}"
                + (f" (and {len(missing) - 1} more required files)" if len(missing) > 1 else "")
            )
        try:
            os.replace(src, target)  # atomic on one filesystem; replaces an empty directory
        except OSError:
            if not _complete(target, required):  # another process may have won the race
                raise
        return target
    finally:
        _remove(tmp_zip)
        _remove(tmp_dir)
