"""ALS and BPR: fits against implicit and the documented update, confidences by hand, fold-in and
partial fits against independent solves, isolation of partial fits, vectors, determinism, errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys import Interactions
from recsys.datasets import synthetic
from recsys.errors import DataError, DataTypeError, ParameterError, UnknownIdError
from recsys.models import ALS, BPR
from recsys.models._bpr_torch import fit_bpr, negative_pool, solve_items, solve_users, stable_sample
from recsys.models.als import top_singular_value
from recsys.testing import assert_rankings_equal, assert_recommendations_equal, assert_top_k

FAST_ALS = dict(n_factors=16, n_iterations=10, values="binary", weighting="none", alpha=4.0, reg=0.1, num_threads=1, show_progress=False)
FAST_BPR = dict(n_factors=16, n_epochs=40, lr=0.1, num_threads=1, show_progress=False)


def _binary(data: Interactions) -> Interactions:
    return Interactions.from_arrays(data.users.ids[data.user_index], data.items.ids[data.item_index])


@pytest.fixture(scope="module")
def data() -> Interactions:
    return _binary(synthetic(n_users=300, n_items=200, n_interactions=9000, seed=3))


def _make(kind: str, **kw: object) -> ALS | BPR:
    return ALS(**{**FAST_ALS, **kw}) if kind == "ALS" else BPR(**{**FAST_BPR, **kw})  # type: ignore[arg-type]


def _history(data: Interactions, u: int) -> np.ndarray:
    csr = data.matrix("csr", "binary")
    return data.items.ids[csr.indices[csr.indptr[u] : csr.indptr[u + 1]]]


# -- ALS fit and confidences ---------------------------------------------------------------


def test_als_fit_is_implicits_fit_with_hu_confidences(data: Interactions) -> None:
    """c = 1 + alpha w here, c = a w in implicit: binary data with alpha=4 is implicit's alpha=5, bit for bit."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    model = ALS(**FAST_ALS).fit(data)
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(factors=16, regularization=0.1, alpha=5.0, iterations=10, num_threads=1, random_state=0)
        ref.fit(data.matrix("csr", "binary"), show_progress=False)
    np.testing.assert_array_equal(model.user_factors_, ref.user_factors)
    np.testing.assert_array_equal(model.item_factors_, ref.item_factors)


def test_als_confidences_by_hand() -> None:
    df = pd.DataFrame({"user": [0, 0, 0, 1, 1, 2], "item": [0, 1, 2, 0, 3, 0], "weight": [2.0, 1.0, 4.0, 1.0, 3.0, 5.0]})
    data = Interactions.from_frame(df, weight_col="weight")
    w = np.zeros((3, 4))
    w[df.user, df.item] = df.weight
    n_users, df_i = 3, (w > 0).sum(0)
    idf = np.log(n_users / df_i)  # item 0 is held by every user: idf 0
    k1, b, alpha = 1.2, 0.75, 2.0
    lengths = w.sum(1)
    norm = 1 - b + b * lengths / lengths.mean()
    ones = (w > 0).astype(float)
    norm_ones = 1 - b + b * ones.sum(1) / ones.sum(1).mean()
    expected = {
        ("binary", "none"): 1 + alpha * ones,
        ("weight", "none"): 1 + alpha * w,
        ("weight", "tfidf"): 1 + alpha * np.sqrt(w) * idf,
        ("weight", "bm25"): 1 + alpha * w * (k1 + 1) / (k1 * norm[:, None] + w) * idf,
        # the re-weightings apply to any values: here to ones, with the lengths of the ones
        ("binary", "tfidf"): 1 + alpha * ones * idf,
        ("binary", "bm25"): 1 + alpha * ones * (k1 + 1) / (k1 * norm_ones[:, None] + ones) * idf,
    }
    for (values, weighting), want in expected.items():
        model = ALS(n_factors=2, alpha=alpha, values=values, weighting=weighting, num_threads=1, show_progress=False).fit(data)  # type: ignore[arg-type]
        conf = model._confidence(model.user_items_)
        # an entry whose weight is 0 (idf 0) keeps confidence 1: it is still a positive
        assert conf.nnz == len(df), (values, weighting)
        np.testing.assert_allclose(conf.toarray(), np.where(w > 0, want, 0.0), rtol=1e-5, err_msg=f"{values} {weighting}")


