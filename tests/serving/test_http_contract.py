"""The HTTP contract on a real uvicorn server: strict integers, one value per query parameter, every error
``{error, detail}`` (the framework's own 404/405/400 included), 415 for bodies that are not JSON, HEAD
wherever GET, and ``GET /model``'s reload error cleared once the served version is good again."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recsys import load_model
from recsys.models import ItemKNN, Popular
from recsys.serving import activate, create_app, publish
from recsys.testing import tiny_interactions
from tests.serving.conftest import ThreadServer, httpx

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(knn_root: Path) -> Iterator[Any]:
    with ThreadServer(knn_root, max_k=50, max_history=20, max_batch=5, max_body_bytes=4000) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            yield c


def error_of(r: Any, status: int) -> dict[str, Any]:
    """The documented error shape: JSON {error, detail} (+ errors for 422), both non-empty strings."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert set(body) <= {"error", "detail", "errors"}
    return body  # type: ignore[no-any-return]


# -- k is an integer, everywhere -----------------------------------------------------------------------


@pytest.mark.parametrize("k", ["true", "5.0", "1e1", "5_0", " 5", "0x5", "５", "5.", ""])
@pytest.mark.parametrize("path,params", [("/recommend", {"user": "3"}), ("/similar", {"item": "2"})])
def test_query_k_must_be_written_as_an_integer(client: Any, path: str, params: dict[str, str], k: str) -> None:
    body = error_of(client.get(path, params={**params, "k": k}), 422)
    assert body["error"] == "invalid_request" and body["detail"].startswith("k: Input should be a valid integer")
    assert [e["field"] for e in body["errors"]] == ["k"]


@pytest.mark.parametrize("k", [True, "5", 5.0, 1e1, None, [5], {"k": 5}])
@pytest.mark.parametrize("path,body", [("/recommend", {"items": [0, 2]}), ("/recommend/batch", {"users": [1, 2]})])
def test_json_k_must_be_an_integer(client: Any, path: str, body: dict[str, Any], k: Any) -> None:
    err = error_of(client.post(path, json={**body, "k": k}), 422)
    assert err["detail"].startswith("k: Input should be a valid integer"), err


def test_integer_k_is_accepted_and_other_fields_are_strict_too(client: Any, knn_root: Path) -> None:
    model = load_model(knn_root / "current")
    r = client.post("/recommend", json={"items": [0, 2], "k": 5})
    assert r.status_code == 200 and [x["item"] for x in r.json()["items"]] == model.recommend_history([0, 2], k=5)[0].tolist()
    assert len(client.get("/recommend", params={"user": "3", "k": "05"}).json()["items"]) == 5
    # the message shows what was sent
    assert error_of(client.post("/recommend", json={"items": [0], "k": True}), 422)["detail"] == "k: Input should be a valid integer, got true"
    assert error_of(client.post("/recommend", json={"items": [0], "k": "5"}), 422)["detail"] == 'k: Input should be a valid integer, got "5"'
    assert error_of(client.post("/recommend", json={"items": [0], "k": 5.0}), 422)["detail"] == "k: Input should be a valid integer, got 5.0"
    assert error_of(client.get("/recommend", params={"user": "3", "k": "5.0"}), 422)["detail"] == (
        "k: Input should be a valid integer, written in digits (e.g. 10); got '5.0'"
    )
    # exclude_seen is a JSON boolean, ratings numbers (integers allowed), ids integers or strings
    assert error_of(client.post("/recommend", json={"items": [0], "exclude_seen": "false"}), 422)["errors"][0]["field"] == "exclude_seen"
    assert error_of(client.post("/recommend", json={"items": [0], "exclude_seen": 0}), 422)["errors"][0]["field"] == "exclude_seen"
    assert client.post("/recommend", json={"items": [0, 2], "ratings": [5, 3.5]}).status_code == 200
    assert error_of(client.post("/recommend", json={"items": [0], "ratings": ["5"]}), 422)["errors"][0]["field"] == "ratings.0"
    # an id is within int64 (a larger one cannot be any model's id) and never a boolean or a float
    err = error_of(client.post("/recommend", json={"items": [2**63]}), 422)
    assert err["errors"][0]["field"] == "items.0" and "int64" in err["detail"]
    assert client.post("/recommend", json={"items": [2**63 - 1]}).status_code == 404  # in range: unknown
    err = error_of(client.post("/recommend/batch", json={"users": [1, True]}), 422)
    assert err["detail"] == "users.1: An id must be a JSON integer or string; got true"
    # a rating a float32 cannot hold (it would be stored as inf)
    err = error_of(client.post("/recommend", json={"items": [0], "ratings": [1e39]}), 422)
    assert err["errors"][0]["field"] == "ratings.0"


