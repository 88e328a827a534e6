"""ONNX export of DeepFM / DIN / multi-task / SASRec / GRU4Rec: onnxruntime against the torch networks, the JSON
contract, bad input."""

from __future__ import annotations

import builtins
import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from recsys import Interactions
from recsys.datasets import synthetic
from recsys.errors import MissingDependencyError, NotFittedError, ParameterError, RecsysError
from recsys.models import DIN, EASE, ESMM, PLE, DeepFM, GRU4Rec, MMoE, Pipeline, SASRec, SharedBottom
from recsys.models.deep import _onnx
from recsys.models.deep._sequential import padded
from tests.conftest import require

ort = require("onnxruntime")
require("onnx")

FAST: dict[str, Any] = dict(label_threshold=4, epochs=1, hidden_units=[16], num_threads=1, show_progress=False, seed=3)
DIN_FAST: dict[str, Any] = dict(attention_units=[8, 4], max_history=6)
TOL = 1e-5


@pytest.fixture(scope="module")
def data() -> Interactions:
    # user features: a categorical and a numeric column; item features: a categorical and a genre list
    return synthetic(300, 200, 8_000, seed=1)


def _models() -> dict[str, Any]:
    return {
        "deepfm": lambda: DeepFM(**FAST),
        "deepfm-ids": lambda: DeepFM(features=[], **FAST),
        "din": lambda: DIN(**FAST, **DIN_FAST),  # dice, softmax, first order, FM
        "din-paper": lambda: DIN(
            attention_activation="prelu", attention_softmax=False, first_order=False, fm=False, **FAST, **DIN_FAST
        ),
        "din-ids": lambda: DIN(features=[], attention_activation="sigmoid", **FAST, **DIN_FAST),
    }


