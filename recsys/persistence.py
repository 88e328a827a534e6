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

Saving never deletes what it did not write: :func:`save_model` writes into a
missing path or an empty directory, or replaces a recsys artifact (a directory
holding a recsys ``manifest.json`` and only the files it lists); a file, a
link, a served model root or any other directory is refused
(:func:`check_save_target`). The new artifact is built in a hidden sibling
``.<name>.recsys-tmp-<pid>-<random>`` and swapped in whole with
``renameat2(RENAME_EXCHANGE)``; a reader (:class:`ArtifactDir`) opens the
directory once and every file in it before reading any, so it sees the old
model or the new one, never a mix. A killed save leaves the old artifact in
place, and its temporary directory is removed by the next save to that path.

Nested models and item indexes are stored by the codecs their classes
register (:class:`recsys._utils.registry.StateCodec`), so this module imports
no model and no index; a load imports the recsys module behind a codec on
first use. Loading resolves the class only among registered :class:`Recommender`
subclasses (never by importing a module named in the file), checks the format
version and every file's hash and size, and refuses files the manifest does
not list. It trusts nothing a tamperer could rewrite along with the hashes:
the manifest and state are checked for structure (types, keys, nesting,
finite numbers), paths must be ``state.json`` or ``arrays/<name>.npy`` and are
checked with ``lstat`` (no link or special file is ever followed, with or
without ``verify``), every array must be a plain numeric ``.npy``, sparse
matrices must have in-range indices and a monotone ``indptr``, and the whole
state must match the structure its model class declares in ``_state_spec``
(see :mod:`recsys._state_spec`) before the model uses any of it. Every fault
raises :class:`~recsys.errors.ArtifactError` naming the file and the field.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._state_spec import INDEX_DTYPES, check_offsets
from recsys._utils.fs import fsync_dir as _fsync_dir
from recsys._utils.registry import StateCodec, codec_for, codec_for_tag, codec_tags
from recsys._version import __version__
from recsys.data import IdMap
from recsys.errors import ArtifactError, DataError

if TYPE_CHECKING:  # annotations only: at run time models are reached through their codec
    from recsys.models.base import Recommender

FORMAT = "recsys-model"
FORMAT_VERSION = 1
_MODEL = "__model__"  # the codec tag of models (the top-level one and nested ones)
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


def _decode_ids(spec: dict[str, Any], r: _Reader, field: str) -> NDArray[Any]:
    keys = {"__idmap__", "kind", "ids"} if spec.get("kind") == "int" else {"__idmap__", "kind", "bytes", "offsets", "is_int"}
    if spec.get("kind") not in ("int", "str") or not set(spec) <= keys or not set(spec) >= keys - {"is_int"}:
        raise r.bad(field, f"is not a valid id map (keys {sorted(spec)[:6]}, kind {spec.get('kind')!r:.40})")
    if spec["kind"] == "int":
        ids = r.array(spec["ids"], field)
        _check_array(r, field, spec["ids"], ids, ("int64",), 1)
        return np.asarray(ids, dtype=np.int64)
    blob_arr = r.array(spec["bytes"], field)
    off = r.array(spec["offsets"], field)
    _check_array(r, field, spec["bytes"], blob_arr, ("uint8",), 1)
    _check_array(r, field, spec["offsets"], off, ("int64",), 1)
    check_offsets(off, len(blob_arr), lambda msg: r.bad(field, f"offsets ({spec['offsets']}) {msg}"))
    blob = bytes(np.asarray(blob_arr))
    try:
        out = np.array([blob[off[i] : off[i + 1]].decode("utf-8") for i in range(len(off) - 1)], dtype=object)
    except UnicodeDecodeError:
        raise r.bad(field, f"holds ids that are not UTF-8 ({spec['bytes']})") from None
    if "is_int" in spec:
        flags_arr = r.array(spec["is_int"], field)
        _check_array(r, field, spec["is_int"], flags_arr, ("uint8",), 1)
        flags = np.asarray(flags_arr)
        if flags.shape != out.shape or bool((flags > 1).any()):
            raise r.bad(field, f"id flags ({spec['is_int']}) must be {len(out)} values of 0 or 1")
        flags = flags.astype(bool)
        as_int = []
        for x in out[flags]:
            # exactly the text str(int) writes, so a parsed id prints back as itself
            if not _INT_TEXT.fullmatch(x) or len(x) > 40:
                raise r.bad(field, f"id {x!r:.50} is flagged as an integer but is not one")
            as_int.append(int(x))
        out[flags] = as_int
    return out


def encode_value(value: Any, w: _Writer, hint: str) -> Any:
    """A JSON description of ``value``, writing its arrays through ``w``."""
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
    codec = codec_for(value)
    if codec is not None:
        return {codec.tag: codec.config(value), codec.payload: _encode_parts(codec, value, w, hint)}
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


def _encode_parts(codec: StateCodec, value: Any, w: _Writer, hint: str) -> dict[str, Any]:
    parts = codec.parts(value)
    if codec.payload == "state":
        return {name: encode_value(v, w, f"{hint}.{name}") for name, v in parts.items()}
    return {k: w.array(np.asarray(a), f"{hint}_{k}") for k, a in parts.items()}


