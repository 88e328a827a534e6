"""Vectorised BPR solvers in torch: the fit (mini-batch SGD) and the fixed-side solves behind fold-in.

Why not implicit's BPR: it draws each negative item from the item column of a
random interaction, i.e. in proportion to popularity, and cannot be told
otherwise. Popular items are then pushed down and top-N accuracy on
MovieLens-like data suffers (tuned NDCG@10 0.366 on ML-100K against 0.405 for
Cornac's uniform negatives). This solver samples negatives uniformly, as in
Rendle et al. (2009) and Cornac.

Vectors carry the item bias as one more column: a user row is ``[p_u, 1]``
and an item row ``[q_i, b_i]``, so ``x_ui = user_row · item_row``.

Fit: every epoch visits every (user, positive) interaction once in a random
order, with one negative drawn uniformly among the items that have
interactions (pairs whose negative the user has seen are dropped, as Cornac
does). A mini-batch takes the sum of its per-sample SGD steps (each sample
steps as in single-sample SGD, all from the same starting point); the learning
rate decays linearly to zero over the epochs. Regularisation is applied per
sample to the rows the sample touches (``reg`` on ``p_u``, ``q_i``, ``q_j``,
``b_i``, ``b_j``), so in expectation a user's objective over one epoch is

    n_u * ( mean_{i in H_u, j not in H_u} -log σ(x_ui - x_uj) + reg/2 |p_u|² )

which is what :func:`solve_users` minimises (up to the factor ``n_u``).

How the fit runs (what makes it fast at MovieLens-20M size, measured in
benchmarks/results/bpr_scale.md): user and item rows live in one table, so a
mini-batch is one gather of its rows, a few element-wise ops written over the
gathered rows, and one scatter-add back in index order (users, positives,
negatives: each row receives its steps in the order the samples come, the same
floats as three separate scatter-adds). An epoch's samples are int32 arrays;
the seen-check runs in CSR order (:func:`unseen_mask`, cache-resident) rather
than in visiting order, and the next epoch's samples are drawn on a second
thread while the current epoch's steps run. The draws come from one generator
in one order whatever the overlap, and the updates run on one torch thread, so
a fit is deterministic for a seed (bit for bit the same as the straightforward
loop, tests/models/test_bpr_sampling.py). Two torch threads for the steps (and
the samples drawn between epochs) measured slower: 10.4 s per epoch at ML-20M
size on 2 cores against 8.7 s (benchmarks/results/bpr_scale.md).

Fixed-side solves minimise that expected objective of one side with the other
side fixed. It is smooth and strictly convex in the solved vector (for
``reg > 0``) and minimised by damped Newton-CG steps from zero: Newton
directions by conjugate gradients on exact Hessian-vector products (each
costs about one gradient; no ``k x k`` Hessian is formed), a handful of
Newton steps reaching the minimum to float precision, where first-order
methods need hundreds of passes over the (history x negatives) pairs. There
is no randomness: the negatives are a fixed pool, every warm item when the
catalogue is small. A row's solution depends on its own history only, not on
which other rows are solved with it (up to float rounding of padded sums).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import NDArray

from recsys._utils.progress import progress
from recsys._utils.topk import nonzero2d

# Rows (users or items) solved together in one padded block of a fixed-side solve.
_SOLVE_BLOCK = 512
# Float elements of one block's tensors (16 MiB).
_SOLVE_BUDGET = 1 << 22
# Newton's method: at most this many iterations; a row stops once its Newton decrement is below the tolerance.
_NEWTON_ITER = 30
_NEWTON_TOL = 1e-8
# Below this Newton decrement a full step is taken without a line search: the quadratic model
# is then accurate, and float32 objectives cannot resolve the decrease anyway.
_NEWTON_FULL = 1e-6
# Conjugate-gradient steps per Newton step, at most.
_CG_ITER = 50
# The fit's seen-check: cells of its dense mask of a block of rows (1 MiB), else entries per chunk
# of its sorted-key search (either way its working set stays in cache).
_SEEN_DENSE = 1 << 20
_SEEN_CHUNK = 1 << 16


def unseen_mask(
    indptr: NDArray[np.integer], indices: NDArray[np.integer], candidates: NDArray[np.integer]
) -> NDArray[np.bool_]:
    """For each stored entry of a canonical CSR pattern, whether its candidate column is absent from its row.

    ``candidates[s]`` is a column proposed for the row of entry ``s`` (entries in
    CSR order); the result is True where that column is not among the row's
    columns. Rows are taken a block at a time: their columns are marked in a
    dense (rows x columns) bit mask of at most ``_SEEN_DENSE`` cells, the
    candidates looked up there, and the marks cleared; when even 16 rows do not
    fit that budget (very wide catalogues), each candidate is searched among its
    row's sorted columns instead. Either way the searches stay in cache, where
    one search over all keys in a random order misses it at every step.

    Parameters
    ----------
    indptr : int array, (n_rows + 1,)
        Row pointers of a CSR pattern with sorted column indices, no duplicates.
    indices : int array, (nnz,)
        Its column indices.
    candidates : int array, (nnz,)
        One column per entry, in the same order as ``indices``.

    Returns
    -------
    ndarray of bool, (nnz,)

    Examples
    --------
    >>> import numpy as np
    >>> indptr, indices = np.array([0, 2, 3]), np.array([1, 3, 0])  # rows {1, 3} and {0}
    >>> unseen_mask(indptr, indices, np.array([3, 2, 1])).tolist()
    [False, True, True]
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices)
    candidates = np.asarray(candidates)
    nnz = len(indices)
    if len(candidates) != nnz:
        raise ValueError(f"candidates: expected one per stored entry ({nnz}), got {len(candidates)}")
    n_rows = len(indptr) - 1
    n_cols = int(max(int(indices.max(initial=-1)), int(candidates.max(initial=-1)))) + 1
    out = np.empty(nnz, dtype=bool)
    per = _SEEN_DENSE // max(1, n_cols)
    if per >= 16:
        counts = np.diff(indptr)
        marks = np.zeros(per * n_cols, dtype=bool)
        for r0 in range(0, n_rows, per):
            r1 = min(n_rows, r0 + per)
            lo, hi = int(indptr[r0]), int(indptr[r1])
            base = np.repeat(np.arange(0, (r1 - r0) * n_cols, n_cols, dtype=np.int64), counts[r0:r1])
            seen = base + indices[lo:hi]
            marks[seen] = True
            np.logical_not(marks[base + candidates[lo:hi]], out=out[lo:hi])
            marks[seen] = False
        return out
    for a in range(0, nnz, _SEEN_CHUNK):
        b = min(nnz, a + _SEEN_CHUNK)
        r0, r1 = np.searchsorted(indptr, [a, b - 1], side="right") - 1  # the chunk's first and last rows
        lo, hi = int(indptr[r0]), int(indptr[r1 + 1])
        row = np.repeat(np.arange(r0, r1 + 1, dtype=np.int64), np.diff(indptr[r0 : r1 + 2]))  # of entries lo..hi
        keys = row * n_cols + indices[lo:hi]  # sorted: the pattern is canonical
        q = row[a - lo : b - lo] * n_cols + candidates[a:b]
        pos = np.searchsorted(keys, q)
        np.minimum(pos, len(keys) - 1, out=pos)
        np.not_equal(keys[pos], q, out=out[a:b])
    return out


