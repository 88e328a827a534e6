"""Loading validates before it trusts: tampered artifacts (hashes recomputed) raise ArtifactError naming file and field.

Each test is a minimised case of the artifact fuzzer (``benchmarks.fuzz_artifacts``)
that crashed, hung, read outside the artifact or raised a raw exception before
these checks: a segfault from out-of-range sparse indices, a bus error from an
array longer than its file, a FIFO that blocks the loader, links and ``..`` paths
followed out of the artifact, JSON nested past the recursion limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsys import load_model
from recsys.errors import ArtifactError
from recsys.models import DIN, ItemKNN, Pipeline, Popular, UserKNN
from recsys.persistence import read_manifest
from recsys.testing import tiny_interactions
from recsys.testing._cases import CONTRACT_CASES


def _rehash(art: Path) -> None:
    m = json.loads((art / "manifest.json").read_text())
    for rel in m["files"]:
        data = (art / rel).read_bytes()
        m["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (art / "manifest.json").write_text(json.dumps(m))


def _file(art: Path, field: str) -> Path:
    [p] = [p for p in (art / "arrays").glob("*.npy") if p.name.split("_", 1)[1] == field + ".npy"]
    return p


def _edit_array(art: Path, field: str, edit: Callable[[np.ndarray], np.ndarray]) -> Path:
    p = _file(art, field)
    np.save(p, edit(np.load(p).copy()))
    _rehash(art)
    return p


def _edit_json(art: Path, name: str, edit: Callable[[Any], Any], rehash: bool = True) -> None:
    doc = json.loads((art / name).read_text())
    replaced = edit(doc)
    if isinstance(replaced, list):  # the edit replaces the whole document
        doc = replaced
    (art / name).write_text(json.dumps(doc))
    if rehash:
        _rehash(art)


@pytest.fixture(scope="module")
def knn(tmp_path_factory: pytest.TempPathFactory) -> ItemKNN:
    return ItemKNN(k=10).fit(tiny_interactions())


@pytest.fixture
def art(knn: ItemKNN, tmp_path: Path) -> Path:
    return knn.save(tmp_path / "m")


def _set(i: int, v: int) -> Callable[[np.ndarray], np.ndarray]:
    def f(a: np.ndarray) -> np.ndarray:
        a[i] = v
        return a

    return f


def test_the_segfault_of_the_issue_is_an_artifact_error_naming_file_and_field(art: Path) -> None:
    p = _edit_array(art, "neighbours__indices", _set(0, 10**8))
    with pytest.raises(ArtifactError, match=r"field 'neighbours_' has indices \(arrays/.*neighbours__indices\.npy\) outside \[0, 32\)"):
        load_model(art)
    assert p.exists()


def test_the_segfault_does_not_kill_a_fresh_process(art: Path) -> None:
    _edit_array(art, "neighbours__indices", _set(0, 10**8))
    code = "import sys\nfrom recsys import load_model\ntry:\n    load_model(sys.argv[1])\nexcept ValueError as e:\n    print(type(e).__name__)\n"
    out = subprocess.run([sys.executable, "-c", code, str(art)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ArtifactError"


@pytest.mark.parametrize(
    ("field", "edit", "message"),
    [
        ("neighbours__indices", _set(3, -1), "outside \\[0, 32\\)"),
        ("neighbours__indptr", _set(5, 10**6), "indptr .* must start at 0 and never decrease|ends at"),
        ("neighbours__indptr", _set(0, 1), "must start at 0"),
        ("neighbours__indptr", lambda a: a[:-1], "has 32 indptr entries.*expected 33"),
        ("neighbours__data", lambda a: a[:-1], "indices .* and .* data values .* expected equal"),
        ("neighbours__data", _set(0, np.nan), "field 'neighbours_' holds NaN or inf"),
        ("neighbours__data", lambda a: a.astype(np.float64), "field 'neighbours_' has dtype <f8; expected float32"),
        ("neighbours__indices", lambda a: a.astype(np.float32), "neighbours__indices.npy of dtype <f4"),
        ("seen__indices", lambda a: a.astype(">i4"), "seen__indices.npy of dtype >i4"),
        ("cold_items_", _set(0, 32), "field 'cold_items_' holds values outside \\[0, 32\\)"),
        ("cold_items_", lambda a: a[:1], "cold_items_' is not the items whose item_popularity_ is 0"),
        ("item_popularity_", lambda a: a[:-1], "field 'item_popularity_' has shape \\(31,\\); expected \\(n_items=32,\\)"),
        ("users_", _set(1, 0), "field .users_. is not a valid id map: user ids of an IdMap must be unique"),
        ("users_", lambda a: a.astype(np.int32), "users_.npy of dtype <i4"),
    ],
)
def test_structural_faults_of_arrays_name_the_field(art: Path, field: str, edit: Any, message: str) -> None:
    _edit_array(art, field, edit)
    with pytest.raises(ArtifactError, match=message):
        load_model(art)


def test_a_header_claiming_more_rows_than_the_file_holds_is_refused_not_a_bus_error(art: Path) -> None:
    p = _file(art, "item_popularity_")
    raw = p.read_bytes()
    p.write_bytes(raw.replace(b"(32,)", b"(99,)", 1))
    _rehash(art)
    with pytest.raises(ArtifactError, match="cannot read .*item_popularity_"):
        load_model(art)


def test_a_header_length_pointing_into_its_padding_is_refused(tmp_path: Path) -> None:
    """Found by the fuzzer: the header-length field cut short made numpy read padding spaces as ratings."""
    art = CONTRACT_CASES["SessionEASE"].factory().fit(tiny_interactions()).save(tmp_path / "s")
    p = _file(art, "user_items__data")
    raw = bytearray(p.read_bytes())
    raw[8] ^= 0x4D  # header length 0x76 -> 0x3b: the header now ends inside its own padding
    raw[66] ^= 0x20  # "," -> "\\x0c": numpy still parses the header cut there
    p.write_bytes(bytes(raw))
    _rehash(art)
    with pytest.raises(ArtifactError, match="user_items__data.npy .* has 1008 bytes; its header says 949"):
        load_model(art)


def test_sparse_shape_must_match_the_id_maps(art: Path) -> None:
    _edit_json(art, "state.json", lambda s: s["neighbours_"].update(shape=[32, 33]))
    with pytest.raises(ArtifactError, match="has 33 indptr entries|field 'neighbours_' has shape \\(32, 33\\)"):
        load_model(art)
    _edit_json(art, "state.json", lambda s: s.update(n_items_=33))


def test_n_items_must_match_the_item_map(art: Path) -> None:
    _edit_json(art, "state.json", lambda s: s.update(n_items_=33))
    with pytest.raises(ArtifactError, match="field 'n_items_' is 33; expected n_items=32"):
        load_model(art)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("neighbours_"), "field 'neighbours_' is missing"),
        (lambda s: s.update(extra_=1), "field 'extra_' is not part of this model's state"),
        (lambda s: s.update(n_items_="32"), "field 'n_items_' is '32'; expected an integer"),
        (lambda s: s.update(n_items_=True), "expected an integer"),
        (lambda s: s.update(neighbours_=[1, 2]), "field 'neighbours_' is a list; expected a CSR sparse matrix"),
        (lambda s: s.update(neighbours_={"__sparse__": "coo", **{k: v for k, v in s["neighbours_"].items() if k != "__sparse__"}}), "sparse format 'coo'"),
        (lambda s: s["neighbours_"].update(shape="32x32"), "sparse shape '32x32'"),
        (lambda s: s["neighbours_"].update(data=5), "names a file as 5"),
        (lambda s: s["neighbours_"].update(extra=1), "is not a valid state entry"),
        (lambda s: s.update(users_={"__idmap__": "user", "kind": "int"}), "is not a valid id map"),
        (lambda s: s["users_"].update(kind="pickle"), "is not a valid id map"),
        (lambda s: s.update(seen_={"__float__": "1e9"}), "__float__"),
        (lambda s: s.update(seen_={"__model__": "x", "state": []}), "nested model without a state dict"),
        (lambda s: [], "must hold a JSON object"),
    ],
)
def test_structural_faults_of_state_json(art: Path, edit: Any, message: str) -> None:
    _edit_json(art, "state.json", edit)
    with pytest.raises(ArtifactError, match=message):
        load_model(art)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(extra=1), "unknown keys \\['extra'\\]"),
        (lambda m: m.update(format_version=True), "format version True"),
        (lambda m: m.update(files=[]), "no valid 'files' entry"),
        (lambda m: m["files"].pop("state.json"), "no valid 'files' entry"),
        (lambda m: m.update(model="ItemKNN"), "no valid 'model' entry"),
        (lambda m: m["model"].update(params=[1]), "no valid 'model' entry"),
        (lambda m: m["model"].update(extra=1), "'model' has unknown keys"),
        (lambda m: m["model"]["params"].update(k="10"), "cannot build.*'k' parameter"),
        (lambda m: m["model"]["params"].update(nonsense=1), "cannot build"),
        (lambda m: m["files"]["state.json"].update(size="12"), "the entry of state.json must be"),
        (lambda m: m["files"]["state.json"].update(sha256=None), "the entry of state.json must be"),
        (lambda m: m.update(library_version=1), "'library_version' must be a string"),
        # found by the fuzzer: without its params an explicit-feedback model loaded as an implicit one
        (lambda m: m["model"].pop("params"), "no valid 'model' entry|must be {'class'"),
        (lambda m: m["model"]["params"].pop("feedback"), "lacks the parameters \\['feedback'\\]"),
    ],
)
def test_structural_faults_of_manifest_json(art: Path, edit: Any, message: str) -> None:
    _edit_json(art, "manifest.json", edit, rehash=False)
    with pytest.raises(ArtifactError, match=message):
        load_model(art)


@pytest.mark.parametrize("name", ["manifest.json", "state.json"])
@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a": 1e400}', '{"a": NaN}', '{"a": ' + "9" * 5000 + "}", "\xff"])
def test_hostile_json_text(art: Path, name: str, text: str) -> None:
    (art / name).write_bytes(text.encode("utf-8", "surrogateescape") if text != "\xff" else b"\xff{}")
    if name == "state.json":
        _rehash(art)
    with pytest.raises(ArtifactError, match="not valid JSON|not a recsys|plain numbers must be finite"):
        load_model(art)


def test_deeply_nested_state_is_refused(art: Path) -> None:
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    _edit_json(art, "state.json", lambda s: s.update(n_items_=deep))
    with pytest.raises(ArtifactError, match="nested more than"):
        load_model(art)


def test_npz_and_object_arrays_in_place_of_npy(art: Path) -> None:
    p = _file(art, "item_popularity_")
    a = np.load(p)
    with open(p, "wb") as f:
        np.savez(f, a)
    _rehash(art)
    with pytest.raises(ArtifactError, match="not a single .npy array"):
        load_model(art)
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _rehash(art)
    with pytest.raises(ArtifactError, match="cannot read"):
        load_model(art, mmap=False)


# -- links, special files, paths outside ----------------------------------------------------------


@pytest.mark.parametrize("verify", [True, False])
def test_a_linked_array_is_never_followed(art: Path, tmp_path: Path, verify: bool) -> None:
    p = _file(art, "item_popularity_")
    (tmp_path / "copy.npy").write_bytes(p.read_bytes())  # identical: following it would "work"
    p.unlink()
    p.symlink_to(tmp_path / "copy.npy")
    with pytest.raises(ArtifactError, match="symbolic link"):
        load_model(art, verify=verify)


@pytest.mark.parametrize("verify", [True, False])
def test_a_linked_arrays_directory_or_state_is_never_followed(art: Path, tmp_path: Path, verify: bool) -> None:
    os.rename(art / "arrays", tmp_path / "arrays")
    (art / "arrays").symlink_to(tmp_path / "arrays")
    with pytest.raises(ArtifactError, match="symbolic link at arrays"):
        load_model(art, verify=verify)
    (art / "arrays").unlink()
    os.rename(tmp_path / "arrays", art / "arrays")
    os.rename(art / "state.json", tmp_path / "state.json")
    (art / "state.json").symlink_to(tmp_path / "state.json")
    with pytest.raises(ArtifactError, match="symbolic link at state.json"):
        load_model(art, verify=verify)


def test_a_linked_manifest_is_refused(art: Path, tmp_path: Path) -> None:
    os.rename(art / "manifest.json", tmp_path / "manifest.json")
    (art / "manifest.json").symlink_to(tmp_path / "manifest.json")
    with pytest.raises(ArtifactError, match="links are never followed"):
        read_manifest(art)


def test_the_artifact_directory_itself_may_be_a_link(art: Path, tmp_path: Path) -> None:
    """A served root's ``current`` is a link to a version directory: that one link is the entry point."""
    (tmp_path / "current").symlink_to(art)
    assert load_model(tmp_path / "current").n_items_ == 32


