"""A worker's model: loading one version (verified, warmed up) and hot reload when the model root changes.

Every worker process owns a :class:`ModelStore` that polls the link target and
the manifest (``readlink`` + ``stat`` per poll; the manifest is hashed only when
they change), loads a new version completely (memory-mapped, every file's
SHA-256 checked) and warms it up BEFORE swapping one reference. Requests take
that reference once, so requests in flight finish on the old model. A version
that fails to load or to answer is rejected, logged and reported by
:attr:`ModelStore.last_error`; the old model keeps serving, and the rejected
version is not retried until the link or manifest changes again.

The model root's layout (``versions/``, the ``current`` link) and :func:`publish`
are in :mod:`recsys.serving._layout`; they are importable from here as well.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys._utils.params import check_float
from recsys.errors import ArtifactError, NotSupportedError, RecsysError
from recsys.serving._ids import IdParser, int64_text
from recsys.serving._layout import (
    CURRENT,
    MANIFEST,
    VERSIONS,
    activate,
    current_version,
    is_artifact,
    publish,
    resolve_artifact,
)

if TYPE_CHECKING:
    from recsys.models.base import Recommender

logger = logging.getLogger("recsys.serving")


# -- loading one version ---------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    """One loaded, verified and warmed-up model version; immutable, swapped as a whole."""

    model: Recommender
    version: str
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    loaded_at: float
    load_seconds: float
    supports_history: bool
    supports_similar: bool
    users: IdParser = field(init=False, repr=False, compare=False)
    items: IdParser = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", IdParser(self.model.users_))
        object.__setattr__(self, "items", IdParser(self.model.items_))

    def unknown_message(self, what: str, *given: Any) -> str:
        """Why ids from a request are unknown, with the model's id type when that explains it."""
        parser = self.users if what == "user" else self.items
        shown = ", ".join(repr(g) for g in given[:5])
        head = f"{what} {shown} is" if len(given) == 1 else f"{len(given)} {what}s ({shown}{', ...' if len(given) > 5 else ''}) are"
        hint = ""
        if parser.kind == "int" and any(isinstance(g, str) and int64_text(g) is None for g in given):
            hint = f" ({what} ids of this model are integers)"
        return f"{head} not in the training data{hint}"

    def metadata(self) -> dict[str, Any]:
        m = self.model
        return {
            "class": type(m).__name__,
            "class_path": self.manifest["model"].get("class"),
            "params": self.manifest["model"].get("params", {}),
            "version": self.version,
            "path": str(self.path),
            "artifact_sha256": self.manifest_sha256,
            "created": self.manifest.get("created"),
            "library_version": self.manifest.get("library_version"),
            "format_version": self.manifest.get("format_version"),
            "loaded_at": _iso(self.loaded_at),
            "load_seconds": round(self.load_seconds, 6),
            "n_users": len(m.users_),
            "n_items": int(m.n_items_),
            "user_id_type": self.users.kind,
            "item_id_type": self.items.kind,
            "supports": {"history": self.supports_history, "similar_items": self.supports_similar},
        }


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat(timespec="milliseconds")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def load_version(path: str | os.PathLike[str]) -> LoadedModel:
    """Load the artifact at ``path`` (memory-mapped, every hash checked) and warm it up.

    Warming up answers one known user, one short history (the first three
    items) and one similar-items query, which tells whether the model
    supports the last two. Anything that
    fails (a tampered file, an unknown class, a model that raises) raises
    :class:`~recsys.errors.ArtifactError` naming the artifact.
    """
    from recsys.persistence import load_model, read_manifest

    path = Path(path)
    t0 = time.perf_counter()
    try:
        for _ in range(3):  # a plain artifact replaced by a save between these reads: read it again
            manifest = read_manifest(path)
            sha = _sha256_file(path / MANIFEST)
            model = load_model(path, mmap=True, verify=True)
            if _sha256_file(path / MANIFEST) == sha:
                break
    except ArtifactError:
        raise
    except (RecsysError, OSError, ValueError) as e:
        raise ArtifactError(f"cannot load the model artifact {path}: {e}") from None
    load_s = time.perf_counter() - t0
    history = similar = True
    try:
        if len(model.users_):
            model.recommend_one(model.users_.ids[0], k=10)
        if model.n_items_:
            first = model.items_.ids[:1]
            try:
                model.recommend_history(model.items_.ids[:3], k=10)  # a short history
            except NotSupportedError:
                history = False
            try:
                model.similar_items(first, k=10)
            except NotSupportedError:
                similar = False
    except Exception as e:  # a model that cannot answer is as broken as a bad file
        raise ArtifactError(f"the model in {path} loaded but fails to recommend: {type(e).__name__}: {e}") from None
    return LoadedModel(
        model=model,
        version=path.name,
        path=path,
        manifest=manifest,
        manifest_sha256=sha,
        loaded_at=time.time(),
        load_seconds=load_s,
        supports_history=history,
        supports_similar=similar,
    )


# -- the per-worker store ------------------------------------------------------------------


@dataclass
class _Seen:
    """What was last looked at: resolved target and the manifest's identity."""

    path: Path
    ino: int
    mtime_ns: int
    size: int


