"""The FastAPI application: recommendation endpoints over the model a :class:`ModelStore` holds.

Needs the ``serve`` extra (fastapi, uvicorn); :mod:`recsys.serving` imports this module lazily.
No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run
time, and they name objects local to :func:`create_app` (the request models with this service's limits).
"""

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, Self, Union

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys._version import __version__
from recsys.errors import (
    ArtifactError,
    DataError,
    NotFittedError,
    NotSupportedError,
    ParameterError,
    RecsysError,
    UnknownIdError,
)
from recsys.serving._config import ServeConfig
from recsys.serving._ids import to_json_ids
from recsys.serving._store import LoadedModel, ModelStore

logger = logging.getLogger("recsys.serving")

Id = Union[StrictInt, StrictStr]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
OnUnknownUser = Literal["error", "skip", "popular"]


# -- errors: every failure becomes one JSON shape, mapped in one place ---------------------------


class ApiError(Exception):
    """An error answered as ``{"error": code, "detail": message}`` with an HTTP status."""

    def __init__(self, status: int, code: str, detail: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra or {}


def error_for(exc: BaseException) -> ApiError:
    """The HTTP answer to an exception raised while serving a request (the one mapping).

    =======================================  ======  ===================
    exception                                status  error
    =======================================  ======  ===================
    UnknownIdError (user or item)            404     unknown_id
    ParameterError, DataError (bad values)   422     invalid_value
    NotSupportedError (model cannot)         400     not_supported
    NotFittedError, ArtifactError            503     model_unavailable
    any other RecsysError / exception        500     internal_error
    =======================================  ======  ===================
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnknownIdError):
        return ApiError(404, "unknown_id", str(exc))
    if isinstance(exc, (ParameterError, DataError)):
        return ApiError(422, "invalid_value", str(exc))
    if isinstance(exc, NotSupportedError):
        return ApiError(400, "not_supported", str(exc))
    if isinstance(exc, (NotFittedError, ArtifactError)):
        return ApiError(503, "model_unavailable", str(exc))
    logger.error("internal error while serving a request", exc_info=exc)
    name = type(exc).__name__ if isinstance(exc, RecsysError) else "unexpected error"
    return ApiError(500, "internal_error", f"the model failed to answer ({name}); the error is in the server log")


def _error_response(err: ApiError, version: str | None = None) -> JSONResponse:
    headers = {"X-Model-Version": version} if version else None
    return JSONResponse({"error": err.code, "detail": err.detail, **err.extra}, status_code=err.status, headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query")]
    return ".".join(parts) or "body"


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        msg = e.get("ctx", {}).get("error", e.get("msg", ""))
        return _error_response(ApiError(400, "malformed_json", f"the request body is not valid JSON: {msg}"))
    simple = [{"field": _loc(tuple(e.get("loc", ()))), "message": e.get("msg", ""), "type": e.get("type", "")} for e in errors]
    detail = "; ".join(f"{s['field']}: {s['message']}" for s in simple[:5])
    if len(simple) > 5:
        detail += f"; and {len(simple) - 5} more"
    return _error_response(ApiError(422, "invalid_request", detail, {"errors": simple[:50]}))


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _error_response(exc)


# -- request body size limit (pure ASGI: a large body is refused before it is parsed) -------------


class BodyLimit:
    """Answer 413 to request bodies above ``max_bytes``; smaller bodies are buffered and replayed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send, declared)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, size)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        err = ApiError(
            413,
            "body_too_large",
            f"the request body has {'more than ' if size < 0 else ''}{max(size, self.max_bytes)} bytes; "
            f"this service accepts at most {self.max_bytes} (max_body_bytes)",
        )
        await _error_response(err)(scope, receive, send)


# -- request and response models --------------------------------------------------------------------


class ScoredItem(BaseModel):
    item: Id = Field(description="External item id (the model's id type: integer or string).")
    score: float = Field(description="Model score; higher is better. Only the order is meaningful across models.")
    rank: int = Field(description="1 for the best item.")


class Recommendations(BaseModel):
    user: Id | None = Field(None, description="The user asked for (None for a history).")
    items: list[ScoredItem]
    known_user: bool = Field(True, description="False when the user was not in the training data.")
    fallback: str | None = Field(None, description="'popular' or 'skip' when the unknown-user fallback answered.")
    model_version: str


class BatchResponse(BaseModel):
    results: list[Recommendations]
    model_version: str


class SimilarItems(BaseModel):
    item: Id
    items: list[ScoredItem]
    model_version: str


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    version: str | None = None
    detail: str | None = None


