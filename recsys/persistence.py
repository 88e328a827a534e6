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

Loading resolves the class only among registered :class:`Recommender`
subclasses (never by importing a module named in the file), checks the format
version and every file's hash and size, and refuses files the manifest does
not list.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
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
    def __init__(self, root: ArtifactDir, files: dict[str, Any], mmap: bool) -> None:
        self.root = root
        self.files = files
        self.mmap = mmap

    def array(self, rel: str) -> NDArray[Any]:
        if rel not in self.files:
            raise ArtifactError(f"artifact state refers to {rel!r}, which the manifest does not list")
        return self.root.load_array(rel, self.mmap)


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
                    raise ArtifactError(f"artifact {self.path} holds a symbolic link at {'/'.join(parts[:i])}; links are not followed")
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
                    raise ArtifactError(f"artifact {self.path} holds a symbolic link on the way to {rel}; links are not followed") from None
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
                    raise ArtifactError(f"artifact {self.path} holds a symbolic link at {rel}; links are not followed")
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
                raise ArtifactError(f"cannot read {rel!r} of the artifact: {e}") from None


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
            "model": model.get_config(),
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


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an artifact, checked for format and version (files are not hashed here)."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"{root} is not a model artifact directory")
    with ArtifactDir(root) as adir:
        return _read_manifest(adir)


def _read_manifest(adir: ArtifactDir) -> dict[str, Any]:
    root = adir.path
    mpath = root / _MANIFEST
    try:
        raw = adir.read_bytes(_MANIFEST)
    except FileNotFoundError:
        raise ArtifactError(f"{root} is not a recsys model artifact: {_MANIFEST} is missing") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
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
    with ArtifactDir(root) as adir:
        _verify_files(adir, manifest)


def _verify_files(adir: ArtifactDir, manifest: dict[str, Any]) -> None:
    root = adir.path
    files = manifest["files"]
    present = set(adir.files()) - {_MANIFEST}
    extra = sorted(present - set(files))
    if extra:
        raise ArtifactError(f"artifact {root} holds files its manifest does not list: {extra[:5]}")
    for rel, meta in files.items():
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ArtifactError(f"artifact manifest lists an unsafe path {rel!r}")
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
    import recsys.models  # noqa: F401  (registers the built-in model classes)

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
    from recsys.models.base import Recommender

    root = adir.path
    manifest = _read_manifest(adir)
    if verify:
        _verify_files(adir, manifest)
    reader = _Reader(adir, manifest["files"], mmap)
    try:
        state_spec = json.loads(adir.read_bytes(_STATE).decode("utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"cannot read {_STATE} of {root}: {e}") from None
    try:
        model = Recommender.from_config(manifest["model"])
    except ParameterError as e:
        raise ArtifactError(f"artifact {root} names a model this recsys cannot build: {e}") from None
    model._restore_state({k: decode_value(v, reader) for k, v in state_spec.items()})
    return model
