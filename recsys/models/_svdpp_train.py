"""The SVD++ trainer: one fit of :class:`~recsys.models.svdpp.SVDpp` by vectorised mini-batches.

Training cost is linear in the number of ratings. Every mini-batch holds
whole users (about ``batch_size`` ratings), so each user's implicit vector is
computed once per epoch, as a segment sum over the user's ratings, and its
gradient flows back to every ``y_j`` through the same sums per item. (Peers
that update rating by rating, as Surprise does, recompute ``z_u`` for every
rating: their cost grows with the sum of squared history lengths.)

Because a batch contains all ratings of its users, a plain summed SGD step
would overshoot for users with many ratings. User parameters (``b_u``,
``p_u``) therefore take Koren's per-rating SGD step compounded over the user's
``n`` ratings: the summed gradient is scaled by ``(1 - (1 - γ)^n) / n``, which
is ``γ`` for one rating and tends to an averaged step for heavy users. Item
parameters (``b_i``, ``q_i``, ``y_j``) are updated with Adam, lazily (only the
rows a batch touches), which reaches a lower validation error in far fewer
epochs than SGD. Regularisation is Koren's: each rating contributes
``λ (b_u² + b_i²)`` (``reg_bias``), ``λ (|p_u|² + |q_i|²)`` (``reg``) and
``λ Σ_{j ∈ N(u)} |y_j|²`` (``reg_implicit``) to the loss.

The batch step is numpy and scipy.sparse on one thread (deterministic for a
seed). A batch's sums over users and items are products with the batch's
(users x items) matrix (see ``_UserItem``). Speed against Surprise's SVDpp:
``benchmarks/results/svdpp.md``.
"""

# Why numpy/scipy and not torch for the batch step: its arrays are a few thousand rows wide, where
# per-call costs dominate; measured at 2,048 x 21, torch's index_select was about 6x slower than numpy's
# take and index_add_ about 3x slower than a scipy CSR product, and two torch threads slower still.

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._utils.progress import progress_bar

if TYPE_CHECKING:
    from recsys.models.svdpp import SVDpp

# The per-epoch bookkeeping (row order, per-batch item groups) is built for
# about this many ratings at a time, so its memory does not grow with the data.
_CHUNK_RATINGS = 1 << 20
_ADAM_BETA1 = 0.9
_ADAM_BETA2 = 0.999
_ADAM_EPS = 1e-8


