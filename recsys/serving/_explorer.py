"""The explorer: a read-only web page at ``/explore`` and the JSON endpoints it uses beyond the recommendation API.

Endpoints (tag ``explore`` in the OpenAPI document; the same validation and ``{error, detail}`` answers
as the rest of the service):

* ``GET /explain?user=&item=&top=`` and ``POST /explain`` (a history, as ``POST /recommend``): the parts
  of one item's score (:meth:`~recsys.models.base.Recommender.explain`). A model without
  explanations answers **400** ``not_supported`` with the reason, as every operation a model does not
  support does in this service (a 501 would say the *server* lacks the feature; here it is the model
  being served, and another version may have it).
* ``GET /users/{user}/history?limit=``: the user's training items, newest first when the artifact kept
  interaction times (``recsys fit`` does), with titles and genres when it kept item features.
* ``GET /users/{user}/overview?k=&limit=``: both of the above for the page's main view in one request
  (recommendations with titles, and the history).
* ``GET /items?ids=``, ``GET /items/search?q=&limit=``, ``GET /users/search?q=&limit=``, ``GET /users/random``.
* ``GET /model/summary``: the model's metadata, a training data summary, whether it explains, and the
  versions of the model root. ``GET /versions`` lists them; ``GET /compare?user=&a=&b=&k=`` answers the
  same user from two versions (the served one is used as is; another is loaded and verified once, and
  kept while it stays among the last two asked for).

The page itself is static HTML/CSS/JS in ``recsys/serving/static`` (no build step, no CDN) and talks
only to these endpoints and the recommendation API. Needs the ``serve`` extra.
"""

import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from recsys.errors import RecsysError, UnknownIdError
from recsys.serving._catalog import Catalog
from recsys.serving._config import ServeConfig
from recsys.serving._errors import ApiError, require_json
from recsys.serving._ids import to_json_ids
from recsys.serving._layout import VERSIONS, _check_version_name, _versions
from recsys.serving._schemas import DIGITS, FiniteFloat, Id, Rating, error_responses
from recsys.serving._store import LoadedModel, ModelStore, load_version

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}

# -- response models (for the OpenAPI document) ------------------------------------------------------


class ItemInfo(BaseModel):
    item: Id
    title: str | None = Field(None, description="From the item features kept with the artifact; None without them.")
    genres: list[str] = Field(default_factory=list)


class Part(ItemInfo):
    item: Id | None = Field(None, description="The source's id (an item, or a user for kind 'user'); None for terms.")
    kind: str = Field(description="item, user, attention, rest (the sources not listed) or a term (bias, baseline, ...).")
    contribution: float
    detail: dict[str, Any] = Field(default_factory=dict, description="Model-specific columns (similarity, value, ...).")


class ExplainResponse(BaseModel):
    user: Id | None
    item: ItemInfo
    score: float = Field(description="The score recommend ranks by.")
    exact: bool = Field(description="True when the contributions sum to the score.")
    model: str
    n_sources: int
    parts: list[Part]
    model_version: str


class HistoryEntry(ItemInfo):
    time: float | None = Field(None, description="The latest interaction time (seconds for datetimes); None when not kept.")


class UserHistory(BaseModel):
    user: Id
    n: int = Field(description="Items in the user's training history (the list may be shorter: limit).")
    order: str = Field(description="'newest first', or 'unknown (no timestamps kept)' (then by item index).")
    items: list[HistoryEntry]
    model_version: str


class RankedItem(ItemInfo):
    score: float
    rank: int


class UserOverview(BaseModel):
    user: Id
    items: list[RankedItem] = Field(description="Top-k recommendations (training items excluded), with titles.")
    history: dict[str, Any] = Field(description="As GET /users/{user}/history (without model_version).")
    model_version: str


class ItemList(BaseModel):
    items: list[ItemInfo]
    model_version: str


class UserList(BaseModel):
    users: list[Id]
    model_version: str


class RandomUser(BaseModel):
    user: Id
    model_version: str


class VersionInfo(BaseModel):
    version: str
    current: bool


class Versions(BaseModel):
    root: bool = Field(description="False for a plain artifact directory (one version).")
    current: str
    versions: list[VersionInfo] = Field(description="Oldest first.")
    model_version: str


class Side(BaseModel):
    version: str
    items: list[dict[str, Any]]