@pytest.fixture(scope="module")
def exported(data: Interactions, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """name -> (model, onnxruntime session, JSON contract)."""
    out = {}
    for name, make in _models().items():
        model = make().fit(data)
        graph, spec = model.export_onnx(tmp_path_factory.mktemp(name) / "model.onnx")
        out[name] = (model, _onnx.session(graph, threads=1), json.loads(spec.read_text()))
    return out


def _packed_reference(model: Any, users: np.ndarray, items: np.ndarray, hist: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The float32 torch network as trained (packed histories), fed the newest ``max_history`` of each padded
    row through its own history buffer: independent of the export's padded formulation."""
    net = copy.deepcopy(model.module_).float().eval()
    kw = {"user": torch.from_numpy(users), "item": torch.from_numpy(items)}
    if model.uses_history:
        n = np.minimum(np.minimum(length, hist.shape[1]), model.max_history)
        runs = [hist[r, max(0, min(length[r], hist.shape[1]) - n[r]) : min(length[r], hist.shape[1])] for r in range(len(users))]
        net.hist_items = torch.from_numpy(np.concatenate(runs + [np.zeros(0, np.int64)]).astype(np.int64))
        kw["end"], kw["length"] = torch.from_numpy(np.cumsum(n)), torch.from_numpy(n)
    with torch.no_grad():
        return net(**kw)[0].numpy()


@pytest.mark.parametrize("name", list(_models()))
@pytest.mark.parametrize("batch", [1, 333])
def test_graph_equals_the_torch_network_on_random_rows(exported: dict[str, Any], name: str, batch: int) -> None:
    model, sess, _ = exported[name]
    rng = np.random.default_rng(batch)
    users = rng.integers(0, len(model.users_), batch).astype(np.int64)
    items = rng.integers(0, model.n_items_, batch).astype(np.int64)
    feed = {"user": users, "item": items}
    hist = length = np.zeros((batch, 0), np.int64)
    if model.uses_history:
        width = 2 * model.max_history + 3
        hist = rng.integers(0, model.n_items_, (batch, width)).astype(np.int64)  # garbage past each length
        length = rng.integers(0, width + 1, batch).astype(np.int64)  # 0 .. longer than max_history
        if batch > 1:
            length[:3] = [0, width, model.max_history + 1]
        feed["history"], feed["history_length"] = hist, length
    got = sess.run(["logit"], feed)[0]
    want = _packed_reference(model, users, items, hist, length)
    assert got.shape == (batch,) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    assert np.std(want) > 1e-3 or batch == 1  # the rows really differ: the comparison can fail
    if model.uses_history:
        # what lies past a row's length is never read, even an invalid item row
        junk = np.where(np.arange(hist.shape[1]) < length[:, None], hist, -7)
        np.testing.assert_array_equal(sess.run(["logit"], {**feed, "history": junk})[0], got)


def test_din_history_axis_may_be_empty_or_shorter_than_the_lengths(exported: dict[str, Any]) -> None:
    model, sess, _ = exported["din"]
    users, items = np.array([0, 5, 9]), np.array([1, 2, 3])
    none = sess.run(["logit"], {"user": users, "item": items, "history": np.zeros((3, 0), np.int64), "history_length": np.zeros(3, np.int64)})[0]
    np.testing.assert_allclose(none, _packed_reference(model, users, items, np.zeros((3, 0), np.int64), np.zeros(3, np.int64)), atol=TOL, rtol=0)
    # a length past the history axis counts the entries sent
    hist = np.array([[4, 5], [6, 7], [8, 9]])
    over = sess.run(["logit"], {"user": users, "item": items, "history": hist, "history_length": np.array([9, 2, 1])})[0]
    exact = sess.run(["logit"], {"user": users, "item": items, "history": hist, "history_length": np.array([2, 2, 1])})[0]
    np.testing.assert_array_equal(over, exact)


@pytest.mark.parametrize("name", ["deepfm", "din"])
def test_graph_matches_predict_proba_and_the_float64_inference_path(exported: dict[str, Any], data: Interactions, name: str) -> None:
    model, sess, _ = exported[name]
    rng = np.random.default_rng(7)
    rows = rng.choice(data.nnz, 400, replace=False)
    users, items = data.user_index[rows].astype(np.int64), data.item_index[rows].astype(np.int64)
    ts = data.timestamps[rows]
    feed = {"user": users, "item": items}
    if model.uses_history:
        feed["history"], feed["history_length"] = _onnx.padded_history(model, users, ts)
        assert feed["history_length"].max() == model.max_history and feed["history_length"].min() == 0
    got = sess.run(["logit"], feed)[0].astype(np.float64)
    proba = model.predict_proba(data.users.to_ids(users), data.items.to_ids(items), timestamps=ts if model.uses_history else None)
    np.testing.assert_allclose(1 / (1 + np.exp(-got)), proba, rtol=0, atol=TOL)
    np.testing.assert_allclose(got, model._logits(users, items, ts if model.uses_history else None), rtol=0, atol=TOL)


def test_contract_describes_the_graph(exported: dict[str, Any], data: Interactions, tmp_path: Path) -> None:
    model, sess, spec = exported["din"]
    assert spec["format"] == "recsys-onnx" and spec["model_class"] == "DIN"
    assert [i["name"] for i in spec["inputs"]] == [i.name for i in sess.get_inputs()] == ["user", "item", "history", "history_length"]
    assert [o["name"] for o in spec["outputs"]] == [o.name for o in sess.get_outputs()] == ["logit"]
    assert {i["name"]: i["dtype"] for i in spec["inputs"]} == {"user": "int64", "item": "int64", "history": "int64", "history_length": "int64"}
    assert spec["user_ids"] == data.users.ids.tolist() and spec["item_ids"] == data.items.ids.tolist()
    assert spec["history"]["max_length"] == 6 and spec["history"]["label_threshold"] == 4
    # training histories: each user's positives, oldest first, the newest max_length
    tr = spec["history"]["training"]
    u = int(np.argmax(np.diff(model.history_indptr_)))
    mine = (data.user_index == u) & (data.ratings >= 4)
    order = np.lexsort((data.items.to_ids(data.item_index[mine]), data.timestamps[mine]))
    want = data.item_index[mine][order][-6:]
    assert tr["items"][tr["indptr"][u] : tr["indptr"][u + 1]] == want.tolist()
    assert np.all(np.diff(tr["indptr"]) == np.minimum(np.diff(model.history_indptr_), 6))
    graph = Path(model.export_onnx(tmp_path / "again.onnx")[0])
    assert json.loads((tmp_path / "again.onnx.json").read_text())["graph_sha256"] == hashlib.sha256(graph.read_bytes()).hexdigest()
    fm = exported["deepfm"][2]
    assert [i["name"] for i in fm["inputs"]] == ["user", "item"] and fm["history"] is None


def _service_top_k(graph: Path, spec: dict[str, Any], user: Any, seen: set[Any], k: int) -> tuple[list[Any], np.ndarray]:
    """A non-Python service's view: the graph, the JSON contract and its own record of what the user saw."""
    row = {uid: r for r, uid in enumerate(spec["user_ids"])}[user]
    never = set(spec["never_recommended_items"])
    cand = np.array([r for r, iid in enumerate(spec["item_ids"]) if iid not in seen and r not in never], np.int64)
    feed = {"user": np.full(len(cand), row, np.int64), "item": cand}
    if spec["history"] is not None:
        tr = spec["history"]["training"]
        own = np.array(tr["items"][tr["indptr"][row] : tr["indptr"][row + 1]], np.int64)  # request after training: all
        feed["history"] = np.tile(own, (len(cand), 1))
        feed["history_length"] = np.full(len(cand), len(own), np.int64)
    sess = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [i["name"] for i in spec["inputs"]]
    logit = sess.run([spec["outputs"][0]["name"]], feed)[0]
    top = np.argsort(-logit, kind="stable")[:k]
    return [spec["item_ids"][i] for i in cand[top]], logit[top]


@pytest.mark.parametrize("cls", [DeepFM, DIN])
def test_a_service_built_from_the_json_alone_recommends_like_recommend_one(cls: type, tmp_path: Path) -> None:
    data = synthetic(120, 1_100, 9_000, seed=2)
    model = cls(**FAST, **(DIN_FAST if cls is DIN else {})).fit(data)
    graph, spec_path = model.export_onnx(tmp_path / "m.onnx")
    spec = json.loads(spec_path.read_text())
    user = data.users.ids[int(np.argmin(np.bincount(data.user_index)))]  # the lightest user: ~1,000 candidates
    seen = set(data.items.to_ids(data.item_index[data.user_index == data.users.to_index([user])[0]]).tolist())
    assert len(spec["item_ids"]) - len(seen) >= 1_000
    ids, scores = _service_top_k(graph, spec, user, seen, k=20)
    want_ids, want_scores = model.recommend_one(user, k=20)
    np.testing.assert_allclose(scores, want_scores, rtol=0, atol=TOL)
    gaps = np.diff(want_scores) < -2 * TOL  # where the order is decided by more than float noise
    assert [a for a, g in zip(ids, np.r_[gaps, True]) if g] == [b for b, g in zip(want_ids.tolist(), np.r_[gaps, True]) if g]


def test_a_pipeline_ranker_exports_its_prior_input(tmp_path: Path) -> None:
    data = synthetic(150, 120, 5_000, seed=4)
    pipe = Pipeline(retriever=EASE(reg=50.0), ranker=DIN(**FAST, **DIN_FAST), n_candidates=20, n_folds=2).fit(data)
    ranker = pipe.ranker_
    graph, spec_path = ranker.export_onnx(tmp_path / "ranker.onnx")
    spec = json.loads(spec_path.read_text())
    assert [i["name"] for i in spec["inputs"]][-1] == "prior" and spec["inputs"][-1]["dtype"] == "float32"
    rng = np.random.default_rng(0)
    users = rng.integers(0, 150, 200).astype(np.int64)
    items = rng.integers(0, 120, 200).astype(np.int64)
    prior = rng.standard_normal(200).astype(np.float32)
    hist, length = _onnx.padded_history(ranker, users)
    got = _onnx.session(graph).run(["logit"], {"user": users, "item": items, "history": hist, "history_length": length, "prior": prior})[0]
    want = ranker.score_candidates(users.astype(np.int32), items.astype(np.int32), prior)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    # the prior really enters the logit
    assert not np.allclose(got, _onnx.session(graph).run(["logit"], {"user": users, "item": items, "history": hist, "history_length": length, "prior": prior + 1})[0])


class _TwoHeads(DeepFM):
    """A stand-in for a multi-task model: its network returns (B, 2) logits, one column per task."""

    tasks_ = ("click", "like")

    def _onnx_network(self) -> Any:
        base = super()._onnx_network()

        class Heads(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.base = base

            def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
                z = self.base(user, item)
                return torch.stack([z, 2 * z - 1], 1)

        return Heads()

    def _onnx_outputs(self) -> dict[str, str]:
        return {f"logit_{t}": f"the {t} logit" for t in self.tasks_}


def test_a_network_with_several_logits_exports_one_named_output_per_task(data: Interactions, tmp_path: Path) -> None:
    model = _TwoHeads(**FAST).fit(data)
    graph, spec_path = model.export_onnx(tmp_path / "mt.onnx")
    spec = json.loads(spec_path.read_text())
    assert [o["name"] for o in spec["outputs"]] == ["logit_click", "logit_like"]
    users, items = np.arange(50, dtype=np.int64), np.arange(50, dtype=np.int64) % model.n_items_
    click, like = _onnx.session(graph).run(None, {"user": users, "item": items})
    want = model._logits(users, items)
    np.testing.assert_allclose(click, want, atol=TOL, rtol=0)
    np.testing.assert_allclose(like, 2 * want - 1, atol=2 * TOL, rtol=0)


# -- ML-100K ----------------------------------------------------------------------------------------


def test_ml100k_test_rows(ml100k_dir: str, tmp_path: Path) -> None:
    from recsys.datasets import load_movielens
    from recsys.split import temporal_split

    data = load_movielens("ml-100k", data_dir=ml100k_dir, download=False).interactions()
    train, test = temporal_split(data, by="user", test_fraction=0.2)
    features = ["user.gender", "user.age:bucket=18,25,35,45,50,56", "user.occupation", "user.zip:prefix=1", "item.genres:first", "item.genres"]
    for model in (DeepFM(features=features, **FAST), DIN(features=features, **FAST, max_history=50)):
        model.fit(train)
        graph, _ = model.export_onnx(tmp_path / f"{type(model).__name__}.onnx")
        users, items = test.user_index.astype(np.int64), test.item_index.astype(np.int64)
        feed = {"user": users, "item": items}
        if model.uses_history:
            feed["history"], feed["history_length"] = _onnx.padded_history(model, users, test.timestamps)
        got = _onnx.session(graph).run(["logit"], feed)[0]
        np.testing.assert_allclose(got, _onnx.torch_logits(model, feed), rtol=0, atol=TOL)
        want = model._logits(users, items, test.timestamps if model.uses_history else None)
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


# -- bad input ------------------------------------------------------------------------------------


def test_unfitted_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match=r"export_onnx"):
        DIN().export_onnx(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_paths_are_refused(exported: dict[str, Any], tmp_path: Path) -> None:
    model = exported["deepfm"][0]
    with pytest.raises(ParameterError, match=r"path=.*is a directory"):
        model.export_onnx(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ParameterError, match=r"cannot write path=.*not a writable directory"):
        model.export_onnx(blocker / "sub" / "m.onnx")
    with pytest.raises(ParameterError, match=r"'path' must be a file path"):
        model.export_onnx(3)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_missing_extra_names_it(exported: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def no_onnxruntime(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(MissingDependencyError, match=r"recsys\[onnx\]"):
        exported["deepfm"][0].export_onnx(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_the_previous_files(exported: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = exported["deepfm"][0]
    graph, spec = model.export_onnx(tmp_path / "m.onnx")
    before = graph.read_bytes(), spec.read_text()

    def broken(*args: Any) -> None:
        raise RecsysError("parity check failed")

    monkeypatch.setattr(_onnx, "_check_parity", broken)
    with pytest.raises(RecsysError, match="parity"):
        exported["din"][0].export_onnx(tmp_path / "m.onnx")
    assert (graph.read_bytes(), spec.read_text()) == before
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "m.onnx.json"]  # no temporaries


def test_a_loaded_model_exports_the_same_graph_answers(exported: dict[str, Any], tmp_path: Path) -> None:
    from recsys import load_model

    model, sess, _ = exported["din"]
    model.save(tmp_path / "saved")
    graph, _ = load_model(tmp_path / "saved").export_onnx(tmp_path / "loaded.onnx")
    feed = _onnx._sample_feed(model, 64)
    np.testing.assert_array_equal(_onnx.session(graph, threads=1).run(["logit"], feed)[0], sess.run(["logit"], feed)[0])


def test_output_names_must_match_the_networks_columns(data: Interactions, tmp_path: Path) -> None:
    class ThreeNames(_TwoHeads):
        def _onnx_outputs(self) -> dict[str, str]:
            return {"a": "", "b": "", "c": ""}

    with pytest.raises(RecsysError, match=r"shape \(4, 2\).*3 output"):
        ThreeNames(**FAST).fit(data).export_onnx(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


MULTITASK = {
    "sharedbottom": lambda: SharedBottom(tasks={"click": "binary", "like": "binary", "rating": "regression"}, **FAST),
    "mmoe": lambda: MMoE(**FAST),
    "ple-din": lambda: PLE(bottom="din", levels=2, **FAST, **DIN_FAST),
    "esmm": lambda: ESMM(**FAST),
}


@pytest.mark.parametrize("name", list(MULTITASK))
def test_multitask_models_export_one_output_per_task(data: Interactions, tmp_path: Path, name: str) -> None:
    model = MULTITASK[name]().fit(data)
    graph, spec_file = model.export_onnx(tmp_path / "mtl.onnx")
    spec = json.loads(spec_file.read_text())
    assert [o["name"] for o in spec["outputs"]] == model.tasks_
    sess = _onnx.session(graph, threads=1)
    rng = np.random.default_rng(11)
    rows = rng.choice(data.nnz, 300, replace=False)
    users, items = data.user_index[rows].astype(np.int64), data.item_index[rows].astype(np.int64)
    ts = data.timestamps[rows] if model.uses_history else None
    feed = {"user": users, "item": items}
    if model.uses_history:
        feed["history"], feed["history_length"] = _onnx.padded_history(model, users, ts)
    got = dict(zip(model.tasks_, sess.run(model.tasks_, feed)))
    uid, iid = data.users.to_ids(users), data.items.to_ids(items)
    for task, values in got.items():
        if task == "rating":
            np.testing.assert_allclose(values, model.predict(uid, iid, timestamps=ts, task="rating"), rtol=0, atol=TOL)
        else:
            proba = model.predict_proba(uid, iid, timestamps=ts, task=task)
            np.testing.assert_allclose(1 / (1 + np.exp(-values.astype(np.float64))), proba, rtol=0, atol=TOL)


# -- sequential models (SASRec, GRU4Rec) ------------------------------------------------------------

SEQ_FAST: dict[str, Any] = dict(max_len=12, dim=16, epochs=2, batch_size=32, num_threads=1, show_progress=False, seed=3)
SEQUENTIAL = {
    "sasrec": lambda: SASRec(**SEQ_FAST),
    "sasrec-genres": lambda: SASRec(item_features=["genres"], n_layers=1, **SEQ_FAST),
    "gru4rec": lambda: GRU4Rec(**SEQ_FAST),
    "gru4rec-plain": lambda: GRU4Rec(n_layers=2, history_mean=False, **SEQ_FAST),
}


@pytest.fixture(scope="module")
def seq_data() -> Interactions:
    # next items follow a Markov chain; 4 to 40 interactions per user, most longer than max_len
    return synthetic(200, 100, 4_000, seed=1, sequential=0.8)


@pytest.fixture(scope="module")
def seq_exported(seq_data: Interactions, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    out = {}
    for name, make in SEQUENTIAL.items():
        model = make().fit(seq_data)
        graph, spec = model.export_onnx(tmp_path_factory.mktemp(name) / "model.onnx")
        out[name] = (model, _onnx.session(graph, threads=1), json.loads(spec.read_text()))
    return out


def _sequence_reference(model: Any, hist: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The float32 torch network fed each row's real entries (the last ``length`` of the right-aligned row)
    through the model's own truncation (``padded``: the newest ``max_len``): independent of the export module."""
    net = copy.deepcopy(model.module_).float().eval()
    n = np.minimum(length, hist.shape[1])
    ends = np.arange(len(hist)) * hist.shape[1] + hist.shape[1]  # rows laid end to end: each ends at its last column
    seq = padded(hist.reshape(-1), ends, n, model.max_len)
    with torch.no_grad():
        query = net.last(torch.from_numpy(seq)) * torch.from_numpy(n > 0)[:, None]
        return (query @ net.item_table()[1:].T).numpy()


@pytest.mark.parametrize("name", list(SEQUENTIAL))
@pytest.mark.parametrize("batch", [1, 257])
def test_sequential_graph_equals_the_torch_network_on_random_histories(seq_exported: dict[str, Any], name: str, batch: int) -> None:
    model, sess, _ = seq_exported[name]
    rng = np.random.default_rng(batch)
    width = 2 * model.max_len + 3
    hist = rng.integers(0, model.n_items_, (batch, width)).astype(np.int64)  # garbage before each row's length
    length = rng.integers(1, width + 1, batch).astype(np.int64)  # 1 .. longer than max_len (truncated)
    if batch > 1:
        length[:4] = [1, width, model.max_len, model.max_len + 1]
        assert (length > model.max_len).sum() > 50
    got = sess.run(["scores"], {"history": hist, "history_length": length})[0]
    want = _sequence_reference(model, hist, length)
    assert got.shape == (batch, model.n_items_) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    assert np.std(want) > 1e-2  # the scores really differ: the comparison can fail
    # what lies before a row's real entries is never read, even an invalid item row
    junk = np.where(np.arange(width) >= width - length[:, None], hist, -7)
    np.testing.assert_array_equal(sess.run(["scores"], {"history": junk, "history_length": length})[0], got)
    # only the newest max_len entries are read: the older ones may change freely
    older = np.where(np.arange(width) < width - model.max_len, (hist + 1) % model.n_items_, hist)
    np.testing.assert_array_equal(sess.run(["scores"], {"history": older, "history_length": length})[0], got)


def test_sequential_history_axis_may_be_empty_short_or_past_the_lengths(seq_exported: dict[str, Any]) -> None:
    model, sess, _ = seq_exported["sasrec"]
    none = sess.run(["scores"], {"history": np.zeros((2, 0), np.int64), "history_length": np.array([0, 3])})[0]
    np.testing.assert_array_equal(none, np.zeros((2, model.n_items_), np.float32))  # an empty history's vector is 0
    hist = np.array([[4, 5], [6, 7]])
    over = sess.run(["scores"], {"history": hist, "history_length": np.array([9, 1])})[0]
    exact = sess.run(["scores"], {"history": hist, "history_length": np.array([2, 1])})[0]
    np.testing.assert_array_equal(over, exact)
    # right-aligned: a row [x, 7] of length 1 is the history [7]
    np.testing.assert_array_equal(over[1], sess.run(["scores"], {"history": np.array([[7]]), "history_length": np.array([1])})[0][0])
    np.testing.assert_allclose(over, _sequence_reference(model, hist, np.array([2, 1])), rtol=0, atol=TOL)


def _right_aligned(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    hist = np.zeros((len(rows), width), np.int64)
    for b, r in enumerate(rows):
        hist[b, width - len(r) :] = r
    return hist, np.array([len(r) for r in rows], np.int64)


@pytest.mark.parametrize("name", list(SEQUENTIAL))
def test_sequential_graph_matches_recommend_history_and_recommend(seq_exported: dict[str, Any], seq_data: Interactions, name: str) -> None:
    """A service's view: each user's sequence in time order as item rows, scored by the graph, against
    ``recommend_history`` (the float64 fold-in) and, for training users, ``recommend_one`` (their fitted vector)."""
    model, sess, spec = seq_exported[name]
    f = seq_data.to_frame()
    users = seq_data.users.ids[[0, 3, 17, 42, 99]]
    rows, expected = [], []
    for user in users:
        mine = f[f["user"] == user]
        order = np.argsort(mine["timestamp"].to_numpy(), kind="stable")
        ids = mine["item"].to_numpy()[order]
        rows.append(np.array([spec["item_ids"].index(i) for i in ids.tolist()], np.int64))
        expected.append((model.recommend_history(ids, timestamps=mine["timestamp"].to_numpy()[order], k=10), model.recommend_one(user, k=10)))
    assert max(len(r) for r in rows) > model.max_len and min(len(r) for r in rows) <= model.max_len
    hist, length = _right_aligned(rows)
    scores = sess.run(["scores"], {"history": hist, "history_length": length})[0]
    for b, ((h_ids, h_scores), (r_ids, r_scores)) in enumerate(expected):
        col = {iid: j for j, iid in enumerate(spec["item_ids"])}
        np.testing.assert_allclose(scores[b, [col[i] for i in h_ids.tolist()]], h_scores, rtol=0, atol=TOL)
        np.testing.assert_allclose(scores[b, [col[i] for i in r_ids.tolist()]], r_scores, rtol=0, atol=TOL)
        # the graph's own top 10 over the unseen items is recommend_history's (up to float noise)
        s = scores[b].copy()
        s[rows[b]] = -np.inf
        top = np.argsort(-s, kind="stable")[:10]
        gaps = np.diff(h_scores) < -2 * TOL
        keep = np.r_[gaps, True]
        assert [spec["item_ids"][j] for j in top[keep]] == h_ids[keep].tolist()


def test_sequential_contract_describes_the_graph(seq_exported: dict[str, Any], seq_data: Interactions) -> None:
    model, sess, spec = seq_exported["gru4rec"]
    assert spec["model_class"] == "GRU4Rec" and spec["format"] == "recsys-onnx"
    assert [i["name"] for i in spec["inputs"]] == [i.name for i in sess.get_inputs()] == ["history", "history_length"]
    assert [(i["dtype"], i["shape"]) for i in spec["inputs"]] == [("int64", ["batch", "history"]), ("int64", ["batch"])]
    assert [(o["name"], o["shape"]) for o in spec["outputs"]] == [("scores", ["batch", seq_data.n_items])]
    assert [o.name for o in sess.get_outputs()] == ["scores"]
    assert spec["item_ids"] == seq_data.items.ids.tolist() and "user_ids" not in spec
    assert spec["history"]["max_length"] == 12 and spec["history"]["alignment"] == "right"
    assert spec["never_recommended_items"] == np.flatnonzero(seq_data.item_counts == 0).tolist()
    assert seq_exported["sasrec-genres"][2]["features"]["item_features"] == ["genres"]


def test_sequential_unfitted_model_is_refused(tmp_path: Path) -> None:
    for cls in (SASRec, GRU4Rec):
        with pytest.raises(NotFittedError, match=rf"This {cls.__name__} is not fitted yet.*export_onnx"):
            cls().export_onnx(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_sequential_loaded_model_exports_the_same_answers(seq_exported: dict[str, Any], tmp_path: Path) -> None:
    from recsys import load_model

    model, sess, _ = seq_exported["sasrec-genres"]
    model.save(tmp_path / "saved")
    graph, _ = load_model(tmp_path / "saved").export_onnx(tmp_path / "loaded.onnx")
    feed = _onnx.sequence_sample(model, 64)
    np.testing.assert_array_equal(_onnx.session(graph, threads=1).run(["scores"], feed)[0], sess.run(["scores"], feed)[0])