@pytest.mark.parametrize("verify", [True, False])
def test_a_fifo_does_not_block_the_loader(art: Path, verify: bool) -> None:
    p = _file(art, "item_popularity_")
    p.unlink()
    os.mkfifo(p)
    with pytest.raises(ArtifactError, match="is not a regular file"):
        load_model(art, verify=verify)


@pytest.mark.parametrize("rel", ["../x.npy", "arrays/../../x.npy", "/tmp/x.npy", "arrays/./x.npy", "arrays/sub/x.npy", "state.json/x"])
def test_paths_outside_the_artifact_are_never_read_without_verify(art: Path, rel: str) -> None:
    p = _file(art, "item_popularity_")
    old = p.relative_to(art).as_posix()
    (art.parent / "x.npy").write_bytes(p.read_bytes())  # what '../x.npy' would read
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"][rel] = manifest["files"].pop(old)
    (art / "manifest.json").write_text(json.dumps(manifest))
    _edit_json(art, "state.json", lambda s: s.update(item_popularity_={"__ndarray__": rel}), rehash=False)
    with pytest.raises(ArtifactError, match="unsafe path"):
        load_model(art, verify=False)


def test_a_state_reference_to_an_unlisted_file_is_refused_without_verify(art: Path) -> None:
    _edit_json(art, "state.json", lambda s: s.update(item_popularity_={"__ndarray__": "arrays/../manifest.json"}), rehash=False)
    with pytest.raises(ArtifactError, match="which the manifest does not list"):
        load_model(art, verify=False)