def epoch_triples(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    rows: NDArray[np.int32],
    warm: torch.Tensor,
    gen: torch.Generator,
) -> NDArray[np.int32]:
    """One epoch's SGD samples: every stored (user, positive) once in random order, one uniform negative each.

    Draws a permutation of the entries and one negative per position from
    ``warm`` (uniformly), in that order from ``gen``, and drops the positions
    whose negative the user has seen. ``rows`` gives each entry's row (CSR order).

    Returns
    -------
    ndarray of int32, (3, n_kept)
        Users, positives and negatives, in visiting order.
    """
    nnz = len(indices)
    order_t = torch.randperm(nnz, generator=gen, dtype=torch.int32)
    neg_t = warm[torch.randint(0, len(warm), (nnz,), generator=gen, dtype=torch.int32)]
    order, neg = order_t.numpy(), neg_t.numpy()
    # the seen-check runs in CSR order (cache-friendly searches), then follows the permutation
    in_csr = np.empty(nnz, dtype=np.int32)
    in_csr[order] = neg
    ok = torch.from_numpy(unseen_mask(indptr, indices, in_csr)[order])
    del in_csr
    # torch's gathers take the int32 positions as they are (np.take first copies them to int64: 2-3x slower)
    kept = torch.masked_select(order_t, ok)
    out = torch.empty((3, len(kept)), dtype=torch.int32)
    torch.index_select(torch.from_numpy(np.asarray(rows, dtype=np.int32)), 0, kept, out=out[0])
    torch.index_select(torch.from_numpy(np.asarray(indices, dtype=np.int32)), 0, kept, out=out[1])
    torch.masked_select(neg_t.to(torch.int32), ok, out=out[2])
    return out.numpy()


