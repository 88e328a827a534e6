"""Multi-task rankers (SharedBottom, MMoE, PLE, ESMM): labels, heads, objective, persistence, errors."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from recsys import Interactions, load_model
from recsys.errors import DataError, NotSupportedError, ParameterError
from recsys.models import DIN, EASE, ESMM, PLE, DeepFM, MMoE, Pipeline, SharedBottom
from recsys.models.deep._towers import esmm_logit
from recsys.models.deep.trainer import roc_auc
from recsys.testing import tiny_interactions

FAST: dict[str, Any] = dict(
    hidden_units=[16], tower_units=[8], epochs=3, validation_fraction=0.0, num_threads=1, show_progress=False
)
ALL3 = {"click": "binary", "like": "binary", "rating": "regression"}
MODELS = [SharedBottom, MMoE, PLE, ESMM]


def _item_driven(n_users: int = 120, n_items: int = 60, seed: int = 0) -> Interactions:
    """Random interactions whose rating is a function of the item's feature ``kind``: 5 for kind
    "good", 2 for kind "bad" (so like = rating >= 4 is kind == "good")."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=15, replace=False)
        for j, i in enumerate(items):
            rows.append((u, int(i), 5.0 if i % 3 == 0 else 2.0, 1_000 + 10 * j))
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    items = pd.DataFrame({"item": range(n_items), "kind": ["good" if i % 3 == 0 else "bad" for i in range(n_items)]})
    return Interactions.from_frame(df, rating_col="rating", timestamp_col="timestamp", item_features=items)


@pytest.fixture(scope="module")
def data() -> Interactions:
    return tiny_interactions()


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("bottom", ["deepfm", "din"])
def test_every_model_fits_saves_and_loads_bit_identically(cls: type, bottom: str, data: Interactions, tmp_path: Path) -> None:
    model = cls(tasks=ALL3, bottom=bottom, **FAST).fit(data)
    assert model.tasks_ == ["click", "like", "rating"]
    users, items = np.repeat(data.users.ids[:4], 5), np.tile(data.items.ids[:5], 4)
    heads = ["click", "like"] + (["cvr"] if cls is ESMM else [])
    before = {h: model.predict_proba(users, items, task=h) for h in heads}
    rating = model.predict(users, items)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is cls and loaded.tasks_ == model.tasks_
    for h in heads:
        np.testing.assert_array_equal(loaded.predict_proba(users, items, task=h), before[h])
        assert before[h].dtype == np.float32 and ((before[h] > 0) & (before[h] < 1)).all()
    np.testing.assert_array_equal(loaded.predict(users, items), rating)
    np.testing.assert_array_equal(loaded.score(users, items), model.score(users, items))
    for k, v in model.state_dict_.items():
        np.testing.assert_array_equal(loaded.state_dict_[k], v)


@pytest.mark.parametrize("bottom", ["deepfm", "din"])
def test_forward_takes_the_single_task_networks_inputs_and_returns_one_column_per_task(bottom: str, data: Interactions) -> None:
    model = MMoE(tasks=ALL3, bottom=bottom, **FAST).fit(data)
    single = (DIN if bottom == "din" else DeepFM)(epochs=1, hidden_units=[8], validation_fraction=0.0, num_threads=1, show_progress=False)
    single.fit(data)
    ours = list(inspect.signature(model.module_.forward).parameters)
    theirs = list(inspect.signature(single.module_.forward).parameters)
    assert ours[: len(theirs) - 1] == theirs[:-1] and ours[-1] == theirs[-1] == "prior"
    n = 7
    batch = {"user": torch.arange(n), "item": torch.arange(n)}
    if bottom == "din":
        batch |= {"end": torch.zeros(n, dtype=torch.int64), "length": torch.zeros(n, dtype=torch.int64)}
    logits, penalty = model.module_(**batch)
    assert tuple(logits.shape) == (n, 3) and penalty.dim() == 0


