"""MovieLens ratings, movie metadata, tags and demographics (GroupLens releases).

Each release has its own file format; this module reads all six with polars
(multi-threaded, vectorised), keeps rows in file order and returns pandas
frames with one schema for every release. Missing releases are downloaded from
GroupLens, checked against the published MD5 and unpacked atomically (see
:mod:`recsys.datasets._download`). The data may not be redistributed: keep it
in a local data directory, never in a repository.
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl

from recsys.data import Interactions
from recsys.datasets._download import download_and_extract
from recsys.errors import DatasetError, DownloadError, ParameterError

__all__ = ["DEFAULT_BASE_URL", "RELEASES", "MovieLens", "Release", "load_movielens"]

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens"

Format = Literal["ml-100k", "dat", "csv"]

# u.item's 19 genre flags, in the order of u.genre
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

# ml-1m users.dat occupation codes 0..20, as listed in the ml-1m README
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer",
    "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip

# ml-1m users.dat age codes: each is the lower bound of a bucket
ML1M_AGE_BUCKETS = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}

_NO_GENRES = "(no genres listed)"
_YEAR = r"\((\d{4})\)\s*$"

_LICENCE = (
    "GroupLens usage licence: research use; no commercial or revenue-bearing use and no redistribution "
    "without permission from GroupLens; do not imply endorsement by the University of Minnesota; "
    "cite Harper & Konstan (2015), ACM TiiS 5(4):19. The README inside the zip is authoritative."
)


@dataclass(frozen=True)
class Release:
    """One MovieLens release: where it lives and how it is laid out.

    Attributes
    ----------
    name : str
        Release name, e.g. ``"ml-100k"``.
    url, md5_url : str
        The official zip and the MD5 file GroupLens publishes beside it.
    subdir : str
        Directory inside the zip (and under the data directory).
    format : {"ml-100k", "dat", "csv"}
        Tab/pipe files, ``::``-separated .dat files or csv files.
    files : tuple of str
        Files the loader reads; all must be present in ``subdir``.
    size : str
        Approximate size of the zip.
    n_ratings, n_users, n_items : int
        Counts of the official release (users with ratings, rows of the movie file).
    n_tags : int or None
        Tag applications, where the release has tags.
    licence : str
        Summary of the usage terms (the README in the zip is authoritative).

    Examples
    --------
    >>> RELEASES["ml-10m"].subdir
    'ml-10M100K'
    >>> RELEASES["ml-100k"].md5_url
    'https://files.grouplens.org/datasets/movielens/ml-100k.zip.md5'
    """

    name: str
    url: str
    md5_url: str
    subdir: str
    format: Format
    files: tuple[str, ...]
    size: str
    n_ratings: int
    n_users: int
    n_items: int
    n_tags: int | None
    licence: str


def _release(name: str, subdir: str, fmt: Format, files: tuple[str, ...], size: str, counts: tuple[int, int, int, int | None], licence: str = _LICENCE) -> Release:
    url = f"{DEFAULT_BASE_URL}/{name}.zip"
    return Release(name, url, url + ".md5", subdir, fmt, files, size, *counts, licence)


_CSV_FILES = ("ratings.csv", "movies.csv", "tags.csv", "links.csv")

RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        _release("ml-100k", "ml-100k", "ml-100k", ("u.data", "u.item", "u.user"), "5 MB", (100_000, 943, 1_682, None)),
        _release(
            "ml-1m", "ml-1m", "dat", ("ratings.dat", "movies.dat", "users.dat"), "6 MB", (1_000_209, 6_040, 3_883, None),
            _LICENCE + " The ml-1m README also asks for a copy of publications that use it.",
        ),
        _release("ml-10m", "ml-10M100K", "dat", ("ratings.dat", "movies.dat", "tags.dat"), "63 MB", (10_000_054, 69_878, 10_681, 95_580)),
        _release("ml-20m", "ml-20m", "csv", _CSV_FILES, "190 MB", (20_000_263, 138_493, 27_278, 465_564)),
        _release("ml-25m", "ml-25m", "csv", _CSV_FILES, "250 MB", (25_000_095, 162_541, 62_423, 1_093_360)),
        _release("ml-latest-small", "ml-latest-small", "csv", _CSV_FILES, "1 MB", (100_836, 610, 9_742, 3_683)),
    )
}  # fmt: skip


# -- the result -----------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class MovieLens:
    """A loaded MovieLens release.

    Attributes
    ----------
    name : str
        Release name.
    ratings : pandas.DataFrame
        Columns exactly ``user, item, rating, timestamp`` (int64, int64,
        float32, int64 unix seconds), in the row order of the ratings file.
    items : pandas.DataFrame
        ``item, title, year, genres`` and, for releases with tags, ``tags``:
        one row per movie of the movie file. ``title`` is verbatim, ``year``
        (nullable Int64) comes from the title's trailing ``(YYYY)``,
        ``genres`` and ``tags`` are lists of str (possibly empty; ``tags``
        holds each distinct tag once, in order of first use).
    users : pandas.DataFrame or None
        ``user, age, gender, occupation, zip`` (ml-100k, ml-1m); gender and
        occupation are categorical, zip a str. ml-1m ages are the bucket codes
        of its README (1 = under 18, 18 = 18-24, ..., 56 = 56+, see
        ``ML1M_AGE_BUCKETS``) and its occupation codes are mapped to names.
    tags : pandas.DataFrame or None
        ``user, item, tag, timestamp``, one row per tag application, in file order.
    links : pandas.DataFrame or None
        ``item, imdb, tmdb`` for the csv releases (imdb as the zero-padded str
        of the file, tmdb as nullable Int64).
    path : str or None
        Directory the files were read from.

    Examples
    --------
    >>> import pandas as pd
    >>> ml = MovieLens(
    ...     name="toy",
    ...     ratings=pd.DataFrame({"user": [1, 1, 2], "item": [10, 20, 10], "rating": [4.0, 3.0, 5.0], "timestamp": [1, 2, 3]}),
    ...     items=pd.DataFrame({"item": [10, 20], "title": ["Heat (1995)", "Up (2009)"], "year": [1995, 2009],
    ...                         "genres": [["Action"], ["Animation"]]}),
    ... )
    >>> ml
    MovieLens('toy': 3 ratings, 2 users, 2 items)
    >>> ml.interactions().matrix(values="rating").toarray()
    array([[4., 3.],
           [5., 0.]], dtype=float32)
    """

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    tags: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    path: str | None = None

    def interactions(self, **kwargs: Any) -> Interactions:
        """The ratings as :class:`~recsys.Interactions`, with user and item features.

        Parameters
        ----------
        **kwargs
            Passed to :meth:`Interactions.from_frame`, overriding the defaults
            (``rating_col="rating"``, ``timestamp_col="timestamp"``,
            ``user_features=self.users``, ``item_features=self.items``), e.g.
            ``weight_col="rating"`` or ``item_features=None``.

        Returns
        -------
        Interactions

        Examples
        --------
        >>> import pandas as pd
        >>> ml = MovieLens(name="toy", ratings=pd.DataFrame({"user": [1], "item": [7], "rating": [4.5], "timestamp": [0]}),
        ...                items=pd.DataFrame({"item": [7, 8], "title": ["A", "B"], "year": [None, None], "genres": [[], []]}))
        >>> ml.interactions(weight_col="rating").n_items  # item 8 has no ratings but is in the catalogue
        2
        """
        args: dict[str, Any] = {
            "user_col": "user",
            "item_col": "item",
            "rating_col": "rating",
            "timestamp_col": "timestamp",
            "user_features": self.users,
            "item_features": self.items,
        }
        args.update(kwargs)
        return Interactions.from_frame(self.ratings, **args)

    def __repr__(self) -> str:
        n_users = len(self.users) if self.users is not None else int(self.ratings["user"].nunique())
        extra = f", {len(self.tags)} tags" if self.tags is not None else ""
        return f"MovieLens({self.name!r}: {len(self.ratings)} ratings, {n_users} users, {len(self.items)} items{extra})"


# -- loading ----------------------------------------------------------------------


def load_movielens(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    base_url: str | None = None,
    show_progress: bool | None = None,
) -> MovieLens:
    """Load a MovieLens release, downloading it from GroupLens if it is not local.

    Parameters
    ----------
    name : str
        One of ``RELEASES``: ``"ml-100k"``, ``"ml-1m"``, ``"ml-10m"``,
        ``"ml-20m"``, ``"ml-25m"``, ``"ml-latest-small"``.
    data_dir : str or path, optional
        Directory holding ``<subdir>/`` of each release in the official layout
        (e.g. ``<data_dir>/ml-100k/u.data``, ``<data_dir>/ml-10M100K/ratings.dat``).
        Default: ``$RECSYS_DATA_DIR``, else ``~/.cache/recsys``.
    download : bool
        Fetch the release when its files are absent. When they are present,
        nothing touches the network.
    base_url : str, optional
        Where ``<name>.zip`` and ``<name>.zip.md5`` are fetched from. Default:
        ``$RECSYS_MOVIELENS_URL``, else ``DEFAULT_BASE_URL`` (GroupLens).
    show_progress : bool, optional
        Download progress bar; default on when stderr is a terminal.

    Returns
    -------
    MovieLens

    Raises
    ------
    ParameterError
        Unknown release name or an argument of the wrong type.
    DatasetError
        The files are absent and ``download=False``, the release directory is
        incomplete, or a file is malformed (the message names file and line).
    DownloadError
        The files are absent and the download failed (unreachable server,
        HTTP error, truncated transfer, MD5 mismatch, corrupt zip); the data
        directory is left as it was.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "ml-100k").mkdir()
    >>> _ = (root / "ml-100k" / "u.data").write_text("1\\t10\\t4\\t881250949\\n2\\t10\\t5\\t881250950\\n")
    >>> _ = (root / "ml-100k" / "u.item").write_text("10|Heat (1995)|01-Jan-1995||url" + "|0" * 18 + "|1\\n")
    >>> _ = (root / "ml-100k" / "u.user").write_text("1|24|M|technician|85711\\n2|53|F|other|94043\\n")
    >>> ml = load_movielens("ml-100k", data_dir=root, download=False)
    >>> ml
    MovieLens('ml-100k': 2 ratings, 2 users, 1 items)
    >>> ml.items.loc[0, "title"], ml.items.loc[0, "genres"], ml.items["year"].tolist()
    ('Heat (1995)', ['Western'], [1995])
    >>> import shutil; shutil.rmtree(root)
    """
    release = _get_release(name)
    if not isinstance(download, bool):
        raise ParameterError(f"The 'download' parameter of load_movielens must be a bool. Got {download!r} instead.")
    if show_progress is not None and not isinstance(show_progress, bool):
        raise ParameterError(f"The 'show_progress' parameter of load_movielens must be a bool or None. Got {show_progress!r} instead.")
    root = _data_dir(data_dir)
    folder = os.path.join(root, release.subdir)
    missing = [f for f in release.files if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        url = _zip_url(release.name, base_url)
        first = os.path.join(folder, missing[0])
        how = (
            f"Download {url} and unzip it into {root} (so that {first} exists), "
            f"or point data_dir= or the RECSYS_DATA_DIR environment variable at a directory that holds "
            f"{release.subdir}/ in the official layout."
        )
        if os.path.isdir(folder) and os.listdir(folder):
            lacking = ", ".join(missing)
            raise DatasetError(
                f"MovieLens {name}: {folder} exists but lacks {lacking}, so it looks like an incomplete copy. "
                "Complete it, or delete that directory to let load_movielens download the release again."
            )
        if not download:
            raise DatasetError(f"MovieLens {name} is not available locally: {first} does not exist (download=False). {how}")
        try:
            download_and_extract(
                url,
                md5_url=url + ".md5",
                data_dir=root,
                subdir=release.subdir,
                required=release.files,
                show_progress=show_progress,
            )
        except DownloadError as e:
            raise DownloadError(
                f"MovieLens {name} is not available locally ({first} does not exist) and the download failed: {e}. {how}"
            ) from e
    return _READERS[release.name](release, folder)


def _get_release(name: Any) -> Release:
    valid = ", ".join(repr(n) for n in RELEASES)
    if not isinstance(name, str):
        raise ParameterError(f"The 'name' parameter of load_movielens must be a str, one of {valid}. Got {name!r} instead.")
    if name not in RELEASES:
        raise ParameterError(f"Unknown MovieLens release {name!r}; valid names are {valid}.")
    return RELEASES[name]


def _data_dir(data_dir: Any) -> str:
    if data_dir is None:
        data_dir = os.environ.get("RECSYS_DATA_DIR") or os.path.join("~", ".cache", "recsys")
    elif not isinstance(data_dir, (str, os.PathLike)):
        raise ParameterError(
            f"The 'data_dir' parameter of load_movielens must be a str or path. Got {type(data_dir).__name__} instead."
        )
    return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


def _zip_url(name: str, base_url: Any) -> str:
    if base_url is None:
        base_url = os.environ.get("RECSYS_MOVIELENS_URL") or DEFAULT_BASE_URL
    elif not isinstance(base_url, str) or not base_url.strip():
        raise ParameterError(f"The 'base_url' parameter of load_movielens must be a non-empty str. Got {base_url!r} instead.")
    return f"{base_url.strip().rstrip('/')}/{name}.zip"


# -- low-level readers ----------------------------------------------------------------


def _latin1_fallback(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return err.object[err.start : err.end].decode("latin-1"), err.end


codecs.register_error("recsys-latin1-fallback", _latin1_fallback)


def _text(path: str, encoding: str = "utf-8") -> str:
    """File contents as str.

    ``"latin-1"`` for ml-100k and ml-1m, which are latin-1 throughout. Otherwise
    UTF-8 where the bytes are valid UTF-8 and latin-1 for the bytes that are
    not, which also copes with a file that mixes both.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if encoding == "latin-1":
        return raw.decode("latin-1")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    return raw.decode("utf-8", errors="recsys-latin1-fallback")


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _match(path: str, pattern: str, what: str, *, encoding: str = "utf-8") -> pl.DataFrame:
    """Parse a line-oriented file with a regex of named groups (all str columns).

    Blank lines are skipped; any other line that does not match is an error
    naming the file and line. Used for files whose text fields may contain
    the separator (``::`` titles, ``:`` tags).
    """
    lines = pl.Series("line", _text(path, encoding).split("\n")).str.strip_suffix("\r")
    df = pl.DataFrame({"line": lines}).with_row_index("lineno", offset=1)
    df = df.filter(pl.col("line").str.strip_chars() != "")
    parts = df.get_column("line").str.extract_groups(pattern).struct.unnest()
    bad = parts.get_column(parts.columns[0]).is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        line = df.get_column("line")[i]
        raise DatasetError(f"{path}, line {df.get_column('lineno')[i]}: expected {what}; got {line[:200]!r}")
    return parts


