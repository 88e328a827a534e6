"""The explorer's JSON endpoints (no browser): answers checked against the model, and their 4xx cases."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import require

require("fastapi")
require("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from recsys import load_model  # noqa: E402
from recsys.datasets import synthetic  # noqa: E402
from recsys.models import ItemKNN  # noqa: E402
from recsys.serving import create_app, publish  # noqa: E402
from recsys.serving._catalog import keep_explorer_data  # noqa: E402
from tests.serving.conftest import NoExtras  # noqa: E402

#: An item title that would run if the page ever put data into innerHTML.
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def build_root(root: Path, n_users: int = 943, n_items: int = 1682, nnz: int = 100_000) -> Path:
    """A model root shaped like ML-100K (synthetic), two ItemKNN versions "v1" (k=50) and "v2" (k=20) with
    titles, genres and times; item index 0 has the title :data:`HOSTILE`."""
    data = synthetic(n_users, n_items, nnz, seed=1)
    for version, k in (("v1", 50), ("v2", 20)):
        model = keep_explorer_data(ItemKNN(k=k).fit(data), data)
        model.item_info_["title"][0] = HOSTILE  # type: ignore[attr-defined]
        publish(model, root, version=version)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_root(tmp_path_factory.mktemp("explorer"), 60, 80, 1500)


@pytest.fixture(scope="module")
def client(root: Path) -> Any:
    with TestClient(create_app(root, poll_interval=0)) as c:
        yield c


@pytest.fixture(scope="module")
def model(root: Path) -> Any:
    return load_model(root / "current")


def first_user_and_rec(model: Any) -> tuple[Any, Any]:
    user = model.users_.ids[0].item()
    return user, model.recommend_one(user, 3)[0][0].item()


def test_explain_matches_the_model(client: Any, model: Any) -> None:
    user, item = first_user_and_rec(model)
    r = client.get("/explain", params={"user": str(user), "item": str(item), "top": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    frame = model.explain(user, item, top=3)
    assert body["user"] == user and body["item"]["item"] == item and body["exact"] is True
    assert body["score"] == pytest.approx(frame.attrs["score"])
    assert [p["kind"] for p in body["parts"]] == frame["kind"].tolist()
    assert [p["item"] for p in body["parts"]] == [None if i is None else int(i) for i in frame["id"]]
    np.testing.assert_allclose([p["contribution"] for p in body["parts"]], frame["contribution"].to_numpy())
    # the parts add up to the score recommend ranks by
    ids, scores = model.recommend_one(user, 3)
    assert sum(p["contribution"] for p in body["parts"]) == pytest.approx(float(scores[0]), rel=1e-5)
    titled = [p for p in body["parts"] if p["kind"] == "item"]
    assert all(p["title"] == model.item_info_["title"][model.items_.index_of(p["item"])] for p in titled)
    assert r.headers["x-model-version"] == "v2"


def test_explain_history_matches_explain_history(client: Any, model: Any) -> None:
    items = model.items_.ids[:4].tolist()
    target = model.recommend_history(items, 1)[0][0].item()
    r = client.post("/explain", json={"items": items, "item": target, "top": 2})
    assert r.status_code == 200, r.text
    frame = model.explain_history(items, target, top=2)
    np.testing.assert_allclose([p["contribution"] for p in r.json()["parts"]], frame["contribution"].to_numpy())
    assert r.json()["user"] is None


def test_history_is_newest_first_with_titles(client: Any, model: Any) -> None:
    user = model.users_.ids[1].item()
    r = client.get(f"/users/{user}/history", params={"limit": 5})
    body = r.json()
    u = model.users_.index_of(user)
    row = model.history_times_[u]
    newest = row.indices[np.lexsort((row.indices, -row.data))][:5]
    assert body["order"] == "newest first" and body["n"] == row.nnz
    assert [e["item"] for e in body["items"]] == model.items_.to_ids(newest).tolist()
    times = [e["time"] for e in body["items"]]
    assert times == sorted(times, reverse=True)
    assert body["items"][0]["title"] == model.item_info_["title"][newest[0]]


def test_overview_is_recommend_and_history_in_one(client: Any, model: Any) -> None:
    user = model.users_.ids[4].item()
    body = client.get(f"/users/{user}/overview", params={"k": 7, "limit": 5}).json()
    ids, scores = model.recommend_one(user, 7)
    assert [e["item"] for e in body["items"]] == ids.tolist() and [e["rank"] for e in body["items"]] == list(range(1, 8))
    np.testing.assert_allclose([e["score"] for e in body["items"]], scores, rtol=1e-6)
    assert [e["title"] for e in body["items"]] == [model.item_info_["title"][i] for i in model.items_.to_index(ids)]
    history = client.get(f"/users/{user}/history", params={"limit": 5}).json()
    history.pop("model_version")
    assert body["history"] == history
    r = client.get("/users/nobody/overview")
    assert r.status_code == 404 and "'nobody'" in r.json()["detail"]
    assert client.get(f"/users/{user}/overview", params={"k": "0"}).status_code == 422


def test_search_items_and_users(client: Any, model: Any) -> None:
    # the hostile title is found by a piece of it, case-insensitively, and comes back as plain text
    r = client.get("/items/search", params={"q": "<SCRIPT>window", "limit": 5})
    assert [i["title"] for i in r.json()["items"]] == [model.item_info_["title"][0]]
    title = model.item_info_["title"][7]
    word = title.split()[0].lower()
    found = client.get("/items/search", params={"q": word, "limit": 100}).json()["items"]
    expect = [i for i, t in enumerate(model.item_info_["title"]) if word in t.lower() or word in str(model.items_.ids[i])]
    assert sorted(model.items_.index_of(i["item"]) for i in found) == sorted(expect)
    exact = client.get("/items/search", params={"q": str(model.items_.ids[5]), "limit": 3}).json()["items"]
    assert exact[0]["item"] == model.items_.ids[5].item()  # an exact id comes first
    users = client.get("/users/search", params={"q": "1", "limit": 100}).json()["users"]
    assert sorted(users) == sorted(u for u in model.users_.ids.tolist() if str(u).startswith("1"))
    assert client.get("/users/random").json()["user"] in set(model.users_.ids.tolist())
    got = client.get("/items", params={"ids": f"{model.items_.ids[0]},{model.items_.ids[3]}"}).json()["items"]
    assert [g["title"] for g in got] == [model.item_info_["title"][0], model.item_info_["title"][3]]


def test_summary_versions_and_compare(client: Any, root: Path, model: Any) -> None:
    s = client.get("/model/summary").json()
    assert s["model"]["class"] == "ItemKNN" and s["model"]["params"]["k"] == 20 and s["model"]["version"] == "v2"
    assert s["model"]["artifact_sha256"] == hashlib.sha256((root / "versions" / "v2" / "manifest.json").read_bytes()).hexdigest()
    assert s["data"]["n_interactions"] == model.seen_.nnz and s["data"]["titles"] is True
    assert s["explain"] == {"supported": True, "reason": None}
    assert [v["version"] for v in s["versions"]] == ["v1", "v2"] and s["versions"][1]["current"]
    user = model.users_.ids[2].item()
    c = client.get("/compare", params={"user": str(user), "a": "v1", "b": "v2", "k": 10}).json()
    old = load_model(root / "versions" / "v1")
    assert [e["item"] for e in c["a"]["items"]] == old.recommend_one(user, 10)[0].tolist()
    assert [e["item"] for e in c["b"]["items"]] == model.recommend_one(user, 10)[0].tolist()
    b_items = {e["item"] for e in c["b"]["items"]}
    assert c["overlap"] == [e["item"] for e in c["a"]["items"] if e["item"] in b_items]


def test_page_and_static_files(client: Any) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/explore"
    page = client.get("/explore")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("explorer.js", "explorer.css"):
        assert f"/explore/static/{name}" in page.text
        assert client.get(f"/explore/static/{name}").status_code == 200
    js = client.get("/explore/static/explorer.js").text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js
    assert client.get("/explore/static/..%2Fexplorer.py").status_code == 404
    assert client.get("/explore/static/nothing.js").status_code == 404
    spec = client.get("/openapi.json").json()
    assert {"/explain", "/users/{user}/history", "/items/search", "/compare", "/versions", "/model/summary"} <= set(spec["paths"])
    assert "/explore" not in spec["paths"]


BAD = [
    ("/explain", {"user": "nobody", "item": "1"}, 404, "user 'nobody' is not in the training data"),
    ("/explain", {"user": "1", "item": "99999"}, 404, "item '99999' is not in the training data"),
    ("/explain", {"user": "1", "item": "1", "top": "0"}, 422, "top"),
    ("/explain", {"user": "1", "item": "1", "top": "1.5"}, 422, "top"),
    ("/explain", {"user": "1"}, 422, "item: Field required"),
    ("/users/nobody/history", {}, 404, "user 'nobody' is not in the training data"),
    ("/users/1/history", {"limit": "0"}, 422, "limit"),
    ("/items/search", {"q": ""}, 422, "q:"),
    ("/items/search", {"q": "a", "limit": "101"}, 422, "limit"),
    ("/items/search", {"q": "a", "lmit": "3"}, 422, "unknown query parameter"),
    ("/items", {"ids": "1,zz"}, 404, "'zz'"),
    ("/compare", {"user": "1", "a": "v1", "b": "v9"}, 404, "version 'v9' is not a version"),
    ("/compare", {"user": "1", "a": "../v1", "b": "v2"}, 404, "is not a version"),
    ("/compare", {"user": "nobody", "a": "v1", "b": "v2"}, 404, "'nobody'"),
]


@pytest.mark.parametrize("path,params,status,message", BAD)
def test_bad_requests(client: Any, path: str, params: dict[str, str], status: int, message: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


@pytest.mark.parametrize(
    "body,status,message",
    [
        ({"items": [], "item": 1}, 422, "items"),
        ({"items": [1], "item": 99999}, 404, "99999"),
        ({"items": [99999], "item": 1}, 404, "99999"),
        ({"items": [1], "item": 1, "ratings": [1.0, 2.0]}, 422, "ratings must align"),
        ({"items": [1]}, 422, "item: Field required"),
    ],
)
def test_bad_explain_history_bodies(client: Any, body: Any, status: int, message: str) -> None:
    r = client.post("/explain", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_a_model_without_explanations_is_a_400_with_the_reason(tmp_path: Path) -> None:
    from recsys.testing import tiny_interactions

    publish(NoExtras().fit(tiny_interactions()), tmp_path, version="v1")
    with TestClient(create_app(tmp_path, poll_interval=0)) as c:
        r = c.get("/explain", params={"user": "1", "item": "2"})
        assert r.status_code == 400 and r.json() == {"error": "not_supported", "detail": "NoExtras cannot explain its scores"}
        assert c.get("/model/summary").json()["explain"] == {"supported": False, "reason": "NoExtras cannot explain its scores"}
        # without titles or times: ids only, order unknown
        h = c.get("/users/1/history").json()
        assert h["order"].startswith("unknown") and all(e["title"] is None for e in h["items"])


def test_no_model_loaded_is_a_503(root: Path) -> None:
    app = create_app(root, poll_interval=0)
    with TestClient(app) as c:
        app.state.store.current = None  # as between start-up and the first load
        for path in ("/model/summary", "/explain?user=1&item=1", "/users/random"):
            r = c.get(path)
            assert r.status_code == 503 and r.json()["error"] == "model_unavailable", path


def test_explore_with_data_takes_titles_from_it(root: Path) -> None:
    # a model saved without explorer data, explored with the data given at run time (recsys explore --data)
    data = synthetic(60, 80, 1500, seed=1)
    plain = ItemKNN(k=20).fit(data)
    assert not hasattr(plain, "item_info_")
    path = plain.save(root.parent / "plain")
    app = create_app(path, poll_interval=0)
    app.state.explorer.data = data
    with TestClient(app) as c:
        got = c.get("/items", params={"ids": str(data.items.ids[4])}).json()["items"][0]
        assert got["title"] == data.item_features["title"][4]
        assert c.get("/model/summary").json()["data"]["source"] == "data"


# -- the command line: fit keeps the explorer data, explore serves the page ---------------------------------------

SYN = ("--dataset", "synthetic", "--synthetic-size", "50,40,600")


def test_fit_keeps_titles_genres_and_times(tmp_path: Path) -> None:
    from recsys.cli import main

    assert main(["fit", "--model", "itemknn", *SYN, "--out", str(tmp_path / "m")]) == 0
    model = load_model(tmp_path / "m")
    data = synthetic(50, 40, 600, seed=42)  # the CLI's default seed
    assert model.item_info_["title"] == [str(t) for t in data.item_features["title"]]
    assert model.item_info_["genres"] == [list(g) for g in data.item_features["genres"]]
    # the latest time of each pair, checked against the rows
    frame = data.to_frame()
    last = frame.groupby(["user", "item"])["timestamp"].max()
    u, i = model.users_.index_of(last.index[0][0]), model.items_.index_of(last.index[0][1])
    assert model.history_times_[u, i] == float(last.iloc[0])
    assert model.history_times_.nnz == len(last)
    # never used for scoring: the recommendations are those of a model fitted without them
    ref = ItemKNN().fit(data)
    np.testing.assert_array_equal(model.recommend_one(model.users_.ids[0], 5)[0], ref.recommend_one(ref.users_.ids[0], 5)[0])
    assert main(["fit", "--model", "itemknn", *SYN, "--no-explorer-data", "--out", str(tmp_path / "plain")]) == 0
    assert not hasattr(load_model(tmp_path / "plain"), "item_info_")


def test_explore_command_serves_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from recsys.cli import main

    data = synthetic(50, 40, 600, seed=42)
    ItemKNN().fit(data).save(tmp_path / "m")  # no explorer data in the artifact
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append((app, kw)))
    assert main(["explore", "--model", str(tmp_path / "m"), *SYN, "--port", "8123"]) == 0
    app, kw = served[0]
    assert kw["port"] == 8123 and kw["host"] == "127.0.0.1"
    with TestClient(app) as c:
        assert c.get("/explore").status_code == 200
        item = data.items.ids[3].item()
        assert c.get("/items", params={"ids": str(item)}).json()["items"][0]["title"] == data.item_features["title"][3]
    assert main(["explore", "--model", str(tmp_path / "nowhere")]) == 1
    assert main(["explore", "--model", str(tmp_path / "m"), "--port", "70000"]) == 2
