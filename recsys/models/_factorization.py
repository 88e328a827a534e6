"""What ALS and BPR share: one vector per user and per item, their public accessors, and the
bookkeeping of partial fits (:meth:`_Factorization.partial_fit_items`, and the user side of
:meth:`~recsys.models.base.Recommender.partial_fit_users`).

A concrete model supplies its solves through the hooks of :class:`_Factorization`
(``_solve_users``, ``_solve_items``, ``_stored``/``_store``...); the score is the
dot product of the vectors, and retrieval goes through the shared
:class:`~recsys.index.ItemIndex`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar, overload

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from recsys._state_spec import Array, Spec
from recsys.data import IdMap, Interactions, as_id_array
from recsys.models._embedding import EmbeddingRecommender
from recsys.models.base import merged_csr

Self = TypeVar("Self", bound="_Factorization")


class FactorVectors(NamedTuple):
    """External ids and the vectors of a factor model, row ``r`` belonging to ``ids[r]``."""

    ids: NDArray[Any]
    vectors: NDArray[np.float32]

    def to_frame(self, name: str = "id") -> pd.DataFrame:
        """A DataFrame indexed by id (index named ``name``), columns ``f0 ... f{d-1}``."""
        cols = [f"f{j}" for j in range(self.vectors.shape[1])]
        return pd.DataFrame(self.vectors, index=pd.Index(self.ids, name=name), columns=cols)


class _Factorization(EmbeddingRecommender):
    """User and item factor matrices, public vectors, and the bookkeeping of partial fits."""

    _state_spec: ClassVar[dict[str, Spec]] = {
        "user_factors_": Array(shape=("n_users", "factors")),
        "item_factors_": Array(shape=("n_items", "factors")),
    }

    user_factors_: NDArray[np.float32]
    item_factors_: NDArray[np.float32]
    seed: int

    # -- vectors ----------------------------------------------------------------------

    def _user_vectors(self, user_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return self.user_factors_[user_idx]

    def _item_vectors(self) -> NDArray[np.float32]:
        return self.item_factors_

    @overload
    def user_vectors(self, users: ArrayLike | None = ..., *, as_frame: Literal[False] = ...) -> FactorVectors: ...
    @overload
    def user_vectors(self, users: ArrayLike | None = ..., *, as_frame: Literal[True]) -> pd.DataFrame: ...

    def user_vectors(self, users: ArrayLike | None = None, *, as_frame: bool = False) -> FactorVectors | pd.DataFrame:
        """The users' vectors with their external ids.

        ``user_vectors().vectors @ item_vectors().vectors.T`` are the model's
        scores. Users without interactions have a vector that scores every
        item alike (ALS: zeros; BPR: zeros but the constant 1 of the bias column).

        Parameters
        ----------
        users : sequence of ids, optional
            Only these users, in this order (unknown ids raise
            :class:`~recsys.errors.UnknownIdError`); default every user.
        as_frame : bool, default False
            Return a DataFrame indexed by user id, columns ``f0 ... f{d-1}``.

        Returns
        -------
        FactorVectors or pandas.DataFrame
            ``(ids, vectors)``: ids (n,) and float32 vectors (n, d), a copy.
        """
        self._check_fitted()
        idx, ids = self._select(self.users_, users, "users")
        out = FactorVectors(ids, np.array(self.user_factors_[idx], dtype=np.float32))
        return out.to_frame("user") if as_frame else out

    @overload
    def item_vectors(self, items: ArrayLike | None = ..., *, as_frame: Literal[False] = ...) -> FactorVectors: ...
    @overload
    def item_vectors(self, items: ArrayLike | None = ..., *, as_frame: Literal[True]) -> pd.DataFrame: ...

    def item_vectors(self, items: ArrayLike | None = None, *, as_frame: bool = False) -> FactorVectors | pd.DataFrame:
        """The items' vectors with their external ids (items without interactions: zeros).

        Parameters
        ----------
        items : sequence of ids, optional
            Only these items, in this order; default every item.
        as_frame : bool, default False
            Return a DataFrame indexed by item id, columns ``f0 ... f{d-1}``.

        Returns
        -------
        FactorVectors or pandas.DataFrame
        """
        self._check_fitted()
        idx, ids = self._select(self.items_, items, "items")
        out = FactorVectors(ids, np.array(self.item_factors_[idx], dtype=np.float32))
        return out.to_frame("item") if as_frame else out

    @staticmethod
    def _select(idmap: IdMap, values: ArrayLike | None, what: str) -> tuple[NDArray[np.int64], NDArray[Any]]:
        if values is None:
            return np.arange(len(idmap), dtype=np.int64), idmap.ids.copy()
        query = as_id_array(values, what)
        return idmap.to_index(query).astype(np.int64), query

    # -- hooks of the concrete models -------------------------------------------------

    @abstractmethod
    def _interaction_values(self, data: Interactions, where: str) -> NDArray[np.float32]:
        """The value stored for each row of ``data`` (weights, ratings or ones)."""

    @abstractmethod
    def _stored(self) -> sp.csr_matrix:
        """The users x items matrix of stored values the solves read."""

    def _store(self, matrix: sp.csr_matrix) -> None:
        """Replace the stored values with ``matrix``: here its pattern, ``seen_`` (a model that keeps the
        values themselves stores them too)."""
        self.seen_ = sp.csr_matrix(
            (np.ones(matrix.nnz, np.float32), matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape
        )

    @abstractmethod
    def _solve_users(self, rows: sp.csr_matrix, current: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """Vectors of users given their stored-value rows (n x n_items), items fixed.

        ``current``: the users' present vectors (a new user's: the empty vector), where an
        iterative solver may start.
        """

    @abstractmethod
    def _solve_items(self, touched: NDArray[np.int64], stored: sp.csr_matrix) -> NDArray[np.float32]:
        """Vectors of the items ``touched`` given every stored value (``stored``, updated), users fixed.

        Runs before ``_store``: ``seen_`` and ``item_factors_`` still describe the model before the update.
        """

    @abstractmethod
    def _empty_user_vector(self) -> NDArray[np.float32]:
        """The vector of a user without interactions, shape (d,)."""

    def _items_added(self, n_new: int, stored: sp.csr_matrix) -> None:
        """Extend per-item statistics for ``n_new`` new items (hook)."""

    # -- online updates -------------------------------------------------------------------

    def _update_users(self, users: IdMap, stored: sp.csr_matrix, touched: NDArray[np.int64]) -> None:
        """``partial_fit_users``: the touched users' vectors re-solved with the item vectors fixed,
        exactly as fold-in solves a history (see the class notes); new users start empty."""
        n_old = len(self.users_)
        factors = np.empty((len(users), self.user_factors_.shape[1]), dtype=np.float32)
        factors[:n_old] = self.user_factors_
        factors[n_old:] = self._empty_user_vector()
        factors[touched] = np.asarray(self._solve_users(stored[touched], factors[touched]), dtype=np.float32)
        self._store(stored)
        self.user_factors_ = factors

    def partial_fit_items(self: Self, data: Interactions) -> Self:
        """Add new catalogue items (or new interactions of known items), with every user vector fixed.

        Each item in ``data`` gets the union of its stored interactions and
        the new ones; its vector is then solved with the user vectors fixed
        (see the class notes). Items absent from the model are added; the new
        interactions also count as seen for their users (never recommended to
        them). Nothing else changes: user vectors and other items' vectors
        stay as they are. The retrieval index is rebuilt with its kind and
        parameters.

        Parameters
        ----------
        data : Interactions
            Interactions of the items to add or update; every user must be
            known to the model (add new users with :meth:`partial_fit_users`
            after the items they use exist).

        Returns
        -------
        self

        Raises
        ------
        DataTypeError
            ``data`` is not an Interactions.
        UnknownIdError
            A user is not known to the model.

        Examples
        --------
        >>> import pandas as pd
        >>> from recsys import Interactions
        >>> from recsys.models import ALS
        >>> from recsys.testing import tiny_interactions
        >>> model = ALS(n_factors=4, num_threads=1, show_progress=False).fit(tiny_interactions())
        >>> new = Interactions.from_frame(pd.DataFrame({"user": [0, 2, 4], "item": [2000, 2000, 2000]}))
        >>> model.partial_fit_items(new).item_vectors([2000]).vectors.shape
        (1, 4)
        """
        vals, ext_users, ext_items = self._partial_input(data, "partial_fit_items")
        user_idx = self.users_.to_index(ext_users).astype(np.int64)  # an unknown user raises UnknownIdError
        items = self.items_.extend(ext_items)
        item_idx = items.to_index(ext_items).astype(np.int64)
        n_old, n_new = self.n_items_, len(items)
        stored = merged_csr(self._stored(), user_idx, item_idx, vals, (len(self.users_), n_new))
        self._items_added(n_new - n_old, stored)
        touched = np.unique(item_idx)
        solved = np.asarray(self._solve_items(touched, stored), dtype=np.float32)
        factors = np.zeros((n_new, self.item_factors_.shape[1]), dtype=np.float32)
        factors[:n_old] = self.item_factors_
        factors[touched] = solved
        popularity = np.zeros(n_new, dtype=np.float32)
        popularity[:n_old] = self.item_popularity_
        counts = np.diff(stored.tocsc().indptr)
        popularity[touched] = counts[touched]
        self.items_ = items
        self.n_items_ = n_new
        self.item_factors_ = factors
        self.item_popularity_ = popularity
        # solved items are warm (when they have interactions); other cold items stay cold (no vector)
        cold = np.zeros(n_new, dtype=bool)
        cold[self.cold_items_] = True
        cold[n_old:] = True
        cold[touched] = counts[touched] == 0
        self.cold_items_ = np.flatnonzero(cold).astype(np.int32)
        self._store(stored)
        self._rebuild_index()
        return self


__all__ = ["FactorVectors"]
