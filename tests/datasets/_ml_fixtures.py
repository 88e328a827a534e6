"""Tiny MovieLens releases written in each release's exact file format, and a local HTTP server.

The contents are made up (never real MovieLens rows) but follow the official
layouts byte for byte: encodings, separators, quoting, headers.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# -- ml-100k: tab-separated u.data, pipe-separated latin-1 u.item / u.user ------------

ML100K_DATA = "3\t20\t4\t881250949\n1\t10\t5\t881250950\n2\t20\t1\t881250951\n1\t30\t3\t881250952\n"


def _flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


ML100K_ITEM = (
    f"10|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Mis%E9rables|{_flags(8, 14)}\n"
    f"20|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story|{_flags(3, 4, 5)}\n"
    f"30|unknown||||{_flags(0)}\n"
    f"40|Château de ma mère, Le (1990)|01-Jan-1990||http://us.imdb.com/M/x|{_flags(18)}\n"
)
# a blank first line, as in some copies in circulation
ML100K_USER = "\n1|24|M|technician|85711\n2|53|F|other|01002\n3|33|F|writer|L9G2B\n"


def write_ml100k(root: Path, *, item: str = ML100K_ITEM, user: str = ML100K_USER, data: str = ML100K_DATA) -> Path:
    d = root / "ml-100k"
    d.mkdir(parents=True, exist_ok=True)
    (d / "u.data").write_bytes(data.encode("latin-1"))
    (d / "u.item").write_bytes(item.encode("latin-1"))
    (d / "u.user").write_bytes(user.encode("latin-1"))
    return d


def ml100k_files() -> dict[str, bytes]:
    """The ml-100k files as zip members (path inside the zip -> bytes)."""
    return {
        "ml-100k/u.data": ML100K_DATA.encode("latin-1"),
        "ml-100k/u.item": ML100K_ITEM.encode("latin-1"),
        "ml-100k/u.user": ML100K_USER.encode("latin-1"),
        "ml-100k/README": b"made-up test data\n",
    }


# -- ml-1m: '::'-separated latin-1 .dat files ----------------------------------------

ML1M_RATINGS = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
ML1M_MOVIES = (
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    "3::Señorita Extraviada::Documentary\n"
    "4::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Fantasy|Sci-Fi\n"
)
ML1M_USERS = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::0::55117\n"


def write_ml1m(root: Path, *, movies: str = ML1M_MOVIES, users: str = ML1M_USERS, ratings: str = ML1M_RATINGS) -> Path:
    d = root / "ml-1m"
    d.mkdir(parents=True, exist_ok=True)
    (d / "ratings.dat").write_bytes(ratings.encode("latin-1"))
    (d / "movies.dat").write_bytes(movies.encode("latin-1"))
    (d / "users.dat").write_bytes(users.encode("latin-1"))
    return d


# -- ml-10m: '::'-separated UTF-8 .dat files in ml-10M100K/, tags but no users -----------

ML10M_RATINGS = "1::122::5::838985046\n1::185::4.5::838983525\n2::122::0.5::868245777\n"
ML10M_MOVIES = (
    "122::Boomerang (1992)::Comedy|Romance\n"
    "185::Net, The (1995)::Action|Crime|Thriller\n"
    "8606::Pull My Daisy (1958)::(no genres listed)\n"
    "9000::Amélie: The Movie::Comedy\n"
)
ML10M_TAGS = (
    "15::4973::excellent!::1215184630\n"
    "20::122::dark: comedy::1188263867\n"
    "15::122::excellent!::1215184631\n"
    "21::122::dark: comedy::1188263868\n"
)


def write_ml10m(root: Path, *, ratings: str = ML10M_RATINGS, tags: str = ML10M_TAGS) -> Path:
    d = root / "ml-10M100K"
    d.mkdir(parents=True, exist_ok=True)
    (d / "ratings.dat").write_text(ratings, encoding="utf-8")
    (d / "movies.dat").write_text(ML10M_MOVIES, encoding="utf-8")
    (d / "tags.dat").write_text(tags, encoding="utf-8")
    return d


# -- ml-20m / ml-25m / ml-latest-small: UTF-8 csv with headers and quoted fields -------------

CSV_RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,0.5,1445714835\n"
CSV_MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '3,"American President, The (1995)",Comedy|Drama|Romance\n'
    "5,Babylon 5,Sci-Fi\n"
    '7,"Cosmos (1980) ",(no genres listed)\n'
    '9,"Crêpe, ""Sweet"" (2010)",Comedy\n'
)
CSV_TAGS = (
    "userId,movieId,tag,timestamp\n"
    "2,1,funny,1445714994\n"
    '2,3,"politics, satire",1445714996\n'
    "7,1,pixar,1445714997\n"
    "7,1,funny,1445715000\n"
)
CSV_LINKS = "movieId,imdbId,tmdbId\n1,0114709,862\n3,0112346,9087\n5,0105946,\n"


def write_csv_release(
    root: Path, name: str, *, ratings: str = CSV_RATINGS, movies: str = CSV_MOVIES, tags: str = CSV_TAGS, links: str = CSV_LINKS
) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for fname, text in (("ratings.csv", ratings), ("movies.csv", movies), ("tags.csv", tags), ("links.csv", links)):
        (d / fname).write_text(text, encoding="utf-8", newline="")
    return d


# -- zips and a local HTTP server ---------------------------------------------------------


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def md5_bsd(name: str, data: bytes) -> bytes:
    """The checksum file in GroupLens's form: ``MD5 (name) = <hash>``."""
    return f"MD5 ({name}) = {hashlib.md5(data).hexdigest()}\n".encode()


def md5_gnu(name: str, data: bytes) -> bytes:
    """The checksum file in md5sum's form: ``<hash>  name``."""
    return f"{hashlib.md5(data).hexdigest()}  {name}\n".encode()


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes``: path -> (mode, body); mode "ok", "truncate" or "stall"."""

    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        mode, body = route
        if mode == "stall":
            time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        # "truncate": announce more than is sent, then close (an interrupted transfer)
        self.send_header("Content-Length", str(len(body) + (4096 if mode == "truncate" else 0)))
        self.end_headers()
        try:
            self.wfile.write(body[: len(body) // 2] if mode == "truncate" else body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


@contextmanager
def serve() -> Iterator[_Server]:
    """A local HTTP server on 127.0.0.1 (port chosen by the OS), running in a thread."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