def test_als_rating_weighting_needs_ratings_and_non_negative_values(data: Interactions) -> None:
    with pytest.raises(DataError, match="needs ratings"):
        ALS(values="rating", weighting="none", num_threads=1, show_progress=False).fit(data)
    neg = Interactions.from_arrays([0, 1], [0, 1], ratings=[1.0, -2.0])  # weights cannot be negative; ratings can
    with pytest.raises(DataError, match="non-negative"):
        ALS(values="rating", weighting="none", num_threads=1, show_progress=False).fit(neg)
    rated = synthetic(n_users=50, n_items=40, n_interactions=600, seed=1)
    model = ALS(values="rating", weighting="none", n_factors=4, num_threads=1, show_progress=False).fit(rated)
    with pytest.raises(DataError, match="ratings="):
        model.recommend_history(rated.items.ids[:3])
    ids, _ = model.recommend_history(rated.items.ids[:3], ratings=[5.0, 1.0, 3.0], k=4)
    assert len(ids) == 4


# -- fold-in ---------------------------------------------------------------------------------


def test_als_fold_in_is_the_exact_weighted_least_squares_solution(data: Interactions) -> None:
    model = ALS(**{**FAST_ALS, "weighting": "bm25", "alpha": 2.0}).fit(data)
    hist = _history(data, 7)
    idx = model.items_.to_index(hist)
    Y = model.item_factors_.astype(np.float64)
    # the history's confidences: bm25 of a row of ones with the fit's idf and mean length
    w = np.ones(len(idx))
    norm = 1 - 0.75 + 0.75 * len(idx) / model.mean_length_
    c = np.ones(model.n_items_)
    c[idx] = 1 + 2.0 * w * 2.2 / (1.2 * norm + w) * model.idf_[idx]
    p = np.zeros(model.n_items_)
    p[idx] = 1.0
    A = Y.T @ (c[:, None] * Y) + model.reg * np.eye(Y.shape[1])
    x = np.linalg.solve(A, Y.T @ (c * p))
    got = model._history_vector(idx, None, None)
    np.testing.assert_allclose(got, x, rtol=1e-3, atol=1e-5)
    ids, scores = model.recommend_history(hist, k=5)
    s = Y @ x
    s[idx] = -np.inf
    s[model.cold_items_] = -np.inf
    assert_top_k(ids, scores, dict(zip(model.items_.ids.tolist(), s.tolist())), k=5, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind,least", [("ALS", 0.85), ("BPR", 0.7)])
def test_fold_in_of_a_training_history_reproduces_the_fitted_recommendations(
    data: Interactions, kind: str, least: float
) -> None:
    model = (_make(kind, n_epochs=100) if kind == "BPR" else _make(kind)).fit(data)
    users = data.users.ids[:60]
    fitted = model.recommend(users, k=10)
    overlap = []
    for j, u in enumerate(users):
        ids, _ = model.recommend_history(_history(data, j), k=10)
        mine = fitted[fitted["user"] == u]["item"].tolist()
        overlap.append(len(set(mine) & set(ids.tolist())) / 10)
    assert np.mean(overlap) >= least, f"{kind}: mean top-10 overlap {np.mean(overlap):.2f}"


def _bpr_user_objective(theta: torch.Tensor, V: torch.Tensor, hist: np.ndarray, pool: np.ndarray, reg: float) -> torch.Tensor:
    """The documented fold-in objective, by plain tensor ops (no padding, no masks)."""
    k = V.shape[1] - 1
    s = V[:, :k] @ theta + V[:, k]
    neg = np.setdiff1d(pool, hist)
    diff = s[hist][:, None] - s[neg][None, :]
    return torch.nn.functional.softplus(-diff).mean() + 0.5 * reg * theta @ theta


def _lbfgs(fn, dim: int) -> torch.Tensor:  # type: ignore[no-untyped-def]
    th = torch.zeros(dim, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([th], max_iter=1000, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = fn(th)
        loss.backward()
        return loss

    opt.step(closure)
    return th.detach()


def test_bpr_user_solve_reaches_the_documented_minimum(rng: np.random.Generator) -> None:
    n_items, k, reg = 40, 5, 0.05
    V = rng.normal(0, 0.7, (n_items, k + 1)).astype(np.float32)
    dense = (rng.random((6, n_items)) < 0.2).astype(np.float32)
    dense[5] = 0  # no history: [0, 1]
    rows = sp.csr_matrix(dense)
    pool = np.arange(0, n_items, 2, dtype=np.int64)  # a pool: the objective only sees these negatives
    got = solve_users(rows, V, pool, regularization=reg)
    Vt = torch.from_numpy(V).double()
    for u in range(5):
        hist = rows.indices[rows.indptr[u] : rows.indptr[u + 1]]
        f = lambda th: _bpr_user_objective(th, Vt, hist, pool, reg)  # noqa: E731
        want = _lbfgs(f, k)
        assert float(f(torch.from_numpy(got[u, :k]).double())) == pytest.approx(float(f(want)), abs=1e-9)
        np.testing.assert_allclose(got[u, :k], want.numpy(), atol=2e-4)
        assert got[u, k] == 1.0
    np.testing.assert_array_equal(got[5], [0.0] * k + [1.0])


def test_bpr_item_solve_reaches_the_documented_minimum(rng: np.random.Generator) -> None:
    n_users, n_items, d, reg = 30, 20, 5, 0.05
    U = rng.normal(0, 0.7, (n_users, d)).astype(np.float32)
    U[:, -1] = 1.0
    V = rng.normal(0, 0.7, (n_items, d)).astype(np.float32)
    seen = sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float32))
    item_users = sp.csr_matrix((rng.random((3, n_users)) < 0.25).astype(np.float32))
    pool = np.arange(n_items, dtype=np.int64)
    su, si = seen.nonzero()
    pairs = (su[::2].astype(np.int64), si[::2].astype(np.int64))
    m = seen.nnz / n_items
    got = solve_items(item_users, U, V, seen, pool, pairs, m, regularization=reg)
    Ut, Vt = torch.from_numpy(U).double(), torch.from_numpy(V).double()
    dense = seen.toarray() > 0
    for r in range(3):
        users = item_users.indices[item_users.indptr[r] : item_users.indptr[r + 1]]
        neg_pairs = [(w, j) for w, j in zip(*pairs) if w not in set(users.tolist())]

        def f(th: torch.Tensor) -> torch.Tensor:
            pos = sum(
                torch.nn.functional.softplus(-((Ut[u] @ th) - Ut[u] @ Vt[~dense[u]].T)).mean() for u in users
            )
            x_neg = torch.stack([Ut[w] @ Vt[j] - Ut[w] @ th for w, j in neg_pairs])
            neg = m * torch.nn.functional.softplus(-x_neg).mean()
            return (pos + neg) / (len(users) + m) + 0.5 * reg * th @ th

        want = _lbfgs(f, d)
        assert float(f(torch.from_numpy(got[r]).double())) == pytest.approx(float(f(want)), abs=1e-8)
        np.testing.assert_allclose(got[r], want.numpy(), atol=2e-4)


def test_bpr_epoch_is_the_documented_sgd_step() -> None:
    """Two users, three items, one epoch in one batch: the summed per-sample steps, from the same draws."""
    csr = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    k, lr, reg, std, seed = 3, 0.3, 0.1, 0.5, 11
    U, V = fit_bpr(csr, factors=k, learning_rate=lr, regularization=reg, epochs=1, batch_size=100, init_std=std, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    U0 = np.c_[(torch.randn(2, k, generator=gen) * std).double().numpy(), np.ones(2)]
    V0 = np.c_[(torch.randn(3, k, generator=gen) * std).double().numpy(), np.zeros(3)]
    users, items = np.array([0, 0, 1]), np.array([0, 2, 1])
    order = torch.randperm(3, generator=gen).numpy()
    neg = torch.randint(0, 3, (3,), generator=gen).numpy()
    dU, dV = np.zeros_like(U0), np.zeros_like(V0)
    for s in range(3):
        u, i, j = users[order[s]], items[order[s]], neg[s]
        if csr[u, j]:
            continue  # a seen negative is skipped
        x = U0[u] @ (V0[i] - V0[j])
        z = lr / (1 + np.exp(x))  # lr * σ(-x)
        du = z * (V0[i] - V0[j]) - lr * reg * U0[u]
        du[k] = 0.0  # the constant column never moves
        dU[u] += du
        dV[i] += z * U0[u] - lr * reg * V0[i]
        dV[j] += -z * U0[u] - lr * reg * V0[j]
    np.testing.assert_allclose(U, U0 + dU, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(V, V0 + dV, rtol=1e-5, atol=1e-6)


def test_negative_pool_is_stable_under_additions() -> None:
    warm = np.arange(5000, dtype=np.int64)
    a = negative_pool(warm, 2048, seed=3)
    b = negative_pool(np.append(warm, 5000), 2048, seed=3)
    assert len(a) == len(b) == 2048 and len(np.setdiff1d(a, b)) <= 1
    assert np.array_equal(negative_pool(warm[:100], 2048, 3), warm[:100])
    assert not np.array_equal(stable_sample(warm, 10, 1), stable_sample(warm, 10, 2))


# -- online updates ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ALS", "BPR"])
def test_partial_fit_users_moves_that_user_and_nothing_else(data: Interactions, kind: str) -> None:
    model = _make(kind).fit(data)
    users0, items0 = model.user_factors_.copy(), model.item_factors_.copy()
    index0 = model.index_
    u = 5
    uid = data.users.ids[u]
    before, _ = model.recommend_one(uid, k=10)
    seen = set(_history(data, u).tolist())
    # ten items the user has not seen, all close to one item the user never touched
    far = [i for i in model.item_vectors().ids if i not in seen][0]
    sims = model.similar_items([far], k=60)["similar_item"].tolist()
    new_items = [far] + [i for i in sims if i not in seen][:9]
    new = Interactions.from_arrays([uid] * 10 + ["newcomer"] * 3, new_items + new_items[:3])
    model.partial_fit_users(new)
    after, _ = model.recommend_one(uid, k=10)
    assert before.tolist() != after.tolist()
    assert not set(after.tolist()) & set(new_items), "the new interactions count as seen"
    # the user moved towards the new items
    mean_new = model.item_vectors(new_items).vectors.mean(0)
    assert model.user_factors_[u] @ mean_new > users0[u] @ mean_new
    # nothing else changed, bit for bit
    others = np.arange(len(users0)) != u
    np.testing.assert_array_equal(model.user_factors_[: len(users0)][others], users0[others])
    np.testing.assert_array_equal(model.item_factors_, items0)
    assert model.index_ is index0
    # the user's vector is the fold-in of the whole history; the newcomer's too
    union = np.array(sorted(seen | set(new_items)), dtype=object)
    np.testing.assert_allclose(
        model.user_factors_[u], model._history_vector(model.items_.to_index(union), None, None), rtol=1e-5, atol=1e-6
    )
    ids, _ = model.recommend_one("newcomer", k=5)
    hist_ids, _ = model.recommend_history(new_items[:3], k=5)
    assert ids.tolist() == hist_ids.tolist()
    assert len(model.users_) == len(users0) + 1
    with pytest.raises(UnknownIdError):
        model.partial_fit_users(Interactions.from_arrays([uid], ["no such item"]))
    with pytest.raises(DataTypeError):
        model.partial_fit_users(pd.DataFrame({"user": [uid], "item": [far]}))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["ALS", "BPR"])
def test_partial_fit_items_adds_an_item_and_nothing_else(data: Interactions, kind: str) -> None:
    frame = data.to_frame()
    held = frame["item"].value_counts().index[3]  # a popular item, left out of the fit
    model = _make(kind).fit(Interactions.from_frame(frame[frame["item"] != held][["user", "item"]]))
    users0, items0, n0 = model.user_factors_.copy(), model.item_factors_.copy(), model.n_items_
    assert held not in model.items_
    its_users = frame[frame["item"] == held]["user"].to_numpy()
    model.partial_fit_items(Interactions.from_arrays(its_users, [held] * len(its_users)))
    assert model.n_items_ == n0 + 1 and model.items_.ids[-1] == held
    np.testing.assert_array_equal(model.user_factors_, users0)
    np.testing.assert_array_equal(model.item_factors_[:n0], items0)
    assert model.item_popularity_[-1] == len(its_users)
    assert n0 not in model.cold_items_
    # users who took it never get it again; others can, with score = dot product
    recs = model.recommend(model.users_.ids, k=model.n_items_)
    takers = set(its_users.tolist())
    got = recs[recs["item"] == held]
    assert not set(got["user"]) & takers and len(got) == len(model.users_) - len(takers)
    u = got["user"].iloc[0]
    vec = model.user_vectors([u]).vectors[0]
    assert got["score"].iloc[0] == pytest.approx(float(vec @ model.item_factors_[-1]), rel=1e-5)
    # a popular item's solved vector ranks it high for many users
    assert (got["rank"] <= 20).mean() > 0.2
    if kind == "ALS":
        X = users0.astype(np.float64)
        c = np.ones(len(X))
        c[model.users_.to_index(its_users)] = 1 + 4.0
        p = (c > 1).astype(float)
        y = np.linalg.solve(X.T @ (c[:, None] * X) + 0.1 * np.eye(X.shape[1]), X.T @ (c * p))
        np.testing.assert_allclose(model.item_factors_[-1], y, rtol=1e-3, atol=1e-5)
    with pytest.raises(UnknownIdError):
        model.partial_fit_items(Interactions.from_arrays(["nobody"], [held]))


@pytest.mark.parametrize("kind", ["ALS", "BPR"])
def test_loaded_model_folds_in_and_updates_like_the_original(data: Interactions, kind: str) -> None:
    model = _make(kind).fit(data)
    new = Interactions.from_arrays([data.users.ids[0], "new"], [data.items.ids[1], data.items.ids[2]])
    with tempfile.TemporaryDirectory() as tmp:
        loaded = type(model).load(model.save(Path(tmp) / "m"))
        hist = _history(data, 3)
        a, sa = model.recommend_history(hist, k=5)
        b, sb = loaded.recommend_history(hist, k=5)
        assert_rankings_equal(b, sb, a, sa, rtol=1e-6)
        model.partial_fit_users(new)
        loaded.partial_fit_users(new)
        np.testing.assert_array_equal(model.user_factors_, loaded.user_factors_)
        again = type(model).load(loaded.save(Path(tmp) / "m2"))
        assert_recommendations_equal(again.recommend(["new"], k=5), model.recommend(["new"], k=5))


# -- vectors, determinism, parameters ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ALS", "BPR"])
def test_vectors_carry_external_ids_and_give_the_scores(data: Interactions, kind: str) -> None:
    model = _make(kind).fit(data)
    uv, iv = model.user_vectors(), model.item_vectors()
    assert uv.ids.tolist() == data.users.ids.tolist() and iv.ids.tolist() == data.items.ids.tolist()
    users, items = data.users.ids[[4, 0, 9]], data.items.ids[[2, 7, 7]]
    sub_u, sub_i = model.user_vectors(users), model.item_vectors(items)
    assert sub_u.ids.tolist() == users.tolist()
    np.testing.assert_allclose((sub_u.vectors * sub_i.vectors).sum(1), model.score(users, items), rtol=1e-5, atol=1e-6)
    frame = model.item_vectors(as_frame=True)
    assert frame.index.name == "item" and frame.shape == iv.vectors.shape
    assert list(frame.columns[:2]) == ["f0", "f1"]
    uv.vectors[:] = 0  # a copy: the model keeps its vectors
    assert np.abs(model.user_factors_).sum() > 0
    with pytest.raises(UnknownIdError):
        model.user_vectors(["nobody"])


@pytest.mark.parametrize("kind", ["ALS", "BPR"])
def test_single_threaded_fits_are_deterministic_per_seed(data: Interactions, kind: str) -> None:
    a, b, c = _make(kind).fit(data), _make(kind).fit(data), _make(kind, seed=1).fit(data)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_parameter_errors_name_the_parameter() -> None:
    d = _binary(synthetic(n_users=20, n_items=10, n_interactions=60, seed=0))
    for model, name in [
        (ALS(weighting="log"), "weighting"),  # type: ignore[arg-type]
        (ALS(n_factors=0), "n_factors"),
        (ALS(alpha=-1.0), "alpha"),
        (ALS(use_cg=1), "use_cg"),  # type: ignore[arg-type]
        (BPR(lr=0.0), "lr"),
        (BPR(batch_size=0), "batch_size"),
        (BPR(num_threads=0), "num_threads"),
        (BPR(show_progress="yes"), "show_progress"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(ParameterError, match=name):
            model.fit(d)


# -- values= and weighting= ---------------------------------------------------------------------


@pytest.mark.parametrize("old", ["binary", "weight", "rating"])
def test_als_old_weighting_spelling_is_refused_naming_the_new_one(old: str) -> None:
    d = synthetic(n_users=20, n_items=10, n_interactions=60, seed=0)
    with pytest.raises(ParameterError, match=rf"ALS\(weighting='{old}'\) is the old spelling.*use values='{old}', weighting='none'"):
        ALS(weighting=old, num_threads=1, show_progress=False).fit(d)  # type: ignore[arg-type]


def test_als_values_and_weighting_are_checked() -> None:
    d = synthetic(n_users=20, n_items=10, n_interactions=60, seed=0)
    with pytest.raises(ParameterError, match=r"'values' parameter of ALS must be one of 'binary', 'weight', 'rating'\. Got 'count'"):
        ALS(values="count").fit(d)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=r"'weighting' parameter of ALS must be one of 'none', 'tfidf', 'bm25'\. Got 'log'"):
        ALS(weighting="log").fit(d)  # type: ignore[arg-type]


def test_als_weighting_means_what_itemknn_weighting_means() -> None:
    from recsys.models import ItemKNN
    from recsys.models._weighting import WEIGHTINGS

    assert ALS().get_params()["values"] == "weight" and ALS().get_params()["weighting"] == "tfidf"
    for w in WEIGHTINGS:  # the same accepted spellings, one alias
        ALS(weighting=w)._validate_params()
        ItemKNN(weighting=w)._validate_params()


def _old_style(path: Path, params: dict[str, object]) -> None:
    """Rewrite a saved artifact's params as a version before ``values=`` wrote them."""
    import json

    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model"]["params"] = params
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("old", ["binary", "weight", "rating", "tfidf", "bm25"])
def test_als_artifacts_with_the_old_params_still_load(old: str, tmp_path: Path) -> None:
    from recsys import load_model

    rated = synthetic(n_users=60, n_items=40, n_interactions=700, seed=2)
    values, weighting = (old, "none") if old in ("binary", "weight", "rating") else ("weight", old)
    model = ALS(values=values, weighting=weighting, n_factors=4, num_threads=1, show_progress=False).fit(rated)  # type: ignore[arg-type]
    model.save(tmp_path / "m")
    old_params = {k: v for k, v in model.get_params().items() if k != "values"}
    old_params["weighting"] = old
    _old_style(tmp_path / "m", old_params)
    loaded = load_model(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    assert loaded.get_params()["values"] == values and loaded.get_params()["weighting"] == weighting
    hist, ratings = rated.items.ids[:4], [5.0, 1.0, 4.0, 2.0]
    assert_recommendations_equal(loaded.recommend(rated.users.ids[:10], k=5), model.recommend(rated.users.ids[:10], k=5))
    np.testing.assert_array_equal(
        loaded.recommend_history(hist, ratings=ratings, k=5)[0], model.recommend_history(hist, ratings=ratings, k=5)[0]
    )


def test_artifacts_and_configs_keep_naming_the_models_by_recsys_models_mf(tmp_path: Path) -> None:
    """ALS and BPR moved to their own modules; configs and artifacts keep the name they always stored,
    so saved models load in either version, and both names resolve."""
    from recsys._utils.registry import resolve
    from recsys.models import Recommender, als, bpr, mf

    assert mf.ALS is als.ALS is ALS and mf.BPR is bpr.BPR is BPR
    assert ALS().get_config()["class"] == "recsys.models.mf.ALS"
    assert BPR().get_config()["class"] == "recsys.models.mf.BPR"
    # full paths only: a bare name is ambiguous once a test defines another class called ALS
    for name, cls in [("recsys.models.als.ALS", ALS), ("recsys.models.mf.ALS", ALS),
                      ("recsys.models.bpr.BPR", BPR), ("recsys.models.mf.BPR", BPR)]:
        assert resolve(name) is cls, name
    built = Recommender.from_config({"class": "recsys.models.als.ALS", "params": {"n_factors": 3}})
    assert isinstance(built, ALS) and built.n_factors == 3

    class MyALS(ALS):  # a subclass is stored under its own path
        pass

    assert MyALS().get_config()["class"].endswith("MyALS")


# -- reg="auto" -------------------------------------------------------------------------------------


def test_top_singular_value_is_numpys() -> None:

    rng = np.random.default_rng(0)
    m = sp.random(50, 30, density=0.2, random_state=rng, format="csr", dtype=np.float64)
    m.data = 1.0 + 3.0 * m.data
    expected = np.linalg.svd(m.toarray(), compute_uv=False)[0]
    assert top_singular_value(m) == pytest.approx(expected, rel=1e-3)
    assert top_singular_value(sp.csr_matrix((4, 3))) == 0.0


def test_als_auto_reg_is_a_tenth_of_the_confidences_top_singular_value(data: Interactions) -> None:
    """Binary values, no weighting, alpha 4: every stored confidence is 5, so reg_ = 0.1 * 5 * sigma_1(binary),
    sigma_1 from numpy's SVD; the fit, fold-in and explanations then use exactly that penalty."""
    params = {**FAST_ALS, "reg": "auto"}
    auto = ALS(**params).fit(data)  # type: ignore[arg-type]
    sigma = np.linalg.svd(data.matrix("csr", "binary").toarray(), compute_uv=False)[0]
    assert auto.reg_ == pytest.approx(0.1 * 5.0 * sigma, rel=1e-3)
    explicit = ALS(**{**params, "reg": auto.reg_}).fit(data)  # type: ignore[arg-type]
    np.testing.assert_array_equal(auto.user_factors_, explicit.user_factors_)
    np.testing.assert_array_equal(auto.item_factors_, explicit.item_factors_)
    hist = data.items.ids[:5]
    np.testing.assert_array_equal(auto.recommend_history(hist, k=10)[1], explicit.recommend_history(hist, k=10)[1])
    e1, e2 = auto.explain(data.users.ids[0], data.items.ids[7]), explicit.explain(data.users.ids[0], data.items.ids[7])
    pd.testing.assert_frame_equal(e1, e2)


def test_als_auto_reg_grows_with_the_data() -> None:
    """Four copies of every user double the top singular value (sqrt of 4), and so the penalty."""
    small = _binary(synthetic(n_users=80, n_items=50, n_interactions=1200, seed=4))
    rows = small.to_frame()
    big = Interactions.from_frame(
        pd.concat([rows.assign(user=rows["user"].astype(str) + f"-{c}") for c in range(4)]), user_col="user", item_col="item"
    )
    a = ALS(n_factors=4, num_threads=1, show_progress=False).fit(small).reg_
    b = ALS(n_factors=4, num_threads=1, show_progress=False).fit(big).reg_
    assert b / a == pytest.approx(2.0, rel=0.02)  # tfidf's idf is unchanged: the same users in four copies


def test_als_reg_must_be_a_number_or_auto() -> None:
    d = _binary(synthetic(n_users=20, n_items=10, n_interactions=60, seed=0))
    with pytest.raises(ParameterError, match=r"'reg' parameter of ALS must be a float >= 0\.0 or 'auto'\. Got 'big'"):
        ALS(reg="big").fit(d)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="'reg' parameter of ALS"):
        ALS(reg=-1.0).fit(d)


def test_als_artifacts_saved_before_auto_reg_load_with_their_number(tmp_path: Path) -> None:
    """A state without reg_ (saved before reg="auto") uses the params' reg for fold-in and updates."""
    from recsys import load_model
    from tests.models._legacy import drop_state_key

    d = synthetic(n_users=60, n_items=40, n_interactions=700, seed=2)
    model = ALS(n_factors=4, reg=30.0, num_threads=1, show_progress=False).fit(d)
    model.save(tmp_path / "m")
    drop_state_key(tmp_path / "m", "reg_")
    loaded = load_model(tmp_path / "m")
    assert "reg_" not in vars(loaded) and loaded._penalty() == 30.0  # its state stays as saved
    hist = d.items.ids[:4]
    np.testing.assert_array_equal(loaded.recommend_history(hist, k=5)[1], model.recommend_history(hist, k=5)[1])