class Comparison(BaseModel):
    user: Id
    a: Side
    b: Side
    overlap: list[Id] = Field(description="Items in both lists, in the order of a.")
    model_version: str


class Summary(BaseModel):
    model: dict[str, Any] = Field(description="As GET /model: class, params, version, artifact_sha256, ...")
    data: dict[str, Any] = Field(description="Training data summary: n_users, n_items, n_interactions, density, titles...")
    explain: dict[str, Any] = Field(description="{supported, reason}: whether GET /explain can answer.")
    versions: list[VersionInfo]
    model_version: str


# -- the per-app state: catalogs of served models, other versions for comparisons ---------------------


class ExplorerState:
    """What the explorer keeps per app: a :class:`Catalog` per loaded model, and up to two other versions."""

    def __init__(self, store: ModelStore, data: Any = None) -> None:
        self.store = store
        self.data = data  # an Interactions given at run time (recsys explore --data) wins over the artifact's
        self._lock = threading.Lock()
        self._catalogs: OrderedDict[int, tuple[LoadedModel, Catalog]] = OrderedDict()
        self._others: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._explains: dict[tuple[str, str], tuple[bool, str | None]] = {}

    def catalog(self, loaded: LoadedModel) -> Catalog:
        key = id(loaded)
        with self._lock:
            hit = self._catalogs.get(key)
            if hit is not None and hit[0] is loaded:
                return hit[1]
        cat = Catalog.of_data(loaded.model, self.data) if self.data is not None else Catalog.of_model(loaded.model)
        with self._lock:
            self._catalogs[key] = (loaded, cat)
            while len(self._catalogs) > 3:
                self._catalogs.popitem(last=False)
        return cat

    def explains(self, loaded: LoadedModel) -> tuple[bool, str | None]:
        """Whether the model explains (tried once on its first user and first item), and why not."""
        from recsys.errors import NotSupportedError

        key = (str(loaded.path), loaded.manifest_sha256)
        if key not in self._explains:
            m = loaded.model
            ok, reason = True, None
            try:
                if len(m.users_) and m.n_items_:
                    m.explain(m.users_.ids[0], m.items_.ids[0], top=1)
            except NotSupportedError as e:
                ok, reason = False, str(e)
            except Exception:  # noqa: S110  (any other failure is answered by /explain itself)
                pass
            self._explains[key] = (ok, reason)
        return self._explains[key]

    def root(self) -> Path | None:
        src = self.store.source
        return src if (src / VERSIONS).is_dir() else None

    def versions(self, current: LoadedModel) -> list[dict[str, Any]]:
        root = self.root()
        names = _versions(root) if root is not None else [current.version]
        if current.version not in names:
            names.append(current.version)
        return [{"version": v, "current": v == current.version} for v in names]

    def version(self, name: str, current: LoadedModel) -> LoadedModel:
        """The loaded model of version ``name`` of the served root (404 when there is no such version)."""
        if name == current.version:
            return current
        root = self.root()
        try:
            _check_version_name(name)
        except RecsysError:
            root = None
        path = root / VERSIONS / name if root is not None else None
        if path is None or not (path / "manifest.json").is_file():
            known = ", ".join(v["version"] for v in self.versions(current)[-10:])
            raise ApiError(404, "unknown_version", f"version {name!r} is not a version of the served model root; versions: {known}")
        key = (str(path), str((path / "manifest.json").stat().st_mtime_ns))
        with self._lock:
            hit = self._others.get(key)
            if hit is not None:
                self._others.move_to_end(key)
                return hit
        loaded = load_version(path)  # an ArtifactError answers 503 model_unavailable
        with self._lock:
            self._others[key] = loaded
            while len(self._others) > 2:
                self._others.popitem(last=False)
        return loaded


# -- the routes --------------------------------------------------------------------------------------------


