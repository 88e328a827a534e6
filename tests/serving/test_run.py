"""recsys.serving.run: checks before any worker starts, options reach uvicorn, and a clear error without the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import recsys.serving as serving
from recsys.errors import ArtifactError, ParameterError
from recsys.models import Popular
from recsys.serving import ENV_CONFIG, ServeConfig, publish
from recsys.testing import tiny_interactions
from tests.serving.conftest import REPO


@pytest.fixture
def root(tmp_path: Path) -> Path:
    publish(Popular().fit(tiny_interactions()), tmp_path / "models", version="v1")
    return tmp_path / "models"


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.setattr(serving.os, "environ", {k: v for k, v in serving.os.environ.items() if k != ENV_CONFIG})
    return calls


def test_run_passes_options_to_uvicorn_and_workers(root: Path, uvicorn_calls: list[dict[str, Any]]) -> None:
    serving.run(root, host="127.0.0.1", port=8123, workers=3, max_k=40, on_unknown="popular", poll_interval=0.5)
    (call,) = uvicorn_calls
    assert call["app"] == "recsys.serving._app:app_from_env" and call["factory"] is True
    assert (call["host"], call["port"], call["workers"]) == ("127.0.0.1", 8123, 3)
    cfg = ServeConfig.from_json(serving.os.environ[ENV_CONFIG])  # what every worker reads
    assert cfg.model == str(root.absolute()) and cfg.max_k == 40 and cfg.on_unknown == "popular"
    assert cfg.poll_interval == 0.5


# A worker as uvicorn spawns it: a fresh interpreter that inherits run()'s environment and builds the app
# with app_from_env; after start-up it reports the thread counts its libraries actually use, read from a
# new thread as requests are served (OpenMP's limit is per thread: a new thread starts from the
# environment's OMP_NUM_THREADS; BLAS limits and torch's intra-op pool are process-wide).
_WORKER = """
import json, os, threading
import torch, threadpoolctl
from fastapi.testclient import TestClient
from recsys.serving._app import app_from_env
seen = {}
def look():
    seen["pools"] = [(i["internal_api"], os.path.basename(i["filepath"]), i["num_threads"]) for i in threadpoolctl.threadpool_info()]
    seen["torch"] = torch.get_num_threads()
with TestClient(app_from_env()) as client:
    assert client.get("/health").status_code == 200
    t = threading.Thread(target=look)
    t.start()
    t.join()
print(json.dumps(seen))
"""


@pytest.mark.parametrize("threads", [1, 3])
def test_run_limits_every_workers_threads(root: Path, monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    # Checked in the worker, not in run()'s environment: torch's intra-op pool and every BLAS / OpenMP
    # pool threadpoolctl sees must hold `threads` (1 and 3: at least one differs from any default here).
    import uvicorn

    env = {k: v for k, v in serving.os.environ.items() if k not in (ENV_CONFIG, "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(REPO)
    monkeypatch.setattr(serving.os, "environ", env)
    reports: list[dict[str, Any]] = []

    def spawn_worker(app: str, **kw: Any) -> None:
        out = subprocess.run([sys.executable, "-c", _WORKER], env=dict(env), capture_output=True, text=True, cwd=REPO, timeout=300)
        assert out.returncode == 0, out.stderr
        reports.append(json.loads(out.stdout.strip().splitlines()[-1]))

    monkeypatch.setattr(uvicorn, "run", spawn_worker)
    serving.run(root, threads=threads, poll_interval=0)
    (report,) = reports
    assert report["torch"] == threads
    assert report["pools"], "threadpoolctl found no BLAS/OpenMP library in the worker"
    assert {n for _, _, n in report["pools"]} == {threads}, report["pools"]


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"max_kk": 5}, ParameterError, "no option 'max_kk'; valid options: poll_interval"),
        ({"max_k": 0}, ParameterError, "'max_k' parameter of recsys.serving must be an int >= 1"),
        ({"on_unknown": "guess"}, ParameterError, "'on_unknown'"),
        ({"workers": 0}, ParameterError, "'workers'"),
        ({"port": 70000}, ParameterError, "'port'"),
        ({"threads": 0}, ParameterError, "'threads'"),
    ],
)
def test_run_rejects_bad_options(root: Path, uvicorn_calls: list[dict[str, Any]], kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        serving.run(root, **kwargs)
    assert uvicorn_calls == []


def test_run_refuses_a_broken_model_before_starting(root: Path, tmp_path: Path, uvicorn_calls: list[dict[str, Any]]) -> None:
    with pytest.raises(ArtifactError, match="neither a model artifact"):
        serving.run(tmp_path)
    f = sorted((root / "versions" / "v1" / "arrays").glob("*.npy"))[0]
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(ArtifactError, match="truncated"):
        serving.run(root)
    assert uvicorn_calls == []


def test_without_the_serve_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None\n"
        "import recsys, recsys.serving\n"  # importing works without the extra
        "try:\n"
        f"    recsys.serving.run({str(tmp_path)!r})\n"
        "except ImportError as e:\n"
        "    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "ERR recsys.serving needs fastapi and uvicorn" in out.stdout, out.stderr
    assert "pip install 'recsys[serve]'" in out.stdout


def test_multi_worker_listener_gets_tcp_nodelay(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn's supervisor binds with proto=0, so asyncio skips TCP_NODELAY on accepted sockets and every
    # keep-alive answer waited ~40 ms for a delayed ACK; run() sets it on the listener, which Linux copies
    import socket

    import uvicorn

    seen: dict[str, int] = {}

    def fake_run(app: str, **kw: Any) -> None:
        sock = uvicorn.Config(app, host="127.0.0.1", port=0).bind_socket()
        sock.listen()
        with sock, socket.create_connection(sock.getsockname()):
            accepted, _ = sock.accept()
            with accepted:
                seen["nodelay"] = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(serving.os, "environ", dict(serving.os.environ))
    serving.run(root, workers=2)
    assert seen["nodelay"] == 1
    sock = uvicorn.Config("a:b", host="127.0.0.1", port=0).bind_socket()  # restored afterwards
    sock.listen()
    with sock, socket.create_connection(sock.getsockname()):
        accepted, _ = sock.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