def test_esmm_pctcvr_is_pctr_times_pcvr(data: Interactions) -> None:
    model = ESMM(**FAST).fit(data)
    users, items = np.repeat(data.users.ids, 4), np.tile(data.items.ids[:4], data.n_users)
    ctr, cvr, ctcvr = (model.predict_proba(users, items, task=t) for t in ("click", "cvr", "like"))
    np.testing.assert_array_equal(ctcvr, (ctr.astype(np.float64) * cvr.astype(np.float64)).astype(np.float32))
    # the network's like column is the logit of the same product; the default ranking is the product
    np.testing.assert_allclose(model.score(users, items), ctcvr, rtol=1e-6)
    a, b = torch.tensor([-30.0, -1.0, 0.0, 3.0, 30.0]), torch.tensor([2.0, 40.0, -5.0, 0.5, 30.0])
    p = torch.sigmoid(a.double()) * torch.sigmoid(b.double())
    z = esmm_logit(a, b)
    assert torch.isfinite(z).all()
    np.testing.assert_allclose(torch.sigmoid(z.double()).numpy()[:4], p.numpy()[:4], rtol=1e-5)


def test_like_head_learns_a_deterministic_function_of_an_item_feature() -> None:
    data = _item_driven()
    model = MMoE(tasks=ALL3, features=["item.kind"], hidden_units=[32], tower_units=[16], epochs=8,
                 validation_fraction=0.0, num_threads=1, show_progress=False, learning_rate=3e-3).fit(data)
    # every (user, item) pair, seen or not: like is kind == "good"
    users = np.repeat(data.users.ids, data.n_items)
    items = np.tile(data.items.ids, data.n_users)
    truth = (np.asarray(items) % 3 == 0).astype(float)
    assert roc_auc(truth, model.predict_proba(users, items, task="like")) > 0.9
    pred = model.predict(users, items)
    assert pred[truth == 1].mean() - pred[truth == 0].mean() > 1.5  # ratings 5 vs 2


def test_labels_and_masks_of_interactions_and_sampled_negatives(data: Interactions) -> None:
    m = MMoE(tasks=ALL3, **FAST)
    lab = m._labels(data)
    assert lab.shape == (data.nnz, 3)
    np.testing.assert_array_equal(lab[:, 0], 1.0)
    np.testing.assert_array_equal(lab[:, 1], (data.ratings >= 4).astype(np.float32))
    np.testing.assert_array_equal(lab[:, 2], data.ratings)
    # a sampled negative: not clicked; like unobserved (masked), except over ESMM's entire space; rating unobserved
    np.testing.assert_array_equal(m._negative_label(), [0.0, np.nan, np.nan])
    np.testing.assert_array_equal(ESMM(tasks=ALL3)._negative_label(), [0.0, 0.0, np.nan])
    assert m._samples_negatives() and not MMoE(tasks={"like": "binary"})._samples_negatives()


def test_training_loss_is_the_weighted_masked_sum_of_task_losses(data: Interactions) -> None:
    model = MMoE(tasks=ALL3, task_weights={"like": 2.0, "rating": 0.5}, **FAST).fit(data)
    net = model.module_
    z = torch.tensor([[0.5, -1.0, 3.5], [-2.0, 0.3, 1.0], [1.5, 2.0, 4.0]])
    y = torch.tensor([[1.0, 1.0, 4.0], [0.0, float("nan"), float("nan")], [1.0, 0.0, 5.0]])

    def bce(z: float, y: float) -> float:
        return -(y * math.log(1 / (1 + math.exp(-z))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-z))))

    click = (bce(0.5, 1) + bce(-2.0, 0) + bce(1.5, 1)) / 3
    like = (bce(-1.0, 1) + bce(2.0, 0)) / 2  # the NaN row is masked
    rating = ((3.5 - 4) ** 2 + (4 - 5) ** 2) / 2
    assert float(net.training_loss(z, y)) == pytest.approx(click + 2 * like + 0.5 * rating, rel=1e-6)
    # learned uncertainty weighting (Kendall et al. 2018), at chosen log-variances
    unc = MMoE(tasks=ALL3, loss_weighting="uncertainty", **FAST).fit(data).module_
    with torch.no_grad():
        unc.log_vars.copy_(torch.tensor([0.5, -1.0, 2.0]))
    want = (math.exp(-0.5) * click + 0.25) + (math.exp(1.0) * like - 0.5) + (0.5 * math.exp(-2.0) * rating + 1.0)
    assert float(unc.training_loss(z, y).detach()) == pytest.approx(want, rel=1e-6)