# -- one value per query parameter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query,name",
    [
        ("user=1&user=2", "user"),
        ("user=1&k=5&k=6", "k"),
        ("user=1&k=5&k=5", "k"),  # even the same value twice
        ("user=1&exclude_seen=true&exclude_seen=false", "exclude_seen"),
        ("user=1&on_unknown=popular&on_unknown=skip", "on_unknown"),
    ],
)
def test_repeated_query_parameter_is_a_422_naming_it(client: Any, query: str, name: str) -> None:
    err = error_of(client.get(f"/recommend?{query}"), 422)
    assert err["detail"].startswith(f"{name}: given 2 times") and err["detail"].endswith("give it once")
    assert err["errors"] == [{"field": name, "message": err["detail"][len(name) + 2 :], "type": "repeated_parameter"}]


def test_repeated_similar_parameters_and_list_parameters(client: Any) -> None:
    assert error_of(client.get("/similar?item=1&item=2"), 422)["detail"].startswith("item: given 2 times ('1', '2')")
    assert error_of(client.get("/similar?item=1&k=2&k=3"), 422)["detail"].startswith("k: given 2 times ('2', '3')")
    # items / exclude_items are lists: repeating them is how a list is sent
    assert client.get("/recommend?user=4&items=1&items=3&exclude_items=3&exclude_items=5").status_code == 200


def test_unknown_query_parameter_is_a_422_naming_it(client: Any) -> None:
    err = error_of(client.get("/recommend?user=1&K=5"), 422)
    assert err["detail"] == "K: unknown query parameter; GET /recommend takes: user, k, exclude_seen, items, exclude_items, on_unknown"
    err = error_of(client.get("/health?verbose=1"), 422)
    assert err["detail"] == "verbose: unknown query parameter; GET /health takes: no query parameters"


# -- every 4xx is {error, detail} ------------------------------------------------------------------------------


def test_framework_errors_have_the_documented_shape(client: Any) -> None:
    err = error_of(client.get("/no/such/route"), 404)
    assert err["error"] == "not_found" and "'/no/such/route'" in err["detail"] and "GET /recommend" in err["detail"]
    r = client.delete("/recommend")
    err = error_of(r, 405)
    assert err["error"] == "method_not_allowed" and err["detail"] == "DELETE is not allowed on /recommend; allowed: GET, HEAD, POST"
    assert r.headers["allow"] == "GET, HEAD, POST"  # both routes of the path, not only the first one matched
    r = client.put("/health")
    assert error_of(r, 405)["detail"].endswith("allowed: GET, HEAD") and r.headers["allow"] == "GET, HEAD"
    r = client.get("/recommend/batch")
    assert error_of(r, 405)["error"] == "method_not_allowed" and r.headers["allow"] == "POST"
    assert error_of(client.options("/similar"), 405)["detail"] == "OPTIONS is not allowed on /similar; allowed: GET, HEAD"


