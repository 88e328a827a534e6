"""ItemIndex: the one top-k retrieval component shared by every embedding model."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import faiss as _faiss
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._utils.params import check_choice, check_int
from recsys._utils.progress import progress_bar
from recsys._utils.threads import limit_threads
from recsys._utils.topk import nonzero2d
from recsys.errors import DataError, ParameterError
from recsys.index import _kernels as K
from recsys.index._checks import (
    check_bias,
    check_candidates,
    check_rows_matrix,
    check_vectors,
)
from recsys.index._params import (
    KINDS,
    METRICS,
    check_search_params,
    faiss_dim,
    resolve_params,
)
from recsys.index._serial import (
    index_arrays,
    index_config,
    read_index_state,
)

__all__ = ["ItemIndex"]

# faiss' partial type stubs lack most of what is used here.
faiss: Any = _faiss
F32 = np.float32
I64 = np.int64


#: ``kind="auto"`` builds an exact index below this many items, else AUTO_APPROXIMATE.
AUTO_EXACT_MAX = 50_000
#: A 1-D ``candidates`` set at most this large is scored exactly, whatever the kind.
SUBSET_EXACT_MAX = 50_000
#: Rows needing a larger approximate over-fetch (k + excluded items) are answered exactly.
#: It is also the k limit of faiss GPU indexes (implicit #149).
MAX_ANN_FETCH = 2048
#: k-means iterations of IVF training (faiss' default is 25; 10 is enough for list assignment).
KMEANS_ITER = 10
#: Bound on n_queries x k_fetch per faiss call.
FETCH_FLOATS = 1 << 22
#: Extra items the exact kind fetches by float32 BLAS before re-scoring in float64. BLAS
#: results depend on the block shape, so without this a query's top-k could differ
#: between a batch and a single call (RecBole #1556); float64 re-scoring of k + margin
#: candidates makes ids and scores independent of the batch.
RESCORE_MARGIN = 16


class ItemIndex:
    """Top-k item retrieval by inner product, cosine or L2 over item vectors, exact or approximate.

    Row ``r`` of the item matrix is item index ``r`` of the model's id map. Build with
    :meth:`build`; restore with :meth:`from_arrays`.

    **Scores** (higher is better): ``dot`` gives ``q . v`` (``+ b`` with ``item_bias``);
    ``cosine`` gives the cosine, where a zero vector (item or query) has cosine 0 with
    everything; ``l2`` gives minus the Euclidean (not squared) distance ``-||q - v||``.
    Returned scores are always exact values, also for approximate kinds, whose candidates
    are re-scored exactly (``k`` x ``dim`` work per query; ``rerank`` x that for ``ivfpq``).

    **Kinds**. ``exact`` keeps the float32 matrix and scores it by blocked BLAS products
    fed into faiss' per-row heaps (faster than faiss' ``IndexFlat`` here, and exclusions are
    masked inside each block, so they are exact for any history length with no over-fetch).
    Ties are broken by lower item index. ``ivf``, ``hnsw`` and ``ivfpq`` are faiss indexes
    searched with the L2 metric: for ``dot`` the standard MIPS-to-L2 augmentation is applied
    (item ``[v, sqrt(M^2 - |v|^2)]``, query ``[q, 0]`` with ``M`` the largest item norm, so
    L2 order equals inner-product order); an item bias is one more coordinate
    (item ``[v, b]``, query ``[q, 1]``); ``cosine`` searches unit vectors. Within the
    returned set, order is exact (score, then lower index); which near-tied items make it
    into the set is up to the approximate search. ``auto`` is ``exact`` below
    ``AUTO_EXACT_MAX`` items and ``ivf`` above.

    **Filtering**. ``exclude`` items never appear. For approximate kinds each row over-fetches
    ``k +`` its number of excluded items (queries grouped by that size), so every row is
    filled whenever the catalogue allows; a row whose over-fetch would exceed
    ``MAX_ANN_FETCH``, whose approximate answer came back short, or whose query is a zero
    vector under ``dot``/``cosine`` (all items tie) is answered exactly instead.
    ``candidates`` given per query (sparse) are always scored exactly; a 1-D candidate set
    is scored exactly up to ``SUBSET_EXACT_MAX`` items, else searched with a faiss
    ``IDSelectorBitmap``.

    **Threads**. ``threads=None`` uses faiss' and BLAS' current settings. An int limits
    faiss' OpenMP threads and BLAS threads (through threadpoolctl) during this index's
    builds and searches only; the previous values are restored afterwards.

    **GPU**. When faiss was built with GPU support and a GPU is visible, ``ivf`` and
    ``ivfpq`` indexes are moved to GPU 0 (HNSW has no faiss GPU version; exact stays on
    the CPU BLAS path). On the GPU, 1-D candidate sets are always scored exactly.

    Examples
    --------
    >>> import numpy as np
    >>> items = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [0.0, 0.0]], dtype=np.float32)
    >>> index = ItemIndex.build(items, metric="dot")
    >>> ids, scores = index.search(np.array([[1.0, 0.5]]), k=2)
    >>> ids.tolist(), scores.round(2).tolist()
    ([[2, 0]], [[1.05, 1.0]])
    """

    def __init__(
        self,
        *,
        metric: str,
        kind: str,
        dim: int,
        matrix: NDArray[np.float32],
        has_bias: bool,
        params: Mapping[str, int],
        faiss_index: Any = None,
        threads: int | None = None,
    ) -> None:
        # Use build() or from_arrays(); this constructor trusts its arguments.
        self._metric = metric
        self._kind = kind
        self._dim = dim
        self._matrix = matrix
        self._has_bias = has_bias
        self._params = dict(params)
        self._cpu_index = faiss_index
        self._search_index = faiss_index
        self._gpu_res: Any = None
        self._phi2 = 0.0
        self._threads: int | None = None
        self.set_threads(threads)
        if faiss_index is not None:
            self._apply_search_params()
            self._to_gpu()

    # -- construction ---------------------------------------------------------------

    @classmethod
    def build(
        cls,
        item_vectors: Any,
        metric: str = "dot",
        kind: str = "auto",
        *,
        item_bias: Any = None,
        threads: int | None = None,
        show_progress: bool | None = None,
        **params: Any,
    ) -> ItemIndex:
        """Build an index over ``item_vectors`` (row ``r`` = item index ``r``).

        Parameters
        ----------
        item_vectors : array-like of shape (n_items, dim)
            Finite item vectors (converted to float32).
        metric : {"dot", "cosine", "l2"}
            Score: inner product, cosine (zero vectors score 0), or minus the Euclidean distance.
        kind : {"auto", "exact", "ivf", "hnsw", "ivfpq"}
            ``auto`` is ``exact`` below 50,000 items, ``ivf`` above.
        item_bias : array-like of shape (n_items,), optional
            Added to every score of an item; ``metric="dot"`` only.
        threads : int, optional
            Thread limit for this index's builds and searches (see the class notes).
        show_progress : bool, optional
            Progress bar while adding vectors to an approximate index.
        **params
            ``ivf``: ``nlist`` (default ~4 sqrt(n_items), at most n_items / 39),
            ``nprobe`` (16), ``train_size`` (40 * nlist), ``seed`` (0). ``hnsw``: ``M`` (32), ``ef_construction`` (80),
            ``ef_search`` (128). ``ivfpq``: those of ``ivf`` plus ``pq_m`` (~dim / 4
            sub-quantizers; vectors are zero-padded to a multiple), ``pq_bits`` (8) and
            ``rerank`` (10: ``rerank * k`` codes are re-scored exactly). With ``auto`` they
            apply when the approximate kind is chosen and are ignored otherwise.

        Returns
        -------
        ItemIndex

        Raises
        ------
        ParameterError
            Unknown metric, kind or parameter; a parameter out of range; a bias with a
            metric other than ``dot``.
        DataError
            ``item_vectors`` not 2-D, empty, or holding NaN/inf (the first bad row is named).

        Examples
        --------
        >>> import numpy as np
        >>> v = np.random.default_rng(0).normal(size=(100, 8))
        >>> index = ItemIndex.build(v, metric="cosine", kind="exact")
        >>> index.n_items, index.dim, index.kind
        (100, 8, 'exact')
        """
        where = "ItemIndex.build"
        check_choice(where, "metric", metric, METRICS)
        check_choice(where, "kind", kind, KINDS)
        V = check_vectors(item_vectors, "item_vectors", where)
        n, dim = V.shape
        if n == 0:
            raise DataError(f"item_vectors of {where} must hold at least one item. Got shape {V.shape} instead.")
        bias = None
        if item_bias is not None:
            if metric != "dot":
                raise ParameterError(f"item_bias of {where} is only supported with metric='dot'. Got metric={metric!r}.")
            bias = check_bias(item_bias, n, where)
        if threads is not None:
            check_int(where, "threads", threads, low=1)
        base_dim = faiss_dim(metric, dim, bias is not None, "ivf", {})
        kind, resolved = resolve_params(kind, params, n, base_dim, where, exact_max=AUTO_EXACT_MAX)
        ann_dim = faiss_dim(metric, dim, bias is not None, kind, resolved)
        matrix = _search_matrix(V, bias, metric)
        if np.shares_memory(matrix, np.asarray(item_vectors)):
            matrix = matrix.copy()  # the caller's array may change later; the index must not
        del V
        self = cls(metric=metric, kind=kind, dim=dim, matrix=matrix, has_bias=bias is not None, params=resolved, threads=threads)
        if kind != "exact":
            with self._thread_limit():
                index = self._train_and_add(ann_dim, show_progress)
            self._cpu_index = self._search_index = index
            self._apply_search_params()
            self._to_gpu()
        return self

    def _train_and_add(self, ann_dim: int, show_progress: bool | None) -> Any:
        p = self._params
        n = self.n_items
        # Largest squared norm: the MIPS augmentation's constant (dot only).
        self._phi2 = float(np.max(_row_sq_norms(self._matrix))) if self._metric == "dot" else 0.0
        if self._kind == "hnsw":
            index = faiss.IndexHNSWFlat(ann_dim, p["M"], faiss.METRIC_L2)
            index.hnsw.efConstruction = p["ef_construction"]
        else:
            quantizer = faiss.IndexFlatL2(ann_dim)
            if self._kind == "ivf":
                index = faiss.IndexIVFFlat(quantizer, ann_dim, p["nlist"], faiss.METRIC_L2)
            else:
                index = faiss.IndexIVFPQ(quantizer, ann_dim, p["nlist"], p["pq_m"], p["pq_bits"], faiss.METRIC_L2)
            index.cp.seed = p["seed"]
            index.cp.niter = KMEANS_ITER
            index.cp.verbose = False
            rng = np.random.default_rng(p["seed"])
            sample = np.sort(rng.choice(n, size=p["train_size"], replace=False))
            index.train(self._ann_items(self._matrix[sample], ann_dim))
        step = 65536
        with progress_bar(desc=f"ItemIndex {self._kind}", total=n, show=show_progress) as bar:
            for s in range(0, n, step):
                index.add(self._ann_items(self._matrix[s : s + step], ann_dim))
                bar.update(min(step, n - s))
        return index

    # -- properties -----------------------------------------------------------------

    @property
    def n_items(self) -> int:
        """Number of indexed items."""
        return int(self._matrix.shape[0])

    @property
    def dim(self) -> int:
        """Dimension of item and query vectors (without the bias coordinate)."""
        return self._dim

    @property
    def metric(self) -> str:
        """``"dot"``, ``"cosine"`` or ``"l2"``."""
        return self._metric

    @property
    def kind(self) -> str:
        """The built kind (``auto`` resolved): ``exact``, ``ivf``, ``hnsw`` or ``ivfpq``."""
        return self._kind

    @property
    def params(self) -> dict[str, int]:
        """Resolved parameters of the kind (a copy)."""
        return dict(self._params)

    @property
    def has_bias(self) -> bool:
        """Whether scores include an item bias."""
        return self._has_bias

    @property
    def threads(self) -> int | None:
        """Thread limit used by builds and searches, or None for the libraries' settings."""
        return self._threads

    @property
    def on_gpu(self) -> bool:
        """Whether the approximate index lives on a GPU."""
        return self._gpu_res is not None

    def set_threads(self, threads: int | None) -> None:
        """Set the thread limit of later searches (None: leave faiss/BLAS settings alone).

        Examples
        --------
        >>> import numpy as np
        >>> index = ItemIndex.build(np.eye(3), kind="exact")
        >>> index.set_threads(1); index.threads
        1
        """
        self._threads = None if threads is None else check_int("ItemIndex.set_threads", "threads", threads, low=1)

    def set_search_params(self, **params: int) -> None:
        """Change search-time parameters: ``nprobe`` (ivf, ivfpq), ``ef_search`` (hnsw), ``rerank`` (ivfpq).

        Examples
        --------
        >>> import numpy as np
        >>> v = np.random.default_rng(0).normal(size=(500, 4))
        >>> index = ItemIndex.build(v, kind="ivf", nlist=8)
        >>> index.set_search_params(nprobe=4); index.params["nprobe"]
        4
        """
        self._params = check_search_params(self._kind, self._params, params, "ItemIndex.set_search_params")
        self._apply_search_params()

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self._params.items())
        return f"ItemIndex(n_items={self.n_items}, dim={self.dim}, metric={self._metric!r}, kind={self._kind!r}{extra})"

    # -- search ---------------------------------------------------------------------

    def search(
        self, query_vectors: Any, k: int, exclude: Any = None, candidates: Any = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ``k`` best items of each query, best first.

        Parameters
        ----------
        query_vectors : array-like of shape (n_queries, dim)
            Finite query (user) vectors.
        k : int
            Items per query (>= 1); may exceed the catalogue (rows are then padded).
        exclude : scipy.sparse matrix of shape (n_queries, n_items), optional
            Stored entries (whatever their value) are items that must not appear for that
            query, e.g. the user's seen items.
        candidates : 1-D int array, boolean mask of length n_items, or sparse (n_queries, n_items), optional
            Restrict every query to these items (1-D) or each query to its row's stored entries.

        Returns
        -------
        ids : ndarray of int64, shape (n_queries, k)
            Item indices (rows of the item matrix); -1 where a row cannot be filled.
        scores : ndarray of float32, shape (n_queries, k)
            Exact scores (see the class notes), -inf where ``ids`` is -1.

        Raises
        ------
        ParameterError
            ``k`` not an int >= 1.
        DataError
            Wrong query shape or dimension, non-finite queries (first bad row named),
            ``exclude``/``candidates`` of the wrong shape or holding out-of-range items.

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> index = ItemIndex.build(np.array([[3.0], [2.0], [1.0]]), metric="dot")
        >>> seen = sp.csr_matrix(np.array([[1, 0, 0]]))
        >>> index.search(np.array([[1.0]]), k=3, exclude=seen)[0].tolist()
        [[1, 2, -1]]
        """
        where = "ItemIndex.search"
        k = check_int(where, "k", k, low=1)
        Q = check_vectors(query_vectors, "query_vectors", where, dim=self._dim)
        nq = Q.shape[0]
        excl = check_rows_matrix(exclude, "exclude", nq, self.n_items)
        cand, cols = check_candidates(candidates, nq, self.n_items)
        if nq == 0:
            return K.empty_result(0, k)
        with self._thread_limit():
            Qt = self._transform(Q)
            if cand is not None:
                return self._search_pairs(Qt, k, cand, excl)
            if self._kind == "exact" or (cols is not None and (cols.size <= SUBSET_EXACT_MAX or self.on_gpu)):
                return self._search_exact(Qt, k, excl, cols)
            return self._search_approx(Qt, k, excl, cols)

    def _search_exact(
        self, Qt: NDArray[np.float32], k: int, excl: sp.csr_matrix | None, cols: NDArray[np.int64] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        indptr = pos = None
        if excl is not None:
            indptr, pos = excl.indptr, excl.indices
            if cols is not None:  # map excluded items to positions in the candidate subset
                at = np.searchsorted(cols, pos)
                member = at < cols.size
                member[member] = cols[at[member]] == pos[member]
                pos = at[member]
                indptr = np.concatenate(([0], np.cumsum(member, dtype=I64)))[indptr]
        n_cols = self.n_items if cols is None else cols.size
        fetch = min(k + RESCORE_MARGIN, max(n_cols, 1))
        ids, _ = K.exact_topk(Qt, self._matrix, fetch, excl_indptr=indptr, excl_pos=pos, cols=cols)
        if cols is not None and cols.size:
            ids = np.where(ids >= 0, cols[np.maximum(ids, 0)], -1)
        # Re-score the candidates one pair at a time in float64 (for l2 also the direct
        # distance instead of the expanded form): the result no longer depends on the batch.
        ids, scores = self._rescore(Qt, ids)
        if ids.shape[1] >= k:
            return ids[:, :k], scores[:, :k]
        pad_ids, pad_scores = K.empty_result(ids.shape[0], k)
        pad_ids[:, : ids.shape[1]], pad_scores[:, : ids.shape[1]] = ids, scores
        return pad_ids, pad_scores

    def _search_pairs(
        self, Qt: NDArray[np.float32], k: int, cand: sp.csr_matrix, excl: sp.csr_matrix | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        indptr, items = cand.indptr, cand.indices
        rows = np.repeat(np.arange(Qt.shape[0], dtype=I64), np.diff(indptr))
        if excl is not None and excl.nnz:
            n = self.n_items
            ek = np.repeat(np.arange(Qt.shape[0], dtype=I64), np.diff(excl.indptr)) * n + excl.indices
            keep = ~_sorted_member(rows * n + items, ek)
            rows, items = rows[keep], items[keep]
            indptr = np.concatenate(([0], np.cumsum(keep, dtype=I64)))[indptr]
        scores = K.score_pairs(Qt, self._matrix, rows, items, self._score_fn())
        return K.pairs_topk(indptr, items, scores, k)

    def _search_approx(
        self, Qt: NDArray[np.float32], k: int, excl: sp.csr_matrix | None, cols: NDArray[np.int64] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        n, nq = self.n_items, Qt.shape[0]
        allowed = None
        n_allowed = n
        if cols is not None:
            allowed = np.zeros(n, dtype=bool)
            allowed[cols] = True
            n_allowed = cols.size
        excl_keys = None
        if excl is not None and excl.nnz:
            erows = np.repeat(np.arange(nq, dtype=I64), np.diff(excl.indptr))
            inside = np.ones(excl.nnz, dtype=bool) if allowed is None else allowed[excl.indices]
            n_excl = np.bincount(erows[inside], minlength=nq).astype(I64)
            excl_keys = erows * n + excl.indices
        else:
            n_excl = np.zeros(nq, dtype=I64)
        need = np.minimum(k, n_allowed - n_excl)
        fetch = k + n_excl
        exact_rows = (fetch > MAX_ANN_FETCH) | (4 * fetch > n_allowed)
        if self._metric == "cosine" or (self._metric == "dot" and not self._has_bias):
            exact_rows |= ~Qt.any(axis=1)  # a zero query ties every item: the exact path orders by index
        ids, scores = K.empty_result(nq, k)
        # Group rows by over-fetch rounded up to a power of two: one faiss call per group.
        bucket = np.where(exact_rows, 0, 2 ** np.ceil(np.log2(np.maximum(fetch, 1))).astype(I64))
        sel = None
        bitmap = None
        if allowed is not None:
            bitmap = np.packbits(allowed, bitorder="little")
            sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        factor = self._params.get("rerank", 1)
        short: list[NDArray[np.int64]] = []
        for b in np.unique(bucket[bucket > 0]):
            rows_b = np.flatnonzero(bucket == b)
            f = int(min(b, n_allowed)) * factor
            f = min(f, n)
            chunk = int(max(1, min(FETCH_FLOATS // f, K.GATHER_FLOATS // (f * self._matrix.shape[1]))))
            for s in range(0, rows_b.size, chunk):
                r = rows_b[s : s + chunk]
                _, found = self._faiss_search(Qt[r], f, sel)
                valid = found >= 0
                if excl_keys is not None:
                    valid &= ~_sorted_member(r[:, None] * n + found, excl_keys)
                if allowed is not None:  # the selector already filters; kept for GPU/old faiss
                    valid &= allowed[np.maximum(found, 0)]
                found = np.where(valid, found, -1)
                got, sc = self._rescore(Qt[r], found)
                w = min(k, got.shape[1])
                ids[r, :w], scores[r, :w] = got[:, :w], sc[:, :w]
                short.append(r[valid.sum(axis=1) < need[r]])
        fallback = np.concatenate([np.flatnonzero(exact_rows), *short])
        if fallback.size:
            sub_excl = excl[fallback] if excl is not None else None
            got, sc = self._search_exact(Qt[fallback], k, sub_excl, cols)
            ids[fallback], scores[fallback] = got, sc
        if bitmap is not None:
            del sel, bitmap  # the selector points into bitmap: keep both alive until here
        return ids, scores

    def _faiss_search(self, Qt: NDArray[np.float32], f: int, sel: Any) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        Qa = self._ann_queries(Qt)
        if self.on_gpu or sel is None:
            return self._search_index.search(Qa, f)  # type: ignore[no-any-return]
        p = self._params
        if self._kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=p["ef_search"], sel=sel)
        else:
            params = faiss.SearchParametersIVF(nprobe=p["nprobe"], sel=sel)
        return self._search_index.search(Qa, f, params=params)  # type: ignore[no-any-return]

    def _rescore(self, Qt: NDArray[np.float32], ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Exact scores of ``ids`` (-1 = empty), rows sorted by score then id."""
        scores = np.full(ids.shape, -np.inf, dtype=F32)
        r, c = nonzero2d(ids >= 0)
        if r.size:
            scores[r, c] = K.score_pairs(Qt, self._matrix, r.astype(I64), ids[r, c], self._score_fn())
        return K.sort_rows(ids, scores)

    # -- vector transforms -----------------------------------------------------------

    def _score_fn(self) -> K.ScoreFn:
        if self._metric == "l2":
            d = self._dim

            def neg_dist(q: NDArray[np.float32], x: NDArray[np.float32]) -> NDArray[np.float32]:
                diff = q[:, :d].astype(np.float64) - x[:, :d]
                return (-np.sqrt((diff * diff).sum(axis=1))).astype(F32)

            return neg_dist

        # float64 row sums rounded once: a pair's score never depends on what else is scored with it
        def inner(q: NDArray[np.float32], x: NDArray[np.float32]) -> NDArray[np.float32]:
            return (q.astype(np.float64) * x).sum(axis=1).astype(F32)

        return inner

    def _transform(self, Q: NDArray[np.float32]) -> NDArray[np.float32]:
        """Queries in the space of ``_matrix``: larger ``Qt @ matrix.T`` is better."""
        if self._metric == "cosine":
            return _normalize(Q)
        if self._metric == "l2" or self._has_bias:
            return np.hstack([Q, np.ones((Q.shape[0], 1), dtype=F32)])
        return Q

    def _ann_items(self, X: NDArray[np.float32], ann_dim: int) -> NDArray[np.float32]:
        """Rows of ``_matrix`` as stored in the L2 faiss index (MIPS augmentation for dot)."""
        if self._metric == "dot":
            extra = np.sqrt(np.maximum(self._phi2 - _row_sq_norms(X), 0.0)).astype(F32)
            A = np.hstack([X, extra[:, None]])
        elif self._metric == "l2":
            A = X[:, : self._dim]
        else:
            A = X
        return _pad(A, ann_dim)

    def _ann_queries(self, Qt: NDArray[np.float32]) -> NDArray[np.float32]:
        ann_dim = self._cpu_index.d
        if self._metric == "l2":
            return _pad(Qt[:, : self._dim], ann_dim)
        return _pad(Qt, ann_dim)  # dot: the augmented coordinate of queries is 0 (padding)

    # -- threads and GPU -------------------------------------------------------------

    def _thread_limit(self) -> contextlib.AbstractContextManager[None]:
        # faiss' OpenMP threads and BLAS threads during this index's work
        return limit_threads(self._threads, blas=True, faiss=True)

    def _apply_search_params(self) -> None:
        index = self._search_index
        if index is None:
            return
        p = self._params
        if self._kind == "hnsw":
            self._cpu_index.hnsw.efSearch = p["ef_search"]
        else:
            index.nprobe = p["nprobe"]

    def _to_gpu(self) -> None:  # pragma: no cover - needs a GPU build of faiss and a GPU
        if self._kind not in ("ivf", "ivfpq") or not hasattr(faiss, "StandardGpuResources"):
            return
        try:
            if faiss.get_num_gpus() < 1:
                return
            res = faiss.StandardGpuResources()
            gpu_index = faiss.index_cpu_to_gpu(res, 0, self._cpu_index)
            gpu_index.nprobe = self._params["nprobe"]
        except (RuntimeError, AttributeError):
            return
        self._gpu_res, self._search_index = res, gpu_index

    # -- persistence -----------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable description; with :meth:`to_arrays` it restores the index.

        Examples
        --------
        >>> import numpy as np
        >>> ItemIndex.build(np.eye(2), metric="l2", kind="exact").get_config()["n_items"]
        2
        """
        return index_config(self)

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        """Arrays to store beside :meth:`get_config` (no pickle).

        ``matrix`` is the float32 search matrix (normalised for cosine; with the bias, or
        ``-|v|^2/2`` for l2, as an extra column); approximate kinds add ``faiss_index``,
        the faiss serialisation as uint8.

        Examples
        --------
        >>> import numpy as np
        >>> sorted(ItemIndex.build(np.eye(2), kind="exact").to_arrays())
        ['matrix']
        """
        return index_arrays(self._matrix, self._cpu_index)

    @classmethod
    def from_arrays(
        cls, config: Mapping[str, Any], arrays: Mapping[str, Any], *, threads: int | None = None
    ) -> ItemIndex:
        """Restore an index saved with :meth:`get_config` and :meth:`to_arrays`.

        The thread limit is not part of the artifact (it belongs to the machine); pass
        ``threads`` here or call :meth:`set_threads`.

        Raises
        ------
        ArtifactError
            The config or arrays are not a recsys ItemIndex, or disagree with each other
            (metric, kind, dim, n_items, parameters, array shapes, faiss index type or size).

        Examples
        --------
        >>> import numpy as np
        >>> index = ItemIndex.build(np.eye(3), kind="exact")
        >>> again = ItemIndex.from_arrays(index.get_config(), index.to_arrays())
        >>> again.search(np.eye(3), k=1)[0].ravel().tolist()
        [0, 1, 2]
        """
        return cls(**read_index_state(config, arrays), threads=threads)


# -- helpers ---------------------------------------------------------------------------


def _row_sq_norms(X: NDArray[np.float32]) -> NDArray[np.float64]:
    out = np.empty(X.shape[0], dtype=np.float64)
    step = 65536
    for s in range(0, X.shape[0], step):
        b = X[s : s + step].astype(np.float64)
        out[s : s + step] = np.einsum("ij,ij->i", b, b)
    return out


def _normalize(X: NDArray[np.float32]) -> NDArray[np.float32]:
    """Unit rows; zero rows stay zero (their cosine with anything is 0)."""
    norms = np.sqrt(_row_sq_norms(X))
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (X * scale[:, None]).astype(F32)


def _search_matrix(V: NDArray[np.float32], bias: NDArray[np.float32] | None, metric: str) -> NDArray[np.float32]:
    """Items in the space where a larger inner product with the transformed query is better."""
    if metric == "cosine":
        return _normalize(V)
    if metric == "l2":  # q.v - |v|^2/2 = (|q|^2 - |q - v|^2) / 2 with the query [q, 1]
        half = (-0.5 * _row_sq_norms(V)).astype(F32)
        return np.ascontiguousarray(np.hstack([V, half[:, None]]))
    if bias is not None:
        return np.ascontiguousarray(np.hstack([V, bias[:, None]]))
    return V


def _pad(A: NDArray[np.float32], d: int) -> NDArray[np.float32]:
    if A.shape[1] == d:
        return np.ascontiguousarray(A, dtype=F32)
    out = np.zeros((A.shape[0], d), dtype=F32)
    out[:, : A.shape[1]] = A
    return out


def _sorted_member(keys: NDArray[np.int64], sorted_keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    """``np.isin(keys, sorted_keys)`` for an ascending ``sorted_keys`` (any shape of ``keys``)."""
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    at = np.searchsorted(sorted_keys, keys)
    at = np.minimum(at, sorted_keys.size - 1)
    return sorted_keys[at] == keys  # type: ignore[no-any-return]
