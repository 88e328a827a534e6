"""Serving recommendations over HTTP, with hot reload of new model versions in every worker.

Start a service (``recsys serve --model ROOT`` calls the same function)::

    from recsys.serving import publish, run
    publish(model, "models/")           # models/versions/<utc time>/, models/current -> it
    run("models/", port=8000, workers=2)

Endpoints: ``GET /recommend?user=..&k=..&exclude_seen=..&items=..&exclude_items=..``,
``POST /recommend`` (an item history, for users unseen at training),
``POST /recommend/batch``, ``GET /similar?item=..&k=..``, ``GET /health``,
``GET /ready``, ``GET /model`` and the OpenAPI docs at ``/docs``; the explorer
page at ``/explore`` and its endpoints (see :mod:`recsys.serving._explorer`;
:func:`keep_explorer_data` stores titles and history times with a model).

**Model root layout and hot reload.** The service points at a model root::

    ROOT/current -> versions/<version>      (relative symlink, swapped atomically)
    ROOT/versions/<version>/                (artifacts written by recsys.persistence)

:func:`publish` adds a version and swaps ``current`` only after the new
artifact loads; :func:`activate` points ``current`` at an existing version
(rollback). Each uvicorn worker polls ``current`` (``poll_interval`` seconds,
default 1; ``kill -USR1 <worker pid>`` checks at once), loads and verifies a
new version (memory-mapped, every SHA-256 checked, one warm-up query per
endpoint) while the old one keeps answering, then swaps one reference:
requests in flight finish on the model they started with. A version that
fails is rejected and logged, ``GET /model`` reports it under
``last_reload_error``, and the old model keeps serving. A plain artifact
directory can be served as well; it reloads when ``model.save`` replaces it.

fastapi and uvicorn are the ``serve`` extra (``pip install recsys[serve]``):
they are imported only when an app is built or a server started.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys._utils.params import check_int
from recsys.errors import ParameterError
from recsys.serving._catalog import keep_explorer_data
from recsys.serving._config import ENV_CONFIG, ServeConfig
from recsys.serving._ids import IdParser
from recsys.serving._layout import CURRENT, VERSIONS, activate, current_version, publish, resolve_artifact
from recsys.serving._store import LoadedModel, ModelStore, ReloadFailure, load_version

if TYPE_CHECKING:
    from fastapi import FastAPI

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _require_serve() -> None:
    missing = []
    for name in ("fastapi", "uvicorn"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ModuleNotFoundError(
            f"recsys.serving needs {' and '.join(missing)}, which are not installed: "
            "pip install 'recsys[serve]'",
            name=missing[0],
        )


def create_app(model: str | os.PathLike[str] | ModelStore, **options: Any) -> FastAPI:
    """A FastAPI app serving ``model`` (see :func:`recsys.serving._app.create_app`); needs ``recsys[serve]``."""
    _require_serve()
    from recsys.serving._app import create_app as _create_app

    return _create_app(model, **options)


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up plus the ``recsys.serving`` logger (reloads, rejected versions)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["recsys.serving"] = {"handlers": ["default"], "level": level.upper() if level != "trace" else "DEBUG", "propagate": False}
    return config


@contextlib.contextmanager
def _nodelay_listeners() -> Iterator[None]:
    """Listening sockets bound by uvicorn's supervisor get TCP_NODELAY (inherited by accepted ones on Linux).

    With ``workers > 1`` uvicorn binds the socket itself with ``proto=0``; accepted sockets
    inherit it and asyncio then skips TCP_NODELAY, so the response body waits for the
    client's delayed ACK: ~44 ms per keep-alive request instead of ~1 ms (uvicorn #3149).
    """
    from uvicorn.config import Config

    original = Config.bind_socket

    def bind_socket(self: Config) -> socket.socket:
        sock = original(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    Config.bind_socket = bind_socket  # type: ignore[method-assign]
    try:
        yield
    finally:
        Config.bind_socket = original  # type: ignore[method-assign]


def run(
    model: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    **options: Any,
) -> None:
    """Serve ``model`` over HTTP with uvicorn until interrupted (what ``recsys serve`` runs).

    Parameters
    ----------
    model : path
        A model root (``current`` link to ``versions/<version>``, see
        :func:`publish`) or one artifact directory.
    host : str, default "127.0.0.1"
        Interface to bind; ``"0.0.0.0"`` exposes the service on every interface.
    port : int, default 8000
        0 picks a free port (printed in the log).
    workers : int, default 1
        uvicorn worker processes; each loads the model (memory-mapped, so the
        pages are shared) and watches the model root on its own.
    **options
        :class:`ServeConfig` options: ``poll_interval`` (1.0 s), ``on_unknown``
        ("error"; "popular" answers unknown users with popular items),
        ``max_k`` (1000), ``max_history`` (1000), ``max_batch`` (1000),
        ``max_batch_entries`` (users x k, 100000),
        ``max_ids`` (10000), ``max_body_bytes`` (1 MiB), ``threads`` (1 BLAS /
        OpenMP thread per worker), ``log_level`` ("info"), ``access_log``
        (False), ``timeout_keep_alive`` (5 s).

    Raises
    ------
    ModuleNotFoundError
        fastapi or uvicorn is missing (``pip install recsys[serve]``); ``name`` is the first missing one.
    ArtifactError
        The model cannot be found, loaded or verified (checked before any
        worker starts).
    ParameterError
        An option is unknown or out of range.
    """
    _require_serve()
    import uvicorn

    if not isinstance(host, str) or not host:
        raise ParameterError(f"The 'host' parameter of recsys.serving.run must be a non-empty str. Got {host!r} instead.")
    check_int("recsys.serving.run", "port", port, low=0, high=65535)
    check_int("recsys.serving.run", "workers", workers, low=1)
    cfg = ServeConfig.from_options(model, **options)
    # Fail here, once, with the artifact's own error, rather than in every worker at start-up.
    load_version(resolve_artifact(cfg.model))
    os.environ[ENV_CONFIG] = cfg.to_json()
    if cfg.threads is not None:
        for var in _THREAD_VARS:  # read by worker processes when they load BLAS / OpenMP
            os.environ.setdefault(var, str(cfg.threads))
    with _nodelay_listeners():
        uvicorn.run(
            "recsys.serving._app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=cfg.log_level,
            log_config=_log_config(cfg.log_level),
            access_log=cfg.access_log,
            timeout_keep_alive=cfg.timeout_keep_alive,
            lifespan="on",
        )


__all__ = [
    "CURRENT",
    "ENV_CONFIG",
    "VERSIONS",
    "IdParser",
    "LoadedModel",
    "ModelStore",
    "ReloadFailure",
    "ServeConfig",
    "activate",
    "create_app",
    "current_version",
    "keep_explorer_data",
    "load_version",
    "publish",
    "resolve_artifact",
    "run",
]



def __getattr__(name: str) -> Any:
    from recsys.serving._store import _renamed

    return _renamed(name, __name__, stacklevel=3)
