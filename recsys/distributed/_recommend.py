"""Top-k lists for every user, written as partitioned Parquet, locally or on Ray."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys._utils.fs import write_text_atomic
from recsys._utils.params import check_bool, check_int
from recsys.data import as_id_array
from recsys.distributed._engine import Engine, check_engine, import_ray, probe_address, ray_session, worker_error
from recsys.errors import ArtifactError, DataError, ParameterError

if TYPE_CHECKING:
    from recsys.models.base import Recommender

__all__ = ["MANIFEST", "PartitionedRecommendations", "recommend_all"]

#: The file that marks a directory as recommend_all output and records its run.
MANIFEST = "_recsys_recommendations.json"
FORMAT = "recsys-recommendations"
_PART = re.compile(r"part-(\d{5,})\.parquet")
# temporary files: a partition being written, or the manifest being replaced
_TMP = re.compile(r"\.part-\d{5,}\.parquet\.[0-9a-f]+\.tmp|\._recsys_recommendations\.json\.[^/]+\.tmp")
#: Users per partition when block_size is not given.
DEFAULT_BLOCK_SIZE = 50_000


def _part_name(block: int) -> str:
    return f"part-{block:05d}.parquet"


def _artifact_digest(artifact: Path) -> str:
    """SHA-256 of the artifact's manifest, which holds the hash of every other file: the model's identity."""
    try:
        return hashlib.sha256((artifact / "manifest.json").read_bytes()).hexdigest()
    except OSError as e:
        raise ArtifactError(f"{artifact} is not a readable recsys artifact (no manifest.json): {e}") from e


def _users_digest(users: NDArray[Any]) -> str:
    return hashlib.sha256(pd.util.hash_array(np.asarray(users, dtype=object)).tobytes()).hexdigest()


def write_partition(model: Recommender, users: NDArray[Any], path: Path, k: int, exclude_seen: bool) -> int:
    """Write one block's lists to ``path`` via a temporary name, so ``path`` exists only when complete."""
    frame = model.recommend(users, k=k, exclude_seen=exclude_seen)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(frame)


class PartitionedRecommendations:
    """A recommend_all output directory: its manifest and its partitions.

    Parameters
    ----------
    path : path-like
        The directory.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not self.path.is_dir():
            raise DataError(f"recommendations: {self.path} is not a directory")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"recommendations: {self.path} holds no recommend_all output ({MANIFEST} unreadable: {e})") from e
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            raise DataError(f"recommendations: {manifest} is not a recommend_all manifest")

    @property
    def n_blocks(self) -> int:
        return int(self.manifest["n_blocks"])

    def partition(self, block: int) -> Path:
        return self.path / _part_name(block)

    def missing(self) -> list[int]:
        """Blocks whose partition is not written yet."""
        return [b for b in range(self.n_blocks) if not self.partition(b).is_file()]

    def complete_partitions(self) -> list[Path]:
        """Every partition in block order; refuses an unfinished output."""
        missing = self.missing()
        if missing or not self.manifest.get("complete"):
            raise DataError(
                f"recommendations: {self.path} is an unfinished recommend_all output "
                f"({self.n_blocks - len(missing)} of {self.n_blocks} partitions written); run recommend_all "
                "again with the same arguments to finish it"
            )
        return [self.partition(b) for b in range(self.n_blocks)]

    def read(self) -> pd.DataFrame:
        """All partitions as one frame, in block order (same as ``recommend`` on all the users)."""
        return pd.concat([pd.read_parquet(p) for p in self.complete_partitions()], ignore_index=True)


def _check_out(out: Path, run: dict[str, Any]) -> bool:
    """Refuse an output directory holding anything but this run's partitions; True when resuming."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"The 'out' parameter of recommend_all must be a directory; {out} is a file.")
    if not out.exists():
        return False
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return False
    if MANIFEST not in entries:
        raise ParameterError(
            f"The 'out' parameter of recommend_all must be a new or empty directory or a previous recommend_all "
            f"output; {out} holds other files ({', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''})."
        )
    foreign = [e for e in entries if e != MANIFEST and not _PART.fullmatch(e) and not _TMP.fullmatch(e)]
    if foreign:
        raise ParameterError(
            f"The 'out' parameter of recommend_all: {out} holds files that recommend_all did not write "
            f"({', '.join(foreign[:5])}); remove them or choose another directory."
        )
    old = PartitionedRecommendations(out).manifest
    differ = [key for key in run if old.get(key) != run[key]]
    if differ:
        raise ParameterError(
            f"The 'out' parameter of recommend_all: {out} holds the output of a different run (it differs in "
            f"{', '.join(differ)}); remove it or choose another directory."
        )
    for e in entries:  # temporary files of an interrupted run
        if _TMP.fullmatch(e):
            (out / e).unlink(missing_ok=True)
    return True


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))


