"""What the explorer page shows besides scores: item titles and genres, and each user's history, newest first.

A model scores items by index; a person reads titles. :func:`keep_explorer_data` stores two optional
attributes on a fitted model, saved with its artifact like any learned state (hashed, memory-mapped):

* ``item_info_``: ``{"title": [...], "genres": [[...], ...]}``, one entry per item index, from the
  data's item features (the MovieLens loaders and the synthetic data set provide both);
* ``history_times_``: a users x items CSR of the latest interaction time of each (user, item) pair,
  so a history can be shown newest first (about 12 bytes per distinct pair).

Neither is used for scoring. :class:`Catalog` reads them back (or takes them from an
:class:`~recsys.Interactions` given at run time) and answers the page's questions: titles of some
items, a user's history, items and users matching a search. No fastapi here: ``recsys fit`` uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

if TYPE_CHECKING:
    from recsys.data import IdMap, Interactions
    from recsys.models.base import Recommender

#: The item feature columns the page shows (others are not copied into the artifact).
INFO_COLUMNS = ("title", "genres")


def _text_list(values: Any) -> list[str]:
    """A feature cell as a list of strings (a list column, one string, or missing)."""
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    try:
        return [str(v) for v in values if v is not None and v == v]
    except TypeError:  # a scalar such as NaN or a number
        return [] if values != values else [str(values)]


def item_info(data: Interactions, items: IdMap | None = None) -> dict[str, list[Any]] | None:
    """Titles and genres of ``data``'s item features, one entry per index of ``items`` (default ``data.items``).

    Returns None when the features have neither column. Items absent from ``data`` get ``None`` / ``[]``.

    Examples
    --------
    >>> from recsys.datasets import synthetic
    >>> data = synthetic(20, 10, 100, seed=1)
    >>> info = item_info(data)
    >>> sorted(info), len(info["title"]) == data.n_items
    (['genres', 'title'], True)
    """
    frame = data.item_features
    if frame is None or not any(c in frame.columns for c in INFO_COLUMNS):
        return None
    target = data.items if items is None else items
    pos = target.to_index(data.items.ids, missing="negative")  # data index -> target index (-1: not in target)
    out: dict[str, list[Any]] = {}
    if "title" in frame.columns:
        titles: list[str | None] = [None] * len(target)
        for p, t in zip(pos.tolist(), frame["title"].tolist()):
            if p >= 0 and t is not None and t == t:
                titles[p] = str(t)
        out["title"] = titles
    if "genres" in frame.columns:
        genres: list[list[str]] = [[] for _ in range(len(target))]
        for p, g in zip(pos.tolist(), frame["genres"].tolist()):
            if p >= 0:
                genres[p] = _text_list(g)
        out["genres"] = genres
    return out


def history_times(data: Interactions, users: IdMap | None = None, items: IdMap | None = None) -> sp.csr_matrix | None:
    """The latest time of each (user, item) pair of ``data`` as a users x items CSR (float64); None without timestamps.

    Times are ``data.timestamps`` (seconds for datetime columns). Rows and columns follow ``users`` and
    ``items`` (default ``data``'s own maps); pairs whose user or item is not in them are dropped.

    Examples
    --------
    >>> from recsys import Interactions
    >>> d = Interactions.from_arrays(["a", "a", "b"], [1, 2, 1], timestamps=[9, 7, 5])
    >>> history_times(d).toarray().tolist()
    [[9.0, 7.0], [5.0, 0.0]]
    """
    if data.timestamps is None:
        return None
    users = data.users if users is None else users
    items = data.items if items is None else items
    u = users.to_index(data.users.ids, missing="negative")[data.user_index].astype(np.int64)
    i = items.to_index(data.items.ids, missing="negative")[data.item_index].astype(np.int64)
    t = np.asarray(data.timestamps).astype(np.float64)
    if data.timestamp_unit == "ns":
        t = t / 1e9
    keep = (u >= 0) & (i >= 0)
    u, i, t = u[keep], i[keep], t[keep]
    key = u * len(items) + i
    order = np.lexsort((t, key))
    key, t = key[order], t[order]
    last = np.r_[key[1:] != key[:-1], True] if len(key) else np.zeros(0, dtype=bool)  # the latest time of each pair
    key, t = key[last], t[last]
    m = sp.csr_matrix((t, (key // len(items), key % len(items))), shape=(len(users), len(items)), dtype=np.float64)
    m.sort_indices()
    return m


def keep_explorer_data(model: Recommender, data: Interactions) -> Recommender:
    """Store ``data``'s item titles/genres and interaction times on the fitted ``model`` (saved with it).

    ``model`` must have been fitted on ``data`` (or a split of it: ids are matched, not positions).
    Attributes are set only when the data has them; nothing about scoring changes.

    Examples
    --------
    >>> from recsys.datasets import synthetic
    >>> from recsys.models import ItemKNN
    >>> data = synthetic(30, 20, 300, seed=1)
    >>> model = keep_explorer_data(ItemKNN(k=5).fit(data), data)
    >>> len(model.item_info_["title"]), model.history_times_.shape == (data.n_users, data.n_items)
    (20, True)
    """
    info = item_info(data, model.items_)
    if info is not None:
        model.item_info_ = info  # type: ignore[attr-defined]
    times = history_times(data, model.users_, model.items_)
    if times is not None:
        model.history_times_ = times  # type: ignore[attr-defined]
    return model


@dataclass
class Catalog:
    """Titles, genres and histories of one model's items and users, indexed like the model.

    Build it with :meth:`of_model` (what the artifact holds, else the model's seen items without
    order) or :meth:`of_data` (an :class:`~recsys.Interactions` given at run time).

    Examples
    --------
    >>> from recsys.datasets import synthetic
    >>> from recsys.models import ItemKNN
    >>> data = synthetic(30, 20, 300, seed=1)
    >>> cat = Catalog.of_data(ItemKNN(k=5).fit(data), data)
    >>> items, times, n = cat.history(0)
    >>> bool((times[:-1] >= times[1:]).all()), n == len(items)
    (True, True)
    >>> [d["title"] for d in cat.describe(items[:1])] == [data.item_features["title"][items[0]]]
    True
    """

    model: Recommender
    titles: list[str | None] | None = None
    genres: list[list[str]] | None = None
    times: sp.csr_matrix | None = None
    source: str = "model"
    _search: list[str] | None = field(default=None, repr=False)
    _user_text: list[str] | None = field(default=None, repr=False)

    @classmethod
    def of_model(cls, model: Recommender) -> Catalog:
        info = getattr(model, "item_info_", None)
        times = getattr(model, "history_times_", None)
        return cls._build(model, info if isinstance(info, dict) else None, times, "artifact")

    @classmethod
    def of_data(cls, model: Recommender, data: Interactions) -> Catalog:
        return cls._build(model, item_info(data, model.items_), history_times(data, model.users_, model.items_), "data")

    @classmethod
    def _build(cls, model: Recommender, info: dict[str, Any] | None, times: Any, source: str) -> Catalog:
        n_items, n_users = int(model.n_items_), len(model.users_)
        titles = genres = None
        if info is not None:  # kept only when it lines up with this model (a partial fit may have added items)
            t, g = info.get("title"), info.get("genres")
            titles = t if isinstance(t, list) and len(t) == n_items else None
            genres = g if isinstance(g, list) and len(g) == n_items else None
        if not (sp.issparse(times) and times.shape == (n_users, n_items)):
            times = None
        has = titles is not None or genres is not None or times is not None
        return cls(model=model, titles=titles, genres=genres, times=times, source=source if has else "model")

    # -- items -------------------------------------------------------------------------------

    def describe(self, idx: NDArray[np.int64]) -> list[dict[str, Any]]:
        """``{item, title, genres}`` of item indices (title None and genres [] when unknown)."""
        ids = np.asarray(self.model.items_.to_ids(idx)).tolist()
        out = []
        for p, i in zip(np.asarray(idx).tolist(), ids):
            out.append({
                "item": i,
                "title": self.titles[p] if self.titles is not None else None,
                "genres": list(self.genres[p]) if self.genres is not None else [],
            })
        return out

    def search_items(self, query: str, limit: int) -> NDArray[np.int64]:
        """Item indices whose id or title contains ``query`` (case-insensitive): exact id, then prefixes, then the rest."""
        if self._search is None:
            ids = [str(i) for i in self.model.items_.ids.tolist()]
            titles = self.titles or [None] * len(ids)
            self._search = [f"{i}\x00{t or ''}".casefold() for i, t in zip(ids, titles)]
        q = query.casefold()
        exact, prefix, inner = [], [], []
        for p, text in enumerate(self._search):
            if q not in text:
                continue
            ident, _, title = text.partition("\x00")
            if ident == q:
                exact.append(p)
            elif ident.startswith(q) or title.startswith(q):
                prefix.append(p)
            else:
                inner.append(p)
            if len(exact) + len(prefix) >= limit:
                break
        return np.asarray((exact + prefix + inner)[:limit], dtype=np.int64)

    # -- users -------------------------------------------------------------------------------

    def search_users(self, query: str, limit: int) -> list[Any]:
        """User ids whose text starts with ``query`` (exact match first)."""
        if self._user_text is None:
            self._user_text = [str(u) for u in self.model.users_.ids.tolist()]
        q = query.casefold()
        ids = self.model.users_.ids
        exact = [p for p, t in enumerate(self._user_text) if t.casefold() == q]
        rest = [p for p, t in enumerate(self._user_text) if t.casefold().startswith(q) and t.casefold() != q][: limit]
        return np.asarray(ids[np.asarray((exact + rest)[:limit], dtype=np.int64)]).tolist()  # type: ignore[no-any-return]

    def history(self, user_idx: int) -> tuple[NDArray[np.int64], NDArray[np.float64] | None, int]:
        """A user's items newest first (by index when there are no times), their times, and the total count."""
        if self.times is not None:
            lo, hi = self.times.indptr[user_idx], self.times.indptr[user_idx + 1]  # a row by hand: scipy's indexing is slower
            items, t = self.times.indices[lo:hi].astype(np.int64), self.times.data[lo:hi].astype(np.float64)
            order = np.lexsort((items, -t))
            return items[order], t[order], len(items)
        seen = self.model.seen_
        items = np.asarray(seen.indices[seen.indptr[user_idx] : seen.indptr[user_idx + 1]], dtype=np.int64)
        return items, None, len(items)

    def summary(self) -> dict[str, Any]:
        seen = self.model.seen_
        n_users, n_items = seen.shape
        return {
            "n_users": int(n_users),
            "n_items": int(n_items),
            "n_interactions": int(seen.nnz),
            "density": float(seen.nnz / max(1, n_users * n_items)),
            "titles": self.titles is not None,
            "genres": self.genres is not None,
            "history_order": "newest first" if self.times is not None else "unknown (no timestamps kept)",
            "source": self.source,
        }


__all__ = ["INFO_COLUMNS", "Catalog", "history_times", "item_info", "keep_explorer_data"]