class _Trainer:
    """One SVD++ fit: the mini-batch loop over user-grouped batches (see the module docstring)."""

    def __init__(
        self,
        model: SVDpp,
        users: NDArray[np.int32],
        items: NDArray[np.int64],
        ratings: NDArray[np.float32],
        n_users: int,
        n_items: int,
    ) -> None:
        self.m = model
        self.items = items
        self.ratings = ratings
        self.n_users, self.n_items = n_users, n_items
        self.counts = np.bincount(users, minlength=n_users).astype(np.int64)
        self.indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.indptr[1:])
        self.mu = float(ratings.astype(np.float64).mean())
        k = int(model.n_factors)
        self.k, self.width = k, 1 + 2 * k  # item row: [b_i | q_i | y_i]
        self.reg_user = np.array([float(model.reg_bias)] + [float(model.reg)] * k, dtype=np.float32)

    def run(self, initial: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None) -> dict[str, Any]:
        """Train; ``initial`` = ([b_u | p_u], [b_i | q_i | y_i]) replaces the random start (for tests)."""
        m, k, width = self.m, self.k, self.width
        rng = np.random.default_rng(int(m.seed))
        # item state: [b_i | q_i | y_i | Adam's first moments | second moments], one row per item
        # so that a batch gathers and scatters its items once
        state = np.zeros((self.n_items, 3 * width), dtype=np.float32)
        params = state[:, :width]
        user = np.zeros((self.n_users, 1 + k), dtype=np.float32)  # [b_u | p_u]
        if initial is None:
            std = np.float32(m.init_std)
            params[:, 1:] = rng.standard_normal((self.n_items, 2 * k), dtype=np.float32) * std
            user[:, 1:] = rng.standard_normal((self.n_users, k), dtype=np.float32) * std
        else:
            user[:], params[:] = initial
        params[np.bincount(self.items, minlength=self.n_items) == 0] = 0.0
        user[self.counts == 0] = 0.0
        self.state, self.user = state, user
        self.steps = np.zeros(self.n_items, dtype=np.int64)
        # Adam's bias correction sqrt(1 - β2^t) / (1 - β1^t) by step count t: an item takes at
        # most one step per batch, so per epoch at most min(batches, its ratings) steps
        per_epoch = min(len(self.ratings) // int(m.batch_size) + 2, int(np.bincount(self.items).max()))
        t = np.arange(1, int(m.n_epochs) * per_epoch + 2, dtype=np.float64)
        table = np.sqrt(1.0 - _ADAM_BETA2**t) / (1.0 - _ADAM_BETA1**t)
        self.corr_table = np.concatenate([[0.0], table]).astype(np.float32)
        active = np.flatnonzero(self.counts > 0)
        history: list[float] = []
        with progress_bar(desc="SVDpp", total=int(m.n_epochs), show=m.show_progress) as bar:
            for epoch in range(int(m.n_epochs)):
                decay = float(m.lr_decay) ** epoch
                perm = active[rng.permutation(len(active))]
                sq = self._epoch(perm, float(m.lr_user) * decay, float(m.lr_item) * decay)
                history.append(float(np.sqrt(sq / len(self.ratings))))
                bar.set_postfix(rmse=f"{history[-1]:.4f}")
                bar.update(1)
        return {
            "mu": self.mu,
            "bu": np.ascontiguousarray(user[:, 0]),
            "P": np.ascontiguousarray(user[:, 1:]),
            "bi": np.ascontiguousarray(params[:, 0]),
            "Q": np.ascontiguousarray(params[:, 1 : 1 + k]),
            "Y": np.ascontiguousarray(params[:, 1 + k :]),
            "epoch_rmse": history,
        }

    def _epoch(self, perm: NDArray[np.int64], lr_user: float, lr_item: float) -> float:
        """One pass over the users in ``perm`` order; returns the sum of squared errors."""
        c = self.counts[perm]
        cs = np.cumsum(c)
        size = int(self.m.batch_size)
        # a batch closes after the user whose ratings reach the next multiple of batch_size
        cuts = np.searchsorted(cs, np.arange(size, cs[-1], size), side="left") + 1
        bounds = np.unique(np.concatenate([[0], cuts, [len(perm)]]))
        ends = np.concatenate([[0], cs])
        sq = 0.0
        b = 0
        while b < len(bounds) - 1:
            # a chunk of consecutive batches holding about _CHUNK_RATINGS ratings
            stop = int(np.searchsorted(ends[bounds], ends[bounds[b]] + _CHUNK_RATINGS, side="right")) - 1
            stop = min(max(stop, b + 1), len(bounds) - 1)
            sq += self._chunk(perm, bounds[b : stop + 1], lr_user, lr_item)
            b = stop
        return sq

    def _chunk(self, perm: NDArray[np.int64], ubounds: NDArray[np.int64], lr_user: float, lr_item: float) -> float:
        """Consecutive batches of users ``perm[ubounds[s]:ubounds[s + 1]]``; returns the sum of squared errors."""
        m, k, width = self.m, self.k, self.width
        users = perm[ubounds[0] : ubounds[-1]]
        c = self.counts[users]
        cs = np.cumsum(c)
        n_rows = int(cs[-1])
        user_start = cs - c  # first row of each user within the chunk
        rows = np.arange(n_rows, dtype=np.int64) + np.repeat(self.indptr[users] - user_start, c)
        items = self.items[rows]
        ubounds = ubounds - ubounds[0]
        rbounds = np.concatenate([[0], cs])[ubounds]
        n_batches = len(ubounds) - 1
        batch_of_user = np.repeat(np.arange(n_batches, dtype=np.int64), np.diff(ubounds))
        batch_of_row = np.repeat(np.arange(n_batches, dtype=np.int64), np.diff(rbounds))
        # group each batch's rows by item: sorted (batch, item) keys
        keys = batch_of_row * self.n_items + items
        by_item = np.argsort(keys)  # ties (an item rated by several users) need no order
        sorted_keys = keys[by_item]
        first = np.ones(n_rows, dtype=bool)
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        group_start = np.flatnonzero(first)  # in by_item order
        uniq_items = sorted_keys[group_start] % self.n_items
        batch_of_group = batch_of_row[by_item][group_start]
        qbounds = np.concatenate([[0], np.cumsum(np.bincount(batch_of_group, minlength=n_batches))])
        group = np.empty(n_rows, dtype=np.int64)
        group[by_item] = np.cumsum(first) - 1
        # batch-local indices, and the CSR row pointers (user x item) of every batch in one
        # array: batch s's pointers are row_ptr[ubounds[s] + s : ubounds[s + 1] + s + 1]
        local_group = (group - qbounds[batch_of_row]).astype(np.int32)
        local_user = np.repeat(np.arange(len(users), dtype=np.int64), c) - ubounds[batch_of_row]
        row_ptr = _batch_pointers(user_start - rbounds[batch_of_user], ubounds, np.diff(rbounds))
        ones = np.ones(int(np.diff(rbounds).max()), dtype=np.float32)
        n_u = c.astype(np.float32)
        w_user = (1.0 / np.sqrt(n_u))[:, None]  # |N(u)|^-1/2
        group_count = np.bincount(group, minlength=len(group_start)).astype(np.float32)[:, None]
        group_nsum = np.bincount(group, weights=np.repeat(n_u, c), minlength=len(group_start)).astype(np.float32)[:, None]
        # user step: Koren's per-rating step compounded over the user's n ratings
        user_step = ((1.0 - (1.0 - lr_user) ** n_u.astype(np.float64)) / n_u).astype(np.float32)[:, None]
        user_reg = n_u[:, None] * self.reg_user[None, :]
        target = self.ratings[rows] - np.float32(self.mu)
        reg_item = self.reg_user  # b_i and q_i take the same penalties as b_u and p_u
        reg_y = np.float32(m.reg_implicit)
        state, user, steps, corr_table = self.state, self.user, self.steps, self.corr_table
        sq = 0.0
        for s in range(n_batches):
            u0, u1 = int(ubounds[s]), int(ubounds[s + 1])
            r0, r1 = int(rbounds[s]), int(rbounds[s + 1])
            q0, q1 = int(qbounds[s]), int(qbounds[s + 1])
            nb_u, nb_r, nb_q = u1 - u0, r1 - r0, q1 - q0
            ub, ui = users[u0:u1], uniq_items[q0:q1]
            lu, li = local_user[r0:r1], local_group[r0:r1]
            # the batch's user x item matrix: data 1 sums over N(u) (or, transposed, over an
            # item's raters); data e gives the error-weighted sums of the gradients
            rated = _UserItem(row_ptr[u0 + s : u1 + s + 1], li, ones[:nb_r].copy(), nb_u, nb_q)
            data = rated.data
            w = w_user[u0:u1]
            xs = state.take(ui, axis=0)  # the batch's item rows (take: much faster than fancy indexing)
            x = xs[:, :width]  # [b_i | q_i | y_i]
            ub_rows = user.take(ub, axis=0)  # [b_u | p_u]
            v = ub_rows.copy()
            v[:, 1:] += rated.dot(x[:, k + 1 :]) * w  # [b_u | p_u + z_u]
            v_r = v.take(lu, axis=0)
            bq_r = x[:, : k + 1].take(li, axis=0)  # [b_i | q_i] per rating
            err = target[r0:r1] - v_r[:, 0] - bq_r[:, 0] - np.einsum("ij,ij->i", v_r[:, 1:], bq_r[:, 1:])
            sq += float(np.dot(err, err))
            # gradients (descent directions): users [Σ e | Σ e q_i]; items [Σ e | Σ e (p_u + z_u)]
            # and, for y_j, Σ over the users who rated j of |N(u)|^-1/2 Σ_i e q_i
            data[:] = err
            one_q = x[:, : k + 1].copy()
            one_q[:, 0] = 1.0
            g_user = rated.dot(one_q)
            user[ub] = ub_rows + user_step[u0:u1] * (g_user - user_reg[u0:u1] * ub_rows)
            v[:, 0] = 1.0
            grad = np.empty((nb_q, width), dtype=np.float32)
            grad[:, : k + 1] = rated.tdot(v)
            data[:] = 1.0
            grad[:, k + 1 :] = rated.tdot(g_user[:, 1:] * w)
            grad[:, : k + 1] -= (group_count[q0:q1] * reg_item) * x[:, : k + 1]
            grad[:, k + 1 :] -= (group_nsum[q0:q1] * reg_y) * x[:, k + 1 :]
            # lazy Adam on the touched item rows (ascent along the descent direction)
            st = steps.take(ui) + 1
            steps[ui] = st
            _adam_rows(xs, grad, corr_table.take(st) * np.float32(lr_item))
            state[ui] = xs
        return sq


def _adam_rows(rows: NDArray[np.float32], grad: NDArray[np.float32], rate: NDArray[np.float32]) -> None:
    """One Adam step, in place, on item rows ``[params | first moments | second moments]``, along
    ``grad`` (a descent direction: the step adds to the parameters; ``grad`` is overwritten).

    ``rate`` is each row's ``lr * sqrt(1 - β2^t) / (1 - β1^t)`` for its own step count ``t``: the
    Adam paper's form, with ``ε`` added to ``sqrt(v)`` before the bias correction (torch.optim.Adam
    adds it after; the two differ by that rescaling of ``ε`` only).

    Why not torch.optim.Adam: SVD++ trains in numpy (torch is an optional extra), and the update is
    lazy, touching only a batch's items with per-row step counts, where torch's dense Adam would
    step every item of every batch; the per-rating SGD reference it replaces is timed against
    Surprise in benchmarks/results/svdpp.md. tests/models/test_svdpp.py checks it against
    torch.optim.Adam on the same parameters and gradients.
    """
    width = rows.shape[1] // 3
    b1, b2, eps = np.float32(_ADAM_BETA1), np.float32(_ADAM_BETA2), np.float32(_ADAM_EPS)
    x = rows[:, :width]
    m1 = rows[:, width : 2 * width]
    m1 *= b1
    m1 += (1.0 - b1) * grad
    m2 = rows[:, 2 * width :]
    m2 *= b2
    grad *= grad
    grad *= 1.0 - b2
    m2 += grad
    step = np.sqrt(m2)
    step += eps
    np.divide(m1, step, out=step)
    step *= rate[:, None]
    x += step


class _UserItem:
    """A batch's (users x items) CSR matrix, multiplied with dense float32 blocks.

    scipy's public sparse constructors validate their arrays on every call,
    which at a batch's size costs about as much as the product itself; the
    products therefore call scipy's compiled CSR/CSC kernels directly when
    they are importable (private, but unchanged for many releases), else go
    through ``scipy.sparse`` (same results). Assigning to ``data`` changes
    the values of both products.
    """

    def __init__(self, indptr: NDArray[np.int32], indices: NDArray[np.int32], data: NDArray[np.float32], n_rows: int, n_cols: int) -> None:
        self.indptr, self.indices, self.data = indptr, indices, data
        self.n_rows, self.n_cols = n_rows, n_cols

    def dot(self, x: NDArray[Any]) -> NDArray[np.float32]:
        """``A @ x``, shape (n_rows, x.shape[1])."""
        return self._product(x, transposed=False)

    def tdot(self, x: NDArray[Any]) -> NDArray[np.float32]:
        """``A.T @ x``, shape (n_cols, x.shape[1])."""
        return self._product(x, transposed=True)

    def _product(self, x: NDArray[Any], transposed: bool) -> NDArray[np.float32]:
        # A's arrays read as CSC are A.T in CSR: the same arrays serve both products
        n_out, n_in = (self.n_cols, self.n_rows) if transposed else (self.n_rows, self.n_cols)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if _matvecs is None:
            kind = sp.csc_matrix if transposed else sp.csr_matrix
            a = kind((self.data, self.indices, self.indptr), shape=(n_out, n_in))
            return np.asarray(a @ x, dtype=np.float32)
        out = np.zeros((n_out, x.shape[1]), dtype=np.float32)
        _matvecs[int(transposed)](n_out, n_in, x.shape[1], self.indptr, self.indices, self.data, x.ravel(), out.ravel())
        return out


def _load_matvecs() -> tuple[Any, Any] | None:
    # Measured by timing one batch's two products (``dot`` and ``tdot``) with these kernels and with
    # ``_matvecs = None``: the public path is several times slower at the default batch size (its
    # array checks dominate) and still slower at the largest batches; the whole fit that this feeds
    # is timed in benchmarks/results/svdpp.md. tests/models/test_fast_paths.py checks both paths
    # against scipy.sparse products.
    try:
        from scipy.sparse._sparsetools import csc_matvecs, csr_matvecs  # type: ignore[attr-defined]
    except ImportError:
        return None
    return csr_matvecs, csc_matvecs


_matvecs = _load_matvecs()


def _batch_pointers(local_starts: NDArray[np.int64], bounds: NDArray[np.int64], sizes: NDArray[np.int64]) -> NDArray[np.int32]:
    """CSR row pointers of every batch in one array: batch ``s`` (rows ``bounds[s]:bounds[s + 1]``
    starting at ``local_starts``, ``sizes[s]`` columns) at ``[bounds[s] + s : bounds[s + 1] + s + 1]``."""
    n_batches = len(bounds) - 1
    out = np.empty(len(local_starts) + n_batches, dtype=np.int32)
    batch = np.repeat(np.arange(n_batches), np.diff(bounds))
    out[np.arange(len(local_starts)) + batch] = local_starts
    out[bounds[1:] + np.arange(n_batches)] = sizes
    return out


__all__: list[str] = []