def fit_bpr(
    csr: sp.csr_matrix,
    *,
    factors: int,
    learning_rate: float,
    regularization: float,
    epochs: int,
    batch_size: int,
    init_std: float,
    seed: int,
    show_progress: bool | None = False,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Fit BPR on a binary users x items CSR (canonical: sorted indices, no duplicates).

    Deterministic for a seed: the sampling draws from one torch generator and
    the updates run in a fixed order (one torch thread; the caller sets it).

    Returns
    -------
    (user_vectors, item_vectors) : float32 arrays of shapes (n_users, factors + 1), (n_items, factors + 1)
        User rows ``[p_u, 1]``, item rows ``[q_i, b_i]``. Users without
        interactions get ``[0, 1]`` (they score items by bias); items without
        interactions get zeros.
    """
    n_users, n_items = csr.shape
    k = factors
    gen = torch.Generator().manual_seed(seed)
    # user rows then item rows in one table: one gather and one scatter-add per mini-batch
    W = torch.zeros(n_users + n_items, k + 1)
    W[:n_users, :k] = torch.randn(n_users, k, generator=gen) * init_std
    W[:n_users, k] = 1.0
    W[n_users:, :k] = torch.randn(n_items, k, generator=gen) * init_std
    indptr = np.asarray(csr.indptr, dtype=np.int64)
    indices = np.asarray(csr.indices, dtype=np.int32)
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    warm_np = np.flatnonzero(np.bincount(indices, minlength=n_items) > 0).astype(np.int32)
    warm = torch.from_numpy(warm_np)
    nnz = len(indices)
    reg = float(regularization)
    B = int(batch_size)
    idx = torch.empty(3 * B, dtype=torch.int64)
    X = torch.empty(3 * B, k + 1)  # gathered rows (users, positives, negatives), then their steps
    D = torch.empty(B, k + 1)
    P = torch.empty(B, k + 1)
    if nnz == 0 or len(warm_np) < 2:
        epochs = 0

    def sample() -> torch.Tensor:
        triples = epoch_triples(indptr, indices, rows, warm, gen)
        triples[1:] += n_users  # item rows of the table
        return torch.from_numpy(triples)

    # the next epoch's samples are drawn on a second thread while this epoch's steps run: the same
    # draws from the same generator in the same order, so the fit does not depend on the overlap
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(sample) if epochs > 0 else None
        for epoch in progress(range(epochs), desc="BPR epochs", total=epochs, show=show_progress):
            assert ahead is not None
            T = ahead.result()
            ahead = pool.submit(sample) if epoch + 1 < epochs else None
            lr = float(learning_rate) * (1.0 - epoch / epochs)
            n = T.shape[1]
            decay = lr * reg
            for start in range(0, n, B):
                b = min(B, n - start)
                ix = idx[: 3 * b]
                ix.view(3, b).copy_(T[:, start : start + b])  # users, positives, negatives
                x = torch.index_select(W, 0, ix, out=X[: 3 * b])
                Uu, Vi, Vj = x[:b], x[b : 2 * b], x[2 * b :]
                d, p = torch.sub(Vi, Vj, out=D[:b]), P[:b]
                # d/dx log σ(x) = σ(-x), x = x_ui - x_uj
                z = torch.sigmoid(-torch.mul(Uu, d, out=p).sum(1)).mul_(lr).unsqueeze_(1)
                # each step overwrites its rows in x (fewer buffers in cache): positives, negatives, users
                torch.mul(Uu, z, out=p)
                torch.sub(p, Vi, alpha=decay, out=Vi)
                torch.sub(p.neg_(), Vj, alpha=decay, out=Vj)
                torch.sub(d.mul_(z), Uu, alpha=decay, out=Uu)
                Uu[:, k] = 0.0  # the constant column of the user rows never moves
                # rows add in index order: users, then positives, then negatives
                W.index_add_(0, ix, x)
            del T
    U, V = W[:n_users], W[n_users:]
    U[torch.from_numpy(counts == 0), :k] = 0.0
    cold = torch.ones(n_items, dtype=torch.bool)
    cold[warm.long()] = False
    V[cold] = 0.0
    return np.ascontiguousarray(U.numpy()), np.ascontiguousarray(V.numpy())


def _priority(keys: NDArray[np.int64], seed: int) -> NDArray[np.uint64]:
    """A fixed pseudo-random priority per key (splitmix64 of key and seed)."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed * 0x632BE59BD9B4E019 % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))  # type: ignore[no-any-return]


def stable_sample(keys: NDArray[np.int64], size: int, seed: int) -> NDArray[np.int64]:
    """The (at most) ``size`` keys of lowest priority, sorted: adding one key changes at most one member."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) <= size:
        return np.sort(keys)
    pick = np.argpartition(_priority(keys, seed), size - 1)[:size]
    return np.sort(keys[pick])


def negative_pool(warm: NDArray[np.int64], size: int, seed: int) -> NDArray[np.int64]:
    """The fixed negatives of fixed-side solves: every warm item, or a stable sample of ``size`` of them."""
    return stable_sample(warm, size, seed)


def _padded(rows: sp.csr_matrix, order: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Column indices of the given rows padded to the longest (with 0) and the validity mask."""
    lengths = np.diff(rows.indptr)[order]
    width = max(1, int(lengths.max(initial=0)))
    mask = np.arange(width)[None, :] < lengths[:, None]
    idx = np.zeros((len(order), width), dtype=np.int64)
    starts = rows.indptr[order]
    flat = (starts[:, None] + np.arange(width)[None, :])[mask]
    idx[mask] = rows.indices[flat]
    return idx, mask


def _blocks(widths: NDArray[np.int64], cost: Callable[[int], int]) -> list[tuple[int, int]]:
    """Split rows sorted by width into consecutive blocks of at most ``_SOLVE_BUDGET`` elements.

    ``cost(w)`` is the number of elements one row of padded width ``w`` needs;
    a block's width is its last (widest) row's.
    """
    out = []
    start = 0
    n = len(widths)
    while start < n:
        per_row = np.array([cost(int(w)) for w in widths[start : start + _SOLVE_BLOCK]], dtype=np.int64)
        fits = np.flatnonzero(np.arange(1, len(per_row) + 1) * per_row <= _SOLVE_BUDGET)
        stop = start + (1 if len(fits) == 0 else int(fits[-1]) + 1)
        out.append((start, stop))
        start = stop
    return out


HVP = Callable[[torch.Tensor], torch.Tensor]


def _cg(hvp: HVP, g: torch.Tensor, max_iter: int) -> torch.Tensor:
    """Solve ``H x = -g`` row-wise by conjugate gradients (H given by products), to a relative
    residual of ``sqrt(|g|)`` kept within [1e-3, 0.1] (truncated Newton: loose far away, tight near
    the minimum)."""
    x = torch.zeros_like(g)
    r = -g
    p = r.clone()
    rs = (r * r).sum(1)
    gn = rs.sqrt()
    # forcing term sqrt(|g|) within [1e-3, 0.1]: float32 products cannot resolve a smaller residual
    tol = (gn.sqrt().clamp(1e-3, 0.1) * gn) ** 2
    live = rs > tol
    for _ in range(max_iter):
        if not bool(live.any()):
            break
        Ap = hvp(p)
        curv = (p * Ap).sum(1)
        alpha = torch.where(live & (curv > 0), rs / torch.where(curv > 0, curv, 1.0), 0.0)
        x.addcmul_(alpha.unsqueeze(1), p)
        r.addcmul_(alpha.unsqueeze(1), Ap, value=-1.0)
        new = (r * r).sum(1)
        live = live & (new > tol) & (curv > 0)
        p = r + torch.where(live, new / rs.clamp_min(1e-30), 0.0).unsqueeze(1) * p
        rs = new
    return x


def _newton(
    loss: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    grad_hvp: Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, HVP]],
    n: int,
    dim: int,
    max_iter: int = _NEWTON_ITER,
    init: torch.Tensor | None = None,
) -> torch.Tensor:
    """Minimise independent smooth convex objectives (one per row) by damped Newton-CG steps from ``init`` (zero).

    Written here rather than calling ``scipy.optimize.minimize(method="Newton-CG")`` because that
    solves one row per call, in Python, while this steps a block of up to ``_SOLVE_BLOCK`` rows with
    one batched tensor product per Hessian-vector product; the latency it gives fold-in and
    ``partial_fit_users`` is measured in benchmarks/results/mf.md (BPR rows). tests/models/test_fast_paths.py
    checks its solutions against scipy's Newton-CG.

    ``loss(theta, rows)`` gives the objective of each of the given rows (None:
    all), ``grad_hvp(theta, rows)`` their gradient and a Hessian-vector
    product (no ``dim x dim`` Hessian is ever formed: a product costs about a
    gradient). Newton directions come from conjugate gradients; steps are
    halved until the objective decreases enough (Armijo); a row stops once its
    Newton decrement is below ``_NEWTON_TOL`` (a full step is always taken
    below ``_NEWTON_FULL``).
    """
    theta = torch.zeros(n, dim) if init is None else init.clone()
    active = torch.ones(n, dtype=torch.bool)
    f = torch.full((n,), float("nan"), dtype=torch.float64)  # objective at theta, once known
    for _ in range(max_iter):
        idx = torch.nonzero(active).squeeze(1)
        if len(idx) == 0:
            break
        rows = None if len(idx) == n else idx
        th = theta[idx]
        g, hvp = grad_hvp(th, rows)
        step = _cg(hvp, g, max_iter=min(2 * dim, _CG_ITER))
        dec = -(g * step).sum(1).double()  # Newton decrement squared (>= 0)
        new = th + step
        search = dec > _NEWTON_FULL
        if bool(search.any()):
            f0 = f[idx]
            if bool(torch.isnan(f0).any()):
                f0 = loss(th, rows).double()
            t = torch.ones(len(idx), dtype=torch.float64)
            for _ in range(20):
                f1 = loss(new, rows).double()
                worse = ~(f1 <= f0 - 1e-4 * t * dec) & search
                if not worse.any():
                    break
                t = torch.where(worse, t * 0.5, t)
                new = torch.where(worse.unsqueeze(1), th + (t.unsqueeze(1) * step.double()).float(), new)
            f[idx] = torch.where(search, f1, float("nan"))
        else:
            f[idx] = float("nan")
        theta[idx] = new
        active[idx] = dec > _NEWTON_TOL
    return theta