def _parts(frame: Any, cat: Catalog) -> list[dict[str, Any]]:
    """Rows of an explanation frame as JSON, with titles for item sources (columns read once: a frame is slow per cell)."""
    model = cat.model
    names = [str(c) for c in frame.columns]
    cells = frame.to_numpy(dtype=object).T.tolist()  # one conversion: each column access copies the frame's attrs
    by_name = dict(zip(names, cells))
    kinds, ids, contrib = by_name["kind"], by_name["id"], [float(c) for c in by_name["contribution"]]
    details = {c: v for c, v in by_name.items() if c not in ("kind", "id", "contribution")}
    item_rows = [r for r, k in enumerate(kinds) if k in ("item", "attention")]
    info = cat.describe(model.items_.to_index([ids[r] for r in item_rows]).astype(np.int64)) if item_rows else []
    by_row = dict(zip(item_rows, info))
    out = []
    for r, (kind, ident, c) in enumerate(zip(kinds, ids, contrib)):
        detail = {}
        for col, values in details.items():
            v = values[r]
            if v is not None and not (isinstance(v, float) and v != v):
                detail[col] = v.item() if isinstance(v, np.generic) else v
        row = by_row.get(r, {"title": None, "genres": []})
        out.append({"kind": kind, "item": None if ident is None else to_json_ids([ident])[0], "contribution": c,
                    "title": row["title"], "genres": row["genres"], "detail": detail})
    return out


