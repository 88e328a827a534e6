"""MovieLens parsers on tiny files in each release's exact format, plus the real ML-100K."""

from __future__ import annotations

import csv
import io
import os
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.datasets.movielens import (
    ML1M_OCCUPATIONS,
    ML100K_GENRES,
    RELEASES,
    MovieLens,
    load_movielens,
)
from recsys.errors import DatasetError, DownloadError, ParameterError
from tests.datasets._ml_fixtures import (
    CSV_MOVIES,
    CSV_RATINGS,
    CSV_TAGS,
    ML1M_MOVIES,
    ML1M_USERS,
    ML10M_RATINGS,
    ML10M_TAGS,
    ML100K_ITEM,
    ML100K_USER,
    write_csv_release,
    write_ml1m,
    write_ml10m,
    write_ml100k,
)

CSV_RELEASES = ["ml-20m", "ml-25m", "ml-latest-small"]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing never touches the network: any attempt fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the loader tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _records(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(v.tolist() if isinstance(v, np.ndarray) else v for v in row) for row in df.itertuples(index=False)]


def _check_ratings_schema(ratings: pd.DataFrame) -> None:
    assert list(ratings.columns) == ["user", "item", "rating", "timestamp"]
    assert [str(t) for t in ratings.dtypes] == ["int64", "int64", "float32", "int64"]


# -- ml-100k ------------------------------------------------------------------------------


def test_ml100k_parses_every_file(tmp_path: Path) -> None:
    write_ml100k(tmp_path)
    ml = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    assert ml.name == "ml-100k" and ml.path == str(tmp_path / "ml-100k")
    _check_ratings_schema(ml.ratings)
    # file row order, ints as float32 ratings
    assert _records(ml.ratings) == [(3, 20, 4.0, 881250949), (1, 10, 5.0, 881250950), (2, 20, 1.0, 881250951), (1, 30, 3.0, 881250952)]
    assert list(ml.items.columns) == ["item", "title", "year", "genres"]
    assert ml.items["item"].tolist() == [10, 20, 30, 40]
    # latin-1 accents decoded; "unknown" (no year) is kept verbatim
    assert ml.items["title"].tolist() == ["Misérables, Les (1995)", "Toy Story (1995)", "unknown", "Château de ma mère, Le (1990)"]
    assert str(ml.items["year"].dtype) == "Int64"
    assert ml.items["year"].tolist()[:2] == [1995, 1995] and ml.items["year"].isna().tolist() == [False, False, True, False]
    # flags -> names in u.genre order
    assert ml.items["genres"].tolist() == [["Drama", "Romance"], ["Animation", "Children's", "Comedy"], ["unknown"], ["Western"]]
    # users: blank line skipped, zips stay strings (leading zero, letters)
    assert ml.users is not None and list(ml.users.columns) == ["user", "age", "gender", "occupation", "zip"]
    assert _records(ml.users) == [(1, 24, "M", "technician", "85711"), (2, 53, "F", "other", "01002"), (3, 33, "F", "writer", "L9G2B")]
    assert isinstance(ml.users["occupation"].dtype, pd.CategoricalDtype)
    assert ml.tags is None and ml.links is None
    assert repr(ml) == "MovieLens('ml-100k': 4 ratings, 3 users, 4 items)"


def test_ml100k_interactions_carry_features(tmp_path: Path) -> None:
    write_ml100k(tmp_path)
    data = load_movielens("ml-100k", data_dir=tmp_path, download=False).interactions()
    # item 40 is only in u.item: it still gets an index
    assert (data.n_users, data.n_items, data.nnz) == (3, 4, 4)
    assert data.users.ids.tolist() == [3, 1, 2] and data.items.ids.tolist() == [20, 10, 30, 40]
    assert data.ratings is not None and data.ratings.tolist() == [4.0, 5.0, 1.0, 3.0]
    assert data.timestamps is not None and data.timestamps.tolist() == [881250949, 881250950, 881250951, 881250952]
    assert data.item_feature_kinds == {"title": "text", "year": "numeric", "genres": "multi"}
    assert data.user_feature_kinds == {"age": "numeric", "gender": "categorical", "occupation": "categorical", "zip": "categorical"}
    assert data.item_features is not None and data.item_features["genres"].tolist()[3] == ["Western"]
    assert data.user_features is not None and data.user_features["age"].tolist() == [33, 24, 53]


