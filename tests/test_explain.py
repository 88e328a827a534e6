"""Explanations: the parts of a score sum to the score, and removing a part removes its share."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.content import HashingEncoder
from recsys.datasets import synthetic
from recsys.errors import DataError, NotSupportedError, UnknownIdError
from recsys.models import (
    ALS,
    BPR,
    EASE,
    Blend,
    ContentBased,
    Hybrid,
    ItemKNN,
    Popular,
    SessionEASE,
    SparseEASE,
    SVDpp,
    UserKNN,
)
from recsys.testing import CONTRACT_CASES, tiny_interactions


@pytest.fixture(scope="module")
def data() -> Interactions:
    return synthetic(120, 60, 2_000, seed=3)


def _history(model: Any, user: object) -> np.ndarray:
    u = model.users_.index_of(user)
    return model.items_.ids[model.seen_[u].indices]


def test_itemknn_by_hand() -> None:
    # users x items: u0 has a, b; u1 has a, b, c; u2 has b, c. Cosine: sim(a,b) = 2/sqrt(2*3), sim(a,c) = 1/sqrt(2*2), sim(b,c) = 2/sqrt(3*2)
    frame = pd.DataFrame({"user": [0, 0, 1, 1, 1, 2, 2], "item": ["a", "b", "a", "b", "c", "b", "c"]})
    model = ItemKNN(k=5, weighting="none", shrinkage=0.0).fit(Interactions.from_frame(frame))
    exp = model.explain(0, "c")
    got = dict(zip(exp["id"], exp["contribution"]))
    assert got == pytest.approx({"b": 2 / np.sqrt(6), "a": 0.5})
    assert list(exp["id"]) == ["b", "a"]  # largest first
    assert exp.attrs["score"] == pytest.approx(2 / np.sqrt(6) + 0.5)


@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
def test_itemknn_parts_sum_to_score(data: Interactions, feedback: str) -> None:
    model = ItemKNN(k=15, feedback=feedback).fit(data)
    for user in model.users_.ids[:10]:
        items, scores = model.recommend_one(user, k=3)
        for item, score in zip(items, scores):
            exp = model.explain(user, item, top=2)
            assert exp.attrs["exact"]
            assert exp["contribution"].sum() == pytest.approx(float(score), abs=1e-5)
            assert len(exp[exp["kind"] == "item"]) <= 2


def test_itemknn_removing_top_contributor(data: Interactions) -> None:
    model = ItemKNN(k=15).fit(data)
    user = model.users_.ids[5]
    hist = _history(model, user)
    item = model.recommend_one(user, k=1)[0][0]
    full = model.explain_history(hist, item, top=100)
    top = full.iloc[0]
    assert top["kind"] == "item"
    rest = [h for h in hist if h != top["id"]]
    reduced = model.explain_history(rest, item, top=100)
    assert full.attrs["score"] - reduced.attrs["score"] == pytest.approx(top["contribution"], abs=1e-5)
    # a history equal to the user's training data explains the same score as the known user
    assert full.attrs["score"] == pytest.approx(model.explain(user, item).attrs["score"], abs=1e-5)


def test_errors(data: Interactions) -> None:
    knn = ItemKNN(k=5).fit(data)
    with pytest.raises(UnknownIdError):
        knn.explain("no-such-user", knn.items_.ids[0])
    with pytest.raises(DataError, match="at least one history item"):
        knn.explain_history([], knn.items_.ids[0])
    with pytest.raises(NotSupportedError, match="BPR cannot explain"):
        BPR(n_factors=4, n_epochs=1).fit(data).explain(knn.users_.ids[0], knn.items_.ids[0])


# -- every model: exact parts, or a NotSupportedError that says why ------------------------------------

# Which models explain: a new model in recsys.models must be added here (with a decision) for this file to pass.
# "attention": attention weights over the history, labelled kind="attention" and exact=False.
EXPLAINS: dict[str, bool | str] = {
    "ALS": True, "Blend": True, "ContentBased": True, "EASE": True, "Hybrid": True, "ItemKNN": True, "Popular": True,
    "SVDpp": True, "SessionEASE": True, "SparseEASE": True, "UserKNN": True,
    "DIN": "attention",
    "BPR": False, "DeepFM": False, "Pipeline": False, "SASRec": False, "GRU4Rec": False,
    "SharedBottom": False, "MMoE": False, "PLE": False, "ESMM": False,
}


def test_every_model_has_an_explain_decision() -> None:
    assert set(EXPLAINS) == set(CONTRACT_CASES), "decide in EXPLAINS whether each model explains its scores"


@pytest.mark.parametrize("name", sorted(n for n, ok in EXPLAINS.items() if ok is False))
def test_models_without_a_decomposition_say_why(name: str) -> None:
    data = tiny_interactions()
    model = CONTRACT_CASES[name].factory().fit(data)
    user, item = data.users.ids[0], data.items.ids[0]
    with pytest.raises(NotSupportedError, match=f"{name} cannot explain its scores: .+") as err:
        model.explain(user, item)
    assert "history item" in str(err.value) or "attention" in str(err.value)
    with pytest.raises(NotSupportedError, match=f"{name} cannot explain"):
        model.explain_history(data.items.ids[:3], item)


def _als(**kw: object) -> ALS:
    return ALS(n_factors=6, reg=1.0, num_threads=1, show_progress=False, **kw)  # type: ignore[arg-type]


def _content() -> ContentBased:
    return ContentBased(encoder=HashingEncoder(dim=128))


EXPLAINING = {
    "itemknn": lambda: ItemKNN(k=15),
    "itemknn-explicit": lambda: ItemKNN(k=15, feedback="explicit"),
    "userknn": lambda: UserKNN(k=10),
    "userknn-explicit": lambda: UserKNN(k=10, feedback="explicit"),
    "ease": lambda: EASE(reg=20.0),
    "sessionease": lambda: SessionEASE(reg=20.0, session_gap=1e9),
    "sparseease": lambda: SparseEASE(n_neighbours=10, reg=20.0),
    "als-cg": lambda: _als(),
    "als-cholesky-bm25": lambda: _als(use_cg=False, weighting="bm25", alpha=3.0),
    "als-ratings": lambda: _als(values="rating", weighting="none"),
    "content": _content,
    "content-centered-decay": lambda: ContentBased(encoder=HashingEncoder(dim=128), values="centered", half_life=1e6),
    "hybrid": lambda: Hybrid(cf=ItemKNN(k=15), content=_content()),
    "hybrid-userknn-zscore-blend": lambda: Hybrid(cf=UserKNN(k=10), content=_content(), normalise="zscore", cold="blend"),
    "blend": lambda: Blend([_als(), EASE(reg=20.0)], weights=[0.7, 0.3]),
    "blend-minmax": lambda: Blend([ItemKNN(k=15), UserKNN(k=10), Popular()], normalise="minmax"),
    "popular": lambda: Popular(),
    "svdpp": lambda: SVDpp(n_factors=4, n_epochs=5, show_progress=False),
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    """Models of EXPLAINING fitted on ``data`` once per module, by name."""
    return {}


def _fit(name: str, data: Interactions, cache: dict[str, object]) -> object:
    if name not in cache:
        cache[name] = EXPLAINING[name]().fit(data)  # type: ignore[no-untyped-call]
    return cache[name]


@pytest.mark.parametrize("name", sorted(EXPLAINING))
def test_parts_sum_to_the_score(name: str, data: Interactions, fitted: dict[str, object]) -> None:
    model = _fit(name, data, fitted)
    frame = data.to_frame()
    for user in data.users.ids[:6]:
        # items across the ranking, not just the top: cold items, low scores, negative parts
        ids, _ = model.recommend_one(user, k=data.n_items)  # type: ignore[attr-defined]
        for item in ids[:: max(1, len(ids) // 6)]:
            exp = model.explain(user, item, top=3)  # type: ignore[attr-defined]
            assert exp.attrs["exact"]
            score = float(model.score([user], [item])[0])  # type: ignore[attr-defined]
            assert exp["contribution"].sum() == pytest.approx(score, abs=1e-5)
            assert exp.attrs["score"] == pytest.approx(score, abs=1e-5)
        mine = frame[frame["user"] == user]
        kw = {"ratings": mine["rating"].to_numpy(), "timestamps": mine["timestamp"].to_numpy()}
        hids, hscores = model.recommend_history(mine["item"].to_numpy(), k=data.n_items, **kw)  # type: ignore[attr-defined]
        for item, score in list(zip(hids, hscores))[:: max(1, len(hids) // 6)]:
            exp = model.explain_history(mine["item"].to_numpy(), item, top=3, **kw)  # type: ignore[attr-defined]
            assert exp["contribution"].sum() == pytest.approx(float(score), abs=1e-5)


@pytest.mark.parametrize("name", ["ease", "sessionease", "sparseease"])
def test_linear_models_removing_the_top_contributor(name: str, data: Interactions, fitted: dict[str, object]) -> None:
    model = _fit(name, data, fitted)
    for user in data.users.ids[:5]:
        hist = _history(model, user)  # type: ignore[arg-type]
        item = model.recommend_one(user, k=1)[0][0]  # type: ignore[attr-defined]
        full = model.explain_history(hist, item, top=100)  # type: ignore[attr-defined]
        top = full.iloc[0]
        assert top["kind"] == "item" and abs(top["contribution"]) > 0
        reduced = [h for h in hist if h != top["id"]]
        drop = full.attrs["score"] - float(model.recommend_history(reduced, k=data.n_items, candidates=[item])[1][0])  # type: ignore[attr-defined]
        assert drop == pytest.approx(top["contribution"], abs=1e-5)


def test_content_removing_the_top_contributor(data: Interactions, fitted: dict[str, object]) -> None:
    # score = (sum_j w_j e_j) · e_i / |sum_j w_j e_j|: linear in the history before the normalisation,
    # so removing item j takes w_j (e_j · e_i) off the unnormalised score
    model = _fit("content", data, fitted)
    emb = np.asarray(model.item_embeddings_, dtype=np.float64)  # type: ignore[attr-defined]
    user = data.users.ids[2]
    hist = _history(model, user)  # type: ignore[arg-type]
    item = model.recommend_one(user, k=1)[0][0]  # type: ignore[attr-defined]
    full = model.explain_history(hist, item, top=100)  # type: ignore[attr-defined]
    top = full.iloc[0]
    reduced = [h for h in hist if h != top["id"]]

    def norm(items: list[object]) -> float:
        return float(np.linalg.norm(emb[model.items_.to_index(np.asarray(items))].sum(axis=0)))  # type: ignore[attr-defined]

    after = float(model.recommend_history(reduced, k=data.n_items, candidates=[item])[1][0])  # type: ignore[attr-defined]
    assert full.attrs["score"] * norm(list(hist)) - top["contribution"] * norm(list(hist)) == pytest.approx(after * norm(reduced), abs=1e-4)
    # and each part is the weight over the profile's norm times the cosine
    j, i = model.items_.index_of(top["id"]), model.items_.index_of(item)  # type: ignore[attr-defined]
    assert top["contribution"] == pytest.approx(float(emb[j] @ emb[i]) / norm(list(hist)), abs=1e-6)


def test_ease_by_hand() -> None:
    # u0: a, b; u1: a, b, c; u2: b, c. G + I = [[3, 2, 1], [2, 4, 2], [1, 2, 3]], whose inverse is
    # P = [[.5, -.25, 0], [-.25, .5, -.25], [0, -.25, .5]]; B_ij = -P_ij / P_jj: B_ab = B_ba = B_bc = B_cb = 0.5, B_ac = B_ca = 0
    frame = pd.DataFrame({"user": [0, 0, 1, 1, 1, 2, 2], "item": ["a", "b", "a", "b", "c", "b", "c"]})
    model = EASE(reg=1.0).fit(Interactions.from_frame(frame))
    exp = model.explain_history(["a", "c"], "b")
    assert dict(zip(exp["id"], exp["contribution"])) == pytest.approx({"a": 0.5, "c": 0.5}, abs=1e-6)
    assert exp.attrs["score"] == pytest.approx(1.0, abs=1e-6)
    assert exp["weight"].tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
    exp = model.explain(0, "c")  # b: 0.5; a's weight for c is 0
    got = dict(zip(exp["id"], exp["contribution"]))
    assert got["b"] == pytest.approx(0.5, abs=1e-6) and got.get("a", 0.0) == pytest.approx(0.0, abs=1e-6)
    assert exp["contribution"].sum() == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("values", ["binary", "weight"])
def test_als_parts_match_a_direct_solve(data: Interactions, values: str) -> None:
    # Hu, Koren & Volinsky, section 5: x_u = W_u Y^T C_u p_u, W_u = (Y^T C_u Y + reg I)^-1, so
    # y_i · x_u = sum_j c_uj y_i^T W_u y_j; confidences c = 1 + alpha * w (weighting="none")
    alpha, reg = 2.0, 1.5
    model = ALS(n_factors=5, reg=reg, alpha=alpha, weighting="none", values=values, num_threads=1, show_progress=False).fit(data)  # type: ignore[arg-type]
    y = model.item_factors_.astype(np.float64)
    rng = np.random.default_rng(0)
    hist = rng.choice(data.items.ids, size=12, replace=False)
    item = model.recommend_history(hist, k=1)[0][0]
    exp = model.explain_history(hist, item, top=100)
    idx = model.items_.to_index(hist)
    c = np.full(len(idx), 1.0 + alpha)  # a history's values are 1 unless values="rating"
    a = y.T @ y + y[idx].T @ ((c - 1.0)[:, None] * y[idx]) + reg * np.eye(y.shape[1])
    want = c * (y[idx] @ np.linalg.solve(a, y[model.items_.index_of(item)]))
    got = dict(zip(exp["id"], exp["contribution"]))
    assert [got[h] for h in hist] == pytest.approx(want.tolist(), abs=1e-6)
    assert "residual" not in set(exp["kind"])  # fold-in's vector is this very solve
    # a known user's fitted vector is not the exact solve: the difference is reported as its own term
    user = data.users.ids[0]
    item = model.recommend_one(user, k=1)[0][0]
    exp = model.explain(user, item, top=100)
    u, i = model.users_.index_of(user), model.items_.index_of(item)
    row = data.matrix("csr", values)[u]
    c = 1.0 + alpha * (np.ones(row.nnz) if values == "binary" else row.data.astype(np.float64))
    a = y.T @ y + y[row.indices].T @ ((c - 1.0)[:, None] * y[row.indices]) + reg * np.eye(y.shape[1])
    exact = np.linalg.solve(a, y[row.indices].T @ c)
    stored = model.user_factors_[u].astype(np.float64)
    residual = dict(zip(exp["kind"], exp["contribution"]))["residual"]
    assert residual == pytest.approx(float((stored - exact) @ y[i]), abs=1e-6)
    assert exp["contribution"].sum() == pytest.approx(float(stored @ y[i]), abs=1e-6)


def test_blend_shares_add_up_and_kinds_stay_apart(data: Interactions, fitted: dict[str, object]) -> None:
    model = _fit("hybrid-userknn-zscore-blend", data, fitted)
    user = data.users.ids[1]
    item = model.recommend_one(user, k=1)[0][0]  # type: ignore[attr-defined]
    exp = model.explain(user, item, top=1000)  # type: ignore[attr-defined]
    src = exp[exp["kind"].isin(["item", "user"])]
    assert set(src["kind"]) == {"item", "user"}  # UserKNN explains by neighbours, content by history items
    assert (src["cf"] + src["content"]).to_numpy() == pytest.approx(src["contribution"].to_numpy())
    assert set(src.loc[src["kind"] == "user", "id"]) <= set(data.users.ids)
    assert (src.loc[src["kind"] == "user", "content"] == 0).all() and (src.loc[src["kind"] == "item", "cf"] == 0).all()
    assert {"cf.normalisation", "content.normalisation"} <= set(exp["kind"])
    # the CF share is the UserKNN explanation scaled by weight / std of the user's CF scores
    cf = model.cf_  # type: ignore[attr-defined]
    raw = cf.explain(user, item, top=1000)
    row = cf.score([user] * data.n_items, data.items.ids)
    warm = np.isin(data.items.ids, data.items.ids[np.asarray(data.item_counts) > 0])
    scale = float(np.std(row[warm].astype(np.float64))) / 0.5
    by_id = dict(zip(src.loc[src["kind"] == "user", "id"], src.loc[src["kind"] == "user", "cf"]))
    for uid, part in zip(raw["id"], raw["contribution"]):
        assert by_id[uid] == pytest.approx(part / scale, abs=1e-6)


@pytest.mark.parametrize("model", [Blend([ItemKNN(k=5), EASE(reg=10.0)], normalise="rank"), Hybrid(cf=ItemKNN(k=5), content=ContentBased(encoder=HashingEncoder(dim=64)), normalise="rank")])
def test_rank_normalisation_cannot_explain(model: Blend | Hybrid) -> None:
    data = tiny_interactions()
    model.fit(data)
    with pytest.raises(NotSupportedError, match="normalise='rank'.*rank"):
        model.explain(data.users.ids[0], data.items.ids[0])


def test_userknn_explains_by_neighbours(data: Interactions, fitted: dict[str, object]) -> None:
    model = _fit("userknn", data, fitted)
    user = data.users.ids[4]
    item = model.recommend_one(user, k=1)[0][0]  # type: ignore[attr-defined]
    exp = model.explain(user, item, top=1000)  # type: ignore[attr-defined]
    u = model.users_.index_of(user)  # type: ignore[attr-defined]
    nbr = model.neighbours_[u]  # type: ignore[attr-defined]
    sims = dict(zip(model.users_.to_ids(nbr.indices), nbr.data))  # type: ignore[attr-defined]
    saw = set(data.to_frame().query("item == @item")["user"])
    assert set(exp["id"]) == set(sims) & saw  # the neighbours who have the item, and only them
    for v, part, sim in zip(exp["id"], exp["contribution"], exp["similarity"]):
        assert part == pytest.approx(sims[v], abs=1e-6) and sim == pytest.approx(sims[v], abs=1e-6)  # weight 1 each


def test_popular_is_one_term(data: Interactions) -> None:
    model = Popular().fit(data)
    exp = model.explain(data.users.ids[0], data.items.ids[3])
    assert exp["kind"].tolist() == ["popularity"] and exp.attrs["n_sources"] == 0
    assert exp["contribution"].iloc[0] == float(np.asarray(data.item_counts)[3])


def test_din_offers_attention_weights_labelled_as_such() -> None:
    import torch

    case = CONTRACT_CASES["DIN"]
    data = case.data()
    model = case.factory().fit(data)
    user = data.users.ids[3]
    item = model.recommend_one(user, k=1)[0][0]
    exp = model.explain(user, item, top=1000)
    assert set(exp["kind"]) == {"attention"} and exp.attrs["exact"] is False
    assert exp.attrs["score"] == pytest.approx(float(model.score([user], [item])[0]), abs=1e-6)
    w = exp["contribution"].to_numpy()
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)  # a softmax over the user's history
    # implicit mode (no label_threshold): the history is all of the user's training items
    assert set(exp["id"]) == set(data.to_frame().query("user == @user")["item"])
    # the weights are those the network pools with: sum_h w_h rep_h is its interest vector
    net = model._inference_module()
    with torch.inference_mode():
        reps, _ = net.item_reps(None)
        hist = torch.as_tensor(model.items_.to_index(exp["id"].to_numpy()), dtype=torch.int64)
        target = reps[[model.items_.index_of(item)]]
        interest = net.attention(target, reps, hist, torch.zeros(len(hist), dtype=torch.int64))[0]
        pooled = (torch.as_tensor(w.copy())[:, None] * reps[hist]).sum(0)
    assert pooled.numpy() == pytest.approx(interest.numpy(), abs=1e-9)
    with pytest.raises(NotSupportedError, match="DIN cannot explain scores of a folded-in history"):
        model.explain_history(data.items.ids[:3], item)


def test_a_blend_explains_only_when_every_model_does() -> None:
    data = tiny_interactions()
    model = Blend([BPR(n_factors=4, n_epochs=2, num_threads=1, show_progress=False), EASE(reg=10.0)]).fit(data)
    with pytest.raises(NotSupportedError, match="Blend cannot explain its scores: BPR cannot explain its scores: .*dot products"):
        model.explain(data.users.ids[0], data.items.ids[0])
