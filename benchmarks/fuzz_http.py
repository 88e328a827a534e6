"""Schema-driven fuzzing of the HTTP service: schemathesis on the service's own OpenAPI document.

Requests come from five kinds of streams, round-robin in chunks until the budget is spent:

* ``positive``: schemathesis cases that satisfy the schema (random ids: mostly 404s);
* ``known``: positive cases with the ids replaced by ids the model knows and ``ratings`` /
  ``timestamps`` aligned with ``items`` (what the schema cannot say), so valid requests reach the model;
* ``negative``: schemathesis cases that violate the schema (types, ranges, missing fields, ...);
* ``protocol``: hypothesis-built requests beyond one operation's schema: undeclared methods, unknown
  paths, non-JSON bodies and content types, raw bytes, repeated query parameters;
* ``HEAD``: every eighth GET is repeated as HEAD (same status and headers, no body).

Every answer is checked: no 5xx; every 4xx is ``{error, detail}`` JSON (``errors``: optional list);
schemathesis' status-code, content-type and response-schema conformance; schema-violating requests are
refused (400/404/405/413/415/422); a repeated scalar query parameter is a 422 naming it; 405 has ``Allow``.
At the end ``GET /health`` must answer 200 (and, for a server process, the process must be alive).

Run: ``python -m benchmarks.fuzz_http --requests 5000`` (one ``recsys.serving.run`` server process per
id type, integer and text ids, on 127.0.0.1, half of the budget each; small limits so that 413s are
reached). ``tests/serving/test_fuzz_http.py`` runs a short budget of the same fuzzer in the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from benchmarks._common import stop_process

REPO = Path(__file__).resolve().parents[1]

#: Limits of the fuzzed service: small, so that the 413 paths are reached by generated requests.
LIMITS = {"max_k": 50, "max_history": 20, "max_batch": 5, "max_batch_entries": 60, "max_ids": 30, "max_body_bytes": 4000}
#: What a request that violates the schema may get.
REFUSED = ["400", "404", "405", "413", "415", "422"]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, negative_data_rejection]
CHUNK = 25  # examples per hypothesis run of one stream
ERROR_KEYS = {"error", "detail", "errors"}


@dataclass
class FuzzFailure:
    stream: str
    reason: str
    request: str
    status: int
    body: str

    def __str__(self) -> str:
        return f"[{self.stream}] {self.reason}\n    {self.request}\n    -> {self.status} {self.body[:300]}"


@dataclass
class FuzzReport:
    per_stream: Counter[str] = field(default_factory=Counter)
    per_stream_status: dict[str, Counter[int]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[FuzzFailure] = field(default_factory=list)  # the first of each distinct (stream, reason)
    failed_requests: int = 0
    seconds: float = 0.0
    health_after: int | None = None

    @property
    def requests(self) -> int:
        return sum(self.per_stream.values())

    def add(self, stream: str, status: int) -> None:
        self.per_stream[stream] += 1
        self.per_stream_status.setdefault(stream, Counter())[status] += 1
        self.statuses[status] += 1

    def merge(self, other: FuzzReport, prefix: str) -> None:
        for s, n in other.per_stream.items():
            self.per_stream[f"{prefix}{s}"] += n
        for s, c in other.per_stream_status.items():
            self.per_stream_status.setdefault(f"{prefix}{s}", Counter()).update(c)
        self.statuses.update(other.statuses)
        self.failures += [FuzzFailure(f"{prefix}{f.stream}", f.reason, f.request, f.status, f.body) for f in other.failures]
        self.failed_requests += other.failed_requests
        self.seconds += other.seconds

    def render(self) -> str:
        width = max(len(s) for s in self.per_stream) if self.per_stream else 10
        lines = [f"{'requests per operation (stream)':<{width}}  {'n':>5}  statuses"]
        for s in sorted(self.per_stream):
            st_ = ", ".join(f"{k}: {v}" for k, v in sorted(self.per_stream_status[s].items()))
            lines.append(f"{s:<{width}}  {self.per_stream[s]:>5}  {st_}")
        lines.append(f"status counts: {', '.join(f'{k}: {v}' for k, v in sorted(self.statuses.items()))}")
        lines.append(
            f"requests: {self.requests}; failed requests: {self.failed_requests} "
            f"({len(self.failures)} distinct failures); 5xx: {sum(v for k, v in self.statuses.items() if k >= 500)}; "
            f"time: {self.seconds:.1f} s ({self.requests / max(self.seconds, 1e-9):.0f} requests/s)"
        )
        lines += [str(f) for f in self.failures[:20]]
        return "\n".join(lines)


class _Budget(Exception):
    """The request budget is spent (ends a hypothesis run early)."""


def _headers(headers: Any) -> dict[str, str]:
    """Lower-case names -> values, from requests' headers or schemathesis' (lists of values)."""
    return {k.lower(): ", ".join(v) if isinstance(v, list) else v for k, v in headers.items()}


def check_error_shape(status: int, headers: Any, content: bytes) -> str | None:
    """Why a 4xx/5xx answer is not ``{error, detail}`` JSON, or None when it is."""
    if status < 400:
        return None
    ctype = _headers(headers).get("content-type", "")
    if not ctype.startswith("application/json"):
        return f"{status} with Content-Type {ctype!r}, not JSON"
    try:
        body = json.loads(content)
    except ValueError:
        return f"{status} with a body that is not JSON"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not isinstance(body.get("detail"), str):
        return f"{status} without string 'error' and 'detail'"
    if not body["error"] or not body["detail"]:
        return f"{status} with an empty 'error' or 'detail'"
    if set(body) - ERROR_KEYS:
        return f"{status} with unexpected keys {sorted(set(body) - ERROR_KEYS)}"
    errors = body.get("errors")
    if errors is not None and not (
        isinstance(errors, list) and all(isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("field", "message", "type")) for e in errors)
    ):
        return f"{status} with a malformed 'errors' list"
    return None


def _is_array(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_is_array(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


class HttpFuzzer:
    """Fuzz the service at ``base_url`` with cases from its OpenAPI document (``GET /openapi.json``).

    ``users`` / ``items``: ids the served model knows (the ``known`` stream puts them in requests).
    """

    def __init__(self, base_url: str, users: list[Any], items: list[Any], seed: int = 0) -> None:
        self.base_url = base_url.rstrip("/")
        self.users, self.items = list(users), list(items)
        self.seed = seed
        self.rng = random.Random(seed)
        self.session = requests.Session()
        spec = self.session.get(self.base_url + "/openapi.json", timeout=30).json()
        config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REFUSED}}})
        self.schema = schemathesis.openapi.from_dict(spec, config=config)
        self.operations = [r.ok() for r in self.schema.get_all_operations()]
        self.paths = sorted({op.path for op in self.operations})
        self.get_paths = sorted({op.path for op in self.operations if op.method.upper() == "GET"})
        self.methods = {p: sorted({op.method.upper() for op in self.operations if op.path == p}) for p in self.paths}
        self.scalars = {  # GET query parameters that take one value (not arrays, nor arrays-or-null)
            path: [p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query" and not _is_array(p.get("schema", {}))]
            for path, ops in spec["paths"].items()
            if "get" in ops
        }

    # -- one request ------------------------------------------------------------------------------

    def _record(self, report: FuzzReport, stream: str, status: int, reason: str | None, request: str, body: bytes) -> None:
        report.add(stream, status)
        if reason is None:
            return
        report.failed_requests += 1
        if not any(f.stream == stream and f.reason == reason for f in report.failures):
            report.failures.append(FuzzFailure(stream, reason, request, status, body[:500].decode("utf-8", "replace")))

    def _send_case(self, case: Any, stream: str, report: FuzzReport, budget: int) -> None:
        if report.requests >= budget:
            raise _Budget
        if stream == "known":
            self._use_known_ids(case)
        response = case.call(base_url=self.base_url, session=self.session, timeout=30)
        reason = check_error_shape(response.status_code, response.headers, response.content)
        if reason is None:
            try:
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, BaseExceptionGroup) as e:
                reason = "; ".join(line.strip() for line in str(e).splitlines()[1:4] if line.strip())[:300] or type(e).__name__
        label = f"{case.method.upper()} {case.path} {stream}"
        self._record(report, label, response.status_code, reason, case.as_curl_command(base_url=self.base_url)[:400], response.content)
        if case.method.upper() == "GET" and self.rng.random() < 1 / 8 and report.requests < budget:
            self._head_like(response, report)

    def _head_like(self, get: Any, report: FuzzReport) -> None:
        """The GET just answered, as HEAD: same status and headers (but the date), no body."""
        url = get.request.url
        r = self.session.head(url, timeout=30)
        reason = None
        if r.status_code != get.status_code:
            reason = f"HEAD answered {r.status_code} where GET answered {get.status_code}"
        elif r.content:
            reason = "HEAD answered with a body"
        else:
            h_get = {k: v for k, v in _headers(get.headers).items() if k != "date"}
            h_head = {k: v for k, v in _headers(r.headers).items() if k != "date"}
            if h_get != h_head:
                reason = f"HEAD headers differ from GET's: {sorted(set(h_get.items()) ^ set(h_head.items()))[:4]}"
        self._record(report, "HEAD (a GET repeated)", r.status_code, reason, f"HEAD {url}"[:400], r.content)

    def _use_known_ids(self, case: Any) -> None:
        """Known ids in place of the generated ones; ratings / timestamps aligned with the history."""
        rng = self.rng
        if case.query:
            q = dict(case.query)
            if "user" in q:
                q["user"] = str(rng.choice(self.users))
            if "item" in q:
                q["item"] = str(rng.choice(self.items))
            for name in ("items", "exclude_items"):
                if isinstance(q.get(name), list):
                    q[name] = [str(rng.choice(self.items)) for _ in q[name]]
            case.query = q
        body = case.body
        if isinstance(body, dict):
            body = dict(body)
            if isinstance(body.get("users"), list):
                body["users"] = rng.sample(self.users, min(len(body["users"]), len(self.users)))
            for name in ("items", "candidates", "exclude_items"):
                if isinstance(body.get(name), list):
                    body[name] = [rng.choice(self.items) for _ in body[name]]
            if isinstance(body.get("k"), float):  # the schema's "integer" admits 5.0; the service (rightly) does not
                body["k"] = int(body["k"])
            n = len(body["items"]) if isinstance(body.get("items"), list) else None
            for name in ("ratings", "timestamps"):
                if n is not None and isinstance(body.get(name), list):
                    values = body[name][:n]
                    body[name] = values + [1.0] * (n - len(values))
            case.body = body

    # -- protocol: requests outside one operation's schema ---------------------------------------------

    def _protocol_requests(self) -> dict[str, st.SearchStrategy[Any]]:
        """Strategies of (kind, method, path, headers, body, check) by kind."""
        paths, get_paths = self.paths, self.get_paths
        json_bodies = st.sampled_from([b'{"items": [1, 2]}', b'{"users": [1]}', b"{}", b"[]", b"null", b""])
        raw = st.one_of(json_bodies, st.binary(max_size=200), st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")))
        ctypes = st.sampled_from(
            [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
             "application/json", "application/json; charset=utf-8", "application/problem+json", "application/jsonx", "*/*"]
        )

        def wrong_method(args: tuple[str, str]) -> Any:
            path, method = args
            allowed = set(self.methods[path]) | ({"HEAD"} if "GET" in self.methods[path] else set())

            def check(r: Any) -> str | None:
                if method in allowed:
                    return None
                if r.status_code != 405:
                    return f"{method} {path} answered {r.status_code}, not 405"
                if not r.headers.get("allow"):
                    return "405 without Allow"
                if set(a.strip() for a in r.headers["allow"].split(",")) != allowed:
                    return f"Allow {r.headers['allow']!r} is not {sorted(allowed)}"
                return None

            return ("wrong method", method, path, {}, None, check)

        methods = st.tuples(st.sampled_from(paths), st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"])).map(wrong_method)

        def unknown(seg: str) -> Any:
            path = "/" + seg
            # the explorer page (/ redirects to /explore) is served beside the documented API
            known = path.rstrip("/") in paths or path in paths or path.startswith(("/docs", "/redoc", "/openapi.json", "/explore")) or path == "/"
            return ("unknown path", "GET", path, {}, None, lambda r: None if known or r.status_code == 404 else f"{path!r} answered {r.status_code}, not 404")

        unknown_paths = st.text(alphabet=st.characters(codec="ascii", exclude_characters="?#%"), max_size=30).map(unknown)

        def body(args: tuple[str, str | None, bytes]) -> Any:
            path, ctype, content = args
            headers = {"content-type": ctype} if ctype else {}
            json_type = ctype is not None and ctype.split(";")[0].strip() in ("application/json", "application/problem+json")

            def check(r: Any) -> str | None:
                if not json_type and r.status_code != 415:
                    return f"a {ctype or 'no'} Content-Type answered {r.status_code}, not 415"
                return None

            return ("content type / raw body", "POST", path, headers, content, check)

        posts = [p for p in paths if "POST" in self.methods[p]]
        bodies = st.tuples(st.sampled_from(posts), ctypes, raw).map(body)

        def repeated(args: tuple[str, int, list[str]]) -> Any:
            path, i, values = args
            names = self.scalars.get(path) or []
            if not names:
                return ("repeated parameter", "GET", path, {}, None, lambda r: None)
            name = names[i % len(names)]
            query = "&".join(f"{name}={requests.utils.quote(v)}" for v in values)

            def check(r: Any) -> str | None:
                if r.status_code != 422:
                    return f"?{name}= twice answered {r.status_code}, not 422"
                if name not in r.json().get("detail", ""):
                    return f"the 422 for a repeated {name!r} does not name it"
                return None

            return ("repeated parameter", "GET", f"{path}?{query}", {}, None, check)

        repeats = st.tuples(
            st.sampled_from([p for p in get_paths if self.scalars.get(p)]),
            st.integers(0, 20),
            st.lists(st.sampled_from(["1", "2", "5", "x", ""]), min_size=2, max_size=3),
        ).map(repeated)
        return {"wrong method": methods, "unknown path": unknown_paths, "content type / raw body": bodies, "repeated parameter": repeats}

    def _send_protocol(self, req: tuple[str, str, str, dict[str, str], bytes | None, Callable[[Any], str | None]], report: FuzzReport, budget: int) -> None:
        if report.requests >= budget:
            raise _Budget
        kind, method, path, headers, content, check = req
        r = self.session.request(method, self.base_url + path, headers=headers, data=content, timeout=30)
        if method == "HEAD":  # no body to check: the GET's shape is checked on the GETs
            reason = "HEAD answered with a body" if r.content else None
        else:
            reason = check_error_shape(r.status_code, r.headers, r.content)
        if reason is None and r.status_code >= 500:
            reason = f"{r.status_code} answer"
        if reason is None:
            reason = check(r)
        self._record(report, f"protocol: {kind}", r.status_code, reason, f"{method} {path} {headers} {content!r}"[:400], r.content)

    # -- the run -----------------------------------------------------------------------------------

    def streams(self) -> list[tuple[str, st.SearchStrategy[Any], Callable[[Any, FuzzReport, int], None]]]:
        out: list[tuple[str, st.SearchStrategy[Any], Callable[[Any, FuzzReport, int], None]]] = []
        for op in self.operations:
            for name, mode in (("positive", GenerationMode.POSITIVE), ("known", GenerationMode.POSITIVE), ("negative", GenerationMode.NEGATIVE)):
                if name == "known" and op.path not in ("/recommend", "/recommend/batch", "/similar"):
                    continue  # no ids to replace
                try:
                    strategy = op.as_strategy(generation_mode=mode)
                except Exception:  # an operation with nothing to negate
                    continue
                out.append((f"{op.label} {name}", strategy, lambda case, rep, budget, n=name: self._send_case(case, n, rep, budget)))
        for kind, strategy in self._protocol_requests().items():
            out.append((f"protocol: {kind}", strategy, self._send_protocol))
        return out

    def run(self, n_requests: int, progress: Callable[[int], None] | None = None) -> FuzzReport:
        """Send ``n_requests`` generated requests (round-robin over the streams) and check every answer."""
        report = FuzzReport()
        live = self.streams()
        start = time.perf_counter()
        round_ = 0
        while live and report.requests < n_requests:
            still = []
            for name, strategy, send in live:
                if report.requests >= n_requests:
                    still.append((name, strategy, send))
                    continue
                before = report.requests
                chunk = max(1, min(CHUNK, (n_requests - before) // len(live)))  # a short budget still reaches every stream
                produced = self._run_chunk(strategy, send, report, n_requests, chunk, self.seed * 100_003 + round_)
                if progress is not None:
                    progress(report.requests - before)
                if produced >= max(1, chunk // 2) or report.requests >= n_requests:
                    still.append((name, strategy, send))  # exhausted streams (e.g. GET /health, no parameters) drop out
            live = still
            round_ += 1
        report.seconds = time.perf_counter() - start
        report.health_after = self.session.get(self.base_url + "/health", timeout=30).status_code
        return report

    def _run_chunk(
        self, strategy: Any, send: Callable[[Any, FuzzReport, int], None], report: FuzzReport, budget: int, chunk: int, seed_value: int
    ) -> int:
        produced = 0

        @settings(max_examples=chunk, database=None, phases=[Phase.generate], deadline=None,
                  suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        @seed(seed_value)
        @given(strategy)
        def one(case: Any) -> None:
            nonlocal produced
            produced += 1
            send(case, report, budget)

        try:
            one()
        except (_Budget, Unsatisfiable):
            pass
        return produced


# -- the benchmark: real server processes ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(root: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``recsys.serving.run(root)`` in a subprocess on 127.0.0.1 (what ``recsys serve`` starts)."""
    port = _free_port()
    opts = ", ".join(f"{k}={v!r}" for k, v in {**LIMITS, "log_level": "warning", "poll_interval": 0}.items())
    code = f"from recsys.serving import run; run({str(root)!r}, port={port}, workers=1, {opts})"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    if requests.get(url + "/ready", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not become ready:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
            yield url, proc
        finally:
            stop_process(proc, timeout=20)


def _models(tmp: Path) -> dict[str, tuple[Path, list[Any], list[Any]]]:
    from recsys import Interactions
    from recsys.models import ItemKNN
    from recsys.serving import publish
    from recsys.testing import tiny_interactions

    data = tiny_interactions()
    df = data.to_frame()
    df["user"] = "u" + df["user"].astype(str)
    df["item"] = "i" + df["item"].astype(str)
    text = Interactions.from_frame(df[["user", "item"]])
    out = {}
    for name, d in (("int ids", data), ("text ids", text)):
        model = ItemKNN(k=10).fit(d)
        root = tmp / name.replace(" ", "_")
        publish(model, root, version="v1")
        out[name] = (root, model.users_.ids.tolist(), model.items_.ids.tolist())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="total generated requests (split over the id types)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from tqdm import tqdm

    from benchmarks._common import machine

    print(f"machine: {machine()}; schemathesis {schemathesis.__version__}")
    print(f"service limits: {LIMITS}")
    total = FuzzReport()
    alive = True
    tracebacks = 0
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        models = _models(tmp)
        shares = [args.requests // len(models) + (1 if i < args.requests % len(models) else 0) for i in range(len(models))]
        for i, ((name, (root, users, items)), share) in enumerate(zip(models.items(), shares)):
            log = tmp / f"{root.name}.log"
            with served(root, log) as (url, proc), tqdm(total=share, desc=name, unit="req") as bar:
                fuzzer = HttpFuzzer(url, users, items, seed=args.seed * len(models) + i)  # other cases for each id type
                report = fuzzer.run(share, progress=bar.update)
                process_alive = proc.poll() is None
            server_log = log.read_text(errors="replace")
            tracebacks += server_log.count("Traceback")
            print(f"\n== {name}: GET /health after: {report.health_after}; server process alive after: {process_alive}")
            print(report.render())
            alive = alive and process_alive and report.health_after == 200
            total.merge(report, f"{name}: ")
    print("\n== total")
    print(f"requests: {total.requests}; operations and streams: {len(total.per_stream)}")
    print(f"status counts: {', '.join(f'{k}: {v}' for k, v in sorted(total.statuses.items()))}")
    print(f"failures: {total.failed_requests} requests ({len(total.failures)} distinct); "
          f"5xx: {sum(v for k, v in total.statuses.items() if k >= 500)}; server tracebacks logged: {tracebacks}")
    print(f"service alive after (GET /health 200, process running): {alive}")
    print(f"time: {total.seconds:.1f} s")
    return 0 if alive and not total.failures and tracebacks == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
