"""The schema-driven HTTP fuzzer (benchmarks/fuzz_http.py) on a short budget: no 5xx, every error
``{error, detail}``, the service alive after; and the fuzzer does catch planted faults.
``python -m benchmarks.fuzz_http --requests 5000`` runs the full count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.serving.conftest import ThreadServer

require("fastapi")
import schemathesis  # noqa: E402,F401  (the test extra: imported, never skipped)

from benchmarks.fuzz_http import LIMITS, HttpFuzzer, check_error_shape  # noqa: E402
from recsys.models import ItemKNN  # noqa: E402
from recsys.serving import publish  # noqa: E402
from recsys.testing import tiny_interactions  # noqa: E402

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ItemKNN]:
    root = tmp_path_factory.mktemp("fuzz")
    model = ItemKNN(k=10).fit(tiny_interactions())
    publish(model, root, version="v1")
    return root, model


def _fuzz(srv: ThreadServer, model: ItemKNN, n: int, seed: int = 0) -> Any:
    return HttpFuzzer(srv.url, model.users_.ids.tolist(), model.items_.ids.tolist(), seed=seed).run(n)


def test_short_fuzz_finds_nothing(fitted: tuple[Path, ItemKNN]) -> None:
    root, model = fitted
    with ThreadServer(root, **LIMITS) as srv:
        report = _fuzz(srv, model, 300)
        assert srv.thread.is_alive()
    assert report.failures == [], report.render()
    assert report.requests == 300 and report.health_after == 200
    assert not [s for s in report.statuses if s >= 500]
    # every operation of the OpenAPI document was exercised, valid requests reached the model
    operations = {s.rsplit(" ", 1)[0] for s in report.per_stream if not s.startswith(("protocol", "HEAD"))}
    explorer = {"GET /explain", "POST /explain", "GET /users/random", "GET /users/search", "GET /users/{user}/history", "GET /users/{user}/overview", "GET /items",
                "GET /items/search", "GET /model/summary", "GET /versions", "GET /compare"}
    assert operations == {"GET /recommend", "POST /recommend", "POST /recommend/batch", "GET /similar", "GET /health", "GET /ready", "GET /model"} | explorer
    assert report.statuses[200] > 50 and report.statuses[422] > 50 and report.statuses[404] > 0
    assert any(s.startswith("protocol") for s in report.per_stream)


@pytest.fixture
def planted(fitted: tuple[Path, ItemKNN], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ThreadServer, ItemKNN]]:
    """A server with two faults: similar_items raises (a 500), and the framework's own 404/405/400 answers are back."""
    from starlette.exceptions import HTTPException

    root, model = fitted

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("planted")

    srv = ThreadServer(root, **LIMITS)
    del srv.app.exception_handlers[HTTPException]  # before the first request builds the middleware stack
    with srv:
        monkeypatch.setattr(ItemKNN, "similar_items", broken)  # after the load's warm-up query
        yield srv, model


def test_the_fuzzer_catches_planted_faults(planted: tuple[ThreadServer, ItemKNN]) -> None:
    srv, model = planted
    report = _fuzz(srv, model, 250)
    assert report.statuses[500] > 0
    assert any(f.stream.startswith("GET /similar") and f.status == 500 for f in report.failures), report.render()
    # the framework's own 404 / 405 (plain text without the app's handler) are caught as shape failures
    shape = {f.stream for f in report.failures if f.status in (404, 405) and "not JSON" in f.reason}
    assert shape >= {"protocol: unknown path", "protocol: wrong method"}, report.render()
    assert report.health_after == 200  # a 500 is an answer: the service itself stays up


def test_error_shape_check() -> None:
    ok = b'{"error": "unknown_id", "detail": "user 5 is not in the training data"}'
    assert check_error_shape(404, JSON, ok) is None
    assert check_error_shape(200, {}, b"anything") is None
    assert check_error_shape(422, JSON, b'{"error": "x", "detail": "y", "errors": [{"field": "k", "message": "m", "type": "t"}]}') is None
    assert check_error_shape(404, JSON, b'{"detail": "Not Found"}') == "404 without string 'error' and 'detail'"
    assert check_error_shape(500, {"content-type": "text/plain"}, b"Internal Server Error") == "500 with Content-Type 'text/plain', not JSON"
    assert check_error_shape(400, JSON, b"{") == "400 with a body that is not JSON"
    assert check_error_shape(400, JSON, b'{"error": "", "detail": "d"}') == "400 with an empty 'error' or 'detail'"
    assert check_error_shape(400, JSON, b'{"error": "e", "detail": "d", "trace": 1}') == "400 with unexpected keys ['trace']"
    assert check_error_shape(422, JSON, b'{"error": "e", "detail": "d", "errors": [1]}') == "422 with a malformed 'errors' list"
    assert check_error_shape(404, {"Content-Type": ["application/json"]}, ok) is None  # schemathesis' header lists