def install_explorer(
    app: FastAPI,
    cfg: ServeConfig,
    current: Callable[[], LoadedModel],
    answer: Callable[[LoadedModel, Callable[[], dict[str, Any]]], JSONResponse],
) -> ExplorerState:
    """Add the explorer page and its endpoints to ``app`` (called by :func:`recsys.serving._app.create_app`).

    ``app.state.explorer.data`` may be set to an :class:`~recsys.Interactions` to take titles and
    histories from it instead of the artifact (``recsys explore --data``).
    """
    state = ExplorerState(app.state.store)
    app.state.explorer = state
    top_query = Query(ge=1, le=100, description="Sources to list (1..100); the others are summed into one 'rest' row.")
    limit_query = Query(ge=1, le=100, description="At most this many (1..100).")
    text_query = Query(min_length=1, max_length=200, description="Text to look for (case-insensitive).")
    k_query = Query(ge=1, le=min(cfg.max_k, 100), description="Length of each list.")
    tags: list[str | Enum] = ["explore"]

    # -- the page -----------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/explore", status_code=307)

    @app.get("/explore", include_in_schema=False)
    async def page() -> Response:
        return HTMLResponse((STATIC / "index.html").read_bytes(), headers={"Cache-Control": "no-cache"})

    @app.get("/explore/static/{name}", include_in_schema=False)
    async def static(name: Annotated[str, PathParam(max_length=100)]) -> Response:
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
            raise ApiError(404, "not_found", f"no static file {name[:100]!r}")
        return FileResponse(path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})

    # -- explanations ---------------------------------------------------------------------------------------

    explain_errors = error_responses(400, 404, 422, 503)

    @app.get("/explain", response_model=ExplainResponse, tags=tags, summary="Why a user gets an item: the parts of its score",
             description="400 not_supported when the served model has no explanations (the detail says why).",
             responses=explain_errors)
    async def explain(
        user: Annotated[str, Query(min_length=1, max_length=1024, description="External user id.")],
        item: Annotated[str, Query(min_length=1, max_length=1024, description="External item id.")],
        top: Annotated[int, top_query, DIGITS] = 5,
    ) -> Any:
        loaded = current()

        def work() -> dict[str, Any]:
            m = loaded.model
            uid, iid = loaded.users.one(user), loaded.items.one(item)
            if uid not in m.users_:
                raise UnknownIdError(loaded.unknown_message("user", user))
            if iid not in m.items_:
                raise UnknownIdError(loaded.unknown_message("item", item))
            frame = m.explain(uid, iid, top=top)
            cat = state.catalog(loaded)
            return _explained(frame, cat, to_json_ids([uid])[0], m.items_.to_index([iid]))

        return answer(loaded, work)

    class ExplainHistoryRequest(BaseModel):
        """Why a user known only by a history (fold-in) gets an item."""

        model_config = ConfigDict(extra="forbid", strict=True)
        items: list[Id] = Field(min_length=1, description=f"The history (at most {cfg.max_history} ids, max_history; more: 413).",
                                json_schema_extra={"maxItems": cfg.max_history})
        item: Id = Field(description="The item whose score is explained.")
        top: int = Field(5, ge=1, le=100)
        ratings: list[Rating] | None = None
        timestamps: list[FiniteFloat] | None = None

    @app.post("/explain", response_model=ExplainResponse, tags=tags, summary="Why a history gets an item",
              responses=error_responses(400, 404, 413, 415, 422, 503), dependencies=[Depends(require_json)])
    async def explain_history(body: ExplainHistoryRequest) -> Any:
        loaded = current()
        if len(body.items) > cfg.max_history:
            raise ApiError(413, "too_many_ids", f"items has {len(body.items)} ids; this service accepts at most {cfg.max_history} (max_history)")
        for name in ("ratings", "timestamps"):
            values = getattr(body, name)
            if values is not None and len(values) != len(body.items):
                raise ApiError(422, "invalid_value", f"{name} must align with items: {len(values)} values for {len(body.items)} items")

        def work() -> dict[str, Any]:
            m = loaded.model
            hist = loaded.items.many(body.items)
            iid = loaded.items.one(body.item)
            if iid not in m.items_:
                raise UnknownIdError(loaded.unknown_message("item", body.item))
            frame = m.explain_history(hist, iid, top=body.top, ratings=body.ratings, timestamps=body.timestamps)
            return _explained(frame, state.catalog(loaded), None, m.items_.to_index([iid]))

        return answer(loaded, work)

    def _explained(frame: Any, cat: Catalog, user: Any, iidx: Any) -> dict[str, Any]:
        attrs = frame.attrs
        return {
            "user": user,
            "item": cat.describe(np.asarray(iidx, dtype=np.int64))[0],
            "score": float(attrs["score"]),
            "exact": bool(attrs["exact"]),
            "model": str(attrs["model"]),
            "n_sources": int(attrs["n_sources"]),
            "parts": _parts(frame, cat),
        }

    # -- users and items ------------------------------------------------------------------------------------

    def known_user(loaded: LoadedModel, user: str) -> Any:
        uid = loaded.users.one(user)
        if uid not in loaded.model.users_:
            raise UnknownIdError(loaded.unknown_message("user", user))
        return uid

    def history_of(loaded: LoadedModel, uid: Any, limit: int) -> dict[str, Any]:
        cat = state.catalog(loaded)
        items, times, n = cat.history(int(loaded.model.users_.to_index([uid])[0]))
        entries = cat.describe(items[:limit])
        for j, e in enumerate(entries):
            e["time"] = None if times is None else float(times[j])
        order = "newest first" if times is not None else "unknown (no timestamps kept)"
        return {"user": to_json_ids([uid])[0], "n": n, "order": order, "items": entries}

    @app.get("/users/random", response_model=RandomUser, tags=tags, summary="A random user with a training history",
             responses=error_responses(404, 422, 503))
    async def random_user() -> Any:
        loaded = current()

        def work() -> dict[str, Any]:
            seen = loaded.model.seen_
            active = np.flatnonzero(np.diff(seen.indptr) > 0)
            if not len(active):
                raise ApiError(404, "unknown_id", "the model has no user with a training history")
            u = int(active[random.randrange(len(active))])
            return {"user": to_json_ids(loaded.model.users_.to_ids([u]))[0]}

        return answer(loaded, work)

    @app.get("/users/search", response_model=UserList, tags=tags, summary="Users whose id starts with a text",
             responses=error_responses(422, 503))
    async def search_users(q: Annotated[str, text_query], limit: Annotated[int, limit_query, DIGITS] = 10) -> Any:
        loaded = current()
        return answer(loaded, lambda: {"users": state.catalog(loaded).search_users(q, limit)})

    @app.get("/users/{user}/history", response_model=UserHistory, tags=tags, summary="A user's training items, newest first",
             responses=error_responses(404, 422, 503))
    async def user_history(
        user: Annotated[str, PathParam(min_length=1, max_length=1024, description="External user id.")],
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many items (1..1000)."), DIGITS] = 50,
    ) -> Any:
        loaded = current()

        def work() -> dict[str, Any]:
            return history_of(loaded, known_user(loaded, user), limit)

        return answer(loaded, work)

    @app.get("/users/{user}/overview", response_model=UserOverview, tags=tags,
             summary="What the page shows for a user: top-k with titles, and the latest history",
             description="GET /recommend (exclude_seen) and GET /users/{user}/history in one answer, items with titles.",
             responses=error_responses(404, 422, 503))
    async def user_overview(
        user: Annotated[str, PathParam(min_length=1, max_length=1024, description="External user id.")],
        k: Annotated[int, k_query, DIGITS] = 10,
        limit: Annotated[int, Query(ge=1, le=1000, description="History items to list (1..1000)."), DIGITS] = 50,
    ) -> Any:
        loaded = current()

        def work() -> dict[str, Any]:
            uid = known_user(loaded, user)
            m = loaded.model
            ids, scores = m.recommend_one(uid, k)
            recs = state.catalog(loaded).describe(m.items_.to_index(ids).astype(np.int64))
            for r, (e, s) in enumerate(zip(recs, np.asarray(scores, dtype=np.float64).tolist()), 1):
                e.update(score=s, rank=r)
            return {"user": to_json_ids([uid])[0], "items": recs, "history": history_of(loaded, uid, limit)}

        return answer(loaded, work)

    @app.get("/items", response_model=ItemList, tags=tags, summary="Titles and genres of items",
             responses=error_responses(404, 413, 422, 503))
    async def items_info(
        ids: list[str] = Query(description="Item ids, as repeated parameters and/or comma-separated."),  # noqa: B008
    ) -> Any:
        loaded = current()
        wanted = [v for value in ids for v in value.split(",") if v != ""]
        if len(wanted) > cfg.max_ids:
            raise ApiError(413, "too_many_ids", f"ids has {len(wanted)} ids; this service accepts at most {cfg.max_ids} (max_ids)")

        def work() -> dict[str, Any]:
            m = loaded.model
            idx = m.items_.to_index(loaded.items.many(wanted)).astype(np.int64)
            return {"items": state.catalog(loaded).describe(idx)}

        return answer(loaded, work)

    @app.get("/items/search", response_model=ItemList, tags=tags, summary="Items whose id or title contains a text",
             responses=error_responses(422, 503))
    async def search_items(q: Annotated[str, text_query], limit: Annotated[int, limit_query, DIGITS] = 10) -> Any:
        loaded = current()

        def work() -> dict[str, Any]:
            cat = state.catalog(loaded)
            return {"items": cat.describe(cat.search_items(q, limit))}

        return answer(loaded, work)

    # -- the model, its versions, comparisons ---------------------------------------------------------------

    @app.get("/model/summary", response_model=Summary, tags=tags, summary="What the explorer shows about the model",
             responses=error_responses(422, 503))
    async def summary() -> Any:
        loaded = current()

        def work() -> dict[str, Any]:
            ok, reason = state.explains(loaded)
            err = state.store.last_error
            meta = {**loaded.metadata(), "last_reload_error": err.as_dict() if err else None}
            meta.pop("path", None)  # a machine path says nothing to a person reading the page
            return {
                "model": meta,
                "data": state.catalog(loaded).summary(),
                "explain": {"supported": ok, "reason": reason},
                "versions": state.versions(loaded),
            }

        return answer(loaded, work)

    @app.get("/versions", response_model=Versions, tags=tags, summary="Versions of the served model root",
             responses=error_responses(422, 503))
    async def versions() -> Any:
        loaded = current()
        return answer(loaded, lambda: {"root": state.root() is not None, "current": loaded.version, "versions": state.versions(loaded)})

    @app.get("/compare", response_model=Comparison, tags=tags, summary="One user's recommendations from two versions",
             responses=error_responses(404, 422, 503))
    async def compare(
        user: Annotated[str, Query(min_length=1, max_length=1024, description="External user id.")],
        a: Annotated[str, Query(min_length=1, max_length=128, description="A version of the model root.")],
        b: Annotated[str, Query(min_length=1, max_length=128, description="Another (or the same) version.")],
        k: Annotated[int, k_query, DIGITS] = 10,
    ) -> Any:
        loaded = current()

        def side(version: str) -> dict[str, Any]:
            other = state.version(version, loaded)
            m = other.model
            uid = other.users.one(user)
            if uid not in m.users_:
                raise UnknownIdError(f"{other.unknown_message('user', user)} of version {version!r}")
            ids, scores = m.recommend_one(uid, k)
            info = state.catalog(other).describe(m.items_.to_index(ids).astype(np.int64))
            for e, s in zip(info, np.asarray(scores, dtype=np.float64).tolist()):
                e["score"] = s
            return {"version": other.version, "items": info}

        def work() -> dict[str, Any]:
            sa, sb = side(a), side(b)
            in_b = {repr(e["item"]) for e in sb["items"]}
            overlap = [e["item"] for e in sa["items"] if repr(e["item"]) in in_b]
            return {"user": loaded.users.one(user), "a": sa, "b": sb, "overlap": overlap}

        return await run_in_threadpool(answer, loaded, work)  # another version may have to be loaded first

    return state


__all__ = ["STATIC", "ExplorerState", "install_explorer"]