def recommend_all(
    artifact_dir: str | os.PathLike[str],
    users: Any = None,
    k: int = 10,
    *,
    out: str | os.PathLike[str],
    engine: Engine = "local",
    block_size: int | None = None,
    exclude_seen: bool = True,
    address: str | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> PartitionedRecommendations:
    """Top-``k`` lists of every (or the given) user of a saved model, as partitioned Parquet.

    Users are cut into blocks of ``block_size`` in the given order (default:
    the model's user order); block ``b`` is written to ``out/part-<b>.parquet``
    with the columns of :meth:`Recommender.recommend` (``user, item, score,
    rank``), and its rows are exactly ``recommend(block, k, exclude_seen=...)``.
    A partition is written under a temporary name and renamed, so it exists
    only when complete; rerunning with the same arguments skips the written
    ones (resume). ``out/_recsys_recommendations.json`` records the run
    (artifact hash, k, blocks) and says ``"complete": true`` once every
    partition is written.

    Parameters
    ----------
    artifact_dir : path-like
        A model saved with :meth:`Recommender.save`; on Ray it must be visible
        to every worker at the same path (a shared file system), as must ``out``.
    users : sequence of ids, optional
        External user ids (no repeats, all known to the model); default all.
    k : int, default 10
    out : path-like
        A missing or empty directory, or the output of an earlier run with the
        same arguments (resumed). Anything else is refused.
    engine : {"local", "ray"}
        ``"local"``: one process, block after block, with a progress bar.
        ``"ray"``: ``ray.data`` with actor workers, each loading the artifact
        once (memory-mapped); a failed worker's block is retried by Ray.
    block_size : int, optional
        Users per partition (default 50,000).
    exclude_seen : bool, default True
    address : str, optional
        Ray cluster address (``"auto"``, ``"host:port"``); default a local
        cluster, or the running Ray session.
    num_workers : int, optional
        Ray actors (default 2).
    progress : bool, default True

    Returns
    -------
    PartitionedRecommendations

    Raises
    ------
    UnknownIdError
        Some ``users`` are not known to the model.
    ParameterError
        ``out`` holds something else than this run's output.
    RayConnectionError
        The Ray address cannot be reached.

    Examples
    --------
    >>> import tempfile
    >>> from recsys.models import Popular
    >>> from recsys.testing import tiny_interactions
    >>> tmp = tempfile.mkdtemp()
    >>> _ = Popular().fit(tiny_interactions()).save(f"{tmp}/model")
    >>> recs = recommend_all(f"{tmp}/model", k=3, out=f"{tmp}/recs", block_size=8, progress=False)
    >>> recs.n_blocks, recs.read().columns.tolist()
    (3, ['user', 'item', 'score', 'rank'])
    """
    from recsys.persistence import load_model

    engine = check_engine("recommend_all", engine)
    k = check_int("recommend_all", "k", k, low=1)
    exclude_seen = bool(check_bool("recommend_all", "exclude_seen", exclude_seen))
    bs = DEFAULT_BLOCK_SIZE if block_size is None else check_int("recommend_all", "block_size", block_size, low=1)
    workers = 2 if num_workers is None else check_int("recommend_all", "num_workers", num_workers, low=1)
    if engine == "ray":  # before anything is written
        import_ray()
        probe_address(address)
    artifact = Path(artifact_dir).resolve()
    model = load_model(artifact, mmap=True)
    if users is None:
        query = np.asarray(model.users_.ids)
    else:
        query = as_id_array(users, "users")
        if len(query) == 0:
            raise DataError("users is empty; give at least one user id, or None for every user")
        if pd.Index(query).has_duplicates:
            dup = pd.Index(query)[pd.Index(query).duplicated()][0]
            raise DataError(f"users must not repeat; {dup!r} appears more than once")
        unknown = model.users_.to_index(query, missing="negative") < 0
        if unknown.any():
            raise model.users_.unknown_error(query[unknown])
    n_blocks = -(-len(query) // bs)
    run = {
        "format": FORMAT,
        "version": 1,
        "artifact_sha256": _artifact_digest(artifact),
        "users_sha256": _users_digest(query),
        "n_users": len(query),
        "k": k,
        "exclude_seen": exclude_seen,
        "block_size": bs,
        "n_blocks": n_blocks,
    }
    outp = Path(out)
    resumed = _check_out(outp, run)
    outp.mkdir(parents=True, exist_ok=True)
    if not resumed:
        _write_manifest(outp, {**run, "artifact": str(artifact), "complete": False})
    result = PartitionedRecommendations(outp)
    pending = result.missing()
    if engine == "local":
        from tqdm.auto import tqdm

        for b in tqdm(pending, desc="recommend_all", unit="block", disable=not progress):
            write_partition(model, query[b * bs : (b + 1) * bs], result.partition(b), k, exclude_seen)
    elif pending:
        _run_ray(artifact, outp, query, pending, k, exclude_seen, bs, address, workers, progress)
    for e in outp.iterdir():  # temporary files of a worker killed mid-write
        if _TMP.fullmatch(e.name):
            e.unlink(missing_ok=True)
    missing = result.missing()
    if missing:  # defensive: a worker reported success without its partition
        raise DataError(f"recommend_all: partitions {missing[:5]} of {outp} were not written")
    _write_manifest(outp, {**result.manifest, "complete": True})
    return PartitionedRecommendations(outp)


class _BlockWriter:
    """A Ray actor: loads the artifact once (memory-mapped) and writes the blocks it is given."""

    def __init__(self, artifact: str, out: str, users: Any, k: int, exclude_seen: bool, block_size: int) -> None:
        import socket

        import ray

        from recsys.persistence import load_model

        if not Path(artifact).is_dir():
            raise ArtifactError(f"the artifact {artifact} is not visible on worker node {socket.gethostname()}")
        if not Path(out).is_dir():
            raise DataError(f"the output directory {out} is not visible on worker node {socket.gethostname()}")
        self.model = load_model(artifact, mmap=True)
        self.users = users if isinstance(users, np.ndarray) else ray.get(users)
        self.out = Path(out)
        self.k, self.exclude_seen, self.block_size = k, exclude_seen, block_size

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        blocks = np.asarray(batch["block"], dtype=np.int64)
        rows = np.zeros(len(blocks), dtype=np.int64)
        for i, b in enumerate(blocks):
            path = self.out / _part_name(int(b))
            if path.is_file():  # a retried task whose partition was already renamed into place
                continue
            bs = self.block_size
            rows[i] = write_partition(self.model, self.users[b * bs : (b + 1) * bs], path, self.k, self.exclude_seen)
        return {"block": blocks, "rows": rows}


def _run_ray(
    artifact: Path,
    out: Path,
    users: NDArray[Any],
    pending: list[int],
    k: int,
    exclude_seen: bool,
    block_size: int,
    address: str | None,
    workers: int,
    progress: bool,
) -> None:
    with ray_session(address) as ray:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        users_ref = ray.put(users)
        ds = ray.data.from_items([{"block": b} for b in pending])
        done = ds.map_batches(
            _BlockWriter,
            batch_size=1,
            concurrency=min(workers, len(pending)),
            num_cpus=1,
            fn_constructor_kwargs={
                "artifact": str(artifact),
                "out": str(out.resolve()),
                "users": users_ref,
                "k": k,
                "exclude_seen": exclude_seen,
                "block_size": block_size,
            },
        )
        # Ray Data restarts a killed actor and retries its unfinished block (its actor pools default to
        # unlimited restarts and task retries); a block is one file renamed into place, so a retry can
        # neither duplicate nor half-write it.
        try:
            done.materialize()
        except ray.exceptions.RayError as e:
            raise worker_error(e) from e
