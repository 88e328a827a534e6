"""The layout of a model root: versions side by side, a ``current`` link, and publishing a version atomically.

Layout of a model root (what ``recsys serve --model ROOT`` points at)::

    ROOT/
      current -> versions/20240501T120000.000000Z    relative symlink: the version to serve
      versions/
        20240430T090000.000000Z/                     one artifact per version (manifest.json,
        20240501T120000.000000Z/                     state.json, arrays/; see recsys.persistence)

:func:`publish` writes a new version with :func:`~recsys.persistence.save_model`
(a temporary directory renamed into place), proves it loads and answers the
way a worker would use it, then swaps ``current`` with ``rename(2)`` over a
temporary symlink, so a reader sees the old or the new target and never a
missing or half-written one. ``model.save(ROOT / "current")`` is refused:
``publish`` is the way to add a version. A plain artifact directory
(``manifest.json`` at its top) may be served too; it is reloaded when it is
replaced (``model.save`` over it swaps the whole directory in one step).
The workers' side, watching ``current`` and reloading, is :mod:`recsys.serving._store`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from recsys._utils.fs import fsync_dir
from recsys.errors import ArtifactError, ParameterError

if TYPE_CHECKING:
    from recsys.models.base import Recommender

CURRENT = "current"
VERSIONS = "versions"
MANIFEST = "manifest.json"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# -- reading the layout ----------------------------------------------------------------


def is_artifact(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is one model artifact (a directory with ``manifest.json``)."""
    return (Path(path) / MANIFEST).is_file()


def resolve_artifact(source: str | os.PathLike[str]) -> Path:
    """The artifact directory ``source`` serves now: ``source/current``'s target, or ``source`` itself.

    Raises
    ------
    ArtifactError
        ``source`` is neither a model root with a ``current`` link nor an artifact.
    """
    root = Path(source)
    link = root / CURRENT
    if os.path.lexists(link):
        try:
            return link.resolve(strict=True)
        except (OSError, RuntimeError) as e:
            raise ArtifactError(f"{link} cannot be resolved to a model version ({e})") from None
    if is_artifact(root):
        return root.absolute()
    if not root.exists():
        raise ArtifactError(f"model path {root} does not exist")
    raise ArtifactError(
        f"{root} is neither a model artifact (no {MANIFEST}) nor a model root (no '{CURRENT}' link to "
        f"'{VERSIONS}/<version>'); create one with recsys.serving.publish(model, {str(root)!r})"
    )


def current_version(root: str | os.PathLike[str]) -> str:
    """Name of the version ``root/current`` points at (the directory name for a plain artifact)."""
    return resolve_artifact(root).name


# -- writing it: versions and the `current` link ------------------------------------------------


def _new_version_name() -> str:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def _check_version_name(version: str) -> str:
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise ParameterError(
            "The 'version' parameter of publish must be 1-128 characters of letters, digits, '.', '_' or '-', "
            f"not starting with a dot or a dash. Got {version!r} instead."
        )
    return version


def activate(root: str | os.PathLike[str], version: str) -> Path:
    """Point ``root/current`` at the existing ``root/versions/<version>`` atomically (e.g. a rollback).

    Returns
    -------
    pathlib.Path
        The activated artifact directory.
    """
    root = Path(root)
    target = root / VERSIONS / _check_version_name(version)
    if not is_artifact(target):
        raise ArtifactError(f"{target} is not a model artifact; versions present: {_versions(root)[-10:]}")
    tmp = root / f".{CURRENT}.tmp-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    os.symlink(os.path.join(VERSIONS, version), tmp)
    try:
        os.replace(tmp, root / CURRENT)  # rename(2) over the old link: atomic for every reader
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(root)
    return target


def _versions(root: Path) -> list[str]:
    """Version names, oldest first (by the directory's modification time, then name)."""
    d = root / VERSIONS
    if not d.is_dir():
        return []
    dirs = [p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [p.name for p in sorted(dirs, key=lambda p: (p.stat().st_mtime_ns, p.name))]


def publish(
    model: Recommender | str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    version: str | None = None,
    keep: int | None = None,
) -> Path:
    """Add a model version under ``root`` and make it the one served, atomically.

    The artifact is written to ``root/versions/<version>`` (from a fitted model,
    or copied from an existing artifact directory), then proved to answer: it is
    loaded the way a worker loads it (:func:`load_version`: every hash checked,
    memory-mapped) and asked for a known user's recommendations and for a short
    history's. Only then is ``root/current`` swapped to it. A version that fails
    is deleted and refused with the reason; ``current`` is unchanged. Services
    watching ``root`` pick a published version up within their poll interval.

    Parameters
    ----------
    model : Recommender or path
        A fitted model, or an artifact directory saved earlier.
    root : path
        The model root (created when missing).
    version : str, optional
        Name of the new version; default a UTC timestamp (sorts by time).
        An existing version is never overwritten.
    keep : int, optional
        Keep at most this many versions (the most recently written, always
        including the new one); older version directories are deleted. Workers still
        serving a deleted version keep working (their arrays are mapped).

    Returns
    -------
    pathlib.Path
        The new version's artifact directory.

    Raises
    ------
    ArtifactError
        The version does not load or does not answer (the message names the
        version and the cause), or it already exists.

    Examples
    --------
    >>> import tempfile
    >>> from recsys.models import Popular
    >>> from recsys.testing import tiny_interactions
    >>> root = tempfile.mkdtemp()
    >>> path = publish(Popular().fit(tiny_interactions()), root, version="v1")
    >>> current_version(root)
    'v1'
    """
    # imported here: the store imports this module (for the layout), and models load only when publishing
    from recsys.models.base import Recommender
    from recsys.persistence import load_model, save_model
    from recsys.serving._store import load_version

    root = Path(root)
    if os.path.lexists(root) and not os.path.isdir(root):
        raise ArtifactError(f"cannot publish to {root}: it is not a directory")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ParameterError(f"The 'keep' parameter of publish must be None or an int >= 1. Got {keep!r} instead.")
    name = _check_version_name(version) if version is not None else _new_version_name()
    versions = root / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    target = versions / name
    if os.path.lexists(target):
        raise ArtifactError(f"version {name!r} already exists in {versions}; versions are never overwritten")
    if isinstance(model, Recommender):
        save_model(model, target)
    elif isinstance(model, (str, os.PathLike)):
        src = Path(model)
        load_model(src)  # refuse to copy a broken or foreign artifact
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=versions))
        try:
            shutil.copytree(src, tmp / "a")
            os.replace(tmp / "a", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        raise ParameterError(
            f"publish expects a fitted Recommender or an artifact directory; got {type(model).__name__}"
        )
    try:
        # Prove the version answers before it becomes `current`: load it as a worker does (every hash
        # checked, memory-mapped) and ask it for a known user's and a short history's recommendations.
        load_version(target)
    except Exception as e:
        shutil.rmtree(target, ignore_errors=True)  # a refused version is not left where `activate` could pick it
        try:
            still = f"'{CURRENT}' still points at {current_version(root)!r}"
        except ArtifactError:
            still = f"there is no '{CURRENT}' version yet"
        cause = str(e) if isinstance(e, ArtifactError) else f"{type(e).__name__}: {e}"
        raise ArtifactError(f"publish refused version {name!r} of {root}: {cause}; {still}") from e
    activate(root, name)
    if keep is not None:
        for old in _versions(root)[:-keep]:
            if old != name:
                shutil.rmtree(versions / old, ignore_errors=True)
    return target


__all__ = ["CURRENT", "MANIFEST", "VERSIONS", "activate", "current_version", "is_artifact", "publish", "resolve_artifact"]
