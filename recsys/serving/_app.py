"""The FastAPI application: recommendation endpoints over the model a :class:`ModelStore` holds.

Needs the ``serve`` extra (fastapi, uvicorn); :mod:`recsys.serving` imports this module lazily.
No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run
time, and they name objects local to :func:`create_app` (the request models with this service's limits).
"""

import json
import logging
import os
import re
import signal
import threading
import types
import typing
from collections import Counter
from pathlib import Path
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, Self, Union

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
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

_I64 = np.iinfo(np.int64)
_F32_MAX = float(np.finfo(np.float32).max)


def _json_id(value: Any) -> Any:
    """A JSON id: an integer in int64's range (the widest integer id a model stores) or a string."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool) and _I64.min <= value <= _I64.max):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise PydanticCustomError("id_range", "An integer id must be within int64 ({low}..{high})", {"low": int(_I64.min), "high": int(_I64.max)})
    shown = json.dumps(value)[:40] if isinstance(value, (bool, float, type(None))) else ("an array" if isinstance(value, list) else "an object")
    raise PydanticCustomError("id_type", "An id must be a JSON integer or string; got {got}", {"got": shown})


Id = Annotated[
    Any,
    PlainValidator(_json_id),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": int(_I64.min), "maximum": int(_I64.max)}, {"type": "string"}]}),
]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: Ratings are stored as float32: larger magnitudes would become infinite.
Rating = Annotated[float, Field(allow_inf_nan=False, ge=-_F32_MAX, le=_F32_MAX)]
OnUnknownUser = Literal["error", "skip", "popular"]
_INT_TEXT = re.compile(r"-?[0-9]+")


def _integer_text(value: Any) -> Any:
    """A query value meant as an integer must be written in digits: "5.0", "true" or "5_0" are refused."""
    if isinstance(value, str) and not _INT_TEXT.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "Input should be a valid integer, written in digits (e.g. 10); got {got}", {"got": repr(value[:40])}
        )
    return value


#: On an integer query parameter (``k``), after its ``Query(...)``: digits only; pydantic converts and range-checks.
DIGITS = BeforeValidator(_integer_text)


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


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: text echoed from a request may hold lone surrogates (``"\\ud800"`` in a
    JSON body), which UTF-8 cannot encode; such answers are written with ASCII escapes instead of failing."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _error_response(err: ApiError, version: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = {**(headers or {}), **({"X-Model-Version": version} if version else {})}
    return SafeJSONResponse(
        {"error": err.code, "detail": err.detail, **err.extra}, status_code=err.status, headers=headers or None
    )


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query")]
    return ".".join(parts) or "body"


def _with_input(e: dict[str, Any]) -> str:
    """pydantic's message, plus the offending value when it is a short scalar (``k: ... integer, got true``)."""
    msg = str(e.get("msg", ""))
    value = e.get("input")
    if "got " in msg or e.get("type") == "missing" or not (value is None or isinstance(value, (bool, int, float, str))):
        return msg
    if isinstance(value, str) and len(value) > 40:
        return msg
    try:
        shown = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):  # pragma: no cover - scalars always encode
        return msg
    return f"{msg}, got {shown}"


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        msg = e.get("ctx", {}).get("error", e.get("msg", ""))
        return _error_response(ApiError(400, "malformed_json", f"the request body is not valid JSON: {msg}"))
    simple = [{"field": _loc(tuple(e.get("loc", ()))), "message": _with_input(e), "type": e.get("type", "")} for e in errors]
    detail = "; ".join(f"{s['field']}: {s['message']}" for s in simple[:5])
    if len(simple) > 5:
        detail += f"; and {len(simple) - 5} more"
    return _error_response(ApiError(422, "invalid_request", detail, {"errors": simple[:50]}))


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _error_response(exc)


