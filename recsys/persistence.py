"""Model artifacts: a directory of JSON and ``.npy`` files, hashed, written atomically, loaded without pickle.

Layout of an artifact directory::

    manifest.json   format, format version, library version, model class,
                    hyper-parameters and the SHA-256 and size of every other file
    state.json      the model's learned scalars and the structure of its state
    arrays/*.npy    every learned array (memory-mappable), id maps, sparse parts

A model's learned state is every attribute whose name ends in ``_`` (the
scikit-learn convention). Each is stored by type: numpy arrays as ``.npy``;
scipy sparse matrices as their ``data``/``indices``/``indptr`` arrays; id maps
as int64 ids or UTF-8 bytes plus offsets; FAISS indexes through their own
serialisation; nested models recursively; JSON values as JSON. Anything else
is refused at save time, so loading never needs pickle.

Loading resolves the class only among registered :class:`Recommender`
subclasses (never by importing a module named in the file), checks the format
version and every file's hash and size, and refuses files the manifest does
not list.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._version import __version__
from recsys.data import IdMap
from recsys.errors import ArtifactError, ParameterError

if TYPE_CHECKING:
    from recsys.models.base import Recommender

FORMAT = "recsys-model"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_STATE = "state.json"


# -- encoding state ------------------------------------------------------------


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "arrays").mkdir(parents=True, exist_ok=True)
        self.n = 0

    def array(self, arr: NDArray[Any], hint: str) -> str:
        if arr.dtype == object:
            raise ArtifactError(f"cannot save {hint!r}: object arrays would need pickle; convert it to numbers or str")
        self.n += 1
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in hint)[:80]
        rel = f"arrays/{self.n:03d}_{safe}.npy"
        np.save(self.root / rel, np.ascontiguousarray(arr), allow_pickle=False)
        return rel


def _encode_ids(ids: NDArray[Any], w: _Writer, hint: str) -> dict[str, Any]:
    if ids.dtype.kind in "iu":
        return {"kind": "int", "ids": w.array(ids.astype(np.int64), hint)}
    is_int = np.fromiter((isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in ids), bool, len(ids))
    if not all(is_int[i] or isinstance(x, str) for i, x in enumerate(ids)):
        raise ArtifactError(f"cannot save id map {hint!r}: ids must be integers or strings")
    # Mixed int/str maps (ids appended by partial fits) store every id as text plus an int flag.
    encoded = [str(x).encode("utf-8") for x in ids]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    spec = {"kind": "str", "bytes": w.array(blob, hint + "_utf8"), "offsets": w.array(offsets, hint + "_offsets")}
    if is_int.any():
        spec["is_int"] = w.array(is_int.astype(np.uint8), hint + "_is_int")
    return spec


def _decode_ids(spec: dict[str, Any], r: _Reader) -> NDArray[Any]:
    if spec["kind"] == "int":
        return np.asarray(r.array(spec["ids"]), dtype=np.int64)
    blob = bytes(np.asarray(r.array(spec["bytes"])))
    off = np.asarray(r.array(spec["offsets"]))
    out = np.array([blob[off[i] : off[i + 1]].decode("utf-8") for i in range(len(off) - 1)], dtype=object)
    if "is_int" in spec:
        flags = np.asarray(r.array(spec["is_int"])).astype(bool)
        if flags.shape != out.shape:
            raise ArtifactError(f"id map flags have shape {flags.shape}; expected {out.shape}")
        out[flags] = [int(x) for x in out[flags]]
    return out


def encode_value(value: Any, w: _Writer, hint: str) -> Any:
    """A JSON description of ``value``, writing its arrays through ``w``."""
    from recsys.models.base import Recommender

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else {"__float__": repr(v)}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": w.array(value, hint)}
    if sp.issparse(value):
        m = value.tocsr() if value.format not in ("csr", "csc") else value
        return {
            "__sparse__": m.format,
            "shape": list(m.shape),
            "data": w.array(m.data, hint + "_data"),
            "indices": w.array(m.indices, hint + "_indices"),
            "indptr": w.array(m.indptr, hint + "_indptr"),
        }
    if isinstance(value, IdMap):
        return {"__idmap__": value.name, **_encode_ids(value.ids, w, hint)}
    if isinstance(value, Recommender):
        return {"__model__": value.get_config(), "state": encode_state(value, w, hint + ".")}
    if hasattr(value, "to_arrays") and hasattr(value, "get_config") and type(value).__name__ == "ItemIndex":
        arrays = value.to_arrays()
        return {
            "__itemindex__": value.get_config(),
            "arrays": {k: w.array(np.asarray(a), f"{hint}_{k}") for k, a in arrays.items()},
        }
    if isinstance(value, (list, tuple)):
        return [encode_value(v, w, f"{hint}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ArtifactError(f"cannot save {hint!r}: dict keys must be str")
        return {"__dict__": {k: encode_value(v, w, f"{hint}.{k}") for k, v in value.items()}}
    raise ArtifactError(
        f"cannot save attribute {hint!r} of type {type(value).__name__}: "
        "store learned state as numpy arrays, sparse matrices, IdMaps or JSON values"
    )


def encode_state(model: Recommender, w: _Writer, prefix: str = "") -> dict[str, Any]:
    return {name: encode_value(v, w, prefix + name) for name, v in model._learned_state().items()}


class _Reader:
    def __init__(self, root: Path, files: dict[str, Any], mmap: bool) -> None:
        self.root = root
        self.files = files
        self.mmap = mmap

    def array(self, rel: str) -> NDArray[Any]:
        if rel not in self.files:
            raise ArtifactError(f"artifact state refers to {rel!r}, which the manifest does not list")
        try:
            return np.load(self.root / rel, mmap_mode="r" if self.mmap else None, allow_pickle=False)  # type: ignore[no-any-return]
        except ValueError as e:
            raise ArtifactError(f"cannot read {rel!r} of the artifact: {e}") from None


def decode_value(spec: Any, r: _Reader) -> Any:
    from recsys.models.base import Recommender

    if isinstance(spec, list):
        return [decode_value(v, r) for v in spec]
    if not isinstance(spec, dict):
        return spec
    if "__float__" in spec:
        return float(spec["__float__"])
    if "__ndarray__" in spec:
        return r.array(spec["__ndarray__"])
    if "__sparse__" in spec:
        cls = sp.csr_matrix if spec["__sparse__"] == "csr" else sp.csc_matrix
        parts = [np.asarray(r.array(spec[p])) for p in ("data", "indices", "indptr")]
        return cls(tuple(parts), shape=tuple(spec["shape"]))
    if "__idmap__" in spec:
        return IdMap(_decode_ids(spec, r), name=spec["__idmap__"])
    if "__model__" in spec:
        sub = Recommender.from_config(spec["__model__"])
        sub._restore_state({k: decode_value(v, r) for k, v in spec["state"].items()})
        return sub
    if "__itemindex__" in spec:
        from recsys.index import ItemIndex

        arrays = {k: np.asarray(r.array(v)) for k, v in spec["arrays"].items()}
        return ItemIndex.from_arrays(spec["__itemindex__"], arrays)
    if "__dict__" in spec:
        return {k: decode_value(v, r) for k, v in spec["__dict__"].items()}
    raise ArtifactError(f"unrecognised entry in the artifact state: keys {sorted(spec)[:5]}")


# -- files ---------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_model(model: Recommender, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to the directory ``path`` atomically.

    Everything is written to a temporary sibling directory, flushed to disk,
    and renamed into place; an existing artifact at ``path`` is replaced only
    once the new one is complete.

    Returns
    -------
    pathlib.Path
        The artifact directory.
    """
    model._check_fitted()
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        w = _Writer(tmp)
        state = encode_state(model, w)
        with open(tmp / _STATE, "w", encoding="utf-8") as f:
            json.dump(state, f)
        files: dict[str, dict[str, Any]] = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                with open(p, "rb+") as f:
                    os.fsync(f.fileno())
                files[p.relative_to(tmp).as_posix()] = {"sha256": _sha256(p), "size": p.stat().st_size}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": model.get_config(),
            "files": files,
        }
        with open(tmp / _MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp / "arrays")
        _fsync_dir(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "artifact")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an artifact, checked for format and version (files are not hashed here)."""
    root = Path(path)
    mpath = root / _MANIFEST
    if not root.is_dir():
        raise ArtifactError(f"{root} is not a model artifact directory")
    if not mpath.is_file():
        raise ArtifactError(f"{root} is not a recsys model artifact: {_MANIFEST} is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{mpath} is not valid JSON ({e}); the artifact is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{root} is not a recsys model artifact (format {manifest.get('format')!r})"
                            if isinstance(manifest, dict) else f"{mpath} is not a recsys manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{root} has artifact format version {version!r}; this recsys ({__version__}) reads version {FORMAT_VERSION}"
        )
    for key in ("model", "files"):
        if not isinstance(manifest.get(key), dict):
            raise ArtifactError(f"{mpath} has no valid {key!r} entry; the artifact is damaged")
    return manifest


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    """Every listed file exists with its size and SHA-256; no unlisted file is present."""
    files = manifest["files"]
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {_MANIFEST}
    extra = sorted(present - set(files))
    if extra:
        raise ArtifactError(f"artifact {root} holds files its manifest does not list: {extra[:5]}")
    for rel, meta in files.items():
        p = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ArtifactError(f"artifact manifest lists an unsafe path {rel!r}")
        if not p.is_file():
            raise ArtifactError(f"artifact {root} is missing {rel}")
        if p.stat().st_size != meta.get("size"):
            raise ArtifactError(
                f"artifact file {rel} has {p.stat().st_size} bytes; the manifest says {meta.get('size')} (truncated or modified)"
            )
        if _sha256(p) != meta.get("sha256"):
            raise ArtifactError(f"artifact file {rel} does not match its SHA-256 in the manifest (modified or corrupted)")


def load_model(path: str | os.PathLike[str], *, mmap: bool = True, verify: bool = True) -> Recommender:
    """Load a model saved with :meth:`Recommender.save`.

    Parameters
    ----------
    path : path-like
        The artifact directory.
    mmap : bool, default True
        Memory-map the arrays (fast start-up, shared pages between workers).
    verify : bool, default True
        Check every file's SHA-256 and size before reading it.

    Raises
    ------
    ArtifactError
        Missing, truncated, modified, unlisted or foreign files, an unknown
        model class, or an unsupported format version.

    Examples
    --------
    >>> import tempfile
    >>> from recsys.models import Popular
    >>> from recsys.testing import tiny_interactions
    >>> m = Popular().fit(tiny_interactions())
    >>> p = m.save(tempfile.mkdtemp() + "/pop")
    >>> load_model(p).recommend_one(0, k=2)[0].tolist() == m.recommend_one(0, k=2)[0].tolist()
    True
    """
    from recsys.models.base import Recommender

    import recsys.models  # noqa: F401  (registers the built-in model classes)

    root = Path(path)
    manifest = read_manifest(root)
    if verify:
        verify_files(root, manifest)
    reader = _Reader(root, manifest["files"], mmap)
    try:
        state_spec = json.loads((root / _STATE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ArtifactError(f"cannot read {_STATE} of {root}: {e}") from None
    try:
        model = Recommender.from_config(manifest["model"])
    except ParameterError as e:
        raise ArtifactError(f"artifact {root} names a model this recsys cannot build: {e}") from None
    model._restore_state({k: decode_value(v, reader) for k, v in state_spec.items()})
    return model
