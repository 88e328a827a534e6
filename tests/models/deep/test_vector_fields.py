"""Vector fields (dense float vectors per item / user, e.g. text embeddings) in the deep feature layer:
encoding by hand, bad input, learning, the DIN history side, persistence and ONNX parity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from recsys import Interactions
from recsys.errors import ArtifactError, DataError, ParameterError
from recsys.models import DIN, DeepFM
from recsys.models.deep import ESMM, PLE, MMoE, SharedBottom
from recsys.models.deep._layers import FieldEmbedding
from recsys.models.deep.features import FieldSpec, encode_fields, with_text_vectors, with_vectors
from recsys.models.deep.trainer import roc_auc
from recsys.testing import tiny_interactions

FAST: dict[str, Any] = dict(label_threshold=4, epochs=1, hidden_units=[8], num_threads=1, show_progress=False, seed=3)


def _small() -> Interactions:
    df = pd.DataFrame({"user": [1, 1, 2, 3], "item": ["a", "b", "a", "c"]})
    items = pd.DataFrame({
        "item": ["a", "b", "c", "d"],
        "emb": [np.array([3.0, 4.0]), np.array([0.0, -2.0]), None, np.array([1.0, 1.0])],
        "raw": [[1, 0, 0], [0.5, 0.5, 0.0], [0, 0, 2], [0, 0, 0]],
    })
    users = pd.DataFrame({"user": [1, 2, 3], "u": [np.array([1.0]), np.array([-5.0]), np.array([0.0])]})
    return Interactions.from_frame(df, user_features=users, item_features=items)


# -- encoding, worked out by hand --------------------------------------------------------------------


def test_vectors_are_l2_normalised_and_missing_cells_are_zero() -> None:
    data = _small()
    t = encode_fields(data, [FieldSpec.parse("item.emb")])  # float arrays: inferred as a vector field
    row = {i: r for r, i in enumerate(data.items.ids)}
    np.testing.assert_allclose(t.item_vec[row["a"]], [0.6, 0.8])  # (3, 4) / 5
    np.testing.assert_allclose(t.item_vec[row["b"]], [0.0, -1.0])
    np.testing.assert_array_equal(t.item_vec[row["c"]], [0.0, 0.0])  # no vector: a cold item
    np.testing.assert_allclose(t.item_vec[row["d"]], [2**-0.5, 2**-0.5], rtol=1e-6)
    assert t.item_vec.dtype == np.float32 and t.user_vec.shape == (3, 0)
    assert [f for f in t.fields if f["kind"] == "vector"] == [
        {"name": "item.emb", "side": "item", "kind": "vector", "dim": 2, "start": 0, "stop": 2}
    ]


def test_lists_need_the_vector_transform_and_fields_tile_per_side() -> None:
    data = _small()
    # a column of Python lists is a multi-valued field unless ':vector' says otherwise
    assert [f["kind"] for f in encode_fields(data, [FieldSpec.parse("item.raw")]).fields][-1] == "multi"
    specs = [FieldSpec.parse(s) for s in ("item.emb", "item.raw:vector", "user.u", "item.genres_absent:vector")[:3]]
    t = encode_fields(data, specs)
    vec = [(f["name"], f["side"], f["start"], f["stop"]) for f in t.fields if f["kind"] == "vector"]
    assert vec == [("user.u", "user", 0, 1), ("item.emb", "item", 0, 2), ("item.raw:vector", "item", 2, 5)]
    a = list(data.items.ids).index("b")
    np.testing.assert_allclose(t.item_vec[a], [0.0, -1.0, 2**-0.5, 2**-0.5, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(t.user_vec[:, 0], [1.0, -1.0, 0.0])  # a zero vector stays zero


def test_the_projection_is_a_bias_free_linear_map_of_the_normalised_vector() -> None:
    data = _small()
    t = encode_fields(data, [FieldSpec.parse("item.emb")])
    emb = FieldEmbedding(t, 3, first_order=True)
    w = emb.item_proj[0].weight.detach()  # (dim + first order, 2)
    fields, first, _ = emb.side("item", torch.arange(4))
    want = torch.from_numpy(t.item_vec) @ w.T  # (4, 4)
    torch.testing.assert_close(fields[:, -1, :], want[:, :3])
    table_first = emb.table.weight.detach()[torch.from_numpy(t.item_cat[:, 0]), 3]
    torch.testing.assert_close(first, table_first + want[:, 3])
    c = list(data.items.ids).index("c")
    assert fields[c, -1].abs().sum() == 0  # the cold item's field is exactly zero
    # the catalogue path gives the same fields
    cat_fields, cat_first = emb.catalogue("item")
    torch.testing.assert_close(cat_fields, fields)
    torch.testing.assert_close(cat_first, first)


# -- bad input ----------------------------------------------------------------------------------------


def _with(cells: list[Any]) -> Interactions:
    df = pd.DataFrame({"user": [1, 2], "item": ["a", "b"]})
    return Interactions.from_frame(df, item_features=pd.DataFrame({"item": ["a", "b", "c"], "v": pd.Series(cells, dtype=object)}))


@pytest.mark.parametrize(
    "cells, message",
    [
        ([[1.0, 2.0], [1.0], [0.0, 1.0]], r"item 'b' \(row 1\) has 1 values but item 'a' \(row 0\) has 2"),
        ([[1.0, 2.0], [np.nan, 1.0], [0.0, 1.0]], r"item 'b' \(row 1\) holds nan at position 0"),
        ([[1.0, 2.0], [1.0, 2.0], [1.0, "x"]], r"item 'c' \(row 2\) holds the non-numeric value 'x'"),
        ([[1.0, 2.0], [1.0, 2.0], [True, False]], r"item 'c' \(row 2\) holds the non-numeric value True"),
        ([[], [], []], r"item 'a' \(row 0\) holds an empty vector"),
        ([None, None, None], "no item has a vector"),
    ],
)
def test_bad_vectors_are_data_errors_naming_the_feature_and_the_item(cells: list[Any], message: str) -> None:
    with pytest.raises(DataError, match=message) as e:
        encode_fields(_with(cells), [FieldSpec.parse("item.v:vector")])
    assert "'item.v:vector'" in str(e.value)


def test_a_scalar_cell_is_named() -> None:
    df = pd.DataFrame({"user": [1, 2], "item": ["a", "b"]})
    data = Interactions.from_frame(df, item_features=pd.DataFrame({"item": ["a", "b"], "v": [1.5, 2.0]}))
    with pytest.raises(DataError, match=r"item.v:vector'.*item 'a' \(row 0\) holds 1.5 \(float\)"):
        encode_fields(data, [FieldSpec.parse("item.v:vector")])


def test_the_vector_transform_takes_no_value() -> None:
    with pytest.raises(ParameterError, match="':vector' takes no value"):
        FieldSpec.parse("item.v:vector=3")
    assert FieldSpec.parse("item.v:vector").name == "item.v:vector"


def test_with_vectors_checks_its_input() -> None:
    data = tiny_interactions()
    ids = data.items.ids.tolist()
    partial = {i: np.ones(3) for i in ids[:-2]}
    with pytest.raises(DataError, match=rf"lack 2 of the {len(ids)} items, e.g. {ids[-2]!r}, {ids[-1]!r}"):
        with_vectors(data, "emb", partial)
    with pytest.raises(DataError, match=f"has 3 rows; the data has {len(ids)} items"):
        with_vectors(data, "emb", np.ones((3, 4)))
    bad = np.ones((len(ids), 2))
    bad[5, 1] = np.inf
    with pytest.raises(DataError, match=rf"item {ids[5]!r} \(row 5\) holds inf at position 1"):
        with_vectors(data, "emb", bad)
    with pytest.raises(DataError, match="already have a column 'genres'"):
        with_vectors(data, "genres", np.ones((len(ids), 2)))
    with pytest.raises(ParameterError, match="side must be"):
        with_vectors(data, "emb", np.ones((len(ids), 2)), side="items")  # type: ignore[arg-type]


def test_with_vectors_and_with_text_vectors_add_a_float32_column() -> None:
    from recsys.content import HashingEncoder

    data = tiny_interactions()
    ids = list(data.items.ids)
    out = with_vectors(data, "emb", {i: [float(k), 1.0] for k, i in enumerate(ids)})
    assert out.nnz == data.nnz and list(out.item_features.columns) == [*data.item_features.columns, "emb"]
    assert out.item_features["emb"].iloc[3].dtype == np.float32 and out.item_features["emb"].iloc[3].tolist() == [3.0, 1.0]
    assert "emb" not in data.item_features.columns  # the input is not modified
    texts = with_text_vectors(data, HashingEncoder(dim=16, idf=False), text="{title}")
    want = HashingEncoder(dim=16, idf=False).encode(list(data.item_features["title"].fillna("")))
    np.testing.assert_array_equal(np.stack(texts.item_features["text_emb"].to_list()), want)


# -- learning -----------------------------------------------------------------------------------------


def _content_task(seed: int = 0) -> tuple[Interactions, np.ndarray, np.ndarray, np.ndarray]:
    """Items 0-159 are rated in training, items 160-199 never: a like is sign(<vector, w>), so only the
    item vector tells the unseen items apart. Returns the data and the test pairs (users, items, labels)."""
    rng = np.random.default_rng(seed)
    n_users, n_items, dim = 150, 200, 16
    vecs = rng.standard_normal((n_items, dim))
    good = vecs @ rng.standard_normal(dim) > 0
    users = rng.integers(0, n_users, 6_000)
    items = rng.integers(0, 160, 6_000)
    keep = ~pd.DataFrame({"u": users, "i": items}).duplicated().to_numpy()
    users, items = users[keep], items[keep]
    ratings = np.where(good[items], 5.0, 1.0)
    df = pd.DataFrame({"user": users, "item": items, "rating": ratings, "ts": np.arange(len(users))})
    feats = pd.DataFrame({"item": np.arange(n_items), "emb": list(vecs)})
    data = Interactions.from_frame(df, rating_col="rating", timestamp_col="ts", item_features=feats)
    tu = rng.integers(0, n_users, 2_000)
    ti = rng.integers(160, n_items, 2_000)
    return data, tu, ti, good[ti].astype(float)


@pytest.mark.parametrize(
    "make",
    [
        lambda f: DeepFM(label_threshold=4, features=f, epochs=8, hidden_units=[16], num_threads=1, show_progress=False, seed=1),
        lambda f: MMoE(tasks={"like": "binary"}, label_threshold=4, bottom="din", features=f, epochs=8, max_history=10,
                       num_threads=1, show_progress=False, seed=1),
    ],
    ids=["deepfm", "mmoe-din"],
)
def test_a_vector_that_carries_the_label_is_learned(make: Any) -> None:
    data, users, items, labels = _content_task()
    aucs = {}
    for name, feats in (("without", []), ("with", ["item.emb"])):
        model = make(feats).fit(data)
        p = model.predict_proba(users, items, task="like") if hasattr(model, "tasks_") else model.predict_proba(users, items)
        aucs[name] = roc_auc(labels, p)
    # unseen items: their id embeddings are untrained, only the projected vector separates them
    assert aucs["with"] > 0.75 and aucs["without"] < 0.6, aucs


def test_din_gathers_the_vectors_of_the_history_items() -> None:
    data, _, _, _ = _content_task()
    model = DIN(label_threshold=4, features=["item.emb"], epochs=1, hidden_units=[8], attention_units=[4], max_history=5,
                num_threads=1, show_progress=False, seed=1).fit(data)
    u = 7
    end, length = model._history(np.array([u]), None)
    hist = np.asarray(model.history_items_)[end[0] - length[0] : end[0]].astype(int)
    target = next(i for i in range(160, 200) if i not in hist)
    outsider = next(i for i in range(160, 200) if i not in hist and i != target)

    def logit_after(change: int) -> float:
        m = DIN(**model.get_params())
        m.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
        vec = np.array(model.item_vec_, copy=True)
        vec[change] = -vec[change]
        m.item_vec_ = vec
        m._restore_state({})  # rebuild the network over the edited table
        m._prepare()
        return float(m._logits(np.array([u]), np.array([target]))[0])

    base = float(model._logits(np.array([u]), np.array([target]))[0])
    assert logit_after(int(hist[-1])) != base  # a history item's vector enters through the attention
    assert logit_after(outsider) == base  # an item neither target nor history does not


# -- every model, persistence, ONNX ---------------------------------------------------------------------


def _vector_data() -> Interactions:
    data = tiny_interactions()
    vecs = np.random.default_rng(0).standard_normal((data.n_items, 5))
    vecs[3] = 0.0  # a cold item
    return with_vectors(data, "emb", vecs)


MODELS = {
    "deepfm": lambda: DeepFM(features=["item.genres", "item.emb"], **FAST),
    "din": lambda: DIN(features=["item.genres", "item.emb:vector"], attention_units=[4], max_history=4, **FAST),
    "shared-bottom": lambda: SharedBottom(features=["item.emb"], **FAST),
    "mmoe-din": lambda: MMoE(bottom="din", features=["item.genres", "item.emb"], max_history=4, **FAST),
    "ple": lambda: PLE(features=["item.emb"], **FAST),
    "esmm-din": lambda: ESMM(bottom="din", features=["item.emb"], max_history=4, **FAST),
}


def _proba(model: Any, users: Any, items: Any) -> np.ndarray:
    return model.predict_proba(users, items, task="like") if hasattr(model, "tasks_") else model.predict_proba(users, items)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_saves_and_loads_its_vector_field(name: str, tmp_path: Path) -> None:
    data = _vector_data()
    model = MODELS[name]().fit(data)
    assert any(".item_proj.0.weight" in k or k.startswith("emb.item_proj") for k in model.state_dict_)
    model.save(tmp_path / "m")
    state = json.loads((tmp_path / "m" / "state.json").read_text())
    assert "item_vec_" in json.dumps(state) and not list(tmp_path.glob("m/*.pkl"))
    loaded = type(model).load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.item_vec_, model.item_vec_)
    users, items = np.repeat(data.users.ids[:6], 4), np.tile(data.items.ids[:4], 6)
    np.testing.assert_array_equal(_proba(loaded, users, items), _proba(model, users, items))


def test_models_without_vector_fields_save_no_vector_table(tmp_path: Path) -> None:
    model = DeepFM(features=["item.genres"], **FAST).fit(_vector_data())
    assert not hasattr(model, "item_vec_") and not any("proj" in k for k in model.state_dict_)
    model.save(tmp_path / "m")
    assert "item_vec_" not in (tmp_path / "m" / "state.json").read_text()


def test_an_artifact_lacking_its_vector_table_is_refused() -> None:
    model = DeepFM(features=["item.emb"], **FAST).fit(_vector_data())
    state = {k: v for k, v in model.__dict__.items() if k.endswith("_") and not k.startswith("_") and k != "item_vec_"}
    with pytest.raises(ArtifactError, match="'item_vec_' is missing; fields_ declares 5 vector columns"):
        model._check_loaded_state(state, lambda f: "state.json")
    state["item_vec_"] = np.zeros((model.n_items_, 4), np.float32)
    with pytest.raises(ArtifactError, match="item_vec_"):
        model._check_loaded_state(state, lambda f: "state.json")


@pytest.mark.parametrize("name", ["deepfm", "din", "mmoe-din", "esmm-din"])
def test_onnx_graph_with_a_vector_field_equals_the_torch_network(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from recsys.models.deep import _onnx

    data = _vector_data()
    model = MODELS[name]().fit(data)
    graph, spec = model.export_onnx(tmp_path / "m.onnx")
    contract = json.loads(spec.read_text())
    assert {"name": "item.emb" if name != "din" else "item.emb:vector", "side": "item", "kind": "vector", "dim": 5,
            "start": 0, "stop": 5} in contract["features"]["fields"]
    assert "no input carries them" in contract["features"]["vectors"]
    assert [i["name"] for i in contract["inputs"]] == (["user", "item", "history", "history_length"] if model.uses_history else ["user", "item"])
    sess = _onnx.session(graph, threads=1)
    rng = np.random.default_rng(1)
    users = rng.integers(0, data.n_users, 300).astype(np.int64)
    items = rng.integers(0, data.n_items, 300).astype(np.int64)
    items[:10] = 3  # the cold item's zero vector
    feed: dict[str, np.ndarray] = {"user": users, "item": items}
    if model.uses_history:
        feed["history"], feed["history_length"] = _onnx.padded_history(model, users)
    names = [o["name"] for o in contract["outputs"]]
    got = np.stack(sess.run(names, feed), 1)
    want = _onnx.torch_logits(model, feed).reshape(len(users), -1)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # and the float64 inference path of the model itself (its whole training history)
    ref = model._logits(users, items) if not hasattr(model, "tasks_") else model._head_logits(users, items, None)
    ref = np.asarray(ref).reshape(len(users), -1)
    if getattr(model, "esmm", False):
        ref = want  # ESMM's graph outputs pCTCVR's logit, the heads pCVR's: compared above
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