@pytest.mark.parametrize(
    "content,why",
    [
        (b'{"items": [1,', "Expecting value"),
        (b"[" * 100_000 + b"]" * 100_000, "it is nested too deeply"),  # the parser's RecursionError
        (b'{"items": ["\xff"]}', "it is not UTF-8 text"),
    ],
)
def test_unreadable_bodies_are_400_malformed_json(knn_root: Path, content: bytes, why: str) -> None:
    with ThreadServer(knn_root, max_body_bytes=1 << 20) as srv, httpx.Client(base_url=srv.url) as c:
        err = error_of(c.post("/recommend", content=content, headers=JSON), 400)
        assert err["error"] == "malformed_json" and err["detail"].startswith("the request body is not valid JSON: ")
        assert why in err["detail"]


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"])
def test_bodies_that_are_not_json_are_415(client: Any, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    for path in ("/recommend", "/recommend/batch"):
        err = error_of(client.post(path, content=b'{"items": [1], "users": [1]}', headers=headers), 415)
        assert err["error"] == "unsupported_media_type" and "application/json" in err["detail"]
        assert (repr(ctype) if ctype else "no Content-Type") in err["detail"]


def test_json_media_types_are_accepted(client: Any) -> None:
    for ctype in ("application/json; charset=utf-8", "application/problem+json", "Application/JSON"):
        assert client.post("/recommend", content=b'{"items": [0, 2]}', headers={"content-type": ctype}).status_code == 200


def test_every_documented_error_status_has_the_shape(client: Any) -> None:
    seen = {
        400: client.post("/recommend", content=b"{", headers=JSON),
        404: client.get("/recommend", params={"user": "nobody"}),
        405: client.patch("/model"),
        413: client.post("/recommend", content=json.dumps({"items": list(range(3000))}).encode(), headers=JSON),
        415: client.post("/recommend", content=b"items=1"),
        422: client.get("/recommend", params={"user": "1", "k": "0"}),
    }
    for status, r in seen.items():
        error_of(r, status)
    # and the OpenAPI document says so: each operation's error answers are ErrorBody
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/recommend"]["post"]["responses"]
    assert {"400", "404", "413", "415", "422", "503"} <= set(post)
    assert post["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's own 422 shape is not used
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "detail"}


def test_unexpected_errors_are_500_in_the_shape(knn_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an exception outside the model's answer (here: while splitting the id list) is still {error, detail}
    from fastapi.testclient import TestClient

    from recsys.serving import _app

    def boom(*args: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(_app, "_split", boom)
    with TestClient(create_app(knn_root, poll_interval=0), raise_server_exceptions=False) as c:
        err = error_of(c.get("/recommend", params={"user": "2", "items": "1"}), 500)
    assert err == {"error": "internal_error", "detail": "the model failed to answer (unexpected error); the error is in the server log"}


# -- regressions found by the HTTP fuzzer (benchmarks/fuzz_http.py) ----------------------------------------------


def test_lone_surrogate_echoed_in_an_answer_is_encoded(client: Any) -> None:
    # a user id "\ud800" (legal JSON escape, not encodable as UTF-8) echoed by the popular fallback was a 500
    raw = b'{"users": ["\\ud800", 1], "on_unknown": "popular", "k": 2}'
    r = client.post("/recommend/batch", content=raw, headers=JSON)
    assert r.status_code == 200
    first = r.json()["results"][0]
    assert first["user"] == "\ud800" and first["fallback"] == "popular" and len(first["items"]) == 2
    err = error_of(client.post("/recommend", content=b'{"items": ["\\ud800"]}', headers=JSON), 404)
    assert "\\ud800" in err["detail"]


def test_batch_skip_results_carry_the_model_version(client: Any) -> None:
    # the documented Recommendations schema requires model_version; skipped users' entries lacked it
    r = client.post("/recommend/batch", json={"users": ["nobody", 1], "on_unknown": "skip", "k": 2})
    assert r.status_code == 200
    assert [x["model_version"] for x in r.json()["results"]] == ["v1", "v1"]
    assert r.json()["results"][0]["items"] == []


# -- HEAD wherever GET --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/health", "/ready", "/model", "/recommend?user=3&k=4", "/recommend?user=nobody", "/similar?item=2", "/similar?item=2&k=0", "/openapi.json", "/nowhere"],
)
def test_head_is_get_without_the_body(client: Any, url: str) -> None:
    get, head = client.get(url), client.head(url)
    assert head.status_code == get.status_code and head.content == b""
    drop = {"date"}
    assert {k: v for k, v in head.headers.items() if k not in drop} == {k: v for k, v in get.headers.items() if k not in drop}
    assert int(head.headers["content-length"]) == len(get.content) > 0


def test_head_on_a_post_only_route_is_405(client: Any) -> None:
    r = client.head("/recommend/batch")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.content == b""


# -- GET /model: the last reload error is cleared once the served version is good again ---------------------------


def _break_copy(root: Path, name: str) -> None:
    broken = root / "versions" / name
    shutil.copytree(root / "versions" / "good", broken)
    f = sorted((broken / "arrays").glob("*.npy"))[-1]
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))


def test_reload_error_is_cleared_after_a_good_reload(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    data = tiny_interactions()
    publish(Popular().fit(data), tmp_path, version="good")
    app = create_app(tmp_path, poll_interval=0)
    store = app.state.store
    with TestClient(app) as c:

        def last_error() -> Any:
            return c.get("/model").json()["last_reload_error"]

        _break_copy(tmp_path, "broken")
        activate(tmp_path, "broken")
        assert store.check() is False and last_error()["version"] == "broken"
        # rollback to the served version: nothing is wrong any more
        activate(tmp_path, "good")
        assert store.check() is False and last_error() is None
        # broken again, then a new good version: reloaded, and the error is gone
        activate(tmp_path, "broken")
        store.check()
        assert last_error()["version"] == "broken"
        publish(ItemKNN(k=5).fit(data), tmp_path, version="next")
        assert store.check() is True and last_error() is None and c.get("/model").json()["version"] == "next"
        # the link disappears (reported once), then comes back to the served version: cleared
        (tmp_path / "current").rename(tmp_path / "moved")
        store.check()
        assert "current" in last_error()["error"] or "neither" in last_error()["error"]
        (tmp_path / "moved").rename(tmp_path / "current")
        assert store.check() is False and last_error() is None