def solve_users(
    rows: sp.csr_matrix,
    item_vectors: NDArray[np.float32],
    pool: NDArray[np.int64],
    *,
    regularization: float,
    init: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """User rows ``[p_u, 1]`` minimising each user's BPR objective with the item rows fixed.

    The objective of a user with history ``H`` (the row's columns) is the mean
    over ``i`` in ``H`` and ``j`` in ``pool`` outside ``H`` of
    ``-log σ(x_ui - x_uj)`` plus ``regularization / 2 * |p_u|²``. A user
    without history (or whose history covers the pool) gets ``[0, 1]``.
    ``init`` (n, k + 1), optional: starting rows (default zero), e.g. the
    current vectors of users with a few new interactions: the same minimum,
    reached in fewer steps.
    """
    n = rows.shape[0]
    k = item_vectors.shape[1] - 1
    out = np.zeros((n, k + 1), dtype=np.float32)
    out[:, k] = 1.0
    lengths = np.diff(rows.indptr).astype(np.int64)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    M = len(pool)
    if len(order) == 0 or M == 0:
        return out
    # gathers by numpy: the inputs may be read-only (memory-mapped) arrays
    Vn = torch.from_numpy(np.asarray(item_vectors[pool], dtype=np.float32))
    Vnk, bn = Vn[:, :k].contiguous(), Vn[:, k].contiguous()
    in_pool = np.full(item_vectors.shape[0], -1, dtype=np.int64)
    in_pool[pool] = np.arange(M)
    reg = float(regularization)
    for a, b in _blocks(lengths[order], lambda w: 4 * w * M + 2 * M + 4 * k):
        sel = order[a:b]
        P, pmask_np = _padded(rows, sel)
        # pool items in the user's history are not negatives
        nmask_np = np.ones((len(sel), M), dtype=bool)
        hit = in_pool[P]
        r, c = nonzero2d((hit >= 0) & pmask_np)
        nmask_np[r, hit[r, c]] = False
        pm = torch.from_numpy(pmask_np).float()
        nm = torch.from_numpy(nmask_np).float()
        denom = (pm.sum(1) * nm.sum(1)).clamp_min(1.0)
        Vp = torch.from_numpy(np.asarray(item_vectors[P], dtype=np.float32))
        Vpk, bp = Vp[:, :, :k].contiguous(), Vp[:, :, k].contiguous()

        def parts(rows: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
            if rows is None:
                return Vpk, bp, pm, nm, denom
            return Vpk[rows], bp[rows], pm[rows], nm[rows], denom[rows]

        def diff(th: torch.Tensor, vp: torch.Tensor, b_: torch.Tensor) -> torch.Tensor:
            sp_ = torch.bmm(vp, th.unsqueeze(2)).squeeze(2) + b_
            sn = th @ Vnk.T + bn
            return sp_.unsqueeze(2) - sn.unsqueeze(1)  # x_ui - x_uj, (n, W, M)

        def loss(th: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
            vp, b_, pm_, nm_, den = parts(rows)
            pair = torch.nn.functional.softplus(-diff(th, vp, b_)).mul_(nm_.unsqueeze(1)).sum(2).mul_(pm_).sum(1)
            return pair / den + 0.5 * reg * (th * th).sum(1)

        def grad_hvp(th: torch.Tensor, rows: torch.Tensor | None) -> tuple[torch.Tensor, HVP]:
            vp, b_, pm_, nm_, den = parts(rows)
            s = torch.sigmoid(diff(th, vp, b_).neg_()).mul_(nm_.unsqueeze(1)).mul_(pm_.unsqueeze(2))  # σ(-(x_ui - x_uj))
            g = (s.sum(1) @ Vnk - torch.bmm(s.sum(2).unsqueeze(1), vp).squeeze(1)) / den.unsqueeze(1) + reg * th
            gam = s.mul_(1.0 - s).div_(den.view(-1, 1, 1))  # σ(x)σ(-x) on valid pairs, 0 elsewhere

            rs, cs = gam.sum(2), gam.sum(1)

            def hvp(v: torch.Tensor) -> torch.Tensor:
                # H v = sum_ij γ_ij ((q_i - q_j) · v) (q_i - q_j) + reg v, with a_i = q_i · v, b_j = q_j · v:
                # = sum_i (a_i r_i - (Γ b)_i) q_i - sum_j ((Γᵀ a)_j - c_j b_j) q_j   (two products with Γ)
                a_ = torch.bmm(vp, v.unsqueeze(2)).squeeze(2)
                b_ = v @ Vnk.T
                left = a_ * rs - torch.bmm(gam, b_.unsqueeze(2)).squeeze(2)
                right = torch.bmm(a_.unsqueeze(1), gam).squeeze(1) - cs * b_
                return torch.bmm(left.unsqueeze(1), vp).squeeze(1) - right @ Vnk + reg * v

            return g, hvp

        start = None if init is None else torch.from_numpy(np.asarray(init[sel, :k], dtype=np.float32))
        theta = _newton(loss, grad_hvp, len(sel), k, init=start)
        theta[(pm.sum(1) * nm.sum(1)) == 0] = 0.0
        out[sel, :k] = theta.numpy()
    return out


def solve_items(
    item_users: sp.csr_matrix,
    user_vectors: NDArray[np.float32],
    item_vectors: NDArray[np.float32],
    seen: sp.csr_matrix,
    pool: NDArray[np.int64],
    pairs: tuple[NDArray[np.int64], NDArray[np.int64]],
    negative_weight: float,
    *,
    regularization: float,
) -> NDArray[np.float32]:
    """Item rows ``[q_i, b_i]`` minimising each item's expected BPR objective with everything else fixed.

    In one epoch of the fit an item is the positive of each of its ``n_i``
    users once (against a uniform negative ``j``) and the negative of about
    ``m = negative_weight`` (interactions / warm items) random interactions
    ``(w, l)``; each appearance adds ``reg/2 |[q_i, b_i]|²``. The solved
    objective is that expectation divided by ``n_i + m``::

        ( sum_{u in U_i} mean_{j in pool, j not in H_u} -log σ(x_ui - x_uj)
          + m * mean_{(w, l) in pairs, w not in U_i} -log σ(x_wl - x_wi) ) / (n_i + m)
        + reg/2 |[q_i, b_i]|²

    ``item_users`` (n_solve x n_users) holds each solved item's users,
    ``seen`` (users x items) the histories, ``pairs`` a fixed sample of
    training interactions (users, items). An item without users gets zeros.
    """
    n = item_users.shape[0]
    d = user_vectors.shape[1]
    out = np.zeros((n, d), dtype=np.float32)
    lengths = np.diff(item_users.indptr).astype(np.int64)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    if len(order) == 0:
        return out
    # gathers by numpy: the inputs may be read-only (memory-mapped) arrays
    Vn = torch.from_numpy(np.asarray(item_vectors[pool], dtype=np.float32))
    M = len(pool)
    pw, pl = pairs
    Wp = torch.from_numpy(np.asarray(user_vectors[pw], dtype=np.float32))  # (P, d)
    s_pairs = (Wp * torch.from_numpy(np.asarray(item_vectors[pl], dtype=np.float32))).sum(1)
    m = float(negative_weight)
    reg = float(regularization)
    seen_pool = seen[:, pool].tocsr()
    for a, b in _blocks(lengths[order], lambda w: 5 * w * M + 3 * len(pw) + (w + 4) * d):
        sel = order[a:b]
        P, umask_np = _padded(item_users, sel)
        # for each (item, user slot), the pool items that user has seen are not negatives
        nmask_np = np.zeros((len(sel), P.shape[1], M), dtype=bool)
        flat_users = P[umask_np]
        sub = seen_pool[flat_users]
        block = np.ones((len(flat_users), M), dtype=bool)
        block[np.repeat(np.arange(len(flat_users)), np.diff(sub.indptr)), sub.indices] = False
        nmask_np[umask_np] = block
        nm = torch.from_numpy(nmask_np).float()
        cnt = nm.sum(2)
        w_slot = torch.where(cnt > 0, 1.0 / cnt.clamp_min(1.0), 0.0)  # mean over each user's negatives
        Ub = torch.from_numpy(np.asarray(user_vectors[P], dtype=np.float32))  # (n, W, d)
        S = torch.matmul(Ub, Vn.T)  # x_uj, fixed
        # pair users who are users of the item are not negatives for it
        hit = item_users[sel].tocsr()[:, pw].tocoo()
        pm_np = np.ones((len(sel), len(pw)), dtype=bool)
        pm_np[hit.row, hit.col] = False
        pm = torch.from_numpy(pm_np).float()
        w_pair = m / pm.sum(1).clamp_min(1.0)
        n_i = torch.from_numpy(umask_np.sum(1).astype(np.float32))
        scale = 1.0 / (n_i + m)

        def parts(rows: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
            if rows is None:
                return Ub, S, nm, w_slot, pm, w_pair, scale
            return Ub[rows], S[rows], nm[rows], w_slot[rows], pm[rows], w_pair[rows], scale[rows]

        def loss(th: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
            ub, s_, nm_, ws, pm_, wp, sc = parts(rows)
            xp = torch.bmm(ub, th.unsqueeze(2)) - s_  # x_ui - x_uj per user slot and pool item
            xn = s_pairs.unsqueeze(0) - th @ Wp.T  # x_wl - x_wi per pair
            lp = (torch.nn.functional.softplus(-xp) * nm_).sum(2).mul_(ws).sum(1)
            ln = (torch.nn.functional.softplus(-xn) * pm_).sum(1) * wp
            return (lp + ln) * sc + 0.5 * reg * (th * th).sum(1)

        def grad_hvp(th: torch.Tensor, rows: torch.Tensor | None) -> tuple[torch.Tensor, HVP]:
            ub, s_, nm_, ws, pm_, wp, sc = parts(rows)
            xp = torch.bmm(ub, th.unsqueeze(2)) - s_
            xn = s_pairs.unsqueeze(0) - th @ Wp.T
            sp_ = torch.sigmoid(-xp).mul_(nm_)
            sn = torch.sigmoid(-xn).mul_(pm_)
            cp = sp_.sum(2) * ws  # (n, W)
            g = (-torch.bmm(cp.unsqueeze(1), ub).squeeze(1) + (sn @ Wp) * wp.unsqueeze(1)) * sc.unsqueeze(1) + reg * th
            hp = sp_.mul_(1.0 - sp_).sum(2) * (ws * sc.unsqueeze(1))
            hn = sn.mul_(1.0 - sn) * (wp * sc).unsqueeze(1)

            def hvp(v: torch.Tensor) -> torch.Tensor:
                a_ = torch.bmm(ub, v.unsqueeze(2)).squeeze(2) * hp
                return torch.bmm(a_.unsqueeze(1), ub).squeeze(1) + ((v @ Wp.T) * hn) @ Wp + reg * v

            return g, hvp

        out[sel] = _newton(loss, grad_hvp, len(sel), d).numpy()
    return out
