"""Routines the models write themselves for speed, checked against the public library routine they replace.

* SVD++'s batch products call scipy's compiled CSR kernels (``scipy.sparse._sparsetools``):
  against ``scipy.sparse`` products.
* SVD++'s lazy per-row Adam: against ``torch.optim.Adam`` on the same parameters and gradients.
* BPR's fixed-side solves (fold-in, ``partial_fit_users``) run their own batched Newton-CG:
  against ``scipy.optimize.minimize(method="Newton-CG")`` on the documented objective.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.optimize import minimize

from recsys.models import _svdpp_train as svdpp
from recsys.models._bpr_torch import solve_users


@pytest.mark.parametrize("fast", [True, False], ids=["sparsetools", "public-fallback"])
def test_svdpp_batch_products_equal_scipy_sparse_products(rng: np.random.Generator, fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    assert svdpp._matvecs is not None, "scipy's compiled kernels should be importable (the path normally taken)"
    if not fast:
        monkeypatch.setattr(svdpp, "_matvecs", None)
    for trial in range(30):
        n_rows, n_cols, k = int(rng.integers(1, 25)), int(rng.integers(1, 40)), int(rng.integers(1, 7))
        a = sp.random(n_rows, n_cols, density=float(rng.random()), format="csr", dtype=np.float32, random_state=trial)
        a.data[:] = rng.normal(size=a.nnz).astype(np.float32)
        m = svdpp._UserItem(a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data.copy(), n_rows, n_cols)
        x = rng.normal(size=(n_cols, k)).astype(np.float32)
        y = rng.normal(size=(n_rows, k)).astype(np.float32)
        np.testing.assert_allclose(m.dot(x), (a @ x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(m.tdot(y), (a.T @ y), rtol=1e-5, atol=1e-5)
        # assigning to data changes both products (the training loop relies on it)
        m.data[:] = 2.0
        b = a.copy()
        b.data[:] = 2.0
        np.testing.assert_allclose(m.dot(x), (b @ x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(m.tdot(y), (b.T @ y), rtol=1e-5, atol=1e-5)


def test_svdpp_lazy_adam_equals_torch_adam_per_row(rng: np.random.Generator) -> None:
    """Rows stepped at different times: each row follows torch.optim.Adam run on that row alone
    (its own step count), with ``grad`` the descent direction (torch gets ``-grad``)."""
    n, width, lr, n_steps = 6, 5, 0.01, 12
    start = rng.normal(size=(n, width)).astype(np.float32)
    state = np.zeros((n, 3 * width), dtype=np.float32)
    state[:, :width] = start
    steps = np.zeros(n, dtype=np.int64)
    t = np.arange(1, n_steps + 1, dtype=np.float64)  # the bias correction by step count, as the trainer's table
    corr = np.concatenate([[0.0], np.sqrt(1.0 - svdpp._ADAM_BETA2**t) / (1.0 - svdpp._ADAM_BETA1**t)]).astype(np.float32)
    params = [torch.nn.Parameter(torch.from_numpy(start[r].copy())) for r in range(n)]
    opts = [
        torch.optim.Adam([p], lr=lr, betas=(svdpp._ADAM_BETA1, svdpp._ADAM_BETA2), eps=svdpp._ADAM_EPS) for p in params
    ]
    for _ in range(n_steps):
        rows = np.flatnonzero(rng.random(n) < 0.6)
        if len(rows) == 0:
            continue
        grad = rng.normal(size=(len(rows), width)).astype(np.float32)
        for j, r in enumerate(rows):
            params[r].grad = torch.from_numpy(-grad[j].copy())
            opts[r].step()
        steps[rows] += 1
        xs = state[rows]
        svdpp._adam_rows(xs, grad.copy(), corr[steps[rows]] * np.float32(lr))
        state[rows] = xs
        want = np.stack([p.detach().numpy() for p in params])
        np.testing.assert_allclose(state[:, :width], want, rtol=1e-5, atol=1e-6)
    assert steps.min() < steps.max(), "the check should cover rows stepped a different number of times"


def _bpr_objective(theta: np.ndarray, V: np.ndarray, hist: np.ndarray, neg: np.ndarray, reg: float) -> tuple[float, np.ndarray, np.ndarray]:
    """The documented user objective, its gradient, and the pair weights of its Hessian (float64)."""
    k = V.shape[1] - 1
    s = V[:, :k] @ theta + V[:, k]
    d = s[hist][:, None] - s[neg][None, :]
    n_pairs = d.size
    f = float(np.logaddexp(0.0, -d).sum() / n_pairs + 0.5 * reg * theta @ theta)
    sig = 1.0 / (1.0 + np.exp(d))  # σ(-d)
    q = V[:, :k]
    diff = q[hist][:, None, :] - q[neg][None, :, :]  # (H, N, k)
    g = -(sig[:, :, None] * diff).sum((0, 1)) / n_pairs + reg * theta
    gamma = sig * (1.0 - sig) / n_pairs
    return f, g, gamma


def test_bpr_fold_in_newton_cg_equals_scipy_newton_cg(rng: np.random.Generator) -> None:
    n_items, k, reg = 30, 4, 0.05
    V = rng.normal(0, 0.7, (n_items, k + 1)).astype(np.float32)
    dense = (rng.random((5, n_items)) < 0.25).astype(np.float32)
    dense[:, 0] = 1.0  # every user has a history
    rows = sp.csr_matrix(dense)
    pool = np.arange(n_items, dtype=np.int64)
    got = solve_users(rows, V, pool, regularization=reg)
    V64 = V.astype(np.float64)
    q = V64[:, :k]
    for u in range(rows.shape[0]):
        hist = rows.indices[rows.indptr[u] : rows.indptr[u + 1]]
        neg = np.setdiff1d(pool, hist)

        def hessp(theta: np.ndarray, v: np.ndarray) -> np.ndarray:
            _, _, gamma = _bpr_objective(theta, V64, hist, neg, reg)
            diff = q[hist][:, None, :] - q[neg][None, :, :]
            return np.einsum("hn,hnk->k", gamma * (diff @ v), diff) + reg * v

        res = minimize(
            lambda th: _bpr_objective(th, V64, hist, neg, reg)[0],
            np.zeros(k),
            jac=lambda th: _bpr_objective(th, V64, hist, neg, reg)[1],
            hessp=hessp,
            method="Newton-CG",
            options={"xtol": 1e-12, "maxiter": 200},
        )
        assert res.success, res.message
        np.testing.assert_allclose(got[u, :k], res.x, atol=2e-4)
        assert _bpr_objective(got[u, :k].astype(np.float64), V64, hist, neg, reg)[0] == pytest.approx(res.fun, abs=1e-8)
        assert got[u, k] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_product_equals_scipy_product(rng: np.random.Generator, dtype: type) -> None:
    # The one-pass product calls scipy's private kernel: it must equal the public `a @ b` exactly,
    # including empty rows/columns and a caller's max_nnz that is too small (it is raised to the bound).
    from recsys.models._similarity import sparse_product

    for trial in range(30):
        n, m, q = (int(x) for x in rng.integers(1, 40, 3))
        a = sp.random(n, m, density=float(rng.random()) * 0.4, format="csr", dtype=dtype, random_state=trial)
        b = sp.random(m, q, density=float(rng.random()) * 0.4, format="csr", dtype=dtype, random_state=1000 + trial)
        want = (a @ b).toarray()
        for max_nnz in (None, 0, 1):
            got = sparse_product(a, b, max_nnz)
            assert got.dtype == dtype and got.shape == (n, q)
            np.testing.assert_array_equal(got.toarray(), want)