def test_interactions_kwargs_pass_through_and_override(tmp_path: Path) -> None:
    write_ml100k(tmp_path)
    ml = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    weighted = ml.interactions(weight_col="rating")
    assert weighted.weights.tolist() == [4.0, 5.0, 1.0, 3.0]
    bare = ml.interactions(item_features=None, user_features=None)
    assert bare.item_features is None and bare.user_features is None and bare.n_items == 3


@pytest.mark.parametrize(
    "fname, text, match",
    [
        ("u.data", "1\t10\t5\t881250950\n2\t20\n", r"u\.data, line 2: expected user, item, rating, timestamp"),
        ("u.data", "1\t10\t5\t881250950\n2\t20\tfive\t881250951\n", r"u\.data, line 2: column 'rating' expects Float32; got 'five'"),
        ("u.item", ML100K_ITEM + "50|Short line|01-Jan-1995||url|0|1\n", r"u\.item, line 5: expected movie id\|title.*19 genre flags"),
        ("u.item", ML100K_ITEM + ML100K_ITEM.splitlines()[0] + "\n", r"u\.item: item 10 appears on more than one line"),
        ("u.user", ML100K_USER + "4|old|M|writer|12345\n", r"u\.user, line 5: expected user id\|age"),
    ],
)
def test_ml100k_malformed_files_name_file_and_line(tmp_path: Path, fname: str, text: str, match: str) -> None:
    kw = {"data": text} if fname == "u.data" else {"item": text} if fname == "u.item" else {"user": text}
    write_ml100k(tmp_path, **kw)
    with pytest.raises(DatasetError, match=match):
        load_movielens("ml-100k", data_dir=tmp_path, download=False)


# -- ml-1m -----------------------------------------------------------------------------------


def test_ml1m_parses_dat_files(tmp_path: Path) -> None:
    write_ml1m(tmp_path)
    ml = load_movielens("ml-1m", data_dir=tmp_path, download=False)
    _check_ratings_schema(ml.ratings)
    assert _records(ml.ratings) == [(1, 1193, 5.0, 978300760), (1, 661, 3.0, 978302109), (2, 1193, 4.0, 978298413)]
    assert _records(ml.items.drop(columns="year")) == [
        (1193, "One Flew Over the Cuckoo's Nest (1975)", ["Drama"]),
        (661, "James and the Giant Peach (1996)", ["Animation", "Children's", "Musical"]),
        (3, "Señorita Extraviada", ["Documentary"]),  # latin-1, no year
        (4, "Star Wars: Episode IV - A New Hope (1977)", ["Action", "Adventure", "Fantasy", "Sci-Fi"]),  # ':' in a title
    ]
    assert ml.items["year"].isna().tolist() == [False, False, True, False]
    assert ml.items["year"].dropna().tolist() == [1975, 1996, 1977]
    # users.dat column order is UserID::Gender::Age::Occupation::Zip; ages stay bucket codes
    assert ml.users is not None and list(ml.users.columns) == ["user", "age", "gender", "occupation", "zip"]
    assert _records(ml.users) == [
        (1, 1, "F", "K-12 student", "48067"),
        (2, 56, "M", "self-employed", "70072"),
        (3, 25, "M", "other", "55117"),
    ]
    assert ml.tags is None


def test_ml1m_occupation_table_matches_readme() -> None:
    assert len(ML1M_OCCUPATIONS) == 21
    assert (ML1M_OCCUPATIONS[0], ML1M_OCCUPATIONS[10], ML1M_OCCUPATIONS[17], ML1M_OCCUPATIONS[20]) == (
        "other", "K-12 student", "technician/engineer", "writer",
    )  # fmt: skip


