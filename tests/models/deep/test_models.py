"""DeepFM / DIN as recommenders: determinism, persistence, devices, labels, parameters, progress."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from recsys import Interactions
from recsys.errors import DataError, ParameterError, RecsysWarning
from recsys.models import DIN, DeepFM
from recsys.models.deep import resolve_device
from recsys.persistence import load_model
from recsys.testing import assert_top_k, tiny_interactions

FAST: dict[str, Any] = dict(epochs=2, hidden_units=[16], validation_fraction=0.0, show_progress=False)
MODELS = [(DeepFM, {}), (DIN, {"attention_units": [8]})]


def _state(model: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in model.state_dict_.items()}


@pytest.mark.parametrize("cls,extra", MODELS)
@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_same_model_on_cpu(cls: Any, extra: dict[str, Any], threads: int) -> None:
    data = tiny_interactions()
    a = _state(cls(seed=3, num_threads=threads, dropout=0.1, **FAST, **extra).fit(data))
    b = _state(cls(seed=3, num_threads=threads, dropout=0.1, **FAST, **extra).fit(data))
    c = _state(cls(seed=4, num_threads=threads, dropout=0.1, **FAST, **extra).fit(data))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("cls,extra", MODELS)
def test_save_load_gives_identical_predictions_without_pickle(cls: Any, extra: dict[str, Any], tmp_path: Path) -> None:
    data = tiny_interactions()
    model = cls(label_threshold=4, num_threads=1, **FAST, **extra).fit(data)
    path = model.save(tmp_path / "m")
    files = [p.name for p in path.rglob("*") if p.is_file()]
    assert all(f.endswith((".npy", ".json")) for f in files), files
    loaded = load_model(path)
    assert type(loaded) is cls and loaded.get_config() == model.get_config()
    users, items = data.users.to_ids(data.user_index), data.items.to_ids(data.item_index)
    np.testing.assert_array_equal(loaded.predict_proba(users, items, data.timestamps), model.predict_proba(users, items, data.timestamps))
    for k, v in _state(model).items():
        np.testing.assert_array_equal(loaded.module_.state_dict()[k].numpy(), v)
    assert loaded.train_result_["epochs"] == model.train_result_["epochs"]


def test_a_cuda_model_loads_on_the_cpu_when_there_is_no_gpu(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    model = DeepFM(num_threads=1, **FAST).fit(tiny_interactions())
    path = model.save(tmp_path / "m")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model"]["params"]["device"] = "cuda"  # as if saved on a GPU machine
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(RecsysWarning, match="CUDA is not available"):
        loaded = load_model(path)
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba([0, 1], [2, 3]), model.predict_proba([0, 1], [2, 3]))


def test_device_selection() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ParameterError, match="device"):
        resolve_device("tpu")
    with pytest.raises(ParameterError, match="device"):
        resolve_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA is not available"):
            DeepFM(device="cuda", **FAST).fit(tiny_interactions())
    model = DeepFM(device="cpu", num_threads=1, **FAST).fit(tiny_interactions())
    assert {p.device.type for p in model.module_.parameters()} == {"cpu"}


@pytest.mark.gpu
@pytest.mark.parametrize("cls,extra", MODELS)
def test_training_on_cuda_with_mixed_precision(cls: Any, extra: dict[str, Any]) -> None:  # pragma: no cover - needs a GPU
    data = tiny_interactions()
    model = cls(device="cuda", label_threshold=4, **FAST, **extra).fit(data)
    assert {p.device.type for p in model.module_.parameters()} == {"cuda"}
    cpu = cls(device="cpu", label_threshold=4, num_threads=1, **FAST, **extra).fit(data)
    p_gpu = model.predict_proba([0, 1], [2, 3])
    assert p_gpu.shape == (2,) and np.isfinite(p_gpu).all()
    assert cpu.predict_proba([0, 1], [2, 3]).shape == (2,)


def test_explicit_labels_follow_the_threshold() -> None:
    data = tiny_interactions()
    assert data.ratings is not None
    model = DeepFM(label_threshold=4, num_threads=1, **FAST).fit(data)
    # explicit mode trains on the rows as they are: one epoch sees exactly nnz samples
    assert model.train_result_["epochs"][0]["samples"] == data.nnz
    implicit = DeepFM(negative_ratio=3, num_threads=1, **FAST).fit(data)
    assert implicit.train_result_["epochs"][0]["samples"] == pytest.approx(4 * data.nnz, rel=0.02)
    with pytest.raises(DataError, match="needs ratings"):
        DeepFM(label_threshold=4, **FAST).fit(Interactions.from_arrays([1, 2], [1, 1]))


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(embedding_dim=0), "embedding_dim"),
        (dict(hidden_units=[]), "hidden_units"),
        (dict(hidden_units=[8, 0]), "hidden_units"),
        (dict(negative_sampling="hard"), "negative_sampling"),
        (dict(negative_ratio=0), "negative_ratio"),
        (dict(activation="tanh"), "activation"),
        (dict(dropout=1.0), "dropout"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(learning_rate=0), "learning_rate"),
        (dict(time_budget=-1), "time_budget"),
        (dict(device="gpu0"), "device"),
        (dict(features="user.gender"), "features"),
        (dict(features=["gender"]), "features"),
        (dict(label_threshold="4"), "label_threshold"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        DeepFM(**params).fit(tiny_interactions())


def test_din_parameters() -> None:
    for params, match in [(dict(max_history=0), "max_history"), (dict(attention_units=[]), "attention_units"),
                          (dict(attention_activation="tanh"), "attention_activation"), (dict(attention_softmax=1), "attention_softmax")]:
        with pytest.raises(ParameterError, match=match):
            DIN(**params).fit(tiny_interactions())


def test_early_stopping_keeps_the_best_validation_epoch() -> None:
    data = tiny_interactions()
    model = DeepFM(label_threshold=4, epochs=12, patience=2, validation_fraction=0.2, learning_rate=0.05,
                   hidden_units=[16], num_threads=1, show_progress=False).fit(data)
    log = model.train_result_
    aucs = [e["val_auc"] for e in log["epochs"]]
    assert log["best_epoch"] == int(np.argmax(aucs)) + 1 and log["best_auc"] == max(aucs)
    if log["stopped"] == "early_stopping":
        assert len(aucs) - log["best_epoch"] == 2


def test_time_budget_stops_training() -> None:
    model = DeepFM(epochs=500, time_budget=0.05, num_threads=1, hidden_units=[16], show_progress=False).fit(tiny_interactions())
    log = model.train_result_
    assert log["stopped"] == "time_budget" and len(log["epochs"]) < 500


def test_progress_bar_shows_loss_and_validation_auc(capsys: pytest.CaptureFixture[str]) -> None:
    DeepFM(label_threshold=4, epochs=2, hidden_units=[8], num_threads=1, show_progress=True).fit(tiny_interactions())
    err = capsys.readouterr().err
    assert "DeepFM" in err and "loss" in err and "val_auc" in err


def test_recommend_ranks_by_predicted_logit() -> None:
    data = tiny_interactions()
    model = DeepFM(label_threshold=4, num_threads=1, **FAST).fit(data)
    recs = model.recommend([0], k=5, exclude_seen=False)
    p = model.predict_proba(np.repeat(0, data.n_items - 2), data.items.ids[: data.n_items - 2])
    # probabilities tied within float error (or saturated) may come in either order
    prob = 1 / (1 + np.exp(-recs["score"].to_numpy(dtype=np.float64)))
    assert_top_k(recs["item"], prob, dict(zip(data.items.ids[: data.n_items - 2].tolist(), p.tolist())), k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(1 / (1 + np.exp(-recs["score"].to_numpy())), np.sort(p)[::-1][:5], rtol=1e-5)


def _fm_reference(model: DeepFM, net: Any, u: int, i: int) -> tuple[float, float]:
    """(bias + first-order terms, FM term) of one (user, item) pair, by explicit loops in float64.

    The field vectors are rebuilt from the field tables (not from the network's buffers): a categorical
    field is its embedding row; a multi-valued field the mean of its values' rows; a numeric field its
    value times its vector. FM = sum over field pairs a < b of <v_a, v_b>.
    """
    tables = model._tables()
    W = net.emb.table.weight.detach().numpy().astype(np.float64)
    d = model.embedding_dim
    vectors: list[np.ndarray] = []
    first = float(net.bias.detach())
    for side, row in (("user", u), ("item", i)):
        for c in getattr(tables, side + "_cat")[row]:
            vectors.append(W[c, :d])
            first += W[c, d]
        for f in tables.side_fields(side, "multi"):
            vals = [v for v in getattr(tables, side + "_multi")[row, f["start"] : f["stop"]] if v > 0]
            vectors.append(np.mean([W[v, :d] for v in vals], axis=0) if vals else np.zeros(d))
            first += float(np.mean([W[v, d] for v in vals])) if vals else 0.0
    x = np.concatenate([tables.user_num[u], tables.item_num[i]]).astype(np.float64)
    for j, value in enumerate(x):
        vectors.append(value * net.emb.num_vectors.detach().numpy()[j])
        first += value * float(net.emb.num_weight.detach()[j])
    fm = 0.0
    for a in range(len(vectors)):
        for b in range(a + 1, len(vectors)):
            fm += float(np.dot(vectors[a], vectors[b]))
    return first, fm


def test_deepfm_logit_is_first_order_plus_pairwise_fm_plus_dnn() -> None:
    # every field kind: ids and gender (categorical), genres (multi-valued), age and year (numeric)
    data = tiny_interactions()
    model = DeepFM(label_threshold=4, num_threads=1, features=["user.gender", "user.age", "item.genres", "item.year"], **FAST).fit(data)
    tables = model._tables()
    assert tables.user_num.shape[1] == 1 and tables.item_num.shape[1] == 1 and tables.side_fields("item", "multi")
    net = model._inference_module()  # the float64 CPU copy recommend() uses
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # O(1) parameters: trained ones are ~1e-2 and the FM term would hide in the tolerance
        net.emb.table.weight.copy_(torch.randn(net.emb.table.weight.shape, generator=g, dtype=torch.float64) * 0.5)
        net.emb.table.weight[0].zero_()  # padding
        net.emb.num_vectors.copy_(torch.randn(net.emb.num_vectors.shape, generator=g, dtype=torch.float64))
        net.emb.num_weight.copy_(torch.randn(net.emb.num_weight.shape, generator=g, dtype=torch.float64))
        net.bias.fill_(0.3)
        deep_w = net.out.weight.clone()
        net.out.weight.zero_()  # silence the DNN: logit = first order + FM
        net.out.bias.zero_()
    users = np.repeat(np.arange(data.n_users), data.n_items)
    items = np.tile(np.arange(data.n_items), data.n_users)
    with torch.inference_mode():
        logits, _ = net(torch.from_numpy(users), torch.from_numpy(items))
    got = logits.numpy()
    ref = np.array([_fm_reference(model, net, int(u), int(i)) for u, i in zip(users, items)])
    assert np.abs(ref[:, 1]).mean() > 0.5  # the FM term carries weight: dropping or mis-summing it fails
    np.testing.assert_allclose(got, ref.sum(1), rtol=1e-10, atol=1e-10)
    # and the public path scores the same (float32 output)
    np.testing.assert_allclose(model._logits(users, items), ref.sum(1), rtol=1e-5, atol=1e-5)
    assert deep_w.abs().sum() > 0  # (the DNN was live before silencing)


@pytest.mark.parametrize("cls,extra", MODELS)
def test_lazy_embeddings_train_only_the_rows_in_use_and_learn(cls: Any, extra: dict[str, Any]) -> None:
    """lazy_embeddings=True (sparse table gradients, LazyAdam): rows never in a batch keep their initial
    values, the others train, and the model learns (training AUC well above chance); None picks dense
    Adam for a small table. (LazyAdam's own semantics: tests/models/deep/test_trainer.py.)"""
    from recsys.models.deep.trainer import roc_auc

    data = tiny_interactions()
    assert data.ratings is not None
    kw = dict(label_threshold=4, num_threads=1, **{**FAST, "epochs": 20}, learning_rate=0.02, **extra)
    lazy = cls(lazy_embeddings=True, **kw).fit(data)
    dense = cls(**kw).fit(data)
    assert lazy.train_result_["lazy_embeddings"] is True and dense.train_result_["lazy_embeddings"] is False
    assert not lazy.module_.emb.table.sparse  # inference takes the paths a reloaded model takes
    torch.manual_seed(kw.get("seed", 0))
    init = lazy._build_module(lazy._tables(), np.asarray(getattr(lazy, "history_items_", np.zeros(0, np.int64)), np.int64)
                              if cls is DIN else None).emb.table.weight.detach().numpy()
    tables = [lazy.user_cat_[data.user_index], lazy.user_multi_[data.user_index],
              lazy.item_cat_[data.item_index], lazy.item_multi_[data.item_index]]
    used = np.unique(np.concatenate([t.ravel() for t in tables]))
    unused = np.setdiff1d(np.arange(1, init.shape[0]), used)  # e.g. each field's "unknown" row
    w_lazy = lazy.state_dict_["emb.table.weight"]
    assert len(unused) > 0 and len(used) > 10
    np.testing.assert_array_equal(w_lazy[unused], init[unused])
    assert not np.allclose(w_lazy[used[used > 0]], init[used[used > 0]])
    users, items = data.users.to_ids(data.user_index), data.items.to_ids(data.item_index)
    p = lazy.predict_proba(users, items, data.timestamps)
    assert roc_auc(data.ratings >= 4, p) > 0.75