def _read_table(
    path: str,
    schema: dict[str, Any],
    *,
    sep: str,
    header: Sequence[str] | None = None,
    fillers: Sequence[str] = (),
    optional: Sequence[str] = (),
    text: bool = False,
    what: str,
) -> pl.DataFrame:
    """Read a delimited file with a fixed schema, with errors that name file and line.

    ``header``: the expected header line (checked, then skipped). ``fillers``:
    columns that must be empty (the gaps of a ``::`` separator read as ``:``).
    ``optional``: columns that may be empty (null).
    ``text``: decode in Python first (latin-1 fallback) instead of letting
    polars read the path as UTF-8.
    """
    skip = 0
    if header is not None:
        with open(path, "rb") as f:
            got_raw = f.readline()
        got = got_raw.decode("utf-8-sig", errors="replace").strip().split(sep)
        if [c.strip().strip('"') for c in got] != list(header):
            raise DatasetError(f"{path}: expected the header {sep.join(header)!r}; got {got_raw.strip()[:200]!r}")
        skip = 1
    source: Any = io.BytesIO(_text(path).encode("utf-8")) if text else path

    def read(sch: dict[str, Any]) -> pl.DataFrame:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        return pl.read_csv(source, separator=sep, has_header=False, skip_rows=skip, schema=sch, quote_char='"' if sep == "," else None)

    try:
        df = read(schema)
    except pl.exceptions.PolarsError as e:
        raise DatasetError(_locate_bad_value(read, schema, path, skip, what, e)) from e
    is_null = [pl.col(c).is_null() for c in df.columns]
    blank = df.select(pl.all_horizontal(is_null)).to_series()
    required = [c for c in df.columns if c not in fillers and c not in optional]
    broken = df.select(
        pl.any_horizontal([pl.col(c).is_null() for c in required]) | pl.any_horizontal([pl.col(c).is_not_null() for c in fillers] or [pl.lit(False)])
    ).to_series() & ~blank
    if broken.any():
        i = int(broken.arg_true()[0])
        raise DatasetError(f"{path}, line {i + 1 + skip}: expected {what}; the line has missing or extra fields")
    if blank.any():
        df = df.filter(~blank)
    return df.drop(list(fillers)) if fillers else df


