"""Engine choice and the Ray connection: one place that imports Ray, lazily."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from recsys import errors
from recsys._utils.params import check_choice
from recsys.errors import MissingDependencyError, ParameterError, RecsysError

__all__ = ["Engine", "RayConnectionError", "check_engine", "import_ray", "probe_address", "ray_session", "worker_error"]

Engine = Literal["local", "ray"]

EXTRA_HINT = "pip install 'recsys[ray]'"


class RayConnectionError(RecsysError, ConnectionError):
    """The Ray cluster at the given address cannot be reached."""


def check_engine(func: str, engine: Any) -> Engine:
    """``engine`` checked against ``("local", "ray")``."""
    check_choice(func, "engine", engine, ("local", "ray"))
    return engine  # type: ignore[no-any-return]


def import_ray() -> Any:
    """The ``ray`` module with ``ray.data``, or a clear error naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f"engine='ray' needs Ray with ray.data, which is not installed ({e}). Install it: {EXTRA_HINT}"
        ) from e
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of an explicit ``host:port`` or ``ray://host:port`` address, else None."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def probe_address(address: str | None) -> None:
    """Fail fast, with :class:`RayConnectionError`, when an explicit ``host:port`` address cannot be reached."""
    if address is None:
        return
    if not isinstance(address, str) or not address:
        raise ParameterError(f"The 'address' parameter must be a non-empty string such as 'auto' or 'host:6379'. Got {address!r} instead.")
    hp = _host_port(address)
    if hp is not None:
        try:
            socket.create_connection(hp, timeout=5).close()
        except OSError as e:
            raise RayConnectionError(f"cannot reach the Ray cluster at {address!r}: {e}") from e


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray, connected: the running session when there is one, else a new one (shut down on exit).

    ``address`` None starts a local cluster; ``"auto"`` joins the cluster of
    this machine; ``host:port`` / ``ray://host:port`` join that cluster, which
    is probed first so an unreachable address fails in seconds with
    :class:`RayConnectionError` instead of Ray's long retry loop.
    """
    ray = import_ray()
    probe_address(address)
    if ray.is_initialized():
        yield ray
        return
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, TimeoutError) as e:
        raise RayConnectionError(f"cannot connect to the Ray cluster at {address!r}: {e}") from e
    try:
        yield ray
    finally:
        ray.shutdown()


def worker_error(e: BaseException) -> BaseException:
    """The recsys error a Ray worker raised, out of Ray's wrapping (an actor that died in its
    constructor reports it only as text); ``e`` itself when there is none.

    Examples
    --------
    >>> worker_error(RuntimeError("actor died\\nrecsys.errors.ArtifactError: /m is not visible on worker node a"))
    ArtifactError('/m is not visible on worker node a')
    """
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, RecsysError):
            return cur
        cause = getattr(cur, "cause", None)
        cur = cur.__cause__ or (cause if isinstance(cause, BaseException) else None)
    found = re.findall(r"recsys\.errors\.(\w+): ([^\n]+)", str(e))
    if found:
        cls = getattr(errors, found[-1][0], None)
        if isinstance(cls, type) and issubclass(cls, RecsysError):
            return cls(found[-1][1])
    return e