@pytest.mark.parametrize(
    "movies, users, match",
    [
        (ML1M_MOVIES, ML1M_USERS + "4::M::25::21::55117\n", r"users\.dat: user 4 has occupation code 21; the ml-1m codes are 0\.\.20"),
        (ML1M_MOVIES, ML1M_USERS + "4::M::25\n", r"users\.dat, line 4: expected UserID::Gender::Age::Occupation::Zip-code"),
        (ML1M_MOVIES + "5|Bad separator|Drama\n", ML1M_USERS, r"movies\.dat, line 5: expected MovieID::Title::Genres; got '5\|Bad"),
    ],
)
def test_ml1m_malformed_files(tmp_path: Path, movies: str, users: str, match: str) -> None:
    write_ml1m(tmp_path, movies=movies, users=users)
    with pytest.raises(DatasetError, match=match):
        load_movielens("ml-1m", data_dir=tmp_path, download=False)


def test_dat_ratings_reject_a_single_colon(tmp_path: Path) -> None:
    write_ml1m(tmp_path, ratings="1::1193::5::978300760\n1:661::3::978302109\n")
    with pytest.raises(DatasetError, match=r"ratings\.dat, line 2: expected UserID::MovieID::Rating::Timestamp"):
        load_movielens("ml-1m", data_dir=tmp_path, download=False)


def test_dat_ratings_accept_crlf_line_ends(tmp_path: Path) -> None:
    write_ml1m(tmp_path, ratings="1::1193::5::978300760\r\n2::661::3::978302109\r\n")
    ml = load_movielens("ml-1m", data_dir=tmp_path, download=False)
    assert _records(ml.ratings) == [(1, 1193, 5.0, 978300760), (2, 661, 3.0, 978302109)]


# -- ml-10m ----------------------------------------------------------------------------------


def test_ml10m_reads_the_ml10M100K_directory_with_tags(tmp_path: Path) -> None:
    write_ml10m(tmp_path)
    ml = load_movielens("ml-10m", data_dir=tmp_path, download=False)
    assert ml.path == str(tmp_path / "ml-10M100K")
    _check_ratings_schema(ml.ratings)
    assert _records(ml.ratings) == [(1, 122, 5.0, 838985046), (1, 185, 4.5, 838983525), (2, 122, 0.5, 868245777)]
    assert ml.users is None
    assert list(ml.items.columns) == ["item", "title", "year", "genres", "tags"]
    assert ml.items["title"].tolist()[3] == "Amélie: The Movie"
    assert ml.items["genres"].tolist() == [["Comedy", "Romance"], ["Action", "Crime", "Thriller"], [], ["Comedy"]]
    # distinct tags per item in order of first use; untagged items get []
    assert ml.items["tags"].tolist() == [["dark: comedy", "excellent!"], [], [], []]
    assert ml.tags is not None and list(ml.tags.columns) == ["user", "item", "tag", "timestamp"]
    # every tag row is kept, including one for a movie not in movies.dat
    assert _records(ml.tags) == [
        (15, 4973, "excellent!", 1215184630),
        (20, 122, "dark: comedy", 1188263867),
        (15, 122, "excellent!", 1215184631),
        (21, 122, "dark: comedy", 1188263868),
    ]
    assert repr(ml) == "MovieLens('ml-10m': 3 ratings, 2 users, 4 items, 4 tags)"
    data = ml.interactions()
    assert data.user_features is None and data.item_feature_kinds["tags"] == "multi"


def test_ml10m_file_mixing_utf8_and_latin1_decodes_each_run(tmp_path: Path) -> None:
    d = write_ml10m(tmp_path)
    raw = b"15::122::" + "café".encode() + b"::1\n" + b"16::122::" + "crème".encode("latin-1") + b"::2\n"
    (d / "tags.dat").write_bytes(raw)
    ml = load_movielens("ml-10m", data_dir=tmp_path, download=False)
    assert ml.tags is not None and ml.tags["tag"].tolist() == ["café", "crème"]


def test_ml10m_malformed_tag_line(tmp_path: Path) -> None:
    write_ml10m(tmp_path, tags=ML10M_TAGS + "15::122::no timestamp\n")
    with pytest.raises(DatasetError, match=r"tags\.dat, line 5: expected UserID::MovieID::Tag::Timestamp"):
        load_movielens("ml-10m", data_dir=tmp_path, download=False)


