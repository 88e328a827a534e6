"""SASRec and GRU4Rec: next-item quality on Markov data, sequences, fold-in, persistence, bad input, losses."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.datasets import synthetic
from recsys.errors import DataError, DataWarning, ParameterError, UnknownIdError
from recsys.evaluation import Evaluator
from recsys.models import GRU4Rec, Popular, SASRec
from recsys.models.deep import _sequential
from recsys.models.deep._sequential import ndcg_of_targets, padded, user_sequences
from recsys.split import leave_last_n, leave_one_out
from recsys.testing import assert_rankings_equal

torch = pytest.importorskip("torch")

MODELS = [SASRec, GRU4Rec]
FAST = dict(max_len=20, dim=16, epochs=3, batch_size=32, learning_rate=0.005, validation_users=0, num_threads=1, show_progress=False)


@pytest.fixture(scope="module")
def markov() -> Interactions:
    return synthetic(300, 100, 6000, seed=3, sequential=0.9)


@pytest.fixture(scope="module")
def small() -> Interactions:
    return synthetic(120, 60, 1500, seed=2, sequential=0.5)


def _history(data: Interactions, user: object) -> pd.DataFrame:
    f = data.to_frame()
    return f[f["user"] == user]


# -- quality ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
def test_beats_popular_on_markov_data(markov: Interactions, cls: type) -> None:
    train, test = leave_last_n(markov, 1)
    ev = Evaluator(train, test, k=10, metrics=["ndcg"])
    pop = ev.evaluate(Popular().fit(train)).summary["ndcg@10"]
    model = cls(**{**FAST, "dim": 32, "epochs": 10}).fit(train)
    ndcg = ev.evaluate(model).summary["ndcg@10"]
    assert ndcg > 1.8 * pop, (ndcg, pop)


def test_validation_score_is_the_leave_one_out_ndcg(small: Interactions) -> None:
    """The early-stopping score logged after the only epoch equals NDCG@10 of each validation user's last
    item computed independently, by folding in their earlier items (every item has interactions here)."""
    assert (small.item_counts > 0).all()
    model = SASRec(**{**FAST, "epochs": 1, "validation_users": 10_000}).fit(small)
    logged = model.train_result_["epochs"][0]["val_ndcg@10"]
    f = small.to_frame()
    gains = []
    for _, g in f.groupby("user", sort=False):
        if len(g) < 3:
            continue
        g = g.iloc[np.argsort(g["timestamp"].to_numpy(), kind="stable")]
        ids, _ = model.recommend_history(g["item"].to_numpy()[:-1], k=10)
        hit = np.flatnonzero(ids == g["item"].to_numpy()[-1])
        gains.append(1.0 / np.log2(hit[0] + 2.0) if len(hit) else 0.0)
    assert logged == pytest.approx(np.mean(gains), abs=1e-9)


# -- sequences ----------------------------------------------------------------------------------


def test_user_sequences_order_by_time_ties_by_row() -> None:
    d = Interactions.from_arrays(["a"] * 4 + ["b"], [10, 11, 12, 13, 10], timestamps=[5, 3, 5, 1, 7])
    indptr, items = user_sequences(d, "SASRec")
    assert d.items.to_ids(items[indptr[0] : indptr[1]]).tolist() == [13, 11, 10, 12]  # 10 and 12 tie: row order
    assert d.items.to_ids(items[indptr[1] : indptr[2]]).tolist() == [10]


def test_padded_keeps_the_newest_items() -> None:
    items = np.array([0, 1, 2, 3, 4, 5])
    assert padded(items, np.array([6, 2]), np.array([6, 2]), 4).tolist() == [[3, 4, 5, 6], [0, 0, 1, 2]]


def test_ndcg_of_targets_numpy_and_torch_agree() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(50, 30))
    t = rng.integers(0, 30, 50)
    ref = [1 / np.log2(r + 2) if r < 10 else 0.0 for r in (s > s[np.arange(50), t][:, None]).sum(1)]
    np.testing.assert_allclose(ndcg_of_targets(s, t), ref)
    np.testing.assert_allclose(ndcg_of_targets(torch.from_numpy(s), torch.from_numpy(t)).numpy(), ref)


@pytest.mark.parametrize("cls", MODELS)
def test_history_of_a_training_user_equals_recommend(small: Interactions, cls: type) -> None:
    model = cls(**FAST).fit(small)
    for u in small.users.ids[:10]:
        h = _history(small, u).sample(frac=1.0, random_state=1)  # shuffled rows: the timestamps give the order
        ids, scores = model.recommend_history(h["item"].to_numpy(), k=small.n_items, timestamps=h["timestamp"].to_numpy())
        ref_ids, ref_scores = model.recommend_one(u, k=small.n_items)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(scores, ref_scores)


@pytest.mark.parametrize("cls", MODELS)
def test_histories_longer_than_max_len_are_truncated_to_the_newest(small: Interactions, cls: type) -> None:
    model = cls(**{**FAST, "max_len": 4}).fit(small)
    counts = pd.Series(small.user_counts, index=small.users.ids)
    u = counts.idxmax()
    assert counts[u] > 4
    h = _history(small, u).sort_values("timestamp", kind="stable")
    newest = h["item"].to_numpy()[-4:]
    ids, scores = model.recommend_history(newest, k=10, exclude_seen=False)
    ref_ids, ref_scores = model.recommend_one(u, k=10, exclude_seen=False)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores)
    other = model.recommend_history(h["item"].to_numpy()[-5:], k=10, exclude_seen=False)  # one item more: 5 > 4
    np.testing.assert_array_equal(other[1], ref_scores)


@pytest.mark.parametrize("cls", MODELS)
def test_timestamp_ties_keep_the_given_order(small: Interactions, cls: type) -> None:
    model = cls(**FAST).fit(small)
    items = small.items.ids[[3, 7, 11]]
    tied = model.recommend_history(items, k=10, timestamps=[5, 5, 5])
    plain = model.recommend_history(items, k=10)
    np.testing.assert_array_equal(tied[1], plain[1])
    swapped = model.recommend_history(items[[1, 0, 2]], k=10, timestamps=[5, 5, 5])
    assert not np.array_equal(swapped[1], plain[1]), "the order of tied items matters to a sequence model"
    by_time = model.recommend_history(items[[1, 0, 2]], k=10, timestamps=[6, 5, 7])  # in time: items 0, 1, 2
    np.testing.assert_array_equal(by_time[1], plain[1])


@pytest.mark.parametrize("cls", MODELS)
def test_single_interaction_users(cls: type) -> None:
    f = synthetic(80, 40, 900, seed=4, return_frames=True).frame
    solo = pd.DataFrame({"user": [1000, 1001], "item": [3, 5], "rating": [4, 4], "timestamp": [1, 2]})
    data = Interactions.from_frame(pd.concat([f, solo], ignore_index=True), timestamp_col="timestamp")
    model = cls(**FAST).fit(data)
    ids, scores = model.recommend_one(1000, k=5)
    assert len(ids) == 5 and 3 not in ids.tolist()
    np.testing.assert_array_equal(scores, model.recommend_history([3], k=5)[1])


def test_users_of_one_interaction_only_give_no_target() -> None:
    data = Interactions.from_arrays([1, 2, 3], ["a", "b", "c"], timestamps=[1, 2, 3])
    with pytest.raises(DataError, match="at least two interactions"):
        SASRec(**FAST).fit(data)


@pytest.mark.parametrize("cls", MODELS)
def test_missing_timestamps_take_row_order_with_a_warning(small: Interactions, cls: type) -> None:
    f = small.to_frame().sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
    no_time = Interactions.from_frame(f[["user", "item"]])
    with pytest.warns(DataWarning, match="no timestamps"):
        a = cls(**FAST).fit(no_time)
    b = cls(**FAST).fit(Interactions.from_frame(f.assign(timestamp=np.arange(len(f))), timestamp_col="timestamp"))
    pd.testing.assert_frame_equal(a.recommend(no_time.users.ids[:20], k=5), b.recommend(no_time.users.ids[:20], k=5))


@pytest.mark.parametrize("cls", MODELS)
def test_unknown_history_items_follow_on_unknown_items(small: Interactions, cls: type) -> None:
    model = cls(**FAST).fit(small)
    items = list(small.items.ids[[2, 9]])
    with pytest.raises(UnknownIdError, match="nope"):
        model.recommend_history(items + ["nope"], k=5)
    skipped = model.recommend_history(items[:1] + ["nope"] + items[1:], k=5, on_unknown_items="skip")
    assert_rankings_equal(*skipped, *model.recommend_history(items, k=5))
    with pytest.raises(DataError, match="on_unknown_items='popular'"):
        model.recommend_history(["nope"], k=5, on_unknown_items="skip")
    ids, _ = model.recommend_history(["nope"], k=3, on_unknown_items="popular")
    assert ids.tolist() == small.items.ids[np.argsort(-small.item_counts, kind="stable")[:3]].tolist()


# -- persistence, similarity, features -----------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
def test_save_load_gives_identical_recommendations(small: Interactions, cls: type, tmp_path: object) -> None:
    model = cls(**{**FAST, "item_features": ["genres"]}).fit(small)
    loaded = cls.load(model.save(tmp_path / "m"))  # type: ignore[operator]
    users = small.users.ids
    pd.testing.assert_frame_equal(model.recommend(users, k=10), loaded.recommend(users, k=10))
    hist = small.items.ids[[1, 4, 8]]
    for a, b in zip(model.recommend_history(hist, k=10), loaded.recommend_history(hist, k=10)):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(model.similar_items(hist, k=5), loaded.similar_items(hist, k=5))
    # no pickle: the network's weights are plain arrays beside the JSON state, as every model's
    files = list(tmp_path.rglob("arrays/*"))  # type: ignore[attr-defined]
    assert any("state_dict_" in p.name for p in files)
    for p in files:
        np.load(p, allow_pickle=False)


def test_similar_items_is_the_cosine_of_item_vectors(small: Interactions) -> None:
    model = SASRec(**FAST).fit(small)
    v = model.module_.item_table().detach().double().numpy()[1:]
    item = small.items.ids[5]
    cos = v @ v[5] / np.linalg.norm(v, axis=1) / np.linalg.norm(v[5])
    cos[5] = -np.inf
    sims = model.similar_items([item], k=3)
    assert sims["similar_item"].tolist() == small.items.ids[np.argsort(-cos, kind="stable")[:3]].tolist()


def test_item_features_are_added_to_the_item_embedding(small: Interactions) -> None:
    plain = SASRec(**FAST).fit(small)
    feat = SASRec(**{**FAST, "item_features": ["genres", "category"]}).fit(small)
    net = feat.module_
    assert net.feature_emb is not None and plain.module_.feature_emb is None
    # the item vector of item 0: its id embedding plus the mean of its genres' embeddings plus its category's
    rows = feat.feature_rows_[0]
    (_, a, b), (_, c, _) = feat.feature_layout_["fields"]
    g = [r for r in rows[a:b] if r > 0]
    want = net.item_emb.weight[1] + net.feature_emb.weight[g].mean(0) + net.feature_emb.weight[rows[c]]
    torch.testing.assert_close(net.item_table()[1], want)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, name",
    [
        ({"max_len": 0}, "max_len"),
        ({"loss": "bpr"}, "loss"),
        ({"dim": 10, "n_heads": 3}, "n_heads"),
        ({"dropout": 1.0}, "dropout"),
        ({"n_negatives": 0}, "n_negatives"),
        ({"gbce_t": 1.5}, "gbce_t"),
        ({"item_features": "genres"}, "item_features"),
        ({"validation_users": -1}, "validation_users"),
    ],
)
def test_bad_parameters_name_the_parameter(small: Interactions, params: dict[str, object], name: str) -> None:
    with pytest.raises(ParameterError, match=f"'{name}'"):
        SASRec(**{**FAST, **params}).fit(small)  # type: ignore[arg-type]


def test_text_item_features_are_refused(small: Interactions) -> None:
    with pytest.raises(ParameterError, match="'item_features'.*title"):
        GRU4Rec(**{**FAST, "item_features": ["title"]}).fit(small)


def test_a_catalogue_too_large_for_full_softmax_names_sampled(small: Interactions, monkeypatch: pytest.MonkeyPatch) -> None:
    need = 3 * 4 * 32 * 20 * (small.n_items + 1)  # logits of one batch, with softmax and gradient
    monkeypatch.setattr(_sequential, "_available_memory", lambda device: need)  # half of it is allowed
    with pytest.raises(ParameterError, match="loss='sampled'"):
        SASRec(**FAST).fit(small)
    SASRec(**{**FAST, "loss": "sampled", "n_negatives": 8}).fit(small)  # sampled softmax needs no such memory
    monkeypatch.setattr(_sequential, "_available_memory", lambda device: 2 * need)
    SASRec(**FAST).fit(small)


# -- losses -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("loss", ["softmax", "sampled", "gbce"])
def test_each_loss_trains(small: Interactions, cls: type, loss: str) -> None:
    model = cls(**{**FAST, "loss": loss, "n_negatives": 16, "epochs": 4}).fit(small)
    losses = [e["loss"] for e in model.train_result_["epochs"]]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_gbce_beta_is_petrov_and_macdonalds() -> None:
    net = SASRec(**{**FAST, "loss": "gbce", "n_negatives": 9})._build_module(101, np.zeros((101, 0), np.int64), {"fields": [], "n_rows": 1})
    alpha = 9 / 100
    assert net.beta == pytest.approx(alpha * (0.75 * (1 - 1 / alpha) + 1 / alpha))
    t0 = SASRec(loss="gbce", n_negatives=9, gbce_t=0.0)._build_module(101, np.zeros((101, 0), np.int64), {"fields": [], "n_rows": 1})
    assert t0.beta == pytest.approx(1.0)  # t = 0: plain binary cross-entropy


def test_gbce_loss_value_by_hand() -> None:
    net = SASRec(**{**FAST, "loss": "gbce", "n_negatives": 2, "dropout": 0.0})._build_module(5, np.zeros((5, 0), np.int64), {"fields": [], "n_rows": 1})
    net.eval()
    seq = torch.tensor([[0, 1, 2]])
    torch.manual_seed(0)
    loss, _ = net(seq)
    torch.manual_seed(0)
    neg = torch.randint(1, 6, (1, 2))
    # the query: the network's encoding plus sqrt(dim) times the mean of the items read (item row 1 only)
    h = net.encode(seq[:, :-1])[0, -1] + FAST["dim"] ** 0.5 * net.item_emb.weight[1]
    table = net.item_table()
    s_pos, s_neg = h @ table[2], table[neg[0]] @ h
    sp = torch.nn.functional.softplus
    per = net.beta * sp(-s_pos) + (sp(s_neg) * (neg[0] != 2)).sum()
    torch.testing.assert_close(loss, per / 3)


# -- data -----------------------------------------------------------------------------------------


def test_leave_one_out_by_hand() -> None:
    d = Interactions.from_arrays([1, 1, 1, 1, 2, 2, 3], list("abcdabc"), timestamps=[4, 1, 3, 2, 2, 1, 1])
    train, valid, test = leave_one_out(d)
    pairs = [sorted(zip(p.to_frame()["user"], p.to_frame()["item"])) for p in (train, valid, test)]
    assert pairs == [[(1, "b"), (1, "d"), (2, "b"), (3, "c")], [(1, "c")], [(1, "a"), (2, "a")]]


def test_synthetic_default_is_unchanged() -> None:
    s = synthetic(300, 200, 6000, seed=1, return_frames=True)
    digest = hashlib.sha1(s.frame.to_numpy().tobytes()).hexdigest()
    assert digest == "213aed934ac4a1838139cdeb1b97300f469d75fb"  # the generator's output before the sequential option
    z = synthetic(300, 200, 6000, seed=1, sequential=0.0, return_frames=True)
    pd.testing.assert_frame_equal(s.frame, z.frame)


def test_synthetic_sequential_follows_a_category_chain() -> None:
    def chain_share(p: float) -> float:
        s = synthetic(400, 200, 10000, seed=1, sequential=p, return_frames=True)
        cat = s.item_features.set_index("item")["category"]
        f = s.frame
        same_user = f["user"].to_numpy()[1:] == f["user"].to_numpy()[:-1]
        prev = cat[f["item"].to_numpy()[:-1]].to_numpy()[same_user]
        nxt = cat[f["item"].to_numpy()[1:]].to_numpy()[same_user]
        pairs = pd.DataFrame({"prev": prev, "next": nxt})
        # share of transitions going to each category's most frequent next category
        return float(pairs.groupby("prev")["next"].agg(lambda x: x.value_counts().iloc[0]).sum() / len(pairs))

    base, markov = chain_share(0.0), chain_share(0.9)
    # (a successor the user already had earlier is skipped, so fewer than 90% of the steps follow the chain)
    assert markov > 0.6 and markov > base + 0.3, (base, markov)
    plain = synthetic(400, 200, 10000, seed=1, return_frames=True)
    seq = synthetic(400, 200, 10000, seed=1, sequential=0.9, return_frames=True)
    np.testing.assert_array_equal(plain.frame["timestamp"], seq.frame["timestamp"])
    pd.testing.assert_frame_equal(plain.item_features, seq.item_features)
    assert not seq.frame.duplicated(["user", "item"]).any()


@pytest.mark.parametrize("cls", MODELS)
def test_history_mean_adds_the_scaled_running_mean_of_the_items_read(cls: type) -> None:
    """With history_mean the query at each position is the network's encoding plus sqrt(dim) times the
    mean of the embeddings of the items up to it (padding left out), worked out here in numpy."""
    net = cls(**{**FAST, "dropout": 0.0})._build_module(6, np.zeros((6, 0), np.int64), {"fields": [], "n_rows": 1}).eval()
    seq = torch.tensor([[0, 0, 3, 1, 5], [2, 4, 4, 6, 1]])
    with torch.no_grad():
        got = (net.represent(seq) - net.encode(seq)).numpy()
    emb = net.item_emb.weight.detach().numpy()
    want = np.zeros_like(got)
    for b, row in enumerate(seq.tolist()):
        read = []
        for t, r in enumerate(row):
            if r > 0:
                read.append(emb[r])
            if read:
                want[b, t] = np.sqrt(FAST["dim"]) * np.mean(read, axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    plain = cls(**{**FAST, "dropout": 0.0, "history_mean": False})._build_module(6, np.zeros((6, 0), np.int64), {"fields": [], "n_rows": 1}).eval()
    assert "history_scale" in net.state_dict() and "history_scale" not in plain.state_dict()
    with torch.no_grad():
        torch.testing.assert_close(plain.represent(seq), plain.encode(seq))


@pytest.mark.parametrize("cls", MODELS)
def test_set_loss_predicts_each_item_from_the_mean_of_the_others(cls: type) -> None:
    """In training the loss is the next-item loss plus set_loss times the cross-entropy of every item of a
    row against sqrt(dim) times the mean embedding of the row's other items (worked out here in numpy)."""
    net = cls(**{**FAST, "dropout": 0.0, "set_loss": 0.5})._build_module(6, np.zeros((6, 0), np.int64), {"fields": [], "n_rows": 1})
    seq = torch.tensor([[0, 0, 3, 1, 5], [2, 4, 6, 6, 1], [0, 0, 0, 0, 4]])
    with torch.no_grad():
        total = net.train()(seq)[0]
        next_item = net.eval()(seq)[0]  # dropout 0: the same network, without the set term
    emb = net.item_emb.weight.detach().double().numpy()
    terms = []
    for row in seq.tolist():
        items = [r for r in row if r > 0]
        if len(items) < 2:  # a single item has no others to be predicted from
            continue
        for j, target in enumerate(items):
            q = np.sqrt(FAST["dim"]) * np.mean([emb[r] for k, r in enumerate(items) if k != j], axis=0)
            logits = emb[1:] @ q  # the padding row is never a target
            terms.append(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[target - 1])
    assert len(terms) == 8
    torch.testing.assert_close(total.double(), next_item.double() + 0.5 * float(np.mean(terms)), rtol=1e-5, atol=1e-6)


def test_set_loss_must_be_a_non_negative_float(small: Interactions) -> None:
    with pytest.raises(ParameterError, match="'set_loss' parameter of SASRec must be a float >= 0.0"):
        SASRec(**{**FAST, "set_loss": -1.0}).fit(small)


def test_history_mean_must_be_a_bool(small: Interactions) -> None:
    with pytest.raises(ParameterError, match="history_mean"):
        SASRec(**{**FAST, "history_mean": "yes"}).fit(small)