def _request_models(cfg: ServeConfig) -> tuple[type[BaseModel], type[BaseModel]]:
    """Request bodies with this service's limits (shown in the OpenAPI schema)."""
    k_field = Field(10, ge=1, le=cfg.max_k, description=f"Length of the list, 1..{cfg.max_k}.")

    class HistoryRequest(BaseModel):
        """Recommendations for a user absent from the training data, from their item history (fold-in)."""

        model_config = ConfigDict(extra="forbid")
        items: list[Id] = Field(
            min_length=1, description=f"The user's item history (at most {cfg.max_history} ids; more: 413)."
        )
        ratings: list[FiniteFloat] | None = Field(None, description="Aligned with items, for models that use ratings.")
        timestamps: list[FiniteFloat] | None = Field(None, description="Aligned with items, for models that use time.")
        k: int = k_field
        exclude_seen: bool = Field(True, description="Never recommend the history's items.")
        candidates: list[Id] | None = Field(None, description="Restrict recommendations to these items.")
        exclude_items: list[Id] | None = Field(None, description="Never recommend these items.")
        on_unknown_items: Literal["error", "skip"] = Field(
            "error", description="History items the model does not know: 404, or ignore them."
        )

        @model_validator(mode="after")
        def _aligned(self) -> Self:
            for name in ("ratings", "timestamps"):
                values = getattr(self, name)
                if values is not None and len(values) != len(self.items):
                    raise ValueError(f"{name} must align with items: {len(values)} values for {len(self.items)} items")
            return self

    class BatchRequest(BaseModel):
        """Recommendations for many users known at training time."""

        model_config = ConfigDict(extra="forbid")
        users: list[Id] = Field(min_length=1, description=f"Distinct user ids (at most {cfg.max_batch}; more: 413).")
        k: int = k_field
        exclude_seen: bool = True
        items: list[Id] | None = Field(None, description="Restrict recommendations to these items.")
        exclude_items: list[Id] | None = Field(None, description="Never recommend these items.")
        on_unknown: OnUnknownUser | None = Field(None, description=f"Unknown users; default {cfg.on_unknown!r}.")

    return HistoryRequest, BatchRequest


# -- helpers -----------------------------------------------------------------------------------


def _scored(ids: Any, scores: Any) -> list[dict[str, Any]]:
    return [
        {"item": i, "score": s, "rank": r}
        for r, (i, s) in enumerate(zip(to_json_ids(ids), np.asarray(scores, dtype=np.float64).tolist()), 1)
    ]


def _split(values: list[str] | None, name: str, limit: int) -> list[str] | None:
    """Query-string id lists: repeated parameters, each possibly comma-separated."""
    if values is None:
        return None
    out = [v for value in values for v in value.split(",") if v != ""]
    _check_len(out, name, limit, "max_ids")
    return out


def _check_len(values: list[Any] | None, name: str, limit: int, option: str) -> None:
    if values is not None and len(values) > limit:
        raise ApiError(413, "too_many_ids", f"{name} has {len(values)} ids; this service accepts at most {limit} ({option})")


