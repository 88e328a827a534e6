"""Real servers for the serving tests: uvicorn in a thread (in-process) or ``recsys.serving.run`` in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.conftest import require

require("fastapi")
require("uvicorn")
httpx = require("httpx")

from recsys import Interactions  # noqa: E402
from recsys.models import ItemKNN  # noqa: E402
from recsys.models.base import Recommender  # noqa: E402
from recsys.serving import create_app, publish  # noqa: E402
from recsys.testing import tiny_interactions  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# While ARMED, BlockingPopular holds a scoring call for user index 0 until BLOCK is set.
ARMED = threading.Event()
BLOCK = threading.Event()
ENTERED = threading.Event()


class NoExtras(Recommender):
    """Scores by popularity; no fold-in and no item similarity (for the 400 answers)."""

    def _fit(self, data: Interactions) -> None:
        self.counts_ = data.item_counts.astype(np.float32)

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        s = self.counts_ if item_idx is None else self.counts_[item_idx]
        return np.broadcast_to(s, (len(user_idx), len(s)))


class BlockingPopular(NoExtras):
    """Like NoExtras, but while ARMED scoring user index 0 waits for BLOCK (requests in flight across a reload)."""

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        if ARMED.is_set() and len(user_idx) == 1 and user_idx[0] == 0 and not BLOCK.is_set():
            ENTERED.set()
            BLOCK.wait(30)
        return super()._score(user_idx, item_idx)


@pytest.fixture(scope="module")
def knn_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model root with one version, "v1": ItemKNN(k=10) on the tiny interactions (one per test module)."""
    root = tmp_path_factory.mktemp("knn")
    publish(ItemKNN(k=10).fit(tiny_interactions()), root, version="v1")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def str_id_interactions() -> Interactions:
    """tiny_interactions with text ids ('u3', 'i7')."""
    df = tiny_interactions().to_frame()
    df["user"] = "u" + df["user"].astype(str)
    df["item"] = "i" + df["item"].astype(str)
    return Interactions.from_frame(df[["user", "item"]])


class ThreadServer:
    """uvicorn serving ``create_app(root, **options)`` in a thread of this process."""

    def __init__(self, root: Path, **options: Any) -> None:
        import uvicorn

        options.setdefault("poll_interval", 0.1)
        self.app = create_app(root, **options)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def store(self) -> Any:
        return self.app.state.store

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class ProcessServer:
    """``recsys.serving.run(root, port=..., workers=...)`` in a subprocess (what ``recsys serve`` runs)."""

    def __init__(self, root: Path, workers: int = 1, **options: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        opts = ", ".join(f"{k}={v!r}" for k, v in {"log_level": "warning", **options}.items())
        code = f"from recsys.serving import run; run({str(root)!r}, port={self.port}, workers={workers}, {opts})"
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.log = open(Path(root).parent / f"server-{self.port}.log", "w+")
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> ProcessServer:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"the server did not become ready:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the supervisor stops its own workers
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
