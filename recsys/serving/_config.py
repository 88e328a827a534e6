"""Options of a recommendation service, checked once and passed to every worker as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from recsys._utils.params import check_choice, check_float, check_int
from recsys.errors import ParameterError

#: Environment variable carrying the options to uvicorn's worker processes.
ENV_CONFIG = "RECSYS_SERVE_CONFIG"

_OWNER = "recsys.serving"
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass(frozen=True)
class ServeConfig:
    """Everything a worker needs besides host, port and worker count.

    Parameters
    ----------
    model : str
        A model root (``current`` link to ``versions/<v>``) or an artifact directory.
    poll_interval : float, default 1.0
        Seconds between each worker's checks of the model root (0: never reload).
    on_unknown : {"error", "skip", "popular"}, default "error"
        Default for users absent from the training data (GET /recommend and
        POST /recommend/batch; a request may override it).
    max_k : int, default 1000
        Largest ``k`` accepted.
    max_history : int, default 1000
        Longest item history accepted by POST /recommend (longer: 413).
    max_batch : int, default 1000
        Most users in one POST /recommend/batch (more: 413).
    max_batch_entries : int, default 100000
        Most recommendations in one batch answer, users x k (more: 413).
    max_ids : int, default 10000
        Longest ``items`` / ``exclude_items`` / ``candidates`` list.
    max_body_bytes : int, default 1 MiB
        Largest request body (larger: 413, read no further).
    threads : int or None, default 1
        BLAS / OpenMP threads per worker (None leaves the libraries' defaults).
        Requests are served concurrently by workers, so one thread each avoids
        oversubscribing the cores: keep ``workers * threads <= cores``.
    log_level : str, default "info"
    access_log : bool, default False
        uvicorn's per-request log lines (costly at high request rates).
    timeout_keep_alive : int, default 5
        Seconds an idle keep-alive connection stays open.
    """

    model: str
    poll_interval: float = 1.0
    on_unknown: str = "error"
    max_k: int = 1000
    max_history: int = 1000
    max_batch: int = 1000
    max_batch_entries: int = 100_000
    max_ids: int = 10_000
    max_body_bytes: int = 1 << 20
    threads: int | None = 1
    log_level: str = "info"
    access_log: bool = False
    timeout_keep_alive: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.model, (str, os.PathLike)):
            raise ParameterError(f"The 'model' parameter of {_OWNER} must be a path. Got {self.model!r} instead.")
        object.__setattr__(self, "model", str(Path(self.model).absolute()))
        check_float(_OWNER, "poll_interval", self.poll_interval, low=0.0)
        check_choice(_OWNER, "on_unknown", self.on_unknown, ("error", "skip", "popular"))
        for name in ("max_k", "max_history", "max_batch", "max_batch_entries", "max_ids", "max_body_bytes", "timeout_keep_alive"):
            check_int(_OWNER, name, getattr(self, name), low=1)
        if self.threads is not None:
            check_int(_OWNER, "threads", self.threads, low=1)
        check_choice(_OWNER, "log_level", self.log_level, _LOG_LEVELS)
        if not isinstance(self.access_log, bool):
            raise ParameterError(f"The 'access_log' parameter of {_OWNER} must be a bool. Got {self.access_log!r} instead.")

    @classmethod
    def from_options(cls, model: str | os.PathLike[str], **options: Any) -> ServeConfig:
        """Build from keyword options, naming any unknown one and the valid ones.

        >>> ServeConfig.from_options("m", max_k=50).max_k
        50
        >>> ServeConfig.from_options("m", max_kk=5)
        Traceback (most recent call last):
        ...
        recsys.errors.ParameterError: recsys.serving has no option 'max_kk'; valid options: poll_interval, on_unknown, max_k, max_history, max_batch, max_batch_entries, max_ids, max_body_bytes, threads, log_level, access_log, timeout_keep_alive
        """
        valid = [f.name for f in fields(cls) if f.name != "model"]
        for name in options:
            if name not in valid:
                raise ParameterError(f"{_OWNER} has no option {name!r}; valid options: {', '.join(valid)}")
        return cls(model=str(model), **options)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))

    @classmethod
    def from_env(cls) -> ServeConfig:
        text = os.environ.get(ENV_CONFIG)
        if not text:
            raise ParameterError(
                f"{ENV_CONFIG} is not set: start the service with recsys.serving.run(...) or `recsys serve`"
            )
        return cls.from_json(text)


__all__ = ["ENV_CONFIG", "ServeConfig"]