def _apply_threads(threads: int | None) -> None:
    """Limit BLAS / OpenMP threads of this worker (process-wide for BLAS, this thread for OpenMP)."""
    if threads is None:
        return
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
    except Exception:  # pragma: no cover - threadpoolctl missing or a library it cannot drive
        logger.warning("could not limit BLAS/OpenMP threads to %s", threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


# -- the application -------------------------------------------------------------------------------


def create_app(model: str | os.PathLike[str] | ModelStore, **options: Any) -> FastAPI:
    """A FastAPI app serving recommendations from a model root, an artifact, or a :class:`ModelStore`.

    Parameters
    ----------
    model : path or ModelStore
        What to serve; a path is watched for new versions (see :mod:`recsys.serving`).
    **options
        :class:`~recsys.serving.ServeConfig` options (``poll_interval``,
        ``on_unknown``, ``max_k``, ``max_history``, ``max_batch``, ``threads``...).

    Returns
    -------
    fastapi.FastAPI
        The model is loaded (and its watcher started) when the app starts up.

    Examples
    --------
    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from recsys.models import Popular
    >>> from recsys.serving import publish
    >>> from recsys.testing import tiny_interactions
    >>> root = tempfile.mkdtemp()
    >>> _ = publish(Popular().fit(tiny_interactions()), root, version="v1")
    >>> with TestClient(create_app(root, poll_interval=0)) as client:
    ...     r = client.get("/recommend", params={"user": "3", "k": 2})
    >>> r.status_code, len(r.json()["items"]), r.headers["x-model-version"]
    (200, 2, 'v1')
    """
    if isinstance(model, ModelStore):
        store = model
        cfg = ServeConfig.from_options(store.source, **{"poll_interval": store.poll_interval, **options})
    else:
        cfg = ServeConfig.from_options(model, **options)
        store = ModelStore(Path(cfg.model), poll_interval=cfg.poll_interval)
    HistoryRequest, BatchRequest = _request_models(cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import recsys.models  # noqa: F401  (load BLAS/OpenMP libraries before limiting them)

        _apply_threads(cfg.threads)
        if store.current is None:
            await run_in_threadpool(store.load_initial)  # a broken artifact here stops the start-up
        if cfg.poll_interval > 0:
            store.start()
        previous = None
        if threading.current_thread() is threading.main_thread():
            # SIGUSR1: check for a new version now (e.g. `kill -USR1 <worker pid>` after publishing)
            previous = signal.signal(signal.SIGUSR1, lambda *_: store.request_check())
            if cfg.poll_interval == 0:
                store.start()  # the watcher then only wakes on the signal
        try:
            yield
        finally:
            store.stop()
            if previous is not None:
                signal.signal(signal.SIGUSR1, previous)

    app = FastAPI(
        title="recsys recommendation service",
        version=__version__,
        description=(
            "Recommendations from a recsys model artifact, hot-reloaded when the model root's `current` "
            "version changes. Ids are the model's external ids: integers or strings (see GET /model). "
            "Errors are JSON `{error, detail}`: 404 unknown user/item, 413 too large, 422 invalid values, "
            "400 malformed JSON or an operation the model does not support."
        ),
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.config = cfg
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)

    def current() -> LoadedModel:
        loaded = store.current
        if loaded is None:
            raise ApiError(503, "model_unavailable", "no model is loaded yet")
        return loaded

    def answer(loaded: LoadedModel, work: Callable[[], dict[str, Any]]) -> JSONResponse:
        """Run ``work`` on one model version; every exception is mapped by :func:`error_for`."""
        try:
            body = work()
            body["model_version"] = loaded.version
            return JSONResponse(body, headers={"X-Model-Version": loaded.version})
        except Exception as exc:
            return _error_response(error_for(exc), loaded.version)

    k_query = Query(ge=1, le=cfg.max_k, description=f"Length of the list, 1..{cfg.max_k}.")
    ids_help = "Item ids, as repeated parameters and/or comma-separated (ids with commas: use the POST endpoints)."

    @app.get("/recommend", response_model=Recommendations, tags=["recommend"], summary="Recommend for a known user")
    async def recommend_user(
        user: Annotated[str, Query(min_length=1, max_length=1024, description="External user id.")],
        k: Annotated[int, k_query] = 10,
        exclude_seen: bool = Query(True, description="Never recommend items the user interacted with in training."),
        items: list[str] | None = Query(None, description="Restrict to these items. " + ids_help),
        exclude_items: list[str] | None = Query(None, description="Never recommend these items. " + ids_help),
        on_unknown: OnUnknownUser | None = Query(None, description=f"Unknown users; default {cfg.on_unknown!r}."),
    ) -> Any:
        loaded = current()
        cand = _split(items, "items", cfg.max_ids)
        excl = _split(exclude_items, "exclude_items", cfg.max_ids)
        mode = on_unknown or cfg.on_unknown

        def work() -> dict[str, Any]:
            m = loaded.model
            uid = loaded.users.one(user)
            known = uid in m.users_
            if not known and mode == "error":
                raise UnknownIdError(loaded.unknown_message("user", user))
            ids, scores = m.recommend_one(
                uid,
                k,
                exclude_seen=exclude_seen,
                items=None if cand is None else loaded.items.many(cand),
                exclude_items=None if excl is None else loaded.items.many(excl),
                on_unknown=mode,  # type: ignore[arg-type]
            )
            return {
                "user": uid if known else user,
                "items": _scored(ids, scores),
                "known_user": known,
                "fallback": None if known else mode,
            }

        return answer(loaded, work)

    @app.post("/recommend", response_model=Recommendations, tags=["recommend"], summary="Recommend from an item history")
    async def recommend_history(body: HistoryRequest) -> Any:  # type: ignore[valid-type]
        loaded = current()
        req: Any = body
        _check_len(req.items, "items", cfg.max_history, "max_history")
        _check_len(req.candidates, "candidates", cfg.max_ids, "max_ids")
        _check_len(req.exclude_items, "exclude_items", cfg.max_ids, "max_ids")

        def work() -> dict[str, Any]:
            m = loaded.model
            ids, scores = m.recommend_history(
                loaded.items.many(req.items),
                req.k,
                ratings=req.ratings,
                timestamps=req.timestamps,
                exclude_seen=req.exclude_seen,
                candidates=None if req.candidates is None else loaded.items.many(req.candidates),
                exclude_items=None if req.exclude_items is None else loaded.items.many(req.exclude_items),
                on_unknown_items=req.on_unknown_items,
            )
            return {"user": None, "items": _scored(ids, scores), "known_user": False, "fallback": None}

        return answer(loaded, work)

    @app.post("/recommend/batch", response_model=BatchResponse, tags=["recommend"], summary="Recommend for many known users")
    async def recommend_batch(body: BatchRequest) -> Any:  # type: ignore[valid-type]
        loaded = current()
        req: Any = body
        _check_len(req.users, "users", cfg.max_batch, "max_batch")
        if len(req.users) * req.k > cfg.max_batch_entries:
            raise ApiError(
                413,
                "batch_too_large",
                f"{len(req.users)} users x k={req.k} asks for {len(req.users) * req.k} recommendations; this service "
                f"answers at most {cfg.max_batch_entries} per batch (max_batch_entries): split the batch or lower k",
            )
        _check_len(req.items, "items", cfg.max_ids, "max_ids")
        _check_len(req.exclude_items, "exclude_items", cfg.max_ids, "max_ids")
        mode = req.on_unknown or cfg.on_unknown

        def work() -> dict[str, Any]:
            m = loaded.model
            users = loaded.users.many(req.users)
            known = [u in m.users_ for u in users]
            if mode == "error" and not all(known):
                missing = [given for given, ok in zip(req.users, known) if not ok]
                raise UnknownIdError(loaded.unknown_message("user", *missing))
            frame = m.recommend(
                users,
                req.k,
                exclude_seen=req.exclude_seen,
                items=None if req.items is None else loaded.items.many(req.items),
                exclude_items=None if req.exclude_items is None else loaded.items.many(req.exclude_items),
                on_unknown=mode,  # type: ignore[arg-type]
            )
            counts = frame.groupby("user", sort=False).size() if len(frame) else None
            item_ids, scores = frame["item"].to_numpy(), frame["score"].to_numpy()
            results, start = [], 0
            for u, given, ok in zip(users, req.users, known):
                if not ok and mode == "skip":
                    results.append({"user": given, "items": [], "known_user": False, "fallback": "skip"})
                    continue
                n = int(counts.get(u, 0)) if counts is not None else 0
                results.append(
                    {
                        "user": u if ok else given,
                        "items": _scored(item_ids[start : start + n], scores[start : start + n]),
                        "known_user": ok,
                        "fallback": None if ok else mode,
                        "model_version": loaded.version,
                    }
                )
                start += n
            return {"results": results}

        return await run_in_threadpool(answer, loaded, work)  # a batch can take a while: off the event loop

    @app.get("/similar", response_model=SimilarItems, tags=["recommend"], summary="Items similar to an item")
    async def similar(
        item: Annotated[str, Query(min_length=1, max_length=1024, description="External item id.")],
        k: Annotated[int, k_query] = 10,
    ) -> Any:
        loaded = current()

        def work() -> dict[str, Any]:
            iid = loaded.items.one(item)
            if iid not in loaded.model.items_:
                raise UnknownIdError(loaded.unknown_message("item", item))
            frame = loaded.model.similar_items([iid], k)
            return {"item": iid, "items": _scored(frame["similar_item"].to_numpy(), frame["score"].to_numpy())}

        return answer(loaded, work)

    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness")
    async def health() -> Any:
        return {"status": "ok"}

    @app.get("/ready", response_model=Ready, tags=["service"], summary="Readiness: a model is loaded",
             responses={503: {"model": Ready}})
    async def ready() -> Any:
        loaded = store.current
        if loaded is None:
            return JSONResponse({"ready": False, "detail": "no model loaded"}, status_code=503)
        return {"ready": True, "version": loaded.version}

    @app.get("/model", tags=["service"], summary="Metadata of the model served by this worker")
    async def model_info() -> Any:
        loaded = current()
        err = store.last_error
        return {
            **loaded.metadata(),
            "worker_pid": os.getpid(),
            "source": str(store.source),
            "poll_interval": store.poll_interval,
            "reloads": store.reloads,
            "last_reload_error": err.as_dict() if err else None,
            "limits": {
                "max_k": cfg.max_k,
                "max_history": cfg.max_history,
                "max_batch": cfg.max_batch,
                "max_batch_entries": cfg.max_batch_entries,
                "max_ids": cfg.max_ids,
                "max_body_bytes": cfg.max_body_bytes,
            },
            "on_unknown": cfg.on_unknown,
        }

    return app


def app_from_env() -> FastAPI:
    """The app of one uvicorn worker, configured by :func:`recsys.serving.run` through the environment."""
    cfg = ServeConfig.from_env()
    options = {k: v for k, v in vars(cfg).items() if k != "model"}
    return create_app(cfg.model, **options)


__all__ = ["ApiError", "BodyLimit", "app_from_env", "create_app", "error_for"]
