"""The FastAPI application: the app factory and the recommendation endpoints over a :class:`ModelStore`'s model.

The request and response schemas are in :mod:`recsys.serving._schemas`, the error answers (one
``{error, detail}`` shape for every 4xx and 5xx) in :mod:`recsys.serving._errors`.
Needs the ``serve`` extra (fastapi, uvicorn); :mod:`recsys.serving` imports this module lazily.
No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run
time, and they name objects local to :func:`create_app` (the request models with this service's limits).
"""

import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from recsys._version import __version__
from recsys.errors import UnknownIdError
from recsys.serving._config import ServeConfig
from recsys.serving._errors import (
    ApiError,
    BodyLimit,
    SafeJSONResponse,
    check_query,
    error_for,
    error_response,
    install_error_handling,
    require_json,
)
from recsys.serving._explorer import install_explorer
from recsys.serving._ids import to_json_ids
from recsys.serving._schemas import (
    DIGITS,
    BatchResponse,
    Health,
    OnUnknownUser,
    Ready,
    Recommendations,
    SimilarItems,
    error_responses,
    request_models,
)
from recsys.serving._store import LoadedModel, ModelStore

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


def _check_lens(body: Any, cfg: ServeConfig, **limits: str) -> None:
    """:func:`_check_len` for each list field of a request body, by the option that limits it (in the order given)."""
    for name, option in limits.items():
        _check_len(getattr(body, name), name, getattr(cfg, option), option)


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
    HistoryRequest, BatchRequest = request_models(cfg)

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
        dependencies=[Depends(check_query)],
    )
    app.state.store = store
    app.state.config = cfg
    install_error_handling(app, cfg.max_body_bytes)

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
            return error_response(error_for(exc), loaded.version)

    k_query = Query(ge=1, le=cfg.max_k, description=f"Length of the list, 1..{cfg.max_k} (digits only).")
    ids_help = "Item ids, as repeated parameters and/or comma-separated (ids with commas: use the POST endpoints)."

    @app.get("/recommend", response_model=Recommendations, tags=["recommend"], summary="Recommend for a known user",
             responses=error_responses(404, 413, 422, 503))
    async def recommend_user(
        user: Annotated[str, Query(min_length=1, max_length=1024, description="External user id.")],
        k: Annotated[int, k_query, DIGITS] = 10,
        exclude_seen: bool = Query(True, description="Never recommend items the user interacted with in training."),
        # no `| None` in the annotations: the schema then documents a plain array / enum (None means not given);
        # a Query(...) default is FastAPI's way to declare a query parameter (B008 does not apply)
        items: list[str] = Query(None, description="Restrict to these items. " + ids_help),  # noqa: B008
        exclude_items: list[str] = Query(None, description="Never recommend these items. " + ids_help),  # noqa: B008
        on_unknown: OnUnknownUser = Query(cfg.on_unknown, description="Unknown users: 404, an empty list, or popular items."),  # noqa: B008
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

    def post_json(path: str, response_model: type[BaseModel], summary: str) -> Callable[[Any], Any]:
        """A POST route taking a JSON body (415 otherwise) that answers recommendations."""
        return app.post(path, response_model=response_model, tags=["recommend"], summary=summary,
                        responses=error_responses(400, 404, 413, 415, 422, 503), dependencies=[Depends(require_json)])

    @post_json("/recommend", Recommendations, "Recommend from an item history")
    async def recommend_history(body: HistoryRequest) -> Any:  # type: ignore[valid-type]
        loaded = current()
        req: Any = body
        _check_lens(req, cfg, items="max_history", candidates="max_ids", exclude_items="max_ids")

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

    @post_json("/recommend/batch", BatchResponse, "Recommend for many known users")
    async def recommend_batch(body: BatchRequest) -> Any:  # type: ignore[valid-type]
        loaded = current()
        req: Any = body
        _check_lens(req, cfg, users="max_batch")
        if len(req.users) * req.k > cfg.max_batch_entries:
            raise ApiError(
                413,
                "batch_too_large",
                f"{len(req.users)} users x k={req.k} asks for {len(req.users) * req.k} recommendations; this service "
                f"answers at most {cfg.max_batch_entries} per batch (max_batch_entries): split the batch or lower k",
            )
        _check_lens(req, cfg, items="max_ids", exclude_items="max_ids")
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
             responses=error_responses(400, 404, 422, 503))
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

    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness", responses=error_responses(422))
    async def health() -> Any:
        return {"status": "ok"}

    @app.get("/ready", response_model=Ready, tags=["service"], summary="Readiness: a model is loaded",
             responses={503: {"model": Ready, "description": "No model loaded"}, **error_responses(422)})
    async def ready() -> Any:
        loaded = store.current
        if loaded is None:
            return JSONResponse({"ready": False, "detail": "no model loaded"}, status_code=503)
        return {"ready": True, "version": loaded.version}

    @app.get("/model", tags=["service"], summary="Metadata of the model served by this worker", responses=error_responses(422, 503))
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

    install_explorer(app, cfg, current, answer)  # the page at /explore and the endpoints it reads (tag "explore")
    return app


def app_from_env() -> FastAPI:
    """The app of one uvicorn worker, configured by :func:`recsys.serving.run` through the environment."""
    cfg = ServeConfig.from_env()
    options = {k: v for k, v in vars(cfg).items() if k != "model"}
    return create_app(cfg.model, **options)


__all__ = ["ApiError", "BodyLimit", "app_from_env", "create_app", "error_for"]