def _allowed_methods(app: Any, path: str) -> list[str]:
    """Methods some route of ``app`` answers at ``path`` (HEAD wherever GET: see :class:`HeadAsGet`)."""
    methods: set[str] = set()
    for route in app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path) and getattr(route, "methods", None):
            methods |= set(route.methods)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _endpoints(app: Any) -> str:
    return ", ".join(
        f"{m} {r.path}" for r in app.routes if isinstance(r, APIRoute) for m in sorted(r.methods or ())
    )


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's and FastAPI's own 4xx (no route, wrong method, unreadable body) in the ``{error, detail}`` shape."""
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    shown = path if len(path) <= 200 else path[:200] + "..."
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        err = ApiError(404, "not_found", f"no endpoint at {shown!r}; the endpoints are: {_endpoints(request.app)} (docs at /docs)")
    elif exc.status_code == 405:
        allowed = _allowed_methods(request.app, path)
        headers["Allow"] = ", ".join(allowed)
        err = ApiError(405, "method_not_allowed", f"{request.method} is not allowed on {shown}; allowed: {', '.join(allowed)}")
    elif exc.status_code == 400:  # FastAPI could not parse the body (raised from the parser's error)
        cause = exc.__cause__
        why = (
            "it is not UTF-8 text" if isinstance(cause, UnicodeDecodeError)
            else "it is nested too deeply" if isinstance(cause, RecursionError)
            else f"{exc.detail} ({type(cause).__name__})" if cause is not None
            else str(exc.detail)
        )
        err = ApiError(400, "malformed_json", f"the request body is not valid JSON: {why}")
    else:
        code = re.sub(r"[^a-z0-9]+", "_", str(exc.detail).lower()).strip("_") or "http_error"
        err = ApiError(exc.status_code, code, str(exc.detail))
    return _error_response(err, headers=headers)


async def _internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything not mapped elsewhere: a 500 in the same shape (the traceback goes to the server log)."""
    return _error_response(error_for(exc))


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def _require_json(request: Request) -> None:
    """Bodies must be sent as JSON; anything else is a 415 rather than a confusing validation error."""
    ctype = request.headers.get("content-type")
    if not _is_json(ctype):
        got = f"Content-Type {ctype[:100]!r}" if ctype else "no Content-Type"
        raise ApiError(415, "unsupported_media_type", f"the request body must be JSON (Content-Type: application/json); got {got}")


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    if origin is Annotated:
        return _is_list(typing.get_args(annotation)[0])
    return origin in (list, tuple, set, frozenset)


def _query_names(route: APIRoute) -> tuple[list[str], frozenset[str]]:
    """The query parameters of a route, and those that may repeat (lists); worked out once per route."""
    cached: tuple[list[str], frozenset[str]] | None = getattr(route, "_recsys_query_names", None)
    if cached is None:
        params = route.dependant.query_params
        cached = ([p.alias for p in params], frozenset(p.alias for p in params if _is_list(p.field_info.annotation)))
        setattr(route, "_recsys_query_names", cached)
    return cached