def test_uncertainty_weighting_learns_the_log_variances(data: Interactions) -> None:
    model = PLE(tasks=ALL3, loss_weighting="uncertainty", **FAST).fit(data)
    assert model.module_.log_vars.abs().min() > 0  # moved from their zero start
    assert "log_vars" in " ".join(model.state_dict_)


def test_validation_metrics_per_task_and_the_monitored_score(data: Interactions) -> None:
    net = MMoE(tasks=ALL3, monitor="rating", **FAST).fit(data).module_
    labels = np.array([[1, 1, 4], [0, np.nan, np.nan], [1, 0, 2], [0, np.nan, np.nan]], np.float32)
    logits = np.array([[2, 0.5, 3], [-1, 9, 9], [0.5, 1.0, 2], [1, 9, 9]], np.float32)
    got = net.validation_metrics(labels, logits)
    assert got["val_click_auc"] == pytest.approx(0.75)  # positives 2, 0.5 vs negatives -1, 1: 3 of 4 pairs ordered
    assert got["val_like_auc"] == pytest.approx(0.0)
    assert got["val_rating_rmse"] == pytest.approx(math.sqrt(0.5))
    assert got["val_score"] == pytest.approx(-math.sqrt(0.5))


def test_early_stopping_follows_the_monitored_task(data: Interactions) -> None:
    model = SharedBottom(tasks=ALL3, monitor="rating", hidden_units=[16], epochs=3, patience=3, num_threads=1,
                         show_progress=False, refit=False).fit(data)
    log = model.train_log_
    scores = [e["val_score"] for e in log["epochs"]]
    assert scores == [-e["val_rating_rmse"] for e in log["epochs"]]
    assert log["best_epoch"] == int(np.argmax(scores)) + 1
    assert {"val_click_auc", "val_like_auc"} <= set(log["epochs"][0])


def test_rank_by_combinations(data: Interactions) -> None:
    users, items = np.repeat(data.users.ids[:3], 6), np.tile(data.items.ids[:6], 3)
    model = SharedBottom(tasks=ALL3, **FAST).fit(data)
    click, like = model.predict_proba(users, items, task="click"), model.predict_proba(users, items, task="like")
    np.testing.assert_allclose(model.score(users, items), click.astype(np.float64) * like, rtol=1e-6)
    np.testing.assert_allclose(model.predict_proba(users, items), model.score(users, items), rtol=1e-6)
    for rank_by, want in (("like", like), ("rating", model.predict(users, items)), ({"click": 2.0, "like": 0.5}, click**2.0 * like**0.5)):
        other = SharedBottom(tasks=ALL3, rank_by=rank_by, **FAST).fit(data)
        np.testing.assert_allclose(other.score(users, items), want, rtol=1e-5)


def test_a_multitask_model_is_a_pipeline_ranker(data: Interactions) -> None:
    ranker = MMoE(tasks=ALL3, **{**FAST, "epochs": 2})
    model = Pipeline(retriever=EASE(reg=10.0), ranker=ranker, n_candidates=8, n_folds=2).fit(data)
    recs = model.recommend(data.users.ids, k=3)
    assert len(recs) == 3 * data.n_users and model.ranker_.uses_prior_
    # early stopping on held-out candidate rows, per task
    held = Pipeline(retriever=EASE(reg=10.0), ranker=MMoE(**{**FAST, "epochs": 2, "validation_fraction": 0.3}),
                    n_candidates=8, n_folds=2).fit(data)
    assert {"val_click_auc", "val_like_auc", "val_score"} <= set(held.ranker_.train_log_["epochs"][0])
    # the candidates' labels: clicked when held out, like and rating from that interaction's rating
    from recsys.models.deep._base import CandidateRows

    f = data.to_frame()
    u, i = data.user_index[:3].astype(np.int64), data.item_index[:3].astype(np.int64)
    cand = CandidateRows([data], np.zeros(4, np.int64), np.r_[u, u[:1]], np.r_[i, (i[:1] + 1) % data.n_items],
                         np.array([1, 1, 1, 0], np.float32), np.zeros(4, np.float32))
    lab = ranker._candidate_labels(data, cand)
    r = f["rating"].to_numpy()[:3]
    np.testing.assert_array_equal(lab[:3], np.c_[np.ones(3), r >= 4, r])
    np.testing.assert_array_equal(lab[3], [0.0, np.nan, np.nan])