def _locate_bad_value(
    read: Callable[[dict[str, Any]], pl.DataFrame],
    schema: dict[str, Any],
    path: str,
    skip: int,
    what: str,
    error: Exception,
) -> str:
    """Find the first line whose value does not parse (only on the error path)."""
    try:
        raw = read({c: pl.String for c in schema})
    except pl.exceptions.PolarsError:
        return f"{path}: expected {what}; could not parse the file: {_first_line(str(error))}"
    for c, dtype in schema.items():
        if dtype == pl.String:
            continue
        col = raw.get_column(c)
        bad = col.is_not_null() & col.str.strip_chars().cast(dtype, strict=False).is_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            return f"{path}, line {i + 1 + skip}: column {c!r} expects {dtype}; got {col[i]!r} (expected {what})"
    return f"{path}: expected {what}; could not parse the file: {_first_line(str(error))}"


def _check_unique(df: pl.DataFrame, col: str, path: str) -> None:
    dup = df.get_column(col).is_duplicated()
    if dup.any():
        i = int(dup.arg_true()[0])
        raise DatasetError(f"{path}: {col} {df.get_column(col)[i]} appears on more than one line")


# -- polars -> pandas -------------------------------------------------------------------


def _pandas(df: pl.DataFrame, categorical: Sequence[str] = ()) -> pd.DataFrame:
    """pandas frame without pyarrow: numeric columns zero-copy, lists as Python lists."""
    data: dict[str, Any] = {}
    for name in df.columns:
        s = df.get_column(name)
        if isinstance(s.dtype, pl.List):
            data[name] = pd.Series(s.to_list(), dtype=object)
        elif s.dtype == pl.String:
            values = s.to_numpy()
            data[name] = pd.Categorical(values) if name in categorical else pd.Series(values, dtype="str")
        elif s.dtype.is_integer() and s.null_count():
            data[name] = pd.arrays.IntegerArray(s.fill_null(0).to_numpy().astype(np.int64), s.is_null().to_numpy())
        else:
            data[name] = s.to_numpy()
    return pd.DataFrame(data, copy=False)  # the arrays are ours already; a copy would double peak memory