def _identity(source: Path) -> _Seen:
    target = resolve_artifact(source)
    st = os.stat(target / MANIFEST)
    return _Seen(target, st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass
class ReloadFailure:
    """The record of a version the store rejected: which one, where, why and when (not an exception).

    Kept in :attr:`ModelStore.last_error` while the previous model goes on serving.
    """

    version: str
    path: str
    error: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "path": self.path, "error": self.error, "at": _iso(self.at)}


@dataclass
class ModelStore:
    """The model one worker serves, reloaded when the model root's ``current`` version changes.

    Parameters
    ----------
    source : path
        A model root (``current`` link) or a plain artifact directory.
    poll_interval : float, default 1.0
        Seconds between checks by the watcher thread (:meth:`start`); 0 disables polling.

    Examples
    --------
    >>> import tempfile
    >>> from recsys.models import Popular
    >>> from recsys.testing import tiny_interactions
    >>> root = tempfile.mkdtemp()
    >>> _ = publish(Popular().fit(tiny_interactions()), root, version="v1")
    >>> store = ModelStore(root)
    >>> store.load_initial().version
    'v1'
    >>> _ = publish(Popular(half_life=5.0).fit(tiny_interactions()), root, version="v2")
    >>> store.check(), store.current.version
    (True, 'v2')
    """

    source: Path
    poll_interval: float = 1.0
    current: LoadedModel | None = None
    last_error: ReloadFailure | None = None
    reloads: int = 0
    _seen: _Seen | None = None
    _rejected: _Seen | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.source = Path(self.source)
        check_float("ModelStore", "poll_interval", self.poll_interval, low=0.0)

    def load_initial(self) -> LoadedModel:
        """Load the current version; raises :class:`~recsys.errors.ArtifactError` when it is broken."""
        with self._lock:
            seen = _identity(self.source)
            loaded = load_version(seen.path)
            self.current, self._seen = loaded, seen
            logger.info(
                "loaded model %s (%s) from %s in %.3f s", loaded.version, type(loaded.model).__name__, loaded.path, loaded.load_seconds
            )
            return loaded

    def check(self) -> bool:
        """Reload if the served version changed; True when a new model was swapped in.

        Never raises: a broken version is logged, recorded in :attr:`last_error`
        and skipped until it changes again; the current model stays.
        """
        with self._lock:  # one load at a time per worker
            try:
                seen = _identity(self.source)
            except (ArtifactError, OSError) as e:
                if self.last_error is None or self.last_error.error != str(e):  # report once, not every poll
                    self._reject(None, str(e))
                return False
            if seen == self._seen:  # back to (or still) what is served, e.g. a rollback: no error stands
                self._rejected = self.last_error = None
                return False
            if seen == self._rejected:
                return False
            if self.current is not None and self._seen is not None and seen.path == self._seen.path:
                try:  # same directory, touched manifest: reload only if the content changed
                    if _sha256_file(seen.path / MANIFEST) == self.current.manifest_sha256:
                        self._seen, self._rejected, self.last_error = seen, None, None
                        return False
                except OSError:
                    pass
            try:
                loaded = load_version(seen.path)
            except Exception as e:
                self._reject(seen, str(e))
                return False
            old = self.current
            self.current = loaded  # the swap: one reference assignment; requests hold their own
            self._seen, self._rejected, self.last_error = seen, None, None
            self.reloads += 1
            logger.info(
                "reloaded model: %s -> %s (%s) in %.3f s",
                old.version if old else None,
                loaded.version,
                type(loaded.model).__name__,
                loaded.load_seconds,
            )
            return True

    def _reject(self, seen: _Seen | None, message: str) -> None:
        self._rejected = seen
        path = str(seen.path) if seen else str(self.source)
        self.last_error = ReloadFailure(version=Path(path).name, path=path, error=message, at=time.time())
        logger.error(
            "rejected model version %s: %s; still serving %s",
            path,
            message,
            self.current.version if self.current else "nothing",
        )

    def request_check(self) -> None:
        """Wake the watcher thread for an immediate check (safe from a signal handler)."""
        self._wake.set()

    def _run(self) -> None:
        interval = self.poll_interval if self.poll_interval > 0 else None
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.check()
            except Exception:  # pragma: no cover - check() already catches; keep the watcher alive
                logger.exception("model watcher failed; it keeps running")

    def start(self) -> None:
        """Start the watcher thread (daemon) that calls :meth:`check` every ``poll_interval`` s."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="recsys-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


# CURRENT, VERSIONS, activate, current_version, is_artifact, publish, resolve_artifact: re-exported from
# recsys.serving._layout (they were defined here before the layout had its own module)
__all__ = [
    "CURRENT",
    "VERSIONS",
    "LoadedModel",
    "ModelStore",
    "ReloadFailure",
    "activate",
    "current_version",
    "is_artifact",
    "load_version",
    "publish",
    "resolve_artifact",
]



# Old public names that still resolve, with a DeprecationWarning (ReloadError read like an exception).
_RENAMED = {"ReloadError": "ReloadFailure"}


def _renamed(name: str, module: str, stacklevel: int) -> Any:
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(f"{module}.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)
        return globals()[new]
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    return _renamed(name, __name__, stacklevel=3)
