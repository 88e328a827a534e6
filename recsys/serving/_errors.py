"""Every failure of the service as one JSON shape, ``{"error": code, "detail": message}``, mapped in one place.

What answers here: the library's exceptions raised while a model answers (:func:`error_for`), FastAPI's
validation errors (422), Starlette's own 404/405/400, a non-JSON body (415), repeated or unknown query
parameters (422), bodies over the size limit (413, :class:`BodyLimit`, before parsing) and ``HEAD``
requests (answered as ``GET`` without the body, :class:`HeadAsGet`). :func:`install_error_handling`
attaches them to an app. Needs the ``serve`` extra.
"""

import json
import logging
import re
import types
import typing
from collections import Counter
from typing import Annotated, Any, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys.errors import (
    ArtifactError,
    DataError,
    NotFittedError,
    NotSupportedError,
    ParameterError,
    RecsysError,
    UnknownIdError,
)

logger = logging.getLogger("recsys.serving")

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


def error_response(err: ApiError, version: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
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
        return error_response(ApiError(400, "malformed_json", f"the request body is not valid JSON: {msg}"))
    simple = [{"field": _loc(tuple(e.get("loc", ()))), "message": _with_input(e), "type": e.get("type", "")} for e in errors]
    detail = "; ".join(f"{s['field']}: {s['message']}" for s in simple[:5])
    if len(simple) > 5:
        detail += f"; and {len(simple) - 5} more"
    return error_response(ApiError(422, "invalid_request", detail, {"errors": simple[:50]}))


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


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
    return error_response(err, headers=headers)


async def _internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything not mapped elsewhere: a 500 in the same shape (the traceback goes to the server log)."""
    return error_response(error_for(exc))


# -- request checks: a JSON body (415), known and unrepeated query parameters (422) ---------------


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def require_json(request: Request) -> None:
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
        setattr(route, "_recsys_query_names", cached)  # noqa: B010  (APIRoute declares no such attribute: mypy)
    return cached


async def check_query(request: Request) -> None:
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
        await error_response(err)(scope, receive, send)


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


# -- attaching it all to an app ---------------------------------------------------------------------


def install_error_handling(app: FastAPI, max_body_bytes: int) -> None:
    """Answer every error of ``app`` in the ``{error, detail}`` shape; refuse bodies over ``max_body_bytes``; answer HEAD as GET.

    The query-parameter check (:func:`check_query`) and the JSON body check (:func:`require_json`) are
    dependencies the app and its routes declare; the default response class should be :class:`SafeJSONResponse`.

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> app = FastAPI()
    >>> install_error_handling(app, max_body_bytes=10)
    >>> with TestClient(app) as client:
    ...     r = client.get("/nowhere")
    >>> r.status_code, r.json()["error"]
    (404, 'not_found')
    """
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _internal_error_handler)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(HeadAsGet)  # added last, so it runs first: a HEAD is a GET for everything inside


__all__ = [
    "ApiError",
    "BodyLimit",
    "HeadAsGet",
    "SafeJSONResponse",
    "check_query",
    "error_for",
    "error_response",
    "install_error_handling",
    "require_json",
]
