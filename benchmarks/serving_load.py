"""HTTP load on 127.0.0.1 against ``recsys.serving.run`` (what ``recsys serve`` starts), with ML-100K artifacts.

For each model (ItemKNN, and ALS once :mod:`recsys.models` exports it):

1. requests/s and latency p50 / p99 of ``GET /recommend?user=<random>&k=10`` at
   1, 8 and 64 concurrent keep-alive connections (``--duration`` s each);
2. a ``--long`` s run (default 60) at 64 connections sampling the workers'
   resident memory every second: growth between second 10 and the end;
3. the same long run with a new version published half-way: every worker
   must switch, and no request may fail (wrk counts socket errors, timeouts
   and non-2xx answers; a Lua hook counts answers per model version).

The load generator is wrk (``apt-get install -y wrk``; C, so it leaves the
cores to the server), with a Python httpx fallback (``--client httpx``).
The peer: Cornac's Flask app (``cornac.serving.app``, the only peer service)
with Cornac's ItemKNN on the same data, timed in the same run at the same
concurrencies, and probed with the same bad inputs.

Run: ``python -m benchmarks.serving_load`` (about 4-5 minutes with the
defaults; ``--quick`` for 3 s steps and a 20 s long run). Everything stays on
127.0.0.1; all servers are stopped at the end. Writes the load section of
benchmarks/results/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine
from benchmarks._common import stop_process as stop
from benchmarks.serving_latency import RESULTS, load_note, ml100k, write_section
from recsys import Interactions
from recsys.serving import publish

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 64)

LUA = r"""
local users = {%(users)s}
local path = "%(path)s"
local threads = {}
versions = {}
statuses = {}
local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
init = function(args)
  math.randomseed(os.time() * 1000 + id)