# -- other models: nested, deep, neighbours of users ---------------------------------------------


def test_a_nested_model_fault_names_the_nested_field(tmp_path: Path) -> None:
    case = CONTRACT_CASES["Pipeline"]
    art = case.factory().fit(case.data()).save(tmp_path / "p")
    assert isinstance(load_model(art), Pipeline)
    _edit_array(art, "retriever_.neighbours__indices", _set(0, 10**8))
    with pytest.raises(ArtifactError, match="field 'retriever_.neighbours_' has indices"):
        load_model(art)


def test_deep_model_tables_and_weights_are_checked(tmp_path: Path) -> None:
    case = CONTRACT_CASES["DIN"]
    model = case.factory().fit(case.data())
    assert isinstance(model, DIN)
    art = model.save(tmp_path / "d")
    raw = {p.name: p.read_bytes() for p in (art / "arrays").glob("*.npy")}

    def reset() -> None:
        for name, data in raw.items():
            (art / "arrays" / name).write_bytes(data)
        _rehash(art)

    n_rows = json.loads((art / "state.json").read_text())["fields_"]["__dict__"]["n_rows"]
    _edit_array(art, "user_cat_", _set(0, n_rows))
    with pytest.raises(ArtifactError, match=f"field 'user_cat_' holds values outside \\[0, {n_rows}\\)"):
        load_model(art)
    reset()
    _edit_array(art, "history_items_", _set(0, 10**6))
    with pytest.raises(ArtifactError, match="field 'history_items_' holds values outside \\[0, 32\\)"):
        load_model(art)
    reset()
    _edit_array(art, "history_indptr_", _set(3, 0))
    with pytest.raises(ArtifactError, match="history_indptr_' must start at 0 and never decrease"):
        load_model(art)
    reset()
    _edit_array(art, "state_dict_.dnn.0.weight", lambda a: a[:, :-1])
    with pytest.raises(ArtifactError, match="state_dict_ entry 'dnn.0.weight' has shape"):
        load_model(art)
    reset()
    _edit_array(art, "state_dict_.out.bias", lambda a: a * np.inf)
    with pytest.raises(ArtifactError, match="state_dict_.out.bias' holds NaN or inf"):
        load_model(art)
    reset()
    _edit_json(art, "state.json", lambda s: s["fields_"]["__dict__"].update(n_rows=10**12))
    with pytest.raises(ArtifactError, match="field 'fields_' has n_rows"):
        load_model(art)