# -- one schema for every release --------------------------------------------------------

_RATINGS_SCHEMA: dict[str, Any] = {"user": pl.Int64, "item": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64}
_RATINGS_WHAT = "user, item, rating, timestamp"


def _genre_lists(col: pl.Expr) -> pl.Expr:
    split = col.fill_null("").str.split("|")
    return split.list.eval(pl.element().filter((pl.element() != "") & (pl.element() != _NO_GENRES)))


def _items(movies: pl.DataFrame, tags: pl.DataFrame | None) -> pl.DataFrame:
    """item, title, year, genres[, tags] from (item, title, genres list) and the tag rows."""
    items = movies.select(
        "item",
        "title",
        pl.col("title").str.extract(_YEAR, 1).cast(pl.Int64).alias("year"),
        "genres",
    )
    if tags is not None:
        per_item = (
            tags.filter(pl.col("tag").is_not_null())
            .group_by("item", maintain_order=True)
            .agg(pl.col("tag").unique(maintain_order=True).alias("tags"))
        )
        items = items.join(per_item, on="item", how="left", maintain_order="left").with_columns(
            pl.col("tags").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
    return items


def _result(
    release: Release,
    folder: str,
    ratings: pl.DataFrame,
    items: pl.DataFrame,
    users: pd.DataFrame | None = None,
    tags: pl.DataFrame | None = None,
    links: pl.DataFrame | None = None,
) -> MovieLens:
    return MovieLens(
        name=release.name,
        ratings=_pandas(ratings.select(list(_RATINGS_SCHEMA))),
        items=_pandas(items),
        users=users,
        tags=_pandas(tags) if tags is not None else None,
        links=_pandas(links) if links is not None else None,
        path=folder,
    )


def _read_ml100k(release: Release, folder: str) -> MovieLens:
    ratings = _read_table(os.path.join(folder, "u.data"), _RATINGS_SCHEMA, sep="\t", what=_RATINGS_WHAT)

    path = os.path.join(folder, "u.item")
    flags = "".join(rf"\|(?P<g{i}>[01])" for i in range(len(ML100K_GENRES)))
    raw = _match(
        path,
        r"^(?P<item>\d+)\|(?P<title>[^|]*)\|(?P<release>[^|]*)\|(?P<video>[^|]*)\|(?P<url>[^|]*)" + flags + r"\s*$",
        "movie id|title|release date|video release date|IMDb URL|19 genre flags (0/1)",
        encoding="latin-1",
    )
    genres = pl.concat_list(
        [pl.when(pl.col(f"g{i}") == "1").then(pl.lit(g)) for i, g in enumerate(ML100K_GENRES)]
    ).list.drop_nulls()
    movies = raw.select(pl.col("item").cast(pl.Int64), "title", genres.alias("genres"))
    _check_unique(movies, "item", path)

    u = _user_table(
        os.path.join(folder, "u.user"),
        r"^(?P<user>\d+)\|(?P<age>\d+)\|(?P<gender>[^|]*)\|(?P<occupation>[^|]*)\|(?P<zip>[^|]*?)\s*$",
        "user id|age|gender|occupation|zip code",
        ("user", "age"),
    )
    users = _pandas(u, categorical=("gender", "occupation"))
    return _result(release, folder, ratings, _items(movies, None), users=users)


def _user_table(path: str, pattern: str, what: str, integers: Sequence[str]) -> pl.DataFrame:
    """A latin-1 user file parsed with ``pattern``, ``integers`` cast to int64, one row per user."""
    u = _match(path, pattern, what, encoding="latin-1").with_columns(pl.col(c).cast(pl.Int64) for c in integers)
    _check_unique(u, "user", path)
    return u


def _dat_ratings(path: str) -> pl.DataFrame:
    # ratings are numeric, so "::" can be read as ":" with empty fields between: the fast C-level reader applies
    schema: dict[str, Any] = {"user": pl.Int64, "_1": pl.String, "item": pl.Int64, "_2": pl.String, "rating": pl.Float32, "_3": pl.String, "timestamp": pl.Int64}
    return _read_table(path, schema, sep=":", fillers=("_1", "_2", "_3"), what="UserID::MovieID::Rating::Timestamp")


def _dat_movies(path: str, encoding: str) -> pl.DataFrame:
    # the title may itself contain ':' (even '::'), genres never do: greedy title, genres after the last '::'
    raw = _match(path, r"^(?P<item>\d+)::(?P<title>.*)::(?P<genres>[^:]*?)\s*$", "MovieID::Title::Genres", encoding=encoding)
    movies = raw.select(pl.col("item").cast(pl.Int64), "title", _genre_lists(pl.col("genres")).alias("genres"))
    _check_unique(movies, "item", path)
    return movies


def _read_ml1m(release: Release, folder: str) -> MovieLens:
    ratings = _dat_ratings(os.path.join(folder, "ratings.dat"))
    movies = _dat_movies(os.path.join(folder, "movies.dat"), "latin-1")

    path = os.path.join(folder, "users.dat")
    u = _user_table(
        path,
        r"^(?P<user>\d+)::(?P<gender>[^:]*)::(?P<age>\d+)::(?P<occupation>\d+)::(?P<zip>[^:]*?)\s*$",
        "UserID::Gender::Age::Occupation::Zip-code",
        ("user", "age", "occupation"),
    )
    codes = u.get_column("occupation").to_numpy()
    bad = (codes < 0) | (codes >= len(ML1M_OCCUPATIONS))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{path}: user {u.get_column('user')[i]} has occupation code {codes[i]}; "
            f"the ml-1m codes are 0..{len(ML1M_OCCUPATIONS) - 1}"
        )
    users = _pandas(u.select("user", "age", "gender", "zip"), categorical=("gender",))
    users.insert(3, "occupation", pd.Categorical(np.asarray(ML1M_OCCUPATIONS, dtype=object)[codes]))
    return _result(release, folder, ratings, _items(movies, None), users=users)