def encode_state(model: Recommender, w: _Writer, prefix: str = "") -> dict[str, Any]:
    return {name: encode_value(v, w, prefix + name) for name, v in codec_for_tag(_MODEL).parts(model).items()}


class _Reader:
    """Reads the arrays the state names: only listed ``arrays/*.npy`` regular files of the open
    artifact directory, never through a link."""

    def __init__(self, adir: ArtifactDir, files: dict[str, Any], mmap: bool) -> None:
        self.adir = adir
        self.root = adir.path
        self.files = files
        self.mmap = mmap

    def bad(self, field: str, msg: str) -> ArtifactError:
        return ArtifactError(f"{self.root / _STATE}: field {field!r} {msg}")

    def array(self, rel: Any, field: str) -> NDArray[Any]:
        if not isinstance(rel, str):
            raise self.bad(field, f"names a file as {rel!r:.60}; expected a path string")
        if rel not in self.files:
            raise self.bad(field, f"refers to {rel!r:.200}, which the manifest does not list")
        if not _safe_rel(rel):
            raise self.bad(field, f"names an unsafe path {rel!r:.200}; expected arrays/<name>.npy")
        try:
            arr = self.adir.load_array(rel, self.mmap)
        except ArtifactError as e:
            raise ArtifactError(f"{e} (field {field!r})") from None
        except Exception as e:  # numpy raises ValueError, OSError, EOFError... on damaged files
            raise ArtifactError(f"cannot read {rel!r} of the artifact {self.root} (field {field!r}): {str(e)[:200]}") from None
        if not isinstance(arr, np.ndarray):  # an .npz archive (or anything np.load reads that is not one array)
            if hasattr(arr, "close"):
                arr.close()
            raise ArtifactError(f"cannot read {rel!r} of the artifact {self.root} (field {field!r}): not a single .npy array")
        # exactly header + data: a header whose length field was altered shifts the data onto padding bytes
        # (numpy reads them as values), which would otherwise leave bytes over at the end
        try:
            with self.adir.open(rel) as f:
                major, _ = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                read_header(f)
                offset = f.tell()
        except Exception as e:  # numpy read it a moment ago; anything now is a damaged file
            raise ArtifactError(f"cannot read {rel!r} of the artifact {self.root} (field {field!r}): {str(e)[:200]}") from None
        size = self.adir.size(rel)
        if size != offset + arr.nbytes:
            raise ArtifactError(
                f"{rel} of the artifact {self.root} (field {field!r}) has {size} bytes; "
                f"its header says {offset + arr.nbytes} ({offset} of header, {arr.nbytes} of data)"
            )
        if arr.dtype.kind not in "biuf" or arr.dtype.fields is not None or arr.dtype.subdtype is not None:
            raise ArtifactError(
                f"{rel} of the artifact {self.root} (field {field!r}) has dtype {arr.dtype.str}; "
                "artifact arrays hold booleans or numbers only"
            )
        return arr  # type: ignore[no-any-return]


_INT_TEXT = re.compile(r"-?[0-9]+")
_MAX_DEPTH = 32  # nesting of the state description (models in models, dicts in dicts)
_MARKER_KEYS = {
    "__float__": {"__float__"},
    "__ndarray__": {"__ndarray__"},
    "__sparse__": {"__sparse__", "shape", "data", "indices", "indptr"},
    "__dict__": {"__dict__"},
}


def _check_array(r: _Reader, field: str, rel: str, arr: NDArray[Any], dtypes: tuple[str, ...], ndim: int) -> None:
    if arr.dtype.name not in dtypes or not arr.dtype.isnative or arr.ndim != ndim:
        raise r.bad(field, f"has {rel} of dtype {arr.dtype.str} and {arr.ndim} dimensions; expected {'/'.join(dtypes)}, {ndim}-D")


def _decode_sparse(spec: dict[str, Any], r: _Reader, field: str) -> Any:
    """A CSR/CSC matrix, its structure checked first: scipy trusts indices and indptr, so bad ones read out of bounds."""
    fmt, shape = spec["__sparse__"], spec["shape"]
    if fmt not in ("csr", "csc"):
        raise r.bad(field, f"has sparse format {fmt!r:.40}; expected 'csr' or 'csc'")
    if (
        not isinstance(shape, list) or len(shape) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in shape)
    ):
        raise r.bad(field, f"has sparse shape {shape!r:.60}; expected two integers in [0, 2**31)")
    data, indices, indptr = (r.array(spec[p], field) for p in ("data", "indices", "indptr"))
    _check_array(r, field, spec["data"], data, ("float32", "float64", "int32", "int64", "bool"), 1)
    _check_array(r, field, spec["indices"], indices, INDEX_DTYPES, 1)
    _check_array(r, field, spec["indptr"], indptr, INDEX_DTYPES, 1)
    major, minor = (shape[0], shape[1]) if fmt == "csr" else (shape[1], shape[0])
    if len(indptr) != major + 1:
        raise r.bad(field, f"has {len(indptr)} indptr entries ({spec['indptr']}); expected {major + 1} for shape {tuple(shape)}")
    if len(indices) != len(data):
        raise r.bad(field, f"has {len(indices)} indices ({spec['indices']}) and {len(data)} data values ({spec['data']}); expected equal")
    check_offsets(indptr, len(indices), lambda msg: r.bad(field, f"indptr ({spec['indptr']}) {msg}"))
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= minor):
        raise r.bad(field, f"has indices ({spec['indices']}) outside [0, {minor}) (out of range for shape {tuple(shape)})")
    cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    return cls((np.asarray(data), np.asarray(indices), np.asarray(indptr)), shape=tuple(shape))