def test_user_knn_neighbours_are_checked_against_the_user_map(tmp_path: Path) -> None:
    art = UserKNN(k=5).fit(tiny_interactions()).save(tmp_path / "u")
    _edit_json(art, "state.json", lambda s: s["neighbours_"].update(shape=[20, 32]))
    with pytest.raises(ArtifactError, match="field 'neighbours_' has shape \\(20, 32\\); expected \\(n_users=20, n_users=20\\)"):
        load_model(art)


def test_a_user_model_without_declarations_still_loads(tmp_path: Path) -> None:
    """Undeclared attributes of a user's own model pass (the generic decoding checks still apply)."""

    class Counts(Popular):
        def _fit(self, data: Any) -> None:
            super()._fit(data)
            self.counts_ = np.asarray(self.popularity_) * 2

    m = Counts().fit(tiny_interactions())
    loaded = load_model(m.save(tmp_path / "c"))
    np.testing.assert_array_equal(loaded.counts_, m.counts_)


def test_an_index_of_another_dimension_is_refused(tmp_path: Path) -> None:
    case = CONTRACT_CASES["ALS"]
    art = case.factory().fit(case.data()).save(tmp_path / "a")
    state = json.loads((art / "state.json").read_text())
    dim = state["index_"]["__itemindex__"]["dim"]
    _edit_array(art, "index__matrix", lambda a: np.hstack([a, a[:, :1]]))  # consistent with itself: one more column
    _edit_json(art, "state.json", lambda s: s["index_"]["__itemindex__"].update(dim=dim + 1))
    with pytest.raises(ArtifactError, match=f"the index holds vectors of dimension {dim + 1}; the model's have {dim}"):
        load_model(art)


def test_a_blend_must_keep_one_model_per_weight(tmp_path: Path) -> None:
    case = CONTRACT_CASES["Blend"]
    art = case.factory().fit(case.data()).save(tmp_path / "b")
    _edit_json(art, "state.json", lambda s: s["models_"].pop())
    with pytest.raises(ArtifactError, match="field 'models_' holds 1 models; the config has 2"):
        load_model(art)
