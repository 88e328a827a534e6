"""On-disk cache of text embeddings, keyed by model and text (numpy files only, atomic writes).

Layout: ``<directory>/<namespace>/<shard>.keys.npy`` (the 32-byte SHA-256
keys, dtype ``S32``) beside ``<shard>.vecs.npy`` (float32 rows in the same
order). A shard is written vectors first, keys last, each through a
temporary file and an atomic rename, so a reader only ever sees complete
shards and a crash leaves at most an orphan temporary file. Processes may
share a cache directory: shards have unique names and are never modified.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from recsys.errors import ParameterError, RecsysWarning

_KEYS = ".keys.npy"
_VECS = ".vecs.npy"


def default_cache_dir() -> Path:
    """``$RECSYS_CACHE_DIR/embeddings`` if set, else ``~/.cache/recsys/embeddings``."""
    root = os.environ.get("RECSYS_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "recsys"
    return base / "embeddings"


def text_keys(namespace: str, texts: Sequence[str]) -> NDArray[np.bytes_]:
    """SHA-256 of ``namespace + NUL + text`` for each text, as an ``S32`` array.

    Examples
    --------
    >>> k = text_keys("model-a", ["x", "y", "x"])
    >>> k.dtype.str, bool(k[0] == k[2]), bool(k[0] == text_keys("model-b", ["x"])[0])
    ('|S32', True, False)
    """
    prefix = hashlib.sha256(namespace.encode("utf-8") + b"\0")
    out = np.empty(len(texts), dtype="S32")
    for i, t in enumerate(texts):
        h = prefix.copy()
        h.update(t.encode("utf-8"))
        out[i] = h.digest()
    return out


def _atomic_save(path: Path, arr: NDArray[np.generic]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class EmbeddingCache:
    """A key -> vector store under ``directory/namespace`` (one namespace per model configuration).

    Parameters
    ----------
    namespace : str
        Names the sub-directory, e.g. a hash of the model and its settings.
    directory : str or path, optional
        Default :func:`default_cache_dir`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> cache = EmbeddingCache("demo", tempfile.mkdtemp())
    >>> keys = text_keys("demo", ["a", "b"])
    >>> cache.put(keys, np.eye(2, dtype=np.float32))
    >>> found, vecs = cache.get(text_keys("demo", ["b", "c"]))
    >>> found.tolist(), vecs.tolist()
    ([True, False], [[0.0, 1.0]])
    """

    def __init__(self, namespace: str, directory: str | os.PathLike[str] | None = None) -> None:
        if not namespace or any(c in namespace for c in "/\\") or namespace in (".", ".."):
            raise ParameterError(f"a cache namespace must be a plain non-empty name; got {namespace!r}")
        self.path = Path(directory if directory is not None else default_cache_dir()) / namespace
        self._loaded: set[str] = set()
        self._keys = np.empty(0, dtype="S32")
        self._vecs: NDArray[np.float32] | None = None

    def _shards(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name[: -len(_KEYS)] for p in self.path.iterdir() if p.name.endswith(_KEYS))

    def _refresh(self) -> None:
        """Load shards written since the last call (by this or another process)."""
        new_keys: list[NDArray[np.bytes_]] = []
        new_vecs: list[NDArray[np.float32]] = []
        for shard in self._shards():
            if shard in self._loaded:
                continue
            try:
                keys = np.load(self.path / (shard + _KEYS), allow_pickle=False)
                vecs = np.load(self.path / (shard + _VECS), allow_pickle=False)
                ok = (
                    keys.dtype == np.dtype("S32")
                    and keys.ndim == 1
                    and vecs.dtype == np.float32
                    and vecs.ndim == 2
                    and len(vecs) == len(keys)
                    and (self._vecs is None or vecs.shape[1] == self._vecs.shape[1])
                    and all(v.shape[1] == vecs.shape[1] for v in new_vecs)
                )
            except (OSError, ValueError) as e:
                ok, reason = False, str(e)
            else:
                reason = "unexpected dtype or shape"
            self._loaded.add(shard)
            if not ok:
                warnings.warn(f"ignoring damaged embedding-cache shard {self.path / shard} ({reason})", RecsysWarning, stacklevel=3)
                continue
            new_keys.append(keys)
            new_vecs.append(vecs)
        if not new_keys:
            return
        keys = np.concatenate([self._keys, *new_keys])
        vecs = np.concatenate(([self._vecs] if self._vecs is not None else []) + new_vecs)
        order = np.argsort(keys, kind="stable")
        self._keys, self._vecs = keys[order], vecs[order]

    def __len__(self) -> int:
        self._refresh()
        return len(self._keys)

    def get(self, keys: NDArray[np.bytes_]) -> tuple[NDArray[np.bool_], NDArray[np.float32]]:
        """``(found, vectors)``: a mask over ``keys`` and the vectors of the found ones, in order."""
        self._refresh()
        if self._vecs is None or len(keys) == 0:
            dim = 0 if self._vecs is None else self._vecs.shape[1]
            return np.zeros(len(keys), dtype=bool), np.empty((0, dim), dtype=np.float32)
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, len(self._keys) - 1)
        found = (pos < len(self._keys)) & (self._keys[pos_c] == keys)
        return found, self._vecs[pos_c[found]]

    def put(self, keys: NDArray[np.bytes_], vectors: NDArray[np.float32]) -> None:
        """Store ``vectors`` (rows aligned with ``keys``) as one new shard."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ParameterError(f"cache put needs one vector row per key; got {len(keys)} keys and shape {vectors.shape}")
        if len(keys) == 0:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        shard = uuid.uuid4().hex
        _atomic_save(self.path / (shard + _VECS), vectors)
        _atomic_save(self.path / (shard + _KEYS), np.asarray(keys, dtype="S32"))

    def clear(self) -> None:
        """Delete every shard of this namespace."""
        for shard in self._shards():
            for suffix in (_KEYS, _VECS):
                try:
                    (self.path / (shard + suffix)).unlink()
                except FileNotFoundError:
                    pass
        self._loaded.clear()
        self._keys = np.empty(0, dtype="S32")
        self._vecs = None


__all__ = ["EmbeddingCache", "default_cache_dir", "text_keys"]
