"""Model roots, atomic publishing, and a worker's store: verified loads, rejected versions, no retries of the same one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from recsys.data import IdMap
from recsys.errors import ArtifactError, ParameterError
from recsys.models import EASE, ItemKNN, Popular
from recsys.serving import IdParser, ModelStore, activate, current_version, load_version, publish, resolve_artifact
from recsys.serving import _store as store_mod
from recsys.testing import tiny_interactions


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    data = tiny_interactions()
    return {"pop": Popular().fit(data), "knn": ItemKNN(k=10).fit(data), "ease": EASE(reg=10.0).fit(data)}


def _tamper(artifact: Path) -> None:
    f = sorted((artifact / "arrays").glob("*.npy"))[-1]
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01
    f.write_bytes(bytes(raw))


def _broken_copy(root: Path, src: str, name: str, how: str) -> None:
    dst = root / "versions" / name
    shutil.copytree(root / "versions" / src, dst)
    if how == "tampered":
        _tamper(dst)
    elif how == "truncated":
        f = sorted((dst / "arrays").glob("*.npy"))[0]
        f.write_bytes(f.read_bytes()[:-5])
    elif how == "foreign":
        m = json.loads((dst / "manifest.json").read_text())
        m["format"] = "somebody-elses-model"
        (dst / "manifest.json").write_text(json.dumps(m))
    elif how == "unknown_class":
        m = json.loads((dst / "manifest.json").read_text())
        m["model"]["class"] = "os.system"
        (dst / "manifest.json").write_text(json.dumps(m))
    elif how == "unlisted_file":
        (dst / "arrays" / "evil.npy").write_bytes(b"\x93NUMPY")


def test_publish_layout_and_atomic_link(tmp_path: Path, fitted: dict[str, object]) -> None:
    root = tmp_path / "models"
    p1 = publish(fitted["pop"], root, version="v1")  # type: ignore[arg-type]
    assert p1 == root / "versions" / "v1" and (p1 / "manifest.json").is_file()
    assert os.readlink(root / "current") == os.path.join("versions", "v1")  # relative: the root can move
    assert current_version(root) == "v1" and resolve_artifact(root) == p1.resolve()
    publish(fitted["knn"], root)  # default name: a UTC timestamp, sorting after "v1"? no: digits sort first
    name = current_version(root)
    assert name[:8].isdigit() and name.endswith("Z")
    assert sorted(p.name for p in root.iterdir()) == ["current", "versions"]  # no temporaries left
    with pytest.raises(ArtifactError, match="already exists"):
        publish(fitted["pop"], root, version="v1")  # type: ignore[arg-type]
    for bad in ("../x", ".hidden", "a/b", "", "-x"):
        with pytest.raises(ParameterError, match="'version' parameter of publish"):
            publish(fitted["pop"], root, version=bad)  # type: ignore[arg-type]
    activate(root, "v1")  # rollback
    assert current_version(root) == "v1"
    with pytest.raises(ArtifactError, match="not a model artifact"):
        activate(root, "v9")


def test_publish_copies_verified_artifacts_and_prunes(tmp_path: Path, fitted: dict[str, object]) -> None:
    src = fitted["ease"].save(tmp_path / "trained")  # type: ignore[attr-defined]
    root = tmp_path / "models"
    publish(src, root, version="a")
    assert current_version(root) == "a"
    _tamper(src)
    with pytest.raises(ArtifactError, match="SHA-256"):
        publish(src, root, version="b")  # a broken artifact never becomes current
    assert current_version(root) == "a" and not (root / "versions" / "b").exists()
    for v in ("v9", "v10", "v11"):  # the most recently written are kept, whatever their names
        publish(fitted["pop"], root, version=v, keep=2)  # type: ignore[arg-type]
    assert sorted(p.name for p in (root / "versions").iterdir()) == ["v10", "v11"]
    with pytest.raises(ParameterError, match="keep"):
        publish(fitted["pop"], root, keep=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["recommend_one", "recommend_history"])
def test_publish_refuses_a_version_that_loads_but_cannot_answer(
    tmp_path: Path, fitted: dict[str, object], monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    publish(fitted["pop"], tmp_path, version="v1")  # type: ignore[arg-type]
    asked: list[tuple[object, ...]] = []

    def boom(self, *a, **k):  # type: ignore[no-untyped-def]
        asked.append(a)
        raise RuntimeError("scores exploded")

    monkeypatch.setattr(ItemKNN, method, boom)
    with pytest.raises(ArtifactError) as info:
        publish(fitted["knn"], tmp_path, version="v2")  # type: ignore[arg-type]
    msg = str(info.value)
    assert msg.startswith("publish refused version 'v2' of ") and "fails to recommend: RuntimeError: scores exploded" in msg
    assert msg.endswith("'current' still points at 'v1'")
    knn = fitted["knn"]
    if method == "recommend_one":  # asked for a known user (the first) ...
        assert asked[0][0] == knn.users_.ids[0]  # type: ignore[attr-defined]
    else:  # ... and for a short history of known items
        assert list(asked[0][0]) == list(knn.items_.ids[:3])  # type: ignore[attr-defined]
    assert current_version(tmp_path) == "v1"
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == ["v1"]  # the refused version is deleted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "versions"]
    monkeypatch.undo()
    publish(fitted["knn"], tmp_path, version="v2")  # type: ignore[arg-type]  # the name is free again
    assert current_version(tmp_path) == "v2"


def test_publish_refuses_a_first_version_that_cannot_answer(
    tmp_path: Path, fitted: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Popular, "recommend_one", lambda self, *a, **k: 1 / 0)
    with pytest.raises(ArtifactError, match=r"publish refused version 'v1' .*ZeroDivisionError.*there is no 'current' version yet"):
        publish(fitted["pop"], tmp_path, version="v1")  # type: ignore[arg-type]
    assert not os.path.lexists(tmp_path / "current") and list((tmp_path / "versions").iterdir()) == []


def test_resolve_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        resolve_artifact(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="neither a model artifact"):
        resolve_artifact(tmp_path)
    os.symlink("versions/gone", tmp_path / "current")
    with pytest.raises(ArtifactError, match="cannot be resolved"):
        resolve_artifact(tmp_path)


def test_load_is_memory_mapped_verified_and_timed(tmp_path: Path, fitted: dict[str, object]) -> None:
    publish(fitted["ease"], tmp_path, version="v1")  # type: ignore[arg-type]
    loaded = load_version(resolve_artifact(tmp_path))
    assert isinstance(loaded.model.weights_, np.memmap)  # type: ignore[attr-defined]
    assert loaded.load_seconds > 0 and loaded.supports_history and loaded.supports_similar
    ids, scores = loaded.model.recommend_one(3, k=5)
    want_ids, want_scores = fitted["ease"].recommend_one(3, k=5)  # type: ignore[attr-defined]
    assert ids.tolist() == want_ids.tolist() and np.array_equal(scores, want_scores)


@pytest.mark.parametrize(
    "how,message",
    [
        ("tampered", "does not match its SHA-256"),
        ("truncated", "truncated or modified"),
        ("foreign", "not a recsys model artifact"),
        ("unknown_class", "cannot build"),
        ("unlisted_file", "does not list"),
    ],
)
def test_broken_version_is_rejected_and_old_keeps_serving(
    tmp_path: Path, fitted: dict[str, object], how: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "m"
    publish(fitted["pop"], root, version="v1")  # type: ignore[arg-type]
    store = ModelStore(root, poll_interval=0)
    store.load_initial()
    _broken_copy(root, "v1", "v2", how)
    activate(root, "v2")
    assert store.check() is False
    assert store.current is not None and store.current.version == "v1"
    assert store.last_error is not None and store.last_error.version == "v2"
    assert message in store.last_error.error
    # the same broken version is not loaded (and hashed) again at every poll
    calls = []
    monkeypatch.setattr(store_mod, "load_version", lambda p: calls.append(p))
    assert store.check() is False and calls == []
    monkeypatch.undo()
    publish(fitted["knn"], root, version="v3")  # type: ignore[arg-type]
    assert store.check() is True
    assert store.current.version == "v3" and store.last_error is None and store.reloads == 1
    assert type(store.current.model).__name__ == "ItemKNN"


def test_broken_initial_version_refuses_to_start(tmp_path: Path, fitted: dict[str, object]) -> None:
    publish(fitted["pop"], tmp_path, version="v1")  # type: ignore[arg-type]
    _tamper(tmp_path / "versions" / "v1")
    with pytest.raises(ArtifactError, match="SHA-256"):
        ModelStore(tmp_path).load_initial()


def test_model_that_cannot_answer_is_rejected(tmp_path: Path, fitted: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    publish(fitted["pop"], tmp_path, version="v1")  # type: ignore[arg-type]
    store = ModelStore(tmp_path, poll_interval=0)
    store.load_initial()
    publish(fitted["knn"], tmp_path, version="v2")  # type: ignore[arg-type]

    def boom(self, *a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("scores exploded")

    monkeypatch.setattr(ItemKNN, "recommend_one", boom)
    assert store.check() is False and "fails to recommend: RuntimeError: scores exploded" in store.last_error.error  # type: ignore[union-attr]
    assert store.current.version == "v1"  # type: ignore[union-attr]


def test_link_to_nowhere_keeps_serving(tmp_path: Path, fitted: dict[str, object]) -> None:
    publish(fitted["pop"], tmp_path, version="v1")  # type: ignore[arg-type]
    store = ModelStore(tmp_path, poll_interval=0)
    store.load_initial()
    os.unlink(tmp_path / "current")
    os.symlink("versions/missing", tmp_path / "current")
    assert store.check() is False and "cannot be resolved" in store.last_error.error  # type: ignore[union-attr]
    assert store.current.version == "v1"  # type: ignore[union-attr]


def test_plain_artifact_reloads_when_saved_over(tmp_path: Path, fitted: dict[str, object]) -> None:
    path = fitted["pop"].save(tmp_path / "model")  # type: ignore[attr-defined]
    store = ModelStore(path, poll_interval=0)
    first = store.load_initial()
    assert store.check() is False
    os.utime(path / "manifest.json")  # touched, same content: no reload
    assert store.check() is False and store.current is first
    fitted["knn"].save(path)  # type: ignore[attr-defined]
    assert store.check() is True and type(store.current.model).__name__ == "ItemKNN"  # type: ignore[union-attr]


def test_watcher_thread_and_wakeup(tmp_path: Path, fitted: dict[str, object]) -> None:
    publish(fitted["pop"], tmp_path, version="v1")  # type: ignore[arg-type]
    store = ModelStore(tmp_path, poll_interval=0)  # no polling: only request_check wakes it
    store.load_initial()
    store.start()
    try:
        publish(fitted["knn"], tmp_path, version="v2")  # type: ignore[arg-type]
        store.request_check()
        for _ in range(200):
            if store.current.version == "v2":  # type: ignore[union-attr]
                break
            import time

            time.sleep(0.02)
        assert store.current.version == "v2"  # type: ignore[union-attr]
    finally:
        store.stop()
    with pytest.raises(ParameterError, match="poll_interval"):
        ModelStore(tmp_path, poll_interval=-1)


def test_id_parser() -> None:
    ints = IdParser(IdMap([1, 2, 30]))
    assert ints.kind == "int"
    assert [ints.one(v) for v in ("2", 2, "030", "-1", "2.0", " 2", "x", "99999999999999999999")] == [
        2, 2, 30, -1, "2.0", " 2", "x", "99999999999999999999"
    ]
    assert ints.one(True) is True  # a bool is never an id
    strs = IdParser(IdMap(["a", "7"]))
    assert strs.kind == "str" and strs.one(7) == "7" and strs.one("a") == "a"
    mixed = IdParser(IdMap([1, "1", "x", 5]))
    assert mixed.kind == "mixed"
    assert mixed.one("1") == "1" and mixed.one(1) == 1  # present as given wins
    assert mixed.one("5") == 5 and mixed.one("x") == "x" and mixed.one("y") == "y"
    assert IdParser(IdMap(["5", "x"])).one(5) == "5"
