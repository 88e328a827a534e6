"""Artifacts: round trips, atomic writes, and refusal of anything tampered, truncated or foreign."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions, load_model
from recsys.errors import ArtifactError, DataTypeError, NotFittedError
from recsys.models import Popular
from recsys.persistence import read_manifest


@pytest.fixture
def model() -> Popular:
    df = pd.DataFrame({"user": ["ann", "bob", "bob", "cy"], "item": ["x", "x", "y", "z"]})
    return Popular().fit(Interactions.from_frame(df))


def _rewrite_manifest(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    m = json.loads((path / "manifest.json").read_text())
    edit(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_round_trip_with_string_and_int_ids(model: Popular, tmp_path: Path) -> None:
    p = model.save(tmp_path / "m")
    loaded = load_model(p)
    assert isinstance(loaded, Popular)
    assert loaded.users_.ids.tolist() == ["ann", "bob", "cy"]
    pd.testing.assert_frame_equal(loaded.recommend(["ann", "cy"]), model.recommend(["ann", "cy"]))
    assert isinstance(loaded.popularity_, np.memmap)  # memory-mapped, not copied
    ints = Popular().fit(Interactions.from_arrays([10, 20], [7, 8]))
    assert load_model(ints.save(tmp_path / "i")).items_.ids.dtype == np.int64


def test_manifest_records_class_params_and_hashes(model: Popular, tmp_path: Path) -> None:
    m = read_manifest(model.save(tmp_path / "m"))
    assert m["model"] == {"class": "recsys.models.popular.Popular", "params": {"half_life": None}}
    assert all(len(meta["sha256"]) == 64 for meta in m["files"].values())
    assert "state.json" in m["files"]


def test_save_replaces_atomically_and_leaves_no_temporaries(model: Popular, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    Popular(half_life=None).fit(Interactions.from_arrays(["q"], ["w"])).save(tmp_path / "m")
    assert load_model(tmp_path / "m").users_.ids.tolist() == ["q"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_unfitted_model_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        Popular().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_modified_byte_is_refused(model: Popular, tmp_path: Path) -> None:
    p = model.save(tmp_path / "m")
    f = next((p / "arrays").glob("*popularity_*.npy"))
    raw = bytearray(f.read_bytes())
    raw[-2] ^= 0x01
    f.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="does not match its SHA-256"):
        load_model(p)


def test_truncated_file_is_refused(model: Popular, tmp_path: Path) -> None:
    p = model.save(tmp_path / "m")
    f = next((p / "arrays").glob("*.npy"))
    f.write_bytes(f.read_bytes()[:-3])
    with pytest.raises(ArtifactError, match="truncated or modified"):
        load_model(p)


def test_unlisted_and_missing_files_are_refused(model: Popular, tmp_path: Path) -> None:
    p = model.save(tmp_path / "m")
    (p / "arrays" / "extra.npy").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="files its manifest does not list"):
        load_model(p)
    (p / "arrays" / "extra.npy").unlink()
    next((p / "arrays").glob("*.npy")).unlink()
    with pytest.raises(ArtifactError, match="is missing arrays/"):
        load_model(p)


def test_pickle_payload_is_never_executed(model: Popular, tmp_path: Path) -> None:
    """An attacker rewrites an array as a pickled object array and fixes the manifest hash."""
    p = model.save(tmp_path / "m")
    f = next((p / "arrays").glob("*popularity_*.npy"))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (marker,))

    np.save(f, np.array([Evil()], dtype=object), allow_pickle=True)
    import hashlib

    rel = f.relative_to(p).as_posix()
    data = f.read_bytes()

    def fix(m: dict) -> None:  # type: ignore[type-arg]
        m["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    _rewrite_manifest(p, fix)
    with pytest.raises(ArtifactError, match="cannot read"):
        load_model(p)
    assert not marker.exists()
    assert pickle  # the payload above really is a pickle


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="something-else"), "is not a recsys model artifact"),
        (lambda m: m.update(format_version=99), "format version 99"),
        (lambda m: m.update(model={"class": "os.system", "params": {}}), "cannot build: unknown class 'os.system'"),
        (lambda m: m["files"].update({"../../etc/passwd": {"sha256": "0", "size": 1}}), "unsafe path"),
    ],
)
def test_foreign_or_hostile_manifest(model: Popular, tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    p = model.save(tmp_path / "m")
    _rewrite_manifest(p, edit)
    with pytest.raises(ArtifactError, match=message):
        load_model(p)


def test_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a model artifact directory"):
        load_model(tmp_path / "nothing")
    (tmp_path / "d").mkdir()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        load_model(tmp_path / "d")
    (tmp_path / "d" / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_model(tmp_path / "d")


def test_load_checks_the_class(model: Popular, tmp_path: Path) -> None:
    from recsys.models.base import Recommender

    class Other(Popular):
        pass

    p = model.save(tmp_path / "m")
    with pytest.raises(ArtifactError, match="holds a Popular, not a Other"):
        Other.load(p)
    assert isinstance(Recommender.load(p), Popular)


def test_mixed_id_types_round_trip(tmp_path: Path) -> None:
    # ints and strs in one map (e.g. users added by a partial fit) keep their exact types
    m = Popular().fit(Interactions.from_arrays(np.array([1, "a", 10], dtype=object), ["x", "y", "y"]))
    loaded = load_model(m.save(tmp_path / "m"))
    ids = loaded.users_.ids.tolist()
    assert ids == [1, "a", 10] and [type(x) for x in ids] == [int, str, int]
    assert loaded.recommend_one(10, k=1, exclude_seen=False)[0].tolist() == ["y"]


def test_ids_of_other_types_cannot_be_saved(tmp_path: Path) -> None:
    # refused where they enter (naming the column, row and value), so no model ever holds them
    with pytest.raises(DataTypeError, match=r"column 'user', row 0: id 1.5 \(float\): ids must be integers or strings"):
        Interactions.from_arrays(np.array([1.5, "a"], dtype=object), ["x", "y"])