def test_din_bottom_uses_the_history_before_the_given_time(data: Interactions) -> None:
    model = ESMM(bottom="din", **FAST).fit(data)
    u, i = data.users.ids[:1], data.items.ids[2:3]
    early = model.predict_proba(u, i, timestamps=[0], task="like")
    assert early.shape == (1,)
    assert not np.array_equal(early, model.predict_proba(u, i, task="like"))  # whole history vs none


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"tasks": {"click": "binary", "watch": "binary"}}, "unknown task 'watch'"),
        ({"tasks": {"click": "ordinal"}}, "unknown kind 'ordinal'"),
        ({"tasks": {"rating": "binary"}}, "task 'rating' is regression"),
        ({"tasks": {}}, "non-empty dict"),
        ({"tasks": {"like": "binary"}, "label_threshold": None}, "label_threshold must be a number"),
        ({"task_weights": {"rating": 1.0}}, "'rating', which is not one of its tasks"),
        ({"task_weights": {"like": -1.0}}, "task_weights"),
        ({"loss_weighting": "gradnorm"}, "loss_weighting"),
        ({"bottom": "wide"}, "bottom"),
        ({"rank_by": "rating"}, "'rank_by' parameter of MMoE names 'rating'"),
        ({"monitor": "rating"}, "'monitor' parameter"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, Any], match: str, data: Interactions) -> None:
    with pytest.raises(ParameterError, match=match):
        MMoE(**params, **FAST).fit(data)


def test_esmm_needs_click_and_like(data: Interactions) -> None:
    with pytest.raises(ParameterError, match="must hold 'click' and 'like'"):
        ESMM(tasks={"click": "binary", "rating": "regression"}, **FAST).fit(data)


def test_bad_data_is_named(data: Interactions) -> None:
    f = data.to_frame()
    implicit = Interactions.from_frame(f[["user", "item", "timestamp"]], timestamp_col="timestamp")
    with pytest.raises(DataError, match="task 'rating' \\(regression\\) needs ratings"):
        MMoE(tasks={"click": "binary", "rating": "regression"}, **FAST).fit(implicit)
    # a click-only model learns from implicit data
    MMoE(tasks={"click": "binary"}, label_threshold=None, **FAST).fit(implicit)
    with pytest.raises(DataError, match="binary task 'like' \\(rating >= 0.5\\) has only label 1 in the training split"):
        PLE(label_threshold=0.5, **FAST).fit(data)


def test_unknown_or_wrong_heads_are_named(data: Interactions) -> None:
    model = SharedBottom(**FAST).fit(data)
    u, i = data.users.ids[:1], data.items.ids[:1]
    with pytest.raises(ParameterError, match="SharedBottom has no head 'rating': its heads are \\['click', 'like'\\]"):
        model.predict_proba(u, i, task="rating")
    with pytest.raises(ParameterError, match="no head 'cvr'"):
        model.predict_proba(u, i, task="cvr")
    with pytest.raises(NotSupportedError, match="SharedBottom has no regression task"):
        model.predict(u, i)
    full = SharedBottom(tasks=ALL3, **FAST).fit(data)
    with pytest.raises(ParameterError, match="head 'rating' is regression; use predict"):
        full.predict_proba(u, i, task="rating")
    with pytest.raises(ParameterError, match="head 'click' is binary; use predict_proba"):
        full.predict(u, i, task="click")


def test_a_saved_model_whose_tasks_disagree_with_its_parameters_is_refused(data: Interactions, tmp_path: Path) -> None:
    from recsys.errors import ArtifactError
    from tests.test_load_validation import _edit_json

    art = SharedBottom(**FAST).fit(data).save(tmp_path / "m")
    _edit_json(art, "state.json", lambda s: s.update(tasks_=["like", "click"]))
    with pytest.raises(ArtifactError, match="field 'tasks_' is \\['like', 'click'\\]"):
        load_model(art)
