"""BPR (Rendle et al. 2009) with uniform negatives, fit by this project's vectorised torch solver.

implicit's BPR samples negatives in proportion to item popularity and cannot
be told otherwise, which caps its top-N accuracy on MovieLens-like data (tuned
NDCG@10 0.366 on ML-100K, against 0.405 for Cornac's uniform sampling); the
solver in :mod:`recsys.models._bpr_torch` samples negatives uniformly. The
vectors, their accessors and the partial-fit bookkeeping are shared with ALS
(:mod:`recsys.models._factorization`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._state_spec import Spec
from recsys._utils.params import check_bool, check_float, check_int, check_seed
from recsys._utils.registry import stored_as
from recsys._utils.threads import torch_threads
from recsys.data import Interactions
from recsys.models._factorization import _Factorization

# Fixed-side solves: the negatives pool (every warm item up to this many) and the sample of
# training interactions an item solve uses as the pairs it is a negative in.
_BPR_POOL = 2048
_BPR_ITEM_PAIRS = 2048


# artifacts and configs name it by the module it was first saved from
@stored_as("recsys.models.mf.BPR")
class BPR(_Factorization):
    """Bayesian Personalised Ranking (Rendle et al. 2009) with uniform negatives, fit by a vectorised torch solver.

    Every interaction is a positive (weights and ratings are ignored). The
    model maximises ``sum log σ(x_ui - x_uj)`` over (user, positive ``i``,
    negative ``j``) triples with ``x_ui = p_u · q_i + b_i``, by SGD over
    mini-batches: each epoch visits every interaction once in random order
    with one negative drawn uniformly among the items that have interactions
    (a negative the user has seen is skipped). The learning rate decays
    linearly to zero. See :mod:`recsys.models._bpr_torch`.

    Why a solver of our own: implicit's ``BayesianPersonalizedRanking`` draws
    negatives in proportion to item popularity (the item of a random
    interaction) with no option to change it, which pushes popular items
    down; on ML-100K its tuned NDCG@10 is 0.366 against 0.405 for Cornac's
    uniform sampling. This solver samples uniformly, as the paper and Cornac
    do, and vectorises the updates (the sum of a mini-batch's per-sample
    steps), which is what makes it usable from Python.

    The defaults come from the search in ``benchmarks/tune_mf.py``
    (``benchmarks/results/mf_tuning.md``).

    Parameters
    ----------
    n_factors : int >= 1, default 64
        Dimension of ``p_u`` and ``q_i``; vectors have one more column (the
        bias ``b_i`` for items, the constant 1 for users).
    n_epochs : int >= 1, default 100
        Passes over the interactions.
    lr : float > 0, default 0.1
        Initial SGD learning rate (decays linearly to 0 over the epochs).
    reg : float >= 0, default 0.03
        L2 penalty per sample on the rows it touches (``p_u``, ``q_i``,
        ``q_j``, ``b_i``, ``b_j``).
    batch_size : int >= 1, default 1024
        Samples per vectorised step.
    init_std : float >= 0, default 0.01
        Standard deviation of the normal initial factors (biases start at 0).
    seed : int >= 0, default 0
        Seeds the initial factors, the sampling, and the fixed negatives of
        fold-in.
    num_threads : int >= 1, optional
        Torch threads of the fixed-side solves (fold-in, partial fits); None
        keeps torch's setting. The SGD updates of :meth:`fit` always run on one
        torch thread (its per-batch ops are too small to split), while a second
        thread draws the next epoch's samples (the same draws in the same
        order), so a fit is deterministic for a seed whatever the machine.
    show_progress : bool, optional
        Progress bar over epochs (default: when stderr is a terminal).

    Attributes
    ----------
    user_factors_ : ndarray of float32, (n_users, n_factors + 1)
        Rows ``[p_u, 1]``.
    item_factors_ : ndarray of float32, (n_items, n_factors + 1)
        Rows ``[q_i, b_i]``; items without interactions get zeros.

    Notes
    -----
    Fold-in (:meth:`recommend_history`) and :meth:`partial_fit_users` solve a
    user's vector with the item vectors fixed: they minimise the user's
    expected training objective, the mean over history items ``i`` and
    negatives ``j`` of ``-log σ(x_ui - x_uj)`` plus ``reg/2 |p_u|²`` (the
    per-sample penalty averaged per sample). It is strictly convex in
    ``p_u``; damped Newton steps from zero reach its minimum (to float
    precision, in a handful of steps). The negatives are every item with
    interactions (catalogues up to 2,048 such items) or a fixed sample of
    2,048 of them (stable: adding an item changes at most one member), the
    same for every user, so the result depends on the history only
    (:meth:`partial_fit_users` starts from the user's current vector: the
    same minimum in fewer steps, equal to fold-in up to the solver's
    tolerance). :meth:`partial_fit_items` does the same for item rows
    ``[q_i, b_i]`` with the user vectors fixed: the item is the positive of
    each of its users and, as in training, the negative of about
    ``interactions / items`` random interactions per epoch (a fixed sample of
    2,048 training interactions stands for them).

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = BPR(n_factors=8, n_epochs=40, lr=0.1, num_threads=1, show_progress=False)
    >>> model = model.fit(tiny_interactions())
    >>> ids, scores = model.recommend_history([1, 3, 5], k=3)  # a new user who likes odd items
    >>> [int(i) % 2 for i in ids]
    [1, 1, 1]
    >>> model.item_vectors().vectors.shape
    (32, 9)
    """

    _no_explanation: ClassVar[str] = (
        "its scores are dot products of factors learned by stochastic gradient descent on sampled pairs; "
        "no part of a score belongs to one history item"
    )
    _state_spec: ClassVar[dict[str, Spec]] = {}  # nothing beyond its base's state

    def __init__(
        self,
        n_factors: int = 64,
        n_epochs: int = 100,
        lr: float = 0.1,
        reg: float = 0.03,
        batch_size: int = 1024,
        init_std: float = 0.01,
        seed: int = 0,
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.batch_size = batch_size
        self.init_std = init_std
        self.seed = seed
        self.num_threads = num_threads
        self.show_progress = show_progress

    def _validate_params(self) -> None:
        name = "BPR"
        check_int(name, "n_factors", self.n_factors, low=1)
        check_int(name, "n_epochs", self.n_epochs, low=1)
        check_float(name, "lr", self.lr, low=0.0, low_open=True)
        check_float(name, "reg", self.reg, low=0.0)
        check_int(name, "batch_size", self.batch_size, low=1)
        check_float(name, "init_std", self.init_std, low=0.0)
        check_seed(name, "seed", self.seed)
        if self.num_threads is not None:
            check_int(name, "num_threads", self.num_threads, low=1)
        check_bool(name, "show_progress", self.show_progress, optional=True)

    def _fit(self, data: Interactions) -> None:
        from recsys.models._bpr_torch import fit_bpr

        # one thread: the per-batch ops are small; splitting them costs more than it gains (and
        # oversubscribed machines make OpenMP barriers very slow: 40x slower with 2 threads measured;
        # two Python threads stepping disjoint rows measured no faster either: they queue on the GIL)
        with torch_threads(1):
            users, items = fit_bpr(
                self.seen_,
                factors=int(self.n_factors),
                learning_rate=float(self.lr),
                regularization=float(self.reg),
                epochs=int(self.n_epochs),
                batch_size=int(self.batch_size),
                init_std=float(self.init_std),
                seed=int(self.seed),
                show_progress=self.show_progress,
            )
        self.user_factors_ = users
        self.item_factors_ = items

    # -- fold-in and partial fits ----------------------------------------------------------

    def _interaction_values(self, data: Interactions, where: str) -> NDArray[np.float32]:
        return np.ones(data.nnz, dtype=np.float32)

    def _stored(self) -> sp.csr_matrix:
        return self.seen_

    def _empty_user_vector(self) -> NDArray[np.float32]:
        out = np.zeros(self.user_factors_.shape[1], dtype=np.float32)
        out[-1] = 1.0
        return out

    def _prepare(self) -> None:
        from recsys.models._bpr_torch import negative_pool

        super()._prepare()
        # the negatives of the solves: items that have vectors (warm at fit or added by partial_fit_items)
        warm = np.flatnonzero(~self._never).astype(np.int64)
        self._negatives = negative_pool(warm, _BPR_POOL, int(self.seed))

    def _pool(self) -> NDArray[np.int64]:
        return self._negatives

    def _solve_users(self, rows: sp.csr_matrix, current: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        from recsys.models._bpr_torch import solve_users

        rows = sp.csr_matrix((np.ones(rows.nnz, np.float32), rows.indices, rows.indptr), shape=rows.shape)
        with torch_threads(self.num_threads):
            return solve_users(
                rows,
                np.asarray(self.item_factors_, dtype=np.float32),
                self._pool(),
                regularization=float(self.reg),
                init=current,
            )

    def _solve_items(self, touched: NDArray[np.int64], stored: sp.csr_matrix) -> NDArray[np.float32]:
        from recsys.models._bpr_torch import solve_items, stable_sample

        seen = self.seen_  # before the update: the pairs and the pool use items that have vectors
        keys = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr)) * seen.shape[1] + seen.indices
        pick = stable_sample(keys, _BPR_ITEM_PAIRS, int(self.seed))
        pairs = (pick // seen.shape[1], pick % seen.shape[1])
        warm = int((np.diff(seen.tocsc().indptr) > 0).sum())
        binary = sp.csr_matrix((np.ones(stored.nnz, np.float32), stored.indices, stored.indptr), shape=stored.shape)
        item_users = binary.T.tocsr()[touched]
        with torch_threads(self.num_threads):
            return solve_items(
                item_users,
                np.asarray(self.user_factors_, dtype=np.float32),
                np.asarray(self.item_factors_, dtype=np.float32),
                binary,
                self._pool(),
                pairs,
                seen.nnz / max(1, warm),
                regularization=float(self.reg),
            )

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        distinct = np.unique(item_idx).astype(np.int32)
        row = sp.csr_matrix(
            (np.ones(len(distinct), np.float32), distinct, [0, len(distinct)]), shape=(1, self.n_items_)
        )
        return self._solve_users(row)[0]


__all__ = ["BPR"]