def test_ml10m_bad_rating_value(tmp_path: Path) -> None:
    write_ml10m(tmp_path, ratings=ML10M_RATINGS + "3::122::x::868245777\n")
    with pytest.raises(DatasetError, match=r"ratings\.dat, line 4: column 'rating' expects Float32; got 'x'"):
        load_movielens("ml-10m", data_dir=tmp_path, download=False)


# -- csv releases ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CSV_RELEASES)
def test_csv_release_parses_quoted_titles_genres_tags_links(tmp_path: Path, name: str) -> None:
    write_csv_release(tmp_path, name)
    ml = load_movielens(name, data_dir=tmp_path, download=False)
    _check_ratings_schema(ml.ratings)
    assert _records(ml.ratings) == [(1, 1, 4.0, 964982703), (1, 3, 4.5, 964981247), (2, 1, 0.5, 1445714835)]
    assert ml.items["title"].tolist() == [
        "Toy Story (1995)",
        "American President, The (1995)",
        "Babylon 5",
        "Cosmos (1980) ",
        'Crêpe, "Sweet" (2010)',
    ]
    assert ml.items["year"].isna().tolist() == [False, False, True, False, False]
    assert ml.items["year"].dropna().tolist() == [1995, 1995, 1980, 2010]
    assert ml.items["genres"].tolist() == [
        ["Adventure", "Animation", "Children", "Comedy", "Fantasy"],
        ["Comedy", "Drama", "Romance"],
        ["Sci-Fi"],
        [],
        ["Comedy"],
    ]
    assert ml.items["tags"].tolist() == [["funny", "pixar"], ["politics, satire"], [], [], []]
    assert ml.tags is not None and _records(ml.tags) == [
        (2, 1, "funny", 1445714994),
        (2, 3, "politics, satire", 1445714996),
        (7, 1, "pixar", 1445714997),
        (7, 1, "funny", 1445715000),
    ]
    assert ml.links is not None and list(ml.links.columns) == ["item", "imdb", "tmdb"]
    assert ml.links["imdb"].tolist() == ["0114709", "0112346", "0105946"]
    assert ml.links["tmdb"].isna().tolist() == [False, False, True] and ml.links["tmdb"].tolist()[:2] == [862, 9087]
    assert ml.users is None
    data = ml.interactions()
    assert (data.n_users, data.n_items, data.nnz) == (2, 5, 3)


def test_csv_empty_tag_is_kept_in_tags_but_not_listed(tmp_path: Path) -> None:
    write_csv_release(tmp_path, "ml-latest-small", tags=CSV_TAGS + "9,5,,1445715001\n")
    ml = load_movielens("ml-latest-small", data_dir=tmp_path, download=False)
    assert ml.tags is not None and len(ml.tags) == 5 and pd.isna(ml.tags["tag"].iloc[4])
    assert ml.items["tags"].tolist()[2] == []


def test_csv_crlf_and_trailing_blank_line(tmp_path: Path) -> None:
    write_csv_release(tmp_path, "ml-20m", ratings=CSV_RATINGS.replace("\n", "\r\n") + "\r\n")
    ml = load_movielens("ml-20m", data_dir=tmp_path, download=False)
    assert _records(ml.ratings) == [(1, 1, 4.0, 964982703), (1, 3, 4.5, 964981247), (2, 1, 0.5, 1445714835)]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"ratings": "user,movie,rating,timestamp\n1,1,4.0,1\n"}, r"ratings\.csv: expected the header 'userId,movieId,rating,timestamp'; got b'user,movie"),
        ({"ratings": CSV_RATINGS + "3,1,,1445714835\n"}, r"ratings\.csv, line 5: expected userId,movieId,rating,timestamp; the line has missing"),
        ({"ratings": CSV_RATINGS + "3,abc,4.0,1445714835\n"}, r"ratings\.csv, line 5: column 'item' expects Int64; got 'abc'"),
        ({"movies": CSV_MOVIES + "1,Toy Story again (1995),Comedy\n"}, r"movies\.csv: item 1 appears on more than one line"),
        ({"links": "movieId,imdbId\n1,0114709\n"}, r"links\.csv: expected the header 'movieId,imdbId,tmdbId'"),
    ],
)
def test_csv_malformed_files(tmp_path: Path, kw: dict[str, str], match: str) -> None:
    write_csv_release(tmp_path, "ml-25m", **kw)
    with pytest.raises(DatasetError, match=match):
        load_movielens("ml-25m", data_dir=tmp_path, download=False)