def _read_ml10m(release: Release, folder: str) -> MovieLens:
    ratings = _dat_ratings(os.path.join(folder, "ratings.dat"))
    movies = _dat_movies(os.path.join(folder, "movies.dat"), "utf-8")
    raw = _match(
        os.path.join(folder, "tags.dat"),
        r"^(?P<user>\d+)::(?P<item>\d+)::(?P<tag>.*)::(?P<timestamp>\d+)\s*$",
        "UserID::MovieID::Tag::Timestamp",
    )
    tags = raw.select(pl.col("user").cast(pl.Int64), pl.col("item").cast(pl.Int64), "tag", pl.col("timestamp").cast(pl.Int64))
    return _result(release, folder, ratings, _items(movies, tags), tags=tags)


def _read_csv(
    folder: str, name: str, schema: dict[str, Any], header: Sequence[str], *, text: bool = True, optional: Sequence[str] = ()
) -> pl.DataFrame:
    """One comma-separated file of a CSV release, with its header checked."""
    path = os.path.join(folder, name)
    return _read_table(path, schema, sep=",", header=header, text=text, optional=optional, what=",".join(header))


def _read_csv_release(release: Release, folder: str) -> MovieLens:
    ratings = _read_csv(folder, "ratings.csv", _RATINGS_SCHEMA, ("userId", "movieId", "rating", "timestamp"), text=False)
    raw = _read_csv(folder, "movies.csv", {"item": pl.Int64, "title": pl.String, "genres": pl.String}, ("movieId", "title", "genres"))
    movies = raw.select("item", "title", _genre_lists(pl.col("genres")).alias("genres"))
    _check_unique(movies, "item", os.path.join(folder, "movies.csv"))
    tags = _read_csv(
        folder,
        "tags.csv",
        {"user": pl.Int64, "item": pl.Int64, "tag": pl.String, "timestamp": pl.Int64},
        ("userId", "movieId", "tag", "timestamp"),
        optional=("tag",),  # an empty tag is data, not a broken line
    )
    links = _read_csv(
        folder, "links.csv", {"item": pl.Int64, "imdb": pl.String, "tmdb": pl.Int64}, ("movieId", "imdbId", "tmdbId"), optional=("tmdb",)
    )
    return _result(release, folder, ratings, _items(movies, tags), tags=tags, links=links)


_READERS: dict[str, Callable[[Release, str], MovieLens]] = {
    "ml-100k": _read_ml100k,
    "ml-1m": _read_ml1m,
    "ml-10m": _read_ml10m,
    "ml-20m": _read_csv_release,
    "ml-25m": _read_csv_release,
    "ml-latest-small": _read_csv_release,
}
