"""The on-disk embedding cache: round trips, sharing between instances, atomicity and damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.content import EmbeddingCache, default_cache_dir
from recsys.content._cache import text_keys
from recsys.errors import ParameterError, RecsysWarning


def test_put_get_across_instances_and_shards(tmp_path: Path) -> None:
    a = EmbeddingCache("m1", tmp_path)
    keys = text_keys("m1", ["x", "y", "z"])
    vecs = np.arange(6, dtype=np.float32).reshape(3, 2)
    a.put(keys[:2], vecs[:2])
    a.put(keys[2:], vecs[2:])
    b = EmbeddingCache("m1", tmp_path)  # a later process
    found, got = b.get(text_keys("m1", ["z", "nope", "x", "z"]))
    assert found.tolist() == [True, False, True, True]
    np.testing.assert_array_equal(got, vecs[[2, 0, 2]])
    assert len(b) == 3
    # a shard written by another instance after the first read is picked up
    a.put(text_keys("m1", ["w"]), np.array([[9.0, 9.0]], dtype=np.float32))
    assert b.get(text_keys("m1", ["w"]))[0].tolist() == [True]
    # namespaces do not mix
    assert not EmbeddingCache("m2", tmp_path).get(keys)[0].any()


def test_files_are_plain_npy_and_no_temporaries_remain(tmp_path: Path) -> None:
    c = EmbeddingCache("ns", tmp_path)
    c.put(text_keys("ns", ["a"]), np.ones((1, 3), dtype=np.float32))
    names = sorted(p.name for p in (tmp_path / "ns").iterdir())
    assert len(names) == 2 and names[0].endswith(".keys.npy") and names[1].endswith(".vecs.npy")
    keys = np.load(tmp_path / "ns" / names[0], allow_pickle=False)
    assert keys.dtype == np.dtype("S32")


def test_a_shard_without_its_keys_file_is_invisible(tmp_path: Path) -> None:
    # a crash between the two renames leaves only the vectors: the shard must not count
    c = EmbeddingCache("ns", tmp_path)
    c.put(text_keys("ns", ["a"]), np.ones((1, 3), dtype=np.float32))
    next((tmp_path / "ns").glob("*.keys.npy")).unlink()
    assert len(EmbeddingCache("ns", tmp_path)) == 0


def test_damaged_shards_are_ignored_with_a_warning(tmp_path: Path) -> None:
    c = EmbeddingCache("ns", tmp_path)
    c.put(text_keys("ns", ["a"]), np.ones((1, 3), dtype=np.float32))
    c.put(text_keys("ns", ["b"]), np.full((1, 3), 2.0, dtype=np.float32))
    victim = sorted((tmp_path / "ns").glob("*.vecs.npy"))[0]
    victim.write_bytes(b"not an npy file")
    fresh = EmbeddingCache("ns", tmp_path)
    with pytest.warns(RecsysWarning, match="ignoring damaged embedding-cache shard"):
        assert len(fresh) == 1
    # a shard of the wrong width is refused too
    c.put(text_keys("ns", ["c"]), np.ones((1, 5), dtype=np.float32))
    with pytest.warns(RecsysWarning, match="unexpected dtype or shape"):
        assert fresh.get(text_keys("ns", ["c"]))[0].tolist() == [False]


def test_clear_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = EmbeddingCache("ns", tmp_path)
    c.put(text_keys("ns", ["a"]), np.ones((1, 3), dtype=np.float32))
    c.clear()
    assert len(c) == 0 and not list((tmp_path / "ns").iterdir())
    c.put(text_keys("ns", []), np.empty((0, 3), dtype=np.float32))  # nothing to store: no shard
    assert not list((tmp_path / "ns").iterdir())
    with pytest.raises(ParameterError, match="one vector row per key; got 2 keys and shape \\(1, 3\\)"):
        c.put(text_keys("ns", ["a", "b"]), np.ones((1, 3), dtype=np.float32))
    for bad in ("", "a/b", ".."):
        with pytest.raises(ParameterError, match="plain non-empty name"):
            EmbeddingCache(bad, tmp_path)
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "root"))
    assert default_cache_dir() == tmp_path / "root" / "embeddings"
    monkeypatch.delenv("RECSYS_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "recsys" / "embeddings"


def test_keys_hash_namespace_and_text() -> None:
    import hashlib

    k = text_keys("ns", ["héllo"])
    assert k[0] == hashlib.sha256("ns\0héllo".encode()).digest()
