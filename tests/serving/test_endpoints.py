"""Endpoints of a real uvicorn server on 127.0.0.1, answers compared with the in-process model, and every bad input a 4xx."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsys import load_model
from recsys.content import HashingEncoder
from recsys.models import ContentBased, ItemKNN
from recsys.serving import publish
from recsys.testing import tiny_interactions
from tests.serving.conftest import NoExtras, ThreadServer, httpx, str_id_interactions


def _pairs(body: dict[str, Any]) -> tuple[list[Any], list[float]]:
    return [x["item"] for x in body["items"]], [x["score"] for x in body["items"]]


def _same(body: dict[str, Any], ids: Any, scores: Any) -> None:
    got_ids, got_scores = _pairs(body)
    assert got_ids == ids.tolist()
    np.testing.assert_array_equal(np.asarray(got_scores, dtype=np.float32), scores)  # float32 -> JSON -> float32 is exact
    assert [x["rank"] for x in body["items"]] == list(range(1, len(got_ids) + 1))


@pytest.fixture(scope="module")
def srv(knn_root: Path) -> Iterator[ThreadServer]:
    with ThreadServer(knn_root, max_k=50, max_history=20, max_batch=5, max_batch_entries=60, max_ids=30, max_body_bytes=4000) as s:
        yield s


@pytest.fixture(scope="module")
def client(srv: ThreadServer) -> Iterator[Any]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def model(knn_root: Path) -> Any:
    return load_model(knn_root / "current")


# -- answers equal the library's -----------------------------------------------------------------


def test_recommend_known_user(client: Any, model: Any) -> None:
    r = client.get("/recommend", params={"user": "3", "k": 5})
    assert r.status_code == 200 and r.headers["x-model-version"] == "v1"
    body = r.json()
    assert body["user"] == 3 and body["known_user"] is True and body["fallback"] is None
    assert body["model_version"] == "v1"
    _same(body, *model.recommend_one(3, k=5))


def test_recommend_options(client: Any, model: Any) -> None:
    body = client.get("/recommend", params={"user": "4", "k": 8, "exclude_seen": "false"}).json()
    _same(body, *model.recommend_one(4, k=8, exclude_seen=False))
    # candidates as repeated parameters and comma lists; fewer candidates than k
    r = client.get("/recommend", params=[("user", "4"), ("items", "1,3,5"), ("items", "7"), ("items", "0")])
    _same(r.json(), *model.recommend_one(4, k=10, items=[1, 3, 5, 7, 0]))
    r = client.get("/recommend", params={"user": "4", "k": 4, "exclude_items": "13,29,nonexistent"})
    _same(r.json(), *model.recommend_one(4, k=4, exclude_items=[13, 29]))


def test_unknown_user_fallbacks(client: Any, model: Any) -> None:
    r = client.get("/recommend", params={"user": "999"})
    assert r.status_code == 404 and r.json()["error"] == "unknown_id"
    assert "'999'" in r.json()["detail"]
    r = client.get("/recommend", params={"user": "999", "k": 3, "on_unknown": "popular"})
    body = r.json()
    assert r.status_code == 200 and body["known_user"] is False and body["fallback"] == "popular"
    _same(body, *model.recommend_one(999, k=3, on_unknown="popular"))
    body = client.get("/recommend", params={"user": "nobody", "on_unknown": "skip"}).json()
    assert body["items"] == [] and body["fallback"] == "skip"


def test_history(client: Any, model: Any) -> None:
    r = client.post("/recommend", json={"items": [0, 2, 4], "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] is None and body["known_user"] is False
    _same(body, *model.recommend_history([0, 2, 4], k=5))
    # ids as strings map to the model's integer ids; candidates / exclusions / unknown items skipped
    r = client.post(
        "/recommend",
        json={"items": ["0", "2", 999], "k": 3, "exclude_items": [16], "candidates": [14, 16, 18, 20, 22], "on_unknown_items": "skip"},
    )
    _same(r.json(), *model.recommend_history([0, 2], k=3, exclude_items=[16], candidates=[14, 16, 18, 20, 22]))


def test_history_with_nothing_known(client: Any, model: Any) -> None:
    # every item unknown: 'skip' leaves nothing to fold in (a clear 422, never arbitrary items), 'popular' falls back
    r = client.post("/recommend", json={"items": [998, 999], "k": 3, "on_unknown_items": "skip"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_value" and "on_unknown_items='popular'" in r.json()["detail"]
    r = client.post("/recommend", json={"items": [998, 999], "k": 3, "on_unknown_items": "popular"})
    assert r.status_code == 200
    _same(r.json(), *model.recommend_history([998], k=3, on_unknown_items="popular"))


def test_batch(client: Any, model: Any) -> None:
    r = client.post("/recommend/batch", json={"users": [1, "2", 5], "k": 4})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["user"] for x in results] == [1, 2, 5]
    frame = model.recommend([1, 2, 5], k=4)
    for res, u in zip(results, [1, 2, 5]):
        g = frame[frame.user == u]
        _same(res, g["item"].to_numpy(), g["score"].to_numpy())
    r = client.post("/recommend/batch", json={"users": [1, 999], "k": 2, "on_unknown": "popular"})
    res = r.json()["results"]
    assert res[1]["fallback"] == "popular" and len(res[1]["items"]) == 2
    r = client.post("/recommend/batch", json={"users": [1, 999], "on_unknown": "skip"})
    assert r.json()["results"][1]["items"] == []


def test_similar(client: Any, model: Any) -> None:
    r = client.get("/similar", params={"item": "2", "k": 4})
    assert r.status_code == 200
    frame = model.similar_items([2], k=4)
    _same(r.json(), frame["similar_item"].to_numpy(), frame["score"].to_numpy())
    assert r.json()["item"] == 2


def test_service_endpoints(client: Any, knn_root: Path) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["ready"] is True
    meta = client.get("/model").json()
    artifact = knn_root / "versions" / "v1"
    assert meta["class"] == "ItemKNN" and meta["params"]["k"] == 10 and meta["version"] == "v1"
    assert meta["artifact_sha256"] == hashlib.sha256((artifact / "manifest.json").read_bytes()).hexdigest()
    assert meta["path"] == str(artifact.resolve())
    assert meta["load_seconds"] > 0 and meta["loaded_at"].endswith("+00:00")
    assert meta["n_users"] == 20 and meta["n_items"] == 32 and meta["user_id_type"] == "int"
    assert meta["supports"] == {"history": True, "similar_items": True}
    assert meta["last_reload_error"] is None and meta["limits"]["max_k"] == 50
    spec = client.get("/openapi.json").json()
    assert {"/recommend", "/recommend/batch", "/similar", "/health", "/ready", "/model"} <= set(spec["paths"])
    assert {"get", "post"} <= set(spec["paths"]["/recommend"])
    k = next(p for p in spec["paths"]["/recommend"]["get"]["parameters"] if p["name"] == "k")
    assert k["schema"]["maximum"] == 50  # the service's limit is documented
    assert "swagger" in client.get("/docs").text.lower()


# -- bad inputs: each a 4xx with a clear message, the worker alive afterwards ------------------------------


BAD_GETS = [
    ({"user": "3", "k": "abc"}, 422, "k: Input should be a valid integer"),
    ({"user": "3", "k": "1.5"}, 422, "k: Input should be a valid integer"),
    ({"user": "3", "k": "0"}, 422, "greater than or equal to 1"),
    ({"user": "3", "k": "51"}, 422, "less than or equal to 50"),
    ({"user": "3", "k": "99999999999999999999999"}, 422, "k:"),
    ({"k": "3"}, 422, "user: Field required"),
    ({"user": ""}, 422, "user:"),
    ({"user": "x" * 2000}, 422, "user:"),
    ({"user": "abc"}, 404, "user 'abc' is not in the training data (user ids of this model are integers)"),
    ({"user": "3.0"}, 404, "user ids of this model are integers"),
    ({"user": "3", "exclude_seen": "maybe"}, 422, "exclude_seen"),
    ({"user": "3", "items": "1,zz"}, 404, "'zz'"),
    ({"user": "3", "items": ",".join(map(str, range(31)))}, 413, "at most 30 (max_ids)"),
    ({"user": "3", "on_unknown": "guess"}, 422, "on_unknown"),
]


@pytest.mark.parametrize("params,status,message", BAD_GETS)
def test_bad_recommend_queries(client: Any, params: dict[str, str], status: int, message: str) -> None:
    r = client.get("/recommend", params=params)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


BAD_POSTS = [
    ({"items": []}, 422, "items: List should have at least 1 item"),
    ({"items": [1], "ratings": [1.0, 2.0]}, 422, "ratings must align with items: 2 values for 1 items"),
    ({"items": [1, 2], "timestamps": [1]}, 422, "timestamps must align"),
    ({"items": [1.5]}, 422, "items.0"),
    ({"items": [True]}, 422, "items.0"),
    ({"items": [1], "ratings": ["high"]}, 422, "ratings.0"),
    ({"itemz": [1]}, 422, "itemz: Extra inputs are not permitted"),
    ({"items": [1], "k": -1}, 422, "k: Input should be greater than or equal to 1"),
    ({"items": [1], "k": "ten"}, 422, "k: Input should be a valid integer"),
    ({"items": [1, 999]}, 404, "999"),
    ({"items": list(range(21))}, 413, "items has 21 ids; this service accepts at most 20 (max_history)"),
    ({"items": [1], "on_unknown_items": "ignore"}, 422, "on_unknown_items"),
    ([1, 2, 3], 422, "Input should be a valid dictionary"),
]


@pytest.mark.parametrize("body,status,message", BAD_POSTS)
def test_bad_history_bodies(client: Any, body: Any, status: int, message: str) -> None:
    r = client.post("/recommend", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_malformed_and_oversized_bodies(client: Any) -> None:
    headers = {"content-type": "application/json"}
    for raw in (b'{"items": [1,', b"not json", b'{"items": [1], "ratings": [NaN]}'):
        r = client.post("/recommend", content=raw, headers=headers)
        assert r.status_code in (400, 422), raw
        assert r.json()["error"] in ("malformed_json", "invalid_request")
    r = client.post("/recommend", content=b'{"items": [1,', headers=headers)
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    big = json.dumps({"items": list(range(2000))}).encode()
    r = client.post("/recommend", content=big, headers=headers)
    assert r.status_code == 413 and "at most 4000 (max_body_bytes)" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no content-length: counted while read
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/recommend", content=chunks(), headers=headers)
    assert r.status_code == 413
    r = client.post("/recommend/batch", json={"users": [1, 2, 3, 4, 5, 6]})
    assert r.status_code == 413 and "at most 5 (max_batch)" in r.json()["detail"]
    r = client.post("/recommend/batch", json={"users": [1, 2, 3], "k": 21})
    assert r.status_code == 413 and "3 users x k=21 asks for 63" in r.json()["detail"]
    assert client.post("/recommend/batch", json={"users": [1, 2, 3], "k": 20}).status_code == 200
    r = client.post("/recommend/batch", json={"users": [1, 1]})
    assert r.status_code == 422 and "must not repeat" in r.json()["detail"]
    r = client.post("/recommend/batch", json={"users": [1, 998, 999]})
    assert r.status_code == 404 and "998" in r.json()["detail"] and "999" in r.json()["detail"]


def test_bad_similar_queries(client: Any) -> None:
    assert client.get("/similar", params={"item": "12345"}).status_code == 404
    assert client.get("/similar", params={"item": "2", "k": "x"}).status_code == 422
    assert client.get("/similar").status_code == 422


def test_worker_survives_a_barrage(client: Any, srv: ThreadServer) -> None:
    rng = np.random.default_rng(0)
    junk = ["", "-", "0x10", "1e3", "NaN", "%00", "é", "1,2", " 3", "3 ", "-1", "9" * 40, "[]", "{}", "null"]
    statuses = []
    for _ in range(150):
        params = {name: str(rng.choice(junk)) for name in ("user", "k", "items", "exclude_items", "exclude_seen") if rng.random() < 0.7}
        statuses.append(client.get("/recommend", params=params).status_code)
        statuses.append(client.get("/similar", params={"item": str(rng.choice(junk)), "k": str(rng.choice(junk))}).status_code)
    for raw in (b"", b"[", b"{}", b'{"items": null}', b'{"items": [[1]]}', b'{"items": [{"a": 1}]}', b"\xff\xfe"):
        statuses.append(client.post("/recommend", content=raw, headers={"content-type": "application/json"}).status_code)
        statuses.append(client.post("/recommend/batch", content=raw, headers={"content-type": "application/json"}).status_code)
    assert all(400 <= s < 500 or s == 200 for s in statuses), sorted(set(statuses))
    assert client.get("/health").status_code == 200 and srv.thread.is_alive()


# -- id types and models without fold-in / similarity --------------------------------------------------


def test_string_ids(tmp_path: Path) -> None:
    data = str_id_interactions()
    publish(ContentBased(encoder=HashingEncoder(dim=64)).fit(tiny_interactions()), tmp_path / "c", version="c1")
    publish(ItemKNN(k=10).fit(data), tmp_path / "s", version="s1")
    model = load_model(tmp_path / "s" / "current")
    with ThreadServer(tmp_path / "s") as srv, httpx.Client(base_url=srv.url) as c:
        body = c.get("/recommend", params={"user": "u3", "k": 3}).json()
        assert body["user"] == "u3"
        _same(body, *model.recommend_one("u3", k=3))
        r = c.get("/recommend", params={"user": "3"})
        assert r.status_code == 404 and "integers" not in r.json()["detail"]
        _same(c.post("/recommend", json={"items": ["i0", "i2"], "k": 3}).json(), *model.recommend_history(["i0", "i2"], k=3))
        assert c.post("/recommend", json={"items": [0, 2]}).status_code == 404  # 0 means "0", not "i0"
        assert c.get("/model").json()["item_id_type"] == "str"
    content = load_model(tmp_path / "c" / "current")
    with ThreadServer(tmp_path / "c") as srv, httpx.Client(base_url=srv.url) as c:
        # a content model scores items nobody interacted with (1000, 1001) and uses ratings / timestamps
        body = {"items": [0, 2, 4], "ratings": [5.0, 1.0, 4.0], "timestamps": [10, 20, 30], "k": 32}
        want = content.recommend_history([0, 2, 4], k=32, ratings=[5.0, 1.0, 4.0], timestamps=[10, 20, 30])
        got = c.post("/recommend", json=body).json()
        _same(got, *want)
        assert 1000 in _pairs(got)[0]


def test_model_without_history_or_similarity(tmp_path: Path) -> None:
    publish(NoExtras().fit(tiny_interactions()), tmp_path / "n", version="n1")
    with ThreadServer(tmp_path / "n") as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/model").json()["supports"] == {"history": False, "similar_items": False}
        r = c.post("/recommend", json={"items": [1, 2]})
        assert r.status_code == 400 and r.json()["error"] == "not_supported" and "NoExtras" in r.json()["detail"]
        r = c.get("/similar", params={"item": "2"})
        assert r.status_code == 400 and "no item similarity" in r.json()["detail"]
        assert c.get("/recommend", params={"user": "1"}).status_code == 200


def test_configured_fallback(tmp_path: Path) -> None:
    publish(ItemKNN(k=10).fit(tiny_interactions()), tmp_path / "f", version="f1")
    with ThreadServer(tmp_path / "f", on_unknown="popular") as srv, httpx.Client(base_url=srv.url) as c:
        body = c.get("/recommend", params={"user": "stranger", "k": 2}).json()
        assert body["fallback"] == "popular" and len(body["items"]) == 2
        assert c.get("/recommend", params={"user": "stranger", "on_unknown": "error"}).status_code == 404
