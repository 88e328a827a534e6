"""The one base class every recommender derives from.

The public methods do the bookkeeping once, for every model: input checks,
id mapping, unknown users, seen-item exclusion, candidate restriction,
chunking, top-k with deterministic ties, and packaging. A model implements
only ``_fit`` and ``_score`` on internal indices, plus the optional hooks
listed in the :class:`Recommender` docstring.
"""

from __future__ import annotations

import functools
import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from recsys._state_spec import INDEX_DTYPES, Array, Ids, Json, Number, Sparse, Spec, Where, check_state, merged_spec
from recsys._utils.blocks import map_blocks
from recsys._utils.params import ParamsMixin, check_choice, check_int
from recsys._utils.registry import StateCodec, register, register_codec, registered
from recsys._utils.topk import topk
from recsys.data import IdMap, Interactions, as_id_array
from recsys.errors import (
    ArtifactError,
    DataError,
    DataTypeError,
    NotFittedError,
    NotSupportedError,
    RecsysError,
    UnknownIdError,
)
from recsys.models._artifact import build_saved
from recsys.models._explain import Explanation, explanation_frame
from recsys.types import Id, IdSequence

OnUnknown = Literal["error", "skip", "popular"]
OnUnknownItems = Literal["error", "skip", "popular"]
Self = TypeVar("Self", bound="Recommender")
F = TypeVar("F", bound=Callable[..., Any])

# Methods that change a fitted model; each runs as a transaction (see ``_atomic``). Subclass
# methods with these names, or starting with ``partial_fit``, are wrapped automatically.
_ATOMIC_METHODS = frozenset({"fit", "fit_ranker", "build_index"})

# Dense score blocks are cut to about this many float32 entries (64 MiB).
_BLOCK_ENTRIES = 1 << 24


def _atomic(method: F) -> F:
    """Run ``method`` as a transaction on the model: if it raises (any ``BaseException``, a
    ``KeyboardInterrupt`` too), every attribute is bound again to the object it had before the
    call, so the model is exactly as it was (its previous fitted state, or unfitted).

    A shallow snapshot suffices because fits never change a learned object in place: they
    bind new arrays, id maps, indexes and sub-models (the contract suite checks this for every
    model with failures injected at each stage). Nested calls (``fit_ranker`` calling ``fit``)
    nest their snapshots.
    """
    if getattr(method, "_recsys_atomic", False):
        return method

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved = dict(vars(self))
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            state = vars(self)
            state.clear()
            state.update(saved)
            raise

    wrapper._recsys_atomic = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class _WithHook:
    """A public method of :class:`Recommender` that exists only on subclasses implementing ``hook``.

    On other models ``hasattr(model, name)`` is False, so callers that look for the
    method (the evaluator's rmse / mae look for ``predict``; the contract suite for
    ``partial_fit_*``) see no method rather than one that always refuses.
    """

    def __init__(self, func: Callable[..., Any], hook: str) -> None:
        self.func, self.hook = func, hook
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        cls = type(obj) if obj is not None else owner
        if cls is not None and cls is not Recommender and getattr(cls, self.hook) is getattr(Recommender, self.hook):
            raise AttributeError(f"{cls.__name__} has no {self.name}() (it does not implement {self.hook})")
        return self.func if obj is None else self.func.__get__(obj, cls)


def _with_hook(hook: str) -> Callable[[F], F]:
    """Declare a :class:`Recommender` method that only subclasses implementing ``hook`` have."""

    def wrap(func: F) -> F:
        return _WithHook(func, hook)  # type: ignore[return-value]

    return wrap


def merged_csr(
    matrix: sp.csr_matrix, rows: NDArray[np.int64], cols: NDArray[np.int64], vals: NDArray[np.float32], shape: tuple[int, int]
) -> sp.csr_matrix:
    """``matrix`` grown to ``shape`` with entries (rows, cols) set to ``vals`` (new values replace old ones).

    The one merge of new interactions into a stored users x items matrix (the
    ``partial_fit_*`` methods). Only the rows in ``rows`` are rebuilt; the runs
    of other rows between them are copied as they are (no pass over every entry
    beyond the copy). A pair given twice keeps its last value. The result has
    sorted column indices (int32), int64 row pointers and float32 values.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32))
    >>> merged_csr(m, np.array([0, 2]), np.array([0, 1]), np.array([9, 5], np.float32), (3, 3)).toarray()
    array([[9., 0., 2.],
           [0., 3., 0.],
           [0., 5., 0.]], dtype=float32)
    """
    n_rows, n_cols = shape
    indptr = np.concatenate([matrix.indptr, np.full(n_rows - matrix.shape[0], matrix.indptr[-1])]).astype(np.int64)
    touched = np.unique(rows)
    # the touched rows' old entries not set again, plus the new ones, sorted by (row, col)
    starts, stops = indptr[touched], indptr[touched + 1]
    lengths = stops - starts
    at = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(int(lengths.sum()))
    old_r = np.repeat(touched, lengths)
    old_c = matrix.indices[at].astype(np.int64)
    again = np.isin(old_r * n_cols + old_c, rows * n_cols + cols)
    r = np.concatenate([old_r[~again], rows])
    c = np.concatenate([old_c[~again], cols])
    v = np.concatenate([matrix.data[at][~again].astype(np.float32), vals.astype(np.float32)])
    order = np.lexsort((c, r))
    r, c, v = r[order], c[order], v[order]
    last = np.ones(len(r), dtype=bool)
    last[:-1] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])  # repeated new pairs (stable sort): the last one wins
    r, c, v = r[last], c[last], v[last]
    bounds = np.searchsorted(r, touched, side="left").tolist() + [len(r)]
    # pieces: untouched run before each touched row, then the row
    idx_parts: list[NDArray[Any]] = []
    val_parts: list[NDArray[Any]] = []
    prev = 0
    for j, t in enumerate(touched.tolist()):
        idx_parts += [matrix.indices[indptr[prev] : indptr[t]], c[bounds[j] : bounds[j + 1]].astype(np.int32)]
        val_parts += [matrix.data[indptr[prev] : indptr[t]], v[bounds[j] : bounds[j + 1]]]
        prev = t + 1
    idx_parts.append(matrix.indices[indptr[prev] : indptr[n_rows]])
    val_parts.append(matrix.data[indptr[prev] : indptr[n_rows]])
    counts = np.diff(indptr)
    counts[touched] = np.diff(np.asarray(bounds))
    out_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=out_ptr[1:])
    out_idx = np.concatenate(idx_parts).astype(np.int32, copy=False)
    out_val = np.concatenate(val_parts).astype(np.float32, copy=False)
    return sp.csr_matrix((out_val, out_idx, out_ptr), shape=shape)