# -- where the data is looked for -------------------------------------------------------------


def test_data_dir_defaults_to_env_then_home_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir = tmp_path / "env"
    write_ml100k(env_dir)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(env_dir))
    assert load_movielens("ml-100k", download=False).path == str(env_dir / "ml-100k")

    monkeypatch.delenv("RECSYS_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DatasetError, match=r"home/\.cache/recsys/ml-100k/u\.data does not exist"):
        load_movielens("ml-100k", download=False)
    write_ml100k(tmp_path / "home" / ".cache" / "recsys")
    assert load_movielens("ml-100k", download=False).path == str(tmp_path / "home" / ".cache" / "recsys" / "ml-100k")


def test_present_files_are_read_without_network_even_with_download_true(tmp_path: Path) -> None:
    # the autouse fixture makes any network access fail
    write_ml100k(tmp_path)
    assert len(load_movielens("ml-100k", data_dir=str(tmp_path), download=True, base_url="http://127.0.0.1:9").ratings) == 4


def test_missing_offline_names_the_file_and_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"ml-100k/u\.data does not exist \(download=False\)") as info:
        load_movielens("ml-100k", data_dir=tmp_path, download=False)
    msg = str(info.value)
    assert str(tmp_path / "ml-100k" / "u.data") in msg
    assert "RECSYS_DATA_DIR" in msg and "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in msg
    assert not isinstance(info.value, DownloadError)
    assert os.listdir(tmp_path) == []


def test_missing_ml10m_names_its_official_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"ml-10M100K/ratings\.dat does not exist"):
        load_movielens("ml-10m", data_dir=tmp_path, download=False)


def test_incomplete_copy_is_reported_not_downloaded_over(tmp_path: Path) -> None:
    d = write_ml100k(tmp_path)
    (d / "u.item").unlink()
    with pytest.raises(DatasetError, match=r"ml-100k exists but lacks u\.item.*delete that directory"):
        load_movielens("ml-100k", data_dir=tmp_path, download=True)
    assert sorted(os.listdir(d)) == ["u.data", "u.user"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "ml-5m"}, r"Unknown MovieLens release 'ml-5m'; valid names are 'ml-100k', 'ml-1m', 'ml-10m', 'ml-20m', 'ml-25m', 'ml-latest-small'"),
        ({"name": 100}, r"'name' parameter of load_movielens must be a str.*Got 100 instead"),
        ({"name": "ml-100k", "data_dir": 3}, r"'data_dir' parameter of load_movielens must be a str or path. Got int instead"),
        ({"name": "ml-100k", "download": "yes"}, r"'download' parameter of load_movielens must be a bool. Got 'yes' instead"),
        ({"name": "ml-100k", "show_progress": 1}, r"'show_progress' parameter of load_movielens must be a bool or None"),
        ({"name": "ml-100k", "base_url": ""}, r"'base_url' parameter of load_movielens must be a non-empty str"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    kwargs.setdefault("data_dir", tmp_path)
    name = kwargs.pop("name")
    with pytest.raises(ParameterError, match=match):
        load_movielens(name, **kwargs)


def test_release_registry() -> None:
    assert list(RELEASES) == ["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small"]
    for name, r in RELEASES.items():
        assert r.name == name
        assert r.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
        assert r.md5_url == r.url + ".md5"
        assert "Harper & Konstan" in r.licence and "redistribution" in r.licence
    assert {n: r.subdir for n, r in RELEASES.items()}["ml-10m"] == "ml-10M100K"
    assert {n: r.format for n, r in RELEASES.items()} == {
        "ml-100k": "ml-100k", "ml-1m": "dat", "ml-10m": "dat", "ml-20m": "csv", "ml-25m": "csv", "ml-latest-small": "csv",
    }  # fmt: skip


def test_movielens_is_frozen() -> None:
    ml = MovieLens(name="x", ratings=pd.DataFrame({"user": [1], "item": [1], "rating": [1.0], "timestamp": [0]}), items=pd.DataFrame({"item": [1]}))
    with pytest.raises(AttributeError):
        ml.name = "y"  # type: ignore[misc]


# -- the real ML-100K ----------------------------------------------------------------------------


def test_real_ml100k(ml100k_dir: str) -> None:
    ml = load_movielens("ml-100k", data_dir=ml100k_dir, download=False)
    assert len(ml.ratings) == 100_000
    assert ml.ratings["user"].nunique() == 943 and ml.ratings["item"].nunique() == 1682
    assert len(ml.items) == 1682 and ml.users is not None and len(ml.users) == 943
    genres = {g for gs in ml.items["genres"] for g in gs}
    assert len(genres) == 19 and genres == set(ML100K_GENRES)
    with open(os.path.join(ml100k_dir, "ml-100k", "u.genre"), encoding="latin-1") as f:
        assert tuple(line.split("|")[0] for line in f.read().splitlines() if line.strip()) == ML100K_GENRES
    # first and last rows of u.data, in file order
    assert _records(ml.ratings.iloc[[0, -1]]) == [(196, 242, 3.0, 881250949), (12, 203, 3.0, 879959583)]
    assert ml.ratings["rating"].sum() == 352_986
    toy = ml.items.iloc[0]
    assert (toy["item"], toy["title"], toy["year"], toy["genres"]) == (1, "Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"])
    assert _records(ml.users.iloc[[0]]) == [(1, 24, "M", "technician", "85711")]
    assert ml.users["occupation"].nunique() == 21
    data = ml.interactions()
    assert (data.n_users, data.n_items, data.nnz) == (943, 1682, 100_000)
    assert data.matrix().shape == (943, 1682)