async def _check_query(request: Request) -> None:
    """A scalar query parameter given twice (``?k=5&k=6``) or an unknown one (``?K=5``) is a 422 naming it:
    silently taking one of the values, or ignoring a misspelt option, would answer a different question."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.url.query:
        return
    names, lists = _query_names(route)
    given = request.query_params.multi_items()
    counts = Counter(name for name, _ in given)
    problems = []
    for name, n in counts.items():
        shown = repr(name) if not name else name if len(name) <= 60 else name[:60] + "..."
        if name not in names:
            takes = ", ".join(names) or "no query parameters"
            problems.append({"field": shown, "message": f"unknown query parameter; {request.method} {route.path} takes: {takes}", "type": "unknown_parameter"})
        elif n > 1 and name not in lists:
            values = ", ".join([repr(v[:20]) for k, v in given if k == name][:5])
            problems.append({"field": shown, "message": f"given {n} times ({values}); give it once", "type": "repeated_parameter"})
    if problems:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        if len(problems) > 5:
            detail += f"; and {len(problems) - 5} more"
        raise ApiError(422, "invalid_request", detail, {"errors": problems[:50]})


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


class HeadAsGet:
    """``HEAD`` answered wherever ``GET`` is: the GET response's status and headers, without its body.

    FastAPI's GET routes do not accept HEAD (a 405); this runs HEAD requests as GET and drops the body
    (``Content-Length`` stays the GET body's length, as RFC 9110 allows).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_no_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_no_body)


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


class FieldError(BaseModel):
    field: str = Field(description="Where: a query parameter or a dotted path into the JSON body (items.0).")
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of this service."""

    error: str = Field(
        description="Machine-readable code: unknown_id, invalid_request, invalid_value, malformed_json, "
        "not_supported, not_found, method_not_allowed, body_too_large, too_many_ids, "
        "batch_too_large, unsupported_media_type, model_unavailable, internal_error."
    )
    detail: str = Field(description="What was wrong, naming the parameter or field, and what is expected.")
    errors: list[FieldError] | None = Field(None, description="invalid_request (422): one entry per problem.")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (all ``ErrorBody``)."""
    what = {
        400: "Malformed JSON, or an operation this model does not support",
        404: "Unknown user or item",
        413: "Body, id list, history or batch too large",
        415: "The body is not JSON",
        422: "Invalid parameter or body (a repeated or unknown query parameter included)",
        503: "No model loaded",
    }
    return {s: {"model": ErrorBody, "description": what[s]} for s in statuses}


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    version: str | None = None
    detail: str | None = None


def _request_models(cfg: ServeConfig) -> tuple[type[BaseModel], type[BaseModel]]:
    """Request bodies with this service's limits (shown in the OpenAPI schema)."""
    k_field = Field(10, ge=1, le=cfg.max_k, description=f"Length of the list, 1..{cfg.max_k} (an integer literal: 5, not 5.0, '5' or true).")

    def ids(what: str) -> Any:
        # maxItems is documented, not validated by pydantic: more ids are a 413 naming the option
        return Field(
            None, description=f"{what} (at most {cfg.max_ids} ids, max_ids; more: 413).", json_schema_extra={"maxItems": cfg.max_ids}
        )

    class HistoryRequest(BaseModel):
        """Recommendations for a user absent from the training data, from their item history (fold-in)."""

        # strict: k is a JSON integer (not true, "5" or 5.0), exclude_seen a JSON boolean
        model_config = ConfigDict(extra="forbid", strict=True)
        items: list[Id] = Field(
            min_length=1,
            description=f"The user's item history (at most {cfg.max_history} ids, max_history; more: 413).",
            json_schema_extra={"maxItems": cfg.max_history},
        )
        ratings: list[Rating] | None = Field(None, description="Aligned with items, for models that use ratings (float32 range).")
        timestamps: list[FiniteFloat] | None = Field(None, description="Aligned with items, for models that use time.")
        k: int = k_field
        exclude_seen: bool = Field(True, description="Never recommend the history's items.")
        candidates: list[Id] | None = ids("Restrict recommendations to these items")
        exclude_items: list[Id] | None = ids("Never recommend these items")
        on_unknown_items: Literal["error", "skip", "popular"] = Field(
            "error",
            description="History items the model does not know: 404, or ignore them; 'popular' also ignores them and "
            "answers with the most popular items when nothing of the history is left to fold in.",
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

        model_config = ConfigDict(extra="forbid", strict=True)
        users: list[Id] = Field(
            min_length=1,
            description=f"Distinct user ids (at most {cfg.max_batch}, max_batch; more: 413; users x k at most "
            f"{cfg.max_batch_entries}, max_batch_entries).",
            json_schema_extra={"maxItems": cfg.max_batch, "uniqueItems": True},
        )
        k: int = k_field
        exclude_seen: bool = True
        items: list[Id] | None = ids("Restrict recommendations to these items")
        exclude_items: list[Id] | None = ids("Never recommend these items")
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
    from recsys._utils.threads import set_process_threads

    set_process_threads(threads)


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
            "Every error is JSON `{error, detail}` (422s add `errors`, one entry per problem): 400 malformed "
            "JSON or an operation the model does not support, 404 unknown user/item or route, 405 method not "
            "allowed, 413 too large, 415 body not JSON, 422 invalid values (`k` a JSON integer / digits; a "
            "repeated or unknown query parameter), 503 no model. HEAD is answered wherever GET is."
        ),
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
        dependencies=[Depends(_check_query)],
    )
    app.state.store = store
    app.state.config = cfg
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _internal_error_handler)
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)
    app.add_middleware(HeadAsGet)
    json_body = [Depends(_require_json)]

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
            return SafeJSONResponse(body, headers={"X-Model-Version": loaded.version})
        except Exception as exc:
            return _error_response(error_for(exc), loaded.version)

    k_query = Query(ge=1, le=cfg.max_k, description=f"Length of the list, 1..{cfg.max_k} (digits only).")
    ids_help = "Item ids, as repeated parameters and/or comma-separated (ids with commas: use the POST endpoints)."

    @app.get("/recommend", response_model=Recommendations, tags=["recommend"], summary="Recommend for a known user",
             responses=_errors(404, 413, 422, 503))
    async def recommend_user(
        user: Annotated[str, Query(min_length=1, max_length=1024, description="External user id.")],
        k: Annotated[int, k_query, DIGITS] = 10,
        exclude_seen: bool = Query(True, description="Never recommend items the user interacted with in training."),
        # no `| None` in the annotations: the schema then documents a plain array / enum (None means not given)
        items: list[str] = Query(None, description="Restrict to these items. " + ids_help),
        exclude_items: list[str] = Query(None, description="Never recommend these items. " + ids_help),
        on_unknown: OnUnknownUser = Query(cfg.on_unknown, description="Unknown users: 404, an empty list, or popular items."),
    ) -> Any:
        loaded = current()
        cand = _split(items, "items", cfg.max_ids)
        excl = _split(exclude_items, "exclude_items", cfg.max_ids)
        mode = on_unknown

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

    @app.post("/recommend", response_model=Recommendations, tags=["recommend"], summary="Recommend from an item history",
              responses=_errors(400, 404, 413, 415, 422, 503), dependencies=json_body)
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

    @app.post("/recommend/batch", response_model=BatchResponse, tags=["recommend"], summary="Recommend for many known users",
              responses=_errors(400, 404, 413, 415, 422, 503), dependencies=json_body)
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
                    results.append({"user": given, "items": [], "known_user": False, "fallback": "skip", "model_version": loaded.version})
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

    @app.get("/similar", response_model=SimilarItems, tags=["recommend"], summary="Items similar to an item",
             responses=_errors(400, 404, 422, 503))
    async def similar(
        item: Annotated[str, Query(min_length=1, max_length=1024, description="External item id.")],
        k: Annotated[int, k_query, DIGITS] = 10,
    ) -> Any:
        loaded = current()

        def work() -> dict[str, Any]:
            iid = loaded.items.one(item)
            if iid not in loaded.model.items_:
                raise UnknownIdError(loaded.unknown_message("item", item))
            frame = loaded.model.similar_items([iid], k)
            return {"item": iid, "items": _scored(frame["similar_item"].to_numpy(), frame["score"].to_numpy())}

        return answer(loaded, work)

    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness", responses=_errors(422))
    async def health() -> Any:
        return {"status": "ok"}

    @app.get("/ready", response_model=Ready, tags=["service"], summary="Readiness: a model is loaded",
             responses={503: {"model": Ready, "description": "No model loaded"}, **_errors(422)})
    async def ready() -> Any:
        loaded = store.current
        if loaded is None:
            return JSONResponse({"ready": False, "detail": "no model loaded"}, status_code=503)
        return {"ready": True, "version": loaded.version}

    @app.get("/model", tags=["service"], summary="Metadata of the model served by this worker", responses=_errors(422, 503))
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