class Recommender(ParamsMixin, ABC):
    """Base class of every recommender: fit on :class:`~recsys.Interactions`, recommend external ids.

    Subclasses store hyper-parameters in ``__init__`` (nothing else), validate
    them in ``_validate_params``, learn in ``_fit`` and score in ``_score``.
    Learned attributes end in ``_`` and are saved by :meth:`save`. The public
    methods map external ids to internal indices (``int32`` rows of ``users_``
    / ``items_``) and back; every hook works on internal indices.

    Hooks a subclass may implement (the base calls nothing else on a model):

    ``_validate_params()``
        Called by :meth:`fit` first; checks the hyper-parameters, raises ParameterError.
    ``_fit(data)`` (required)
        Called by :meth:`fit` after the shared state (``users_``, ``items_``,
        ``seen_``, popularity) is set; learns, setting attributes ending in ``_``.
    ``_score(user_idx, item_idx)`` (required)
        Called by the recommend methods in blocks of users; returns float32
        scores (users x all items, or x ``item_idx``), higher is better.
    ``_prepare()``
        Called after :meth:`fit` and after loading; derives unsaved caches from
        learned state (extensions call ``super()._prepare()``).
    ``_topk_users(user_idx, k, exclude_seen, allowed)``
        Called by :meth:`recommend` / :meth:`recommend_one` for known users;
        returns (item indices, scores), each (n, min(k, n_items)) padded with
        -1 / -inf. Override for a faster search (an ANN index); also the
        retrieval call a :class:`~recsys.models.Pipeline` makes on its retriever.
    ``_score_history(item_idx, ratings, timestamps)``
        Called by :meth:`recommend_history` (fold-in); returns the scores of
        every item for a user known only by that history. Default: NotSupportedError.
    ``_topk_history(item_idx, ratings, timestamps, k, exclude_seen, allowed)``
        Called by :meth:`recommend_history`; returns one padded top-k row
        (override for a faster search; default ranks ``_score_history``).
    ``_similar_items(item_idx)``
        Called by :meth:`similar_items`; returns similarities of the given
        items (rows) to every item. Default: NotSupportedError.
    ``_explain(user_idx, item_idx)``
        Called by :meth:`explain` with one known user and one item; returns an
        :class:`~recsys.models._explain.Explanation` of that score.
        Default: NotSupportedError.
    ``_explain_history(item_idx, ratings, timestamps, target)``
        Called by :meth:`explain_history` for a folded-in history; as
        ``_explain``. Default: NotSupportedError.
    ``_score_pairs(user_idx, item_idx)``
        Called by :meth:`score`; returns one float32 score per (user, item)
        pair. Default: ``_score`` per distinct user, in blocks.
    ``_predict_pairs(user_idx, item_idx)``
        Called by :meth:`predict`, which only models implementing it have;
        returns one float32 prediction (a rating) per pair. With
        ``predicts_unknown_ids`` an id unknown to the model arrives as -1.
    ``_check_predict()``
        Called by :meth:`predict` before reading any id; raises
        NotSupportedError when this fitted model cannot predict (default: can).
    ``_interaction_values(data, where)``
        Called by :meth:`partial_fit_users` (``where`` names the method for
        error messages); returns the float32 value stored for each row of
        ``data`` (default: ones).
    ``_stored()``
        Called by :meth:`partial_fit_users`; returns the users x items CSR of
        stored values that the new rows are merged into (default: ``seen_``).
    ``_update_users(users, stored, touched)``
        Called by :meth:`partial_fit_users`, which only models implementing it
        have, with the grown user id map, the merged stored matrix (one row
        per user of ``users``) and the sorted indices of the users in the new
        data; re-learns those users and binds the new state (everything but
        ``users_``, which the base binds after it returns).
    ``_validate_loaded_params()``
        Called when loading, before the state; checks the saved hyper-parameters
        (default: ``_validate_params``).
    ``_check_loaded_state(state, where, dims)``
        Called when loading; checks the saved arrays against ``_state_spec``
        (extend for relations a declaration cannot state); returns the bound dimensions.
    ``_restore_state(state)``
        Called when loading, after the checks; binds the saved attributes and
        calls ``_prepare``.

    Methods that change a fitted model (``fit``, ``fit_ranker``, ``build_index``
    and every ``partial_fit_*``) run as transactions: if they raise, the model
    is left as it was.

    Class attributes a subclass may set:

    ``scores_cold_items``
        True when the model can score items without train interactions
        (content models); otherwise such items are never candidates.
    ``predicts_unknown_ids``
        True when :meth:`predict` accepts ids absent from the training data
        (passed to ``_predict_pairs`` as -1); otherwise they raise UnknownIdError.
    ``_no_explanation``
        For a model without ``_explain``: why its scores cannot be split into
        parts (the :class:`~recsys.errors.NotSupportedError` of :meth:`explain` says it).
    """

    scores_cold_items: ClassVar[bool] = False
    # Score blocks of users on several threads (for scoring in GIL-free kernels that are not threaded themselves).
    _threaded_blocks: ClassVar[bool] = False
    predicts_unknown_ids: ClassVar[bool] = False
    # Why the model's scores have no faithful decomposition (said by the NotSupportedError of explain).
    _no_explanation: ClassVar[str] = ""

    # The structure of the learned state, checked on load (see recsys._state_spec); subclasses add theirs.
    _state_spec: ClassVar[dict[str, Spec]] = {
        "users_": Ids(dim="n_users"),
        "items_": Ids(dim="n_items"),
        "n_items_": Number(integer=True, equals="n_items"),
        "seen_": Sparse(shape=("n_users", "n_items")),
        "item_popularity_": Array(shape=("n_items",), dtype=("float32", "float64")),
        "cold_items_": Array(shape=(None,), dtype=INDEX_DTYPES, bounds=(0, "n_items")),
        # what the explorer page shows (recsys.serving._catalog); never used for scoring
        "item_info_": Json(types=(dict,), optional=True),
        "history_times_": Sparse(dtype=("float64",), optional=True),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # every method that changes learned state is a transaction, in third-party models too
        for name, attr in list(vars(cls).items()):
            if inspect.isfunction(attr) and (name in _ATOMIC_METHODS or name.startswith("partial_fit")):
                setattr(cls, name, _atomic(attr))
        if not inspect.isabstract(cls):
            register(cls)

    # -- hooks for subclasses ---------------------------------------------------------

    def _validate_params(self) -> None:
        """Check hyper-parameters (called by :meth:`fit`); raise ParameterError."""

    @abstractmethod
    def _fit(self, data: Interactions) -> None:
        """Learn from ``data``; set attributes ending in ``_``."""

    @abstractmethod
    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        """Scores of users (rows) for all items, or for ``item_idx`` (columns); higher is better."""

    def _score_history(
        self,
        item_idx: NDArray[np.int32],
        ratings: NDArray[np.float32] | None,
        timestamps: NDArray[Any] | None,
    ) -> NDArray[np.float32]:
        """Scores of all items for a user known only by a history (fold-in)."""
        raise NotSupportedError(f"{type(self).__name__} cannot recommend from a history (no fold-in)")

    def _similar_items(self, item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        """Similarity of the given items (rows) to every item (columns)."""
        raise NotSupportedError(f"{type(self).__name__} has no item similarity")

    def _cannot_explain(self) -> NotSupportedError:
        reason = type(self)._no_explanation
        return NotSupportedError(f"{type(self).__name__} cannot explain its scores" + (f": {reason}" if reason else ""))

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        """The parts of one known user's score for one item."""
        raise self._cannot_explain()

    def _explain_history(
        self,
        item_idx: NDArray[np.int32],
        ratings: NDArray[np.float32] | None,
        timestamps: NDArray[Any] | None,
        target: int,
    ) -> Explanation:
        """The parts of a folded-in history's score for the item ``target``."""
        if type(self)._explain is not Recommender._explain:
            raise NotSupportedError(f"{type(self).__name__} cannot explain scores of a folded-in history")
        raise self._cannot_explain()

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        """Scores of (user, item) pairs; the default scores each distinct user once, in blocks."""
        out = np.empty(len(user_idx), dtype=np.float32)
        uniq, inverse = np.unique(user_idx, return_inverse=True)
        per_block = max(1, _BLOCK_ENTRIES // max(1, self.n_items_))
        for start in range(0, len(uniq), per_block):
            block = uniq[start : start + per_block].astype(np.int32)
            s = self._score(block, None)
            sel = (inverse >= start) & (inverse < start + len(block))
            out[sel] = s[inverse[sel] - start, item_idx[sel]]
        return out

    def _predict_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        """Predictions (ratings) of (user, item) pairs; -1 marks an unknown id (with ``predicts_unknown_ids``)."""
        raise NotSupportedError(f"{type(self).__name__} has no predict()")

    def _check_predict(self) -> None:
        """Raise NotSupportedError when this fitted model cannot predict (called by predict)."""

    def _interaction_values(self, data: Interactions, where: str) -> NDArray[np.float32]:
        """The value stored for each row of ``data`` by a partial fit (default: ones)."""
        return np.ones(data.nnz, dtype=np.float32)

    def _stored(self) -> sp.csr_matrix:
        """The users x items matrix of stored values a partial fit merges new rows into."""
        return self.seen_

    def _update_users(self, users: IdMap, stored: sp.csr_matrix, touched: NDArray[np.int64]) -> None:
        """Re-learn the users ``touched`` from ``stored`` (merged) and bind the state grown to ``len(users)``."""
        raise NotSupportedError(f"{type(self).__name__} has no partial_fit_users()")

    # -- parameters and config ------------------------------------------------------

    @staticmethod
    def from_config(config: dict[str, Any]) -> Recommender:
        """Build an unfitted model from :meth:`get_config` output.

        The class is looked up among registered Recommender subclasses only;
        nothing named in a config is imported.

        Examples
        --------
        >>> from recsys.models import Popular
        >>> import json
        >>> cfg = Popular(half_life=5.0).get_config()
        >>> Recommender.from_config(json.loads(json.dumps(cfg))).get_params()
        {'half_life': 5.0}
        """
        return Recommender._build_from_config(config, Recommender, "a model")

    # -- fitting ----------------------------------------------------------------------------

    @_atomic
    def fit(self: Self, data: Interactions) -> Self:
        """Learn from ``data`` and return ``self``; a second call refits from scratch.

        A fit that raises (bad data, an invalid hyper-parameter, a failure
        inside the model, ``KeyboardInterrupt``) leaves the model exactly as
        it was before the call: still fitted on the previous data, or still
        unfitted. The same holds for ``partial_fit_*`` methods.

        Parameters
        ----------
        data : Interactions
            Training interactions.

        Raises
        ------
        ParameterError
            A hyper-parameter is invalid.

        Examples
        --------
        >>> from recsys.models import ItemKNN
        >>> from recsys.testing import tiny_interactions
        >>> model = ItemKNN(k=10).fit(tiny_interactions())
        >>> before = model.recommend_one(0, k=3)[0].tolist()
        >>> one_user = Interactions.from_arrays(["ann", "ann"], ["x", "y"])  # nothing to compare items by
        >>> try:
        ...     model.fit(one_user)
        ... except ValueError as e:
        ...     print(type(e).__name__)
        DataError
        >>> model.recommend_one(0, k=3)[0].tolist() == before
        True
        """
        if not isinstance(data, Interactions):
            raise DataTypeError(
                f"{type(self).__name__}.fit expects recsys.Interactions; got {type(data).__name__} "
                "(build one with Interactions.from_frame)"
            )
        self._validate_params()
        for name in list(self._learned_state()):
            delattr(self, name)
        self.users_ = data.users
        self.items_ = data.items
        self.n_items_ = data.n_items
        self.seen_ = data.matrix("csr", "binary")
        self.item_popularity_ = data.item_counts.astype(np.float32)
        self.cold_items_ = np.flatnonzero(data.item_counts == 0).astype(np.int32)
        self._fit(data)
        self._prepare()
        return self

    def _prepare(self) -> None:
        """Derive caches from learned state (after fit and after load); nothing here is saved."""
        excluded = np.zeros(self.n_items_, dtype=bool)
        if not self.scores_cold_items:
            excluded[self.cold_items_] = True
        self._never: NDArray[np.bool_] = excluded
        pop = np.where(excluded, -np.inf, self.item_popularity_).astype(np.float32)
        self._popular_order = topk(pop[None, :], self.n_items_)[0][0]

    def _learned_state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _validate_loaded_params(self) -> None:
        """Check the hyper-parameters of a model being loaded (those of another machine may differ: a device)."""
        self._validate_params()

    def _check_loaded_state(self, state: dict[str, Any], where: Where, dims: dict[str, int] | None = None) -> dict[str, int]:
        """Check a loaded state against the declared ``_state_spec`` (raise ArtifactError); the bound dimensions.

        A model whose arrays relate in ways a declaration cannot say extends this.
        """
        # A class that declares nothing (a user's own model) keeps its undeclared attributes unchecked
        # beyond the generic decoding checks; every built-in class declares its whole state.
        strict = all("_state_spec" in vars(k) for k in type(self).__mro__ if issubclass(k, Recommender))
        bound = check_state(merged_spec(type(self)), state, dims or {}, where, self, strict=strict)
        # cold items are exactly those without train interactions (fit and partial fits keep this)
        cold = np.flatnonzero(np.asarray(state["item_popularity_"]) == 0)
        if not np.array_equal(np.asarray(state["cold_items_"]), cold):
            raise ArtifactError(f"{where('cold_items_')}: field 'cold_items_' is not the items whose item_popularity_ is 0")
        return bound

    def _restore_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._prepare()

    @property
    def is_fitted(self) -> bool:
        return "items_" in vars(self)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(data) first.")

    # -- recommending --------------------------------------------------------------------

    def _check_k(self, k: Any, method: str) -> int:
        return check_int(method, "k", k, low=1)

    def _allowed(self, items: ArrayLike | None, exclude_items: ArrayLike | None) -> NDArray[np.bool_] | None:
        """Mask of candidate items, or None when every scorable item is a candidate."""
        if items is None and exclude_items is None:
            return None
        allowed = ~self._never
        if items is not None:
            keep = np.zeros(self.n_items_, dtype=bool)
            keep[self.items_.to_index(as_id_array(items, "items"))] = True
            allowed &= keep
        if exclude_items is not None:
            # Unknown ids can never be recommended, so excluding them needs no check.
            drop = self.items_.to_index(as_id_array(exclude_items, "exclude_items"), missing="skip")
            allowed[drop] = False
        return allowed

    def _topk_users(
        self, uidx: NDArray[np.int32], k: int, exclude_seen: bool, allowed: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Top-k internal items and scores for known users, in blocks; padded with -1 / -inf."""
        mask = self._never if allowed is None else ~allowed
        cand = None
        if allowed is not None and allowed.sum() * 2 < self.n_items_:
            cand = np.flatnonzero(allowed).astype(np.int32)  # few candidates: score only those
        n_cols = self.n_items_ if cand is None else len(cand)
        kk = min(k, self.n_items_)
        # padded: fewer candidates than k leave topk's rows shorter than kk
        ids = np.full((len(uidx), kk), -1, dtype=np.int64)
        vals = np.full((len(uidx), kk), -np.inf, dtype=np.float32)
        per_block = max(1, _BLOCK_ENTRIES // max(1, n_cols))
        indptr, indices = self.seen_.indptr, self.seen_.indices

        def one(start: int) -> None:
            block = uidx[start : start + per_block]
            s = np.array(self._score(block, cand), dtype=np.float32, copy=True)
            if s.shape != (len(block), n_cols):
                raise RecsysError(
                    f"{type(self).__name__}._score returned shape {s.shape}; expected {(len(block), n_cols)}"
                )
            # A sum is NaN when an entry is (or when +inf and -inf meet): one pass, no mask; the exact check confirms.
            if np.isnan(s.sum(dtype=np.float32)) and np.isnan(s).any():
                raise RecsysError(f"{type(self).__name__} produced NaN scores; the model is broken")
            if cand is None:
                s[:, mask] = -np.inf
                if exclude_seen:
                    if len(block) == 1:  # the single-user fast path avoids a sparse slice
                        u = block[0]
                        s[0, indices[indptr[u] : indptr[u + 1]]] = -np.inf
                    else:
                        sub = self._seen_rows(block)
                        s[np.repeat(np.arange(len(block)), np.diff(sub.indptr)), sub.indices] = -np.inf
                c, v = topk(s, kk)
            else:
                if exclude_seen:
                    seen = self.seen_[block][:, cand]
                    s[seen.nonzero()] = -np.inf
                c, v = topk(s, kk)
                c = np.where(c >= 0, cand[np.maximum(c, 0)], -1)
            ids[start : start + len(block), : c.shape[1]] = c
            vals[start : start + len(block), : c.shape[1]] = v

        # blocks write disjoint rows of ids / vals
        starts = range(0, len(uidx), per_block)
        for _ in map_blocks(one, starts, threads=None if self._threaded_blocks and len(starts) > 1 else 1):
            pass
        return ids, vals

    def _seen_rows(self, uidx: NDArray[np.int32]) -> sp.csr_matrix:
        """Rows of the seen-item matrix for the given users (one user without a sparse slice)."""
        if len(uidx) == 1:
            u = int(uidx[0])
            a, b = self.seen_.indptr[u], self.seen_.indptr[u + 1]
            return sp.csr_matrix(
                (self.seen_.data[a:b], self.seen_.indices[a:b], np.array([0, b - a])), shape=(1, self.n_items_)
            )
        return self.seen_[uidx]

    def _topk_popular(self, n_rows: int, k: int, allowed: NDArray[np.bool_] | None) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        order = self._popular_order
        if allowed is not None:
            order = order[allowed[np.maximum(order, 0)] & (order >= 0)]
        order = order[order >= 0][:k]
        ids = np.full((n_rows, min(k, self.n_items_)), -1, dtype=np.int64)
        vals = np.full(ids.shape, -np.inf, dtype=np.float32)
        ids[:, : len(order)] = order
        vals[:, : len(order)] = self.item_popularity_[order]
        return ids, vals

    def recommend(
        self,
        users: Id | IdSequence,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: ArrayLike | None = None,
        exclude_items: ArrayLike | None = None,
        on_unknown: OnUnknown = "error",
    ) -> pd.DataFrame:
        """Top-``k`` recommendations for users known at fit time.

        Parameters
        ----------
        users : id or sequence of ids
            External user ids (no repeats).
        k : int, default 10
            Length of each list; a list is shorter when fewer candidates remain.
        exclude_seen : bool, default True
            Never recommend items the user interacted with in the training data.
        items : sequence of ids, optional
            Restrict candidates to these items (unknown ids are an error).
        exclude_items : sequence of ids, optional
            Never recommend these items (unknown ids are ignored).
        on_unknown : {"error", "skip", "popular"}
            Users not in the training data: raise :class:`UnknownIdError`
            (listing the first few), leave them out, or give them the most
            popular candidates (score = train interaction count).

        Returns
        -------
        pandas.DataFrame
            Columns ``user, item, score, rank``: external ids, rank 1..k,
            scores non-increasing within a user, ties broken by the lower
            internal item index. Users keep the order given.

        Notes
        -----
        Items without any train interaction are never recommended, except by
        models that can score them (``scores_cold_items``, e.g. content models).

        Examples
        --------
        >>> from recsys.models import Popular
        >>> from recsys.testing import tiny_interactions
        >>> model = Popular().fit(tiny_interactions())
        >>> model.recommend([0, 1], k=2).columns.tolist()
        ['user', 'item', 'score', 'rank']
        """
        self._check_fitted()
        k = self._check_k(k, "recommend")
        check_choice("recommend", "on_unknown", on_unknown, ("error", "skip", "popular"))
        query = as_id_array(users, "users")
        if len(query) and pd.Index(query).has_duplicates:
            dup = pd.Index(query)[pd.Index(query).duplicated()][0]
            raise DataError(f"users must not repeat; {dup!r} appears more than once")
        uidx = self.users_.to_index(query, missing="negative")
        unknown = uidx < 0
        if unknown.any() and on_unknown == "error":
            raise self.users_.unknown_error(query[unknown])
        allowed = self._allowed(items, exclude_items)
        kk = min(k, self.n_items_)
        ids = np.full((len(query), kk), -1, dtype=np.int64)
        vals = np.full((len(query), kk), -np.inf, dtype=np.float32)
        known = np.flatnonzero(~unknown)
        ids[known], vals[known] = self._topk_users(uidx[known], k, exclude_seen, allowed)
        if unknown.any() and on_unknown == "popular":
            unk = np.flatnonzero(unknown)
            ids[unk], vals[unk] = self._topk_popular(len(unk), k, allowed)
        valid = ids >= 0
        counts = valid.sum(axis=1)
        return pd.DataFrame(
            {
                "user": np.repeat(query, counts),
                "item": self.items_.to_ids(ids[valid]),
                "score": vals[valid],
                "rank": np.broadcast_to(np.arange(1, kk + 1), ids.shape)[valid],
            }
        )

    def recommend_one(
        self,
        user: Id,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: ArrayLike | None = None,
        exclude_items: ArrayLike | None = None,
        on_unknown: OnUnknown = "error",
    ) -> tuple[NDArray[Any], NDArray[np.float32]]:
        """Fast path for one user: ``(item_ids, scores)`` as numpy arrays, best first.

        Same rules as :meth:`recommend` (and the same results), without
        building a DataFrame; ``on_unknown="skip"`` returns empty arrays.

        Examples
        --------
        >>> from recsys.models import Popular
        >>> from recsys.testing import tiny_interactions
        >>> ids, scores = Popular().fit(tiny_interactions()).recommend_one(0, k=3)
        >>> len(ids), bool(scores[0] >= scores[-1])
        (3, True)
        """
        self._check_fitted()
        k = self._check_k(k, "recommend_one")
        check_choice("recommend_one", "on_unknown", on_unknown, ("error", "skip", "popular"))
        try:
            u = self.users_.index_of(user)
        except UnknownIdError:
            if on_unknown == "error":
                raise
            if on_unknown == "skip":
                return self.items_.ids[:0], np.empty(0, dtype=np.float32)
            ids, vals = self._topk_popular(1, k, self._allowed(items, exclude_items))
        else:
            ids, vals = self._topk_users(
                np.array([u], dtype=np.int32), k, exclude_seen, self._allowed(items, exclude_items)
            )
        row = ids[0]
        n = int((row >= 0).sum())
        return self.items_.ids[row[:n]], vals[0, :n]

    def recommend_history(
        self,
        items: ArrayLike,
        k: int = 10,
        *,
        ratings: ArrayLike | None = None,
        timestamps: ArrayLike | None = None,
        exclude_seen: bool = True,
        candidates: ArrayLike | None = None,
        exclude_items: ArrayLike | None = None,
        on_unknown_items: OnUnknownItems = "error",
    ) -> tuple[NDArray[Any], NDArray[np.float32]]:
        """Recommend for a user absent from the training data, from their item history (fold-in).

        Parameters
        ----------
        items : sequence of ids
            The user's history (external item ids).
        ratings, timestamps : sequence, optional
            Aligned with ``items``, for models that use them. Ratings must be
            finite as float32; timestamps are read as those of
            :meth:`Interactions.from_frame` (errors name the first bad position).
        exclude_seen : bool, default True
            Never recommend the history's items.
        candidates, exclude_items : sequence of ids, optional
            As ``items`` / ``exclude_items`` of :meth:`recommend`.
        on_unknown_items : {"error", "skip", "popular"}
            History items the model does not know: raise
            :class:`UnknownIdError`, or leave them out. A history with nothing
            to fold in (empty, every item unknown and left out, or only items
            without train interactions for a model that cannot score those)
            says nothing about the user: ``"popular"`` then returns the most
            popular candidates (score = train interaction count, as
            ``recommend(..., on_unknown="popular")``); ``"error"`` and
            ``"skip"`` raise :class:`DataError`.

        Returns
        -------
        (item_ids, scores) : tuple of numpy arrays

        Raises
        ------
        NotSupportedError
            The model cannot fold in a new user.
        DataError
            Nothing to fold in (see ``on_unknown_items``), or ratings that are
            not finite numbers.

        Examples
        --------
        >>> from recsys.models import ItemKNN
        >>> from recsys.testing import tiny_interactions
        >>> model = ItemKNN(k=10).fit(tiny_interactions())
        >>> ids, scores = model.recommend_history(["nobody-knows-me"], k=2, on_unknown_items="popular")
        >>> scores.tolist() == sorted(model.item_popularity_.tolist(), reverse=True)[:2]
        True
        """
        self._check_fitted()
        k = self._check_k(k, "recommend_history")
        check_choice("recommend_history", "on_unknown_items", on_unknown_items, ("error", "skip", "popular"))
        hist = as_id_array(items, "items")
        r_all = None if ratings is None else _history_ratings(ratings, len(hist))
        t_all = None if timestamps is None else _history_timestamps(timestamps, len(hist))
        idx = self.items_.to_index(hist, missing="negative")
        if (idx < 0).any() and on_unknown_items == "error":
            raise self.items_.unknown_error(hist[idx < 0])
        keep = idx >= 0
        allowed = self._allowed(candidates, exclude_items)
        idx = idx[keep]
        if not (~self._never[idx]).any():
            # nothing the model learned from: any ranking would be arbitrary (all scores equal)
            if on_unknown_items != "popular":
                raise DataError(_empty_history_message(len(hist), len(idx)))
            c, v = self._topk_popular(1, k, allowed)
            c, v = c[0], v[0]
        else:
            r = None if r_all is None else r_all[keep]
            t = None if t_all is None else t_all[keep]
            c, v = self._topk_history(idx, r, t, k, exclude_seen, allowed)
        n = int((c >= 0).sum())
        return self.items_.ids[c[:n]], v[:n]

    def _topk_history(
        self,
        item_idx: NDArray[np.int32],
        ratings: NDArray[np.float32] | None,
        timestamps: NDArray[Any] | None,
        k: int,
        exclude_seen: bool,
        allowed: NDArray[np.bool_] | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Top-k internal items and scores (1-D, padded with -1 / -inf) for a folded-in history."""
        s = np.array(self._score_history(item_idx, ratings, timestamps), dtype=np.float32, copy=True).reshape(1, -1)
        if s.shape[1] != self.n_items_:
            raise RecsysError(f"{type(self).__name__}._score_history returned {s.shape[1]} scores; expected {self.n_items_}")
        s[0, self._never if allowed is None else ~allowed] = -np.inf
        if exclude_seen:
            s[0, item_idx] = -np.inf
        c, v = topk(s, k)
        return c[0], v[0]

    def similar_items(self, items: Id | IdSequence, k: int = 10) -> pd.DataFrame:
        """The ``k`` items most similar to each given item (the item itself excluded).

        Returns
        -------
        pandas.DataFrame
            Columns ``item, similar_item, score, rank``.

        Raises
        ------
        NotSupportedError
            The model has no item similarity.
        """
        self._check_fitted()
        k = self._check_k(k, "similar_items")
        query = as_id_array(items, "items")
        idx = self.items_.to_index(query)
        s = np.array(self._similar_items(idx), dtype=np.float32, copy=True)
        s[:, self._never] = -np.inf
        s[np.arange(len(idx)), idx] = -np.inf
        c, v = topk(s, k)
        valid = c >= 0
        return pd.DataFrame(
            {
                "item": np.repeat(query, valid.sum(axis=1)),
                "similar_item": self.items_.to_ids(c[valid]),
                "score": v[valid],
                "rank": np.broadcast_to(np.arange(1, c.shape[1] + 1), c.shape)[valid],
            }
        )

    def explain(self, user: Id, item: Id, top: int = 5) -> pd.DataFrame:
        """Why ``user`` gets ``item``: the parts of its score, largest first.

        Parameters
        ----------
        user, item : id
            A user and an item known at fit time.
        top : int, default 5
            How many sources (history items, or neighbour users) to list; the
            others are summed into one ``rest`` row.

        Returns
        -------
        pandas.DataFrame
            Columns ``kind, id, contribution`` plus model-specific detail
            columns. ``kind`` is ``"item"`` (a history item), ``"user"`` (a
            neighbour), ``"attention"`` (a history item's attention weight: an
            approximation, not a part of the score), ``"rest"`` (the sources
            not listed) or the name of a term no source carries (``"bias"``,
            ``"baseline"``, ...). Sources are ordered by the magnitude of their
            contribution. ``frame.attrs`` holds ``score`` (the score
            ``recommend`` ranks by), ``exact`` (whether ``contribution`` sums
            to ``score``), ``model`` and ``n_sources``.

        Raises
        ------
        NotSupportedError
            The model has no faithful decomposition of its scores (the
            message says why).
        UnknownIdError
            The user or item is not known to the model.

        Notes
        -----
        Which parts a model reports: ItemKNN ``x_uj sim(j, i)``; EASE,
        SessionEASE and SparseEASE ``x_uj B_ji``; ALS the Hu-Koren-Volinsky
        parts ``c_uj y_iᵀ W_u y_j`` (plus ``residual``, how far a fitted
        user vector is from that solve); ContentBased profile weight x
        cosine; SVDpp the implicit-feedback parts (plus ``baseline`` and
        ``user_factor``); UserKNN the neighbours (kind ``"user"``);
        Hybrid and Blend each model's parts scaled by its weight and its
        normalisation, merged per source (one column per model with its
        share; terms ``"<model>.<term>"``); Popular one ``popularity`` term.
        The explicit-feedback neighbourhood models add ``baseline`` and,
        where the prediction was clipped to the rating range, ``clip``.
        DIN lists its attention weights over the history (kind
        ``"attention"``, ``exact`` False); BPR, DeepFM and Pipeline raise
        NotSupportedError.

        Examples
        --------
        >>> from recsys.models import EASE
        >>> from recsys.testing import tiny_interactions
        >>> model = EASE(reg=10.0).fit(tiny_interactions())
        >>> items, scores = model.recommend_one(0, k=1)
        >>> why = model.explain(0, items[0], top=3)
        >>> why.round(3)
           kind    id  contribution  weight  value
        0  item    10         0.120   0.120    1.0
        1  item     0         0.075   0.075    1.0
        2  item    24         0.059   0.059    1.0
        3  rest  None         0.226     NaN    NaN
        >>> bool(abs(why["contribution"].sum() - scores[0]) < 1e-5), why.attrs["n_sources"]
        (True, 11)
        """
        self._check_fitted()
        top = check_int("explain", "top", top, low=1)
        u = self.users_.index_of(user)
        i = self.items_.index_of(item)
        return explanation_frame(self._explain(u, i), top, self.items_, self.users_, type(self).__name__)

    def explain_history(
        self,
        items: ArrayLike,
        item: Id,
        top: int = 5,
        *,
        ratings: ArrayLike | None = None,
        timestamps: ArrayLike | None = None,
    ) -> pd.DataFrame:
        """Why a user known only by ``items`` (fold-in) gets ``item``; as :meth:`explain`.

        The parts sum to the score :meth:`recommend_history` gives ``item`` for
        the same history.

        Parameters
        ----------
        items : sequence of ids
            The history (known items; repeats count as in :meth:`recommend_history`).
        item : id
            The item whose score is explained.
        top : int, default 5
            How many sources to list; the others are summed into one ``rest`` row.
        ratings, timestamps : array-like, optional
            As for :meth:`recommend_history`.

        Returns
        -------
        pandas.DataFrame
            As :meth:`explain`.

        Raises
        ------
        NotSupportedError
            The model cannot explain (or cannot fold in).
        UnknownIdError
            A history item or ``item`` is not known to the model.
        DataError
            The history is empty.

        Examples
        --------
        >>> from recsys.models import EASE
        >>> from recsys.testing import tiny_interactions
        >>> model = EASE(reg=10.0).fit(tiny_interactions())
        >>> why = model.explain_history([0, 2, 4], 6, top=2)
        >>> why.round(3)
           kind    id  contribution  weight  value
        0  item     2         0.046   0.046    1.0
        1  item     0         0.004   0.004    1.0
        2  rest  None         0.001     NaN    NaN
        >>> ids, scores = model.recommend_history([0, 2, 4], k=32)
        >>> bool(abs(why["contribution"].sum() - scores[list(ids).index(6)]) < 1e-5)
        True
        """
        self._check_fitted()
        top = check_int("explain_history", "top", top, low=1)
        hist = as_id_array(items, "items")
        if len(hist) == 0:
            raise DataError("explain_history needs at least one history item; got none")
        idx = self.items_.to_index(hist)
        r = None if ratings is None else _history_ratings(ratings, len(hist))
        t = None if timestamps is None else _history_timestamps(timestamps, len(hist))
        target = self.items_.index_of(item)
        exp = self._explain_history(idx, r, t, target)
        return explanation_frame(exp, top, self.items_, self.users_, type(self).__name__)

    def score(self, users: ArrayLike, items: ArrayLike) -> NDArray[np.float32]:
        """Scores of (user, item) pairs given as two equal-length sequences of external ids.

        Raises
        ------
        UnknownIdError
            A user or item is not in the training data.

        Examples
        --------
        >>> import pandas as pd
        >>> from recsys import Interactions
        >>> from recsys.models import Popular
        >>> data = Interactions.from_frame(pd.DataFrame({"user": [1, 2, 2], "item": ["a", "a", "b"]}))
        >>> Popular().fit(data).score([1, 2], ["a", "b"]).tolist()
        [2.0, 1.0]
        """
        self._check_fitted()
        uidx, iidx = self._pair_index(users, items)
        return np.asarray(self._score_pairs(uidx, iidx), dtype=np.float32)

    def _pair_index(
        self, users: ArrayLike, items: ArrayLike, missing: Literal["error", "negative"] = "error"
    ) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Internal indices of (user, item) pairs given as two equal-length sequences of external ids.

        ``missing="error"`` raises UnknownIdError for an unknown id (users checked
        first); ``"negative"`` maps it to -1. The one pair mapping of :meth:`score`,
        :meth:`predict` and subclasses' pair methods.
        """
        u = as_id_array(users, "users")
        i = as_id_array(items, "items")
        if len(u) != len(i):
            raise DataError(f"users and items must have the same length; got {len(u)} and {len(i)}")
        return self.users_.to_index(u, missing=missing), self.items_.to_index(i, missing=missing)

    @_with_hook("_predict_pairs")
    def predict(self, users: ArrayLike, items: ArrayLike) -> NDArray[np.float32]:
        """Predicted ratings of (user, item) pairs given as two equal-length sequences of external ids.

        Only models that predict ratings have this method (the explicit k-NN
        models, SVD++); on the others ``hasattr(model, "predict")`` is False.
        What a prediction is (and whether it is clipped to the training rating
        range) is documented by each model.

        Parameters
        ----------
        users, items : sequences of ids of equal length

        Returns
        -------
        numpy.ndarray of float32, one value per pair

        Raises
        ------
        NotSupportedError
            This fitted model cannot predict (e.g. a k-NN model built with
            ``feedback="implicit"``).
        UnknownIdError
            A user or item is not in the training data (models with
            ``predicts_unknown_ids`` answer for those instead).
        DataError
            ``users`` and ``items`` differ in length.

        Examples
        --------
        >>> from recsys.models import ItemKNN, Popular
        >>> from recsys.testing import tiny_interactions
        >>> model = ItemKNN(k=10, feedback="explicit").fit(tiny_interactions())
        >>> model.predict([0, 1], [2, 3]).shape
        (2,)
        >>> hasattr(Popular(), "predict")
        False
        """
        self._check_fitted()
        self._check_predict()
        uidx, iidx = self._pair_index(users, items, "negative" if self.predicts_unknown_ids else "error")
        out = np.asarray(self._predict_pairs(uidx, iidx), dtype=np.float32)
        if out.shape != uidx.shape:
            raise RecsysError(f"{type(self).__name__}._predict_pairs returned shape {out.shape}; expected {uidx.shape}")
        return out

    @_with_hook("_update_users")
    @_atomic
    def partial_fit_users(self: Self, data: Interactions) -> Self:
        """Learn new interactions of known users, or new users, keeping every item parameter fixed.

        Each user in ``data`` gets the union of their stored interactions and
        the new ones (a new value for an already stored (user, item) pair
        replaces it); the model then re-learns those users only (how is
        documented by each model). Users absent from the model are added.
        Nothing else changes: other users, item parameters and item
        statistics (such as the popularity behind ``on_unknown="popular"``)
        stay as they are. Only models that can update users have this method.
        Like :meth:`fit`, a call that raises leaves the model as it was.

        Parameters
        ----------
        data : Interactions
            New interactions; every item must be known to the model.

        Returns
        -------
        self

        Raises
        ------
        DataTypeError
            ``data`` is not an Interactions.
        UnknownIdError
            An item is not known to the model.

        Examples
        --------
        >>> import pandas as pd
        >>> from recsys.models import ALS
        >>> from recsys.testing import tiny_interactions
        >>> model = ALS(n_factors=4, num_threads=1, show_progress=False).fit(tiny_interactions())
        >>> new = Interactions.from_frame(pd.DataFrame({"user": ["ann", "ann"], "item": [1, 2]}))
        >>> model.partial_fit_users(new).recommend_one("ann", k=2)[0].shape
        (2,)
        """
        vals, ext_users, ext_items = self._partial_input(data, "partial_fit_users")
        item_idx = self.items_.to_index(ext_items).astype(np.int64)  # an unknown item raises UnknownIdError
        users = self.users_.extend(ext_users)
        user_idx = users.to_index(ext_users).astype(np.int64)
        stored = merged_csr(self._stored(), user_idx, item_idx, vals, (len(users), self.n_items_))
        self._update_users(users, stored, np.unique(user_idx))
        self.users_ = users
        return self

    def _partial_input(self, data: Any, method: str) -> tuple[NDArray[np.float32], NDArray[Any], NDArray[Any]]:
        """What a partial fit (``method``) learns from ``data``, checked: each row's stored value
        (:meth:`_interaction_values`), external user id and external item id."""
        self._check_fitted()
        if not isinstance(data, Interactions):
            raise DataTypeError(
                f"{type(self).__name__}.{method} expects recsys.Interactions; got {type(data).__name__} "
                "(build one with Interactions.from_frame)"
            )
        vals = self._interaction_values(data, method)
        return vals, data.users.ids[data.user_index], data.items.ids[data.item_index]

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Save to the artifact directory ``path`` (atomic; no pickle). See :func:`recsys.persistence.save_model`.

        ``path`` must be missing, an empty directory, or a recsys artifact, which
        is replaced unless ``overwrite=False``; anything else there is refused
        with :class:`~recsys.errors.ArtifactError` and left untouched.
        """
        from recsys.persistence import save_model

        return save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls: type[Self], path: str | os.PathLike[str], *, mmap: bool = True) -> Self:
        """Load an artifact saved by :meth:`save`, checking it holds a ``cls``."""
        from recsys.persistence import load_model

        model = load_model(path, mmap=mmap)
        if not isinstance(model, cls):
            from recsys.errors import ArtifactError

            raise ArtifactError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def _history_ratings(values: ArrayLike, n: int) -> NDArray[np.float32]:
    """Ratings of a history: numbers, finite as float32; errors name the first bad position."""
    from recsys.data._validation import check_numeric

    _aligned(values, n, "ratings")
    return check_numeric(values, "ratings")


def _history_timestamps(values: ArrayLike, n: int) -> NDArray[Any]:
    """Timestamps of a history, parsed as training timestamps are (datetimes: int64 nanoseconds)."""
    from recsys.data._validation import check_timestamps

    _aligned(values, n, "timestamps")
    return check_timestamps(values, "timestamps")[0]


def _empty_history_message(n_given: int, n_known: int) -> str:
    if n_given == 0:
        what = "the history is empty"
    elif n_known == 0:
        what = f"none of the history's {n_given} items is known to the model (all skipped)"
    else:
        what = f"the history's {n_known} known items have no train interactions"
    return (
        f"recommend_history: {what}, so nothing can be folded in; "
        "pass on_unknown_items='popular' to get the most popular items instead"
    )


def _aligned(values: ArrayLike, n: int, name: str) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise DataError(f"{name} must align with items: expected {n} values, got shape {arr.shape}")
    return arr


# How artifacts store a model: config in the manifest (or beside a nested model), learned state checked then restored.
register_codec(StateCodec(
    "__model__", Recommender, "state", lambda m: m.get_config(), lambda m: m._learned_state(), build_saved, "a nested model"
))


def registered_models() -> dict[str, type[Recommender]]:
    """Every concrete Recommender subclass defined so far, by class path."""
    return {p: c for p, c in registered().items() if issubclass(c, Recommender)}


__all__ = ["Recommender", "OnUnknown", "merged_csr", "registered_models"]