def decode_value(spec: Any, r: _Reader, field: str = "state", depth: int = 0) -> Any:
    """The value a state description stands for; every array and nested model checked before it is returned."""

    if depth > _MAX_DEPTH:
        raise r.bad(field, f"is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(spec, list):
        return [decode_value(v, r, f"{field}.{i}", depth + 1) for i, v in enumerate(spec)]
    if isinstance(spec, float) and not math.isfinite(spec):
        raise r.bad(field, f"is {spec!r}; plain numbers must be finite")
    if spec is None or isinstance(spec, (bool, int, float, str)):
        return spec
    if not isinstance(spec, dict):
        raise r.bad(field, f"is a {type(spec).__name__}; expected a JSON value")
    markers = [k for k in (*_MARKER_KEYS, *codec_tags()) if k in spec]
    if len(markers) != 1 or set(spec) != _marker_keys(markers[0]):
        if "__idmap__" in spec:
            if not isinstance(spec["__idmap__"], str):
                raise r.bad(field, f"has id map name {spec['__idmap__']!r:.40}; expected a string")
            try:
                return IdMap(_decode_ids(spec, r, field), name=spec["__idmap__"])
            except DataError as e:  # duplicate or null ids
                raise r.bad(field, f"is not a valid id map: {e}") from None
        raise r.bad(field, f"is not a valid state entry (keys {sorted(map(str, spec))[:6]})")
    kind = markers[0]
    if kind == "__float__":
        if spec["__float__"] not in ("nan", "inf", "-inf"):
            raise r.bad(field, f"has __float__ {spec['__float__']!r:.40}; expected 'nan', 'inf' or '-inf'")
        return float(spec["__float__"])
    if kind == "__ndarray__":
        return r.array(spec["__ndarray__"], field)
    if kind == "__sparse__":
        return _decode_sparse(spec, r, field)
    if kind not in _MARKER_KEYS:
        return _decode_object(codec_for_tag(kind), spec, r, field, depth)
    if not isinstance(spec["__dict__"], dict):
        raise r.bad(field, "has a __dict__ entry that is not a dict")
    return {k: decode_value(v, r, f"{field}.{k}", depth + 1) for k, v in spec["__dict__"].items()}


def _marker_keys(marker: str) -> set[str]:
    """The keys a description marked ``marker`` has (a codec's tag and payload, imported on first use)."""
    if marker in _MARKER_KEYS:
        return _MARKER_KEYS[marker]
    return {marker, codec_for_tag(marker).payload}


def _decode_object(codec: StateCodec, spec: dict[str, Any], r: _Reader, field: str, depth: int) -> Any:
    """A nested object stored by ``codec``: built from its config, then given its parts."""
    config, parts = spec[codec.tag], spec[codec.payload]
    if codec.payload == "arrays":
        if not isinstance(parts, dict) or not isinstance(config, dict):
            raise r.bad(field, f"has {codec.what} without config and arrays dicts")
        arrays = {k: np.asarray(r.array(v, f"{field}.{k}")) for k, v in parts.items()}
        try:
            return codec.build(config, arrays)
        except ArtifactError as e:
            raise r.bad(field, str(e)) from None
    if not isinstance(parts, dict):
        raise r.bad(field, f"has {codec.what} without a state dict")
    try:
        sub = codec.build(config, None)
    except Exception as e:  # a config is arbitrary JSON: any failure to build from it is a damaged artifact
        raise r.bad(field, f"names {codec.what} this recsys cannot build: {e}") from None
    state = {k: decode_value(v, r, f"{field}.{k}", depth + 1) for k, v in parts.items()}
    _restore(sub, state, r, field + ".", parts)
    return sub


def _files_of(spec: Any) -> list[str]:
    """The array files a state description names (for messages)."""
    if isinstance(spec, str):
        return [spec] if spec.startswith("arrays/") else []
    if isinstance(spec, list):
        return [f for v in spec for f in _files_of(v)]
    if isinstance(spec, dict):
        return [f for v in spec.values() for f in _files_of(v)]
    return []


def _restore(model: Recommender, state: dict[str, Any], r: _Reader, prefix: str, raw: dict[str, Any] | None = None) -> None:
    """Check ``state`` against the model's declared structure, then hand it to the model."""

    def where(name: str) -> str:
        files = _files_of((raw or {}).get(name.split(".")[0].split("[")[0]))
        return f"{r.root / _STATE} ({', '.join(files[:4])})" if files else str(r.root / _STATE)

    try:
        model._check_loaded_state(state, where)
    except ArtifactError as e:
        if prefix:
            raise ArtifactError(str(e).replace("field '", f"field '{prefix}", 1)) from None
        raise
    try:
        model._restore_state(state)
    except ArtifactError:
        raise
    except Exception as e:  # last line of defence: a model's own checks on the restored state
        raise ArtifactError(f"{r.root / _STATE}: the state of {prefix or 'the model'} is inconsistent: {type(e).__name__}: {str(e)[:200]}") from None


# -- reading one artifact directory, pinned ------------------------------------

_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_PINNED = os.open in os.supports_dir_fd and os.scandir in os.supports_fd


class ArtifactDir:
    """An artifact directory opened once; every file is read relative to that open directory.

    A save that replaces the artifact while it is being read (see
    :func:`save_model`) swaps a whole directory in at the path, so a reader
    holding the old directory keeps reading the old files (or finds them
    deleted and retries; see :meth:`replaced`) and never mixes old and new.
    Paths are walked one component at a time without following symbolic
    links, and only regular files are opened.

    Parameters
    ----------
    path : path-like
        The artifact directory (a link to it is followed once, here).

    Examples
    --------
    >>> import tempfile
    >>> from recsys.models import Popular
    >>> from recsys.testing import tiny_interactions
    >>> p = Popular().fit(tiny_interactions()).save(tempfile.mkdtemp() + "/pop")
    >>> with ArtifactDir(p) as d:
    ...     sorted(d.files())[-2:], d.replaced()
    (['manifest.json', 'state.json'], False)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.fd: int | None = os.open(self.path, _O_DIR) if _PINNED else None
        self._id = self._identity()
        self._held: dict[str, int] | None = None

    def hold_all(self) -> ArtifactDir:
        """Open every file now and read through these descriptors from then on.

        Files a later save deletes stay readable through open descriptors, so
        a load is exposed to a concurrent replacement only while this runs
        (microseconds), not for the whole load.
        """
        if self._held is None:
            names = self.files()
            held: dict[str, int] = {}
            try:
                for rel in names:
                    held[rel] = self._open_fd(rel)
            except BaseException:
                for fd in held.values():
                    os.close(fd)
                raise
            self._held = held
        return self

    def _identity(self) -> tuple[int, int]:
        st = os.fstat(self.fd) if self.fd is not None else os.stat(self.path)
        return st.st_dev, st.st_ino

    def close(self) -> None:
        for fd in (self._held or {}).values():
            os.close(fd)
        self._held = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> ArtifactDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def replaced(self) -> bool:
        """True when ``path`` no longer names the directory that was opened (a save replaced it)."""
        if self.fd is not None and os.fstat(self.fd).st_nlink == 0:
            return True  # deleted (its inode number may already name the new directory)
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._id

    @staticmethod
    def _parts(rel: str) -> list[str]:
        parts = rel.split("/") if isinstance(rel, str) else []
        if not parts or any(p in ("", ".", "..") for p in parts):
            raise ArtifactError(f"artifact path {rel!r} is not a plain relative path inside the artifact")
        return parts

    def _open_fd(self, rel: str) -> int:
        """A file descriptor of the regular file ``rel``; no link is followed on the way."""
        parts = self._parts(rel)
        if self._held is not None:
            if rel not in self._held:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), rel)
            fd = os.dup(self._held[rel])  # shares the offset: start every read at 0 (one load = one thread)
            os.lseek(fd, 0, os.SEEK_SET)
            return fd
        if self.fd is None:
            p = self.path.joinpath(*parts)
            for i in range(1, len(parts) + 1):
                if os.path.islink(self.path.joinpath(*parts[:i])):
                    raise ArtifactError(f"artifact {self.path} holds a symbolic link at {'/'.join(parts[:i])}; links are never followed")
            fd = os.open(p, os.O_RDONLY | _O_NOFOLLOW)
        else:
            d = self.fd
            try:
                for part in parts[:-1]:
                    d2 = os.open(part, _O_DIR | _O_NOFOLLOW, dir_fd=d)
                    if d != self.fd:
                        os.close(d)
                    d = d2
                fd = os.open(parts[-1], os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=d)
            except OSError as e:
                # O_NOFOLLOW gives ELOOP for a link as the last component, ENOTDIR (with O_DIRECTORY) before it.
                if e.errno == errno.ELOOP or (e.errno == errno.ENOTDIR and e.filename is not None
                                              and stat.S_ISLNK(os.stat(e.filename, dir_fd=d, follow_symlinks=False).st_mode)):
                    raise ArtifactError(f"artifact {self.path} holds a symbolic link on the way to {rel}; links are never followed") from None
                raise
            finally:
                if d != self.fd:
                    os.close(d)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ArtifactError(f"artifact {self.path}: {rel} is not a regular file")
        return fd

    def open(self, rel: str) -> Any:
        """The regular file ``rel`` opened for binary reading."""
        return os.fdopen(self._open_fd(rel), "rb")

    def read_bytes(self, rel: str) -> bytes:
        with self.open(rel) as f:
            return f.read()  # type: ignore[no-any-return]

    def size(self, rel: str) -> int:
        fd = self._open_fd(rel)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def sha256(self, rel: str) -> str:
        h = hashlib.sha256()
        with self.open(rel) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def files(self) -> list[str]:
        """Relative paths of every regular file; a link or a special file raises :class:`ArtifactError`."""
        if self._held is not None:
            return list(self._held)
        out: list[str] = []

        def walk(dfd: int | str, prefix: str) -> None:
            with os.scandir(dfd) as it:  # type: ignore[type-var]
                entries = sorted(it, key=lambda e: e.name)
            for e in entries:
                rel = prefix + e.name
                if e.is_symlink():
                    raise ArtifactError(f"artifact {self.path} holds a symbolic link at {rel}; links are never followed")
                if e.is_dir(follow_symlinks=False):
                    if isinstance(dfd, int):
                        sub = os.open(e.name, _O_DIR | _O_NOFOLLOW, dir_fd=dfd)
                        try:
                            walk(sub, rel + "/")
                        finally:
                            os.close(sub)
                    else:
                        walk(os.path.join(dfd, e.name), rel + "/")
                elif e.is_file(follow_symlinks=False):
                    out.append(rel)
                else:
                    raise ArtifactError(f"artifact {self.path}: {rel} is not a regular file")

        walk(self.fd if self.fd is not None else str(self.path), "")
        return out

    def load_array(self, rel: str, mmap: bool) -> NDArray[Any]:
        """The ``.npy`` file ``rel`` (memory-mapped when ``mmap``), never unpickled."""
        with self.open(rel) as f:
            try:
                version = np.lib.format.read_magic(f)
                if mmap and version in ((1, 0), (2, 0)):
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, fortran, dtype = read(f)
                    if dtype.hasobject:
                        raise ValueError("object arrays cannot be loaded without pickle")
                    if int(np.prod(shape)) * dtype.itemsize > 0:
                        return np.memmap(f, dtype=dtype, mode="r", shape=shape, order="F" if fortran else "C", offset=f.tell())
                f.seek(0)
                return np.load(f, allow_pickle=False)  # type: ignore[no-any-return]
            except (ValueError, EOFError) as e:
                raise ArtifactError(f"cannot read {rel!r} of the artifact: not a single .npy array ({e})") from None


# -- files ---------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- where a save may write ----------------------------------------------------

# Temporary directories of a save are hidden siblings of the target named
# ``.<name>.recsys-tmp-<pid>-<random>``, so the next save to the same path can
# recognise (and remove) those of saves that were killed.
_TMP_TAG = ".recsys-tmp-"
_ARTIFACT_ENTRIES = frozenset({_MANIFEST, _STATE, "arrays"})


def _tmp_prefix(target: Path) -> str:
    return f".{target.name[:100]}{_TMP_TAG}"


def _is_recsys_manifest(path: Path) -> dict[str, Any] | None:
    """The parsed manifest at ``path`` when it is a regular file holding a recsys manifest, else None."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(manifest, dict) and manifest.get("format") == FORMAT and isinstance(manifest.get("files"), dict):
        return manifest
    return None


def _unlisted(target: Path, manifest: dict[str, Any]) -> list[str]:
    """Entries under ``target`` that a save did not write: not in the manifest, or not plain files/dirs."""
    listed = set(manifest["files"]) | {_MANIFEST}
    extra = [e for e in sorted(os.listdir(target)) if e not in _ARTIFACT_ENTRIES]
    for dirpath, dirnames, filenames in os.walk(target):
        rel_dir = Path(dirpath).relative_to(target)
        for name in dirnames + filenames:
            rel = (rel_dir / name).as_posix()
            st = os.lstat(Path(dirpath) / name)
            if stat.S_ISDIR(st.st_mode):
                if rel != "arrays":
                    extra.append(rel + "/")
            elif not stat.S_ISREG(st.st_mode) or rel not in listed:
                extra.append(rel)
    return sorted(set(extra))


def _describe(entries: list[str]) -> str:
    shown = ", ".join(entries[:5])
    return f"{shown}, ... ({len(entries)} entries)" if len(entries) > 5 else shown


def _served_root_hint(target: Path) -> str:
    return (
        f"to add a model version to the served model root {target.parent}, use "
        f"recsys.serving.publish(model, {str(target.parent)!r}) (it validates the version, then swaps '{target.name}')"
    )


def check_save_target(path: str | os.PathLike[str], *, overwrite: bool = True) -> str:
    """Whether :func:`save_model` may write to ``path``: ``"create"``, ``"replace"``, or an error.

    A save writes into a missing path or an empty directory, or replaces a
    recsys artifact (a directory holding a recsys ``manifest.json`` and only the
    files that manifest lists). Anything else at ``path`` (a file, a link, a
    directory holding other files, a served model root) is refused: a save never
    deletes what it did not write.

    Parameters
    ----------
    path : path-like
        Where the artifact would go.
    overwrite : bool, default True
        Allow replacing an existing recsys artifact. ``False`` refuses it too.
        No value lets a save replace anything that is not an artifact.

    Returns
    -------
    str
        ``"create"`` (nothing there, or an empty directory) or ``"replace"``
        (an existing artifact).

    Raises
    ------
    ArtifactError
        The path holds something a save must not delete; the message names the
        path and what is there.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_save_target(d / "model")
    'create'
    >>> _ = (d / "ratings.csv").write_text("user,item\\n1,2\\n")
    >>> check_save_target(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    recsys.errors.ArtifactError: refusing to save to .../: it is a directory holding files that are not a recsys model artifact (ratings.csv); ...
    """
    target = Path(path).absolute()
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return "create"
    except NotADirectoryError:
        raise ArtifactError(f"refusing to save to {target}: a parent of it is a file, not a directory") from None
    head = f"refusing to save to {target}{os.sep if stat.S_ISDIR(st.st_mode) else ''}"
    if stat.S_ISLNK(st.st_mode):
        if target.name == "current" and (target.parent / "versions").is_dir():
            raise ArtifactError(f"{head}: it is the 'current' link of a served model root; {_served_root_hint(target)}")
        raise ArtifactError(
            f"{head}: it is a symbolic link (to {os.readlink(target)!r}); a save replaces only a directory it wrote, "
            "so save to the link's target or to a new path"
        )
    if not stat.S_ISDIR(st.st_mode):
        kind = "a file" if stat.S_ISREG(st.st_mode) else "not a directory"
        raise ArtifactError(f"{head}: it is {kind} ({st.st_size:,} bytes), not a model artifact; choose a new path for the model")
    entries = sorted(os.listdir(target))
    if not entries:
        return "create"
    manifest = _is_recsys_manifest(target / _MANIFEST)
    if manifest is None:
        if "versions" in entries and os.path.lexists(target / "current"):
            raise ArtifactError(f"{head}: it is a served model root (versions/ and 'current'); {_served_root_hint(target / 'current')}")
        raise ArtifactError(
            f"{head}: it is a directory holding files that are not a recsys model artifact ({_describe(entries)}); "
            "a save only replaces a directory holding a recsys artifact, so choose a new or empty path"
        )
    extra = _unlisted(target, manifest)
    if extra:
        raise ArtifactError(
            f"{head}: it holds a recsys artifact plus entries its manifest does not list ({_describe(extra)}); "
            "a save never deletes what it did not write, so move them away or choose another path"
        )
    if not overwrite:
        raise ArtifactError(f"{head}: it already holds a recsys model artifact and overwrite=False")
    if target.parent.name == "versions" and os.path.lexists(target.parent.parent / "current"):
        raise ArtifactError(
            f"{head}: it is a published version of a served model root, and published versions are never replaced; "
            f"{_served_root_hint(target.parent.parent / 'current')}"
        )
    return "replace"


def _has_save_temporaries(target: Path) -> bool:
    """True when a save to ``target`` may be under way (its hidden temporary siblings exist)."""
    try:
        prefix = _tmp_prefix(target.absolute())
        return any(n.startswith(prefix) for n in os.listdir(target.absolute().parent))
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True


def _remove_leftovers(target: Path) -> None:
    """Remove temporary directories of killed saves to ``target`` (their pid is no longer running)."""
    prefix = _tmp_prefix(target)
    try:
        names = [n for n in os.listdir(target.parent) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        pid_text = name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue  # a save still running (this process's other threads, or another process)
        p = target.parent / name
        try:
            if not stat.S_ISDIR(os.lstat(p).st_mode):
                continue
            if name.endswith("-old") and not os.path.lexists(target):
                os.rename(p, target)  # killed between the fallback's two renames: put the old artifact back
                continue
        except OSError:
            continue
        shutil.rmtree(p, ignore_errors=True)


# renameat2(2) flags (linux/fs.h)
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_renameat2: Any = None


def _load_renameat2() -> Any:
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fn = libc.renameat2
                fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                fn.restype = ctypes.c_int
                _renameat2 = fn
            except (OSError, AttributeError):  # glibc < 2.28, musl without it
                pass
    return _renameat2


def _exchange(a: Path, b: Path) -> bool:
    """Swap the directory entries ``a`` and ``b`` in one step (Linux ``RENAME_EXCHANGE``); False when unsupported."""
    fn = _load_renameat2()
    if not fn:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):  # e.g. a filesystem without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, target: Path, overwrite: bool) -> None:
    """Put the complete artifact ``tmp`` at ``target``; the old artifact (if any) is deleted afterwards."""
    for _ in range(5):  # another save may create or replace ``target`` between the check and the rename
        mode = check_save_target(target, overwrite=overwrite)
        if mode == "create":
            try:
                os.rename(tmp, target)  # fails on anything but a missing path or an empty directory
                return
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise
                continue
        if _exchange(tmp, target):
            # ``tmp`` now holds what was at ``target``: delete it only if it is still what was checked.
            swapped_out = _is_recsys_manifest(tmp / _MANIFEST)
            if swapped_out is None or _unlisted(tmp, swapped_out):
                _exchange(tmp, target)  # swap back: never delete what a save did not write
                raise ArtifactError(f"refusing to save to {target}: it changed into something that is not an artifact during the save")
            shutil.rmtree(tmp, ignore_errors=True)
            return
        # Portable fallback (two renames): readers may find ``target`` missing for an instant.
        old = target.parent / f"{_tmp_prefix(target)}{os.getpid()}-{secrets.token_hex(4)}-old"
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    raise ArtifactError(f"could not save to {target}: other saves to the same path kept replacing it")


def save_model(model: Recommender, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write ``model`` to the directory ``path`` atomically.

    A save writes into a missing path or an empty directory, or replaces an
    existing recsys artifact; anything else at ``path`` is refused (see
    :func:`check_save_target`). Everything is written to a hidden temporary
    sibling directory (``.<name>.recsys-tmp-<pid>-...``), flushed to disk, and
    then swapped in with one ``renameat2(RENAME_EXCHANGE)`` on Linux, so a
    reader of ``path`` sees the old or the new artifact and never a mix or a
    gap (elsewhere two renames leave a brief gap). A save killed at any point
    leaves the old artifact in place; its temporary directory is removed by the
    next save to the same path. Directories and files get the permissions the
    process's umask allows.

    Parameters
    ----------
    model : Recommender
        A fitted model.
    path : path-like
        The artifact directory.
    overwrite : bool, default True
        Replace an existing recsys artifact at ``path``; ``False`` refuses to.
        Nothing but a recsys artifact is ever replaced, whatever this says.

    Returns
    -------
    pathlib.Path
        The artifact directory.

    Raises
    ------
    ArtifactError
        ``path`` holds something that is not a recsys artifact, or the model
        holds state that cannot be saved without pickle.

    Examples
    --------
    >>> import tempfile
    >>> from recsys.models import Popular
    >>> from recsys.testing import tiny_interactions
    >>> d = tempfile.mkdtemp()
    >>> p = save_model(Popular().fit(tiny_interactions()), d + "/pop")
    >>> p = save_model(Popular(half_life=5.0).fit(tiny_interactions()), d + "/pop")  # replaces the artifact
    >>> sorted(x.name for x in p.iterdir())
    ['arrays', 'manifest.json', 'state.json']
    """
    model._check_fitted()
    target = Path(path).absolute()
    check_save_target(target, overwrite=overwrite)  # refuse before any work
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    tmp = target.parent / f"{_tmp_prefix(target)}{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp)  # mode 0o777 minus the umask (mkdtemp would make it 0700)
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
            "model": codec_for_tag(_MODEL).config(model),
            "files": files,
        }
        with open(tmp / _MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp / "arrays")
        _fsync_dir(tmp)
        _swap_in(tmp, target, overwrite)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# -- loading -------------------------------------------------------------------

_MANIFEST_KEYS = {"format", "format_version", "library_version", "created", "model", "files"}
_SAFE_REL = re.compile(r"arrays/[A-Za-z0-9._-]{1,200}\.npy")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _safe_rel(rel: str) -> bool:
    """A path a save writes: ``state.json`` or ``arrays/<name>.npy`` (so never ``..``, absolute or nested)."""
    return rel == _STATE or (_SAFE_REL.fullmatch(rel) is not None and rel not in ("arrays/.npy", "arrays/..npy"))


def _json_file(adir: ArtifactDir, rel: str, what: str) -> Any:
    """Parsed JSON of the regular file ``rel``, refusing NaN/Infinity literals, numbers that overflow, and
    nesting that exhausts the parser. A missing file raises :class:`FileNotFoundError`."""

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    path = adir.path / rel
    raw = adir.read_bytes(rel)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise ArtifactError(f"{path} is not valid JSON ({type(e).__name__}: {str(e)[:200]}); the {what} is damaged") from None


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an artifact, checked for structure, format and version (files are not hashed here).

    Raises
    ------
    ArtifactError
        The directory or its manifest is missing, a link, not JSON, or not a
        recsys manifest of a supported version with well-formed entries.

    Examples
    --------
    >>> import tempfile
    >>> from recsys.models import Popular
    >>> from recsys.testing import tiny_interactions
    >>> p = Popular().fit(tiny_interactions()).save(tempfile.mkdtemp() + "/pop")
    >>> read_manifest(p)["model"]["class"]
    'recsys.models.popular.Popular'
    """
    root = Path(path)
    if not root.is_dir():  # the artifact directory itself may be a link (a served root's 'current')
        raise ArtifactError(f"{root} is not a model artifact directory")
    with ArtifactDir(root) as adir:
        return _read_manifest(adir)


def _read_manifest(adir: ArtifactDir) -> dict[str, Any]:
    root = adir.path
    mpath = root / _MANIFEST
    try:
        manifest = _json_file(adir, _MANIFEST, "artifact")
    except FileNotFoundError:
        raise ArtifactError(f"{root} is not a recsys model artifact: {_MANIFEST} is missing") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{mpath} is not a recsys manifest (a JSON {type(manifest).__name__}, expected an object)")
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{root} is not a recsys model artifact (format {manifest.get('format')!r:.80})")
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ArtifactError(
            f"{root} has artifact format version {version!r:.80}; this recsys ({__version__}) reads version {FORMAT_VERSION}"
        )
    unknown = sorted(set(manifest) - _MANIFEST_KEYS)
    if unknown:
        raise ArtifactError(f"{mpath} has unknown keys {unknown[:5]}; the artifact is damaged or foreign")
    for key in ("library_version", "created"):
        if key in manifest and not isinstance(manifest[key], str):
            raise ArtifactError(f"{mpath}: {key!r} must be a string; got {manifest[key]!r:.80}")
    model, files = manifest.get("model"), manifest.get("files")
    if not isinstance(model, dict) or not isinstance(model.get("class"), str) or not isinstance(model.get("params"), dict):
        raise ArtifactError(f"{mpath} has no valid 'model' entry (a class name and a params object); the artifact is damaged")
    if set(model) - {"class", "params"}:
        raise ArtifactError(f"{mpath}: 'model' has unknown keys {sorted(set(model) - {'class', 'params'})[:5]}")
    if not isinstance(files, dict) or _STATE not in files:
        raise ArtifactError(f"{mpath} has no valid 'files' entry listing {_STATE}; the artifact is damaged")
    for rel, meta in files.items():
        if not _safe_rel(rel):
            raise ArtifactError(f"artifact manifest lists an unsafe path {rel!r:.200}; expected state.json or arrays/<name>.npy")
        if (
            not isinstance(meta, dict) or set(meta) != {"sha256", "size"}
            or not isinstance(meta["sha256"], str) or not _SHA256.fullmatch(meta["sha256"])
            or type(meta["size"]) is not int or meta["size"] < 0
        ):
            raise ArtifactError(f"{mpath}: the entry of {rel} must be {{'sha256': 64 hex digits, 'size': bytes}}; got {meta!r:.120}")
    return manifest


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    """Every listed file exists with its size and SHA-256; no unlisted file, link or special file is present."""
    with ArtifactDir(root) as adir:
        _verify_files(adir, manifest)


def _verify_files(adir: ArtifactDir, manifest: dict[str, Any]) -> None:
    root = adir.path
    files = manifest["files"]
    present = set(adir.files()) - {_MANIFEST}  # walks without following links; refuses links and special files
    extra = sorted(present - set(files))
    if extra:
        raise ArtifactError(f"artifact {root} holds files its manifest does not list: {extra[:5]}")
    for rel, meta in files.items():
        if not _safe_rel(rel):
            raise ArtifactError(f"artifact manifest lists an unsafe path {rel!r:.200}; expected state.json or arrays/<name>.npy")
        if rel not in present:
            raise ArtifactError(f"artifact {root} is missing {rel}")
        size = adir.size(rel)
        if size != meta.get("size"):
            raise ArtifactError(
                f"artifact file {rel} has {size} bytes; the manifest says {meta.get('size')} (truncated or modified)"
            )
        if adir.sha256(rel) != meta.get("sha256"):
            raise ArtifactError(f"artifact file {rel} does not match its SHA-256 in the manifest (modified or corrupted)")


def load_model(path: str | os.PathLike[str], *, mmap: bool = True, verify: bool = True) -> Recommender:
    """Load a model saved with :meth:`Recommender.save`.

    Nothing in the directory is trusted: the manifest and state are checked
    for structure, every file for its hash (``verify``), and every array
    against the structure the model class declares (dtypes, shapes against
    the id maps, sparse index bounds, finite values) before the model uses
    it. Links inside the artifact are never followed, with or without
    ``verify``.

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
        Missing, truncated, modified, unlisted, linked or foreign files, an
        unknown model class, an unsupported format version, or a manifest,
        state or array that does not have the declared structure; the message
        names the file and the field.

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
    root = Path(path)
    # A save replaces the whole directory at ``path`` (rename-exchange); one load reads one open
    # directory, and if that directory was replaced and deleted under it, reads the new one.
    for attempt in range(_LOAD_ATTEMPTS):
        try:
            adir = ArtifactDir(root)
        except (FileNotFoundError, NotADirectoryError) as e:
            # Missing for an instant only where saves fall back to two renames (no RENAME_EXCHANGE).
            if isinstance(e, FileNotFoundError) and attempt + 1 < _LOAD_ATTEMPTS and _has_save_temporaries(root):
                time.sleep(0.001 * 2**attempt)
                continue
            raise ArtifactError(f"{root} is not a model artifact directory") from None
        with adir:
            try:
                return _load_from(adir.hold_all(), mmap=mmap, verify=verify)
            except (ArtifactError, OSError):
                if attempt + 1 < _LOAD_ATTEMPTS and adir.replaced():
                    continue
                raise
    raise AssertionError("unreachable")  # pragma: no cover


_LOAD_ATTEMPTS = 5


def _load_from(adir: ArtifactDir, *, mmap: bool, verify: bool) -> Recommender:

    root = adir.path
    manifest = _read_manifest(adir)
    if verify:
        _verify_files(adir, manifest)
    try:
        return _load(adir, manifest, mmap)
    except (ArtifactError, OSError):
        raise  # OSError: the directory may have been replaced under the load (load_model retries)
    except RecursionError:
        raise ArtifactError(f"{root / _STATE} is nested too deeply; the artifact is damaged") from None
    except Exception as e:  # last line of defence: the checks above should have named the fault
        raise ArtifactError(f"cannot load the artifact {root} ({_STATE}): {type(e).__name__}: {str(e)[:200]}") from None


def _load(adir: ArtifactDir, manifest: dict[str, Any], mmap: bool) -> Recommender:
    codec = codec_for_tag(_MODEL)  # imports the built-in models on first use
    root = adir.path
    reader = _Reader(adir, manifest["files"], mmap)
    try:
        state_spec = _json_file(adir, _STATE, "artifact state")
    except FileNotFoundError:
        raise ArtifactError(f"artifact {root} is missing {_STATE}") from None
    if not isinstance(state_spec, dict):
        raise ArtifactError(f"{root / _STATE} must hold a JSON object of attributes; got a {type(state_spec).__name__}")
    try:
        model = codec.build(manifest["model"], None)
    except Exception as e:  # a config is arbitrary JSON: any failure to build from it is a damaged artifact
        raise ArtifactError(f"artifact {root} names a model this recsys cannot build: {e} (in {_MANIFEST} 'model')") from None
    state = {k: decode_value(v, reader, k) for k, v in state_spec.items()}
    _restore(model, state, reader, "", state_spec)
    return model  # type: ignore[no-any-return]