# -- round trips of free text ------------------------------------------------------------------

_free_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters='\n,"'),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(titles=st.lists(_free_text, min_size=1, max_size=6), tags=st.lists(_free_text, min_size=1, max_size=6))
def test_csv_free_text_round_trips(tmp_path_factory: pytest.TempPathFactory, titles: list[str], tags: list[str]) -> None:
    """Titles and tags with commas, quotes, accents or newlines come back exactly as csv.writer wrote them."""
    root = tmp_path_factory.mktemp("csv")

    def csv_text(header: list[str], rows: list[list[Any]]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()

    movies = csv_text(["movieId", "title", "genres"], [[i + 1, t, "Drama"] for i, t in enumerate(titles)])
    tag_rows = csv_text(["userId", "movieId", "tag", "timestamp"], [[9, 1, t, 100 + k] for k, t in enumerate(tags)])
    write_csv_release(root, "ml-latest-small", movies=movies, tags=tag_rows)
    ml = load_movielens("ml-latest-small", data_dir=root, download=False)
    assert ml.items["title"].tolist() == titles
    assert ml.tags is not None and ml.tags["tag"].tolist() == tags
    assert ml.items["tags"].tolist()[0] == list(dict.fromkeys(tags))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    titles=st.lists(
        st.text(alphabet=st.characters(max_codepoint=255, blacklist_categories=("Cc",)), min_size=1, max_size=30).filter(
            lambda s: s.strip() == s  # ml-1m is latin-1; one line per movie
        ),
        min_size=1,
        max_size=6,
    )
)
def test_dat_titles_with_colons_round_trip(tmp_path_factory: pytest.TempPathFactory, titles: list[str]) -> None:
    """A '::'-separated movies.dat title may contain ':' or even '::'; genres never do."""
    root = tmp_path_factory.mktemp("dat")
    movies = "".join(f"{i + 1}::{t}::Comedy|Drama\n" for i, t in enumerate(titles))
    write_ml1m(root, movies=movies)
    ml = load_movielens("ml-1m", data_dir=root, download=False)
    assert ml.items["title"].tolist() == titles
    assert ml.items["genres"].tolist() == [["Comedy", "Drama"]] * len(titles)