end
request = function()
  return wrk.format("GET", string.format(path, users[math.random(1, #users)]))
end
response = function(status, headers, body)
  local v = headers["x-model-version"] or headers["X-Model-Version"] or "none"
  versions[v] = (versions[v] or 0) + 1
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local vt, st = {}, {}
  for _, t in ipairs(threads) do
    for k, n in pairs(t:get("versions")) do vt[k] = (vt[k] or 0) + n end
    for k, n in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + n end
  end
  for k, n in pairs(vt) do io.write(string.format("VERSION %%s %%d\n", k, n)) end
  for k, n in pairs(st) do io.write(string.format("STATUS %%s %%d\n", k, n)) end
  local e = summary.errors
  io.write(string.format("SUMMARY %%d %%d %%d %%d %%d %%d %%d %%d\n", summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout, latency.max))
  io.write(string.format("PCT %%d %%d %%d\n", latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


@dataclass
class LoadResult:
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: dict[str, int]
    versions: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def failed(self) -> int:
        return sum(self.errors.values()) + sum(n for s, n in self.statuses.items() if s != "200")


def stack() -> str:
    """uvicorn's HTTP parser and event loop in this environment."""
    import importlib.util

    fast = importlib.util.find_spec("httptools") and importlib.util.find_spec("uvloop")
    return "httptools + uvloop" if fast else "h11 + asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], path: str = "/ready", timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (uvicorn's workers), from /proc."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parents[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        frontier += kids
    return out


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# -- load generators -------------------------------------------------------------------------------------------


def run_wrk(url: str, path_fmt: str, users: list[Any], clients: int, seconds: float, workdir: Path) -> LoadResult:
    script = workdir / f"load-{clients}.lua"
    script.write_text(LUA % {"users": ",".join(json.dumps(str(u)) for u in users), "path": path_fmt})
    threads = min(clients, 2)
    cmd = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{int(round(seconds))}s", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120).stdout
    s = next(line for line in out.splitlines() if line.startswith("SUMMARY")).split()[1:]
    pct = next(line for line in out.splitlines() if line.startswith("PCT")).split()[1:]
    versions = {ln.split()[1]: int(ln.split()[2]) for ln in out.splitlines() if ln.startswith("VERSION")}
    statuses = {ln.split()[1]: int(ln.split()[2]) for ln in out.splitlines() if ln.startswith("STATUS")}
    req, dur_us, connect, read, write, status, timeout, max_us = (int(x) for x in s)
    return LoadResult(
        clients=clients,
        requests=req,
        seconds=dur_us / 1e6,
        p50_ms=int(pct[0]) / 1000,
        p99_ms=int(pct[1]) / 1000,
        p999_ms=int(pct[2]) / 1000,
        max_ms=max_us / 1000,
        errors={"connect": connect, "read": read, "write": write, "timeout": timeout},
        versions=versions,
        statuses=statuses,
    )


def run_httpx(url: str, path_fmt: str, users: list[Any], clients: int, seconds: float, workdir: Path) -> LoadResult:
    """Fallback without wrk: asyncio + httpx keep-alive clients (the client itself needs CPU: lower ceilings)."""
    import asyncio

    import httpx

    async def main() -> LoadResult:
        lat: list[float] = []
        versions: dict[str, int] = {}
        statuses: dict[str, int] = {}
        errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
        rng = np.random.default_rng(0)
        end = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:

            async def worker() -> None:
                while time.monotonic() < end:
                    u = users[int(rng.integers(len(users)))]
                    t0 = time.perf_counter()
                    try:
                        r = await client.get(path_fmt % u)
                    except httpx.TimeoutException:
                        errors["timeout"] += 1
                        continue
                    except httpx.HTTPError:
                        errors["read"] += 1
                        continue
                    lat.append((time.perf_counter() - t0) * 1000)
                    v = r.headers.get("x-model-version", "none")
                    versions[v] = versions.get(v, 0) + 1
                    statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            took = time.perf_counter() - t0
        a = np.array(lat) if lat else np.zeros(1)
        return LoadResult(
            clients, len(lat), took, float(np.percentile(a, 50)), float(np.percentile(a, 99)),
            float(np.percentile(a, 99.9)), float(a.max()), errors, versions, statuses,
        )

    return asyncio.run(main())


# -- servers ---------------------------------------------------------------------------------------------


def start_recsys(root: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = (
        "from recsys.serving import run; "
        f"run({str(root)!r}, host='127.0.0.1', port={port}, workers={workers}, poll_interval=1.0, log_level='warning')"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def start_cornac(data: Interactions, workdir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """Cornac's ItemKNN on the same interactions, served by Cornac's Flask app; None when cornac/flask are missing."""
    try:
        import cornac  # noqa: F401
        import flask  # noqa: F401
        from cornac.data import Dataset
        from cornac.models import ItemKNN as CornacItemKNN
    except ImportError:
        print("cornac or flask not installed: no peer service (pip install cornac flask)")
        return None
    frame = data.to_frame()
    triples = list(zip(frame["user"].astype(str), frame["item"].astype(str), np.ones(len(frame))))
    train = Dataset.from_uir(triples, seed=0)
    model = CornacItemKNN(k=200, similarity="cosine", verbose=False).fit(train)
    path = model.save(str(workdir / "cornac"), save_trainset=True)
    port = free_port()
    env = {
        **os.environ,
        "MODEL_PATH": str(path),
        "MODEL_CLASS": "cornac.models.ItemKNN",
        "FLASK_APP": "cornac.serving.app",
    }
    cmd = [sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger"]
    proc = subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, path="/recommend?uid=1&k=1")
    except RuntimeError:
        stop(proc)
        print("the Cornac service did not start; see", log)
        return None
    return proc, url


def probe_bad_inputs(url: str, cornac: bool) -> list[tuple[str, int]]:
    import httpx

    if cornac:
        paths = ["/recommend?uid=1&k=abc", "/recommend?uid=no-such-user&k=10", "/recommend?k=10", "/recommend?uid=1&k=-5"]
    else:
        paths = ["/recommend?user=1&k=abc", "/recommend?user=no-such-user&k=10", "/recommend?k=10", "/recommend?user=1&k=-5"]
    out = []
    for p in paths:
        try:
            out.append((p, httpx.get(url + p, timeout=10).status_code))
        except httpx.HTTPError as e:
            out.append((p, -1 if "timed out" not in str(e) else -2))
    return out


# -- the benchmark ---------------------------------------------------------------------------------------------


def long_run(
    gen: Any, url: str, path: str, users: list[Any], seconds: float, proc: subprocess.Popen[bytes], workdir: Path,
    reload: Any = None,
) -> tuple[LoadResult, list[tuple[float, float]]]:
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not done.wait(1.0):
            samples.append((time.monotonic() - t0, rss_mib(descendants(proc.pid) or [proc.pid])))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = None
    if reload is not None:
        timer = threading.Timer(seconds / 2, reload)
        timer.start()
    try:
        result = gen(url, path, users, 64, seconds, workdir)
    finally:
        done.set()
        sampler.join()
        if timer is not None:
            timer.join()
    return result, samples


def rss_growth(samples: list[tuple[float, float]], start_s: float = 10.0) -> tuple[float, float, float]:
    at_start = min(samples, key=lambda s: abs(s[0] - start_s))[1]
    at_end = samples[-1][1]
    return at_start, at_end, (at_end - at_start) / at_start * 100


def worker_versions(url: str, tries: int = 30) -> dict[int, str]:
    import httpx

    out = {}
    for _ in range(tries):
        m = httpx.get(url + "/model", headers={"connection": "close"}, timeout=10).json()
        out[m["worker_pid"]] = m["version"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency level")
    parser.add_argument("--long", type=float, default=60.0, help="seconds of the memory / reload runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3 s steps and a 20 s long run")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.long = 3.0, 20.0
    gen = run_wrk if args.client == "wrk" else run_httpx
    load0 = os.getloadavg()[0]
    print(f"Machine: {machine()}; load generator: {args.client}; {args.workers} uvicorn workers", flush=True)
    data = ml100k()
    users = list(data.users.ids)
    work = Path(tempfile.mkdtemp(prefix="serving-load-"))
    import recsys.models as M

    models: dict[str, tuple[Any, Any]] = {"ItemKNN": (M.ItemKNN(), M.ItemKNN(shrinkage=10.0))}
    if getattr(M, "ALS", None) is not None:  # the second version: another seed (or the same model again)
        models["ALS"] = (M.ALS(), M.ALS(seed=1) if "seed" in M.ALS().get_params() else M.ALS())
    lines = [
        "## HTTP load (`python -m benchmarks.serving_load`)",
        "",
        f"Machine: {machine()}. Server: `recsys.serving.run(root, workers={args.workers})` (uvicorn with {stack()}, one "
        f"BLAS/OpenMP thread per worker) on 127.0.0.1; client: {args.client} "
        f"(`GET /recommend?user=<random of 943>&k=10`, keep-alive) on the same 2 cores. "
        f"{args.duration:g} s per concurrency level; long runs {args.long:g} s at 64 connections.",
        "",
        "| service | model | clients | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | failed | rps / peer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    extra: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    peer_rps: dict[int, float] = {}
    try:
        peer_rows: list[str] = []
        if not args.no_peer:
            started = start_cornac(data, work, work / "cornac.log")
            if started is not None:
                proc, url = started
                procs.append(proc)
                for c in CONCURRENCY:
                    r = gen(url, "/recommend?uid=%s&k=10&remove_seen=true", users, c, args.duration, work)
                    peer_rps[c] = r.rps
                    peer_rows.append(
                        f"| Cornac Flask app (peer) | cornac ItemKNN(k=200) | {c} | {r.rps:.0f} | {r.p50_ms:.2f} | "
                        f"{r.p99_ms:.2f} | {r.p999_ms:.2f} | {r.max_ms:.1f} | {r.failed} | 1.00 |"
                    )
                    print(peer_rows[-1], flush=True)
                extra += ["", "Bad inputs, Cornac's app: " + ", ".join(f"`{p}` -> {s}" for p, s in probe_bad_inputs(url, True))]
                stop(proc)
        for name, (model, second) in models.items():
            t0 = time.perf_counter()
            model.fit(data)
            root = work / f"root-{name}"
            publish(model, root, version="v1")
            print(f"{name}: fitted and published in {time.perf_counter() - t0:.1f} s", flush=True)
            proc, url = start_recsys(root, args.workers, work / f"{name}.log")
            procs.append(proc)
            for c in CONCURRENCY:
                r = gen(url, "/recommend?user=%s&k=10", users, c, args.duration, work)
                ratio = f"{r.rps / peer_rps[c]:.2f}" if c in peer_rps else "n/a"
                lines.append(
                    f"| recsys.serving | {name}() | {c} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                    f"{r.p999_ms:.2f} | {r.max_ms:.1f} | {r.failed} | {ratio} |"
                )
                print(lines[-1], flush=True)
            if name == "ItemKNN":
                extra += ["", "Bad inputs, recsys.serving: " + ", ".join(f"`{p}` -> {s}" for p, s in probe_bad_inputs(url, False))]
            r, samples = long_run(gen, url, "/recommend?user=%s&k=10", users, args.long, proc, work)
            a, b, g = rss_growth(samples)
            extra += [
                "",
                f"**{name}, {args.long:g} s at 64 connections**: {r.rps:.0f} requests/s, p50 {r.p50_ms:.2f} ms, "
                f"p99 {r.p99_ms:.2f} ms, failed {r.failed} of {r.requests}; workers' RSS {a:.1f} MiB at 10 s, "
                f"{b:.1f} MiB at the end: growth {g:+.1f}% (target < 10%).",
            ]
            print(extra[-1], flush=True)
            second.fit(data)

            def do_reload() -> None:
                t = time.perf_counter()
                publish(second, root, version="v2")
                print(f"published v2 at mid-run ({time.perf_counter() - t:.2f} s to write and verify)", flush=True)

            r, samples = long_run(gen, url, "/recommend?user=%s&k=10", users, args.long, proc, work, reload=do_reload)
            a, b, g = rss_growth(samples)
            per_worker = worker_versions(url)
            extra += [
                "",
                f"**{name}, {args.long:g} s at 64 connections with a new version published at {args.long / 2:g} s**: "
                f"{r.rps:.0f} requests/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, max {r.max_ms:.1f} ms; "
                f"failed {r.failed} of {r.requests} (socket errors {r.errors}, statuses {r.statuses}); answers per "
                f"version {r.versions}; workers after the run: {per_worker}; RSS {a:.1f} -> {b:.1f} MiB ({g:+.1f}%).",
            ]
            print(extra[-1], flush=True)
            stop(proc)
        lines += peer_rows + extra
        lines.insert(4, load_note(load0))
        lines.insert(5, "")
        lines += [
            "",
            "Reading: `failed` counts wrk's socket errors and timeouts plus non-200 answers. The peer is "
            "Cornac's documented service (Flask's threaded server, one process); it answers a malformed or "
            "negative `k` and an unknown user with 500 (unhandled exceptions), where recsys.serving answers 422 / 404 "
            "with a message.",
        ]
        write_section(lines, "load")
        print(f"wrote {RESULTS}")
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
