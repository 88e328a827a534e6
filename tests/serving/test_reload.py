"""Hot reload on real servers: every worker switches, no request fails during the swap, a broken
version is rejected while the old model serves, and requests in flight finish on their model."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsys import load_model
from recsys.models import EASE, ItemKNN, Popular
from recsys.serving import activate, publish
from recsys.testing import tiny_interactions
from tests.serving import conftest as cf
from tests.serving.conftest import BlockingPopular, ProcessServer, ThreadServer, httpx


class Traffic:
    """Client threads sending requests (keep-alive connections) until stopped; every answer recorded."""

    def __init__(self, url: str, n_clients: int = 3) -> None:
        self.url = url
        self.stop = threading.Event()
        self.records: list[list[tuple[int, str | None, dict[str, Any] | None]]] = [[] for _ in range(n_clients)]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n_clients)]

    def _run(self, i: int) -> None:
        rng = np.random.default_rng(i)
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self.stop.is_set():
                try:
                    if rng.random() < 0.8:
                        r = c.get("/recommend", params={"user": str(int(rng.integers(0, 20))), "k": 5})
                    else:
                        r = c.post("/recommend", json={"items": [int(x) for x in rng.integers(0, 30, 3)], "k": 5})
                    self.records[i].append((r.status_code, r.headers.get("x-model-version"), r.json()))
                except httpx.HTTPError as e:  # a refused or dropped connection is a lost request
                    self.records[i].append((-1, None, {"error": repr(e)}))

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    @property
    def all(self) -> list[tuple[int, str | None, dict[str, Any] | None]]:
        return [r for rec in self.records for r in rec]


def worker_states(url: str, tries: int = 40) -> dict[int, dict[str, Any]]:
    """GET /model on fresh connections (spread over the workers): pid -> metadata."""
    out: dict[int, dict[str, Any]] = {}
    for _ in range(tries):
        meta = httpx.get(url + "/model", timeout=10, headers={"connection": "close"}).json()
        out[meta["worker_pid"]] = meta
    return out


def wait_all_workers(url: str, workers: int, check: Any, timeout: float = 30) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    seen: dict[int, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        seen.update(worker_states(url, tries=10))
        if len(seen) >= workers and all(check(m) for m in seen.values()):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"workers did not all reach the expected state: { {p: (m['version'], m['last_reload_error']) for p, m in seen.items()} }")


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    data = tiny_interactions()
    return {"knn": ItemKNN(k=10).fit(data), "ease": EASE(reg=10.0).fit(data), "pop": Popular().fit(data)}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Any]) -> Iterator[tuple[ProcessServer, Path]]:
    root = tmp_path_factory.mktemp("reload") / "models"
    publish(models["knn"], root, version="v1")
    with ProcessServer(root, workers=2, poll_interval=0.1) as srv:
        yield srv, root


def test_reload_under_traffic_reaches_every_worker(two_workers: tuple[ProcessServer, Path], models: dict[str, Any]) -> None:
    srv, root = two_workers
    before = wait_all_workers(srv.url, 2, lambda m: m["version"] == "v1")
    with Traffic(srv.url) as traffic:
        time.sleep(0.5)
        publish(models["ease"], root, version="v2")
        after = wait_all_workers(srv.url, 2, lambda m: m["version"] == "v2" and m["class"] == "EASE")
        time.sleep(0.3)
    assert set(after) == set(before)  # the same worker processes reloaded: none restarted
    records = traffic.all
    assert len(records) > 50
    assert [r for r in records if r[0] != 200] == []  # no request lost or failed across the swap
    assert {v for _, v, _ in records} == {"v1", "v2"}
    for rec in traffic.records:  # one keep-alive connection = one worker: never back to v1
        versions = [v for _, v, _ in rec]
        assert versions == sorted(versions)
    # answers carry their version and come from that version's model
    for _status, version, body in records[::7]:
        assert body is not None and body["model_version"] == version
        if body["user"] is not None:
            want = (models["knn"] if version == "v1" else models["ease"]).recommend_one(body["user"], k=5)
            assert [x["item"] for x in body["items"]] == want[0].tolist()


def test_broken_version_is_rejected_while_the_old_serves(two_workers: tuple[ProcessServer, Path], models: dict[str, Any]) -> None:
    srv, root = two_workers
    publish(models["pop"], root, version="good")
    wait_all_workers(srv.url, 2, lambda m: m["version"] == "good")
    broken = root / "versions" / "broken"
    shutil.copytree(root / "versions" / "good", broken)
    f = sorted((broken / "arrays").glob("*.npy"))[-1]
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))
    with Traffic(srv.url) as traffic:
        activate(root, "broken")  # bypasses publish's own check: the workers must refuse it
        states = wait_all_workers(
            srv.url, 2, lambda m: m["last_reload_error"] is not None and m["last_reload_error"]["version"] == "broken"
        )
        time.sleep(0.3)
    for meta in states.values():
        assert meta["version"] == "good" and "SHA-256" in meta["last_reload_error"]["error"]
    assert traffic.all and all(s == 200 and v == "good" for s, v, _ in traffic.all)
    publish(models["knn"], root, version="fixed")
    wait_all_workers(srv.url, 2, lambda m: m["version"] == "fixed" and m["last_reload_error"] is None)


def test_requests_in_flight_finish_on_their_model(tmp_path: Path, models: dict[str, Any]) -> None:
    cf.BLOCK.clear()
    cf.ENTERED.clear()
    publish(BlockingPopular().fit(tiny_interactions()), tmp_path, version="old")
    old_model = load_model(tmp_path / "current")
    with ThreadServer(tmp_path, poll_interval=0.05) as srv:
        result: dict[str, Any] = {}

        def slow_request() -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                result["r"] = c.get("/recommend", params={"user": "0", "k": 5})

        cf.ARMED.set()
        t = threading.Thread(target=slow_request)
        t.start()
        try:
            assert cf.ENTERED.wait(10)  # the request is inside the old model's scoring
            publish(models["ease"], tmp_path, version="new")
            deadline = time.monotonic() + 10
            while srv.store.current.version != "new" and time.monotonic() < deadline:
                time.sleep(0.02)
            assert srv.store.current.version == "new"  # swapped while the request is still running
        finally:
            cf.BLOCK.set()
            t.join(10)
            cf.ARMED.clear()
        r = result["r"]
        assert r.status_code == 200 and r.headers["x-model-version"] == "old"
        want = old_model.recommend_one(0, k=5)
        assert [x["item"] for x in r.json()["items"]] == want[0].tolist()
        with httpx.Client(base_url=srv.url) as c:
            r2 = c.get("/recommend", params={"user": "0", "k": 5})
        assert r2.headers["x-model-version"] == "new"
        assert [x["item"] for x in r2.json()["items"]] == models["ease"].recommend_one(0, k=5)[0].tolist()


def test_reload_signal_without_polling(tmp_path: Path, models: dict[str, Any]) -> None:
    # the app's own start-up, in the main thread as in a uvicorn worker: SIGUSR1 makes the watcher check now
    import asyncio

    from recsys.serving import create_app

    publish(models["pop"], tmp_path / "m", version="a")
    app = create_app(tmp_path / "m", poll_interval=0)
    store = app.state.store

    async def scenario() -> list[str]:
        seen = []
        async with app.router.lifespan_context(app):
            seen.append(store.current.version)
            publish(models["knn"], tmp_path / "m", version="b")
            await asyncio.sleep(0.3)
            seen.append(store.current.version)  # no polling: still the old one
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(200):
                await asyncio.sleep(0.02)
                if store.current.version == "b":
                    break
            seen.append(store.current.version)
        return seen

    previous = signal.getsignal(signal.SIGUSR1)
    assert asyncio.run(scenario()) == ["a", "a", "b"]
    assert signal.getsignal(signal.SIGUSR1) == previous  # the handler is removed at shut-down
